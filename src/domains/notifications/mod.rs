//! The notifications domain: email (SMTP through lettre, or .eml files without SMTP) from
//! templates, with a delivery log and retries; in-app notifications; per-user preferences with
//! one-click unsubscribe; signed outbound webhooks with retries and replay. The only domain
//! that sends mail or calls out to webhooks.
//!
//! Schema `notifications`; routes under `/api/v1/notifications`. Consumes the auth domain's
//! `user.verification_requested`, `user.password_reset_requested`, `user.password_changed`,
//! `user.email_verified`, `user.credentials_revoked` and `user.deleted`, and keeps a read
//! model of account addresses (`recipients`) from `user.registered`, `user.email_verified`
//! and `user.logged_in` (erased at `user.deleted`); the orders domain's `order.created` and
//! `order.paid` (mailed to the cart's email, else the account's). Calls no other domain.

mod delivery;
mod error;
mod inbox;
mod mailer;
mod messages;
mod model;
mod preferences;
mod repo;
mod sender;
mod settings;
mod ssrf;
mod state;
mod subscribers;
mod templates;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::Migrator;
use utoipa::OpenApi;

use crate::platform::domain::DomainState;
use crate::platform::events::Subscriber;
use crate::platform::health::HealthCheck;
use crate::platform::http::Routes;
use crate::platform::jobs::Job;
use crate::platform::{Domain, Platform};

pub use settings::NotificationSettings;

use error::NotifyError;
use state::NotifyState;

static MIGRATIONS: Migrator = sqlx::migrate!("migrations/notifications");

#[derive(Default)]
pub struct Notifications {
    state: DomainState<NotifyState>,
}

impl Domain for Notifications {
    fn name(&self) -> &'static str {
        "notifications"
    }

    fn schema(&self) -> &'static str {
        "notifications"
    }

    fn init(&self, platform: &Platform) -> anyhow::Result<()> {
        self.state.set(NotifyState::build(platform)?);
        Ok(())
    }

    fn migrations(&self) -> Option<&'static Migrator> {
        Some(&MIGRATIONS)
    }

    fn routes(&self, routes: &mut Routes) {
        self.state.register(routes);
        inbox::configure(routes);
        preferences::configure(routes);
        messages::configure(routes);
        webhooks::configure(routes);
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        let mut doc = inbox::InboxApi::openapi();
        doc.merge(preferences::PreferencesApi::openapi());
        doc.merge(messages::MessagesApi::openapi());
        doc.merge(webhooks::WebhooksApi::openapi());
        doc
    }

    fn error_codes(&self) -> &'static [(&'static str, actix_web::http::StatusCode)] {
        NotifyError::CODES
    }

    fn subscribers(&self, _platform: &Platform) -> Vec<Arc<dyn Subscriber>> {
        self.state
            .get()
            .map(|s| {
                vec![
                    subscribers::auth_events(s.clone()),
                    subscribers::order_events(s),
                    delivery::subscriber(),
                ]
            })
            .unwrap_or_default()
    }

    fn health_checks(&self, _platform: &Platform) -> Vec<HealthCheck> {
        let Some(state) = self.state.get() else {
            return Vec::new();
        };
        // Mail being down delays messages (they wait and retry); it does not stop the API.
        vec![HealthCheck::new("mail", false, move || {
            let state = state.clone();
            Box::pin(async move { state.mailer.check().await })
        })]
    }

    fn jobs(&self, _platform: &Platform) -> Vec<Job> {
        let Some(state) = self.state.get() else {
            return Vec::new();
        };
        let every = Duration::from_millis(state.settings.poll_interval_ms);
        let hooks = state.clone();
        vec![
            Job::new("notifications.sender", every, move || {
                let state = state.clone();
                Box::pin(async move { sender::send_due(&state).await.map(|_| ()) })
            })
            .woken_by(repo::MESSAGES_CHANNEL),
            Job::new("notifications.webhooks", every, move || {
                let state = hooks.clone();
                Box::pin(async move { delivery::send_due(&state).await.map(|_| ()) })
            })
            .woken_by(repo::DELIVERIES_CHANNEL),
        ]
    }
}
