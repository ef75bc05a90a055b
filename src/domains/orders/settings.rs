//! The `[orders]` configuration section (`BASALT__ORDERS__...`).

use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrdersSettings {
    /// How long checkout holds the stock of an unpaid order (catalog reservations). When it
    /// lapses the catalog's sweeper returns the stock to sale, but the order stays payable:
    /// a later payment re-reserves, or lands in `requires_attention` if the stock is gone.
    pub hold_ttl_secs: i64,
    /// How long after its hold lapsed an order still unpaid is cancelled (`payment_timeout`).
    /// Manual payments (bank transfers) take days; cancelling at the end of the hold would
    /// throw away orders whose money is on its way, while the stock is free for others
    /// meanwhile anyway. Default 72 hours.
    pub unpaid_cancel_after_secs: i64,
    /// How often the unpaid-order job runs.
    pub unpaid_sweep_ms: u64,
    /// How long a payment may wait in `processing` or `requires_action` before the
    /// reconciliation job asks its provider where it stands (a lost webhook). Default 15
    /// minutes.
    pub reconcile_after_secs: i64,
    /// How often the reconciliation job runs.
    pub reconcile_sweep_ms: u64,
    /// Stripe, offered when `secret_key` is set (`BASALT__ORDERS__STRIPE__SECRET_KEY` or
    /// `..._FILE`).
    pub stripe: Option<StripeSettings>,
    /// Razorpay, offered when `key_id` and `key_secret` are set.
    pub razorpay: Option<RazorpaySettings>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StripeSettings {
    pub secret_key: SecretString,
    /// The endpoint's signing secrets (`whsec_…`), comma-separated: during a rotation both
    /// the old and the new one verify.
    pub webhook_secret: SecretString,
    /// Where Stripe's API is; a test points it at a fake.
    #[serde(default = "StripeSettings::default_base_url")]
    pub base_url: String,
}

impl StripeSettings {
    fn default_base_url() -> String {
        "https://api.stripe.com".to_owned()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RazorpaySettings {
    /// `rzp_live_…` / `rzp_test_…`: public, handed to the client with the order id.
    pub key_id: String,
    pub key_secret: SecretString,
    /// The webhook's secret, set on Razorpay's dashboard (not the key secret).
    pub webhook_secret: SecretString,
    #[serde(default = "RazorpaySettings::default_base_url")]
    pub base_url: String,
}

impl RazorpaySettings {
    fn default_base_url() -> String {
        "https://api.razorpay.com".to_owned()
    }
}

impl Default for OrdersSettings {
    fn default() -> Self {
        Self {
            hold_ttl_secs: 15 * 60,
            unpaid_cancel_after_secs: 72 * 3600,
            unpaid_sweep_ms: 30_000,
            reconcile_after_secs: 15 * 60,
            reconcile_sweep_ms: 60_000,
            stripe: None,
            razorpay: None,
        }
    }
}

impl OrdersSettings {
    pub fn validate(&self) -> anyhow::Result<()> {
        if !(1..=crate::domains::catalog::api::MAX_TTL_SECS).contains(&self.hold_ttl_secs) {
            anyhow::bail!("orders.hold_ttl_secs: must be between 1 and 604800 (a week)");
        }
        if self.unpaid_cancel_after_secs < 0 {
            anyhow::bail!("orders.unpaid_cancel_after_secs: must not be negative");
        }
        if self.unpaid_sweep_ms == 0 {
            anyhow::bail!("orders.unpaid_sweep_ms: must be above zero");
        }
        if self.reconcile_after_secs < 0 {
            anyhow::bail!("orders.reconcile_after_secs: must not be negative");
        }
        if self.reconcile_sweep_ms == 0 {
            anyhow::bail!("orders.reconcile_sweep_ms: must be above zero");
        }
        Ok(())
    }
}
