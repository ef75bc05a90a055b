//! What the cart's handlers and jobs share, built once by `init`: its settings and its
//! runtime settings (declared here with their defaults and validation), and the pricing
//! rules they make.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::pricing::{ShippingRates, TaxRates};
use super::settings::CartSettings;
use crate::platform::Platform;
use crate::platform::runtime::Setting;

/// The runtime settings' namespace.
pub const NAMESPACE: &str = "cart";

pub struct CartState {
    pub settings: CartSettings,
    /// `cart.tax_rates`: basis points by `CC` or `CC-REGION` (`{"DE": 1900, "US-CA": 725}`).
    pub tax_rates: Arc<Setting<TaxRates>>,
    /// `cart.tax_inclusive_currencies`: currencies whose prices include tax (`["EUR"]`).
    pub tax_inclusive: Arc<Setting<Vec<String>>>,
    /// `cart.shipping_rates`: flat rate by country (or `*`) and currency, minor units
    /// (`{"US": {"USD": 500}, "*": {"USD": 1500}}`).
    pub shipping_rates: Arc<Setting<ShippingRates>>,
    /// `cart.max_line_quantity`: the most of one variant a line may hold (default 100).
    pub max_line_quantity: Arc<Setting<i32>>,
    /// `cart.guest_cart_days` / `cart.user_cart_days`: inactive carts expire after these
    /// (30 and 90).
    pub guest_cart_days: Arc<Setting<i64>>,
    pub user_cart_days: Arc<Setting<i64>>,
    /// `cart.purge_after_days`: merged and expired carts are deleted this long after they
    /// closed (default 30).
    pub purge_after_days: Arc<Setting<i64>>,
    /// `cart.abandoned_after_minutes`: a signed-in cart with items idle this long publishes
    /// `cart.abandoned`, once per period of inactivity (default 1440, a day).
    pub abandoned_after_minutes: Arc<Setting<i64>>,
}

/// The pricing rules in force, owned (read from the runtime settings or from their stored
/// values).
#[derive(Debug, Clone)]
pub struct CartRules {
    pub tax_rates: TaxRates,
    pub tax_inclusive: Vec<String>,
    pub shipping_rates: ShippingRates,
    pub max_line_quantity: i32,
}

pub const DEFAULT_MAX_LINE_QUANTITY: i32 = 100;

fn country_key(k: &str) -> bool {
    let (country, region) = k.split_once('-').unwrap_or((k, ""));
    country.len() == 2
        && country.bytes().all(|b| b.is_ascii_uppercase())
        && region.len() <= 3
        && region
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        && region.is_empty() != k.contains('-')
}

fn currency_code(c: &str) -> bool {
    c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase())
}

pub fn check_tax_rates(r: &TaxRates) -> Result<(), String> {
    for (k, v) in r {
        if !country_key(k) {
            return Err(format!(
                "{k}: keys are CC or CC-REGION (ISO 3166), upper case"
            ));
        }
        if *v > 10_000 {
            return Err(format!("{k}: basis points from 0 to 10000"));
        }
    }
    Ok(())
}

pub fn check_currencies(c: &[String]) -> Result<(), String> {
    match c.iter().find(|c| !currency_code(c)) {
        Some(bad) => Err(format!("{bad}: not an ISO 4217 code")),
        None => Ok(()),
    }
}

pub fn check_shipping_rates(r: &ShippingRates) -> Result<(), String> {
    for (k, by_currency) in r {
        if k != "*" && !(k.len() == 2 && country_key(k)) {
            return Err(format!("{k}: keys are ISO 3166-1 alpha-2 countries or *"));
        }
        for (c, v) in by_currency {
            if !currency_code(c) {
                return Err(format!("{k}.{c}: not an ISO 4217 code"));
            }
            if !(0..=1_000_000_000_000).contains(v) {
                return Err(format!("{k}.{c}: minor units from 0 to 10^12"));
            }
        }
    }
    Ok(())
}

pub fn check_line_quantity(q: &i32) -> Result<(), String> {
    if (1..=10_000).contains(q) {
        Ok(())
    } else {
        Err("from 1 to 10000".into())
    }
}

fn check_days(d: &i64) -> Result<(), String> {
    if (1..=3650).contains(d) {
        Ok(())
    } else {
        Err("from 1 to 3650 days".into())
    }
}

fn check_minutes(m: &i64) -> Result<(), String> {
    if (1..=525_600).contains(m) {
        Ok(())
    } else {
        Err("from 1 to 525600 minutes".into())
    }
}

impl CartState {
    pub fn build(platform: &Platform) -> anyhow::Result<Self> {
        let settings: CartSettings = platform.settings.domain_section("cart")?;
        settings.validate()?;
        let rt = &platform.runtime;
        Ok(Self {
            settings,
            tax_rates: rt.declare(NAMESPACE, "tax_rates", TaxRates::new(), check_tax_rates),
            tax_inclusive: rt.declare(NAMESPACE, "tax_inclusive_currencies", Vec::new(), |c| {
                check_currencies(c)
            }),
            shipping_rates: rt.declare(
                NAMESPACE,
                "shipping_rates",
                ShippingRates::new(),
                check_shipping_rates,
            ),
            max_line_quantity: rt.declare(
                NAMESPACE,
                "max_line_quantity",
                DEFAULT_MAX_LINE_QUANTITY,
                check_line_quantity,
            ),
            guest_cart_days: rt.declare(NAMESPACE, "guest_cart_days", 30, check_days),
            user_cart_days: rt.declare(NAMESPACE, "user_cart_days", 90, check_days),
            purge_after_days: rt.declare(NAMESPACE, "purge_after_days", 30, check_days),
            abandoned_after_minutes: rt.declare(
                NAMESPACE,
                "abandoned_after_minutes",
                1440,
                check_minutes,
            ),
        })
    }

    /// The pricing rules in force on this replica now.
    pub fn rules(&self) -> CartRules {
        CartRules {
            tax_rates: (*self.tax_rates.get()).clone(),
            tax_inclusive: (*self.tax_inclusive.get()).clone(),
            shipping_rates: (*self.shipping_rates.get()).clone(),
            max_line_quantity: *self.max_line_quantity.get(),
        }
    }
}

impl CartRules {
    /// The rules from the stored runtime settings of the `cart` namespace (key → value), as
    /// `api` reads them on the caller's connection; a missing or invalid value is the
    /// default, exactly as the runtime settings apply them.
    pub fn from_stored(stored: &BTreeMap<String, serde_json::Value>) -> Self {
        fn get<T: DeserializeOwned>(
            stored: &BTreeMap<String, serde_json::Value>,
            key: &str,
            default: T,
            check: fn(&T) -> Result<(), String>,
        ) -> T {
            stored
                .get(key)
                .and_then(|v| serde_json::from_value::<T>(v.clone()).ok())
                .filter(|v| check(v).is_ok())
                .unwrap_or(default)
        }
        Self {
            tax_rates: get(stored, "tax_rates", TaxRates::new(), check_tax_rates),
            tax_inclusive: get(stored, "tax_inclusive_currencies", Vec::new(), |c| {
                check_currencies(c)
            }),
            shipping_rates: get(
                stored,
                "shipping_rates",
                ShippingRates::new(),
                check_shipping_rates,
            ),
            max_line_quantity: get(
                stored,
                "max_line_quantity",
                DEFAULT_MAX_LINE_QUANTITY,
                check_line_quantity,
            ),
        }
    }
}
