//! Checkout: `POST /orders` turns the caller's cart into an order, under a required
//! `Idempotency-Key` (`platform::idempotency`), in ONE transaction that spans the cart,
//! catalog and orders schemas:
//!
//! 1. `BEGIN`, then the key's advisory lock and stored response (1 statement: a replay
//!    ends here, with its `ROLLBACK`: 3 round trips);
//! 2. `cart::api::lock_for_checkout`: the cart `FOR UPDATE`, priced against the catalog
//!    now (3 statements: the lock, the cart, the catalog's view of its variants). A cart already checked out answers with its order (200); any
//!    re-validation change (a new price, less stock, a line gone, a discount that no longer
//!    applies) is a 409 `cart_changed` listing them, so the buyer confirms (the cart's
//!    `PUT /items/{line}` accepts a price, `DELETE` drops a line) and checks out again;
//! 3. `catalog::api::reserve` for each line, in variant-id order whatever the cart's order
//!    (so checkouts over the same variants never lock them crosswise), (1 statement each, plus one for a
//!    `catalog.stock.low` event when a line crosses its threshold): a timed hold
//!    (`orders.hold_ttl_secs`), never overselling; too little stock is a 409 naming the
//!    variant;
//! 4. `cart::api::consume_discount` (1 statement, when the cart has a discount): the usage
//!    limits hold however many checkouts race; a code used up meanwhile is a 409 and the
//!    whole transaction (holds included) rolls back;
//! 5. the order, its per-seller sub-orders, its lines, its first history row and
//!    `order.created` (1 statement, UNNEST arrays);
//! 6. `cart::api::complete` (1), the stored response (1), `COMMIT`.
//!
//! So `9 + lines (+1 with a discount)` round trips, `BEGIN` and `COMMIT` included: 10 for a
//! one-line cart, 12 for three (`tests/api/orders/checkout.rs` holds it to that).
//! A failure anywhere rolls everything back: no hold, no order, no used discount.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{SubsecRound, Utc};
use utoipa::OpenApi;
use uuid::Uuid;

use super::access;
use super::error::OrdersError;
use super::model::*;
use super::repo::{self, NewLine, NewOrder, NewSubOrder};
use super::state::OrdersState;
use crate::domains::cart::api::{self as cart, CheckoutCart};
use crate::domains::catalog::api as catalog;
use crate::events::orders::{OrderCreated, SubOrderSnapshot};
use crate::platform::error::FieldError;
use crate::platform::error::responses::{BadRequest, Forbidden, Invalid, NotFound, Unauthorized};
use crate::platform::events::envelopes;
use crate::platform::http::ValidatedJson;
use crate::platform::idempotency::{Begun, Idempotency};
use crate::platform::{CurrentUser, Platform};

#[derive(OpenApi)]
#[openapi(paths(checkout))]
pub struct CheckoutApi;

/// Check out the caller's cart: reserves its stock, consumes its discount, creates the order
/// (`pending_payment`, one part per seller), completes the cart and publishes
/// `order.created`, all in one transaction. Needs an `Idempotency-Key` header: a retry gets
/// the first response again (`Idempotent-Replayed: true`) for 24 hours; the same key with
/// another body is a 422, a retry while the first attempt runs a 409. Checking out a cart
/// already checked out returns its order (200).
#[utoipa::path(
    post, path = "", tag = "orders", request_body = CheckoutRequest,
    security(("bearer" = []), ("api_key" = [])),
    params(("Idempotency-Key" = String, Header, description = "A unique value per checkout (e.g. a UUID), 1 to 255 characters; retries send the same one")),
    responses(
        (status = 201, body = OrderResponse, description = "The order placed",
            headers(("Idempotent-Replayed" = bool, description = "`true` on a retry's replay of the first response"))),
        (status = 200, body = OrderResponse, description = "The cart was checked out already: its order",
            headers(("Idempotent-Replayed" = bool, description = "`true` on a retry's replay of the first response"))),
        (status = 409, body = crate::platform::error::Problem, content_type = "application/problem+json",
            description = "The cart changed (`cart_changed`), too little stock (`insufficient_stock`), a used-up code, or an attempt with this key still running",
            headers(("Retry-After" = u32, description = "Seconds to wait, when an attempt with this key is still running"))),
        BadRequest, Unauthorized, Forbidden, NotFound, Invalid
    )
)]
#[tracing::instrument(skip_all)]
pub async fn checkout(
    platform: web::Data<Platform>,
    state: web::Data<OrdersState>,
    req: HttpRequest,
    user: CurrentUser,
    body: ValidatedJson<CheckoutRequest>,
) -> Result<HttpResponse, OrdersError> {
    let buyer = access::buyer(&user)?;
    let b = body.into_inner();
    let idem = Idempotency::of_request(&req, &user.actor(), &b)?;
    // Any configured provider (`manual` always; Stripe and Razorpay when their keys are set).
    if state.providers.get(&b.payment_provider).is_none() {
        let offered = state.providers.names().join(", ");
        return Err(OrdersError::PaymentProviderUnavailable(
            b.payment_provider,
            offered,
        ));
    }
    let actor = user.actor();
    let mut tx = platform.db.begin().await?;
    if let Begun::Replay(stored) = idem.begin(&mut tx).await? {
        // Ends the transaction here rather than when the pool reuses the connection.
        tx.rollback().await?;
        return Ok(stored.response());
    }
    let c = cart::lock_for_checkout(&mut tx, b.cart_id, buyer)
        .await?
        .ok_or(OrdersError::CartNotFound)?;
    let (status, order) = match c.completed_order_id {
        Some(done) => {
            let row = repo::order(&mut *tx, OrderId(done), buyer, false)
                .await?
                .ok_or(OrdersError::OrderNotFound)?;
            (StatusCode::OK, row)
        }
        None => (
            StatusCode::CREATED,
            place(&mut tx, &state, &c, &b.payment_provider, &actor).await?,
        ),
    };
    if !idem.complete(&mut tx, status, &order).await? {
        // An attempt with this key committed while we worked: ours rolls back.
        tx.rollback().await?;
        return Ok(idem.replay(&platform.db).await?);
    }
    tx.commit().await?;
    Ok(HttpResponse::build(status).json(order))
}

/// Steps 3 to 6 of the module header, on the checkout's transaction.
async fn place(
    tx: &mut sqlx::PgConnection,
    state: &OrdersState,
    c: &CheckoutCart,
    provider: &str,
    actor: &str,
) -> Result<OrderResponse, OrdersError> {
    let changes = changes_of(c);
    if !changes.is_empty() {
        return Err(OrdersError::cart_changed(changes));
    }
    if c.lines.is_empty() {
        return Err(OrdersError::CartEmpty);
    }
    let id = OrderId::new();
    let holder = format!("order:{id}");
    let ttl = state.settings.hold_ttl_secs;
    let mut lines = Vec::with_capacity(c.lines.len());
    let mut hold_expires_at = None;
    // One part per seller, in the order their first line appears.
    let mut parts: Vec<NewSubOrder> = Vec::new();
    // Stock rows are locked in one fixed order (by variant id), whatever the cart's order:
    // two checkouts of carts holding the same variants in different orders would otherwise
    // lock them crosswise and deadlock (`40P01`). `settle` and `cancel` use the same order.
    let mut by_variant: Vec<usize> = (0..c.lines.len()).collect();
    by_variant.sort_by_key(|&i| c.lines[i].variant_id);
    let mut holds: Vec<Option<catalog::Reservation>> = c.lines.iter().map(|_| None).collect();
    for i in by_variant {
        let l = &c.lines[i];
        let hold = catalog::reserve(tx, l.variant_id, l.quantity, &holder, ttl, actor)
            .await
            .map_err(|e| OrdersError::reserve_failed(e, l.variant_id))?;
        holds[i] = Some(hold);
    }
    for (l, hold) in c.lines.iter().zip(holds) {
        let hold = hold.ok_or_else(|| anyhow::anyhow!("every line was reserved"))?;
        // The order's holds last as long as the first of them to lapse.
        hold_expires_at = Some(match hold_expires_at {
            Some(t) if t < hold.expires_at => t,
            _ => hold.expires_at,
        });
        let part = match parts.iter_mut().position(|p| p.seller_id == l.seller_id) {
            Some(i) => &mut parts[i],
            None => {
                parts.push(NewSubOrder {
                    id: SubOrderId::new(),
                    seller_id: l.seller_id,
                    totals: [0; 4],
                });
                parts
                    .last_mut()
                    .ok_or_else(|| anyhow::anyhow!("just pushed"))?
            }
        };
        let totals = [l.subtotal, l.discount, l.tax, l.total];
        for (sum, v) in part.totals.iter_mut().zip(totals) {
            *sum += v;
        }
        lines.push(NewLine {
            id: Uuid::now_v7(),
            sub_order_id: part.id,
            product_id: l.product_id,
            variant_id: l.variant_id,
            seller_id: l.seller_id,
            product_title: l.product_title.clone(),
            variant_title: l.variant_title.clone(),
            sku: l.sku.clone(),
            unit_price: l.unit_price,
            quantity: l.quantity,
            totals,
            reservation_id: hold.id,
        });
    }
    if let Some(d) = &c.discount {
        cart::consume_discount(tx, d.discount_id, c.user_id).await?;
    }
    let now = Utc::now().trunc_subsecs(6);
    let hold_expires_at = hold_expires_at.unwrap_or(now).trunc_subsecs(6);
    let number = number_of(id);
    let t = &c.totals;
    let address = |a: &Option<cart::Address>| a.as_ref().and_then(|a| serde_json::to_value(a).ok());
    let new = NewOrder {
        id,
        number: &number,
        user_id: c.user_id,
        cart_id: c.id,
        currency: &c.currency,
        email: c.email.as_deref(),
        totals: [t.subtotal, t.discount, t.tax, t.shipping, t.total],
        tax_inclusive: t.tax_inclusive,
        discount: c
            .discount
            .as_ref()
            .map(|d| (d.discount_id, d.code.as_str())),
        shipping_address: address(&c.shipping_address),
        billing_address: address(&c.billing_address),
        payment_provider: provider,
        hold_expires_at,
        created_at: now,
        actor,
        sub_orders: parts,
        lines,
    };
    let event = OrderCreated {
        order_id: id.0,
        user_id: c.user_id,
        number: number.clone(),
        email: c.email.clone(),
        currency: c.currency.clone(),
        total: t.total,
        payment_provider: provider.to_owned(),
        sub_orders: new
            .sub_orders
            .iter()
            .map(|s| SubOrderSnapshot {
                sub_order_id: s.id.0,
                seller_id: s.seller_id,
                total: s.totals[3],
                items: new
                    .lines
                    .iter()
                    .filter(|l| l.sub_order_id == s.id)
                    .map(|l| i64::from(l.quantity))
                    .sum(),
            })
            .collect(),
    };
    repo::insert_order(tx, &new, &envelopes(&[event])?)
        .await
        .map_err(|e| match crate::platform::error::violated_constraint(&e) {
            // The cart row lock makes this unreachable short of a bug; say what it was.
            Some(super::error::ONE_ORDER_PER_CART) => {
                OrdersError::Internal(anyhow::anyhow!("cart {} has an order already", c.id))
            }
            _ => e.into(),
        })?;
    cart::complete(tx, c.id, id.0).await?;
    Ok(response_of(&new))
}

/// What re-validation found, as the 409's `errors`: each line that changed
/// (`lines[<line id>]`, `price_changed` / `quantity_reduced` / `unavailable`) and a discount
/// that no longer applies (`discount`, with its reason).
fn changes_of(c: &CheckoutCart) -> Vec<FieldError> {
    let mut out: Vec<FieldError> = c
        .changes
        .iter()
        .map(|ch| {
            let code = serde_json::to_value(ch.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let message = match (ch.unit_price, ch.quantity) {
                (Some(p), Some(q)) if q > 0 => format!(
                    "variant {}: was {} at {}, now {} at {}",
                    ch.variant_id, ch.requested_quantity, ch.previous_unit_price, q, p
                ),
                _ => format!("variant {}: no longer available", ch.variant_id),
            };
            FieldError {
                field: format!("lines[{}]", ch.line_id),
                code,
                message,
            }
        })
        .collect();
    if let Some(p) = &c.discount_problem {
        out.push(FieldError {
            field: "discount".into(),
            code: p.reason.clone(),
            message: format!("{}: {}", p.code, p.detail),
        });
    }
    out
}

/// `BS-` and 12 hex digits of the id's random tail (a v7 id's last bytes are random).
fn number_of(id: OrderId) -> String {
    format!("BS-{}", hex::encode_upper(&id.0.as_bytes()[10..]))
}

/// The 201's body, from what was written (the statement returns nothing, and reading the
/// order back would be one more round trip for what we hold already).
fn response_of(o: &NewOrder<'_>) -> OrderResponse {
    let sub_orders: Vec<_> = o
        .sub_orders
        .iter()
        .map(|s| SubOrderResponse {
            id: s.id,
            seller_id: s.seller_id,
            status: OrderStatus::PendingPayment,
            subtotal: s.totals[0],
            discount: s.totals[1],
            tax: s.totals[2],
            total: s.totals[3],
            tracking: None,
            shipped_at: None,
            delivered_at: None,
            lines: o
                .lines
                .iter()
                .filter(|l| l.sub_order_id == s.id)
                .map(|l| OrderLineResponse {
                    id: l.id,
                    product_id: l.product_id,
                    variant_id: l.variant_id,
                    seller_id: l.seller_id,
                    product_title: l.product_title.clone(),
                    variant_title: l.variant_title.clone(),
                    sku: l.sku.clone(),
                    unit_price: l.unit_price,
                    quantity: l.quantity,
                    subtotal: l.totals[0],
                    discount: l.totals[1],
                    tax: l.totals[2],
                    total: l.totals[3],
                    stock: "held".into(),
                })
                .collect(),
        })
        .collect();
    OrderResponse {
        id: o.id,
        number: o.number.to_owned(),
        user_id: o.user_id,
        cart_id: o.cart_id,
        status: OrderStatus::PendingPayment,
        currency: o.currency.to_owned(),
        email: o.email.map(str::to_owned),
        subtotal: o.totals[0],
        discount: o.totals[1],
        tax: o.totals[2],
        shipping: o.totals[3],
        total: o.totals[4],
        tax_inclusive: o.tax_inclusive,
        discount_id: o.discount.map(|d| d.0),
        discount_code: o.discount.map(|d| d.1.to_owned()),
        shipping_address: o.shipping_address.clone(),
        billing_address: o.billing_address.clone(),
        payment_provider: o.payment_provider.to_owned(),
        hold_expires_at: o.hold_expires_at,
        paid_at: None,
        cancel_reason: None,
        created_at: o.created_at,
        updated_at: o.created_at,
        sub_orders: sqlx::types::Json(sub_orders),
    }
}
