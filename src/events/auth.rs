//! The auth domain's events (source `auth`), declared here rather than in the domain so the
//! domains that consume them (notifications mails the links) decode them whether or not
//! `auth` is compiled into the same binary (tokens, and events, may come from another Basalt).
//!
//! Single-use tokens travel under `payload.secret`, which the Kafka mirror strips: they reach
//! the in-process notifications subscriber that mails the link, never the outside world.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserRegistered {
    pub user_id: Uuid,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Secret {
    pub token: String,
    pub expires_at: DateTime<Utc>,
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
    /// `revoked` (by the user), `password_changed`, `password_reset`, `account_deleted` or
    /// `refresh_token_reused`.
    pub reason: String,
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
}
