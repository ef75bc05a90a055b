//! The notifications domain: email over SMTP, in-app notifications, signed outbound webhooks.
//!
//! Schema `notifications`; routes under `/api/v1/notifications`. Registered in `src/domains/mod.rs`; its
//! endpoints, events and migrations arrive with the domain's own issue.

use crate::platform::Domain;

#[derive(Default)]
pub struct Notifications;

impl Domain for Notifications {
    fn name(&self) -> &'static str {
        "notifications"
    }

    fn schema(&self) -> &'static str {
        "notifications"
    }
}
