//! Webhook delivery: the subscriber that queues a delivery of each event to the endpoints
//! that want it and may see it, the Standard Webhooks signatures, and the job that sends due
//! deliveries with growing waits, dead-letters them after the last attempt and disables an
//! endpoint that fails again and again. The endpoints' API is in `webhooks`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::Utc;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use sqlx::PgConnection;
use uuid::Uuid;

use super::repo::{self, DeliveryRow, EndpointRow};
use super::ssrf::check_url;
use super::state::NotifyState;
use super::webhooks::MANAGE;
use crate::platform::events::{Event, Subscriber, subscriber_fn, without_secrets};

/// Whether a subscription pattern covers an event type.
pub fn matches(pattern: &str, event_type: &str) -> bool {
    pattern == "*"
        || pattern == event_type
        || pattern.strip_suffix(".*").is_some_and(|prefix| {
            event_type
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('.'))
        })
}

/// Queues a delivery of every event to each endpoint that wants it and may see it.
pub fn subscriber() -> Arc<dyn Subscriber> {
    subscriber_fn("notifications.webhooks", &["*"], |event, conn| {
        Box::pin(queue(event, conn))
    })
}

async fn queue(event: &Event, conn: &mut PgConnection) -> anyhow::Result<()> {
    // Every payload names the account it concerns as `user_id` (the owner of a database,
    // a bucket, the user of an auth event): that is the one envelope convention webhooks
    // route by, whatever the event's type.
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
        let mut may_see_all = HashMap::new();
        let mut sends = Vec::new();
        for delivery in batch {
            let Some(endpoint) = repo::endpoint_by_id(&state.db, delivery.endpoint_id).await?
            else {
                continue;
            };
            if owner_may_see(state, &endpoint, &delivery, &mut may_see_all).await? {
                sends.push(attempt(state, endpoint, delivery));
            } else {
                repo::withhold_delivery(&state.db, delivery.id, endpoint.id).await?;
            }
        }
        for outcome in futures_util::future::join_all(sends).await {
            outcome?;
        }
    }
}

/// Whether the endpoint's owner may still receive this delivery. An endpoint that sees every
/// event was made by a holder of `notifications.webhooks.manage`; what counts is whether the
/// owner holds it now (a demoted or deleted owner gets only events about themselves). Looked
/// up once per owner per batch; without a domain that owns accounts, the endpoint's flag from
/// creation is all there is to go by.
async fn owner_may_see(
    state: &NotifyState,
    endpoint: &EndpointRow,
    delivery: &DeliveryRow,
    cache: &mut HashMap<Uuid, bool>,
) -> anyhow::Result<bool> {
    if !endpoint.sees_all || !state.accounts.available() {
        return Ok(true);
    }
    let subject = serde_json::from_str::<serde_json::Value>(&delivery.body)
        .ok()
        .and_then(|b| b["data"]["user_id"].as_str().map(str::to_owned));
    if subject.is_some_and(|s| s == endpoint.owner_id.to_string()) {
        return Ok(true);
    }
    if let Some(known) = cache.get(&endpoint.owner_id) {
        return Ok(*known);
    }
    let allowed = state
        .accounts
        .grants_of(endpoint.owner_id)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .is_some_and(|owner| owner.can(MANAGE));
    cache.insert(endpoint.owner_id, allowed);
    Ok(allowed)
}

async fn attempt(
    state: &NotifyState,
    endpoint: EndpointRow,
    delivery: DeliveryRow,
) -> anyhow::Result<()> {
    let s = &state.settings;
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
