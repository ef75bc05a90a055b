//! What handlers, subscribers and the jobs share, built once by `init`: the settings, the
//! mailer and templates, the webhook HTTP client (no redirects; public addresses only unless
//! configured otherwise) and the key unsubscribe links are signed with.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use sha2::Sha256;
use sqlx::PgPool;
use uuid::Uuid;

use super::settings::NotificationSettings;
use super::{mailer, ssrf, templates};
use crate::platform::Platform;

/// What handlers, subscribers and the sender share, built once by `init`.
pub struct NotifyState {
    pub settings: NotificationSettings,
    pub db: PgPool,
    pub mailer: mailer::Mailer,
    pub templates: templates::Templates,
    /// Where links in mail point (the front end).
    pub links_base: String,
    /// Where the unsubscribe endpoint is (this API).
    pub api_base: String,
    unsubscribe_key: [u8; 32],
    /// For webhooks: no redirects (a redirect could lead past the address check).
    pub http: reqwest::Client,
    /// Endpoints' owners' current grants, checked at delivery time.
    pub accounts: crate::platform::identity::Accounts,
}

pub fn unsubscribe_token(state: &NotifyState, user: Uuid, category: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&state.unsubscribe_key) else {
        return String::new();
    };
    mac.update(user.as_bytes());
    mac.update(category.as_bytes());
    B64.encode(mac.finalize().into_bytes())
}

pub fn unsubscribe_url(state: &NotifyState, user: Uuid, category: &str) -> String {
    format!(
        "{}/api/v1/notifications/unsubscribe?user={user}&category={category}&token={}",
        state.api_base,
        unsubscribe_token(state, user, category)
    )
}

impl NotifyState {
    /// Reads the `[notifications]` section and builds the state; errors name the key.
    pub fn build(platform: &Platform) -> anyhow::Result<Self> {
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
            // Never through HTTP(S)_PROXY: a proxy would resolve and connect for us, past
            // the resolver that keeps webhooks on public addresses.
            .no_proxy()
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
            accounts: platform.accounts.clone(),
            links_base,
            api_base,
            unsubscribe_key: key.finalize().into_bytes().into(),
            settings,
        };
        tracing::info!(transport = %state.mailer.describe(), "notifications ready");
        Ok(state)
    }
}
