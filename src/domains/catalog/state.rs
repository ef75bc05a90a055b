//! What the catalog's handlers share, built once by `init`: its settings and its runtime
//! settings.

use std::sync::Arc;

use super::settings::CatalogSettings;
use crate::platform::Platform;
use crate::platform::runtime::Setting;

pub struct CatalogState {
    pub settings: CatalogSettings,
    /// `catalog.auto_approve`: submitted products go straight to `active`, skipping the
    /// moderation queue (a store whose sellers are its own staff).
    pub auto_approve: Arc<Setting<bool>>,
}

impl CatalogState {
    pub fn build(platform: &Platform) -> anyhow::Result<Self> {
        let settings: CatalogSettings = platform.settings.domain_section("catalog")?;
        settings.validate()?;
        let auto_approve = platform
            .runtime
            .declare("catalog", "auto_approve", false, |_| Ok(()));
        Ok(Self {
            settings,
            auto_approve,
        })
    }
}
