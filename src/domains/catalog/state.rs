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
    /// `catalog.reviews_require_approval`: new and edited reviews wait for a moderator
    /// (`pending`: not public, not in the rating) until approved.
    pub reviews_require_approval: Arc<Setting<bool>>,
}

impl CatalogState {
    pub fn build(platform: &Platform) -> anyhow::Result<Self> {
        let settings: CatalogSettings = platform.settings.domain_section("catalog")?;
        settings.validate()?;
        let auto_approve = platform
            .runtime
            .declare("catalog", "auto_approve", false, |_| Ok(()));
        let reviews_require_approval =
            platform
                .runtime
                .declare("catalog", "reviews_require_approval", false, |_| Ok(()));
        Ok(Self {
            settings,
            auto_approve,
            reviews_require_approval,
        })
    }
}
