//! Passwords: the forgotten-password email, resetting with its token, and changing the
//! password while signed in.

use actix_web::{HttpResponse, web};
use utoipa::OpenApi;

use super::access::{self, Revoked};
use super::error::AuthError;
use super::events::{PasswordChanged, PasswordResetRequested};
use super::model::*;
use super::state::{AuthState, State};
use super::{password, repo, tokens};
use crate::platform::error::responses::{BadRequest, Invalid, Unauthorized};
use crate::platform::events::publish;
use crate::platform::http::rate_limit::RateLimiter;
use crate::platform::http::{Endpoint, Routes, ValidatedJson};
use crate::platform::{CurrentUser, Platform};

#[derive(OpenApi)]
#[openapi(paths(forgot_password, reset_password, change_password))]
pub struct PasswordsApi;

pub fn configure(routes: &mut Routes) {
    routes
        .add(Endpoint::at("/forgot-password").post(forgot_password))
        .add(Endpoint::at("/reset-password").post(reset_password))
        .add(Endpoint::at("/change-password").post(change_password));
}

/// Ask for a password-reset email. Always 202, so it reveals nothing about accounts.
#[utoipa::path(
    post, path = "/forgot-password", tag = "auth", request_body = EmailRequest,
    responses((status = 202, body = AcceptedResponse), BadRequest)
)]
async fn forgot_password(
    platform: web::Data<Platform>,
    state: State,
    limiter: web::Data<RateLimiter>,
    body: ValidatedJson<EmailRequest>,
) -> Result<HttpResponse, AuthError> {
    send_reset(&platform, &state, &limiter, &body.email).await?;
    Ok(access::accepted())
}

/// Set a new password with the emailed token; every session and API key of the account is
/// revoked, and its webhook endpoints are disabled (`user.credentials_revoked`). 400
/// `invalid_token` for an unknown, used or expired token; 422 for a weak or common password.
#[utoipa::path(
    post, path = "/reset-password", tag = "auth", request_body = ResetPasswordRequest,
    responses((status = 204), BadRequest, Invalid)
)]
async fn reset_password(
    platform: web::Data<Platform>,
    state: State,
    body: ValidatedJson<ResetPasswordRequest>,
) -> Result<HttpResponse, AuthError> {
    let body = body.into_inner();
    reset(&platform, &state, &body.token, body.password).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Change the password (needs the current one: 422 on `current_password` when wrong); other
/// sessions are revoked.
#[utoipa::path(
    post, path = "/change-password", tag = "auth", request_body = ChangePasswordRequest, security(("bearer" = [])),
    responses((status = 204), Unauthorized, Invalid)
)]
async fn change_password(
    platform: web::Data<Platform>,
    state: State,
    user: CurrentUser,
    body: ValidatedJson<ChangePasswordRequest>,
) -> Result<HttpResponse, AuthError> {
    let body = body.into_inner();
    let account = access::account(&mut *platform.db.acquire().await?, &user).await?;
    access::confirm_password(
        &account,
        body.current_password,
        "current_password",
        "is not the current password",
    )
    .await?;
    access::check_password(&state, "new_password", &body.new_password)?;
    let hash = password::hash(body.new_password).await?;
    let mut tx = platform.db.begin().await?;
    repo::set_password(&mut tx, account.id, &hash).await?;
    let revoked = access::revoke_sessions(
        &mut tx,
        account.id,
        access::caller_session(&user),
        Revoked::PasswordChanged,
    )
    .await?;
    publish(
        &mut tx,
        &PasswordChanged {
            user_id: account.id.0,
            email: account.email,
            first_name: account.first_name,
            via: "change".into(),
        },
    )
    .await?;
    tx.commit().await?;
    access::revoke_access(&platform, &state, &revoked).await;
    Ok(HttpResponse::NoContent().finish())
}

/// Mails a reset link to the account with this email, if there is one within its hourly limit
/// of such mails (nothing is said either way).
pub(super) async fn send_reset(
    platform: &Platform,
    state: &AuthState,
    limiter: &RateLimiter,
    email: &str,
) -> Result<(), AuthError> {
    let recipient = access::mail_recipient(platform, limiter, state, "forgot", email, |_| true);
    if let Some(user) = recipient.await? {
        let ttl = chrono::Duration::minutes(state.settings.reset_ttl_minutes as i64);
        let mut tx = platform.db.begin().await?;
        let secret = access::one_time_token(&mut tx, state, user.id, "reset_password", ttl).await?;
        publish(
            &mut tx,
            &PasswordResetRequested {
                user_id: user.id.0,
                email: user.email,
                first_name: user.first_name,
                secret,
            },
        )
        .await?;
        tx.commit().await?;
    }
    Ok(())
}

/// Sets a new password with an emailed token (see `reset_password`).
pub(super) async fn reset(
    platform: &Platform,
    state: &AuthState,
    token: &str,
    new_password: String,
) -> Result<(), AuthError> {
    access::check_password(state, "password", &new_password)?;
    let hash = password::hash(new_password).await?;
    let mut tx = platform.db.begin().await?;
    let user_id = repo::consume_one_time(&mut tx, &tokens::hash_one_time(token), "reset_password")
        .await?
        .ok_or(AuthError::InvalidToken)?;
    // Following the emailed link proves who the caller is, as a password would.
    access::act_as(user_id);
    let user = repo::user_by_id(&mut tx, user_id)
        .await?
        .ok_or(AuthError::InvalidToken)?;
    repo::set_password(&mut tx, user_id, &hash).await?;
    // Following the link proves the mailbox too.
    if repo::mark_verified(&mut tx, user_id).await? {
        access::grant_admin_if_listed(&mut tx, state, &user).await?;
    }
    let revoked = access::revoke_credentials(&mut tx, user_id, Revoked::PasswordReset).await?;
    publish(
        &mut tx,
        &PasswordChanged {
            user_id: user_id.0,
            email: user.email,
            first_name: user.first_name,
            via: "reset".into(),
        },
    )
    .await?;
    tx.commit().await?;
    access::revoke_access(platform, state, &revoked).await;
    Ok(())
}
