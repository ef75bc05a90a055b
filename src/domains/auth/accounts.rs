//! Accounts: registration, email verification, and the signed-in user's own account (`/me`).

use actix_web::{HttpResponse, web};
use chrono::{SubsecRound, Utc};
use sqlx::PgConnection;
use utoipa::OpenApi;

use super::access::{self, Revoked};
use super::error::{AuthError, USERS_EMAIL_KEY};
use super::events::{EmailVerified, UserDeleted, UserRegistered, VerificationRequested};
use super::model::*;
use super::repo::{self, UserRow};
use super::state::{AuthState, State};
use super::{password, tokens};
use crate::platform::error::OnConstraint;
use crate::platform::error::responses::{BadRequest, Conflict, Invalid, Unauthorized};
use crate::platform::events::publish;
use crate::platform::http::rate_limit::RateLimiter;
use crate::platform::http::{Endpoint, Routes, ValidatedJson};
use crate::platform::{CurrentUser, Platform};

#[derive(OpenApi)]
#[openapi(paths(register, verify_email, resend_verification, me, update_me, delete_me))]
pub struct AccountsApi;

pub fn configure(routes: &mut Routes) {
    routes
        .add(Endpoint::at("/register").post(register))
        .add(Endpoint::at("/verify-email").post(verify_email))
        .add(Endpoint::at("/verify-email/resend").post(resend_verification))
        .add(
            Endpoint::at("/me")
                .get(me)
                .patch(update_me)
                .delete(delete_me),
        );
}

/// Create an account
///
/// The email is normalised (trimmed, lower-cased). A verification email is sent (through the
/// notifications domain; logged when it is not compiled in). 409 `email_taken` when the
/// email is registered already; 422 for invalid fields and weak or common passwords.
#[utoipa::path(
    post, path = "/register", tag = "auth", request_body = RegisterRequest,
    responses(
        (status = 201, body = UserResponse),
        BadRequest,
        Conflict,
        Invalid,
    )
)]
async fn register(
    platform: web::Data<Platform>,
    state: State,
    body: ValidatedJson<RegisterRequest>,
) -> Result<HttpResponse, AuthError> {
    let body = body.into_inner();
    access::check_password(&state, "password", &body.password)?;
    let user = UserRow {
        id: UserId::new(),
        email: normalise_email(&body.email),
        password_hash: password::hash(body.password).await?,
        first_name: body.first_name.trim().to_owned(),
        last_name: body.last_name.trim().to_owned(),
        email_verified_at: None,
        // PostgreSQL keeps microseconds: answer with what a later read will show.
        created_at: Utc::now().trunc_subsecs(6),
    };
    let mut tx = platform.db.begin().await?;
    repo::insert_user(&mut tx, &user)
        .await
        .on_constraint(USERS_EMAIL_KEY, || AuthError::EmailTaken)?;
    // `auth.admin_emails` are granted `admin` when they prove the address, not here.
    let roles = vec!["user".to_owned()];
    repo::grant_role(&mut tx, user.id, "user").await?;
    publish(
        &mut tx,
        &UserRegistered {
            user_id: user.id.0,
            email: user.email.clone(),
            first_name: user.first_name.clone(),
            last_name: user.last_name.clone(),
        },
    )
    .await?;
    request_verification(&mut tx, &state, &user).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(access::user_response(&user, roles)))
}

/// Stores a single-use verification token and publishes the request that mails its link.
async fn request_verification(
    conn: &mut PgConnection,
    state: &AuthState,
    user: &UserRow,
) -> Result<(), AuthError> {
    let ttl = chrono::Duration::hours(state.settings.verification_ttl_hours as i64);
    let secret = access::one_time_token(&mut *conn, state, user.id, "verify_email", ttl).await?;
    publish(
        conn,
        &VerificationRequested {
            user_id: user.id.0,
            email: user.email.clone(),
            first_name: user.first_name.clone(),
            secret,
        },
    )
    .await?;
    Ok(())
}

/// Verify an email address with the token from the emailed link (single use): 400
/// `invalid_token` for an unknown, used or expired one.
///
/// The first verification signs the account out everywhere and revokes its API keys and
/// webhook endpoints (whoever registered the address first may not own it): sign in again.
/// An address listed in `auth.admin_emails` becomes an administrator here.
#[utoipa::path(
    post, path = "/verify-email", tag = "auth", request_body = TokenRequest,
    responses((status = 200, body = UserResponse), BadRequest)
)]
async fn verify_email(
    platform: web::Data<Platform>,
    state: State,
    body: ValidatedJson<TokenRequest>,
) -> Result<HttpResponse, AuthError> {
    let user = verify(&platform, &state, &body.token).await?;
    Ok(HttpResponse::Ok().json(user))
}

/// Uses a verification token: the account as it is now.
pub(super) async fn verify(
    platform: &Platform,
    state: &AuthState,
    token: &str,
) -> Result<UserResponse, AuthError> {
    let mut tx = platform.db.begin().await?;
    let user_id = repo::consume_one_time(&mut tx, &tokens::hash_one_time(token), "verify_email")
        .await?
        .ok_or(AuthError::InvalidToken)?;
    access::act_as(user_id);
    let first = repo::mark_verified(&mut tx, user_id).await?;
    let user = repo::user_by_id(&mut tx, user_id)
        .await?
        .ok_or(AuthError::InvalidToken)?;
    let mut revoked = Vec::new();
    if first {
        revoked = access::first_verification(&mut tx, state, &user).await?;
        publish(
            &mut tx,
            &EmailVerified {
                user_id: user_id.0,
                email: user.email.clone(),
                first_name: user.first_name.clone(),
            },
        )
        .await?;
    }
    let roles = repo::roles_of(&mut tx, user_id).await?;
    tx.commit().await?;
    access::revoke_access(platform, state, &revoked).await;
    Ok(access::user_response(&user, roles))
}

/// Send the verification email again. Always 202, so it reveals nothing about accounts.
#[utoipa::path(
    post, path = "/verify-email/resend", tag = "auth", request_body = EmailRequest,
    responses((status = 202, body = AcceptedResponse), BadRequest)
)]
async fn resend_verification(
    platform: web::Data<Platform>,
    state: State,
    limiter: web::Data<RateLimiter>,
    body: ValidatedJson<EmailRequest>,
) -> Result<HttpResponse, AuthError> {
    let unverified = |u: &UserRow| u.email_verified_at.is_none();
    let recipient = access::mail_recipient(
        &platform,
        &limiter,
        &state,
        "resend",
        &body.email,
        unverified,
    );
    if let Some(user) = recipient.await? {
        let mut tx = platform.db.begin().await?;
        request_verification(&mut tx, &state, &user).await?;
        tx.commit().await?;
    }
    Ok(access::accepted())
}

/// The signed-in user.
#[utoipa::path(
    get, path = "/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = UserResponse), Unauthorized)
)]
async fn me(platform: web::Data<Platform>, user: CurrentUser) -> Result<HttpResponse, AuthError> {
    Ok(HttpResponse::Ok().json(profile(&platform, &user).await?))
}

/// The caller's account with its roles: one statement.
async fn profile(platform: &Platform, user: &CurrentUser) -> Result<UserResponse, AuthError> {
    let (account, roles) = repo::user_with_roles(&platform.db, access::caller(user)?)
        .await?
        .ok_or_else(|| AuthError::NoAccount.unauthenticated())?;
    Ok(access::user_response(&account, roles))
}

/// Change the signed-in user's names.
#[utoipa::path(
    patch, path = "/me", tag = "auth", request_body = UpdateMeRequest, security(("bearer" = [])),
    responses((status = 200, body = UserResponse), Unauthorized, Invalid)
)]
async fn update_me(
    platform: web::Data<Platform>,
    user: CurrentUser,
    body: ValidatedJson<UpdateMeRequest>,
) -> Result<HttpResponse, AuthError> {
    let mut conn = platform.db.acquire().await?;
    let trimmed = |v: &Option<String>| v.as_deref().map(str::trim).map(str::to_owned);
    repo::update_names(
        &mut conn,
        access::caller(&user)?,
        trimmed(&body.first_name).as_deref(),
        trimmed(&body.last_name).as_deref(),
    )
    .await?;
    drop(conn);
    Ok(HttpResponse::Ok().json(profile(&platform, &user).await?))
}

/// Delete the signed-in user's account (needs the password). Publishes `user.deleted`.
#[utoipa::path(
    delete, path = "/me", tag = "auth", request_body = DeleteMeRequest, security(("bearer" = [])),
    responses((status = 204), Unauthorized, Invalid)
)]
async fn delete_me(
    platform: web::Data<Platform>,
    state: State,
    user: CurrentUser,
    body: ValidatedJson<DeleteMeRequest>,
) -> Result<HttpResponse, AuthError> {
    let account = access::account(&mut *platform.db.acquire().await?, &user).await?;
    access::confirm_password(
        &account,
        body.into_inner().password,
        "password",
        "is not the account's password",
    )
    .await?;
    let mut tx = platform.db.begin().await?;
    let revoked =
        access::revoke_sessions(&mut tx, account.id, None, Revoked::AccountDeleted).await?;
    repo::delete_user(&mut tx, account.id).await?;
    publish(
        &mut tx,
        &UserDeleted {
            user_id: account.id.0,
            email: account.email,
        },
    )
    .await?;
    tx.commit().await?;
    access::revoke_access(&platform, &state, &revoked).await;
    Ok(HttpResponse::NoContent().finish())
}
