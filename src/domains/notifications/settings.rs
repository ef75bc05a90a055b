//! The `[notifications]` configuration section (`BASALT__NOTIFICATIONS__...`).

use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationSettings {
    /// `smtp://user:pass@host:587?tls=required` (STARTTLS), `smtps://host:465` (TLS), or
    /// `smtp://host:2525` (plain, for local sinks). Empty: messages are written as .eml files
    /// to `outbox_dir` and logged, so nothing is lost in development.
    pub smtp_url: SecretString,
    /// The From header.
    pub from: String,
    pub outbox_dir: PathBuf,
    /// Overrides: `<name>.subject`, `<name>.txt`, `<name>.html` (and `layout.html`) found here
    /// win over the built-in templates.
    pub templates_dir: Option<PathBuf>,
    /// The product name shown in messages.
    pub app_name: String,
    /// Where the front end serves the pages the links open (`<base>/verify-email?token=...`,
    /// `/reset-password?token=...`, `/forgot-password`). Empty: the auth domain's own pages,
    /// `<server.public_base_url>/api/v1/auth/pages`.
    pub links_base_url: String,
    /// The storefront page of one order, `{id}` standing for the order's id (e.g.
    /// `https://shop.example/account/orders/{id}`). Empty: order mails carry no link, since
    /// the API serves no such page.
    pub order_url: String,
    pub timeout_secs: u64,
    /// Sends per message before it is marked failed (an admin can retry it).
    pub max_attempts: i32,
    /// The wait after the first failed send; it doubles with each further failure (capped at
    /// an hour).
    pub retry_base_ms: u64,
    /// How often the sender and the webhook job look for due work: retries, and work queued
    /// while their listener was down. New messages and deliveries wake them at once.
    pub poll_interval_ms: u64,
    /// Webhook URLs may resolve to loopback or private addresses (off: the SSRF guard).
    pub allow_private_webhooks: bool,
    pub webhook_timeout_secs: u64,
    /// Attempts per webhook delivery before it is dead-lettered; the waits between them grow
    /// from `webhook_retry_base_ms` by five times each (5 s, 25 s, 2 min, 10 min, 52 min, 4 h,
    /// capped at 10 h): over a day in all by default.
    pub webhook_max_attempts: i32,
    pub webhook_retry_base_ms: u64,
    /// Consecutive failed attempts after which an endpoint is disabled.
    pub webhook_disable_after: i32,
    /// How long a rotated-out secret keeps signing alongside the new one.
    pub webhook_rotation_overlap_hours: i64,
}

impl Default for NotificationSettings {
    fn default() -> Self {
        Self {
            smtp_url: SecretString::from(String::new()),
            from: "Basalt <no-reply@localhost>".into(),
            outbox_dir: PathBuf::from("data/mail-outbox"),
            templates_dir: None,
            app_name: "Basalt".into(),
            links_base_url: String::new(),
            order_url: String::new(),
            timeout_secs: 10,
            max_attempts: 8,
            retry_base_ms: 5000,
            poll_interval_ms: 500,
            allow_private_webhooks: false,
            webhook_timeout_secs: 10,
            webhook_max_attempts: 8,
            webhook_retry_base_ms: 5000,
            webhook_disable_after: 40,
            webhook_rotation_overlap_hours: 24,
        }
    }
}
