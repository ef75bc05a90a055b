//! Outbound webhooks, signed the Standard Webhooks way: `webhook-id` (the event id, stable
//! across retries so receivers can dedupe), `webhook-timestamp` (seconds) and
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">` under the endpoint's
//! `whsec_` secret (two signatures while a rotated-out secret is still valid).
//!
//! Deliveries are queued by a subscriber in the relay's transaction, sent by a background job
//! with growing waits between attempts, dead-lettered after the last one, replayable one by
//! one or by time range; an endpoint failing again and again is disabled. URLs that resolve
//! to loopback, private or link-local addresses are refused (see `ssrf`) unless
//! `notifications.allow_private_webhooks` is on.

use std::sync::Arc;
use std::time::Instant;

use crate::platform::http::{Endpoint, Routes};
use actix_web::{HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use super::NotifyState;
use super::repo::{self, DeliveryRow, EndpointRow};
use super::ssrf::check_url;
use crate::platform::error::{ApiError, FieldError, Problem};
use crate::platform::events::{Event, Subscriber, subscriber_fn, without_secrets};
use crate::platform::http::ValidatedJson;
use crate::platform::{CurrentUser, Platform};

const MANAGE: &str = "notifications.webhooks.manage";

#[derive(Debug, Deserialize, validator::Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://hooks.example.com/basalt", "event_types": ["user.*"], "description": "CRM sync"}))]
pub struct CreateEndpointRequest {
    #[validate(length(min = 1, max = 2048))]
    pub url: String,
    /// Exact types (`user.registered`), families (`user.*`) or `*`.
    #[validate(length(min = 1, max = 50))]
    pub event_types: Vec<String>,
    #[validate(length(max = 500))]
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointResponse {
    pub id: Uuid,
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// Whether it receives every event (created by an administrator) or only the owner's.
    pub sees_all: bool,
    /// Failed attempts in a row; at `notifications.webhook_disable_after` it is disabled.
    pub consecutive_failures: i32,
    pub created_at: DateTime<Utc>,
    /// `whsec_...`: only in the responses that create or rotate it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryResponse {
    pub id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    /// pending, sending, succeeded or dead.
    pub status: String,
    pub attempts: i32,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    pub status: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    pub since: DateTime<Utc>,
    pub until: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayResponse {
    pub queued: u64,
}

pub fn configure(routes: &mut Routes) {
    routes
        .add(
            Endpoint::at("/webhooks")
                .get(list_endpoints)
                .post(create_endpoint),
        )
        .add(
            Endpoint::at("/webhooks/{id}")
                .get(get_endpoint)
                .delete(delete_endpoint),
        )
        .add(Endpoint::at("/webhooks/{id}/rotate-secret").post(rotate_secret))
        .add(Endpoint::at("/webhooks/{id}/enable").post(enable_endpoint))
        .add(Endpoint::at("/webhooks/{id}/deliveries").get(list_deliveries))
        .add(Endpoint::at("/webhooks/{id}/deliveries/{delivery}/replay").post(replay_one))
        .add(Endpoint::at("/webhooks/{id}/replay").post(replay_range));
}

fn response(e: EndpointRow, secret: Option<String>) -> EndpointResponse {
    EndpointResponse {
        id: e.id,
        url: e.url,
        description: e.description,
        event_types: e.event_types,
        enabled: e.enabled,
        disabled_reason: e.disabled_reason,
        sees_all: e.sees_all,
        consecutive_failures: e.failure_streak,
        created_at: e.created_at,
        secret,
    }
}

fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("whsec_{}", B64.encode(bytes))
}

/// Whether a subscription pattern covers an event type.
fn matches(pattern: &str, event_type: &str) -> bool {
    pattern == "*"
        || pattern == event_type
        || pattern.strip_suffix(".*").is_some_and(|prefix| {
            event_type
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('.'))
        })
}

/// Create an endpoint
///
/// The secret is in this response only. Holders of `notifications.webhooks.manage` receive
/// every matching event; anyone else only events about themselves.
#[utoipa::path(
    post, path = "/webhooks", tag = "webhooks", request_body = CreateEndpointRequest, security(("bearer" = [])),
    responses(
        (status = 201, body = EndpointResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad or private URL, unknown event type", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_endpoint(
    platform: web::Data<Platform>,
    state: web::Data<NotifyState>,
    user: CurrentUser,
    body: ValidatedJson<CreateEndpointRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut errors = Vec::new();
    if let Err(why) = check_url(&body.url, state.settings.allow_private_webhooks).await {
        errors.push(FieldError {
            field: "url".into(),
            code: "url".into(),
            message: why,
        });
    }
    for t in &body.event_types {
        if !platform.event_types.iter().any(|known| matches(t, known)) {
            errors.push(FieldError {
                field: "event_types".into(),
                code: "unknown_event_type".into(),
                message: format!("{t} matches no event this deployment publishes"),
            });
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let row = EndpointRow {
        id: Uuid::now_v7(),
        owner_id: user.uuid()?,
        sees_all: user.can(MANAGE),
        url: body.url,
        description: body.description,
        event_types: body.event_types,
        secret: new_secret(),
        previous_secret: None,
        previous_expires_at: None,
        enabled: true,
        disabled_reason: None,
        failure_streak: 0,
        created_at: Utc::now(),
    };
    repo::insert_endpoint(&platform.db, &row).await?;
    let secret = Some(row.secret.clone());
    Ok(HttpResponse::Created().json(response(row, secret)))
}

/// The signed-in user's endpoints.
#[utoipa::path(
    get, path = "/webhooks", tag = "webhooks", security(("bearer" = [])),
    responses((status = 200, body = Vec<EndpointResponse>), (status = 401, body = Problem, content_type = "application/problem+json"))
)]
pub async fn list_endpoints(
    platform: web::Data<Platform>,
    user: CurrentUser,
) -> Result<HttpResponse, ApiError> {
    let rows = repo::endpoints_of(&platform.db, user.uuid()?).await?;
    Ok(HttpResponse::Ok().json(
        rows.into_iter()
            .map(|e| response(e, None))
            .collect::<Vec<_>>(),
    ))
}

async fn own_endpoint(
    platform: &Platform,
    user: &CurrentUser,
    id: Uuid,
) -> Result<EndpointRow, ApiError> {
    repo::endpoint(&platform.db, user.uuid()?, id)
        .await?
        .ok_or_else(|| ApiError::not_found("No such webhook endpoint."))
}

/// One endpoint (404 for anyone else's).
#[utoipa::path(
    get, path = "/webhooks/{id}", tag = "webhooks", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = EndpointResponse), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
pub async fn get_endpoint(
    platform: web::Data<Platform>,
    user: CurrentUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(response(own_endpoint(&platform, &user, *id).await?, None)))
}

/// Delete an endpoint and its delivery log.
#[utoipa::path(
    delete, path = "/webhooks/{id}", tag = "webhooks", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
pub async fn delete_endpoint(
    platform: web::Data<Platform>,
    user: CurrentUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    if !repo::delete_endpoint(&platform.db, user.uuid()?, *id).await? {
        return Err(ApiError::not_found("No such webhook endpoint."));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Issue a new secret (shown once); the old one keeps signing alongside it for a while
/// (`notifications.webhook_rotation_overlap_hours`), so receivers can switch without a gap.
#[utoipa::path(
    post, path = "/webhooks/{id}/rotate-secret", tag = "webhooks", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = EndpointResponse), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
pub async fn rotate_secret(
    platform: web::Data<Platform>,
    state: web::Data<NotifyState>,
    user: CurrentUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let secret = new_secret();
    let owner_id = user.uuid()?;
    if !repo::rotate_secret(
        &platform.db,
        owner_id,
        *id,
        &secret,
        state.settings.webhook_rotation_overlap_hours,
    )
    .await?
    {
        return Err(ApiError::not_found("No such webhook endpoint."));
    }
    let row = own_endpoint(&platform, &user, *id).await?;
    Ok(HttpResponse::Ok().json(response(row, Some(secret))))
}

/// Enable an endpoint again (after it was disabled for failing).
#[utoipa::path(
    post, path = "/webhooks/{id}/enable", tag = "webhooks", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
pub async fn enable_endpoint(
    platform: web::Data<Platform>,
    user: CurrentUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    if !repo::enable_endpoint(&platform.db, user.uuid()?, *id).await? {
        return Err(ApiError::not_found("No such webhook endpoint."));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// An endpoint's delivery log, newest first.
#[utoipa::path(
    get, path = "/webhooks/{id}/deliveries", tag = "webhooks", params(("id" = Uuid, Path), DeliveryQuery), security(("bearer" = [])),
    responses((status = 200, body = Vec<DeliveryResponse>), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
pub async fn list_deliveries(
    platform: web::Data<Platform>,
    user: CurrentUser,
    id: web::Path<Uuid>,
    q: web::Query<DeliveryQuery>,
) -> Result<HttpResponse, ApiError> {
    let endpoint = own_endpoint(&platform, &user, *id).await?;
    let (limit, offset) = super::routes::page(q.limit, q.offset)?;
    let rows = repo::deliveries(
        &platform.db,
        endpoint.id,
        q.status.as_deref(),
        limit,
        offset,
    )
    .await?;
    let out: Vec<DeliveryResponse> = rows
        .into_iter()
        .map(|d| DeliveryResponse {
            id: d.id,
            event_id: d.event_id,
            event_type: d.event_type,
            status: d.status,
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error,
            delivered_at: d.delivered_at,
            created_at: d.created_at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(out))
}

/// Send one delivery again (same id and body).
#[utoipa::path(
    post, path = "/webhooks/{id}/deliveries/{delivery}/replay", tag = "webhooks",
    params(("id" = Uuid, Path), ("delivery" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 202, body = ReplayResponse), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
pub async fn replay_one(
    platform: web::Data<Platform>,
    user: CurrentUser,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (id, delivery) = path.into_inner();
    let endpoint = own_endpoint(&platform, &user, id).await?;
    let queued = repo::replay(&platform.db, endpoint.id, Some(delivery), None, None).await?;
    if queued == 0 {
        return Err(ApiError::not_found("No such delivery."));
    }
    Ok(HttpResponse::Accepted().json(ReplayResponse { queued }))
}

/// Send again every delivery created in a time range.
#[utoipa::path(
    post, path = "/webhooks/{id}/replay", tag = "webhooks", request_body = ReplayRequest,
    params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 202, body = ReplayResponse), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json"))
)]
pub async fn replay_range(
    platform: web::Data<Platform>,
    user: CurrentUser,
    id: web::Path<Uuid>,
    body: web::Json<ReplayRequest>,
) -> Result<HttpResponse, ApiError> {
    let endpoint = own_endpoint(&platform, &user, *id).await?;
    if body.until.is_some_and(|u| u <= body.since) {
        return Err(ApiError::validation(vec![FieldError {
            field: "until".into(),
            code: "range".into(),
            message: "must be after since".into(),
        }]));
    }
    let queued = repo::replay(
        &platform.db,
        endpoint.id,
        None,
        Some(body.since),
        body.until,
    )
    .await?;
    Ok(HttpResponse::Accepted().json(ReplayResponse { queued }))
}

/// Queues a delivery of every event to each endpoint that wants it and may see it.
pub fn subscriber() -> Arc<dyn Subscriber> {
    subscriber_fn("notifications.webhooks", &["*"], |event, conn| {
        Box::pin(queue(event, conn))
    })
}

async fn queue(event: &Event, conn: &mut PgConnection) -> anyhow::Result<()> {
    let subject = event.payload["user_id"]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok());
    let endpoints = repo::endpoints_for(conn, subject).await?;
    let wanted: Vec<&EndpointRow> = endpoints
        .iter()
        .filter(|e| e.event_types.iter().any(|t| matches(t, &event.event_type)))
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let public = without_secrets(event);
    let body = serde_json::to_string(&serde_json::json!({
        "type": public.event_type,
        "timestamp": public.occurred_at,
        "data": public.payload,
    }))?;
    for endpoint in wanted {
        repo::queue_delivery(conn, endpoint.id, event.id, &event.event_type, &body).await?;
    }
    Ok(())
}

/// `v1,<signature>` for each secret currently signing, space-separated.
pub fn signatures(endpoint: &EndpointRow, msg_id: &str, timestamp: i64, body: &str) -> String {
    let mut secrets = vec![endpoint.secret.as_str()];
    if let (Some(previous), Some(until)) = (&endpoint.previous_secret, endpoint.previous_expires_at)
        && until > Utc::now()
    {
        secrets.push(previous);
    }
    secrets
        .iter()
        .filter_map(|s| B64.decode(s.trim_start_matches("whsec_")).ok())
        .filter_map(|key| {
            let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
            mac.update(format!("{msg_id}.{timestamp}.{body}").as_bytes());
            Some(format!("v1,{}", B64.encode(mac.finalize().into_bytes())))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Sends every due delivery; returns how many were attempted.
pub async fn send_due(state: &NotifyState) -> anyhow::Result<usize> {
    let mut total = 0;
    loop {
        let batch = repo::claim_deliveries(&state.db, 20).await?;
        if batch.is_empty() {
            return Ok(total);
        }
        total += batch.len();
        let sends = batch.into_iter().map(|d| attempt(state, d));
        for outcome in futures_util::future::join_all(sends).await {
            outcome?;
        }
    }
}

async fn attempt(state: &NotifyState, delivery: DeliveryRow) -> anyhow::Result<()> {
    let s = &state.settings;
    let Some(endpoint) = repo::endpoint_by_id(&state.db, delivery.endpoint_id).await? else {
        return Ok(());
    };
    let started = Instant::now();
    let outcome = post(state, &endpoint, &delivery).await;
    metrics::histogram!("basalt_webhook_delivery_seconds").record(started.elapsed().as_secs_f64());
    let (ok, code, error) = match outcome {
        Ok(code) if (200..300).contains(&code) => (true, Some(code), None),
        Ok(code) => (
            false,
            Some(code),
            Some(format!("the endpoint answered {code}")),
        ),
        Err(e) => (false, None, Some(e)),
    };
    let attempts = delivery.attempts + 1;
    let dead = !ok && attempts >= s.webhook_max_attempts;
    let base = s.webhook_retry_base_ms as f64 / 1000.0;
    let retry = (base * 5f64.powi(attempts - 1)).min(36_000.0);
    if ok {
        metrics::counter!("basalt_webhooks_delivered_total").increment(1);
        let lag = (Utc::now() - delivery.created_at)
            .num_microseconds()
            .unwrap_or(0) as f64
            / 1e6;
        metrics::histogram!("basalt_webhook_event_to_delivery_seconds").record(lag);
    } else {
        metrics::counter!("basalt_webhook_failures_total").increment(1);
        tracing::warn!(delivery = %delivery.id, url = %endpoint.url, attempts, dead, error = error.as_deref().unwrap_or(""), "webhook delivery failed");
    }
    repo::record_attempt(
        &state.db,
        delivery.id,
        endpoint.id,
        ok,
        code.map(i32::from),
        error.as_deref(),
        retry,
        dead,
        s.webhook_disable_after,
    )
    .await?;
    Ok(())
}

/// One POST; the status code, or why there was none.
async fn post(
    state: &NotifyState,
    endpoint: &EndpointRow,
    delivery: &DeliveryRow,
) -> Result<u16, String> {
    // Checked again at send time: DNS may have changed since registration. The client's
    // resolver checks the addresses it connects to as well (`ssrf::PublicOnly`).
    let url = check_url(&endpoint.url, state.settings.allow_private_webhooks).await?;
    let msg_id = delivery.event_id.to_string();
    let timestamp = Utc::now().timestamp();
    let response = state
        .http
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &msg_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header(
            "webhook-signature",
            signatures(endpoint, &msg_id, timestamp, &delivery.body),
        )
        .body(delivery.body.clone())
        .send()
        .await
        .map_err(|e| format!("{e}"))?;
    Ok(response.status().as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_types_and_families() {
        assert!(matches("*", "user.registered"));
        assert!(matches("user.*", "user.registered"));
        assert!(!matches("user.*", "users.registered"));
        assert!(matches("user.registered", "user.registered"));
        assert!(!matches("user.registered", "user.deleted"));
    }
}
