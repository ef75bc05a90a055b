//! The `[cart]` configuration section (`BASALT__CART__...`). Values administrators change
//! while the server runs (tax and shipping rates, the line cap, cart lifetimes) are runtime
//! settings, declared in `state`.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CartSettings {
    /// The most lines one cart may hold (a 422 past it): a storefront's cart page, not a
    /// bulk-order tool; it also bounds what one GET /cart prices.
    pub max_lines: usize,
    /// How often the expiry and abandonment jobs run.
    pub sweep_ms: u64,
}

impl Default for CartSettings {
    fn default() -> Self {
        Self {
            max_lines: 100,
            sweep_ms: 60_000,
        }
    }
}

impl CartSettings {
    pub fn validate(&self) -> anyhow::Result<()> {
        if !(1..=500).contains(&self.max_lines) {
            anyhow::bail!("cart.max_lines: must be between 1 and 500");
        }
        if self.sweep_ms == 0 {
            anyhow::bail!("cart.sweep_ms: must be above zero");
        }
        Ok(())
    }
}
