//! Request and response bodies of the notifications API.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::platform::page::Page;

/// Kinds of message a user can choose about. `security` mail (verification, password reset,
/// password changed) cannot be turned off.
pub const CATEGORIES: &[&str] = &["security", "account", "orders", "vendors"];
pub const SECURITY: &str = "security";

#[derive(Debug, Serialize, ToSchema)]
pub struct InboxItem {
    pub id: Uuid,
    pub category: String,
    pub title: String,
    pub body: String,
    pub link: Option<String>,
    pub read: bool,
    pub created_at: DateTime<Utc>,
}

/// A page of the inbox, and the unread count across all pages.
#[derive(Debug, Serialize, ToSchema)]
pub struct InboxPage {
    #[serde(flatten)]
    pub page: Page<InboxItem>,
    /// Unread notifications in all pages.
    pub unread: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Preference {
    pub category: String,
    pub email: bool,
    pub in_app: bool,
    /// False for `security`: those emails always go out.
    pub can_disable_email: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferenceRequest {
    pub email: Option<bool>,
    pub in_app: Option<bool>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct UnsubscribeQuery {
    pub user: Uuid,
    pub category: String,
    pub token: String,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct MessageQuery {
    /// queued, sending, sent or failed.
    pub status: Option<String>,
    /// 1 to 100, default 25.
    pub limit: Option<i64>,
    /// The `next` cursor of the previous page.
    pub after: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageResponse {
    pub id: Uuid,
    pub event_id: Option<Uuid>,
    pub template: String,
    pub category: String,
    pub to: String,
    pub subject: String,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatusResponse {
    pub status: String,
}
