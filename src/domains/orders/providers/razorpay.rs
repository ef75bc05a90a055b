//! Razorpay, over its Orders API (`https://razorpay.com/docs/api/orders/`).
//!
//! A payment here is a Razorpay *order* (`order_…`): `start` creates it, the buyer pays it
//! with Razorpay Checkout (one or more payment attempts, `pay_…`, of which at most one is
//! captured: a `paid` order takes no further payment), and our `reference` is the order id.
//! What settles it reaches us three ways, all verified with HMAC-SHA256 and read here:
//! - the checkout callback (`verify_checkout`): `razorpay_signature` over
//!   `"{order_id}|{payment_id}"` with the key secret;
//! - webhooks (`PaymentProvider::webhook`): `X-Razorpay-Signature` over the raw body with the
//!   webhook secret, deduplicated by the `x-razorpay-event-id` header;
//! - reconciliation (`fetch`): the order's payments, asked for with the API keys.
//!
//! Captures are Razorpay's to make: the account must capture automatically (Dashboard →
//! Account & Settings → Payment capture), since the trait has no capture call and an
//! authorised payment left uncaptured is refunded by Razorpay after a few days.
//!
//! Amounts: Razorpay takes "the currency subunit", which is the ISO 4217 minor unit Basalt
//! stores for every currency it documents (paise, cents, yen for JPY's zero decimals, fils
//! for KWD/BHD/OMR's three), so nothing is scaled. One rule differs: a three-decimal amount
//! must end in 0 (99.990 KWD, never 99.991); such an amount is refused here as `Unsupported`
//! rather than rounded, since rounding would charge something other than the order's total.

use std::time::Duration;

use actix_web::http::header::HeaderMap;
use async_trait::async_trait;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{
    Outcome, PaymentProvider, ProviderError, ProviderEvent, RefundRequest, Refunded, RemotePayment,
    RemoteStatus, StartPayment, Started,
};
use crate::domains::catalog::api::currency_exponent;
use crate::domains::orders::settings::RazorpaySettings;

type HmacSha256 = Hmac<Sha256>;

/// A provider call waits at most this long, then counts as `Unavailable` (the caller holds
/// the order's row lock meanwhile, so it must not hang on a slow gateway).
const TIMEOUT: Duration = Duration::from_secs(10);
/// Razorpay's limit on an order's `receipt`.
const RECEIPT_MAX: usize = 40;
/// The note on every order we create, read back from webhooks as `ProviderEvent::order_id`.
const ORDER_NOTE: &str = "basalt_order_id";

/// The Razorpay provider: API keys for the Orders/Payments/Refunds API, the webhook secret
/// for webhooks. Built once from `[orders.razorpay]`.
pub struct Razorpay {
    http: reqwest::Client,
    key_id: String,
    key_secret: SecretString,
    webhook_secret: SecretString,
    /// Without a trailing slash: `https://api.razorpay.com`, or a test's fake.
    base_url: String,
}

impl Razorpay {
    pub fn new(settings: &RazorpaySettings) -> anyhow::Result<Self> {
        Self::with_timeout(settings, TIMEOUT)
    }

    fn with_timeout(settings: &RazorpaySettings, timeout: Duration) -> anyhow::Result<Self> {
        // An empty secret would make every HMAC computable by anyone: refuse it at start-up
        // rather than accept forged webhooks or callbacks.
        if settings.key_id.trim().is_empty() || settings.key_secret.expose_secret().is_empty() {
            anyhow::bail!("orders.razorpay: key_id and key_secret must not be empty");
        }
        if settings.webhook_secret.expose_secret().is_empty() {
            anyhow::bail!("orders.razorpay.webhook_secret: must not be empty");
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            // Razorpay answers its API directly; a redirect would be a misconfigured base URL
            // and must not carry the Basic credentials elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Basalt/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            key_id: settings.key_id.trim().to_owned(),
            key_secret: settings.key_secret.clone(),
            webhook_secret: settings.webhook_secret.clone(),
            base_url: settings.base_url.trim_end_matches('/').to_owned(),
        })
    }

    /// Sends an authenticated request and reads Razorpay's answer: its JSON on 2xx, its
    /// `error.description` as `Refused` on 4xx, `Unavailable` when it could not be reached,
    /// timed out, answered 5xx or 429, or is still working on the same idempotent request.
    async fn call<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ProviderError> {
        let response = request
            .basic_auth(&self.key_id, Some(self.key_secret.expose_secret()))
            .send()
            .await
            .map_err(|e| ProviderError::Unavailable(format!("razorpay: {e}")))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| ProviderError::Unavailable(format!("razorpay: {e}")))?;
        if status.is_success() {
            return serde_json::from_slice(&body)
                .map_err(|e| ProviderError::Payload(format!("razorpay answered {status}: {e}")));
        }
        let description = error_description(&body).unwrap_or_else(|| status.to_string());
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            // Our keys are wrong, revoked or rotated away: ours to fix, not the buyer's.
            // Logged loudly; the caller gets a 503 without Razorpay's text.
            tracing::error!(%status, %description,
                "Razorpay refused Basalt's key: check orders.razorpay.key_id and key_secret");
            return Err(ProviderError::Unavailable(format!(
                "razorpay answered {status}: the key was refused"
            )));
        }
        let retry_later = status.is_server_error()
            || status == StatusCode::TOO_MANY_REQUESTS
            // "Another request with the same idempotency key is still in progress": the
            // refund is being made; asking again later returns it. (A *different* request
            // under a used key is a 409 too, and stays a refusal.)
            || (status == StatusCode::CONFLICT && description.contains("in progress"));
        if retry_later {
            Err(ProviderError::Unavailable(format!(
                "razorpay answered {status}: {description}"
            )))
        } else {
            Err(ProviderError::Refused(description))
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
}

/// Checks the checkout callback's `razorpay_signature`: hex HMAC-SHA256 of
/// `"{order_id}|{payment_id}"` keyed with the key secret, compared in constant time.
///
/// `our_razorpay_order_id` MUST be the `order_…` stored on our payment row for the Basalt
/// order being paid, never the `razorpay_order_id` the callback carries: a buyer holding a
/// genuine signature for a cheap order of theirs could otherwise post it against an
/// expensive one. Signed with our stored id, their signature does not verify.
pub fn verify_checkout(
    settings: &RazorpaySettings,
    our_razorpay_order_id: &str,
    razorpay_payment_id: &str,
    signature: &str,
) -> Result<(), ProviderError> {
    let message = format!("{our_razorpay_order_id}|{razorpay_payment_id}");
    verify_hex_hmac(
        settings.key_secret.expose_secret().as_bytes(),
        message.as_bytes(),
        signature,
    )
}

/// Constant-time check of a hex HMAC-SHA256 (`Mac::verify_slice`, which also refuses a
/// digest of the wrong length).
fn verify_hex_hmac(key: &[u8], message: &[u8], signature_hex: &str) -> Result<(), ProviderError> {
    let signature = hex::decode(signature_hex.trim())
        .map_err(|_| ProviderError::Signature("the signature is not hex"))?;
    let mut mac =
        HmacSha256::new_from_slice(key).map_err(|_| ProviderError::Signature("unusable secret"))?;
    mac.update(message);
    mac.verify_slice(&signature)
        .map_err(|_| ProviderError::Signature("the signature does not match"))
}

#[async_trait]
impl PaymentProvider for Razorpay {
    fn name(&self) -> &'static str {
        "razorpay"
    }

    async fn start(&self, request: &StartPayment<'_>) -> Result<Started, ProviderError> {
        let amount = to_subunits(request.amount, request.currency)?;
        // The Orders API takes no Idempotency-Key header; `receipt` is its handle, documented
        // as unique per order. So the receipt is the order number (what staff search the
        // Dashboard for) plus a tag of the caller's idempotency key: a retry of the same
        // attempt carries the same receipt, while a later attempt for the same order (a new
        // Razorpay order is needed once one has failed or expired) carries a new one.
        // The API reference promises nothing for a repeated receipt (a test-mode guide
        // mentions a `unique_receipt` flag the reference does not list, and Razorpay refuses
        // fields it does not list), so we cannot rely on Razorpay returning the first order.
        // What keeps a retried start to ONE order is the caller: it holds the Basalt order's
        // row lock and returns the open payment if there is one, calling `start` only when
        // there is none. What remains is a crash or timeout between this call and the
        // caller's insert: an unpaid Razorpay order nobody was handed, which no one can pay.
        let body = json!({
            "amount": amount,
            "currency": request.currency,
            "receipt": receipt(request.order_number, request.idempotency_key),
            "notes": {
                ORDER_NOTE: request.order_id.to_string(),
                "basalt_order_number": request.order_number,
            },
        });
        let order: RzpOrder = self
            .call(self.http.post(self.url("/v1/orders")).json(&body))
            .await?;
        if order.amount != amount || !order.currency.eq_ignore_ascii_case(request.currency) {
            return Err(ProviderError::Payload(format!(
                "razorpay opened {} for {} {}, asked {amount} {}",
                order.id, order.amount, order.currency, request.currency
            )));
        }
        // What Razorpay Checkout's options take; the email prefills its form (Checkout
        // asks for it otherwise).
        let mut client = json!({
            "order_id": order.id,
            "key_id": self.key_id,
            "amount": order.amount,
            "currency": order.currency,
        });
        if let Some(email) = request.email {
            client["prefill"] = json!({ "email": email });
        }
        Ok(Started {
            client,
            reference: order.id,
            status: RemoteStatus::RequiresPaymentMethod,
        })
    }

    async fn fetch(&self, reference: &str) -> Result<RemotePayment, ProviderError> {
        let id = path_id(reference, "order_")?;
        let payments: Collection<RzpPayment> = self
            .call(
                self.http
                    .get(self.url(&format!("/v1/orders/{id}/payments"))),
            )
            .await?;
        Ok(summarize(reference, &payments.items))
    }

    async fn refund(&self, request: &RefundRequest<'_>) -> Result<Refunded, ProviderError> {
        // Razorpay refunds a payment (`pay_…`), not an order: without the captured payment's
        // id there is nothing to name.
        let payment = request.capture_reference.ok_or_else(|| {
            ProviderError::Refused(format!(
                "no captured Razorpay payment is recorded for {}",
                request.reference
            ))
        })?;
        let payment = path_id(payment, "pay_")?;
        let amount = to_subunits(request.amount, request.currency)?;
        let refund: RzpRefund = self
            .call(
                self.http
                    .post(self.url(&format!("/v1/payments/{payment}/refund")))
                    .header("X-Refund-Idempotency", refund_key(request.idempotency_key))
                    .json(&json!({ "amount": amount })),
            )
            .await?;
        Ok(refund.into())
    }

    async fn fetch_refund(
        &self,
        refund_reference: &str,
        _currency: &str,
    ) -> Result<Refunded, ProviderError> {
        let id = path_id(refund_reference, "rfnd_")?;
        let refund: RzpRefund = self
            .call(self.http.get(self.url(&format!("/v1/refunds/{id}"))))
            .await?;
        Ok(refund.into())
    }

    /// Razorpay signs only the body: there is no timestamp in the scheme, so no tolerance
    /// window (`now` is unused) and a captured delivery verifies forever under the same
    /// secret. A replay is harmless all the same: the event id dedupes redeliveries, and a
    /// replay under a forged event id (the header is not signed) lands on the ledger's
    /// uniqueness per payment, kind and provider reference, so it appends nothing.
    fn webhook(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        _now: i64,
    ) -> Result<ProviderEvent, ProviderError> {
        let signature = headers
            .get("x-razorpay-signature")
            .ok_or(ProviderError::Signature("no X-Razorpay-Signature header"))?
            .to_str()
            .map_err(|_| ProviderError::Signature("the signature is not hex"))?;
        verify_hex_hmac(
            self.webhook_secret.expose_secret().as_bytes(),
            body,
            signature,
        )?;
        let id = headers
            .get("x-razorpay-event-id")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ProviderError::Payload("no x-razorpay-event-id header".to_owned()))?;
        read_event(id, body)
    }
}

/// ISO 4217 minor units → Razorpay subunits: the same number, with the three-decimal rule.
fn to_subunits(amount: i64, currency: &str) -> Result<i64, ProviderError> {
    if amount <= 0 {
        return Err(ProviderError::Refused(format!(
            "the amount must be above zero, got {amount}"
        )));
    }
    match currency_exponent(currency) {
        None => Err(ProviderError::Unsupported("not an ISO 4217 currency")),
        Some(3) if amount % 10 != 0 => Err(ProviderError::Unsupported(
            "Razorpay takes three-decimal currencies (KWD, BHD, OMR) only in multiples of 10 \
             minor units: the last decimal must be 0",
        )),
        Some(_) => Ok(amount),
    }
}

/// `{order number}#{12 hex digits of SHA-256(idempotency key)}`, within Razorpay's 40.
fn receipt(order_number: &str, idempotency_key: &str) -> String {
    let tag = hex::encode(&Sha256::digest(idempotency_key.as_bytes())[..6]);
    let room = RECEIPT_MAX - 1 - tag.len();
    let number: String = order_number.chars().take(room).collect();
    format!("{number}#{tag}")
}

/// Razorpay's `X-Refund-Idempotency` allows only `[A-Za-z0-9_-]`, at least 10 of them; our
/// keys carry `:`. 32 hex digits of SHA-256(key): deterministic, so a retried refund sends
/// the same key and Razorpay returns the first refund instead of making a second.
fn refund_key(idempotency_key: &str) -> String {
    hex::encode(&Sha256::digest(idempotency_key.as_bytes())[..16])
}

/// An id that goes into a URL path: Razorpay's ids are a prefix and alphanumerics.
fn path_id<'a>(id: &'a str, prefix: &str) -> Result<&'a str, ProviderError> {
    let rest = id.strip_prefix(prefix).unwrap_or("");
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ProviderError::Refused(format!(
            "{id:?} is not a Razorpay {prefix}… id"
        )));
    }
    Ok(id)
}

fn error_description(body: &[u8]) -> Option<String> {
    let body: RzpErrorBody = serde_json::from_slice(body).ok()?;
    body.error
        .description
        .filter(|d| !d.is_empty())
        .or(body.error.code)
}

/// Where an order stands from its payment attempts: captured wins (at most one capture per
/// order), then authorised, then in flight; failed only when every attempt failed.
fn summarize(reference: &str, payments: &[RzpPayment]) -> RemotePayment {
    // A `refunded` payment was captured first: its refunds are the ledger's business.
    let captured: Vec<&RzpPayment> = payments
        .iter()
        .filter(|p| matches!(p.status.as_str(), "captured" | "refunded"))
        .collect();
    if !captured.is_empty() {
        let fees: Vec<i64> = captured.iter().filter_map(|p| p.fee).collect();
        return RemotePayment {
            reference: reference.to_owned(),
            status: RemoteStatus::Succeeded,
            captured: captured.iter().map(|p| p.amount).sum(),
            fee: (!fees.is_empty()).then(|| fees.iter().sum()),
            capture_reference: captured
                .iter()
                .max_by_key(|p| p.created_at)
                .map(|p| p.id.clone()),
            failure: None,
        };
    }
    let has = |status: &str| payments.iter().any(|p| p.status == status);
    let (status, failure) = if has("authorized") {
        (RemoteStatus::Authorized, None)
    } else if has("created") || has("pending") {
        (RemoteStatus::Processing, None)
    } else if let Some(last) = payments.iter().max_by_key(|p| p.created_at) {
        (RemoteStatus::Failed, Some(last.failure()))
    } else {
        (RemoteStatus::RequiresPaymentMethod, None)
    };
    RemotePayment {
        reference: reference.to_owned(),
        status,
        captured: 0,
        fee: None,
        capture_reference: None,
        failure,
    }
}

/// Reads a verified webhook body. Only the types acted on are read strictly; any other
/// (subscriptions, disputes, …) is `Ignored` whatever its shape, since a 4xx would make
/// Razorpay retry it for a day and then disable the webhook.
fn read_event(id: &str, body: &[u8]) -> Result<ProviderEvent, ProviderError> {
    let envelope: RzpEvent = serde_json::from_slice(body)
        .map_err(|e| ProviderError::Payload(format!("razorpay event: {e}")))?;
    let entity = |name: &str| envelope.payload.get(name).and_then(|w| w.get("entity"));
    let read = |name: &'static str| -> Result<Value, ProviderError> {
        entity(name)
            .cloned()
            .ok_or_else(|| ProviderError::Payload(format!("{} without a {name}", envelope.event)))
    };
    let payment = || -> Result<RzpPayment, ProviderError> {
        serde_json::from_value(read("payment")?)
            .map_err(|e| ProviderError::Payload(format!("{}: payment: {e}", envelope.event)))
    };
    // The order's id: the order entity's own, else the payment's `order_id`.
    let order_entity = entity("order");
    let payment_entity = entity("payment");
    let reference = order_entity
        .and_then(|o| o.get("id"))
        .or_else(|| payment_entity.and_then(|p| p.get("order_id")))
        .and_then(Value::as_str)
        .map(str::to_owned);
    // Our note, from the order (which we created) or the payment (which carries it when
    // Razorpay copies it). `notes` is `[]` when empty, so read it as a map or not at all.
    let order_id = [order_entity, payment_entity]
        .into_iter()
        .flatten()
        .find_map(|e| {
            e.get("notes")?
                .get(ORDER_NOTE)?
                .as_str()?
                .parse::<Uuid>()
                .ok()
        });
    // The event's time, not the entity's: a captured payment's `created_at` is when it was
    // attempted, and shuffled events are ordered by when each thing happened.
    let occurred_at = envelope
        .created_at
        .or_else(|| {
            [payment_entity, entity("refund")]
                .into_iter()
                .flatten()
                .find_map(|e| e.get("created_at")?.as_i64())
        })
        .ok_or_else(|| ProviderError::Payload(format!("{} without created_at", envelope.event)))?;

    let outcome = match envelope.event.as_str() {
        "payment.authorized" => Outcome::Authorized {
            amount: payment()?.amount,
        },
        // `order.paid` and `payment.captured` both come for one capture; both name the
        // same `pay_…`, so the ledger records the capture once.
        "payment.captured" | "order.paid" => {
            let p = payment()?;
            Outcome::Succeeded {
                amount: p.amount,
                fee: p.fee,
                capture_reference: Some(p.id),
            }
        }
        "payment.failed" => Outcome::Failed {
            reason: payment()?.failure(),
        },
        // `refund.created` may already say `processed`; both name the same `rfnd_…`, so
        // the ledger records the refund once whichever arrives first.
        // A `refund.created` still `pending` is not money returned: `refund.processed` (or
        // `refund.failed`) says how it ends.
        "refund.created" | "refund.processed" | "refund.failed" => {
            let r: RzpRefund = serde_json::from_value(read("refund")?)
                .map_err(|e| ProviderError::Payload(format!("{}: refund: {e}", envelope.event)))?;
            match r.status.as_str() {
                "processed" => Outcome::Refunded {
                    refund_reference: r.id,
                    amount: r.amount,
                },
                "failed" => Outcome::RefundFailed {
                    refund_reference: r.id,
                    reason: "failed".to_owned(),
                },
                _ => Outcome::Ignored,
            }
        }
        _ => Outcome::Ignored,
    };
    Ok(ProviderEvent {
        id: id.to_owned(),
        kind: envelope.event,
        reference,
        order_id,
        outcome,
        occurred_at,
    })
}

#[derive(Debug, Deserialize)]
struct RzpOrder {
    id: String,
    amount: i64,
    currency: String,
}

#[derive(Debug, Deserialize)]
struct Collection<T> {
    items: Vec<T>,
}

/// The fields of Razorpay's payment entity that we read.
#[derive(Debug, Deserialize)]
struct RzpPayment {
    id: String,
    amount: i64,
    /// created, authorized, captured, refunded, failed (and `pending` for COD).
    status: String,
    /// Razorpay's fee, tax included, in subunits; null until captured.
    #[serde(default)]
    fee: Option<i64>,
    #[serde(default)]
    error_description: Option<String>,
    #[serde(default)]
    error_reason: Option<String>,
    #[serde(default)]
    created_at: i64,
}

impl RzpPayment {
    fn failure(&self) -> String {
        [&self.error_description, &self.error_reason]
            .into_iter()
            .flatten()
            .find(|s| !s.is_empty())
            .cloned()
            .unwrap_or_else(|| "payment failed".to_owned())
    }
}

#[derive(Debug, Deserialize)]
struct RzpRefund {
    id: String,
    amount: i64,
    #[serde(default)]
    status: String,
}

impl From<RzpRefund> for Refunded {
    fn from(refund: RzpRefund) -> Self {
        Self {
            reference: refund.id,
            // Razorpay's subunits are ISO 4217 minor units (see `to_subunits`).
            amount: refund.amount,
            status: match refund.status.as_str() {
                "processed" => RemoteStatus::Succeeded,
                "failed" => RemoteStatus::Failed,
                // `pending`: the bank has not confirmed yet; `refund.processed` will.
                _ => RemoteStatus::Processing,
            },
        }
    }
}

#[derive(Debug, Deserialize)]
struct RzpEvent {
    event: String,
    #[serde(default)]
    payload: serde_json::Map<String, Value>,
    #[serde(default)]
    created_at: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct RzpErrorBody {
    error: RzpError,
}

#[derive(Debug, Deserialize)]
struct RzpError {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

#[cfg(test)]
mod tests {
    //! Against an in-test Razorpay (wiremock) answering with the JSON of Razorpay's API
    //! reference; signatures computed here with `hmac`/`sha2`, not with the code under test.

    use std::time::Duration;

    use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
    use base64::Engine;
    use hmac::{Hmac, Mac};
    use secrecy::SecretString;
    use serde_json::{Value, json};
    use sha2::Sha256;
    use uuid::Uuid;
    use wiremock::matchers::{body_json, body_partial_json, header, header_exists, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::{Razorpay, verify_checkout};
    use crate::domains::orders::providers::{
        Outcome, PaymentProvider, ProviderError, RefundRequest, RemoteStatus, StartPayment,
    };
    use crate::domains::orders::settings::RazorpaySettings;

    const KEY_ID: &str = "rzp_test_1DP5mmOlF5G5ag";
    const KEY_SECRET: &str = "thisisasecretkey";
    const WEBHOOK_SECRET: &str = "webhook-secret-42";

    fn settings(base_url: &str) -> RazorpaySettings {
        RazorpaySettings {
            key_id: KEY_ID.to_owned(),
            key_secret: SecretString::from(KEY_SECRET),
            webhook_secret: SecretString::from(WEBHOOK_SECRET),
            base_url: base_url.to_owned(),
        }
    }

    fn provider(base_url: &str) -> Razorpay {
        // The platform installs rustls' provider at start-up; a unit test has no platform.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        Razorpay::new(&settings(base_url)).expect("provider")
    }

    fn basic_auth() -> String {
        let pair = format!("{KEY_ID}:{KEY_SECRET}");
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }

    fn hex_hmac(key: &str, message: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("key");
        mac.update(message);
        hex::encode(mac.finalize().into_bytes())
    }

    fn start_request<'a>(
        order_id: Uuid,
        amount: i64,
        currency: &'a str,
        key: &'a str,
    ) -> StartPayment<'a> {
        StartPayment {
            order_id,
            order_number: "BS-0A1B2C3D4E5F",
            amount,
            currency,
            email: Some("buyer@example.com"),
            idempotency_key: key,
        }
    }

    /// Razorpay's create-order answer (API reference, "Create an Order").
    fn order_json(id: &str, amount: i64, currency: &str, receipt: &Value, notes: &Value) -> Value {
        json!({
            "amount": amount, "amount_due": amount, "amount_paid": 0, "attempts": 0,
            "created_at": 1756455561, "currency": currency, "entity": "order", "id": id,
            "notes": notes, "offer_id": null, "receipt": receipt, "status": "created"
        })
    }

    #[tokio::test]
    async fn razorpay_start_creates_an_order_with_basic_auth_and_subunits() {
        let server = MockServer::start().await;
        let order_id = Uuid::now_v7();
        Mock::given(method("POST"))
            .and(path("/v1/orders"))
            .and(header("authorization", basic_auth().as_str()))
            .and(body_partial_json(json!({
                "amount": 29935, "currency": "INR",
                "notes": { "basalt_order_id": order_id.to_string() }
            })))
            .respond_with(ResponseTemplate::new(200).set_body_json(order_json(
                "order_RB58MiP5SPFYyM",
                29935,
                "INR",
                &json!("BS-0A1B2C3D4E5F"),
                &json!({ "basalt_order_id": order_id.to_string() }),
            )))
            .expect(2)
            .mount(&server)
            .await;
        let rzp = provider(&server.uri());
        let started = rzp
            .start(&start_request(order_id, 29935, "INR", "order:x:payment:1"))
            .await
            .expect("started");
        assert_eq!(started.reference, "order_RB58MiP5SPFYyM");
        assert_eq!(started.status, RemoteStatus::RequiresPaymentMethod);
        assert_eq!(
            started.client,
            json!({ "order_id": "order_RB58MiP5SPFYyM", "key_id": KEY_ID,
                    "amount": 29935, "currency": "INR",
                    "prefill": { "email": "buyer@example.com" } })
        );
        // The same attempt retried, then read what went over the wire.
        rzp.start(&start_request(order_id, 29935, "INR", "order:x:payment:1"))
            .await
            .expect("retried");
        let sent = server.received_requests().await.expect("recorded");
        let receipts: Vec<String> = sent
            .iter()
            .map(|r| {
                let body: Value = serde_json::from_slice(&r.body).expect("json body");
                assert_eq!(body["amount"], json!(29935));
                body["receipt"].as_str().expect("receipt").to_owned()
            })
            .collect();
        assert!(receipts[0].starts_with("BS-0A1B2C3D4E5F#"), "{receipts:?}");
        assert!(receipts[0].len() <= 40, "{receipts:?}");
        assert_eq!(
            receipts[0], receipts[1],
            "a retried attempt keeps its receipt"
        );
        assert!(
            sent[0]
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/json"))
        );
    }

    #[tokio::test]
    async fn razorpay_start_gives_a_new_attempt_a_new_receipt() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/orders"))
            .respond_with(ResponseTemplate::new(200).set_body_json(order_json(
                "order_A",
                100,
                "INR",
                &json!("r"),
                &json!([]),
            )))
            .mount(&server)
            .await;
        let rzp = provider(&server.uri());
        let id = Uuid::now_v7();
        for key in ["order:x:payment:1", "order:x:payment:2"] {
            rzp.start(&start_request(id, 100, "INR", key))
                .await
                .expect("started");
        }
        let sent = server.received_requests().await.expect("recorded");
        let receipt = |i: usize| {
            let body: Value = serde_json::from_slice(&sent[i].body).expect("json");
            body["receipt"].as_str().expect("receipt").to_owned()
        };
        assert_ne!(receipt(0), receipt(1));
    }

    #[tokio::test]
    async fn razorpay_start_amounts_follow_the_currency_subunit() {
        let server = MockServer::start().await;
        for (amount, currency) in [(295, "JPY"), (99990, "KWD"), (2000, "USD")] {
            Mock::given(method("POST"))
                .and(path("/v1/orders"))
                .and(body_partial_json(
                    json!({ "amount": amount, "currency": currency }),
                ))
                .respond_with(ResponseTemplate::new(200).set_body_json(order_json(
                    "order_B",
                    amount,
                    currency,
                    &json!(null),
                    &json!([]),
                )))
                .expect(1)
                .mount(&server)
                .await;
        }
        let rzp = provider(&server.uri());
        let id = Uuid::now_v7();
        for (amount, currency) in [(295, "JPY"), (99990, "KWD"), (2000, "USD")] {
            let started = rzp
                .start(&start_request(id, amount, currency, "k-1"))
                .await
                .expect("started");
            assert_eq!(started.client["amount"], json!(amount));
        }
        // 99.991 KWD cannot be charged through Razorpay: refused, nothing sent.
        let err = rzp
            .start(&start_request(id, 99991, "KWD", "k-2"))
            .await
            .expect_err("three decimals ending in 1");
        assert!(matches!(err, ProviderError::Unsupported(_)), "{err:?}");
        let err = rzp
            .start(&start_request(id, 0, "INR", "k-3"))
            .await
            .expect_err("zero");
        assert!(matches!(err, ProviderError::Refused(_)), "{err:?}");
        assert_eq!(server.received_requests().await.expect("recorded").len(), 3);
    }

    #[tokio::test]
    async fn razorpay_start_refuses_an_order_for_another_amount() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/orders"))
            .respond_with(ResponseTemplate::new(200).set_body_json(order_json(
                "order_C",
                100,
                "INR",
                &json!(null),
                &json!([]),
            )))
            .mount(&server)
            .await;
        let err = provider(&server.uri())
            .start(&start_request(Uuid::now_v7(), 10000, "INR", "k-1"))
            .await
            .expect_err("amount mismatch");
        assert!(matches!(err, ProviderError::Payload(_)), "{err:?}");
    }

    #[tokio::test]
    async fn razorpay_errors_4xx_refused_5xx_and_network_unavailable() {
        let server = MockServer::start().await;
        // Razorpay's documented 400 for an amount under the minimum.
        Mock::given(method("POST"))
            .and(path("/v1/orders"))
            .and(body_partial_json(json!({ "amount": 50 })))
            .respond_with(ResponseTemplate::new(400).set_body_json(json!({
                "error": {
                    "code": "BAD_REQUEST_ERROR",
                    "description": "The amount must be at least INR 1.00",
                    "source": "business", "step": "payment_initiation",
                    "reason": "input_validation_failed", "metadata": {}, "field": "amount"
                }
            })))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v1/orders"))
            .and(body_partial_json(json!({ "amount": 500 })))
            .respond_with(ResponseTemplate::new(502).set_body_string("<html>bad gateway</html>"))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v1/orders"))
            .and(body_partial_json(json!({ "amount": 700 })))
            .respond_with(ResponseTemplate::new(429).set_body_json(json!({
                "error": { "code": "BAD_REQUEST_ERROR", "description": "Too many requests" }
            })))
            .mount(&server)
            .await;
        let rzp = provider(&server.uri());
        let id = Uuid::now_v7();
        match rzp.start(&start_request(id, 50, "INR", "k-1")).await {
            Err(ProviderError::Refused(m)) => {
                assert_eq!(m, "The amount must be at least INR 1.00")
            }
            other => panic!("{other:?}"),
        }
        let err = rzp
            .start(&start_request(id, 500, "INR", "k-2"))
            .await
            .expect_err("502");
        assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
        let err = rzp
            .start(&start_request(id, 700, "INR", "k-3"))
            .await
            .expect_err("429");
        assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");

        // Nothing listening.
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("addr")
        };
        let err = provider(&format!("http://{closed}"))
            .start(&start_request(id, 100, "INR", "k-4"))
            .await
            .expect_err("refused connection");
        assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
    }

    #[tokio::test]
    async fn razorpay_a_slow_answer_times_out_as_unavailable() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v1/orders/order_Slow1/payments"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({ "entity": "collection", "count": 0, "items": [] }))
                    .set_delay(Duration::from_secs(2)),
            )
            .mount(&server)
            .await;
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let rzp = Razorpay::with_timeout(&settings(&server.uri()), Duration::from_millis(200))
            .expect("provider");
        let err = rzp.fetch("order_Slow1").await.expect_err("timeout");
        assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
    }

    /// Razorpay's "Fetch Payments for an Order" example: a failed UPI attempt, then a
    /// captured one.
    fn payments_json() -> Value {
        json!({
          "entity": "collection", "count": 2,
          "items": [
            {
              "id": "pay_N8FUmetkCE2hZP", "entity": "payment", "amount": 100, "currency": "INR",
              "status": "failed", "order_id": "order_N8FRN5zTm5S3wx", "invoice_id": null,
              "international": false, "method": "upi", "amount_refunded": 0,
              "refund_status": null, "captured": false, "description": null, "card_id": null,
              "bank": null, "wallet": null, "vpa": "failure@razorpay",
              "email": "void@razorpay.com", "contact": "+919999999999",
              "notes": { "notes_key_1": "Tea, Earl Grey, Hot" },
              "fee": null, "tax": null, "error_code": "BAD_REQUEST_ERROR",
              "error_description": "Payment was unsuccessful due to a temporary issue. If amount got deducted, it will be refunded within 5-7 working days.",
              "error_source": "gateway", "error_step": "payment_response",
              "error_reason": "payment_failed", "acquirer_data": { "rrn": null },
              "created_at": 1701688684, "upi": { "vpa": "failure@razorpay" }
            },
            {
              "id": "pay_N8FVRD1DzYzBh1", "entity": "payment", "amount": 100, "currency": "INR",
              "status": "captured", "order_id": "order_N8FRN5zTm5S3wx", "invoice_id": null,
              "international": false, "method": "upi", "amount_refunded": 0,
              "refund_status": null, "captured": true, "description": null, "card_id": null,
              "bank": null, "wallet": null, "vpa": "success@razorpay",
              "email": "void@razorpay.com", "contact": "+919999999999",
              "notes": { "notes_key_1": "Tea, Earl Grey, Hot" },
              "fee": 2, "tax": 0, "error_code": null, "error_description": null,
              "error_source": null, "error_step": null, "error_reason": null,
              "acquirer_data": { "rrn": "267567962619" },
              "created_at": 1701688721, "upi": { "vpa": "success@razorpay" }
            }
          ]
        })
    }

    #[tokio::test]
    async fn razorpay_fetch_reads_the_orders_payments() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v1/orders/order_N8FRN5zTm5S3wx/payments"))
            .and(header("authorization", basic_auth().as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(payments_json()))
            .expect(1)
            .mount(&server)
            .await;
        let remote = provider(&server.uri())
            .fetch("order_N8FRN5zTm5S3wx")
            .await
            .expect("fetched");
        assert_eq!(remote.reference, "order_N8FRN5zTm5S3wx");
        assert_eq!(remote.status, RemoteStatus::Succeeded);
        assert_eq!(remote.captured, 100);
        assert_eq!(remote.fee, Some(2));
        assert_eq!(
            remote.capture_reference.as_deref(),
            Some("pay_N8FVRD1DzYzBh1")
        );
        assert_eq!(remote.failure, None);
    }

    #[tokio::test]
    async fn razorpay_fetch_maps_each_payment_status() {
        let server = MockServer::start().await;
        let mut failed_only = payments_json();
        failed_only["items"]
            .as_array_mut()
            .expect("items")
            .truncate(1);
        let mut authorized = failed_only.clone();
        authorized["items"][0]["status"] = json!("authorized");
        let mut created = failed_only.clone();
        created["items"][0]["status"] = json!("created");
        let mut refunded = payments_json();
        refunded["items"][1]["status"] = json!("refunded");
        let cases = [
            ("order_Failed1", failed_only, RemoteStatus::Failed, 0),
            ("order_Auth1", authorized, RemoteStatus::Authorized, 0),
            ("order_Created1", created, RemoteStatus::Processing, 0),
            ("order_Refunded1", refunded, RemoteStatus::Succeeded, 100),
            (
                "order_Empty1",
                json!({ "entity": "collection", "count": 0, "items": [] }),
                RemoteStatus::RequiresPaymentMethod,
                0,
            ),
        ];
        for (id, body, _, _) in &cases {
            Mock::given(method("GET"))
                .and(path(format!("/v1/orders/{id}/payments")))
                .respond_with(ResponseTemplate::new(200).set_body_json(body))
                .mount(&server)
                .await;
        }
        let rzp = provider(&server.uri());
        for (id, _, status, captured) in &cases {
            let remote = rzp.fetch(id).await.expect("fetched");
            assert_eq!(remote.status, *status, "{id}");
            assert_eq!(remote.captured, *captured, "{id}");
        }
        let failed = rzp.fetch("order_Failed1").await.expect("fetched");
        assert!(
            failed
                .failure
                .as_deref()
                .is_some_and(|f| f.starts_with("Payment was unsuccessful")),
            "{failed:?}"
        );
        assert_eq!(failed.capture_reference, None);
        // Not an order id: refused before any request.
        let before = server.received_requests().await.expect("recorded").len();
        let err = rzp
            .fetch("order_x/../../v1/payments")
            .await
            .expect_err("path");
        assert!(matches!(err, ProviderError::Refused(_)), "{err:?}");
        assert_eq!(
            server.received_requests().await.expect("recorded").len(),
            before
        );
    }

    fn refund_request<'a>(
        capture: Option<&'a str>,
        amount: i64,
        key: &'a str,
    ) -> RefundRequest<'a> {
        RefundRequest {
            reference: "order_N8FRN5zTm5S3wx",
            capture_reference: capture,
            amount,
            currency: "INR",
            idempotency_key: key,
        }
    }

    #[tokio::test]
    async fn razorpay_refund_names_the_captured_payment_with_an_idempotency_key() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/payments/pay_29QQoUBi66xm2f/refund"))
            .and(header("authorization", basic_auth().as_str()))
            .and(header_exists("x-refund-idempotency"))
            .and(body_json(json!({ "amount": 500100 })))
            // Razorpay's "Create a Normal Refund (Idempotent Request)" example.
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "id": "rfnd_FP8QHiV938haTz", "entity": "refund", "amount": 500100,
                "receipt": "Receipt No. 31", "currency": "INR",
                "payment_id": "pay_29QQoUBi66xm2f", "notes": {},
                "acquirer_data": { "arn": null }, "created_at": 1597078866,
                "batch_id": null, "status": "processed",
                "speed_processed": "normal", "speed_requested": "normal"
            })))
            .expect(2)
            .mount(&server)
            .await;
        let rzp = provider(&server.uri());
        let key = "order:0192f:refund:1";
        for _ in 0..2 {
            let refunded = rzp
                .refund(&refund_request(Some("pay_29QQoUBi66xm2f"), 500100, key))
                .await
                .expect("refunded");
            assert_eq!(refunded.reference, "rfnd_FP8QHiV938haTz");
            assert_eq!(refunded.amount, 500100);
            assert_eq!(refunded.status, RemoteStatus::Succeeded);
        }
        let sent = server.received_requests().await.expect("recorded");
        let keys: Vec<&str> = sent
            .iter()
            .map(|r| {
                r.headers
                    .get("x-refund-idempotency")
                    .and_then(|v| v.to_str().ok())
                    .expect("key")
            })
            .collect();
        // Razorpay's rule for the key: at least 10 of [A-Za-z0-9_-]; the same for a retry.
        assert!(keys[0].len() >= 10, "{keys:?}");
        assert!(
            keys[0]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{keys:?}"
        );
        assert_eq!(keys[0], keys[1]);
    }

    /// Razorpay refusing a refund of `payment`, with its error body for refund requests.
    async fn refund_refused(server: &MockServer, payment: &str, status: u16, description: &str) {
        Mock::given(method("POST"))
            .and(path(format!("/v1/payments/{payment}/refund")))
            .respond_with(ResponseTemplate::new(status).set_body_json(json!({
                "error": {
                    "code": "BAD_REQUEST_ERROR", "description": description,
                    "source": "NA", "step": "NA", "reason": "NA", "metadata": {}
                }
            })))
            .mount(server)
            .await;
    }
    #[tokio::test]
    async fn razorpay_refund_pending_and_refusals() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/payments/pay_Pending1/refund"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "id": "rfnd_Pending1", "entity": "refund", "amount": 100, "currency": "INR",
                "payment_id": "pay_Pending1", "notes": {}, "receipt": null,
                "acquirer_data": { "arn": null }, "created_at": 1597078866,
                "batch_id": null, "status": "pending", "speed_processed": "normal",
                "speed_requested": "normal"
            })))
            .mount(&server)
            .await;
        refund_refused(
            &server,
            "pay_Over1",
            400,
            "The refund amount provided is greater than amount captured.",
        )
        .await;
        refund_refused(
            &server,
            "pay_Busy1",
            409,
            "Another request with the same idempotency key is still in progress.",
        )
        .await;
        let rzp = provider(&server.uri());
        let pending = rzp
            .refund(&refund_request(Some("pay_Pending1"), 100, "refund-key-1"))
            .await
            .expect("pending");
        assert_eq!(pending.status, RemoteStatus::Processing);
        match rzp
            .refund(&refund_request(Some("pay_Over1"), 100_000, "refund-key-2"))
            .await
        {
            Err(ProviderError::Refused(m)) => assert!(m.contains("greater than"), "{m}"),
            other => panic!("{other:?}"),
        }
        let err = rzp
            .refund(&refund_request(Some("pay_Busy1"), 100, "refund-key-3"))
            .await
            .expect_err("in progress");
        assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");

        // No captured payment recorded: nothing to refund, nothing sent.
        let before = server.received_requests().await.expect("recorded").len();
        let err = rzp
            .refund(&refund_request(None, 100, "refund-key-4"))
            .await
            .expect_err("no capture");
        assert!(matches!(err, ProviderError::Refused(_)), "{err:?}");
        assert_eq!(
            server.received_requests().await.expect("recorded").len(),
            before
        );
    }

    // ---- webhooks ------------------------------------------------------------------

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(
                HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        map
    }

    fn signed(body: &str, event_id: &str) -> HeaderMap {
        headers(&[
            (
                "X-Razorpay-Signature",
                &hex_hmac(WEBHOOK_SECRET, body.as_bytes()),
            ),
            ("x-razorpay-event-id", event_id),
        ])
    }

    fn payment_entity(status: &str, notes: Value) -> Value {
        json!({
            "id": "pay_DESlfW9H8K9uqM", "entity": "payment", "amount": 100, "currency": "INR",
            "base_amount": 100, "status": status, "order_id": "order_DESlLckIVRkHWj",
            "invoice_id": null, "international": false, "method": "netbanking",
            "amount_refunded": 0, "amount_transferred": 0, "refund_status": null,
            "captured": status == "captured", "description": null, "card_id": null,
            "bank": "HDFC", "wallet": null, "vpa": null, "email": "gaurav.kumar@example.com",
            "contact": "+919876543210", "notes": notes,
            "fee": if status == "captured" { json!(2) } else { json!(null) },
            "tax": if status == "captured" { json!(0) } else { json!(null) },
            "error_code": if status == "failed" { json!("BAD_REQUEST_ERROR") } else { json!(null) },
            "error_description": if status == "failed" { json!("Payment failed") } else { json!(null) },
            "error_source": null, "error_step": null,
            "error_reason": if status == "failed" { json!("payment_failed") } else { json!(null) },
            "acquirer_data": { "bank_transaction_id": "0125836177" },
            "created_at": 1567674599
        })
    }

    /// Razorpay's event envelope (its sample payloads) around the given entities.
    fn event(kind: &str, payload: Value) -> String {
        let contains: Vec<String> = payload
            .as_object()
            .expect("object")
            .keys()
            .cloned()
            .collect();
        json!({
            "entity": "event", "account_id": "acc_BFQ7uQEaa7j2z7", "event": kind,
            "contains": contains, "payload": payload, "created_at": 1567674606
        })
        .to_string()
    }

    #[test]
    fn razorpay_webhook_signature_valid_tampered_wrong_secret_missing() {
        let rzp = provider("http://127.0.0.1:9");
        let body = event(
            "payment.captured",
            json!({ "payment": { "entity": payment_entity("captured", json!([])) } }),
        );
        let event = rzp
            .webhook(&signed(&body, "evt_1"), body.as_bytes(), 0)
            .expect("valid");
        assert_eq!(event.id, "evt_1");

        let tampered = body.replace("\"amount\":100", "\"amount\":1");
        assert_ne!(tampered, body);
        let err = rzp
            .webhook(&signed(&body, "evt_1"), tampered.as_bytes(), 0)
            .expect_err("tampered");
        assert!(matches!(err, ProviderError::Signature(_)), "{err:?}");

        let wrong = headers(&[
            (
                "x-razorpay-signature",
                &hex_hmac("another-secret", body.as_bytes()),
            ),
            ("x-razorpay-event-id", "evt_1"),
        ]);
        let err = rzp
            .webhook(&wrong, body.as_bytes(), 0)
            .expect_err("wrong secret");
        assert!(matches!(err, ProviderError::Signature(_)), "{err:?}");

        // Signed with the key secret instead of the webhook secret: a different scheme.
        let key_secret = headers(&[
            (
                "x-razorpay-signature",
                &hex_hmac(KEY_SECRET, body.as_bytes()),
            ),
            ("x-razorpay-event-id", "evt_1"),
        ]);
        let err = rzp
            .webhook(&key_secret, body.as_bytes(), 0)
            .expect_err("key secret");
        assert!(matches!(err, ProviderError::Signature(_)), "{err:?}");

        let missing = headers(&[("x-razorpay-event-id", "evt_1")]);
        let err = rzp
            .webhook(&missing, body.as_bytes(), 0)
            .expect_err("missing");
        assert!(matches!(err, ProviderError::Signature(_)), "{err:?}");

        let garbage = headers(&[
            ("x-razorpay-signature", "not-hex"),
            ("x-razorpay-event-id", "evt_1"),
        ]);
        let err = rzp
            .webhook(&garbage, body.as_bytes(), 0)
            .expect_err("garbage");
        assert!(matches!(err, ProviderError::Signature(_)), "{err:?}");

        let no_id = headers(&[(
            "x-razorpay-signature",
            &hex_hmac(WEBHOOK_SECRET, body.as_bytes()),
        )]);
        let err = rzp
            .webhook(&no_id, body.as_bytes(), 0)
            .expect_err("no event id");
        assert!(matches!(err, ProviderError::Payload(_)), "{err:?}");
    }

    fn read(kind: &str, payload: Value) -> super::ProviderEvent {
        let body = event(kind, payload);
        provider("http://127.0.0.1:9")
            .webhook(&signed(&body, "evt_X"), body.as_bytes(), 0)
            .expect("event")
    }

    #[test]
    fn razorpay_webhook_payment_events() {
        let ours = Uuid::now_v7();
        let notes = json!({ "basalt_order_id": ours.to_string() });

        let e = read(
            "payment.authorized",
            json!({ "payment": { "entity": payment_entity("authorized", notes.clone()) } }),
        );
        assert_eq!(e.kind, "payment.authorized");
        assert_eq!(e.reference.as_deref(), Some("order_DESlLckIVRkHWj"));
        assert_eq!(e.order_id, Some(ours));
        assert_eq!(e.occurred_at, 1567674606);
        assert_eq!(e.outcome, Outcome::Authorized { amount: 100 });

        let e = read(
            "payment.captured",
            json!({ "payment": { "entity": payment_entity("captured", json!([])) } }),
        );
        assert_eq!(e.order_id, None, "notes: [] carries no order");
        assert_eq!(
            e.outcome,
            Outcome::Succeeded {
                amount: 100,
                fee: Some(2),
                capture_reference: Some("pay_DESlfW9H8K9uqM".to_owned()),
            }
        );

        let e = read(
            "payment.failed",
            json!({ "payment": { "entity": payment_entity("failed", notes.clone()) } }),
        );
        assert_eq!(
            e.outcome,
            Outcome::Failed {
                reason: "Payment failed".to_owned()
            }
        );
        assert_eq!(e.reference.as_deref(), Some("order_DESlLckIVRkHWj"));
    }

    #[test]
    fn razorpay_webhook_order_paid_names_the_same_capture() {
        let ours = Uuid::now_v7();
        let order = json!({
            "id": "order_DESlLckIVRkHWj", "entity": "order", "amount": 100,
            "amount_paid": 100, "amount_due": 0, "currency": "INR",
            "receipt": "BS-0A1B2C3D4E5F#0123456789ab", "offer_id": null, "status": "paid",
            "attempts": 1, "notes": { "basalt_order_id": ours.to_string() },
            "created_at": 1567674581
        });
        let paid = read(
            "order.paid",
            json!({
                "payment": { "entity": payment_entity("captured", json!([])) },
                "order": { "entity": order }
            }),
        );
        assert_eq!(paid.reference.as_deref(), Some("order_DESlLckIVRkHWj"));
        assert_eq!(paid.order_id, Some(ours), "from the order's notes");
        let captured = read(
            "payment.captured",
            json!({ "payment": { "entity": payment_entity("captured", json!([])) } }),
        );
        // Both events of one capture read the same: the ledger keeps one.
        assert_eq!(paid.outcome, captured.outcome);
    }

    #[test]
    fn razorpay_webhook_refund_events() {
        let refund = |status: &str| {
            json!({
                "id": "rfnd_FS8TWyPrCsa0OB", "entity": "refund", "amount": 50,
                "currency": "INR", "payment_id": "pay_DESlfW9H8K9uqM",
                "notes": { "comment": "Customer Notes for Webhooks." }, "receipt": null,
                "acquirer_data": { "arn": null }, "created_at": 1597734071, "batch_id": null,
                "status": status, "speed_processed": "normal", "speed_requested": "optimum"
            })
        };
        for (kind, status) in [
            ("refund.created", "processed"),
            ("refund.processed", "processed"),
        ] {
            let e = read(
                kind,
                json!({
                    "refund": { "entity": refund(status) },
                    "payment": { "entity": payment_entity("captured", json!([])) }
                }),
            );
            assert_eq!(e.kind, kind);
            assert_eq!(e.reference.as_deref(), Some("order_DESlLckIVRkHWj"));
            assert_eq!(
                e.outcome,
                Outcome::Refunded {
                    refund_reference: "rfnd_FS8TWyPrCsa0OB".to_owned(),
                    amount: 50,
                }
            );
        }
        // Still pending: not money returned yet. Failed: the pending refund is released.
        for (kind, status, outcome) in [
            ("refund.created", "pending", Outcome::Ignored),
            (
                "refund.failed",
                "failed",
                Outcome::RefundFailed {
                    refund_reference: "rfnd_FS8TWyPrCsa0OB".to_owned(),
                    reason: "failed".to_owned(),
                },
            ),
        ] {
            let e = read(
                kind,
                json!({
                    "refund": { "entity": refund(status) },
                    "payment": { "entity": payment_entity("captured", json!([])) }
                }),
            );
            assert_eq!(e.outcome, outcome, "{kind}");
        }
    }

    #[test]
    fn razorpay_webhook_other_types_are_ignored_and_bad_ones_refused() {
        // A type we do not act on, with a payload of its own shape: recorded, ignored.
        let e = read(
            "payment.dispute.created",
            json!({
                "payment": { "entity": payment_entity("captured", json!([])) },
                "dispute": { "entity": { "id": "disp_1", "amount": 100 } }
            }),
        );
        assert_eq!(e.outcome, Outcome::Ignored);
        assert_eq!(e.reference.as_deref(), Some("order_DESlLckIVRkHWj"));
        let e = read(
            "subscription.charged",
            json!({ "subscription": { "entity": {} } }),
        );
        assert_eq!(e.outcome, Outcome::Ignored);
        assert_eq!(e.reference, None);

        // Signed, but not what Razorpay sends for a type we act on.
        let rzp = provider("http://127.0.0.1:9");
        for body in [
            event("payment.captured", json!({ "order": { "entity": {} } })),
            event(
                "payment.captured",
                json!({ "payment": { "entity": { "id": "pay_1" } } }),
            ),
            "not json".to_owned(),
        ] {
            let err = rzp
                .webhook(&signed(&body, "evt_bad"), body.as_bytes(), 0)
                .expect_err("payload");
            assert!(matches!(err, ProviderError::Payload(_)), "{err:?}");
        }
    }

    // ---- checkout callback ---------------------------------------------------------

    #[test]
    fn razorpay_verify_checkout_valid_tampered_swapped() {
        let settings = settings("http://127.0.0.1:9");
        let ours = "order_DLXae45SLMwqTZ";
        let payment = "pay_DLXbWV0fmyNBvt";
        let signature = hex_hmac(KEY_SECRET, format!("{ours}|{payment}").as_bytes());
        verify_checkout(&settings, ours, payment, &signature).expect("valid");

        let mut tampered = signature.clone().into_bytes();
        tampered[0] = if tampered[0] == b'0' { b'1' } else { b'0' };
        let tampered = String::from_utf8(tampered).expect("utf8");
        assert!(matches!(
            verify_checkout(&settings, ours, payment, &tampered),
            Err(ProviderError::Signature(_))
        ));
        // A genuine signature for another order (the buyer's cheap one) does not verify
        // against the order id stored on ours.
        let theirs = "order_CheapOne12345";
        let for_theirs = hex_hmac(KEY_SECRET, format!("{theirs}|{payment}").as_bytes());
        assert!(matches!(
            verify_checkout(&settings, ours, payment, &for_theirs),
            Err(ProviderError::Signature(_))
        ));
        assert!(matches!(
            verify_checkout(&settings, ours, "pay_Other", &signature),
            Err(ProviderError::Signature(_))
        ));
        // Signed with the webhook secret: the other scheme's key.
        let webhook_keyed = hex_hmac(WEBHOOK_SECRET, format!("{ours}|{payment}").as_bytes());
        assert!(matches!(
            verify_checkout(&settings, ours, payment, &webhook_keyed),
            Err(ProviderError::Signature(_))
        ));
        assert!(matches!(
            verify_checkout(&settings, ours, payment, ""),
            Err(ProviderError::Signature(_))
        ));
    }

    #[test]
    fn razorpay_refuses_empty_secrets() {
        let mut empty = settings("http://127.0.0.1:9");
        empty.webhook_secret = SecretString::from("");
        assert!(Razorpay::new(&empty).is_err());
        let mut empty = settings("http://127.0.0.1:9");
        empty.key_secret = SecretString::from("");
        assert!(Razorpay::new(&empty).is_err());
    }
}
