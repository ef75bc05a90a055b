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

/// A payment captured money (`payment.success` on Kafka where the seeds' consumers expect
/// it: see the README's topic mapping). `order.paid` follows once nothing is outstanding.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PaymentSucceeded {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub number: String,
    /// `manual`, `stripe`, `razorpay`.
    pub provider: String,
    /// The provider's id of the payment.
    pub reference: String,
    /// Captured by this payment, minor units of `currency`.
    pub amount: i64,
    pub currency: String,
}

/// A payment failed (declined, expired): the order is still `pending_payment` and a new
/// `POST /orders/{id}/payment` opens another attempt. Notifications mails the buyer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PaymentFailed {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub number: String,
    pub email: Option<String>,
    pub provider: String,
    pub reference: String,
    pub amount: i64,
    pub currency: String,
    /// The provider's words, for the buyer.
    pub reason: String,
}

/// Money went back to the buyer. `order_status` is `refunded` once everything captured is,
/// else `partially_refunded`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PaymentRefunded {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub number: String,
    pub provider: String,
    /// The provider's id of the refund.
    pub refund_reference: String,
    /// This refund, minor units of `currency`.
    pub amount: i64,
    /// Refunded of this payment so far.
    pub refunded: i64,
    pub currency: String,
    pub order_status: String,
}

/// A provider's webhook event, verified and recorded once (`orders.provider_events`): the
/// orders domain's own subscriber applies it, so the webhook answers at once. Internal to
/// the domain; other consumers have the `payment.*` events.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProviderEventReceived {
    pub provider: String,
    pub event_id: String,
    pub reference: Option<String>,
    pub order_id: Option<Uuid>,
    /// What it means, provider-neutral (`{"kind": "succeeded", "amount": …}`, …).
    #[schema(value_type = Object)]
    pub outcome: serde_json::Value,
}

crate::declare_events! {
    source = "orders";
    PaymentSucceeded = "payment.succeeded" by order_id,
    PaymentFailed = "payment.failed" by order_id,
    PaymentRefunded = "payment.refunded" by order_id,
    ProviderEventReceived = "payment_provider.event_received" by event_id,
    OrderCreated = "order.created" by order_id,
    OrderPaid = "order.paid" by order_id,
    OrderCancelled = "order.cancelled" by order_id,
    OrderShipped = "order.shipped" by order_id,
    OrderDelivered = "order.delivered" by order_id,
    OrderCompleted = "order.completed" by order_id,
}
