//! The auth domain: accounts, access and refresh tokens, email verification, password reset
//! and change, sessions, API keys, and roles with permissions.
//!
//! Schema `auth`; routes under `/api/v1/auth`: accounts (`/register`, `/verify-email`,
//! `/me`), sessions (`/login`, `/refresh`, `/logout`, `/sessions`), passwords
//! (`/forgot-password`, `/reset-password`, `/change-password`), `/api-keys`, and `/admin/...`
//! for administrators (every change there is written to the audit trail). Token
//! *verification* is the kernel's (`platform::identity`), so other domains never call this
//! one; it *issues* tokens and resolves API keys for the kernel.
//!
//! Publishes (source `auth`, declared in `crate::events::auth` because notifications
//! consumes them): `user.registered`, `user.verification_requested`, `user.email_verified`,
//! `user.password_reset_requested`, `user.password_changed`, `user.deleted`,
//! `user.logged_in`, `user.logged_out`, `user.sessions_revoked`, `user.credentials_revoked`.
//! Single-use tokens never ride in events: `payload.secret` holds a nonce the token is
//! derived from under the server's key. Consumes its own verification and reset
//! requests only to log the link when `notifications` is off. Calls no other domain.

mod access;
mod accounts;
mod admin;
mod api_keys;
mod error;
mod events;
mod lookup;
mod model;
mod pages;
mod password;
mod passwords;
mod repo;
mod sessions;
mod settings;
mod state;
mod subscribers;
mod tokens;

use std::sync::Arc;

use sqlx::migrate::Migrator;
use utoipa::OpenApi;

use crate::platform::domain::DomainState;
use crate::platform::events::Subscriber;
use crate::platform::http::Routes;
use crate::platform::{Domain, Platform};
use error::AuthError;
use state::AuthState;

pub use settings::AuthSettings;

static MIGRATIONS: Migrator = sqlx::migrate!("migrations/auth");

#[derive(Default)]
pub struct Auth {
    state: DomainState<AuthState>,
}

#[derive(OpenApi)]
#[openapi(tags(
    (name = "auth", description = "Accounts, sign-in, sessions, passwords and API keys"),
    (name = "auth-admin", description = "Accounts and roles, for administrators")
))]
struct AuthTags;

impl Domain for Auth {
    fn name(&self) -> &'static str {
        "auth"
    }

    fn schema(&self) -> &'static str {
        "auth"
    }

    fn events(&self) -> &'static [&'static str] {
        events::TYPES
    }

    fn init(&self, platform: &Platform) -> anyhow::Result<()> {
        self.state.set(AuthState::load(platform)?);
        let _ = platform.api_keys.0.set(Arc::new(api_keys::Resolver {
            db: platform.db.clone(),
        }));
        let _ = platform.accounts.0.set(Arc::new(lookup::Lookup {
            db: platform.db.clone(),
        }));
        Ok(())
    }

    fn migrations(&self) -> Option<&'static Migrator> {
        Some(&MIGRATIONS)
    }

    fn routes(&self, routes: &mut Routes) {
        self.state.register(routes);
        accounts::configure(routes);
        sessions::configure(routes);
        passwords::configure(routes);
        api_keys::configure(routes);
        admin::configure(routes);
        pages::configure(routes);
    }

    fn error_codes(&self) -> &'static [(&'static str, actix_web::http::StatusCode)] {
        AuthError::CODES
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        let mut doc = AuthTags::openapi();
        doc.merge(accounts::AccountsApi::openapi());
        doc.merge(sessions::SessionsApi::openapi());
        doc.merge(passwords::PasswordsApi::openapi());
        doc.merge(api_keys::ApiKeysApi::openapi());
        doc.merge(admin::AdminApi::openapi());
        doc.merge(pages::PagesApi::openapi());
        doc.merge(events::EventsApi::openapi());
        doc
    }

    fn subscribers(&self, platform: &Platform) -> Vec<Arc<dyn Subscriber>> {
        if platform.domain_enabled("notifications") {
            return Vec::new();
        }
        vec![subscribers::log_links(
            &format!(
                "{}/api/v1/auth/pages",
                platform
                    .settings
                    .server
                    .public_base_url
                    .trim_end_matches('/')
            ),
            platform.settings.identity.clone(),
        )]
    }
}
