//! What the orders domain calls in-process (declared as its feature dependency on `cart`),
//! on the caller's `&mut PgConnection`, so checkout is one PostgreSQL transaction: lock and
//! price the cart, consume its discount, mark it completed.
//!
//! Pricing here is the same as GET /cart's (`pricing`), with the rules read from the stored
//! runtime settings in the locking statement itself, so a checkout prices with the values
//! committed at that moment on whatever replica it runs.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::CartError;
use super::repo::{self, CartKey, Consumed};
use super::service;
use super::state::CartRules;

pub use super::model::Address;

/// A cart locked for checkout and priced against the catalog now.
#[derive(Debug, Clone, Serialize)]
pub struct CheckoutCart {
    pub id: Uuid,
    pub user_id: Uuid,
    /// ISO 4217. An empty cart has no currency of its own: it is `""` then (and `lines` is
    /// empty).
    pub currency: String,
    pub email: Option<String>,
    /// The lines that can be sold now, at current prices and at most the stock available
    /// (see `changes`).
    pub lines: Vec<PricedLine>,
    pub totals: Totals,
    /// The discount as it applies now; `None` when the cart has none or it no longer
    /// applies (then `discount_problem` says why).
    pub discount: Option<AppliedDiscount>,
    pub shipping_address: Option<Address>,
    pub billing_address: Option<Address>,
    /// What re-validation found: `price_changed` (priced at the new price),
    /// `quantity_reduced` (priced at what can be sold), `unavailable` (left out).
    pub changes: Vec<LineChange>,
    /// Set once the cart was checked out (`complete`): a second checkout of the same cart
    /// returns that order.
    pub completed_order_id: Option<Uuid>,
    /// The discount code on the cart that does not apply now, and why.
    pub discount_problem: Option<DiscountProblem>,
}

/// A line priced now: every amount in minor units of the cart's currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PricedLine {
    pub line_id: Uuid,
    pub variant_id: Uuid,
    pub product_id: Uuid,
    /// Who sells it (orders split per seller).
    pub seller_id: Uuid,
    pub product_title: String,
    pub variant_title: String,
    pub sku: Option<String>,
    /// The catalog's current price.
    pub unit_price: i64,
    pub quantity: i32,
    /// `unit_price × quantity`.
    pub subtotal: i64,
    /// This line's share of the cart's discount.
    pub discount: i64,
    /// Tax on `subtotal − discount`, rounded half away from zero; inside `total` when the
    /// currency is tax-inclusive, added to it otherwise.
    pub tax: i64,
    /// What the line costs: `subtotal − discount (+ tax when exclusive)`.
    pub total: i64,
}

/// The cart's totals, minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Totals {
    pub subtotal: i64,
    pub discount: i64,
    pub tax: i64,
    pub shipping: i64,
    /// Sum of the lines' totals plus shipping.
    pub total: i64,
    /// Whether prices include tax (`cart.tax_inclusive_currencies`): then `tax` is the part
    /// of `total` that is tax, not an addition.
    pub tax_inclusive: bool,
}

/// The discount as applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AppliedDiscount {
    pub discount_id: Uuid,
    pub code: String,
    /// Minor units taken off the subtotal (the lines' `discount`s add up to it).
    pub amount: i64,
}

/// A discount code on the cart that does not apply now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DiscountProblem {
    pub discount_id: Uuid,
    pub code: String,
    /// The problem code POST /cart/discount-codes would answer with (`discount_expired`,
    /// `discount_used_up`, `discount_minimum_not_met`, ...).
    pub reason: String,
    pub detail: String,
}

/// What re-validation found about a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// The catalog's price differs from the one the shopper saw when setting the line.
    PriceChanged,
    /// The variant is gone, not on sale, out of stock, or priced in another currency now:
    /// the line is left out.
    Unavailable,
    /// Less stock is available (or the per-line cap is lower) than the line asks for: it is
    /// priced at what can be sold.
    QuantityReduced,
    /// A guest cart's line that the merge at sign-in left out (`reason`:
    /// `currency_mismatch`, `variant_not_on_sale` or `too_many_lines`); `line_id` is the
    /// guest cart's line. Reported once, on the response of the request that merged.
    NotMerged,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct LineChange {
    pub kind: ChangeKind,
    pub line_id: Uuid,
    pub variant_id: Uuid,
    /// The snapshot: the unit price when the shopper set the line.
    pub previous_unit_price: i64,
    /// The current price (absent when the variant is gone).
    pub unit_price: Option<i64>,
    /// What the line asks for.
    pub requested_quantity: i32,
    /// What can be sold now (0 when unavailable).
    pub quantity: Option<i32>,
    /// Why, for `not_merged`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Locks cart `cart_id` (SELECT … FOR UPDATE) if it belongs to `user_id` and is active or
/// completed, and prices it against the catalog now (current prices, statuses, stock, tax,
/// shipping, discount validity): three statements (the lock, the cart as committed once the
/// lock is granted, the catalog). `None` when no such cart of this user.
/// A completed cart comes back with `completed_order_id` set.
pub async fn lock_for_checkout(
    conn: &mut PgConnection,
    cart_id: Uuid,
    user_id: Uuid,
) -> Result<Option<CheckoutCart>, CartError> {
    let key = CartKey::Checkout {
        cart: cart_id,
        user: user_id,
    };
    let Some(cart) = repo::read(conn, key, true).await? else {
        return Ok(None);
    };
    let stored: BTreeMap<String, serde_json::Value> = cart
        .stored_rules
        .as_ref()
        .map(|j| j.0.clone())
        .unwrap_or_default();
    let rules = CartRules::from_stored(&stored);
    let catalog = service::catalog_for(conn, &cart, None).await?;
    let priced = service::price_cart(&cart, &catalog, &rules)?;
    Ok(Some(CheckoutCart {
        id: cart.id,
        user_id,
        currency: cart.currency.clone().unwrap_or_default(),
        email: cart.email.clone(),
        lines: priced.lines,
        // A cart whose total does not fit cannot be checked out: the shopper removes lines.
        totals: priced.totals.ok_or(CartError::TotalTooLarge)?,
        discount: priced.discount,
        shipping_address: cart.shipping_address.map(|a| a.0),
        billing_address: cart.billing_address.map(|a| a.0),
        changes: priced.changes,
        completed_order_id: cart.completed_order_id,
        discount_problem: priced.discount_problem,
    }))
}

/// Consumes one use of a discount for `user_id` in ONE statement (a conditional UPDATE of
/// the code's counter and a conditional upsert of the customer's, see
/// `repo::consume_discount`): active, inside its window, under its total usage limit and
/// under the per-customer limit, however many checkouts race. `Err(DiscountUnavailable)`
/// (409) when it cannot be used. In the rare race of one customer's two checkouts for the
/// last per-customer use, the statement itself fails (`DiscountCustomerLimit`) and the
/// caller's transaction is aborted: roll it back, as on any error.
pub async fn consume_discount(
    conn: &mut PgConnection,
    discount_id: Uuid,
    user_id: Uuid,
) -> Result<(), CartError> {
    match repo::consume_discount(conn, discount_id, user_id).await {
        Ok(Consumed::Yes) => Ok(()),
        Ok(Consumed::No) => Err(CartError::DiscountUnavailable),
        Err(e) if sqlstate(&e).as_deref() == Some(super::error::REFUSED) => {
            Err(CartError::DiscountUnavailable)
        }
        Err(e) => Err(e.into()),
    }
}

/// Gives one use of a discount back to `user_id` (an order cancelled before it was paid,
/// if the orders domain chooses to): both counters down by one. `false` when the user had
/// no use of it to give back.
pub async fn release_discount(
    conn: &mut PgConnection,
    discount_id: Uuid,
    user_id: Uuid,
) -> Result<bool, CartError> {
    Ok(repo::release_discount(conn, discount_id, user_id).await?)
}

/// Marks the cart completed by `order_id`: a completed cart is read-only, and the user's
/// next add starts a new cart. Completing a cart that is not active is a 409
/// `cart_completed` (a 404 when there is no such cart).
pub async fn complete(
    conn: &mut PgConnection,
    cart_id: Uuid,
    order_id: Uuid,
) -> Result<(), CartError> {
    if repo::complete(conn, cart_id, order_id).await? {
        Ok(())
    } else if repo::exists(conn, cart_id).await? {
        Err(CartError::CartCompleted)
    } else {
        Err(CartError::CartNotFound)
    }
}

fn sqlstate(e: &sqlx::Error) -> Option<String> {
    e.as_database_error()
        .and_then(|d| d.code())
        .map(|c| c.into_owned())
}
