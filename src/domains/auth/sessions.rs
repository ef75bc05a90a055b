//! Sessions: sign-in, refresh, sign-out, and the signed-in user's list of sessions.

use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use utoipa::OpenApi;

use super::access::{self, Revoked};
use super::error::AuthError;
use super::events::{UserLoggedIn, UserLoggedOut};
use super::model::*;
use super::password;
use super::repo::{self, SessionRow};
use super::state::State;
use crate::config::RatePolicy;
use crate::platform::error::responses::{BadRequest, Forbidden, NotFound, TooMany, Unauthorized};
use crate::platform::events::publish;
use crate::platform::http::rate_limit::RateLimiter;
use crate::platform::http::{Endpoint, Routes, ValidatedJson};
use crate::platform::page::{Page, PageQuery};
use crate::platform::{CurrentUser, Platform};

#[derive(OpenApi)]
#[openapi(paths(
    login,
    refresh,
    logout,
    list_sessions,
    revoke_session,
    revoke_other_sessions
))]
pub struct SessionsApi;

pub fn configure(routes: &mut Routes) {
    routes
        .add(Endpoint::at("/login").post(login))
        .add(Endpoint::at("/refresh").post(refresh))
        .add(Endpoint::at("/logout").post(logout))
        .add(
            Endpoint::at("/sessions")
                .get(list_sessions)
                .delete(revoke_other_sessions),
        )
        .add(Endpoint::at("/sessions/{id}").delete(revoke_session));
}

/// Sign in with email and password
///
/// Returns a short-lived access token and a refresh token. Wrong email and wrong password get
/// the same 401 `invalid_credentials` in about the same time. Repeated failures lock the
/// account (and, past a higher limit, the address) for a while: 429 `login_locked` with
/// Retry-After. 403 `email_not_verified` when verification is required and pending.
#[utoipa::path(
    post, path = "/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), Unauthorized, Forbidden, TooMany)
)]
async fn login(
    req: HttpRequest,
    platform: web::Data<Platform>,
    state: State,
    limiter: web::Data<RateLimiter>,
    body: ValidatedJson<LoginRequest>,
) -> Result<HttpResponse, AuthError> {
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
    // Every attempt counts as a failure before the password is looked at, each counter in one
    // atomic step: checked first and counted after the (slow) hash, parallel attempts all
    // passed the check before any was counted. A success gives its counts back.
    let mut locked: Option<u64> = None;
    for (key, policy) in [&account, &address, &hourly] {
        let d = limiter.hit(key, policy).await;
        if !d.allowed {
            locked = Some(locked.unwrap_or(0).max(d.reset_secs));
        }
    }
    if let Some(reset) = locked {
        return Err(AuthError::LoginLocked(reset)
            .with_header(header::RETRY_AFTER, HeaderValue::from(reset)));
    }
    let user = repo::user_by_email(&platform.db, &email).await?;
    let ok = password::verify(
        body.password,
        user.as_ref().map(|u| u.password_hash.clone()),
    )
    .await?;
    let Some(user) = user.filter(|_| ok) else {
        return Err(AuthError::InvalidCredentials);
    };
    for (key, _) in [&account, &address, &hourly] {
        limiter.refund(key).await;
    }
    if s.require_verified_email && user.email_verified_at.is_none() {
        return Err(AuthError::EmailNotVerified);
    }
    access::act_as(user.id);
    let now = Utc::now();
    let session = SessionRow {
        id: SessionId::new(),
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
    let mut tx = platform.db.begin().await?;
    repo::create_session(&mut tx, &session).await?;
    publish(
        &mut tx,
        &UserLoggedIn {
            user_id: user.id.0,
            session_id: session.id.0,
            email: user.email,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(access::issue_pair(&platform, &state, &session).await?))
}

/// Exchange a refresh token for a new pair
///
/// Each refresh token works once. The one just replaced keeps returning the same new pair for
/// a few seconds (concurrent tabs); presenting any older one means it was stolen, and the
/// whole session is revoked (401 `refresh_token_reused`). Invalid, expired or revoked
/// tokens: 401 `invalid_refresh_token`.
#[utoipa::path(
    post, path = "/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse), Unauthorized)
)]
async fn refresh(
    platform: web::Data<Platform>,
    state: State,
    body: ValidatedJson<RefreshRequest>,
) -> Result<HttpResponse, AuthError> {
    let (session_id, generation) = state
        .refresh_key
        .open(&body.refresh_token)
        .ok_or(AuthError::InvalidRefreshToken)?;
    let session_id = SessionId(session_id);
    let mut tx = platform.db.begin().await?;
    let session = repo::lock_session(&mut tx, session_id)
        .await?
        .ok_or(AuthError::InvalidRefreshToken)?;
    if session.revoked_at.is_some() || session.expires_at <= Utc::now() {
        return Err(AuthError::InvalidRefreshToken);
    }
    let grace = chrono::Duration::seconds(state.settings.refresh_grace_secs as i64);
    let current = if generation == session.generation {
        repo::rotate_session(&mut tx, session_id).await?
    } else if generation == session.generation - 1 && Utc::now() - session.rotated_at <= grace {
        session
    } else {
        access::revoke_session(&mut tx, session_id, Revoked::RefreshTokenReused).await?;
        tx.commit().await?;
        access::revoke_access(&platform, &state, &[session_id]).await;
        tracing::warn!(session = %session_id, "refresh token reused; session revoked");
        return Err(AuthError::RefreshTokenReused);
    };
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(access::issue_pair(&platform, &state, &current).await?))
}

/// Sign out: revokes this session and makes the access token fail at once, everywhere.
#[utoipa::path(
    post, path = "/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204), Unauthorized)
)]
async fn logout(
    platform: web::Data<Platform>,
    state: State,
    user: CurrentUser,
) -> Result<HttpResponse, AuthError> {
    if let Some(sid) = access::caller_session(&user) {
        let mut tx = platform.db.begin().await?;
        if let Some(owner) = repo::revoke_session(&mut tx, sid, "logout").await? {
            publish(
                &mut tx,
                &UserLoggedOut {
                    user_id: owner.0,
                    session_id: sid.0,
                },
            )
            .await?;
        }
        tx.commit().await?;
        access::revoke_access(&platform, &state, &[sid]).await;
    }
    let left = (user.expires_at - Utc::now().timestamp()).max(1) as u64;
    platform
        .revocations
        .revoke_token(&user.token_id, Duration::from_secs(left + 60))
        .await;
    Ok(HttpResponse::NoContent().finish())
}

/// The signed-in user's live sessions, newest first.
#[utoipa::path(
    get, path = "/sessions", tag = "auth", params(PageQuery), security(("bearer" = [])),
    responses((status = 200, body = Page<SessionResponse>), BadRequest, Unauthorized)
)]
async fn list_sessions(
    platform: web::Data<Platform>,
    user: CurrentUser,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, AuthError> {
    let current = access::caller_session(&user);
    let after = query.cursor::<(DateTime<Utc>, SessionId)>()?;
    let rows =
        repo::live_sessions(&platform.db, access::caller(&user)?, after, query.fetch()?).await?;
    let page = Page::from_rows(
        rows,
        query.limit()?,
        |s| (s.created_at, s.id),
        |s| SessionResponse {
            current: Some(s.id) == current,
            id: s.id,
            user_agent: s.user_agent,
            ip: s.ip,
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            expires_at: s.expires_at,
        },
    );
    Ok(HttpResponse::Ok().json(page))
}

/// Revoke one of the signed-in user's sessions (404 for anyone else's).
#[utoipa::path(
    delete, path = "/sessions/{id}", tag = "auth", security(("bearer" = [])),
    params(("id" = SessionId, Path, description = "Session id")),
    responses((status = 204), Unauthorized, NotFound)
)]
async fn revoke_session(
    platform: web::Data<Platform>,
    state: State,
    user: CurrentUser,
    id: web::Path<SessionId>,
) -> Result<HttpResponse, AuthError> {
    let id = id.into_inner();
    let owner = access::caller(&user)?;
    let mut tx = platform.db.begin().await?;
    let session = repo::lock_session(&mut tx, id).await?;
    if !session.is_some_and(|s| s.user_id == owner && s.revoked_at.is_none()) {
        return Err(AuthError::SessionNotFound);
    }
    access::revoke_session(&mut tx, id, Revoked::ByUser).await?;
    tx.commit().await?;
    access::revoke_access(&platform, &state, &[id]).await;
    Ok(HttpResponse::NoContent().finish())
}

/// Revoke every session of the signed-in user but this one.
#[utoipa::path(
    delete, path = "/sessions", tag = "auth", security(("bearer" = [])),
    responses((status = 204), Unauthorized)
)]
async fn revoke_other_sessions(
    platform: web::Data<Platform>,
    state: State,
    user: CurrentUser,
) -> Result<HttpResponse, AuthError> {
    let mut tx = platform.db.begin().await?;
    let revoked = access::revoke_sessions(
        &mut tx,
        access::caller(&user)?,
        access::caller_session(&user),
        Revoked::ByUser,
    )
    .await?;
    tx.commit().await?;
    access::revoke_access(&platform, &state, &revoked).await;
    Ok(HttpResponse::NoContent().finish())
}
