//! The payment providers' webhooks (anonymous; the signature is the credential): one
//! provider-neutral pipeline, [`receive`], that each provider's route calls with its
//! provider, and the subscriber that applies what they report.
//!
//! `receive` verifies the signature on the RAW body (`PaymentProvider::webhook`), then in
//! ONE statement records the event (`orders.provider_events`, `ON CONFLICT DO NOTHING` on
//! provider + event id) and, only if it was new, the outbox event `payment_provider.event_received`,
//! and answers 200 at once: a duplicate delivery is a 200 that does nothing. The orders
//! domain's own subscriber (`subscribers::provider_events`) then applies it under the order's and the
//! payment's locks (`settlement::apply`), and records what became of it: `applied`,
//! `ignored` (a duplicate outcome, an illegal move) or `orphan` (no payment of ours).

use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_LENGTH;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use utoipa::OpenApi;

use super::error::OrdersError;
use super::providers::PaymentProvider;
use super::repo;
use super::state::OrdersState;
use crate::events::orders::ProviderEventReceived;
use crate::platform::Platform;
use crate::platform::error::ApiError;
use crate::platform::error::responses::{BadRequest, NotFound, TooLarge};
use crate::platform::events::envelopes;
use crate::platform::http::{Endpoint, Routes};

/// The largest webhook body read. Providers' events are a few KiB (Stripe's biggest, with
/// expanded objects, stay well under 64 KiB); the signature can only be checked once the
/// whole body is in, so an anonymous sender must not make us buffer the global limit first.
pub const BODY_LIMIT: usize = 256 * 1024;

#[derive(OpenApi)]
#[openapi(paths(stripe_webhook, razorpay_webhook))]
pub struct WebhooksApi;

pub fn configure(routes: &mut Routes) {
    routes
        .add(Endpoint::at("/webhooks/stripe").post(stripe_webhook))
        .add(Endpoint::at("/webhooks/razorpay").post(razorpay_webhook));
}

/// The answer to a provider's delivery.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct WebhookReceived {
    /// `false` for a delivery of an event already recorded (it does nothing).
    pub recorded: bool,
}

/// Stripe's webhook endpoint (point Stripe's dashboard here: `POST
/// /api/v1/orders/webhooks/stripe`). Verifies `Stripe-Signature` (`t=…,v1=…`: HMAC-SHA256
/// of `"{t}.{raw body}"` with the endpoint's signing secret; any configured secret
/// verifies, so a rotation loses nothing; `t` within 300 s), records the event once and
/// answers at once; the payment moves shortly after, through the outbox. 400
/// `invalid_signature` or `invalid_payload`; 404 `provider_not_configured` where Stripe is
/// not configured.
#[utoipa::path(
    post, path = "/webhooks/stripe", tag = "orders",
    request_body(content = serde_json::Value, description = "Stripe's event, as Stripe sends it (the raw body is what the signature covers)"),
    params(("Stripe-Signature" = String, Header, description = "`t=<unix seconds>,v1=<hex HMAC-SHA256>[,v1=…]`")),
    responses((status = 200, body = WebhookReceived), BadRequest, NotFound, TooLarge)
)]
pub async fn stripe_webhook(
    platform: web::Data<Platform>,
    state: web::Data<OrdersState>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, OrdersError> {
    let provider = configured(&state, "stripe")?;
    let body = read_limited(&req, body).await?;
    receive(&platform.db, provider, &req, &body).await
}

/// Razorpay's webhook endpoint (on Razorpay's dashboard, Settings → Webhooks: `POST
/// /api/v1/orders/webhooks/razorpay`, with the webhook's own secret). Verifies
/// `X-Razorpay-Signature` (hex HMAC-SHA256 of the raw body with the webhook secret; Razorpay
/// signs no timestamp, so a replayed body is stopped by the record of its
/// `x-razorpay-event-id`), records the event once and answers at once. 400
/// `invalid_signature` or `invalid_payload`; 404 `provider_not_configured` where Razorpay is
/// not configured.
#[utoipa::path(
    post, path = "/webhooks/razorpay", tag = "orders",
    request_body(content = serde_json::Value, description = "Razorpay's event, as Razorpay sends it (the raw body is what the signature covers)"),
    params(
        ("X-Razorpay-Signature" = String, Header, description = "hex HMAC-SHA256 of the body"),
        ("x-razorpay-event-id" = String, Header, description = "the event's id, unique per event")
    ),
    responses((status = 200, body = WebhookReceived), BadRequest, NotFound, TooLarge)
)]
pub async fn razorpay_webhook(
    platform: web::Data<Platform>,
    state: web::Data<OrdersState>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, OrdersError> {
    let provider = configured(&state, "razorpay")?;
    let body = read_limited(&req, body).await?;
    receive(&platform.db, provider, &req, &body).await
}

/// The raw body, up to [`BODY_LIMIT`]: a larger one (by its `Content-Length`, or as it
/// streams in) is a 413 `payload_too_large` before it is buffered.
async fn read_limited(
    req: &HttpRequest,
    mut payload: web::Payload,
) -> Result<Vec<u8>, OrdersError> {
    let too_large = || {
        OrdersError::Platform(
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
                .detail(format!("A webhook's body is at most {BODY_LIMIT} bytes.")),
        )
    };
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > BODY_LIMIT as u64) {
        return Err(too_large());
    }
    let mut body = Vec::with_capacity(declared.map_or(8 * 1024, |n| n as usize));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            OrdersError::Platform(ApiError::bad_request(
                "invalid_body",
                format!("Could not read the body: {e}"),
            ))
        })?;
        if body.len() + chunk.len() > BODY_LIMIT {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The provider named, or the 404 `provider_not_configured` its routes answer with where
/// it is not configured.
fn configured<'a>(
    state: &'a OrdersState,
    name: &str,
) -> Result<&'a dyn PaymentProvider, OrdersError> {
    state
        .providers
        .get(name)
        .ok_or_else(|| OrdersError::ProviderNotConfigured(name.to_owned()))
}

/// The pipeline every provider's webhook route runs: verify, record once (with the
/// outbox event for the subscriber) in one statement, answer.
pub async fn receive(
    db: &sqlx::PgPool,
    provider: &dyn PaymentProvider,
    req: &HttpRequest,
    body: &[u8],
) -> Result<HttpResponse, OrdersError> {
    let now = chrono::Utc::now().timestamp();
    let event = provider.webhook(req.headers(), body, now)?;
    let payload: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| OrdersError::InvalidPayload(format!("not JSON: {e}")))?;
    let received = ProviderEventReceived {
        provider: provider.name().to_owned(),
        event_id: event.id.clone(),
        reference: event.reference.clone(),
        order_id: event.order_id,
        outcome: serde_json::to_value(&event.outcome)
            .map_err(|e| OrdersError::Internal(e.into()))?,
    };
    let events = envelopes(&[received])?;
    let mut conn = db.acquire().await?;
    let recorded =
        repo::record_provider_event(&mut conn, provider.name(), &event, &payload, &events).await?;
    Ok(HttpResponse::Ok().json(WebhookReceived { recorded }))
}
