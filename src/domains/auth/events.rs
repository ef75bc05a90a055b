//! Events the auth domain publishes (source `auth`). Single-use tokens travel under
//! `payload.secret`, which the Kafka mirror strips: they reach the in-process notifications
//! subscriber that mails the link, never the outside world.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::platform::events::DomainEvent;

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

macro_rules! auth_events {
    ($($ty:ident => $name:literal),* $(,)?) => {
        $(impl DomainEvent for $ty {
            const TYPE: &'static str = $name;
            const SOURCE: &'static str = "auth";
            fn aggregate_id(&self) -> String {
                self.user_id.to_string()
            }
        })*
    };
}

auth_events! {
    UserRegistered => "user.registered",
    VerificationRequested => "user.verification_requested",
    EmailVerified => "user.email_verified",
    PasswordResetRequested => "user.password_reset_requested",
    PasswordChanged => "user.password_changed",
    UserDeleted => "user.deleted",
}
