//! The auth domain: accounts, access and refresh tokens, email verification, password reset
//! and change, sessions, and roles with permissions.
//!
//! Schema `auth`; routes under `/api/v1/auth`. Token *verification* is the kernel's
//! (`platform::identity`), so other domains never call this one; it *issues* tokens.
//! Publishes `user.registered`, `user.verification_requested`, `user.email_verified`,
//! `user.password_reset_requested`, `user.password_changed`, `user.deleted` (source `auth`);
//! single-use tokens ride in `payload.secret`, which never leaves the process. Consumes its
//! own verification and reset requests only to log the link when `notifications` is off.

mod admin;
mod api_keys;
mod events;
mod model;
mod password;
mod repo;
mod routes;
mod settings;
mod tokens;

use std::sync::Arc;

use sqlx::migrate::Migrator;
use utoipa::OpenApi;

use crate::platform::domain::DomainState;
use crate::platform::events::{Subscriber, subscriber_fn};
use crate::platform::http::Routes;
use crate::platform::{Domain, Platform};

pub use settings::AuthSettings;

static MIGRATIONS: Migrator = sqlx::migrate!("migrations/auth");

/// What the handlers share, built once by `init`.
pub struct AuthState {
    pub settings: AuthSettings,
    refresh_key: tokens::RefreshKey,
}

#[derive(Default)]
pub struct Auth {
    state: DomainState<AuthState>,
}

#[derive(OpenApi)]
#[openapi(
    paths(
        routes::register,
        routes::verify_email,
        routes::resend_verification,
        routes::login,
        routes::refresh,
        routes::logout,
        routes::list_sessions,
        routes::revoke_session,
        routes::revoke_other_sessions,
        routes::forgot_password,
        routes::reset_password,
        routes::change_password,
        routes::me,
        routes::update_me,
        routes::delete_me,
        api_keys::create_api_key,
        api_keys::list_api_keys,
        api_keys::revoke_api_key,
        admin::list_users,
        admin::list_roles,
        admin::create_role,
        admin::set_role_permissions,
        admin::delete_role,
        admin::grant_role,
        admin::revoke_role,
    ),
    tags(
        (name = "auth", description = "Accounts, sign-in, sessions, passwords and API keys"),
        (name = "auth-admin", description = "Accounts and roles, for administrators")
    )
)]
struct AuthApi;

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
        let settings: AuthSettings = platform.settings.domain_section("auth")?;
        settings.validate()?;
        let state = AuthState {
            settings,
            refresh_key: tokens::RefreshKey::derive(&platform.settings.identity),
        };
        self.state.set(state);
        let _ = platform.api_keys.0.set(Arc::new(api_keys::Resolver {
            db: platform.db.clone(),
        }));
        Ok(())
    }

    fn migrations(&self) -> Option<&'static Migrator> {
        Some(&MIGRATIONS)
    }

    fn routes(&self, routes: &mut Routes) {
        self.state.register(routes);
        routes::configure(routes);
        api_keys::configure(routes);
        admin::configure(routes);
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        AuthApi::openapi()
    }

    fn subscribers(&self, platform: &Platform) -> Vec<Arc<dyn Subscriber>> {
        if platform.domain_enabled("notifications") {
            return Vec::new();
        }
        // Without the notifications domain nobody mails the link: log it so a developer can
        // still verify and reset (PocketBase and Supabase do the same in development).
        let base = platform
            .settings
            .server
            .public_base_url
            .trim_end_matches('/')
            .to_owned();
        vec![subscriber_fn(
            "auth.log_links",
            &[
                "user.verification_requested",
                "user.password_reset_requested",
            ],
            move |event, _conn| {
                let page = if event.event_type == "user.verification_requested" {
                    "verify-email"
                } else {
                    "reset-password"
                };
                let email = event.payload["email"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let token = event.payload["secret"]["token"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let link = format!("{base}/{page}?token={token}");
                Box::pin(async move {
                    tracing::info!(%email, %link, "no notifications domain: this link would have been emailed");
                    Ok(())
                })
            },
        )]
    }
}
