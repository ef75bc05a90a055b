//! Pricing: a cart's stored lines, the catalog's current data and the rules in force
//! (tax, shipping, the line cap, the applied discount) make the priced cart. Pure
//! arithmetic on integer minor units, no I/O, so every path (GET /cart, every write, and
//! `api::lock_for_checkout`) prices the same way.
//!
//! The rules, in the order they apply:
//! 1. Re-validation. A line whose variant is gone, not on sale, out of stock or in another
//!    currency is left out and reported `unavailable`; a line above the stock available or
//!    the per-line cap is priced at what can be sold and reported `quantity_reduced`; a line
//!    whose current price differs from its snapshot is priced at the current price and
//!    reported `price_changed`. Reports stay until the shopper sets the line again.
//! 2. Line subtotal = current unit price × quantity.
//! 3. Discount: checked (active, window, usage, per-customer uses, currency, minimum
//!    subtotal over all priced lines, eligible lines); a percentage is taken of the
//!    eligible lines' subtotal and rounded half away from zero, a fixed amount is capped at
//!    it. The amount is spread over the eligible lines in proportion to their subtotals,
//!    each share rounded down, and the remainder goes to the last eligible line (capped at
//!    what that line has left, any rest to the lines before it), so the line discounts
//!    always add up to the cart's discount exactly.
//! 4. Tax, per line on (subtotal − discount), at the rate for the shipping address's
//!    `country-region` (else `country`; no address or no rate: 0), rounded half away from
//!    zero per line. Tax-exclusive currencies add it (`total = net + tax`); tax-inclusive
//!    ones (`cart.tax_inclusive_currencies`) carry it inside the price
//!    (`tax = net × rate / (1 + rate)`, `total = net`). Shipping is not taxed.
//! 5. Shipping: the flat rate for the shipping address's country (else the `*` entry) in
//!    the cart's currency; 0 without an address, without lines, or without a rate.
//! 6. Totals are the sums of the lines' figures, plus shipping.

use std::collections::{BTreeMap, HashMap};

use uuid::Uuid;

use super::api::{AppliedDiscount, ChangeKind, DiscountProblem, LineChange, PricedLine, Totals};
use super::error::CartError;
use super::model::{Address, DiscountKind, DiscountResponse as Discount};
use super::repo::LineRow;
use crate::domains::catalog::api::VariantForSale;

/// Tax rates in basis points (1 = 0.01 %), by `CC` (ISO 3166-1 alpha-2) or `CC-REGION`
/// (`US-CA`); the region's rate wins over the country's.
pub type TaxRates = BTreeMap<String, u32>;
/// Flat shipping rates: country (or `*` for every other country) → currency → minor units.
pub type ShippingRates = BTreeMap<String, BTreeMap<String, i64>>;

/// What pricing needs besides the cart: the rules in force now.
pub struct Rules<'a> {
    pub tax_rates: &'a TaxRates,
    pub tax_inclusive: &'a [String],
    pub shipping_rates: &'a ShippingRates,
    pub max_line_quantity: i32,
    pub now: chrono::DateTime<chrono::Utc>,
}

/// The discount applied to the cart, with what pricing needs to check it.
pub struct DiscountInput<'a> {
    pub row: &'a Discount,
    /// How often the cart's user used it already (`None` for a guest).
    pub customer_uses: Option<i32>,
    pub signed_in: bool,
}

/// A priced cart.
#[derive(Debug)]
pub struct Priced {
    pub lines: Vec<PricedLine>,
    /// `None` when the sums do not fit the money range (each line does: prices and
    /// quantities are bounded): the cart must still be readable, so the shopper can see its
    /// lines and remove some; writes that would get it there are refused instead.
    pub totals: Option<Totals>,
    pub discount: Option<AppliedDiscount>,
    pub discount_problem: Option<DiscountProblem>,
    pub changes: Vec<LineChange>,
}

/// `num / den` rounded half away from zero (`den > 0`).
pub fn div_round(num: i128, den: i128) -> i128 {
    let q = (num.abs() * 2 + den) / (den * 2);
    if num < 0 { -q } else { q }
}

/// The tax rate for an address, in basis points.
pub fn tax_rate(rates: &TaxRates, address: Option<&Address>) -> u32 {
    let Some(a) = address else { return 0 };
    a.region
        .as_deref()
        .and_then(|r| rates.get(&format!("{}-{}", a.country, r.to_uppercase())))
        .or_else(|| rates.get(&a.country))
        .copied()
        .unwrap_or(0)
}

/// The flat shipping rate for an address in `currency`.
pub fn shipping_rate(rates: &ShippingRates, address: Option<&Address>, currency: &str) -> i64 {
    let Some(a) = address else { return 0 };
    rates
        .get(&a.country)
        .or_else(|| rates.get("*"))
        .and_then(|by_currency| by_currency.get(currency))
        .copied()
        .unwrap_or(0)
}

/// Whether a discount can be used now, before looking at the cart's lines: the reasons in
/// the order a shopper can act on them.
pub fn check_usable(
    d: &DiscountInput<'_>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), CartError> {
    let row = d.row;
    let code = || row.code.clone();
    if !row.active || row.deleted_at.is_some() {
        return Err(CartError::DiscountUnknown(code()));
    }
    if row.starts_at.is_some_and(|s| s > now) {
        return Err(CartError::DiscountNotStarted(code()));
    }
    if row.ends_at.is_some_and(|e| e <= now) {
        return Err(CartError::DiscountExpired(code()));
    }
    if row.usage_limit.is_some_and(|l| row.used_count >= l) {
        return Err(CartError::DiscountUsedUp(code()));
    }
    if let Some(limit) = row.per_customer_limit {
        if !d.signed_in {
            return Err(CartError::DiscountNeedsAccount(code()));
        }
        if d.customer_uses.unwrap_or(0) >= limit {
            return Err(CartError::DiscountCustomerLimit(code()));
        }
    }
    Ok(())
}

fn eligible(row: &Discount, v: &VariantForSale) -> bool {
    (row.product_ids.is_empty() && row.category_ids.is_empty())
        || row.product_ids.contains(&v.product_id)
        || v.category_path.iter().any(|c| row.category_ids.contains(c))
}

/// Spreads `amount` over `weights` in proportion, each share rounded down, the remainder on
/// the last weight (capped at the weight, any rest on the ones before it). Sums to
/// `amount` when `amount <= sum(weights)`.
pub fn spread(amount: i128, weights: &[i128]) -> Vec<i128> {
    let total: i128 = weights.iter().sum();
    if total <= 0 || amount <= 0 {
        return vec![0; weights.len()];
    }
    let amount = amount.min(total);
    let mut shares: Vec<i128> = weights.iter().map(|w| amount * w / total).collect();
    let mut rest = amount - shares.iter().sum::<i128>();
    for (share, weight) in shares.iter_mut().zip(weights).rev() {
        let room = (weight - *share).max(0);
        let take = rest.min(room);
        *share += take;
        rest -= take;
        if rest == 0 {
            break;
        }
    }
    shares
}

/// Prices `lines` (in the order given) against `catalog`, in `currency`. Amounts that do
/// not fit an i64 (a price of 10^15 times a large quantity, or the sums of many such lines)
/// do not fail the pricing: the cart must stay readable so the shopper can remove lines.
/// Such amounts read `i64::MAX` and `totals` is `None` ("unavailable"); the handlers that
/// write refuse a change that leads there, and checkout refuses such a cart.
pub fn price(
    currency: &str,
    lines: &[LineRow],
    catalog: &HashMap<Uuid, VariantForSale>,
    discount: Option<DiscountInput<'_>>,
    shipping_address: Option<&Address>,
    rules: &Rules<'_>,
) -> Result<Priced, CartError> {
    let fits = std::cell::Cell::new(true);
    let fit = |v: i128| {
        i64::try_from(v).unwrap_or_else(|_| {
            fits.set(false);
            i64::MAX
        })
    };
    let mut changes = Vec::new();
    // (stored line, its catalog data, quantity sold, subtotal)
    let mut kept: Vec<(&LineRow, &VariantForSale, i32, i128)> = Vec::new();
    for line in lines {
        let change = |kind, v: Option<&VariantForSale>, quantity: Option<i32>| LineChange {
            kind,
            line_id: line.id,
            variant_id: line.variant_id,
            previous_unit_price: line.unit_price,
            unit_price: v.map(|v| v.price),
            requested_quantity: line.quantity,
            quantity,
            reason: None,
        };
        let Some(v) = catalog
            .get(&line.variant_id)
            .filter(|v| v.on_sale && v.currency == currency)
        else {
            changes.push(change(ChangeKind::Unavailable, None, Some(0)));
            continue;
        };
        let can_sell = v.available.unwrap_or(i32::MAX).min(rules.max_line_quantity);
        if can_sell <= 0 {
            changes.push(change(ChangeKind::Unavailable, Some(v), Some(0)));
            continue;
        }
        let quantity = line.quantity.min(can_sell);
        if quantity < line.quantity {
            changes.push(change(ChangeKind::QuantityReduced, Some(v), Some(quantity)));
        }
        if v.price != line.unit_price {
            changes.push(change(ChangeKind::PriceChanged, Some(v), Some(quantity)));
        }
        kept.push((
            line,
            v,
            quantity,
            i128::from(v.price) * i128::from(quantity),
        ));
    }

    let subtotal: i128 = kept.iter().map(|k| k.3).sum();
    let mut discounts = vec![0i128; kept.len()];
    let mut applied = None;
    let mut problem = None;
    if let Some(d) = discount {
        let row = d.row;
        let checked = check_usable(&d, rules.now).and_then(|()| {
            if i128::from(row.min_subtotal) > subtotal {
                return Err(CartError::DiscountMinimumNotMet {
                    code: row.code.clone(),
                    minimum: row.min_subtotal,
                });
            }
            let weights: Vec<i128> = kept
                .iter()
                .map(|(_, v, _, sub)| if eligible(row, v) { *sub } else { 0 })
                .collect();
            let base: i128 = weights.iter().sum();
            let currency_fits =
                row.kind != DiscountKind::Fixed || row.currency.as_deref() == Some(currency);
            if base <= 0 || !currency_fits {
                return Err(CartError::DiscountNotApplicable(row.code.clone()));
            }
            let amount = if row.kind == DiscountKind::Percentage {
                div_round(base * i128::from(row.value), 10_000)
            } else {
                i128::from(row.value).min(base)
            };
            Ok((amount, weights))
        });
        match checked {
            Ok((amount, weights)) => {
                discounts = spread(amount, &weights);
                applied = Some(AppliedDiscount {
                    discount_id: row.id.0,
                    code: row.code.clone(),
                    amount: fit(amount),
                });
            }
            Err(e) => {
                problem = Some(DiscountProblem {
                    discount_id: row.id.0,
                    code: row.code.clone(),
                    reason: e.to_api().code().to_owned(),
                    detail: e.to_string(),
                })
            }
        }
    }

    let rate = i128::from(tax_rate(rules.tax_rates, shipping_address));
    let inclusive = rules.tax_inclusive.iter().any(|c| c == currency);
    let mut priced = Vec::with_capacity(kept.len());
    let mut totals = (0i128, 0i128, 0i128, 0i128);
    for ((line, v, quantity, sub), discount) in kept.into_iter().zip(discounts) {
        let net = sub - discount;
        let (tax, total) = if inclusive {
            let tax = div_round(net * rate, 10_000 + rate);
            (tax, net)
        } else {
            let tax = div_round(net * rate, 10_000);
            (tax, net + tax)
        };
        totals = (
            totals.0 + sub,
            totals.1 + discount,
            totals.2 + tax,
            totals.3 + total,
        );
        priced.push(PricedLine {
            line_id: line.id,
            variant_id: v.variant_id,
            product_id: v.product_id,
            seller_id: v.seller_id,
            product_title: v.product_title.clone(),
            variant_title: v.variant_title.clone(),
            sku: v.sku.clone(),
            unit_price: v.price,
            quantity,
            subtotal: fit(sub),
            discount: fit(discount),
            tax: fit(tax),
            total: fit(total),
        });
    }
    let shipping = if priced.is_empty() {
        0
    } else {
        shipping_rate(rules.shipping_rates, shipping_address, currency)
    };
    Ok(Priced {
        lines: priced,
        totals: Some(Totals {
            subtotal: fit(totals.0),
            discount: fit(totals.1),
            tax: fit(totals.2),
            shipping,
            total: fit(totals.3 + i128::from(shipping)),
            tax_inclusive: inclusive,
        })
        .filter(|_| fits.get()),
        discount: applied,
        discount_problem: problem,
        changes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_half_away_from_zero() {
        assert_eq!(div_round(5, 10), 1);
        assert_eq!(div_round(4, 10), 0);
        assert_eq!(div_round(15, 10), 2);
        assert_eq!(div_round(-5, 10), -1);
        assert_eq!(div_round(1999 * 825, 10_000), 165); // 164.9175
    }

    #[test]
    fn spreads_with_the_remainder_on_the_last_line() {
        assert_eq!(spread(100, &[100, 100, 100]), vec![33, 33, 34]);
        // Never more than the weights hold.
        assert_eq!(spread(100, &[1, 1, 1]), vec![1, 1, 1]);
        assert_eq!(spread(10, &[0, 50, 50]), vec![0, 5, 5]);
        // The last line cannot take more than it has: the rest goes before it.
        assert_eq!(spread(5, &[3, 3, 1]), vec![2, 2, 1]);
        assert_eq!(spread(6, &[3, 3, 1]), vec![2, 3, 1]);
        assert_eq!(spread(7, &[3, 3, 1]), vec![3, 3, 1]);
    }
}
