//! The notifications domain: email (SMTP through lettre, or .eml files without SMTP) from
//! templates, with a delivery log and retries; in-app notifications; per-user preferences with
//! one-click unsubscribe; signed outbound webhooks with retries and replay. The only domain
//! that sends mail or calls out to webhooks.
//!
//! Schema `notifications`; routes under `/api/v1/notifications`. Consumes the auth domain's
//! `user.verification_requested`, `user.password_reset_requested`, `user.password_changed`,
//! `user.email_verified` and `user.deleted`; calls no other domain.

mod mailer;
mod model;
mod repo;
mod routes;
mod sender;
mod settings;
mod ssrf;
mod subscribers;
mod templates;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use sha2::Sha256;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use utoipa::OpenApi;
use uuid::Uuid;

use crate::platform::domain::DomainState;
use crate::platform::events::Subscriber;
use crate::platform::health::HealthCheck;
use crate::platform::http::Routes;
use crate::platform::jobs::Job;
use crate::platform::{Domain, Platform};

pub use settings::NotificationSettings;

static MIGRATIONS: Migrator = sqlx::migrate!("migrations/notifications");

/// What handlers, subscribers and the sender share, built once by `init`.
pub struct NotifyState {
    settings: NotificationSettings,
    db: PgPool,
    mailer: mailer::Mailer,
    templates: templates::Templates,
    /// Where links in mail point (the front end).
    links_base: String,
    /// Where the unsubscribe endpoint is (this API).
    api_base: String,
    unsubscribe_key: [u8; 32],
    /// For webhooks: no redirects (a redirect could lead past the address check).
    http: reqwest::Client,
}

fn unsubscribe_token(state: &NotifyState, user: Uuid, category: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&state.unsubscribe_key) else {
        return String::new();
    };
    mac.update(user.as_bytes());
    mac.update(category.as_bytes());
    B64.encode(mac.finalize().into_bytes())
}

fn unsubscribe_url(state: &NotifyState, user: Uuid, category: &str) -> String {
    format!(
        "{}/api/v1/notifications/unsubscribe?user={user}&category={category}&token={}",
        state.api_base,
        unsubscribe_token(state, user, category)
    )
}

#[derive(Default)]
pub struct Notifications {
    state: DomainState<NotifyState>,
}

#[derive(OpenApi)]
#[openapi(
    paths(
        routes::list_inbox,
        routes::read_one,
        routes::read_all,
        routes::delete_one,
        routes::list_preferences,
        routes::set_preference,
        routes::unsubscribe,
        routes::list_messages,
        routes::retry_message,
        webhooks::create_endpoint,
        webhooks::list_endpoints,
        webhooks::get_endpoint,
        webhooks::delete_endpoint,
        webhooks::rotate_secret,
        webhooks::enable_endpoint,
        webhooks::list_deliveries,
        webhooks::replay_one,
        webhooks::replay_range,
    ),
    tags(
        (name = "notifications", description = "Inbox, preferences, unsubscribe and the email delivery log"),
        (name = "webhooks", description = "Signed outbound webhooks (Standard Webhooks) with retries and replay")
    )
)]
struct NotificationsApi;

impl Domain for Notifications {
    fn name(&self) -> &'static str {
        "notifications"
    }

    fn schema(&self) -> &'static str {
        "notifications"
    }

    fn init(&self, platform: &Platform) -> anyhow::Result<()> {
        let settings: NotificationSettings = platform.settings.domain_section("notifications")?;
        let api_base = platform
            .settings
            .server
            .public_base_url
            .trim_end_matches('/')
            .to_owned();
        let links_base = if settings.links_base_url.is_empty() {
            api_base.clone()
        } else {
            settings.links_base_url.trim_end_matches('/').to_owned()
        };
        let mut key = Hmac::<Sha256>::new_from_slice(
            platform
                .settings
                .identity
                .jwt_secret
                .expose_secret()
                .as_bytes(),
        )
        .map_err(|e| anyhow::anyhow!("identity.jwt_secret: {e}"))?;
        key.update(b"basalt.notifications.unsubscribe.v1");
        let mut http = reqwest::Client::builder()
            .timeout(Duration::from_secs(settings.webhook_timeout_secs))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Basalt-Webhooks/", env!("CARGO_PKG_VERSION")));
        if !settings.allow_private_webhooks {
            http = http.dns_resolver(Arc::new(ssrf::PublicOnly));
        }
        let http = http.build()?;
        let state = NotifyState {
            http,
            mailer: mailer::Mailer::new(&settings)?,
            templates: templates::Templates::new(settings.templates_dir.clone()),
            db: platform.db.clone(),
            links_base,
            api_base,
            unsubscribe_key: key.finalize().into_bytes().into(),
            settings,
        };
        tracing::info!(transport = %state.mailer.describe(), "notifications ready");
        self.state.set(state);
        Ok(())
    }

    fn migrations(&self) -> Option<&'static Migrator> {
        Some(&MIGRATIONS)
    }

    fn routes(&self, routes: &mut Routes) {
        self.state.register(routes);
        routes::configure(routes);
        webhooks::configure(routes);
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        NotificationsApi::openapi()
    }

    fn subscribers(&self, _platform: &Platform) -> Vec<Arc<dyn Subscriber>> {
        self.state
            .get()
            .map(|s| vec![subscribers::auth_events(s), webhooks::subscriber()])
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
                Box::pin(async move { webhooks::send_due(&state).await.map(|_| ()) })
            })
            .woken_by(repo::DELIVERIES_CHANNEL),
        ]
    }
}
