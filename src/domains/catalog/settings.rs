//! The `[catalog]` configuration section (`BASALT__CATALOG__...`). Values administrators
//! change while the server runs (auto-approval) are runtime settings, declared in `state`.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CatalogSettings {
    /// The most live variants one product may have (a 422 past it). Medusa's variant edits
    /// slow to minutes at a few hundred; each variant here is its own row, edited alone, so
    /// the cap is about what a storefront can show, not about cost.
    pub max_variants_per_product: usize,
    /// How often expired reservations are released.
    pub reservation_sweep_ms: u64,
}

impl Default for CatalogSettings {
    fn default() -> Self {
        Self {
            max_variants_per_product: 100,
            reservation_sweep_ms: 5000,
        }
    }
}

impl CatalogSettings {
    pub fn validate(&self) -> anyhow::Result<()> {
        if !(1..=1000).contains(&self.max_variants_per_product) {
            anyhow::bail!("catalog.max_variants_per_product: must be between 1 and 1000");
        }
        if self.reservation_sweep_ms == 0 {
            anyhow::bail!("catalog.reservation_sweep_ms: must be above zero");
        }
        Ok(())
    }
}
