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

use super::repo::MessageRow;
use super::settings::NotificationSettings;
use super::{mailer, ssrf, templates};
use crate::config::IdentitySettings;
use crate::platform::Platform;

/// What handlers, subscribers and the sender share, built once by `init`.
/// Stands for a single-use token in a stored message, followed by the nonce it is derived
/// from: stored bodies hold no usable token (issue #11: tokens at rest), and the sender
/// derives it just before the message goes out ([`NotifyState::unsealed`]).
pub const SEALED: &str = "basalt-sealed-";

/// The length of a nonce (base64url of 32 bytes).
const NONCE_LEN: usize = 43;

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
    /// Derives the single-use tokens of auth's links from their nonces (see [`SEALED`]).
    identity: IdentitySettings,
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
        // By default the links open the auth domain's own pages.
        let links_base = if settings.links_base_url.is_empty() {
            format!("{api_base}/api/v1/auth/pages")
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
            identity: platform.settings.identity.clone(),
            settings,
        };
        tracing::info!(transport = %state.mailer.describe(), "notifications ready");
        Ok(state)
    }
}

impl NotifyState {
    /// The message as it is sent: each sealed token replaced by the token itself.
    pub fn unsealed(&self, m: &MessageRow) -> MessageRow {
        let mut m = m.clone();
        m.text_body = self.unseal(&m.text_body);
        m.html_body = self.unseal(&m.html_body);
        m
    }

    fn unseal(&self, body: &str) -> String {
        let mut out = String::with_capacity(body.len());
        let mut rest = body;
        while let Some(at) = rest.find(SEALED) {
            out.push_str(&rest[..at]);
            let after = &rest[at + SEALED.len()..];
            let nonce = after.get(..NONCE_LEN).filter(|n| {
                n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
            match nonce {
                Some(nonce) => {
                    out.push_str(&crate::events::auth::one_time_token(&self.identity, nonce));
                    rest = &after[NONCE_LEN..];
                }
                None => {
                    out.push_str(SEALED);
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }
}
