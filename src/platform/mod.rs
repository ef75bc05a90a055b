//! The shared kernel every domain builds on, and nothing domain-specific.

pub mod audit;
pub mod db;
pub mod domain;
pub mod error;
pub mod events;
pub mod grants;
pub mod health;
pub mod http;
pub mod idempotency;
pub mod identity;
pub mod ids;
pub mod jobs;
pub mod memory;
pub mod metrics;
pub mod openapi;
pub mod page;
pub mod redis;
pub mod revocation;
pub mod runtime;
pub mod wakeup;

use std::sync::Arc;

use sqlx::PgPool;

use crate::config::Settings;

pub use domain::Domain;
pub use error::ApiError;
pub use identity::CurrentUser;

/// Makes aws-lc-rs the process-wide TLS provider. reqwest is built without a provider of its
/// own, so that aws-lc-rs stays the only one (two make rustls refuse to choose at run time);
/// an error only means a provider is installed already.
pub fn install_tls_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// What every handler, subscriber and job may use, registered once as `web::Data<Platform>`.
#[derive(Clone)]
pub struct Platform {
    pub db: PgPool,
    pub redis: Option<redis::RedisPool>,
    pub settings: Arc<Settings>,
    /// Verifies (and, for the `auth` domain, signs) access tokens.
    pub tokens: Arc<identity::TokenVerifier>,
    pub revocations: Arc<revocation::Revocations>,
    /// The `X-Api-Key` resolver, registered by the domain that owns API keys.
    pub api_keys: identity::ApiKeys,
    /// Accounts' current grants, registered by the domain that owns accounts.
    pub accounts: identity::Accounts,
    /// The names of the enabled domains.
    pub domains: Arc<Vec<&'static str>>,
    /// Every event type the enabled domains publish.
    pub event_types: Arc<Vec<&'static str>>,
    /// Settings administrators change without a restart; domains declare theirs in `init`.
    pub runtime: runtime::RuntimeSettings,
}

impl Platform {
    pub fn domain_enabled(&self, name: &str) -> bool {
        self.domains.contains(&name)
    }
}
