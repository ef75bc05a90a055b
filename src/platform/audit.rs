//! The audit trail: every action taken with an administrator's or staff permission (role
//! changes, moderation, refunds, settings) is recorded here by the code that performs it,
//! on the same connection and inside the same transaction, so an action and its record
//! commit together or not at all. Who, what, which object, the state before and after, when,
//! and the request it came from. The table is append-only: the database itself refuses
//! UPDATE, DELETE and TRUNCATE on it (see the migration). The admin domain lists it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use utoipa::ToSchema;

use super::http::request_id;

/// One action to record.
pub struct AuditEntry<'a> {
    /// `user:<id>`, `api_key:<id>` or `system`.
    pub actor: &'a str,
    /// Dotted and past tense: `auth.role.granted`, `catalog.product.approved`.
    pub action: &'a str,
    pub object_type: &'a str,
    pub object_id: &'a str,
    pub before: Option<&'a serde_json::Value>,
    pub after: Option<&'a serde_json::Value>,
}

/// A recorded action, as the admin domain lists it.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct AuditRecord {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub object_type: String,
    pub object_id: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub request_id: Option<String>,
}

/// Records `entry` on the caller's connection (inside the action's transaction); the
/// request id comes from the request being served.
pub async fn record(conn: &mut PgConnection, entry: &AuditEntry<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO platform.audit_log
             (actor, action, object_type, object_id, before, after, request_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(entry.actor)
    .bind(entry.action)
    .bind(entry.object_type)
    .bind(entry.object_id)
    .bind(entry.before)
    .bind(entry.after)
    .bind(request_id::current())
    .execute(conn)
    .await?;
    Ok(())
}

/// The records about one object, newest first, keyset-paged by id.
pub async fn for_object(
    conn: &mut PgConnection,
    object_type: &str,
    object_id: &str,
    before_id: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditRecord>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, at, actor, action, object_type, object_id, before, after, request_id
           FROM platform.audit_log
          WHERE object_type = $1 AND object_id = $2 AND ($3::bigint IS NULL OR id < $3)
          ORDER BY id DESC
          LIMIT $4",
    )
    .bind(object_type)
    .bind(object_id)
    .bind(before_id)
    .bind(limit)
    .fetch_all(conn)
    .await
}
