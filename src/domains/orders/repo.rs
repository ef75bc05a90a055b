//! Every SQL statement of the orders domain, schema-qualified, on the caller's connection
//! (the caller owns the transaction) or the pool.
//!
//! An order is read in one statement with its sub-orders and their lines aggregated as
//! JSON; it is written at checkout in one statement (order, sub-orders, lines, the first
//! history row and the outbox event as data-modifying CTEs over UNNEST arrays), and every
//! later change is one statement too ([`apply`]): conditional on the status it moves from,
//! with its history rows and events.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{FromRow, PgConnection, PgExecutor, Postgres, QueryBuilder, Row};
use uuid::Uuid;

use super::model::{
    HistoryResponse, LedgerEntry, OrderId, OrderStatus, PaymentId, PaymentStatus, SubOrderId,
    Transition,
};
use super::providers::ProviderEvent;
use crate::events::orders::Tracking;
use crate::platform::events::{Event, push_insert};

/// An order with its sub-orders and lines, as one statement reads it: the response body
/// itself.
pub use super::model::OrderResponse as OrderRow;

/// The columns of [`OrderRow`] over `orders.orders o`: the sub-orders, each with its lines,
/// in the order they were created.
const ORDER: &str = "o.id, o.number, o.user_id, o.cart_id, o.status, o.currency, o.email,
    o.subtotal, o.discount, o.tax, o.shipping, o.total, o.tax_inclusive, o.discount_id,
    o.discount_code,
    o.shipping_address, o.billing_address, o.payment_provider, o.hold_expires_at, o.paid_at,
    o.cancel_reason, o.created_at, o.updated_at,
    COALESCE((SELECT jsonb_agg(jsonb_build_object(
            'id', s.id, 'seller_id', s.seller_id, 'status', s.status, 'subtotal', s.subtotal,
            'discount', s.discount, 'tax', s.tax, 'total', s.total,
            'tracking', CASE WHEN s.carrier IS NULL THEN NULL ELSE jsonb_build_object(
                'carrier', s.carrier, 'number', s.tracking_number, 'url', s.tracking_url) END,
            'shipped_at', s.shipped_at, 'delivered_at', s.delivered_at,
            'lines', (SELECT jsonb_agg(jsonb_build_object(
                    'id', l.id, 'product_id', l.product_id, 'variant_id', l.variant_id,
                    'seller_id', l.seller_id, 'product_title', l.product_title,
                    'variant_title', l.variant_title, 'sku', l.sku, 'unit_price', l.unit_price,
                    'quantity', l.quantity, 'subtotal', l.subtotal, 'discount', l.discount,
                    'tax', l.tax, 'total', l.total, 'stock', l.stock) ORDER BY l.position)
                FROM orders.order_lines l WHERE l.sub_order_id = s.id)
        ) ORDER BY s.id) FROM orders.sub_orders s WHERE s.order_id = o.id), '[]') AS sub_orders";

/// One order the viewer may see (its buyer, or staff), in one statement.
pub async fn order(
    db: impl PgExecutor<'_>,
    id: OrderId,
    viewer: Uuid,
    staff: bool,
) -> Result<Option<OrderRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ORDER} FROM orders.orders o WHERE o.id = $1 AND (o.user_id = $2 OR $3)"
    ))
    .bind(id)
    .bind(viewer)
    .bind(staff)
    .fetch_optional(db)
    .await
}

/// The filters of a list of orders.
pub struct ListFilter {
    /// `None`: every buyer's (staff).
    pub user_id: Option<Uuid>,
    pub status: Option<OrderStatus>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
}

/// A page of orders, newest first, keyset on (created_at, id), in one statement.
pub async fn list(
    db: impl PgExecutor<'_>,
    f: &ListFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    fetch: i64,
) -> Result<Vec<OrderRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ORDER} FROM orders.orders o
          WHERE ($1::uuid IS NULL OR o.user_id = $1)
            AND ($2::text IS NULL OR o.status = $2)
            AND ($3::timestamptz IS NULL OR o.created_at >= $3)
            AND ($4::timestamptz IS NULL OR o.created_at < $4)
            AND ($5::timestamptz IS NULL OR (o.created_at, o.id) < ($5, $6))
          ORDER BY o.created_at DESC, o.id DESC
          LIMIT $7"
    ))
    .bind(f.user_id)
    .bind(f.status.map(OrderStatus::as_str))
    .bind(f.created_from)
    .bind(f.created_to)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(fetch)
    .fetch_all(db)
    .await
}

/// A line's stock, as a change of the order needs it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct LineHold {
    pub id: Uuid,
    pub product_id: Uuid,
    pub variant_id: Uuid,
    pub quantity: i32,
    pub reservation_id: Uuid,
    pub stock: String,
}

#[derive(Debug, sqlx::FromRow)]
pub struct LockedOrder {
    #[sqlx(flatten)]
    pub order: OrderRow,
    pub holds: Json<Vec<LineHold>>,
}

/// The order the viewer may change, locked (`FOR UPDATE`) for the rest of the transaction,
/// so changes to one order (a payment and a cancel, two sellers shipping) take turns and
/// each sees the other's result; with its lines' holds.
///
/// Two statements, on purpose: a statement that waited for the row lock re-reads the locked
/// row itself at its newest version, but its subqueries (the sub-orders, the lines) keep
/// the snapshot the statement started with, from before the other change committed. The
/// read after the lock takes a fresh snapshot.
pub async fn lock(
    conn: &mut PgConnection,
    id: OrderId,
    viewer: Option<Uuid>,
    staff: bool,
) -> Result<Option<LockedOrder>, sqlx::Error> {
    let locked: Option<OrderId> = sqlx::query_scalar(
        "SELECT id FROM orders.orders WHERE id = $1 AND (user_id = $2 OR $3) FOR UPDATE",
    )
    .bind(id)
    .bind(viewer)
    .bind(staff)
    .fetch_optional(&mut *conn)
    .await?;
    if locked.is_none() {
        return Ok(None);
    }
    sqlx::query_as(&format!(
        "SELECT {ORDER},
                COALESCE((SELECT jsonb_agg(jsonb_build_object(
                    'id', l.id, 'product_id', l.product_id, 'variant_id', l.variant_id,
                    'quantity', l.quantity, 'reservation_id', l.reservation_id, 'stock', l.stock)
                    ORDER BY l.position)
                   FROM orders.order_lines l WHERE l.order_id = o.id), '[]') AS holds
           FROM orders.orders o
          WHERE o.id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Unpaid orders whose grace after the hold is over, oldest first; those another
/// transaction holds at this moment (a payment, another replica's cancel) are skipped. The
/// caller cancels each in its own transaction, under `lock`.
pub async fn unpaid_due(
    conn: &mut PgConnection,
    grace_secs: i64,
    limit: i64,
) -> Result<Vec<OrderId>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM orders.orders
          WHERE status = 'pending_payment'
            AND hold_expires_at <= now() - make_interval(secs => $1)
            -- Not while money may be on its way: a payment submitted (a bank debit takes
            -- days), awaiting the buyer's 3-D Secure, or authorised is the provider's to
            -- settle (its webhook, or the reconciliation job), not the timeout's.
            AND NOT EXISTS (SELECT 1 FROM orders.payments p
                             WHERE p.order_id = orders.id
                               AND p.status IN ('processing', 'requires_action', 'authorized'))
          ORDER BY hold_expires_at
          LIMIT $2
            FOR UPDATE SKIP LOCKED",
    )
    .bind(grace_secs as f64)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// What checkout writes: the order, its sub-orders and lines.
pub struct NewOrder<'a> {
    pub id: OrderId,
    pub number: &'a str,
    pub user_id: Uuid,
    pub cart_id: Uuid,
    pub currency: &'a str,
    pub email: Option<&'a str>,
    pub totals: [i64; 5],
    pub tax_inclusive: bool,
    pub discount: Option<(Uuid, &'a str)>,
    pub shipping_address: Option<serde_json::Value>,
    pub billing_address: Option<serde_json::Value>,
    pub payment_provider: &'a str,
    pub hold_expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub actor: &'a str,
    pub sub_orders: Vec<NewSubOrder>,
    pub lines: Vec<NewLine>,
}

pub struct NewSubOrder {
    pub id: SubOrderId,
    pub seller_id: Uuid,
    /// subtotal, discount, tax, total.
    pub totals: [i64; 4],
}

pub struct NewLine {
    pub id: Uuid,
    pub sub_order_id: SubOrderId,
    pub product_id: Uuid,
    pub variant_id: Uuid,
    pub seller_id: Uuid,
    pub product_title: String,
    pub variant_title: String,
    pub sku: Option<String>,
    pub unit_price: i64,
    pub quantity: i32,
    /// subtotal, discount, tax, total.
    pub totals: [i64; 4],
    pub reservation_id: Uuid,
}

/// Writes a placed order in ONE statement: the order, its sub-orders and lines (UNNEST of
/// arrays, whatever their number), its first history row and its events. A second order
/// for the same cart violates `orders_cart_id_key`.
pub async fn insert_order(
    conn: &mut PgConnection,
    o: &NewOrder<'_>,
    events: &[Event],
) -> Result<(), sqlx::Error> {
    let col = |f: fn(&NewLine) -> i64| o.lines.iter().map(f).collect::<Vec<_>>();
    let sub_col = |i: usize| o.sub_orders.iter().map(|s| s.totals[i]).collect::<Vec<_>>();
    let mut qb = QueryBuilder::<Postgres>::new(
        "WITH o AS (
             INSERT INTO orders.orders (id, number, user_id, cart_id, status, currency, email,
                 subtotal, discount, tax, shipping, total, tax_inclusive, discount_id,
                 discount_code, shipping_address, billing_address, payment_provider,
                 hold_expires_at, created_at, updated_at)
             VALUES (",
    );
    {
        let mut v = qb.separated(", ");
        v.push_bind(o.id)
            .push_bind(o.number)
            .push_bind(o.user_id)
            .push_bind(o.cart_id)
            .push_bind(OrderStatus::PendingPayment.as_str())
            .push_bind(o.currency)
            .push_bind(o.email)
            .push_bind(o.totals[0])
            .push_bind(o.totals[1])
            .push_bind(o.totals[2])
            .push_bind(o.totals[3])
            .push_bind(o.totals[4])
            .push_bind(o.tax_inclusive)
            .push_bind(o.discount.map(|d| d.0))
            .push_bind(o.discount.map(|d| d.1))
            .push_bind(&o.shipping_address)
            .push_bind(&o.billing_address)
            .push_bind(o.payment_provider)
            .push_bind(o.hold_expires_at)
            .push_bind(o.created_at)
            .push_bind(o.created_at);
    }
    qb.push(
        ") RETURNING id
         ), s AS (
             INSERT INTO orders.sub_orders (id, order_id, seller_id, status, subtotal, discount, tax, total, updated_at)
             SELECT u.id, (SELECT id FROM o), u.seller_id, 'pending_payment', u.subtotal, u.discount, u.tax, u.total, ",
    );
    qb.push_bind(o.created_at);
    qb.push(" FROM unnest(");
    qb.push_bind(o.sub_orders.iter().map(|s| s.id.0).collect::<Vec<_>>())
        .push("::uuid[], ")
        .push_bind(o.sub_orders.iter().map(|s| s.seller_id).collect::<Vec<_>>())
        .push("::uuid[], ")
        .push_bind(sub_col(0))
        .push("::bigint[], ")
        .push_bind(sub_col(1))
        .push("::bigint[], ")
        .push_bind(sub_col(2))
        .push("::bigint[], ")
        .push_bind(sub_col(3))
        .push(
            "::bigint[]) AS u(id, seller_id, subtotal, discount, tax, total)
             RETURNING id
         ), l AS (
             INSERT INTO orders.order_lines (id, order_id, sub_order_id, position, product_id,
                 variant_id, seller_id, product_title, variant_title, sku, unit_price, quantity,
                 subtotal, discount, tax, total, reservation_id)
             SELECT u.id, (SELECT id FROM o), u.sub_order_id, u.position::int, u.product_id,
                    u.variant_id, u.seller_id, u.product_title, u.variant_title, u.sku,
                    u.unit_price, u.quantity, u.subtotal, u.discount, u.tax, u.total,
                    u.reservation_id
               FROM unnest(",
        );
    qb.push_bind(o.lines.iter().map(|l| l.id).collect::<Vec<_>>())
        .push("::uuid[], ")
        .push_bind(o.lines.iter().map(|l| l.sub_order_id.0).collect::<Vec<_>>())
        .push("::uuid[], ")
        .push_bind(o.lines.iter().map(|l| l.product_id).collect::<Vec<_>>())
        .push("::uuid[], ")
        .push_bind(o.lines.iter().map(|l| l.variant_id).collect::<Vec<_>>())
        .push("::uuid[], ")
        .push_bind(o.lines.iter().map(|l| l.seller_id).collect::<Vec<_>>())
        .push("::uuid[], ")
        .push_bind(
            o.lines
                .iter()
                .map(|l| l.product_title.clone())
                .collect::<Vec<_>>(),
        )
        .push("::text[], ")
        .push_bind(
            o.lines
                .iter()
                .map(|l| l.variant_title.clone())
                .collect::<Vec<_>>(),
        )
        .push("::text[], ")
        .push_bind(o.lines.iter().map(|l| l.sku.clone()).collect::<Vec<_>>())
        .push("::text[], ")
        .push_bind(col(|l| l.unit_price))
        .push("::bigint[], ")
        .push_bind(o.lines.iter().map(|l| l.quantity).collect::<Vec<_>>())
        .push("::int[], ")
        .push_bind(col(|l| l.totals[0]))
        .push("::bigint[], ")
        .push_bind(col(|l| l.totals[1]))
        .push("::bigint[], ")
        .push_bind(col(|l| l.totals[2]))
        .push("::bigint[], ")
        .push_bind(col(|l| l.totals[3]))
        .push("::bigint[], ")
        .push_bind(o.lines.iter().map(|l| l.reservation_id).collect::<Vec<_>>())
        .push(
            "::uuid[]) WITH ORDINALITY AS u(id, sub_order_id, product_id, variant_id, seller_id,
                 product_title, variant_title, sku, unit_price, quantity, subtotal, discount,
                 tax, total, reservation_id, position)
         ), h AS (
             INSERT INTO orders.order_history (order_id, from_status, to_status, actor, at)
             SELECT id, NULL, 'pending_payment', ",
        );
    qb.push_bind(o.actor).push(", ").push_bind(o.created_at);
    qb.push(" FROM o), ev AS (");
    push_insert(&mut qb, events, "EXISTS (SELECT 1 FROM o)");
    qb.push(") SELECT 1");
    qb.build().execute(conn).await?;
    Ok(())
}

/// A change of an order after checkout: its own move and/or its sub-orders', lines' stock,
/// tracking, and the events that describe it.
#[derive(Default)]
pub struct Change<'a> {
    pub order_move: Option<Transition>,
    pub sub_moves: Vec<(SubOrderId, Transition)>,
    /// Whether the sub-orders' moves get their own history rows (they do when a seller's
    /// part moves alone; an order-level move that carries its parts along records one).
    pub sub_history: bool,
    pub tracking: Option<(SubOrderId, &'a Tracking)>,
    pub line_stock: Vec<(Uuid, &'static str)>,
    pub cancel_reason: Option<&'a str>,
    pub note: Option<&'a str>,
    pub events: Vec<Event>,
}

/// Applies a [`Change`] in ONE statement: each status moves only from the status its
/// transition names (`WHERE status = from`), so of two concurrent moves one finds nothing to
/// move; history rows and events are written only for what moved. Returns how many rows
/// (order and sub-orders) moved, which the caller compares with what it asked for.
pub async fn apply(
    conn: &mut PgConnection,
    order: OrderId,
    actor: &str,
    c: &Change<'_>,
) -> Result<i64, sqlx::Error> {
    let (from, to) = match c.order_move {
        Some(t) => (Some(t.from().as_str()), Some(t.to().as_str())),
        None => (None, None),
    };
    let mut qb = QueryBuilder::<Postgres>::new("WITH o AS (UPDATE orders.orders SET status = ");
    qb.push_bind(to)
        .push("::text, updated_at = now(), paid_at = CASE WHEN ")
        .push_bind(to)
        .push("::text IN ('paid', 'requires_attention') AND paid_at IS NULL THEN now() ELSE paid_at END, cancel_reason = COALESCE(")
        .push_bind(c.cancel_reason)
        .push("::text, cancel_reason) WHERE id = ")
        .push_bind(order)
        .push(" AND status = ")
        .push_bind(from)
        .push("::text RETURNING id), s AS (UPDATE orders.sub_orders so SET status = m.to_status, updated_at = now(),
              shipped_at = CASE WHEN m.to_status = 'shipped' THEN now() ELSE so.shipped_at END,
              delivered_at = CASE WHEN m.to_status = 'delivered' THEN now() ELSE so.delivered_at END,
              carrier = CASE WHEN so.id = ")
        .push_bind(c.tracking.map(|t| t.0))
        .push("::uuid THEN ")
        .push_bind(c.tracking.map(|t| t.1.carrier.clone()))
        .push("::text ELSE so.carrier END, tracking_number = CASE WHEN so.id = ")
        .push_bind(c.tracking.map(|t| t.0))
        .push("::uuid THEN ")
        .push_bind(c.tracking.map(|t| t.1.number.clone()))
        .push("::text ELSE so.tracking_number END, tracking_url = CASE WHEN so.id = ")
        .push_bind(c.tracking.map(|t| t.0))
        .push("::uuid THEN ")
        .push_bind(c.tracking.and_then(|t| t.1.url.clone()))
        .push("::text ELSE so.tracking_url END FROM unnest(")
        .push_bind(c.sub_moves.iter().map(|m| m.0.0).collect::<Vec<_>>())
        .push("::uuid[], ")
        .push_bind(
            c.sub_moves
                .iter()
                .map(|m| m.1.from().as_str())
                .collect::<Vec<_>>(),
        )
        .push("::text[], ")
        .push_bind(
            c.sub_moves
                .iter()
                .map(|m| m.1.to().as_str())
                .collect::<Vec<_>>(),
        )
        .push("::text[]) AS m(id, from_status, to_status) WHERE so.id = m.id AND so.order_id = ")
        .push_bind(order)
        .push(" AND so.status = m.from_status RETURNING so.id, m.from_status, m.to_status), l AS (UPDATE orders.order_lines ol SET stock = m.stock FROM unnest(")
        .push_bind(c.line_stock.iter().map(|l| l.0).collect::<Vec<_>>())
        .push("::uuid[], ")
        .push_bind(c.line_stock.iter().map(|l| l.1).collect::<Vec<_>>())
        .push("::text[]) AS m(id, stock) WHERE ol.id = m.id AND ol.order_id = ")
        .push_bind(order)
        .push("), h AS (INSERT INTO orders.order_history (order_id, sub_order_id, from_status, to_status, actor, note) SELECT ")
        // A part's move first, then the order's that followed it.
        .push_bind(order)
        .push(", s.id, s.from_status, s.to_status, ")
        .push_bind(actor)
        .push(", ")
        .push_bind(c.note)
        .push("::text FROM s WHERE ")
        .push_bind(c.sub_history)
        .push(" UNION ALL SELECT ")
        .push_bind(order)
        .push(", NULL::uuid, ")
        .push_bind(from)
        .push("::text, ")
        .push_bind(to)
        .push("::text, ")
        .push_bind(actor)
        .push(", ")
        .push_bind(c.note)
        .push("::text FROM o")
        .push(")");
    if !c.events.is_empty() {
        qb.push(", ev AS (");
        push_insert(
            &mut qb,
            &c.events,
            "EXISTS (SELECT 1 FROM o) OR EXISTS (SELECT 1 FROM s)",
        );
        qb.push(")");
    }
    qb.push(" SELECT (SELECT count(*) FROM o) + (SELECT count(*) FROM s)");
    qb.build_query_scalar().fetch_one(conn).await
}

/// Writes a note in the order's history without moving it (`from` = `to` = its status):
/// what staff must see that is no transition (money captured for an order already paid, a
/// partial refund of an order still being fulfilled, a refund pending at the provider or one
/// that failed).
pub async fn note(
    conn: &mut PgConnection,
    order: OrderId,
    status: OrderStatus,
    actor: &str,
    note: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO orders.order_history (order_id, from_status, to_status, actor, note)
         VALUES ($1, $2, $2, $3, $4)",
    )
    .bind(order)
    .bind(status.as_str())
    .bind(actor)
    .bind(note)
    .execute(conn)
    .await?;
    Ok(())
}

/// An order's history, oldest first, if the viewer may see the order (every order has at
/// least its creation row, so none means no such order for this viewer).
pub async fn history(
    db: impl PgExecutor<'_>,
    id: OrderId,
    viewer: Uuid,
    staff: bool,
) -> Result<Vec<HistoryResponse>, sqlx::Error> {
    sqlx::query_as(
        "SELECT h.id, h.sub_order_id, h.from_status, h.to_status, h.actor, h.note, h.at
           FROM orders.order_history h JOIN orders.orders o ON o.id = h.order_id
          WHERE o.id = $1 AND (o.user_id = $2 OR $3)
          ORDER BY h.id",
    )
    .bind(id)
    .bind(viewer)
    .bind(staff)
    .fetch_all(db)
    .await
}

// ---- Payments ----------------------------------------------------------------------

/// A payment attempt with its ledger, as one statement reads it.
#[derive(Debug, sqlx::FromRow)]
pub struct PaymentRow {
    pub id: PaymentId,
    pub order_id: OrderId,
    pub provider: String,
    pub reference: String,
    pub status: String,
    pub amount: i64,
    pub currency: String,
    pub captured: i64,
    pub refunded: i64,
    pub client: serde_json::Value,
    pub capture_reference: Option<String>,
    pub failure: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub ledger: Json<Vec<LedgerEntry>>,
    /// What refunds pending at the provider hold (`orders.refunds`): part of `refunded`,
    /// which reserves it, but not money returned yet.
    pub refund_pending: i64,
}

/// The columns of [`PaymentRow`] over `orders.payments p`, the ledger oldest first.
const PAYMENT: &str = "p.id, p.order_id, p.provider, p.reference, p.status, p.amount,
    p.currency, p.captured, p.refunded, p.client, p.capture_reference, p.failure, p.created_at,
    p.updated_at,
    COALESCE((SELECT jsonb_agg(jsonb_build_object('id', l.id, 'kind', l.kind,
            'amount', l.amount, 'currency', l.currency,
            'provider_reference', l.provider_reference,
            'provider_event_id', l.provider_event_id, 'at', l.at) ORDER BY l.id)
        FROM orders.payment_ledger l WHERE l.payment_id = p.id), '[]') AS ledger,
    COALESCE((SELECT sum(r.amount) FROM orders.refunds r
               WHERE r.payment_id = p.id AND r.status = 'pending'), 0)::bigint AS refund_pending";

/// The order as a payment needs it, locked (`FOR UPDATE`): every payment change of one
/// order (a start, a webhook's outcome, a refund, `settle`) takes its turn behind this lock,
/// always taken before the payment's own.
#[derive(Debug, sqlx::FromRow)]
pub struct PayableOrder {
    pub id: OrderId,
    pub user_id: Uuid,
    pub number: String,
    pub email: Option<String>,
    pub status: String,
    pub total: i64,
    pub currency: String,
    pub payment_provider: String,
    /// What the order's payments captured, less nothing: refunds do not make an order owe.
    pub captured: i64,
    pub refunded: i64,
}

///
/// Two statements, as [`lock`]: after waiting for the row lock, a statement's subqueries
/// (the payments' sums here) still see the snapshot it started with, from before the
/// change it waited for committed.
pub async fn lock_payable(
    conn: &mut PgConnection,
    id: OrderId,
    viewer: Option<Uuid>,
    staff: bool,
) -> Result<Option<PayableOrder>, sqlx::Error> {
    let locked: Option<OrderId> = sqlx::query_scalar(
        "SELECT id FROM orders.orders WHERE id = $1 AND (user_id = $2 OR $3) FOR UPDATE",
    )
    .bind(id)
    .bind(viewer)
    .bind(staff)
    .fetch_optional(&mut *conn)
    .await?;
    if locked.is_none() {
        return Ok(None);
    }
    sqlx::query_as(
        "SELECT o.id, o.user_id, o.number, o.email, o.status, o.total, o.currency,
                o.payment_provider,
                COALESCE((SELECT sum(p.captured) FROM orders.payments p WHERE p.order_id = o.id), 0)::bigint AS captured,
                COALESCE((SELECT sum(p.refunded) FROM orders.payments p WHERE p.order_id = o.id), 0)::bigint AS refunded
           FROM orders.orders o
          WHERE o.id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// The order's payments, oldest first, each with its ledger, if the viewer may see the
/// order (its buyer, or staff); `None` when it may not (or there is no such order). One
/// statement: the order LEFT JOIN its payments, so an order without payments is one row
/// whose payment columns are NULL (read as no payment), and an invisible one no row.
pub async fn visible_payments(
    db: impl PgExecutor<'_>,
    order: OrderId,
    viewer: Uuid,
    staff: bool,
) -> Result<Option<Vec<PaymentRow>>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {PAYMENT} FROM orders.orders o LEFT JOIN orders.payments p ON p.order_id = o.id
          WHERE o.id = $1 AND (o.user_id = $2 OR $3)
          ORDER BY p.seq"
    ))
    .bind(order)
    .bind(viewer)
    .bind(staff)
    .fetch_all(db)
    .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut payments = Vec::with_capacity(rows.len());
    for row in &rows {
        if row.try_get::<Option<Uuid>, _>("id")?.is_some() {
            payments.push(PaymentRow::from_row(row)?);
        }
    }
    Ok(Some(payments))
}

/// An order's payments, oldest first, each with its ledger.
pub async fn payments(
    db: impl PgExecutor<'_>,
    order: OrderId,
) -> Result<Vec<PaymentRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PAYMENT} FROM orders.payments p WHERE p.order_id = $1 ORDER BY p.seq"
    ))
    .bind(order)
    .fetch_all(db)
    .await
}

/// One payment, locked for the rest of the transaction (after its order's lock).
pub async fn lock_payment(
    conn: &mut PgConnection,
    id: PaymentId,
) -> Result<Option<PaymentRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PAYMENT} FROM orders.payments p WHERE p.id = $1 FOR UPDATE OF p"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// The order's open payment, if any (at most one: `payments_one_open`).
pub async fn open_payment(
    conn: &mut PgConnection,
    order: OrderId,
) -> Result<Option<PaymentRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PAYMENT} FROM orders.payments p
          WHERE p.order_id = $1
            AND p.status IN ('requires_payment_method', 'requires_action', 'processing', 'authorized')"
    ))
    .bind(order)
    .fetch_optional(conn)
    .await
}

/// The payment a provider's reference names: (payment, its order).
pub async fn payment_by_reference(
    db: impl PgExecutor<'_>,
    provider: &str,
    reference: &str,
) -> Result<Option<(PaymentId, OrderId)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, order_id FROM orders.payments WHERE provider = $1 AND reference = $2",
    )
    .bind(provider)
    .bind(reference)
    .fetch_optional(db)
    .await
}

/// The order's payment `reference` names at `provider`, if the viewer may see the order
/// (its buyer, or staff): one statement.
pub async fn visible_payment(
    db: impl PgExecutor<'_>,
    order: OrderId,
    viewer: Uuid,
    staff: bool,
    provider: &str,
    reference: &str,
) -> Result<Option<PaymentRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PAYMENT} FROM orders.payments p JOIN orders.orders o ON o.id = p.order_id
          WHERE p.order_id = $1 AND (o.user_id = $2 OR $3) AND p.provider = $4 AND p.reference = $5"
    ))
    .bind(order)
    .bind(viewer)
    .bind(staff)
    .bind(provider)
    .bind(reference)
    .fetch_optional(db)
    .await
}

/// The number of the order's next payment attempt (under the order's lock).
pub async fn next_seq(conn: &mut PgConnection, order: OrderId) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar("SELECT COALESCE(max(seq), 0) + 1 FROM orders.payments WHERE order_id = $1")
        .bind(order)
        .fetch_one(conn)
        .await
}

pub struct NewPayment<'a> {
    pub id: PaymentId,
    pub order_id: OrderId,
    pub seq: i32,
    pub provider: &'a str,
    pub reference: &'a str,
    pub status: PaymentStatus,
    pub amount: i64,
    pub currency: &'a str,
    pub client: &'a serde_json::Value,
}

pub async fn insert_payment(
    conn: &mut PgConnection,
    p: &NewPayment<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO orders.payments (id, order_id, seq, provider, reference, status, amount,
                                      currency, client)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(p.id)
    .bind(p.order_id)
    .bind(p.seq)
    .bind(p.provider)
    .bind(p.reference)
    .bind(p.status.as_str())
    .bind(p.amount)
    .bind(p.currency)
    .bind(p.client)
    .execute(conn)
    .await?;
    Ok(())
}

/// One ledger row to append.
pub struct NewLedger<'a> {
    pub kind: &'static str,
    pub amount: i64,
    pub provider_reference: &'a str,
}

/// What a payment's change writes.
pub struct PaymentChange<'a> {
    pub status: PaymentStatus,
    pub captured: i64,
    pub refunded: i64,
    pub capture_reference: Option<&'a str>,
    pub failure: Option<&'a str>,
    pub ledger: Vec<NewLedger<'a>>,
    pub provider_event_id: Option<&'a str>,
    pub events: Vec<Event>,
}

/// Writes a payment's change in ONE statement (under the payment's lock): its status and
/// totals, its ledger rows (`ON CONFLICT DO NOTHING`: a replay appends nothing), its events.
/// Returns how many ledger rows were appended.
pub async fn change_payment(
    conn: &mut PgConnection,
    p: &PaymentRow,
    c: &PaymentChange<'_>,
) -> Result<i64, sqlx::Error> {
    let mut qb = QueryBuilder::<Postgres>::new("WITH p AS (UPDATE orders.payments SET status = ");
    qb.push_bind(c.status.as_str())
        .push(", captured = ")
        .push_bind(c.captured)
        .push(", refunded = ")
        .push_bind(c.refunded)
        .push(", capture_reference = COALESCE(")
        .push_bind(c.capture_reference)
        // A success clears the failure of an earlier try on the same intent.
        .push("::text, capture_reference), failure = CASE WHEN ")
        .push_bind(c.status == PaymentStatus::Succeeded)
        .push(" THEN NULL ELSE COALESCE(")
        .push_bind(c.failure)
        .push("::text, failure) END, updated_at = now() WHERE id = ")
        .push_bind(p.id)
        .push(" RETURNING id), l AS (INSERT INTO orders.payment_ledger (payment_id, order_id, kind, amount, currency, provider_reference, provider_event_id) SELECT ")
        .push_bind(p.id)
        .push(", ")
        .push_bind(p.order_id)
        .push(", u.kind, u.amount, ")
        .push_bind(&p.currency)
        .push(", u.reference, ")
        .push_bind(c.provider_event_id)
        .push("::text FROM unnest(")
        .push_bind(c.ledger.iter().map(|l| l.kind).collect::<Vec<_>>())
        .push("::text[], ")
        .push_bind(c.ledger.iter().map(|l| l.amount).collect::<Vec<_>>())
        .push("::bigint[], ")
        .push_bind(
            c.ledger
                .iter()
                .map(|l| l.provider_reference)
                .collect::<Vec<_>>(),
        )
        .push("::text[]) AS u(kind, amount, reference) ON CONFLICT DO NOTHING RETURNING 1)");
    if !c.events.is_empty() {
        qb.push(", ev AS (");
        push_insert(&mut qb, &c.events, "EXISTS (SELECT 1 FROM p)");
        qb.push(")");
    }
    qb.push(" SELECT count(*) FROM l");
    qb.build_query_scalar().fetch_one(conn).await
}

/// Takes `amount` off what the payment may still refund, in ONE conditional statement:
/// `false` when captured − refunded is less, however many refunds race.
pub async fn reserve_refund(
    conn: &mut PgConnection,
    id: PaymentId,
    amount: i64,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE orders.payments SET refunded = refunded + $2, updated_at = now()
          WHERE id = $1 AND captured - refunded >= $2",
    )
    .bind(id)
    .bind(amount)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Records a provider's webhook event and, when it is new, the outbox event its
/// subscriber applies, in ONE statement. `false`: a duplicate, which does nothing.
pub async fn record_provider_event(
    conn: &mut PgConnection,
    provider: &str,
    e: &ProviderEvent,
    payload: &serde_json::Value,
    events: &[Event],
) -> Result<bool, sqlx::Error> {
    let mut qb = QueryBuilder::<Postgres>::new(
        "WITH e AS (INSERT INTO orders.provider_events (provider, event_id, kind, reference,
             order_id, payload, occurred_at) VALUES (",
    );
    {
        let mut v = qb.separated(", ");
        v.push_bind(provider)
            .push_bind(&e.id)
            .push_bind(&e.kind)
            .push_bind(&e.reference)
            .push_bind(e.order_id)
            .push_bind(payload)
            .push_bind(DateTime::<Utc>::from_timestamp(e.occurred_at, 0));
    }
    qb.push(") ON CONFLICT DO NOTHING RETURNING 1), ev AS (");
    push_insert(&mut qb, events, "EXISTS (SELECT 1 FROM e)");
    qb.push(") SELECT count(*) FROM e");
    let n: i64 = qb.build_query_scalar().fetch_one(conn).await?;
    Ok(n == 1)
}

/// What became of a provider event: `applied`, `ignored` or `orphan`.
pub async fn settle_provider_event(
    conn: &mut PgConnection,
    provider: &str,
    event_id: &str,
    outcome: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE orders.provider_events SET outcome = $3 WHERE provider = $1 AND event_id = $2",
    )
    .bind(provider)
    .bind(event_id)
    .bind(outcome)
    .execute(conn)
    .await?;
    Ok(())
}

/// Payments waiting on the provider for longer than `older_than_secs` (reconciliation),
/// oldest first: (payment, order, provider, reference).
pub async fn stuck_payments(
    db: impl PgExecutor<'_>,
    older_than_secs: i64,
    limit: i64,
) -> Result<Vec<(PaymentId, OrderId, String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, order_id, provider, reference FROM orders.payments
          WHERE status IN ('processing', 'requires_action')
            AND updated_at <= now() - make_interval(secs => $1)
          ORDER BY updated_at
          LIMIT $2",
    )
    .bind(older_than_secs as f64)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Refunds pending at the provider for `older_than_secs` (a webhook lost): (payment, its
/// order, provider, refund reference, currency), oldest first.
pub async fn stuck_refunds(
    db: impl PgExecutor<'_>,
    older_than_secs: i64,
    limit: i64,
) -> Result<Vec<(PaymentId, OrderId, String, String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT payment_id, order_id, provider, reference, currency FROM orders.refunds
          WHERE status = 'pending' AND updated_at <= now() - make_interval(secs => $1)
          ORDER BY updated_at
          LIMIT $2",
    )
    .bind(older_than_secs as f64)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Marks a pending refund looked at (still pending), so the next run takes the others first.
pub async fn touch_refund(
    db: impl PgExecutor<'_>,
    provider: &str,
    reference: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE orders.refunds SET updated_at = now() WHERE provider = $1 AND reference = $2",
    )
    .bind(provider)
    .bind(reference)
    .execute(db)
    .await?;
    Ok(())
}

/// Marks a payment looked at (reconciliation found it still waiting), so the next run
/// takes the others first.
pub async fn touch_payment(db: impl PgExecutor<'_>, id: PaymentId) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE orders.payments SET updated_at = now() WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// A refund the provider accepted as pending, its amount already reserved on the payment.
pub struct NewRefund<'a> {
    pub payment: &'a PaymentRow,
    pub reference: &'a str,
    pub amount: i64,
    pub actor: &'a str,
}

pub async fn insert_pending_refund(
    conn: &mut PgConnection,
    r: &NewRefund<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO orders.refunds (id, payment_id, order_id, provider, reference, amount,
                                     currency, status, actor)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8)",
    )
    .bind(Uuid::now_v7())
    .bind(r.payment.id)
    .bind(r.payment.order_id)
    .bind(&r.payment.provider)
    .bind(r.reference)
    .bind(r.amount)
    .bind(&r.payment.currency)
    .bind(r.actor)
    .execute(conn)
    .await?;
    Ok(())
}

/// A pending refund that ended.
#[derive(Debug, sqlx::FromRow)]
pub struct EndedRefund {
    pub amount: i64,
}

/// The refunds still pending at the provider: (this payment's, the whole order's), minor
/// units: what the payments' `refunded` columns hold without it having gone back yet.
pub async fn pending_refunds(
    conn: &mut PgConnection,
    payment: PaymentId,
    order: OrderId,
) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT COALESCE(sum(amount) FILTER (WHERE payment_id = $1), 0)::bigint,
                COALESCE(sum(amount), 0)::bigint
           FROM orders.refunds WHERE order_id = $2 AND status = 'pending'",
    )
    .bind(payment)
    .bind(order)
    .fetch_one(conn)
    .await
}

/// Ends the payment's pending refund `reference` (under the payment's lock): `succeeded`
/// when `failure` is `None`, else `failed`, giving its reserved amount back to the payment
/// in the same statement. `None` when no such refund is pending (not ours, or ended
/// already: a redelivery does nothing).
pub async fn end_pending_refund(
    conn: &mut PgConnection,
    payment: &PaymentRow,
    reference: &str,
    failure: Option<&str>,
) -> Result<Option<EndedRefund>, sqlx::Error> {
    sqlx::query_as(
        "WITH r AS (UPDATE orders.refunds
                       SET status = CASE WHEN $4::text IS NULL THEN 'succeeded' ELSE 'failed' END,
                           failure = $4, updated_at = now()
                     WHERE payment_id = $1 AND provider = $2 AND reference = $3
                       AND status = 'pending'
                 RETURNING amount),
              p AS (UPDATE orders.payments p SET refunded = p.refunded - r.amount, updated_at = now()
                      FROM r WHERE p.id = $1 AND $4::text IS NOT NULL
                 RETURNING p.id)
         SELECT amount FROM r",
    )
    .bind(payment.id)
    .bind(&payment.provider)
    .bind(reference)
    .bind(failure)
    .fetch_optional(conn)
    .await
}
