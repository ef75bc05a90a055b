//! All SQL of the runtime settings.

use sqlx::{PgConnection, PgPool};

#[derive(sqlx::FromRow)]
pub struct SettingRow {
    pub namespace: String,
    pub key: String,
    pub value: serde_json::Value,
}

pub async fn all(pool: &PgPool) -> Result<Vec<SettingRow>, sqlx::Error> {
    sqlx::query_as("SELECT namespace, key, value FROM platform.runtime_settings")
        .fetch_all(pool)
        .await
}

/// Stores a value and returns the one it replaced, in one statement. The row lock the
/// upsert takes orders concurrent changes of one setting, so each audit record's `before`
/// is the value its change really replaced.
pub async fn upsert(
    conn: &mut PgConnection,
    namespace: &str,
    key: &str,
    value: &serde_json::Value,
    actor: &str,
) -> Result<Option<serde_json::Value>, sqlx::Error> {
    sqlx::query_scalar(
        "WITH old AS (
             SELECT value FROM platform.runtime_settings
              WHERE namespace = $1 AND key = $2
                FOR UPDATE
         ), saved AS (
             INSERT INTO platform.runtime_settings (namespace, key, value, updated_by)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (namespace, key) DO UPDATE
                SET value = EXCLUDED.value, updated_by = EXCLUDED.updated_by, updated_at = now()
         )
         SELECT value FROM old",
    )
    .bind(namespace)
    .bind(key)
    .bind(value)
    .bind(actor)
    .fetch_optional(conn)
    .await
}
