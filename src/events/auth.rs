//! The auth domain's events (source `auth`), declared here rather than in the domain so the
//! domains that consume them (notifications mails the links) decode them whether or not
//! `auth` is compiled into the same binary (tokens, and events, may come from another Basalt).
//!
//! Single-use tokens never travel at all: `payload.secret` carries a random nonce, and the
//! token is an HMAC of it under a key derived from the identity secret ([`Secret::token`]),
//! so whoever reads the outbox (or a database backup) holds nothing that resets a password.
//! The mailer derives the token when it sends; the Kafka mirror strips `secret` anyway.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::config::IdentitySettings;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserRegistered {
    pub user_id: Uuid,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
}

/// What a single-use link needs: the nonce its token is derived from, and its expiry.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Secret {
    /// Random; useless without the server's identity secret (see [`Secret::token`]).
    pub nonce: String,
    pub expires_at: DateTime<Utc>,
}

impl Secret {
    /// The token of the emailed link: base64url(HMAC-SHA256(k, nonce)), `k` derived from
    /// `identity.jwt_secret`. Only processes holding that secret (this deployment) can make it.
    pub fn token(&self, identity: &IdentitySettings) -> String {
        one_time_token(identity, &self.nonce)
    }
}

/// See [`Secret::token`].
pub fn one_time_token(identity: &IdentitySettings, nonce: &str) -> String {
    use base64::Engine;
    use hmac::{Hmac, Mac};
    use secrecy::ExposeSecret;
    type HmacSha256 = Hmac<sha2::Sha256>;
    let mac = |key: &[u8], data: &[u8]| {
        let mut m = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| {
            unreachable!("HMAC accepts keys of any length");
        });
        m.update(data);
        m.finalize().into_bytes()
    };
    let key = mac(
        identity.jwt_secret.expose_secret().as_bytes(),
        b"basalt.auth.one-time-token-key.v1",
    );
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac(&key, nonce.as_bytes()))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VerificationRequested {
    pub user_id: Uuid,
    pub email: String,
    pub first_name: String,
    pub secret: Secret,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EmailVerified {
    pub user_id: Uuid,
    pub email: String,
    pub first_name: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PasswordResetRequested {
    pub user_id: Uuid,
    pub email: String,
    pub first_name: String,
    pub secret: Secret,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PasswordChanged {
    pub user_id: Uuid,
    pub email: String,
    pub first_name: String,
    /// `change` (signed in) or `reset` (through an emailed token).
    pub via: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserDeleted {
    pub user_id: Uuid,
    pub email: String,
}

/// A sign-in opened a session (the seeds' `user.logged-in`; see the README's topic mapping).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserLoggedIn {
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub email: String,
}

/// A session was signed out by its own user.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserLoggedOut {
    pub user_id: Uuid,
    pub session_id: Uuid,
}

/// Sessions were revoked: one or all the others by their user, the others at a password
/// change, all at a password reset or an account's deletion, or one whose refresh token was
/// used twice (stolen).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionsRevoked {
    pub user_id: Uuid,
    pub session_ids: Vec<Uuid>,
    /// `revoked` (by the user), `password_changed`, `password_reset`, `email_verified`,
    /// `account_deleted` or `refresh_token_reused`.
    pub reason: String,
}

/// Everything that acts for an account and was opened before `before` is revoked: its
/// sessions, its API keys (both done by auth) and its webhook endpoints (disabled by
/// notifications, which consumes this). Published when a password is reset and when an email
/// address is verified for the first time: whoever registered the address first, and
/// prepared access for later (account pre-hijacking), loses it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CredentialsRevoked {
    pub user_id: Uuid,
    /// `password_reset` or `email_verified`.
    pub reason: String,
    pub before: DateTime<Utc>,
    /// How many API keys were revoked.
    pub api_keys: u64,
}

crate::declare_events! {
    source = "auth";
    UserRegistered = "user.registered" by user_id,
    VerificationRequested = "user.verification_requested" by user_id,
    EmailVerified = "user.email_verified" by user_id,
    PasswordResetRequested = "user.password_reset_requested" by user_id,
    PasswordChanged = "user.password_changed" by user_id,
    UserDeleted = "user.deleted" by user_id,
    UserLoggedIn = "user.logged_in" by user_id,
    UserLoggedOut = "user.logged_out" by user_id,
    SessionsRevoked = "user.sessions_revoked" by user_id,
    CredentialsRevoked = "user.credentials_revoked" by user_id,
}
