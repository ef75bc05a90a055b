//! What cart and orders call in-process (declared as their feature dependency on `catalog`):
//! stock reservations, on the caller's `&mut PgConnection`, so a checkout reserves, commits
//! and writes its own rows in one PostgreSQL transaction. Each call is one statement that
//! changes the counters, the hold and the stock ledger together (plus a
//! `catalog.stock.low` event when the change crosses a variant's threshold); purchases,
//! which make reviews `verified_purchase`; and `variants_for_sale`, the current prices,
//! statuses and stock that carts are priced from.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::error::CatalogError;
use super::repo::{self, HoldRow, StockRow};
use crate::events::catalog::StockLow;
use crate::platform::events::publish;

/// The most one reservation may hold.
pub const MAX_QUANTITY: i32 = 1_000_000;
/// The longest a reservation may last: a week.
pub const MAX_TTL_SECS: i64 = 7 * 24 * 3600;

/// The exponent of an active ISO 4217 currency (`None` for anything else), for domains that
/// take currencies of their own (discount codes).
pub use super::model::currency_exponent;

/// A hold on stock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub id: Uuid,
    pub variant_id: Uuid,
    pub holder: String,
    pub quantity: i32,
    pub expires_at: DateTime<Utc>,
    /// The variant's counters after the call.
    pub on_hand: i32,
    pub reserved: i32,
}

impl From<HoldRow> for Reservation {
    fn from(h: HoldRow) -> Self {
        Self {
            id: h.id,
            variant_id: h.stock.variant_id.0,
            holder: h.holder,
            quantity: h.quantity,
            expires_at: h.expires_at,
            on_hand: h.stock.on_hand,
            reserved: h.stock.reserved,
        }
    }
}

/// Reserves `quantity` (1 to [`MAX_QUANTITY`]) of a variant on sale for `holder` for
/// `ttl_secs` (1 to [`MAX_TTL_SECS`]). Never oversells, however many callers race: a 409
/// `insufficient_stock` naming what is available, or a 404 for a variant not on sale.
/// `actor` is recorded in the ledger (`user:<id>`, `cart:<id>`, `system`).
pub async fn reserve(
    conn: &mut PgConnection,
    variant_id: Uuid,
    quantity: i32,
    holder: &str,
    ttl_secs: i64,
    actor: &str,
) -> Result<Reservation, CatalogError> {
    check(quantity, holder, ttl_secs)?;
    match repo::reserve(conn, variant_id, quantity, holder, ttl_secs, actor).await? {
        Some(hold) => {
            warn_if_low(conn, &hold.stock, quantity).await?;
            Ok(hold.into())
        }
        None => match repo::available(conn, variant_id).await? {
            Some(available) => Err(CatalogError::InsufficientStock(available.max(0))),
            None => Err(CatalogError::VariantNotOnSale),
        },
    }
}

/// Commits a hold: the stock is sold (`on_hand` and `reserved` both go down by its
/// quantity). A 404 for a hold that is gone or expired.
pub async fn commit(
    conn: &mut PgConnection,
    reservation_id: Uuid,
    actor: &str,
) -> Result<Reservation, CatalogError> {
    let hold = repo::end_hold(conn, reservation_id, true, actor)
        .await?
        .ok_or(CatalogError::ReservationNotFound)?;
    // Selling a reservation leaves `available` as it was: no low-stock crossing here.
    Ok(hold.into())
}

/// Releases a hold: its quantity is available again. A 404 for a hold that is gone or
/// expired (the sweeper releases those).
pub async fn release(
    conn: &mut PgConnection,
    reservation_id: Uuid,
    actor: &str,
) -> Result<Reservation, CatalogError> {
    let hold = repo::end_hold(conn, reservation_id, false, actor)
        .await?
        .ok_or(CatalogError::ReservationNotFound)?;
    Ok(hold.into())
}

/// Returns sold stock to `on_hand` (an order cancelled after its stock was committed), with
/// `reason` in the stock ledger. One statement on the caller's connection; `false` when the
/// variant is gone (deleted since), so there is nothing to return it to.
pub async fn restock(
    conn: &mut PgConnection,
    variant_id: Uuid,
    quantity: i32,
    reason: &str,
    actor: &str,
) -> Result<bool, CatalogError> {
    if !(1..=MAX_QUANTITY).contains(&quantity) {
        return Err(CatalogError::invalid_field(
            "quantity",
            "range",
            format!("must be between 1 and {MAX_QUANTITY}"),
        ));
    }
    // The caller acts for the store, not as the variant's seller: no ownership check.
    let owner = (None, true);
    let stock = repo::adjust_stock(
        conn,
        super::model::VariantId(variant_id),
        quantity,
        reason,
        actor,
        owner,
    )
    .await?;
    Ok(stock.is_some())
}

/// Records that `user_id` bought `product_ids`, on the caller's connection (the orders
/// domain calls this in the transaction that marks an order paid, when `orders` is compiled
/// in). Their reviews of those products are marked `verified_purchase` at once, and a review
/// written later is verified when it is written. Repeats change nothing; returns how many
/// purchases were new. Ids of products catalog does not know are recorded all the same (a
/// product deleted since the order was placed was still bought).
pub async fn record_purchases(
    conn: &mut PgConnection,
    user_id: Uuid,
    product_ids: &[Uuid],
) -> Result<i64, CatalogError> {
    if product_ids.is_empty() {
        return Ok(0);
    }
    Ok(repo::record_purchases(conn, user_id, product_ids).await?)
}

/// Publishes `catalog.stock.low` when taking `taken` from a tracked variant's available
/// stock crossed its threshold, in the caller's transaction.
pub(super) async fn warn_if_low(
    conn: &mut PgConnection,
    s: &StockRow,
    taken: i32,
) -> Result<(), sqlx::Error> {
    let after = s.on_hand - s.reserved;
    let before = after.saturating_add(taken);
    if s.track_inventory && before > s.low_stock_threshold && after <= s.low_stock_threshold {
        publish(
            conn,
            &StockLow {
                variant_id: s.variant_id.0,
                product_id: s.product_id.0,
                user_id: s.seller_id,
                sku: s.sku.clone(),
                available: after,
                threshold: s.low_stock_threshold,
            },
        )
        .await?;
    }
    Ok(())
}

fn check(quantity: i32, holder: &str, ttl_secs: i64) -> Result<(), CatalogError> {
    let mut errors = Vec::new();
    let mut fail = |field: &str, message: String| {
        errors.push(crate::platform::error::FieldError {
            field: field.into(),
            code: "range".into(),
            message,
        })
    };
    if !(1..=MAX_QUANTITY).contains(&quantity) {
        fail("quantity", format!("must be between 1 and {MAX_QUANTITY}"));
    }
    if !(1..=MAX_TTL_SECS).contains(&ttl_secs) {
        fail("ttl_secs", format!("must be between 1 and {MAX_TTL_SECS}"));
    }
    let n = holder.chars().count();
    if n == 0 || n > 200 {
        fail("holder", "must be 1 to 200 characters".into());
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CatalogError::invalid(errors))
    }
}

/// Counts `quantity` more units of a product sold (orders call it when an order is paid),
/// for the popularity sort and `/products/popular`. One UPDATE on the caller's connection;
/// `false` when no such product exists.
pub async fn record_sales(
    conn: &mut PgConnection,
    product_id: Uuid,
    quantity: i64,
) -> Result<bool, CatalogError> {
    if quantity <= 0 {
        return Ok(true);
    }
    Ok(repo::add_sales(conn, super::model::ProductId(product_id), quantity).await?)
}

/// A variant's current sale data, as cart and orders price it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantForSale {
    pub variant_id: Uuid,
    pub product_id: Uuid,
    pub seller_id: Uuid,
    pub product_title: String,
    pub variant_title: String,
    pub sku: Option<String>,
    /// Minor units of `currency`.
    pub price: i64,
    /// ISO 4217, the product's.
    pub currency: String,
    pub category_id: Option<Uuid>,
    /// The product's category and its ancestors, root first (empty without a category), so
    /// a rule about a category covers its subcategories.
    pub category_path: Vec<Uuid>,
    /// The product is `active` and neither it nor the variant is deleted.
    pub on_sale: bool,
    /// What may be sold now (`on_hand - reserved`, never below zero); `None` when the variant
    /// does not run out (stock not tracked, or backorders allowed).
    pub available: Option<i32>,
}

impl From<repo::SaleRow> for VariantForSale {
    fn from(r: repo::SaleRow) -> Self {
        Self {
            variant_id: r.variant_id,
            product_id: r.product_id,
            seller_id: r.seller_id,
            product_title: r.product_title,
            variant_title: r.variant_title,
            sku: r.sku,
            price: r.price,
            currency: r.currency,
            category_id: r.category_id,
            category_path: r.category_path,
            on_sale: r.on_sale,
            available: r.available,
        }
    }
}

/// The current sale data of the variants `ids`, in one statement on the caller's connection
/// (no lock: a checkout's reservation is what guarantees the stock). Variants that are not
/// on sale any more (draft, archived or deleted product, deleted variant) are returned with
/// `on_sale = false`; ids the catalog never knew are absent.
pub async fn variants_for_sale(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<Vec<VariantForSale>, CatalogError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = repo::variants_for_sale(conn, ids).await?;
    Ok(rows.into_iter().map(VariantForSale::from).collect())
}
