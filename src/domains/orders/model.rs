//! The orders API's ids, the order state machine, request and response bodies, and how rows
//! become responses.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use validator::Validate;

use super::error::OrdersError;
use crate::events::orders::Tracking;

crate::id_type!(
    /// An order.
    OrderId
);

crate::id_type!(
    /// One seller's part of an order.
    SubOrderId
);

/// Where an order (or one seller's part of it) stands. The only way to change it is
/// [`OrderStatus::apply`], which refuses illegal moves with a 409 naming the current status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum OrderStatus {
    /// Placed; stock held until `hold_expires_at`.
    PendingPayment,
    Paid,
    Processing,
    Shipped,
    Delivered,
    /// Closed: delivered and settled.
    Completed,
    Cancelled,
    Refunded,
    PartiallyRefunded,
    /// Paid after its stock hold expired, with the stock gone meanwhile: staff decide
    /// (restock and process it, or cancel and refund). Also a cancelled order whose
    /// payment captured money after the cancel: staff refund it (its history says so).
    RequiresAttention,
}

/// What someone does to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The payment arrived and the stock is sold.
    Pay,
    /// The payment arrived but some stock could not be had any more.
    PayWithoutStock,
    Process,
    Ship,
    Deliver,
    Complete,
    /// By the buyer: only before it ships.
    CancelByCustomer,
    /// By staff (or the unpaid-order job): at any stage before delivery is settled.
    CancelByStaff,
    Refund,
    PartiallyRefund,
    /// A provider captured money for the order after it was cancelled (an intent the buyer
    /// still held, a provider whose payments cannot be cancelled): staff must refund it.
    CapturedAfterCancel,
}

impl Action {
    /// How the 409 names it: "it cannot be {verb}".
    fn verb(self) -> &'static str {
        match self {
            Self::Pay | Self::PayWithoutStock => "paid",
            Self::Process => "processed",
            Self::Ship => "shipped",
            Self::Deliver => "delivered",
            Self::Complete => "completed",
            Self::CancelByCustomer => "cancelled by the customer",
            Self::CancelByStaff => "cancelled",
            Self::Refund => "refunded",
            Self::PartiallyRefund => "partially refunded",
            Self::CapturedAfterCancel => "paid after its cancel",
        }
    }
}

/// A legal move from one status to another: made only by [`OrderStatus::apply`], and what
/// the repository's conditional UPDATE takes (`WHERE status = from`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    from: OrderStatus,
    to: OrderStatus,
}

impl Transition {
    pub fn from(self) -> OrderStatus {
        self.from
    }

    pub fn to(self) -> OrderStatus {
        self.to
    }
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 10] = [
        Self::PendingPayment,
        Self::Paid,
        Self::Processing,
        Self::Shipped,
        Self::Delivered,
        Self::Completed,
        Self::Cancelled,
        Self::Refunded,
        Self::PartiallyRefunded,
        Self::RequiresAttention,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingPayment => "pending_payment",
            Self::Paid => "paid",
            Self::Processing => "processing",
            Self::Shipped => "shipped",
            Self::Delivered => "delivered",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
            Self::Refunded => "refunded",
            Self::PartiallyRefunded => "partially_refunded",
            Self::RequiresAttention => "requires_attention",
        }
    }

    /// The status a stored name stands for (the column's CHECK admits no other).
    pub fn parse(s: &str) -> Result<Self, OrdersError> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| OrdersError::Internal(anyhow::anyhow!("unknown order status {s:?}")))
    }

    /// The move `action` makes from here, or a 409 `invalid_transition` naming this status.
    ///
    /// ```text
    /// pending_payment ─pay─▶ paid ─process─▶ processing ─ship─▶ shipped ─deliver─▶ delivered ─complete─▶ completed
    ///        │ └─pay (stock gone)─▶ requires_attention ─process─▶ processing
    ///        └─cancel─▶ cancelled   (customer: before shipping; staff: until delivered)
    /// paid … completed ─refund (all)─▶ refunded
    /// delivered, completed ─refund (part)─▶ partially_refunded
    /// cancelled ─captured after the cancel─▶ requires_attention (staff refund it)
    /// ```
    ///
    /// A partial refund of an order still being fulfilled is no move: its fulfilment goes
    /// on, and the refund shows on the payment and in the order's history.
    pub fn apply(self, action: Action) -> Result<Transition, OrdersError> {
        use Action as A;
        use OrderStatus as S;
        let to = match (self, action) {
            (S::PendingPayment, A::Pay) => S::Paid,
            (S::PendingPayment, A::PayWithoutStock) => S::RequiresAttention,
            // A paid order may skip `processing` (a seller who ships at once).
            (S::Paid | S::RequiresAttention, A::Process) => S::Processing,
            (S::Paid | S::Processing, A::Ship) => S::Shipped,
            (S::Shipped, A::Deliver) => S::Delivered,
            (S::Delivered, A::Complete) => S::Completed,
            (
                S::PendingPayment | S::Paid | S::Processing | S::RequiresAttention,
                A::CancelByCustomer,
            ) => S::Cancelled,
            (
                S::PendingPayment
                | S::Paid
                | S::Processing
                | S::RequiresAttention
                | S::Shipped
                | S::Delivered,
                A::CancelByStaff,
            ) => S::Cancelled,
            (
                S::Paid
                | S::Processing
                | S::Shipped
                | S::Delivered
                | S::Completed
                | S::RequiresAttention
                | S::PartiallyRefunded,
                A::Refund,
            ) => S::Refunded,
            (S::Delivered | S::Completed | S::PartiallyRefunded, A::PartiallyRefund) => {
                S::PartiallyRefunded
            }
            (S::Cancelled, A::CapturedAfterCancel) => S::RequiresAttention,
            (from, action) => {
                return Err(OrdersError::InvalidTransition {
                    from: from.as_str(),
                    action: action.verb(),
                });
            }
        };
        Ok(Transition { from: self, to })
    }

    /// Whether the money has been taken (a cancel then owes a refund and returns sold stock).
    pub fn is_paid(self) -> bool {
        !matches!(self, Self::PendingPayment | Self::Cancelled)
    }
}

/// Where one payment attempt stands. The only way to change it is
/// [`PaymentStatus::to`]: a webhook whose move is illegal (a `succeeded` after `refunded`,
/// a `processing` arriving after `succeeded`) changes nothing, and staff get a 409.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Opened; waiting for the buyer's payment method (or, for `manual`, the money).
    RequiresPaymentMethod,
    /// The buyer must act (3-D Secure and the like).
    RequiresAction,
    /// Submitted, not settled yet.
    Processing,
    /// Authorised, to be captured.
    Authorized,
    /// Captured: the money is ours.
    Succeeded,
    /// Not written for a provider's failed attempt any more: an intent that failed stays
    /// confirmable at the provider, so its payment stays open (`requires_payment_method`,
    /// with `failure` saying why) and a new start resumes it rather than opening a second.
    Failed,
    Canceled,
    PartiallyRefunded,
    Refunded,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 9] = [
        Self::RequiresPaymentMethod,
        Self::RequiresAction,
        Self::Processing,
        Self::Authorized,
        Self::Succeeded,
        Self::Failed,
        Self::Canceled,
        Self::PartiallyRefunded,
        Self::Refunded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RequiresPaymentMethod => "requires_payment_method",
            Self::RequiresAction => "requires_action",
            Self::Processing => "processing",
            Self::Authorized => "authorized",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
            Self::PartiallyRefunded => "partially_refunded",
            Self::Refunded => "refunded",
        }
    }

    pub fn parse(s: &str) -> Result<Self, OrdersError> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| OrdersError::Internal(anyhow::anyhow!("unknown payment status {s:?}")))
    }

    /// Still waiting on the buyer or the provider: an order has at most one such payment
    /// (the `payments_one_open` index), which a second start resumes.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            Self::RequiresPaymentMethod
                | Self::RequiresAction
                | Self::Processing
                | Self::Authorized
        )
    }

    /// Whether moving to `next` is legal. Staying put is not a move (`false`): a duplicate
    /// report changes nothing.
    ///
    /// ```text
    /// requires_payment_method ⇄ requires_action ⇄ processing ⇄ authorized   (the open states)
    ///   open ─▶ succeeded | failed | canceled
    ///   failed ─▶ succeeded          (rows from before a failure stayed open: still legal)
    ///   succeeded ─▶ partially_refunded ─▶ refunded,  succeeded ─▶ refunded
    /// ```
    pub fn can_move_to(self, next: PaymentStatus) -> bool {
        use PaymentStatus as P;
        if self == next {
            return next == P::PartiallyRefunded;
        }
        match (self, next) {
            (from, to)
                if from.is_open()
                    && (to.is_open() || matches!(to, P::Succeeded | P::Failed | P::Canceled)) =>
            {
                true
            }
            (P::Failed, P::Succeeded) => true,
            (P::Succeeded, P::PartiallyRefunded | P::Refunded) => true,
            (P::PartiallyRefunded, P::Refunded) => true,
            _ => false,
        }
    }
}

/// `POST /orders`: check out a cart.
#[derive(Debug, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"cart_id": "0193a5f6-7d2c-7b9e-9f10-3c4d5e6f7a8b", "payment_provider": "manual"}))]
pub struct CheckoutRequest {
    /// The caller's cart.
    pub cart_id: Uuid,
    /// How the order will be paid: `manual` (staff mark it paid: bank transfer, cash on
    /// delivery), or a configured provider (`stripe`, `razorpay`; `/api/v1/capabilities`
    /// lists them). Default `manual`.
    #[serde(default = "manual")]
    #[validate(length(min = 1, max = 32))]
    pub payment_provider: String,
}

fn manual() -> String {
    "manual".into()
}

/// `POST /orders/{id}/sub-orders/{sub_order}/ship`: how the parcel travels.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"carrier": "DHL", "number": "JD014600006281230704", "url": "https://www.dhl.com/track?id=JD014600006281230704"}))]
pub struct ShipRequest {
    /// 1 to 100 characters once trimmed.
    #[validate(custom(function = "tracking_text"))]
    pub carrier: String,
    /// 1 to 100 characters once trimmed.
    #[validate(custom(function = "tracking_text"))]
    pub number: String,
    /// An `http` or `https` URL (the buyer's mail and page link to it), at most 2 000
    /// characters once trimmed.
    #[validate(custom(function = "tracking_url"))]
    pub url: Option<String>,
}

/// Carrier and number are stored trimmed, so they are checked trimmed: blank is a 422.
fn tracking_text(v: &str) -> Result<(), validator::ValidationError> {
    let n = v.trim().chars().count();
    if (1..=100).contains(&n) {
        return Ok(());
    }
    let mut e = validator::ValidationError::new("length");
    e.message = Some("must be 1 to 100 characters, not blank".into());
    Err(e)
}

/// Only web links: a `javascript:` or `data:` URL would run in whatever renders the link.
fn tracking_url(v: &str) -> Result<(), validator::ValidationError> {
    let v = v.trim();
    let lower = v.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    let ok = v.len() <= 2000
        && rest.is_some_and(|r| {
            !r.is_empty()
                && !r.starts_with(['/', '?', '#'])
                && !r.chars().any(|c| c.is_whitespace() || c.is_control())
        });
    if ok {
        return Ok(());
    }
    let mut e = validator::ValidationError::new("url");
    e.message = Some("must be an http(s) URL of at most 2000 characters".into());
    Err(e)
}

/// `GET /orders` filters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrderFilter {
    /// Only orders in this status.
    pub status: Option<OrderStatus>,
    /// Created at or after.
    pub created_from: Option<DateTime<Utc>>,
    /// Created before.
    pub created_to: Option<DateTime<Utc>>,
    /// Staff (`orders.manage`, `orders.fulfil`): every buyer's orders, not only their own.
    #[serde(default)]
    pub all: bool,
}

/// One bought line, as it was at checkout.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderLineResponse {
    pub id: Uuid,
    pub product_id: Uuid,
    pub variant_id: Uuid,
    pub seller_id: Uuid,
    pub product_title: String,
    pub variant_title: String,
    pub sku: Option<String>,
    /// Minor units of the order's currency.
    pub unit_price: i64,
    pub quantity: i32,
    pub subtotal: i64,
    pub discount: i64,
    pub tax: i64,
    pub total: i64,
    /// `held`, `committed` (sold), `released`, `restocked` or `missing` (its hold expired
    /// and the stock was gone when the payment came).
    pub stock: String,
}

/// One seller's part: its items, totals and fulfilment.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SubOrderResponse {
    pub id: SubOrderId,
    pub seller_id: Uuid,
    pub status: OrderStatus,
    pub subtotal: i64,
    pub discount: i64,
    pub tax: i64,
    pub total: i64,
    pub tracking: Option<Tracking>,
    pub shipped_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub lines: Vec<OrderLineResponse>,
}

/// An order with its parts and their lines: the body every order route answers with, and
/// the row one statement reads (`repo::ORDER`), one struct since the two are the same.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct OrderResponse {
    pub id: OrderId,
    /// The human reference.
    pub number: String,
    /// The buyer.
    pub user_id: Uuid,
    pub cart_id: Uuid,
    pub status: OrderStatus,
    pub currency: String,
    pub email: Option<String>,
    /// Minor units of `currency`.
    pub subtotal: i64,
    pub discount: i64,
    pub tax: i64,
    pub shipping: i64,
    pub total: i64,
    /// Whether the line prices include their tax.
    pub tax_inclusive: bool,
    /// The discount's id, for giving its use back at a cancel: not shown (the code is).
    #[serde(skip)]
    pub discount_id: Option<Uuid>,
    pub discount_code: Option<String>,
    /// As the cart gave it (the cart's `Address`).
    #[schema(value_type = Option<crate::domains::cart::api::Address>)]
    pub shipping_address: Option<serde_json::Value>,
    #[schema(value_type = Option<crate::domains::cart::api::Address>)]
    pub billing_address: Option<serde_json::Value>,
    pub payment_provider: String,
    /// Until when the stock is held for payment.
    pub hold_expires_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub cancel_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Each seller's part, in the order they were created.
    #[schema(value_type = Vec<SubOrderResponse>)]
    pub sub_orders: sqlx::types::Json<Vec<SubOrderResponse>>,
}

/// One transition in an order's history: the body, and the row `repo::history` reads.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct HistoryResponse {
    pub id: i64,
    /// Set when it was one seller's part that moved.
    pub sub_order_id: Option<Uuid>,
    #[sqlx(rename = "from_status")]
    pub from: Option<OrderStatus>,
    #[sqlx(rename = "to_status")]
    pub to: OrderStatus,
    /// `user:<id>`, `api_key:<id>` or `system`.
    pub actor: String,
    pub note: Option<String>,
    pub at: DateTime<Utc>,
}

crate::id_type!(
    /// One payment attempt of an order.
    PaymentId
);

/// `POST /orders/{id}/payment`: which provider collects (default: the order's own).
#[derive(Debug, Default, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"provider": "stripe"}))]
pub struct StartPaymentRequest {
    /// One of the configured providers (`/api/v1/capabilities` lists them under the orders
    /// domain); default the `payment_provider` the order was placed with.
    #[validate(length(min = 1, max = 32))]
    pub provider: Option<String>,
}

/// `POST /orders/{id}/payment/razorpay`: what Razorpay Checkout's `handler` receives on
/// success, forwarded as is by the buyer's client.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"razorpay_order_id": "order_IluGWxBm9U8zJ8", "razorpay_payment_id": "pay_IH4NVgf4Dreq1l", "razorpay_signature": "0d4e745a1838664ad6c9c9902212a32d627d68e917290b0ad5f08ff4561bc50f"}))]
pub struct RazorpayCallback {
    #[validate(length(min = 1, max = 64))]
    pub razorpay_order_id: String,
    #[validate(length(min = 1, max = 64))]
    pub razorpay_payment_id: String,
    /// Hex HMAC-SHA256 of `"{order_id}|{payment_id}"` with the key secret.
    #[validate(length(min = 1, max = 128))]
    pub razorpay_signature: String,
}

/// `POST /orders/{id}/refunds`: how much to give back.
#[derive(Debug, Default, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"amount": 500, "reason": "one cup arrived broken"}))]
pub struct RefundBody {
    /// Minor units of the order's currency, above zero; omitted: everything captured and
    /// not yet refunded.
    #[validate(range(min = 1))]
    pub amount: Option<i64>,
    /// Why, for the history and the provider's dashboard (at most 500 characters).
    #[validate(length(max = 500))]
    pub reason: Option<String>,
}

/// One amount that moved, as the append-only ledger keeps it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct LedgerEntry {
    pub id: i64,
    /// `authorized`, `captured`, `refunded` or `fee`.
    pub kind: String,
    /// Minor units of `currency`.
    pub amount: i64,
    pub currency: String,
    /// The provider's id of this movement (its charge, refund, …; manual: ours).
    pub provider_reference: String,
    /// The provider's webhook event that reported it, if one did.
    pub provider_event_id: Option<String>,
    pub at: DateTime<Utc>,
}

/// One payment attempt of an order, with its ledger.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentResponse {
    pub id: PaymentId,
    pub order_id: OrderId,
    /// `manual`, `stripe`, `razorpay`.
    pub provider: String,
    /// The provider's id of the payment (Stripe `pi_…`, Razorpay `order_…`; manual: ours).
    pub reference: String,
    pub status: PaymentStatus,
    /// What this attempt collects, minor units of `currency`.
    pub amount: i64,
    pub currency: String,
    pub captured: i64,
    /// Refunds the provider confirmed (the `refunded` rows of the ledger).
    pub refunded: i64,
    /// Held for refunds the provider has not confirmed yet (Stripe's `pending`): no other
    /// refund can take it; it becomes `refunded` when the provider confirms, or is
    /// released if the refund fails.
    pub refund_pending: i64,
    /// What the client needs to finish the payment: Stripe `{client_secret}`, Razorpay
    /// `{order_id, key_id, amount, currency}`, manual `{instructions}`.
    #[schema(value_type = Object)]
    pub client: serde_json::Value,
    pub failure: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Oldest first.
    pub ledger: Vec<LedgerEntry>,
}

impl TryFrom<super::repo::PaymentRow> for PaymentResponse {
    type Error = OrdersError;

    fn try_from(p: super::repo::PaymentRow) -> Result<Self, OrdersError> {
        Ok(Self {
            id: p.id,
            order_id: p.order_id,
            provider: p.provider,
            reference: p.reference,
            status: PaymentStatus::parse(&p.status)?,
            amount: p.amount,
            currency: p.currency,
            captured: p.captured,
            // The row's `refunded` reserves pending refunds too; the answer tells them apart.
            refunded: p.refunded - p.refund_pending,
            refund_pending: p.refund_pending,
            client: p.client,
            failure: p.failure,
            created_at: p.created_at,
            updated_at: p.updated_at,
            ledger: p.ledger.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action as A;
    use OrderStatus as S;

    const ACTIONS: [Action; 11] = [
        A::Pay,
        A::PayWithoutStock,
        A::Process,
        A::Ship,
        A::Deliver,
        A::Complete,
        A::CancelByCustomer,
        A::CancelByStaff,
        A::Refund,
        A::PartiallyRefund,
        A::CapturedAfterCancel,
    ];

    #[test]
    fn the_happy_path_walks_from_pending_payment_to_completed() {
        let mut s = S::PendingPayment;
        for (action, next) in [
            (A::Pay, S::Paid),
            (A::Process, S::Processing),
            (A::Ship, S::Shipped),
            (A::Deliver, S::Delivered),
            (A::Complete, S::Completed),
        ] {
            let t = s.apply(action).unwrap();
            assert_eq!((t.from(), t.to()), (s, next));
            s = t.to();
        }
    }

    #[test]
    fn customers_cancel_only_before_shipping_and_staff_until_delivered() {
        for s in [
            S::PendingPayment,
            S::Paid,
            S::Processing,
            S::RequiresAttention,
        ] {
            assert_eq!(s.apply(A::CancelByCustomer).unwrap().to(), S::Cancelled);
        }
        for s in [
            S::Shipped,
            S::Delivered,
            S::Completed,
            S::Cancelled,
            S::Refunded,
        ] {
            let e = s.apply(A::CancelByCustomer).unwrap_err();
            assert!(matches!(e, OrdersError::InvalidTransition { from, .. } if from == s.as_str()));
            assert!(e.to_string().contains(s.as_str()), "{e}");
        }
        assert_eq!(
            S::Delivered.apply(A::CancelByStaff).unwrap().to(),
            S::Cancelled
        );
        assert!(S::Completed.apply(A::CancelByStaff).is_err());
    }

    #[test]
    fn terminal_states_go_nowhere_but_refunds_and_every_refusal_names_the_state() {
        for action in ACTIONS {
            if action != A::CapturedAfterCancel {
                assert!(S::Cancelled.apply(action).is_err(), "{action:?}");
            }
            assert!(S::Refunded.apply(action).is_err(), "{action:?}");
        }
        assert_eq!(
            S::Cancelled.apply(A::CapturedAfterCancel).unwrap().to(),
            S::RequiresAttention
        );
        // A partial refund leaves an order being fulfilled where it is.
        for s in [S::Paid, S::Processing, S::Shipped, S::RequiresAttention] {
            assert!(s.apply(A::PartiallyRefund).is_err(), "{s:?}");
            assert_eq!(s.apply(A::Refund).unwrap().to(), S::Refunded);
        }
        let mut legal = 0;
        for s in S::ALL {
            for action in ACTIONS {
                match s.apply(action) {
                    Ok(t) => {
                        legal += 1;
                        // A second partial refund leaves the status as it was.
                        if action != A::PartiallyRefund {
                            assert_ne!(t.to(), s, "{s:?} {action:?} is no move");
                        }
                    }
                    Err(e) => assert_eq!(
                        e.to_string(),
                        format!(
                            "The order is {}; it cannot be {}.",
                            s.as_str(),
                            action.verb()
                        )
                    ),
                }
            }
        }
        // The table above, counted: a new arm shows up here.
        assert_eq!(legal, 29);
    }

    #[test]
    fn payment_moves_forward_only_and_a_refunded_payment_never_succeeds_again() {
        use PaymentStatus as P;
        assert!(P::RequiresPaymentMethod.can_move_to(P::Succeeded));
        assert!(P::Processing.can_move_to(P::Failed));
        assert!(P::Failed.can_move_to(P::Succeeded));
        assert!(P::Succeeded.can_move_to(P::PartiallyRefunded));
        assert!(P::PartiallyRefunded.can_move_to(P::PartiallyRefunded));
        assert!(P::PartiallyRefunded.can_move_to(P::Refunded));
        for late in P::ALL {
            assert!(!P::Refunded.can_move_to(late), "refunded -> {late:?}");
            assert!(!P::Canceled.can_move_to(late), "canceled -> {late:?}");
        }
        assert!(!P::Succeeded.can_move_to(P::Succeeded));
        assert!(!P::Succeeded.can_move_to(P::Processing));
        assert!(!P::Succeeded.can_move_to(P::Failed));
        for s in P::ALL {
            assert_eq!(P::parse(s.as_str()).unwrap(), s);
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }

    #[test]
    fn statuses_round_trip_through_their_names_and_json() {
        for s in S::ALL {
            assert_eq!(S::parse(s.as_str()).unwrap(), s);
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert!(S::parse("lost").is_err());
    }
}
