//! Payment providers behind one trait: `manual` (always there: staff mark an order paid),
//! `stripe` (PaymentIntents) and `razorpay` (Orders API), each present only when its keys
//! are configured (`[orders.stripe]`, `[orders.razorpay]`; `_FILE` secrets work as for any
//! setting). The orders domain talks to a provider only through [`PaymentProvider`]; what
//! a provider says comes back in the provider-neutral types below, so the ledger, the
//! payment state machine and the order's `settle` never see a provider's JSON.
//!
//! Money crosses this edge in minor units of the order's currency. A provider whose unit
//! differs (Stripe's zero-decimal currencies, Razorpay's subunits) converts inside its own
//! implementation, and nowhere else.

pub mod manual;
pub mod razorpay;
pub mod stripe;

use std::sync::Arc;

use actix_web::http::header::HeaderMap;
use async_trait::async_trait;
use uuid::Uuid;

use super::settings::OrdersSettings;

/// The providers this deployment offers: `manual` always, the others when configured. Built
/// once by `OrdersState::build`; checkout, the payment routes and the webhooks look a
/// provider up here by name, and an absent one is a 404 (or a 422 at checkout).
pub struct Providers {
    all: Vec<Arc<dyn PaymentProvider>>,
}

impl Providers {
    pub fn build(settings: &OrdersSettings) -> anyhow::Result<Self> {
        let mut all: Vec<Arc<dyn PaymentProvider>> = vec![Arc::new(manual::Manual)];
        // Each other provider joins when configured (its own file builds it).
        if let Some(s) = &settings.stripe {
            all.push(Arc::new(stripe::Stripe::new(s)?));
        }
        if let Some(s) = &settings.razorpay {
            all.push(Arc::new(razorpay::Razorpay::new(s)?));
        }
        Ok(Self { all })
    }

    pub fn get(&self, name: &str) -> Option<&dyn PaymentProvider> {
        self.all
            .iter()
            .find(|p| p.name() == name)
            .map(|p| p.as_ref())
    }

    /// The configured providers' names, `manual` first.
    pub fn names(&self) -> Vec<&'static str> {
        self.all.iter().map(|p| p.name()).collect()
    }
}

/// What the order asks a provider to collect.
#[derive(Debug, Clone)]
pub struct StartPayment<'a> {
    pub order_id: Uuid,
    /// `BS-…`, shown on the provider's dashboard and receipts.
    pub order_number: &'a str,
    /// Minor units of `currency` (ISO 4217 exponent), above zero.
    pub amount: i64,
    /// ISO 4217, upper case.
    pub currency: &'a str,
    /// Razorpay's client options prefill Checkout's form with it; Stripe's PaymentIntents
    /// are created without it (Stripe.js collects the receipt address).
    pub email: Option<&'a str>,
    /// Sent as the provider's own idempotency key where it has one, so a retried start
    /// (a timeout, a crash between the call and our write) never makes a second intent.
    pub idempotency_key: &'a str,
}

/// A payment the provider has opened: its reference and what the client needs to finish it.
#[derive(Debug, Clone)]
pub struct Started {
    /// The provider's id of the payment: Stripe `pi_…`, Razorpay `order_…`, manual: ours.
    pub reference: String,
    pub status: RemoteStatus,
    /// Handed to the client as is: Stripe `{client_secret}`, Razorpay `{order_id, key_id,
    /// amount, currency}`, manual `{instructions}`.
    pub client: serde_json::Value,
}

/// Where a payment stands at the provider, in the provider-neutral words of the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteStatus {
    /// Waiting for the buyer (no payment method yet, or not confirmed).
    RequiresPaymentMethod,
    /// The buyer must act (3-D Secure and the like).
    RequiresAction,
    /// Submitted, not settled (bank debits, async methods).
    Processing,
    /// Authorised, to be captured.
    Authorized,
    /// Captured: the money is ours.
    Succeeded,
    /// Razorpay's `failed` payments (a Stripe intent that failed goes back to
    /// `requires_payment_method`, and its webhook says `payment_failed`).
    Failed,
    Canceled,
}

/// What the provider reports about a payment when asked (reconciliation).
#[derive(Debug, Clone)]
pub struct RemotePayment {
    pub reference: String,
    pub status: RemoteStatus,
    /// Captured so far, minor units.
    pub captured: i64,
    /// The provider's fee in minor units, where it says.
    pub fee: Option<i64>,
    /// The id of the capture itself where the provider has one apart from `reference`
    /// (Razorpay's `pay_…`, which refunds name; Stripe's latest charge `ch_…`).
    pub capture_reference: Option<String>,
    pub failure: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RefundRequest<'a> {
    /// The payment's `reference` (Stripe `pi_…`, Razorpay `order_…`).
    pub reference: &'a str,
    /// Razorpay refunds name the captured payment (`pay_…`); Stripe ignores it.
    pub capture_reference: Option<&'a str>,
    pub amount: i64,
    pub currency: &'a str,
    pub idempotency_key: &'a str,
}

#[derive(Debug, Clone)]
pub struct Refunded {
    /// Stripe `re_…`, Razorpay `rfnd_…`, manual: ours.
    pub reference: String,
    pub amount: i64,
    /// Refunds can settle later (`refund.processed` webhooks): `Processing` until then.
    pub status: RemoteStatus,
}

/// One provider event, verified and read: recorded once by `(provider, id)`.
#[derive(Debug, Clone)]
pub struct ProviderEvent {
    /// Stripe `evt_…`; Razorpay's `x-razorpay-event-id` header.
    pub id: String,
    /// The provider's own type (`payment_intent.succeeded`, `payment.captured`, …).
    pub kind: String,
    /// The payment it is about (`pi_…`, `order_…`), if any.
    pub reference: Option<String>,
    /// Our order id, read from the metadata/notes we sent at start; the ledger trusts
    /// `reference` over it (an event's metadata is what a client could have set).
    pub order_id: Option<Uuid>,
    pub outcome: Outcome,
    /// The provider's clock (seconds since the epoch): orders events that arrive shuffled.
    pub occurred_at: i64,
}

/// What a provider event means for the payment, provider-neutral. Serialisable: the
/// webhook hands it to the orders subscriber through the outbox.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    Authorized {
        amount: i64,
    },
    Succeeded {
        amount: i64,
        fee: Option<i64>,
        capture_reference: Option<String>,
    },
    Failed {
        reason: String,
    },
    Processing,
    RequiresAction,
    Canceled,
    Refunded {
        refund_reference: String,
        amount: i64,
    },
    /// A refund the provider had accepted as pending failed or was cancelled: the money did
    /// not go back.
    RefundFailed {
        refund_reference: String,
        reason: String,
    },
    /// A type we do not act on: still recorded once, then ignored.
    Ignored,
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The webhook's signature is missing, malformed, stale or wrong: answered 400, nothing
    /// recorded.
    #[error("invalid signature: {0}")]
    Signature(&'static str),
    /// The body is not what the provider sends.
    #[error("malformed payload: {0}")]
    Payload(String),
    /// The provider refused the request (its message, for staff and logs).
    #[error("the provider refused: {0}")]
    Refused(String),
    /// The provider could not be reached or answered 5xx: retry later.
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    /// What the provider cannot do (a refund through `manual` is only recorded, say).
    #[error("not supported by this provider: {0}")]
    Unsupported(&'static str),
}

/// A payment provider. Calls are idempotent by the keys they carry; none touches the
/// database (the caller records what they return, in its own transaction).
#[async_trait]
pub trait PaymentProvider: Send + Sync {
    /// `manual`, `stripe`, `razorpay`: what orders store and clients choose.
    fn name(&self) -> &'static str;
    /// Opens a payment for the amount.
    async fn start(&self, request: &StartPayment<'_>) -> Result<Started, ProviderError>;
    /// Asks where a payment stands (reconciliation of payments stuck in `processing`).
    async fn fetch(&self, reference: &str) -> Result<RemotePayment, ProviderError>;
    /// Refunds part or all of a captured payment.
    async fn refund(&self, request: &RefundRequest<'_>) -> Result<Refunded, ProviderError>;
    /// Cancels an open payment so it can no longer take money (its order is being
    /// cancelled). `Ok` only when the provider says it is cancelled. By default
    /// `Unsupported`: Razorpay's orders cannot be cancelled, so the payment stays open and a
    /// late capture of it lands the cancelled order in `requires_attention` for staff.
    async fn cancel(&self, reference: &str) -> Result<(), ProviderError> {
        let _ = reference;
        Err(ProviderError::Unsupported(
            "this provider's payments cannot be cancelled",
        ))
    }
    /// Asks where a refund it answered `pending` stands (reconciliation of refunds whose
    /// webhook was lost): `Succeeded`, `Failed`, or still `Processing`. `currency` is the
    /// payment's, for the amount's unit. Default: `Unsupported` (nothing to ask).
    async fn fetch_refund(
        &self,
        _refund_reference: &str,
        _currency: &str,
    ) -> Result<Refunded, ProviderError> {
        Err(ProviderError::Unsupported("looking a refund up"))
    }
    /// Verifies a webhook's signature on its raw body (with `now` in seconds since the
    /// epoch, for the tolerance window) and reads it. A provider without webhooks answers
    /// `Unsupported`.
    fn webhook(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<ProviderEvent, ProviderError>;
}
