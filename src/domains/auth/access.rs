//! What several auth resources share: who the caller is and their account, password checks,
//! issuing a token pair for a session, revoking sessions (with their event) and their access
//! tokens, single-use tokens for emailed links, and who a mail-sending request may mail.

use std::time::Duration;

use actix_web::HttpResponse;
use chrono::Utc;
use sqlx::PgConnection;

use super::error::AuthError;
use super::events::{CredentialsRevoked, Secret, SessionsRevoked};
use super::model::{
    AcceptedResponse, SessionId, TokenResponse, UserId, UserResponse, normalise_email,
};
use super::repo::{self, SessionRow, UserRow};
use super::state::AuthState;
use super::{password, tokens};
use crate::config::RatePolicy;
use crate::platform::events::publish;
use crate::platform::http::rate_limit::RateLimiter;
use crate::platform::http::request_id;
use crate::platform::identity::Claims;
use crate::platform::{CurrentUser, Platform};

/// The caller's account id (403 for a token issued elsewhere for something else).
pub fn caller(user: &CurrentUser) -> Result<UserId, AuthError> {
    Ok(UserId(user.uuid()?))
}

/// The session the caller's access token was issued for, if any.
pub fn caller_session(user: &CurrentUser) -> Option<SessionId> {
    user.session_id.as_deref().and_then(|s| s.parse().ok())
}

/// For requests that prove who they are without an access token (a password, an emailed
/// link): the events they publish name that account as their actor, as a signed-in
/// request's would.
pub fn act_as(user: UserId) {
    request_id::set_actor(format!("user:{user}"));
}

/// The caller's account; 401 when it is gone (deleted since the token was issued).
pub async fn account(conn: &mut PgConnection, user: &CurrentUser) -> Result<UserRow, AuthError> {
    repo::user_by_id(conn, caller(user)?)
        .await?
        .ok_or_else(|| AuthError::NoAccount.unauthenticated())
}

pub fn user_response(u: &UserRow, roles: Vec<String>) -> UserResponse {
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

/// Checks a new password against the policy: a 422 naming `field`.
pub fn check_password(state: &AuthState, field: &str, password: &str) -> Result<(), AuthError> {
    let s = &state.settings;
    password::check(
        field,
        password,
        s.min_password_length,
        s.max_password_length,
    )
    .map_err(|e| AuthError::invalid(vec![e]))
}

/// Checks the account's password where a signed-in request must confirm it: a wrong one is
/// a 422 on `field` (the caller is signed in; the request is what is wrong).
pub async fn confirm_password(
    account: &UserRow,
    password: String,
    field: &str,
    message: &str,
) -> Result<(), AuthError> {
    if password::verify(password, Some(account.password_hash.clone())).await? {
        Ok(())
    } else {
        Err(AuthError::invalid_field(field, "mismatch", message))
    }
}

/// Signs the pair for a session's current generation. Deterministic, so the grace window can
/// hand the same pair out again.
pub async fn issue_pair(
    platform: &Platform,
    state: &AuthState,
    session: &SessionRow,
) -> Result<TokenResponse, AuthError> {
    let mut conn = platform.db.acquire().await?;
    let (roles, permissions) = repo::grants(&mut conn, session.user_id).await?;
    let email_verified = repo::is_verified(&mut conn, session.user_id).await?;
    drop(conn);
    let iat = tokens::epoch(session.rotated_at);
    let ttl = state.settings.access_ttl_secs;
    let claims = Claims {
        sub: session.user_id.to_string(),
        roles,
        permissions,
        jti: tokens::access_jti(session.id.0, session.generation),
        email_verified,
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
        refresh_token: state.refresh_key.issue(session.id.0, session.generation),
        refresh_expires_at: session.expires_at,
        session_id: session.id,
    })
}

/// Why sessions were revoked: stored with them and sent in `user.sessions_revoked`.
#[derive(Debug, Clone, Copy)]
pub enum Revoked {
    /// By their user (one session, or every other one).
    ByUser,
    PasswordChanged,
    PasswordReset,
    /// The first proof of the mailbox (see [`first_verification`]).
    EmailVerified,
    AccountDeleted,
    /// A refresh token was presented after its successor: stolen, so the session dies.
    RefreshTokenReused,
}

impl Revoked {
    pub fn reason(self) -> &'static str {
        match self {
            Self::ByUser => "revoked",
            Self::PasswordChanged => "password_changed",
            Self::PasswordReset => "password_reset",
            Self::EmailVerified => "email_verified",
            Self::AccountDeleted => "account_deleted",
            Self::RefreshTokenReused => "refresh_token_reused",
        }
    }
}

/// Publishes `user.sessions_revoked` for sessions the caller's transaction revoked.
async fn publish_revoked(
    conn: &mut PgConnection,
    user: UserId,
    sessions: &[SessionId],
    why: Revoked,
) -> Result<(), sqlx::Error> {
    publish(
        conn,
        &SessionsRevoked {
            user_id: user.0,
            session_ids: sessions.iter().map(|s| s.0).collect(),
            reason: why.reason().to_owned(),
        },
    )
    .await?;
    Ok(())
}

/// Revokes one live session, in the caller's transaction, with its event; false when it
/// was revoked already. Then [`revoke_access`].
pub async fn revoke_session(
    conn: &mut PgConnection,
    id: SessionId,
    why: Revoked,
) -> Result<bool, sqlx::Error> {
    let Some(owner) = repo::revoke_session(&mut *conn, id, why.reason()).await? else {
        return Ok(false);
    };
    publish_revoked(conn, owner, &[id], why).await?;
    Ok(true)
}

/// Revokes every live session of `user` but `keep`, in the caller's transaction, with its
/// event (none when there was nothing to revoke); returns the ids for [`revoke_access`].
pub async fn revoke_sessions(
    conn: &mut PgConnection,
    user: UserId,
    keep: Option<SessionId>,
    why: Revoked,
) -> Result<Vec<SessionId>, sqlx::Error> {
    let revoked = repo::revoke_sessions(&mut *conn, user, keep, why.reason()).await?;
    if !revoked.is_empty() {
        publish_revoked(conn, user, &revoked, why).await?;
    }
    Ok(revoked)
}

/// Once the revocation has committed: makes the sessions' access tokens fail everywhere.
pub async fn revoke_access(platform: &Platform, state: &AuthState, sessions: &[SessionId]) {
    let ttl = Duration::from_secs(state.settings.access_ttl_secs + 60);
    for id in sessions {
        platform
            .revocations
            .revoke_session(&id.to_string(), ttl)
            .await;
    }
}

/// Stores a new single-use token for `purpose` (only its hash), valid for `ttl`: the secret
/// the event that mails the link carries (a nonce; the token is derived from it).
pub async fn one_time_token(
    conn: &mut PgConnection,
    state: &AuthState,
    user: UserId,
    purpose: &str,
    ttl: chrono::Duration,
) -> Result<Secret, sqlx::Error> {
    let (nonce, hash) = tokens::one_time(&state.identity);
    let expires_at = Utc::now() + ttl;
    repo::insert_one_time(conn, &hash, user, purpose, expires_at).await?;
    Ok(Secret { nonce, expires_at })
}

/// What proving the mailbox for the first time (a verification link, or the reset link of an
/// unverified account) does, in the caller's transaction. An address in `auth.admin_emails`
/// becomes an administrator now, never at registration: anyone can register any address.
/// And whatever was opened before (sessions, API keys, webhook endpoints) is revoked, since
/// whoever registered the address may not be its owner (account pre-hijacking). Returns the
/// sessions for [`revoke_access`].
pub async fn first_verification(
    conn: &mut PgConnection,
    state: &AuthState,
    user: &UserRow,
) -> Result<Vec<SessionId>, sqlx::Error> {
    grant_admin_if_listed(&mut *conn, state, user).await?;
    revoke_credentials(conn, user.id, Revoked::EmailVerified).await
}

/// `auth.admin_emails` become administrators once their owner has proven the address.
pub async fn grant_admin_if_listed(
    conn: &mut PgConnection,
    state: &AuthState,
    user: &UserRow,
) -> Result<(), sqlx::Error> {
    let admins = &state.settings.admin_emails;
    if admins.iter().any(|e| normalise_email(e) == user.email) {
        repo::grant_role(conn, user.id, "admin").await?;
    }
    Ok(())
}

/// Revokes everything acting for `user` (sessions, API keys; webhook endpoints through
/// `user.credentials_revoked`), in the caller's transaction. Returns the sessions for
/// [`revoke_access`].
pub async fn revoke_credentials(
    conn: &mut PgConnection,
    user: UserId,
    why: Revoked,
) -> Result<Vec<SessionId>, sqlx::Error> {
    let sessions = revoke_sessions(&mut *conn, user, None, why).await?;
    let api_keys = repo::revoke_api_keys_of(&mut *conn, user).await?;
    publish(
        conn,
        &CredentialsRevoked {
            user_id: user.0,
            reason: why.reason().to_owned(),
            before: Utc::now(),
            api_keys,
        },
    )
    .await?;
    Ok(sessions)
}

/// The account a mail-sending request (a verification resend, a forgotten password) is for:
/// one with this email that `wants` the mail and is within its hourly limit of such
/// requests. `None` otherwise, which the caller answers like a success (202), so the answer
/// reveals nothing about accounts.
pub async fn mail_recipient(
    platform: &Platform,
    limiter: &RateLimiter,
    state: &AuthState,
    kind: &str,
    email: &str,
    wants: impl Fn(&UserRow) -> bool,
) -> Result<Option<UserRow>, AuthError> {
    let email = normalise_email(email);
    let Some(user) = repo::user_by_email(&platform.db, &email).await? else {
        return Ok(None);
    };
    let policy = RatePolicy {
        requests: state.settings.mail_requests_per_hour,
        window_secs: 3600,
    };
    let key = format!("basalt:auth:{kind}:{email}");
    let allowed = wants(&user) && limiter.hit(&key, &policy).await.allowed;
    Ok(allowed.then_some(user))
}

/// 202 whether or not the account exists, so the answer reveals nothing about accounts.
pub fn accepted() -> HttpResponse {
    HttpResponse::Accepted().json(AcceptedResponse { status: "accepted" })
}
