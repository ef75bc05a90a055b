//! The shared kernel every domain builds on, and nothing domain-specific.

pub mod db;
pub mod domain;
pub mod error;
pub mod events;
pub mod health;
pub mod http;
pub mod identity;
pub mod jobs;
pub mod metrics;
pub mod openapi;
pub mod redis;
pub mod revocation;

use std::sync::Arc;

use sqlx::PgPool;

use crate::config::Settings;

pub use domain::Domain;
pub use error::ApiError;
pub use identity::CurrentUser;

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
    /// The names of the enabled domains.
    pub domains: Arc<Vec<&'static str>>,
}

impl Platform {
    pub fn domain_enabled(&self, name: &str) -> bool {
        self.domains.contains(&name)
    }
}
