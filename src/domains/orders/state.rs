//! What the orders domain's handlers and jobs share, built once by `init`.

use super::providers::Providers;
use super::settings::OrdersSettings;
use crate::platform::Platform;

pub struct OrdersState {
    pub settings: OrdersSettings,
    /// The configured payment providers (`manual` always).
    pub providers: Providers,
}

impl OrdersState {
    pub fn build(platform: &Platform) -> anyhow::Result<Self> {
        let settings: OrdersSettings = platform.settings.domain_section("orders")?;
        settings.validate()?;
        let providers = Providers::build(&settings)?;
        Ok(Self {
            settings,
            providers,
        })
    }
}
