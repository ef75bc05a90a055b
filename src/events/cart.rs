//! The cart domain's events (source `cart`), declared here because notifications (reminder
//! emails) and the admin read models consume them whether or not `cart` is compiled into
//! the same binary.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// A signed-in shopper's cart with items went idle for `cart.abandoned_after_minutes`
/// (published once per period of inactivity: a change to the cart starts a new one).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CartAbandoned {
    pub cart_id: Uuid,
    /// The shopper (their webhooks and notifications receive it).
    pub user_id: Uuid,
    /// The contact email set on the cart, if any.
    pub email: Option<String>,
    /// ISO 4217.
    pub currency: Option<String>,
    /// Units in the cart.
    pub items: i64,
    /// The cart's last change.
    pub last_activity_at: DateTime<Utc>,
}

crate::declare_events! {
    source = "cart";
    CartAbandoned = "cart.abandoned" by cart_id,
}
