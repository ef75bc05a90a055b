//! The auth API: registration, verification, login, refresh, sessions, logout, password
//! reset and change, and the signed-in user's profile.

use std::time::Duration;

use crate::platform::http::{Endpoint, Routes};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{SubsecRound, Utc};
use uuid::Uuid;

use super::events::{
    EmailVerified, PasswordChanged, PasswordResetRequested, Secret, UserDeleted, UserRegistered,
    VerificationRequested,
};
use super::model::*;
use super::repo::{self, SessionRow, UserRow};
use super::{AuthState, password, tokens};
use crate::config::RatePolicy;
use crate::platform::error::{ApiError, FieldError, Problem};
use crate::platform::events::publish;
use crate::platform::http::ValidatedJson;
use crate::platform::http::rate_limit::RateLimiter;
use crate::platform::identity::Claims;
use crate::platform::{CurrentUser, Platform};

pub fn configure(routes: &mut Routes) {
    routes
        .add(Endpoint::at("/register").post(register))
        .add(Endpoint::at("/verify-email").post(verify_email))
        .add(Endpoint::at("/verify-email/resend").post(resend_verification))
        .add(Endpoint::at("/login").post(login))
        .add(Endpoint::at("/refresh").post(refresh))
        .add(Endpoint::at("/logout").post(logout))
        .add(
            Endpoint::at("/sessions")
                .get(list_sessions)
                .delete(revoke_other_sessions),
        )
        .add(Endpoint::at("/sessions/{id}").delete(revoke_session))
        .add(Endpoint::at("/forgot-password").post(forgot_password))
        .add(Endpoint::at("/reset-password").post(reset_password))
        .add(Endpoint::at("/change-password").post(change_password))
        .add(
            Endpoint::at("/me")
                .get(me)
                .patch(update_me)
                .delete(delete_me),
        );
}

type State = web::Data<AuthState>;

fn user_response(u: &UserRow, roles: Vec<String>) -> UserResponse {
    UserResponse {
        id: u.id,
        email: u.email.clone(),
        first_name: u.first_name.clone(),
        last_name: u.last_name.clone(),
        email_verified: u.email_verified_at.is_some(),
        roles,
        created_at: u.created_at,
    }
}

fn check_password(state: &AuthState, field: &str, password: &str) -> Result<(), ApiError> {
    let s = &state.settings;
    password::check(
        field,
        password,
        s.min_password_length,
        s.max_password_length,
    )
    .map_err(|e| ApiError::validation(vec![e]))
}

/// A 401 that says nothing about which part was wrong.
fn bad_credentials() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials")
        .detail("The email or password is wrong.")
}

fn session_uuid(user: &CurrentUser) -> Option<Uuid> {
    user.session_id
        .as_deref()
        .and_then(|s| Uuid::parse_str(s).ok())
}

/// Signs the pair for a session's current generation. Deterministic, so the grace window can
/// hand the same pair out again.
async fn issue_pair(
    platform: &Platform,
    state: &AuthState,
    session: &SessionRow,
) -> Result<TokenResponse, ApiError> {
    let mut conn = platform.db.acquire().await?;
    let (roles, permissions) = repo::grants(&mut conn, session.user_id).await?;
    let iat = tokens::epoch(session.rotated_at);
    let ttl = state.settings.access_ttl_secs;
    let claims = Claims {
        sub: session.user_id.to_string(),
        roles,
        permissions,
        jti: tokens::access_jti(session.id, session.generation),
        sid: Some(session.id.to_string()),
        iat,
        exp: iat + ttl as i64,
        iss: platform.tokens.issuer().to_owned(),
        aud: platform.tokens.audience().to_owned(),
    };
    let remaining = (iat + ttl as i64 - Utc::now().timestamp()).max(0) as u64;
    Ok(TokenResponse {
        access_token: platform.tokens.sign(&claims)?,
        token_type: "Bearer",
        expires_in: remaining,
        refresh_token: state.refresh_key.issue(session.id, session.generation),
        refresh_expires_at: session.expires_at,
        session_id: session.id,
    })
}

/// Revokes sessions in the database (done by the caller) and their access tokens everywhere.
async fn revoke_access(platform: &Platform, state: &AuthState, sessions: &[Uuid]) {
    let ttl = Duration::from_secs(state.settings.access_ttl_secs + 60);
    for id in sessions {
        platform
            .revocations
            .revoke_session(&id.to_string(), ttl)
            .await;
    }
}

/// Create an account
///
/// The email is normalised (trimmed, lower-cased). A verification email is sent (through the
/// notifications domain; logged when it is not compiled in).
#[utoipa::path(
    post, path = "/register", tag = "auth", request_body = RegisterRequest,
    responses(
        (status = 201, body = UserResponse),
        (status = 400, description = "Malformed JSON or unknown field", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Email already registered", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, weak or common password", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn register(
    platform: web::Data<Platform>,
    state: State,
    body: ValidatedJson<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    check_password(&state, "password", &body.password)?;
    let user = UserRow {
        id: Uuid::now_v7(),
        email: normalise_email(&body.email),
        password_hash: password::hash(body.password).await?,
        first_name: body.first_name.trim().to_owned(),
        last_name: body.last_name.trim().to_owned(),
        email_verified_at: None,
        // PostgreSQL keeps microseconds: answer with what a later read will show.
        created_at: Utc::now().trunc_subsecs(6),
    };
    let mut tx = platform.db.begin().await?;
    if let Err(e) = repo::insert_user(&mut tx, &user).await {
        let duplicate = e
            .as_database_error()
            .and_then(|d| d.constraint())
            .is_some_and(|c| c == "users_email_key");
        return Err(if duplicate {
            ApiError::conflict("email_taken", "An account with this email already exists.")
        } else {
            e.into()
        });
    }
    repo::grant_role(&mut tx, user.id, "user").await?;
    let admin = state
        .settings
        .admin_emails
        .iter()
        .any(|e| normalise_email(e) == user.email);
    if admin {
        repo::grant_role(&mut tx, user.id, "admin").await?;
    }
    publish(
        &mut tx,
        &UserRegistered {
            user_id: user.id,
            email: user.email.clone(),
            first_name: user.first_name.clone(),
            last_name: user.last_name.clone(),
        },
    )
    .await?;
    request_verification(&mut tx, &state, &user).await?;
    tx.commit().await?;
    let roles = if admin {
        vec!["admin".into(), "user".into()]
    } else {
        vec!["user".into()]
    };
    Ok(HttpResponse::Created().json(user_response(&user, roles)))
}

async fn request_verification(
    conn: &mut sqlx::PgConnection,
    state: &AuthState,
    user: &UserRow,
) -> Result<(), ApiError> {
    let (token, hash) = tokens::one_time();
    let expires_at =
        Utc::now() + chrono::Duration::hours(state.settings.verification_ttl_hours as i64);
    repo::insert_one_time(conn, &hash, user.id, "verify_email", expires_at).await?;
    publish(
        conn,
        &VerificationRequested {
            user_id: user.id,
            email: user.email.clone(),
            first_name: user.first_name.clone(),
            secret: Secret { token, expires_at },
        },
    )
    .await?;
    Ok(())
}

/// Verify an email address with the token from the emailed link (single use).
#[utoipa::path(
    post, path = "/verify-email", tag = "auth", request_body = TokenRequest,
    responses(
        (status = 200, body = UserResponse),
        (status = 400, description = "Unknown, used or expired token", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn verify_email(
    platform: web::Data<Platform>,
    body: ValidatedJson<TokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let mut tx = platform.db.begin().await?;
    let user_id =
        repo::consume_one_time(&mut tx, &tokens::hash_one_time(&body.token), "verify_email")
            .await?
            .ok_or_else(|| {
                ApiError::bad_request("invalid_token", "This link is invalid, used or expired.")
            })?;
    let was_verified = repo::user_by_id(&mut tx, user_id)
        .await?
        .and_then(|u| u.email_verified_at)
        .is_some();
    repo::mark_verified(&mut tx, user_id).await?;
    let user = repo::user_by_id(&mut tx, user_id).await?.ok_or_else(|| {
        ApiError::bad_request("invalid_token", "This link is invalid, used or expired.")
    })?;
    if !was_verified {
        publish(
            &mut tx,
            &EmailVerified {
                user_id,
                email: user.email.clone(),
                first_name: user.first_name.clone(),
            },
        )
        .await?;
    }
    let (roles, _) = repo::grants(&mut tx, user_id).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(user_response(&user, roles)))
}

/// Counts a mail-sending request against the account; false when over the hourly limit.
async fn mail_allowed(limiter: &RateLimiter, state: &AuthState, kind: &str, email: &str) -> bool {
    let policy = RatePolicy {
        requests: state.settings.mail_requests_per_hour,
        window_secs: 3600,
    };
    limiter
        .hit(&format!("basalt:auth:{kind}:{email}"), &policy)
        .await
        .allowed
}

fn accepted() -> HttpResponse {
    HttpResponse::Accepted().json(AcceptedResponse { status: "accepted" })
}

/// Send the verification email again. Always 202, so it reveals nothing about accounts.
#[utoipa::path(
    post, path = "/verify-email/resend", tag = "auth", request_body = EmailRequest,
    responses((status = 202, body = AcceptedResponse), (status = 400, body = Problem, content_type = "application/problem+json"))
)]
async fn resend_verification(
    platform: web::Data<Platform>,
    state: State,
    limiter: web::Data<RateLimiter>,
    body: ValidatedJson<EmailRequest>,
) -> Result<HttpResponse, ApiError> {
    let email = normalise_email(&body.email);
    if let Some(user) = repo::user_by_email(&platform.db, &email).await?
        && user.email_verified_at.is_none()
        && mail_allowed(&limiter, &state, "resend", &email).await
    {
        let mut tx = platform.db.begin().await?;
        request_verification(&mut tx, &state, &user).await?;
        tx.commit().await?;
    }
    Ok(accepted())
}

/// Sign in with email and password
///
/// Returns a short-lived access token and a refresh token. Wrong email and wrong password get
/// the same 401 in about the same time. Repeated failures lock the account (and, past a
/// higher limit, the address) for a while: 429 with Retry-After.
#[utoipa::path(
    post, path = "/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, description = "Wrong email or password", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Email not verified (when required)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failures: locked for a while", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn login(
    req: HttpRequest,
    platform: web::Data<Platform>,
    state: State,
    limiter: web::Data<RateLimiter>,
    body: ValidatedJson<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let email = normalise_email(&body.email);
    let ip = limiter.client_ip(&req);
    let s = &state.settings;
    let account = (
        format!("basalt:auth:fail:acct:{email}"),
        RatePolicy {
            requests: s.max_failures_per_account,
            window_secs: s.lockout_secs,
        },
    );
    let address = (
        format!("basalt:auth:fail:ip:{ip}"),
        RatePolicy {
            requests: s.max_failures_per_ip,
            window_secs: s.lockout_secs,
        },
    );
    // Whatever the lockout settings, never more than 100 failures per account per hour.
    let hourly = (
        format!("basalt:auth:fail:acct-hour:{email}"),
        RatePolicy {
            requests: 100,
            window_secs: 3600,
        },
    );
    for (key, policy) in [&account, &address, &hourly] {
        let d = limiter.peek(key, policy).await;
        if !d.allowed {
            return Err(ApiError::new(StatusCode::TOO_MANY_REQUESTS, "login_locked")
                .detail(format!(
                    "Too many failed sign-ins. Try again in {} s.",
                    d.reset_secs
                ))
                .header(header::RETRY_AFTER, HeaderValue::from(d.reset_secs)));
        }
    }
    let user = repo::user_by_email(&platform.db, &email).await?;
    let ok = password::verify(
        body.password,
        user.as_ref().map(|u| u.password_hash.clone()),
    )
    .await?;
    let Some(user) = user.filter(|_| ok) else {
        for (key, policy) in [&account, &address, &hourly] {
            limiter.hit(key, policy).await;
        }
        return Err(bad_credentials());
    };
    if s.require_verified_email && user.email_verified_at.is_none() {
        return Err(
            ApiError::forbidden("Verify your email address first.").with_code("email_not_verified")
        );
    }
    let now = Utc::now();
    let session = SessionRow {
        id: Uuid::now_v7(),
        user_id: user.id,
        generation: 0,
        rotated_at: now,
        created_at: now,
        last_used_at: now,
        expires_at: now + chrono::Duration::days(s.refresh_ttl_days as i64),
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(512).collect()),
        ip: Some(ip),
        revoked_at: None,
    };
    let mut conn = platform.db.acquire().await?;
    repo::create_session(&mut conn, &session).await?;
    drop(conn);
    // Round to whole seconds as the token does, so the pair can be rebuilt exactly.
    let session = SessionRow {
        rotated_at: trunc_secs(now),
        ..session
    };
    Ok(HttpResponse::Ok().json(issue_pair(&platform, &state, &session).await?))
}

fn trunc_secs(t: chrono::DateTime<Utc>) -> chrono::DateTime<Utc> {
    chrono::DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

/// Exchange a refresh token for a new pair
///
/// Each refresh token works once. The one just replaced keeps returning the same new pair for
/// a few seconds (concurrent tabs); presenting any older one means it was stolen, and the
/// whole session is revoked.
#[utoipa::path(
    post, path = "/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, description = "Invalid, expired, revoked or reused refresh token", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn refresh(
    platform: web::Data<Platform>,
    state: State,
    body: ValidatedJson<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let invalid = || {
        ApiError::new(StatusCode::UNAUTHORIZED, "invalid_refresh_token").detail("Sign in again.")
    };
    let (session_id, generation) = state
        .refresh_key
        .open(&body.refresh_token)
        .ok_or_else(invalid)?;
    let mut tx = platform.db.begin().await?;
    let session = repo::lock_session(&mut tx, session_id)
        .await?
        .ok_or_else(invalid)?;
    if session.revoked_at.is_some() || session.expires_at <= Utc::now() {
        return Err(invalid());
    }
    let grace = chrono::Duration::seconds(state.settings.refresh_grace_secs as i64);
    let current = if generation == session.generation {
        repo::rotate_session(&mut tx, session_id).await?
    } else if generation == session.generation - 1 && Utc::now() - session.rotated_at <= grace {
        session
    } else {
        repo::revoke_session(&mut tx, session_id, "refresh token reused").await?;
        tx.commit().await?;
        revoke_access(&platform, &state, &[session_id]).await;
        tracing::warn!(session = %session_id, "refresh token reused; session revoked");
        return Err(
            ApiError::new(StatusCode::UNAUTHORIZED, "refresh_token_reused").detail(
                "This refresh token was already used; the session has been revoked. Sign in again.",
            ),
        );
    };
    tx.commit().await?;
    let current = SessionRow {
        rotated_at: trunc_secs(current.rotated_at),
        ..current
    };
    Ok(HttpResponse::Ok().json(issue_pair(&platform, &state, &current).await?))
}

/// Sign out: revokes this session and makes the access token fail at once, everywhere.
#[utoipa::path(
    post, path = "/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = Problem, content_type = "application/problem+json"))
)]
async fn logout(
    platform: web::Data<Platform>,
    state: State,
    user: CurrentUser,
) -> Result<HttpResponse, ApiError> {
    if let Some(sid) = session_uuid(&user) {
        let mut conn = platform.db.acquire().await?;
        repo::revoke_session(&mut conn, sid, "logout").await?;
        revoke_access(&platform, &state, &[sid]).await;
    }
    let left = (user.expires_at - Utc::now().timestamp()).max(1) as u64;
    platform
        .revocations
        .revoke_token(&user.token_id, Duration::from_secs(left + 60))
        .await;
    Ok(HttpResponse::NoContent().finish())
}

/// The signed-in user's live sessions, most recently used first.
#[utoipa::path(
    get, path = "/sessions", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Vec<SessionResponse>), (status = 401, body = Problem, content_type = "application/problem+json"))
)]
async fn list_sessions(
    platform: web::Data<Platform>,
    user: CurrentUser,
) -> Result<HttpResponse, ApiError> {
    let current = session_uuid(&user);
    let sessions: Vec<SessionResponse> = repo::live_sessions(&platform.db, user.uuid()?)
        .await?
        .into_iter()
        .map(|s| SessionResponse {
            current: Some(s.id) == current,
            id: s.id,
            user_agent: s.user_agent,
            ip: s.ip,
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            expires_at: s.expires_at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(sessions))
}

/// Revoke one of the signed-in user's sessions (404 for anyone else's).
#[utoipa::path(
    delete, path = "/sessions/{id}", tag = "auth", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Session id")),
    responses((status = 204), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
async fn revoke_session(
    platform: web::Data<Platform>,
    state: State,
    user: CurrentUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let mut tx = platform.db.begin().await?;
    let session = repo::lock_session(&mut tx, id).await?;
    let owner = user.uuid()?;
    if !session.is_some_and(|s| s.user_id == owner && s.revoked_at.is_none()) {
        return Err(ApiError::not_found("No such session."));
    }
    repo::revoke_session(&mut tx, id, "revoked by user").await?;
    tx.commit().await?;
    revoke_access(&platform, &state, &[id]).await;
    Ok(HttpResponse::NoContent().finish())
}

/// Revoke every session of the signed-in user but this one.
#[utoipa::path(
    delete, path = "/sessions", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = Problem, content_type = "application/problem+json"))
)]
async fn revoke_other_sessions(
    platform: web::Data<Platform>,
    state: State,
    user: CurrentUser,
) -> Result<HttpResponse, ApiError> {
    let mut conn = platform.db.acquire().await?;
    let revoked = repo::revoke_sessions(
        &mut conn,
        user.uuid()?,
        session_uuid(&user),
        "signed out elsewhere",
    )
    .await?;
    revoke_access(&platform, &state, &revoked).await;
    Ok(HttpResponse::NoContent().finish())
}

/// Ask for a password-reset email. Always 202, so it reveals nothing about accounts.
#[utoipa::path(
    post, path = "/forgot-password", tag = "auth", request_body = EmailRequest,
    responses((status = 202, body = AcceptedResponse), (status = 400, body = Problem, content_type = "application/problem+json"))
)]
async fn forgot_password(
    platform: web::Data<Platform>,
    state: State,
    limiter: web::Data<RateLimiter>,
    body: ValidatedJson<EmailRequest>,
) -> Result<HttpResponse, ApiError> {
    let email = normalise_email(&body.email);
    if let Some(user) = repo::user_by_email(&platform.db, &email).await?
        && mail_allowed(&limiter, &state, "forgot", &email).await
    {
        let (token, hash) = tokens::one_time();
        let expires_at =
            Utc::now() + chrono::Duration::minutes(state.settings.reset_ttl_minutes as i64);
        let mut tx = platform.db.begin().await?;
        repo::insert_one_time(&mut tx, &hash, user.id, "reset_password", expires_at).await?;
        publish(
            &mut tx,
            &PasswordResetRequested {
                user_id: user.id,
                email: user.email.clone(),
                first_name: user.first_name.clone(),
                secret: Secret { token, expires_at },
            },
        )
        .await?;
        tx.commit().await?;
    }
    Ok(accepted())
}

/// Set a new password with the emailed token; every session of the account is revoked.
#[utoipa::path(
    post, path = "/reset-password", tag = "auth", request_body = ResetPasswordRequest,
    responses(
        (status = 204),
        (status = 400, description = "Unknown, used or expired token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Weak or common password", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn reset_password(
    platform: web::Data<Platform>,
    state: State,
    body: ValidatedJson<ResetPasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    check_password(&state, "password", &body.password)?;
    let hash = password::hash(body.password).await?;
    let mut tx = platform.db.begin().await?;
    let user_id = repo::consume_one_time(
        &mut tx,
        &tokens::hash_one_time(&body.token),
        "reset_password",
    )
    .await?
    .ok_or_else(|| {
        ApiError::bad_request("invalid_token", "This link is invalid, used or expired.")
    })?;
    let user = repo::user_by_id(&mut tx, user_id).await?.ok_or_else(|| {
        ApiError::bad_request("invalid_token", "This link is invalid, used or expired.")
    })?;
    repo::set_password(&mut tx, user_id, &hash).await?;
    // Following the link proves the mailbox too.
    repo::mark_verified(&mut tx, user_id).await?;
    let revoked = repo::revoke_sessions(&mut tx, user_id, None, "password reset").await?;
    publish(
        &mut tx,
        &PasswordChanged {
            user_id,
            email: user.email,
            first_name: user.first_name,
            via: "reset".into(),
        },
    )
    .await?;
    tx.commit().await?;
    revoke_access(&platform, &state, &revoked).await;
    Ok(HttpResponse::NoContent().finish())
}

/// Change the password (needs the current one); other sessions are revoked.
#[utoipa::path(
    post, path = "/change-password", tag = "auth", request_body = ChangePasswordRequest, security(("bearer" = [])),
    responses(
        (status = 204),
        (status = 401, description = "Not signed in, or wrong current password", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Weak or common password", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn change_password(
    platform: web::Data<Platform>,
    state: State,
    user: CurrentUser,
    body: ValidatedJson<ChangePasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let id = user.uuid()?;
    let mut conn = platform.db.acquire().await?;
    let account = repo::user_by_id(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("No such account."))?;
    drop(conn);
    if !password::verify(body.current_password, Some(account.password_hash.clone())).await? {
        return Err(ApiError::validation(vec![FieldError {
            field: "current_password".into(),
            code: "mismatch".into(),
            message: "is not the current password".into(),
        }]));
    }
    check_password(&state, "new_password", &body.new_password)?;
    let hash = password::hash(body.new_password).await?;
    let mut tx = platform.db.begin().await?;
    repo::set_password(&mut tx, id, &hash).await?;
    let revoked =
        repo::revoke_sessions(&mut tx, id, session_uuid(&user), "password changed").await?;
    publish(
        &mut tx,
        &PasswordChanged {
            user_id: id,
            email: account.email,
            first_name: account.first_name,
            via: "change".into(),
        },
    )
    .await?;
    tx.commit().await?;
    revoke_access(&platform, &state, &revoked).await;
    Ok(HttpResponse::NoContent().finish())
}

async fn load_me(
    platform: &Platform,
    user: &CurrentUser,
) -> Result<(UserRow, Vec<String>), ApiError> {
    let mut conn = platform.db.acquire().await?;
    let id = user.uuid()?;
    let account = repo::user_by_id(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("No such account."))?;
    let (roles, _) = repo::grants(&mut conn, id).await?;
    Ok((account, roles))
}

/// The signed-in user.
#[utoipa::path(
    get, path = "/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = UserResponse), (status = 401, body = Problem, content_type = "application/problem+json"))
)]
async fn me(platform: web::Data<Platform>, user: CurrentUser) -> Result<HttpResponse, ApiError> {
    let (account, roles) = load_me(&platform, &user).await?;
    Ok(HttpResponse::Ok().json(user_response(&account, roles)))
}

/// Change the signed-in user's names.
#[utoipa::path(
    patch, path = "/me", tag = "auth", request_body = UpdateMeRequest, security(("bearer" = [])),
    responses((status = 200, body = UserResponse), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json"))
)]
async fn update_me(
    platform: web::Data<Platform>,
    user: CurrentUser,
    body: ValidatedJson<UpdateMeRequest>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = platform.db.acquire().await?;
    let trimmed = |v: &Option<String>| v.as_deref().map(str::trim).map(str::to_owned);
    repo::update_names(
        &mut conn,
        user.uuid()?,
        trimmed(&body.first_name).as_deref(),
        trimmed(&body.last_name).as_deref(),
    )
    .await?;
    drop(conn);
    let (account, roles) = load_me(&platform, &user).await?;
    Ok(HttpResponse::Ok().json(user_response(&account, roles)))
}

/// Delete the signed-in user's account (needs the password). Publishes `user.deleted`.
#[utoipa::path(
    delete, path = "/me", tag = "auth", request_body = DeleteMeRequest, security(("bearer" = [])),
    responses((status = 204), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json"))
)]
async fn delete_me(
    platform: web::Data<Platform>,
    state: State,
    user: CurrentUser,
    body: ValidatedJson<DeleteMeRequest>,
) -> Result<HttpResponse, ApiError> {
    let (account, _) = load_me(&platform, &user).await?;
    if !password::verify(
        body.into_inner().password,
        Some(account.password_hash.clone()),
    )
    .await?
    {
        return Err(ApiError::validation(vec![FieldError {
            field: "password".into(),
            code: "mismatch".into(),
            message: "is not the account's password".into(),
        }]));
    }
    let mut tx = platform.db.begin().await?;
    let revoked = repo::revoke_sessions(&mut tx, account.id, None, "account deleted").await?;
    repo::delete_user(&mut tx, account.id).await?;
    publish(
        &mut tx,
        &UserDeleted {
            user_id: account.id,
            email: account.email,
        },
    )
    .await?;
    tx.commit().await?;
    revoke_access(&platform, &state, &revoked).await;
    Ok(HttpResponse::NoContent().finish())
}
