//! What the auth handlers share, built once by `init`: the `[auth]` settings and the key
//! that signs refresh tokens.

use actix_web::web;

use super::settings::AuthSettings;
use super::tokens::RefreshKey;
use crate::config::IdentitySettings;
use crate::platform::Platform;

pub struct AuthState {
    pub settings: AuthSettings,
    pub refresh_key: RefreshKey,
    /// What single-use tokens are derived under (`events::auth::Secret::token`).
    pub identity: IdentitySettings,
}

/// The state as handlers take it.
pub type State = web::Data<AuthState>;

impl AuthState {
    /// Reads and checks the `[auth]` section; errors name the key at fault.
    pub fn load(platform: &Platform) -> anyhow::Result<Self> {
        let settings: AuthSettings = platform.settings.domain_section("auth")?;
        settings.validate()?;
        Ok(Self {
            settings,
            refresh_key: RefreshKey::derive(&platform.settings.identity),
            identity: platform.settings.identity.clone(),
        })
    }
}
