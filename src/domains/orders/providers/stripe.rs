//! Stripe, over its HTTP API (PaymentIntents), form-encoded as Stripe takes it, with an
//! `Idempotency-Key` on every POST so a retried call never makes a second intent or refund.
//!
//! Amounts: Basalt keeps ISO 4217 minor units; Stripe's API unit differs for some
//! currencies, so every amount crossing this file is converted by [`to_stripe`] and
//! [`from_stripe`] (and nowhere else):
//! - Stripe's zero-decimal currencies (BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV
//!   XAF XOF XPF) take whole units: the same number where ISO's exponent is 0 too (JPY,
//!   KRW, …), ÷100 for MGA (ISO exponent 2; an amount with a fraction of an ariary is
//!   refused rather than rounded).
//! - Stripe's special cases: ISK is two-decimal in Stripe's API although ISO (and Basalt)
//!   count whole krónur, so ×100 (always a multiple of 100, as Stripe requires); HUF and
//!   TWD are two-decimal in both (only Stripe's payouts need multiples of 100); UGX is
//!   zero-decimal in both.
//! - Three-decimal currencies (BHD JOD KWD OMR TND) match ISO; Stripe requires the last
//!   digit to be 0, so other amounts are refused.
//!
//! Webhooks: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=…]`, HMAC-SHA256 of `"{t}.{raw body}"`
//! with the endpoint's signing secret; any `v1` matching any configured secret verifies
//! (rotation), and `t` must be within 300 s of now (replays of old captures are refused).

use std::time::Duration;

use actix_web::http::header::HeaderMap;
use async_trait::async_trait;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use sha2::Sha256;
use uuid::Uuid;

use super::{
    Outcome, PaymentProvider, ProviderError, ProviderEvent, RefundRequest, Refunded, RemotePayment,
    RemoteStatus, StartPayment, Started,
};
use crate::domains::catalog::api::currency_exponent;
use crate::domains::orders::settings::StripeSettings;

pub const NAME: &str = "stripe";

/// How far a webhook's `t` may be from now, as Stripe's own libraries default.
pub const TOLERANCE_SECS: i64 = 300;

const ZERO_DECIMAL: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
    "XAF", "XOF", "XPF",
];
const THREE_DECIMAL: &[&str] = &["BHD", "JOD", "KWD", "OMR", "TND"];

pub struct Stripe {
    http: reqwest::Client,
    secret_key: SecretString,
    webhook_secrets: Vec<SecretString>,
    base_url: String,
}

impl Stripe {
    pub fn new(s: &StripeSettings) -> anyhow::Result<Self> {
        let webhook_secrets: Vec<SecretString> = s
            .webhook_secret
            .expose_secret()
            .split(',')
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .map(|w| SecretString::from(w.to_owned()))
            .collect();
        if s.secret_key.expose_secret().trim().is_empty() {
            anyhow::bail!("orders.stripe.secret_key: must not be empty");
        }
        if webhook_secrets.is_empty() {
            anyhow::bail!("orders.stripe.webhook_secret: give at least one signing secret");
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        Ok(Self {
            http,
            secret_key: s.secret_key.clone(),
            webhook_secrets,
            base_url: s.base_url.trim_end_matches('/').to_owned(),
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        form: &[(&str, String)],
        idempotency_key: Option<&str>,
    ) -> Result<Value, ProviderError> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(self.secret_key.expose_secret());
        if let Some(key) = idempotency_key {
            req = req.header("Idempotency-Key", key);
        }
        if !form.is_empty() {
            req = req.form(form);
        }
        let res = req
            .send()
            .await
            .map_err(|e| ProviderError::Unavailable(e.to_string()))?;
        let status = res.status();
        let body: Value = res
            .json()
            .await
            .map_err(|e| ProviderError::Unavailable(format!("{status}: {e}")))?;
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            // Our key is wrong, revoked or rotated away: ours to fix, not the buyer's. Logged
            // loudly; the caller gets a 503 without Stripe's text (it names the key).
            tracing::error!(%status, message = %body["error"]["message"],
                "Stripe refused Basalt's secret key: check orders.stripe.secret_key");
            return Err(ProviderError::Unavailable(format!(
                "{status}: Stripe refused the secret key"
            )));
        }
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(ProviderError::Unavailable(format!("{status}: {body}")));
        }
        if !status.is_success() {
            let message = body["error"]["message"]
                .as_str()
                .unwrap_or("no message")
                .to_owned();
            return Err(ProviderError::Refused(message));
        }
        Ok(body)
    }
}

/// Stripe's exponent for a currency (see the module's comment).
fn stripe_exponent(currency: &str) -> u32 {
    if ZERO_DECIMAL.contains(&currency) {
        0
    } else if THREE_DECIMAL.contains(&currency) {
        3
    } else {
        2
    }
}

/// Basalt's minor units of `currency` to the amount Stripe's API takes. An amount Stripe
/// cannot express is `Unsupported` (a 422 `provider_unsupported`: the order, not Stripe, is
/// what cannot go this way), never rounded.
pub fn to_stripe(amount: i64, currency: &str) -> Result<i64, ProviderError> {
    let iso = u32::from(
        currency_exponent(currency).ok_or(ProviderError::Unsupported(
            "a currency Stripe does not know",
        ))?,
    );
    let stripe = stripe_exponent(currency);
    let converted = if stripe >= iso {
        amount.checked_mul(10_i64.pow(stripe - iso))
    } else {
        let unit = 10_i64.pow(iso - stripe);
        (amount % unit == 0).then(|| amount / unit)
    }
    .ok_or(ProviderError::Unsupported(
        "Stripe charges this currency in whole units only",
    ))?;
    if stripe == 3 && converted % 10 != 0 {
        return Err(ProviderError::Unsupported(
            "Stripe takes three-decimal currencies in multiples of 10 minor units",
        ));
    }
    Ok(converted)
}

/// An amount Stripe reports back to Basalt's minor units of `currency`.
pub fn from_stripe(amount: i64, currency: &str) -> Result<i64, ProviderError> {
    let iso = u32::from(
        currency_exponent(currency)
            .ok_or_else(|| ProviderError::Payload(format!("unknown currency {currency}")))?,
    );
    let stripe = stripe_exponent(currency);
    let converted = if iso >= stripe {
        amount.checked_mul(10_i64.pow(iso - stripe))
    } else {
        Some(amount / 10_i64.pow(stripe - iso))
    };
    converted.ok_or_else(|| ProviderError::Payload(format!("amount {amount} out of range")))
}

fn remote_status(s: &str) -> RemoteStatus {
    match s {
        "requires_action" => RemoteStatus::RequiresAction,
        "processing" => RemoteStatus::Processing,
        "requires_capture" => RemoteStatus::Authorized,
        "succeeded" => RemoteStatus::Succeeded,
        "canceled" => RemoteStatus::Canceled,
        // requires_payment_method, requires_confirmation: the buyer's move.
        _ => RemoteStatus::RequiresPaymentMethod,
    }
}

/// `latest_charge` is an id, or the charge itself where expanded (and in localstripe).
fn charge_id(pi: &Value) -> Option<String> {
    match &pi["latest_charge"] {
        Value::String(id) => Some(id.clone()),
        Value::Object(o) => o.get("id").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

fn currency_of(o: &Value) -> Result<String, ProviderError> {
    o["currency"]
        .as_str()
        .map(str::to_ascii_uppercase)
        .ok_or_else(|| ProviderError::Payload("no currency".into()))
}

fn amount_of(o: &Value, field: &str) -> Result<i64, ProviderError> {
    let raw = o[field]
        .as_i64()
        .ok_or_else(|| ProviderError::Payload(format!("no {field}")))?;
    from_stripe(raw, &currency_of(o)?)
}

/// A reference that is a PaymentIntent id, the only kind put in a URL path.
fn intent_id(reference: &str) -> Result<(), ProviderError> {
    if reference.starts_with("pi_")
        && reference
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Ok(());
    }
    Err(ProviderError::Refused(format!(
        "not a payment intent: {reference}"
    )))
}

/// Verifies `Stripe-Signature` over the raw body against any of `secrets`.
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &[SecretString],
    now: i64,
) -> Result<(), ProviderError> {
    let header = header.ok_or(ProviderError::Signature("no Stripe-Signature header"))?;
    let mut t = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1.extend(hex::decode(v).ok()),
            _ => {}
        }
    }
    let t = t.ok_or(ProviderError::Signature("no timestamp in Stripe-Signature"))?;
    if v1.is_empty() {
        return Err(ProviderError::Signature(
            "no v1 signature in Stripe-Signature",
        ));
    }
    // `abs_diff`, not `(now - t).abs()`: `t` is the sender's, and `now - i64::MIN`
    // overflows (a panic in debug builds, a wrong answer in release).
    if now.abs_diff(t) > TOLERANCE_SECS.unsigned_abs() {
        return Err(ProviderError::Signature("timestamp outside the tolerance"));
    }
    for secret in secrets {
        for sig in &v1 {
            let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
                .map_err(|_| ProviderError::Signature("unusable secret"))?;
            mac.update(t.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            // Constant-time comparison.
            if mac.verify_slice(sig).is_ok() {
                return Ok(());
            }
        }
    }
    Err(ProviderError::Signature("no signature matches"))
}

/// Reads a verified Stripe event into the provider-neutral words.
pub fn read_event(body: &[u8]) -> Result<ProviderEvent, ProviderError> {
    let e: Value =
        serde_json::from_slice(body).map_err(|e| ProviderError::Payload(e.to_string()))?;
    let id = e["id"]
        .as_str()
        .filter(|id| !id.is_empty() && id.len() <= 255)
        .ok_or_else(|| ProviderError::Payload("no event id".into()))?
        .to_owned();
    let kind = e["type"]
        .as_str()
        .filter(|k| k.len() <= 255)
        .ok_or_else(|| ProviderError::Payload("no event type".into()))?
        .to_owned();
    let occurred_at = e["created"].as_i64().unwrap_or(0);
    let o = &e["data"]["object"];
    let object_id = o["id"].as_str().map(str::to_owned);
    let (reference, outcome) = match kind.as_str() {
        "payment_intent.succeeded" => (
            object_id,
            Outcome::Succeeded {
                amount: amount_of(o, "amount_received").or_else(|_| amount_of(o, "amount"))?,
                fee: None,
                capture_reference: charge_id(o),
            },
        ),
        "payment_intent.payment_failed" => (
            object_id,
            Outcome::Failed {
                reason: o["last_payment_error"]["message"]
                    .as_str()
                    .unwrap_or("The payment failed.")
                    .to_owned(),
            },
        ),
        "payment_intent.processing" => (object_id, Outcome::Processing),
        "payment_intent.requires_action" => (object_id, Outcome::RequiresAction),
        "payment_intent.canceled" => (object_id, Outcome::Canceled),
        "payment_intent.amount_capturable_updated" => (
            object_id,
            Outcome::Authorized {
                amount: amount_of(o, "amount_capturable")?,
            },
        ),
        // A refund made on Stripe's side (the dashboard), or the echo of ours.
        "refund.created" | "refund.updated" if o["status"] == "succeeded" => (
            o["payment_intent"].as_str().map(str::to_owned),
            Outcome::Refunded {
                refund_reference: object_id.unwrap_or_default(),
                amount: amount_of(o, "amount")?,
            },
        ),
        // A pending refund of ours that did not go through.
        "refund.updated" | "refund.failed"
            if o["status"] == "failed" || o["status"] == "canceled" =>
        {
            (
                o["payment_intent"].as_str().map(str::to_owned),
                Outcome::RefundFailed {
                    refund_reference: object_id.unwrap_or_default(),
                    reason: o["failure_reason"]
                        .as_str()
                        .unwrap_or(if o["status"] == "canceled" {
                            "canceled"
                        } else {
                            "failed"
                        })
                        .to_owned(),
                },
            )
        }
        _ => (object_id, Outcome::Ignored),
    };
    let order_id = o["metadata"]["order_id"]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok());
    Ok(ProviderEvent {
        id,
        kind,
        reference,
        order_id,
        outcome,
        occurred_at,
    })
}

#[async_trait]
impl PaymentProvider for Stripe {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn start(&self, request: &StartPayment<'_>) -> Result<Started, ProviderError> {
        let form = [
            (
                "amount",
                to_stripe(request.amount, request.currency)?.to_string(),
            ),
            ("currency", request.currency.to_ascii_lowercase()),
            ("metadata[order_id]", request.order_id.to_string()),
            ("metadata[order_number]", request.order_number.to_owned()),
        ];
        let pi = self
            .call(
                reqwest::Method::POST,
                "/v1/payment_intents",
                &form,
                Some(request.idempotency_key),
            )
            .await?;
        let reference = pi["id"]
            .as_str()
            .ok_or_else(|| ProviderError::Payload("no payment intent id".into()))?
            .to_owned();
        Ok(Started {
            reference,
            status: remote_status(pi["status"].as_str().unwrap_or_default()),
            client: serde_json::json!({ "client_secret": pi["client_secret"] }),
        })
    }

    async fn fetch(&self, reference: &str) -> Result<RemotePayment, ProviderError> {
        intent_id(reference)?;
        let pi = self
            .call(
                reqwest::Method::GET,
                &format!("/v1/payment_intents/{reference}"),
                &[],
                None,
            )
            .await?;
        let status = remote_status(pi["status"].as_str().unwrap_or_default());
        let captured = if status == RemoteStatus::Succeeded {
            amount_of(&pi, "amount_received").or_else(|_| amount_of(&pi, "amount"))?
        } else {
            0
        };
        Ok(RemotePayment {
            reference: reference.to_owned(),
            status,
            captured,
            fee: None,
            capture_reference: charge_id(&pi),
            failure: pi["last_payment_error"]["message"]
                .as_str()
                .map(str::to_owned),
        })
    }

    /// `POST /v1/payment_intents/{id}/cancel`, under a key of its own per attempt: Stripe
    /// keeps a key's answer for 24 hours, refusals included, so a key per intent would
    /// replay a cancel refused while the intent was processing to every later attempt.
    /// Stripe refuses an intent that is processing or succeeded meanwhile: the caller's
    /// cancel then fails rather than leave money arriving for a cancelled order.
    async fn cancel(&self, reference: &str) -> Result<(), ProviderError> {
        intent_id(reference)?;
        let pi = self
            .call(
                reqwest::Method::POST,
                &format!("/v1/payment_intents/{reference}/cancel"),
                &[],
                Some(&format!("cancel:{reference}:{}", uuid::Uuid::now_v7())),
            )
            .await?;
        match pi["status"].as_str() {
            Some("canceled") => Ok(()),
            other => Err(ProviderError::Refused(format!(
                "the payment intent {reference} is {} after its cancel",
                other.unwrap_or("unknown")
            ))),
        }
    }

    async fn refund(&self, request: &RefundRequest<'_>) -> Result<Refunded, ProviderError> {
        let form = [
            ("payment_intent", request.reference.to_owned()),
            (
                "amount",
                to_stripe(request.amount, request.currency)?.to_string(),
            ),
        ];
        let r = self
            .call(
                reqwest::Method::POST,
                "/v1/refunds",
                &form,
                Some(request.idempotency_key),
            )
            .await?;
        let status = match r["status"].as_str() {
            Some("succeeded") => RemoteStatus::Succeeded,
            Some("failed") | Some("canceled") => {
                return Err(ProviderError::Refused(format!(
                    "the refund {}",
                    r["status"].as_str().unwrap_or("failed")
                )));
            }
            // `pending`, `requires_action`: not money returned yet; `refund.updated` says
            // how it ends.
            _ => RemoteStatus::Processing,
        };
        // What Stripe says it refunds, not what we asked: the caller compares the two.
        let amount = r["amount"]
            .as_i64()
            .ok_or_else(|| ProviderError::Payload("no refund amount".into()))
            .and_then(|a| from_stripe(a, request.currency))?;
        Ok(Refunded {
            reference: r["id"]
                .as_str()
                .ok_or_else(|| ProviderError::Payload("no refund id".into()))?
                .to_owned(),
            amount,
            status,
        })
    }

    async fn fetch_refund(
        &self,
        refund_reference: &str,
        currency: &str,
    ) -> Result<Refunded, ProviderError> {
        if !refund_reference.starts_with("re_")
            || !refund_reference
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(ProviderError::Refused(format!(
                "not a refund: {refund_reference}"
            )));
        }
        let r = self
            .call(
                reqwest::Method::GET,
                &format!("/v1/refunds/{refund_reference}"),
                &[],
                None,
            )
            .await?;
        let status = match r["status"].as_str() {
            Some("succeeded") => RemoteStatus::Succeeded,
            Some("failed") | Some("canceled") => RemoteStatus::Failed,
            _ => RemoteStatus::Processing,
        };
        let amount = r["amount"]
            .as_i64()
            .ok_or_else(|| ProviderError::Payload("no refund amount".into()))
            .and_then(|a| from_stripe(a, currency))?;
        Ok(Refunded {
            reference: refund_reference.to_owned(),
            amount,
            status,
        })
    }

    fn webhook(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<ProviderEvent, ProviderError> {
        let header = headers
            .get("stripe-signature")
            .and_then(|v| v.to_str().ok());
        verify(header, body, &self.webhook_secrets, now)?;
        read_event(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_convert_for_stripes_zero_decimal_and_special_currencies() {
        assert_eq!(to_stripe(1050, "USD").unwrap(), 1050);
        assert_eq!(to_stripe(500, "JPY").unwrap(), 500);
        assert_eq!(to_stripe(500, "KRW").unwrap(), 500);
        assert_eq!(to_stripe(500, "UGX").unwrap(), 500);
        // ISK: whole krónur in ISO, two-decimal in Stripe's API.
        assert_eq!(to_stripe(5, "ISK").unwrap(), 500);
        assert_eq!(from_stripe(500, "ISK").unwrap(), 5);
        assert_eq!(to_stripe(1234, "HUF").unwrap(), 1234);
        assert_eq!(to_stripe(1234, "TWD").unwrap(), 1234);
        // MGA: ISO counts hundredths, Stripe whole ariary.
        assert_eq!(to_stripe(1500, "MGA").unwrap(), 15);
        assert!(to_stripe(1550, "MGA").is_err());
        assert_eq!(from_stripe(15, "MGA").unwrap(), 1500);
        assert_eq!(to_stripe(5120, "KWD").unwrap(), 5120);
        assert!(to_stripe(5124, "KWD").is_err());
        assert!(to_stripe(1, "XXX").is_err());
        assert!(matches!(
            to_stripe(5124, "KWD"),
            Err(ProviderError::Unsupported(_))
        ));
    }

    #[test]
    fn a_timestamp_at_either_end_of_i64_is_outside_the_tolerance_not_a_panic() {
        let secrets = [SecretString::from("whsec_x".to_owned())];
        for t in [i64::MIN, i64::MAX, -1] {
            let header = format!("t={t},v1=00");
            assert!(matches!(
                verify(Some(&header), b"{}", &secrets, 1_700_000_000),
                Err(ProviderError::Signature("timestamp outside the tolerance"))
            ));
        }
    }
}
