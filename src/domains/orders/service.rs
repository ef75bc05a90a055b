//! The changes of an order that several callers share, each on the caller's transaction:
//! [`settle`] (the order became paid: staff's `mark-paid` for the `manual` provider now, a
//! provider's webhook with the payments issue) and [`cancel`] (the buyer, staff, and the job
//! that cancels orders left unpaid).
//!
//! Both lock the order first (`repo::lock`, `FOR UPDATE`), so a payment and a cancel of one
//! order take turns and the second sees what the first did, then move the stock through the
//! catalog's `api` on the same connection, then write the new status, the lines' stock
//! state, the history and the event in one statement (`repo::apply`).

use std::collections::BTreeMap;

use sqlx::PgConnection;
use uuid::Uuid;

use super::error::OrdersError;
use super::model::{Action, OrderId, OrderResponse, OrderStatus, Transition};
use super::repo::{self, Change, LineHold, LockedOrder, OrderRow};
use crate::domains::cart::api as cart;
use crate::domains::catalog::{CatalogError, api as catalog};
use crate::events::orders::{OrderCancelled, OrderPaid, SubOrderSnapshot};
use crate::platform::events::envelopes;

/// How long a re-reservation for a late payment lasts: it is committed at once.
const REHOLD_SECS: i64 = 60;

/// Marks the order paid: commits its stock holds (a hold that lapsed is taken again if the
/// stock is still there; if not the order lands in `requires_attention` rather than being
/// lost), records the purchases and sales with the catalog, and publishes `order.paid`.
/// `actor` is who said so: staff, or the provider's webhook (`system`).
pub async fn settle(
    conn: &mut PgConnection,
    id: OrderId,
    actor: &str,
    note: Option<&str>,
) -> Result<OrderResponse, OrdersError> {
    let locked = repo::lock(conn, id, None, true)
        .await?
        .ok_or(OrdersError::OrderNotFound)?;
    let status = locked.order.status;
    // Refuse before touching any stock.
    status.apply(Action::Pay)?;
    let holder = format!("order:{id}");
    let mut line_stock = Vec::new();
    let mut sold: BTreeMap<Uuid, i64> = BTreeMap::new();
    for h in by_variant(&locked)
        .into_iter()
        .filter(|h| h.stock == "held")
    {
        let committed = match catalog::commit(conn, h.reservation_id, actor).await {
            Ok(_) => true,
            // The hold lapsed and the sweeper (or an expiry) returned the stock: take it
            // again if it is still there.
            Err(CatalogError::ReservationNotFound) => {
                match catalog::reserve(conn, h.variant_id, h.quantity, &holder, REHOLD_SECS, actor)
                    .await
                {
                    Ok(again) => {
                        catalog::commit(conn, again.id, actor).await?;
                        true
                    }
                    Err(CatalogError::InsufficientStock(_) | CatalogError::VariantNotOnSale) => {
                        false
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        };
        if committed {
            line_stock.push((h.id, "committed"));
            *sold.entry(h.product_id).or_default() += i64::from(h.quantity);
        } else {
            line_stock.push((h.id, "missing"));
        }
    }
    let action = if line_stock.iter().any(|l| l.1 == "missing") {
        Action::PayWithoutStock
    } else {
        Action::Pay
    };
    let order_move = status.apply(action)?;
    let buyer = locked.order.user_id;
    let products: Vec<Uuid> = sold.keys().copied().collect();
    catalog::record_purchases(conn, buyer, &products).await?;
    for (product, quantity) in &sold {
        catalog::record_sales(conn, *product, *quantity).await?;
    }
    let o = &locked.order;
    let event = OrderPaid {
        order_id: id.0,
        user_id: buyer,
        number: o.number.clone(),
        email: o.email.clone(),
        currency: o.currency.clone(),
        total: o.total,
        payment_provider: o.payment_provider.clone(),
        status: order_move.to().as_str().to_owned(),
        sub_orders: snapshots(o),
    };
    let change = Change {
        order_move: Some(order_move),
        sub_moves: follow(&locked, action)?,
        line_stock,
        note,
        events: envelopes(&[event])?,
        ..Change::default()
    };
    finish(conn, id, actor, &locked, &change).await
}

/// Takes the units of the lines marked `missing` (an order paid after its stock was gone,
/// now in `requires_attention`) off `on_hand`, now that staff process it: each is reserved
/// and committed at once, in variant order, and recorded as sold. Too little stock is still
/// a 409 `insufficient_stock` naming the variant, and the caller's transaction rolls back
/// whatever was taken before it. Returns the lines' new stock state.
pub async fn take_missing(
    conn: &mut PgConnection,
    locked: &LockedOrder,
    actor: &str,
) -> Result<Vec<(Uuid, &'static str)>, OrdersError> {
    let holder = format!("order:{}", locked.order.id);
    let mut line_stock = Vec::new();
    let mut sold: BTreeMap<Uuid, i64> = BTreeMap::new();
    for h in by_variant(locked)
        .into_iter()
        .filter(|h| h.stock == "missing")
    {
        let hold = catalog::reserve(conn, h.variant_id, h.quantity, &holder, REHOLD_SECS, actor)
            .await
            .map_err(|e| OrdersError::reserve_failed(e, h.variant_id))?;
        catalog::commit(conn, hold.id, actor).await?;
        line_stock.push((h.id, "committed"));
        *sold.entry(h.product_id).or_default() += i64::from(h.quantity);
    }
    if !sold.is_empty() {
        let products: Vec<Uuid> = sold.keys().copied().collect();
        catalog::record_purchases(conn, locked.order.user_id, &products).await?;
        for (product, quantity) in &sold {
            catalog::record_sales(conn, *product, *quantity).await?;
        }
    }
    Ok(line_stock)
}

/// Who cancels, which decides what they may cancel and what the event says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Canceller {
    /// The buyer: only before any part has shipped.
    Customer,
    /// Staff (`orders.manage`): until delivery is settled.
    Staff,
    /// The unpaid-order job.
    PaymentTimeout,
}

impl Canceller {
    /// What the cancel is to the order's state machine.
    pub fn action(self) -> Action {
        match self {
            Self::Customer => Action::CancelByCustomer,
            Self::Staff | Self::PaymentTimeout => Action::CancelByStaff,
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Staff => "staff",
            Self::PaymentTimeout => "payment_timeout",
        }
    }
}

/// Cancels the order: stock still held is released, stock already sold returns to
/// `on_hand` (`catalog::restock`) unless its part has shipped (that is a return), an unpaid order's discount use is given back, and `order.cancelled` says whether it had been paid (a
/// refund is then due). `viewer` is the buyer cancelling their own order (`None` for
/// staff and the job). `Ok(None)` when the job finds the order no longer unpaid.
pub async fn cancel(
    conn: &mut PgConnection,
    id: OrderId,
    viewer: Option<Uuid>,
    who: Canceller,
    actor: &str,
    note: Option<&str>,
) -> Result<Option<OrderResponse>, OrdersError> {
    let locked = repo::lock(conn, id, viewer, viewer.is_none())
        .await?
        .ok_or(OrdersError::OrderNotFound)?;
    let status = locked.order.status;
    if who == Canceller::PaymentTimeout && status != OrderStatus::PendingPayment {
        // Paid (or cancelled) between the job's pick and its lock.
        return Ok(None);
    }
    let action = who.action();
    let order_move = status.apply(action)?;
    // The buyer may not cancel once any seller's part has shipped.
    let sub_moves = follow(&locked, action)?;
    let reason = format!("order {} cancelled", locked.order.number);
    let mut line_stock = Vec::new();
    let shipped = shipped_lines(&locked);
    for h in by_variant(&locked) {
        match h.stock.as_str() {
            "held" => {
                match catalog::release(conn, h.reservation_id, actor).await {
                    // Gone already: it lapsed, and the sweeper returns (or returned) it.
                    Ok(_) | Err(CatalogError::ReservationNotFound) => {}
                    Err(e) => return Err(e.into()),
                }
                line_stock.push((h.id, "released"));
            }
            // A part that shipped (or was delivered) has left the warehouse: its units come
            // back, if ever, as a return, not with the cancel.
            "committed" if shipped.contains(&h.id) => {}
            "committed" => {
                // `false`: the variant is gone, so nothing went back on hand and the line
                // stays `committed` (sold) rather than claiming a restock.
                let back = catalog::restock(conn, h.variant_id, h.quantity, &reason, actor).await?;
                if back {
                    line_stock.push((h.id, "restocked"));
                }
            }
            _ => {}
        }
    }
    let o = &locked.order;
    // An order cancelled before it was paid gives its discount use back (an order that timed
    // out should not cost the buyer a one-use code); a paid one keeps it, as a refund does.
    if let (false, Some(discount)) = (status.is_paid(), o.discount_id) {
        cart::release_discount(conn, discount, o.user_id).await?;
    }
    let event = OrderCancelled {
        order_id: id.0,
        user_id: o.user_id,
        number: o.number.clone(),
        reason: who.reason().to_owned(),
        from: status.as_str().to_owned(),
        was_paid: status.is_paid(),
    };
    let change = Change {
        order_move: Some(order_move),
        sub_moves,
        line_stock,
        cancel_reason: Some(who.reason()),
        note,
        events: envelopes(&[event])?,
        ..Change::default()
    };
    finish(conn, id, actor, &locked, &change).await.map(Some)
}

/// The order's lines sorted by variant id: every path that touches stock rows (checkout,
/// `settle`, `cancel`, processing an order that needs attention) locks them in this one
/// order, so two transactions over the same variants cannot lock them crosswise and
/// deadlock.
pub fn by_variant(locked: &LockedOrder) -> Vec<&LineHold> {
    let mut holds: Vec<&LineHold> = locked.holds.iter().collect();
    holds.sort_by_key(|h| (h.variant_id, h.id));
    holds
}

/// The ids of the lines whose part has shipped or been delivered.
fn shipped_lines(locked: &LockedOrder) -> Vec<Uuid> {
    locked
        .order
        .sub_orders
        .iter()
        .filter(|s| matches!(s.status, OrderStatus::Shipped | OrderStatus::Delivered))
        .flat_map(|s| s.lines.iter().map(|l| l.id))
        .collect()
}

/// The sub-orders' moves that follow an order-level action (each refused as the order
/// would be: a customer's cancel of an order one of whose parts shipped is a 409 naming
/// `shipped`). Parts already cancelled stay as they are.
pub fn follow(
    locked: &LockedOrder,
    action: Action,
) -> Result<Vec<(super::model::SubOrderId, Transition)>, OrdersError> {
    locked
        .order
        .sub_orders
        .iter()
        .filter(|s| s.status != OrderStatus::Cancelled)
        .map(|s| match s.status.apply(action) {
            Ok(t) => Ok((s.id, t)),
            // The order is `paid` while one part has shipped: name the part's situation.
            Err(OrdersError::InvalidTransition { from, action })
                if from != locked.order.status.as_str() =>
            {
                Err(OrdersError::PartInvalidTransition { from, action })
            }
            Err(e) => Err(e),
        })
        .collect()
}

/// What the events say about each seller's part.
pub fn snapshots(o: &OrderRow) -> Vec<SubOrderSnapshot> {
    o.sub_orders
        .iter()
        .map(|s| SubOrderSnapshot {
            sub_order_id: s.id.0,
            seller_id: s.seller_id,
            total: s.total,
            items: s.lines.iter().map(|l| i64::from(l.quantity)).sum(),
        })
        .collect()
}

/// Writes the change and reads the order back (on the same transaction, so the caller's
/// answer is what it committed). Under the row lock every move finds its `from` status;
/// anything less is a bug worth a 500 rather than a half-applied change.
pub async fn finish(
    conn: &mut PgConnection,
    id: OrderId,
    actor: &str,
    locked: &LockedOrder,
    change: &Change<'_>,
) -> Result<OrderResponse, OrdersError> {
    let expected = i64::from(change.order_move.is_some()) + change.sub_moves.len() as i64;
    let moved = repo::apply(conn, id, actor, change).await?;
    if moved != expected {
        return Err(OrdersError::Internal(anyhow::anyhow!(
            "order {id} ({}): {moved} of {expected} moves applied under its row lock",
            locked.order.status.as_str()
        )));
    }
    let row = repo::order(&mut *conn, id, Uuid::nil(), true)
        .await?
        .ok_or(OrdersError::OrderNotFound)?;
    Ok(row)
}

/// The job's work: cancels up to `limit` orders still unpaid `grace_secs` after their hold
/// lapsed (`payment_timeout`), each in its own transaction, so one that fails (logged and
/// skipped until the next run) holds up none of the others. An order another replica is
/// cancelling meanwhile waits for its row lock and is then found no longer unpaid. Returns
/// how many it cancelled. Each order's open payment is cancelled at its provider first,
/// best effort (`settlement::cancel_open`).
pub async fn cancel_unpaid(
    db: &sqlx::PgPool,
    providers: &super::providers::Providers,
    grace_secs: i64,
    limit: i64,
    actor: &str,
) -> Result<usize, OrdersError> {
    let due = {
        let mut conn = db.acquire().await?;
        repo::unpaid_due(&mut conn, grace_secs, limit).await?
    };
    let mut cancelled = 0;
    for id in due {
        let mut tx = db.begin().await?;
        let who = Canceller::PaymentTimeout;
        let done =
            match super::settlement::cancel_open(&mut tx, providers, id, None, who, actor).await {
                Ok(()) => cancel(&mut tx, id, None, who, actor, None).await,
                Err(e) => Err(e),
            };
        match done {
            Ok(done) => {
                tx.commit().await?;
                cancelled += usize::from(done.is_some());
            }
            Err(e) => {
                // The transaction rolls back on drop; the order waits for staff or the next run.
                tracing::error!(order = %id, error = %e, "cancelling an unpaid order failed");
            }
        }
    }
    Ok(cancelled)
}
