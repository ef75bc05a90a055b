//! The domain's events, written to the outbox in the transaction that makes the change.
//! Payloads name the database owner as `user_id`, so the owner's webhooks receive them.

use serde_json::Value;
use sqlx::PgConnection;

use crate::platform::error::ApiError;
use crate::platform::events::{Event, publish_envelope as publish};

pub const SOURCE: &str = "baas-database";

pub const TYPES: &[&str] = &[
    "baas.database.created",
    "baas.database.updated",
    "baas.database.deleted",
    "baas.collection.created",
    "baas.collection.updated",
    "baas.collection.deleted",
    "baas.document.created",
    "baas.document.updated",
    "baas.document.deleted",
];

pub async fn emit(
    conn: &mut PgConnection,
    kind: &str,
    aggregate_id: String,
    payload: Value,
) -> Result<(), ApiError> {
    publish(conn, &Event::new(SOURCE, kind, aggregate_id, payload)).await?;
    Ok(())
}

/// Many events of one change (a bulk create), in one statement.
pub async fn emit_all(
    conn: &mut PgConnection,
    events: &[(String, String, Value)],
) -> Result<(), ApiError> {
    let events: Vec<Event> = events
        .iter()
        .map(|(kind, id, payload)| Event::new(SOURCE, kind, id.clone(), payload.clone()))
        .collect();
    for e in &events {
        publish(conn, e).await?;
    }
    Ok(())
}
