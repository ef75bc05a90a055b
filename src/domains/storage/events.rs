//! The domain's events, written to the outbox in the transaction that makes the change.
//! Payloads name the bucket's owner as `user_id`, so the owner's webhooks receive them.

use serde_json::Value;
use sqlx::PgConnection;

use crate::platform::error::ApiError;
use crate::platform::events::{Event, publish_envelope as publish};

pub const SOURCE: &str = "storage";

pub const TYPES: &[&str] = &[
    "storage.bucket.created",
    "storage.bucket.updated",
    "storage.bucket.deleted",
    "storage.file.uploaded",
    "storage.file.deleted",
    "storage.variant.created",
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
