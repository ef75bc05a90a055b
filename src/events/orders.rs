//! The orders domain's events (source `orders`), declared here rather than in the domain
//! because notifications (order confirmation), vendors (per-seller fulfilment and payouts)
//! and the admin read models consume them, and decode them whether or not `orders` is
//! compiled into the same binary. Ids are plain UUIDs for the same reason.
//!
//! Payloads name the buyer as `user_id`, so the buyer's webhooks receive them; money is in
//! minor units of `currency`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// One seller's part of an order, as the events describe it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SubOrderSnapshot {
    pub sub_order_id: Uuid,
    pub seller_id: Uuid,
    /// What the seller's items come to, after their discount, with tax.
    pub total: i64,
    /// How many items (the sum of the lines' quantities).
    pub items: i64,
}

/// An order was placed at checkout (`pending_payment`): its stock is held until
/// `hold_expires_at`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderCreated {
    pub order_id: Uuid,
    /// The buyer.
    pub user_id: Uuid,
    /// The short human reference (`BS-…`), what emails and support use.
    pub number: String,
    /// Where confirmations go, if the cart had one.
    pub email: Option<String>,
    pub currency: String,
    pub total: i64,
    pub payment_provider: String,
    pub sub_orders: Vec<SubOrderSnapshot>,
}

/// The order is paid: its stock is sold. `status` is `paid`, or `requires_attention` when a
/// hold had expired and the stock was gone by the time the payment came (staff decide).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderPaid {
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub number: String,
    pub email: Option<String>,
    pub currency: String,
    pub total: i64,
    pub payment_provider: String,
    pub status: String,
    pub sub_orders: Vec<SubOrderSnapshot>,
}

/// The order was cancelled: held stock was released, sold stock returned.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderCancelled {
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub number: String,
    /// `customer`, `staff` or `payment_timeout`.
    pub reason: String,
    /// The status it was cancelled from.
    pub from: String,
    /// Whether it had been paid (a refund is then due: the payments issue's work).
    pub was_paid: bool,
}

/// Tracking of a shipment.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Tracking {
    pub carrier: String,
    pub number: String,
    pub url: Option<String>,
}

/// One seller's part of the order shipped. `order_status` is `shipped` once every part has.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderShipped {
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub number: String,
    pub sub_order_id: Uuid,
    pub seller_id: Uuid,
    pub tracking: Tracking,
    pub order_status: String,
}

/// One seller's part of the order was delivered. `order_status` is `delivered` once every
/// part has been.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderDelivered {
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub number: String,
    pub sub_order_id: Uuid,
    pub seller_id: Uuid,
    pub order_status: String,
}

/// The order is closed (delivered and past any dispute): vendors' payouts may count it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderCompleted {
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub number: String,
    pub currency: String,
    pub sub_orders: Vec<SubOrderSnapshot>,
}

crate::declare_events! {
    source = "orders";
    OrderCreated = "order.created" by order_id,
    OrderPaid = "order.paid" by order_id,
    OrderCancelled = "order.cancelled" by order_id,
    OrderShipped = "order.shipped" by order_id,
    OrderDelivered = "order.delivered" by order_id,
    OrderCompleted = "order.completed" by order_id,
}
