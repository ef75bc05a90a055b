//! PostgreSQL: the pool, and migrations per schema.
//!
//! Every domain owns one schema, and its migrations are tracked in that schema's own
//! `_sqlx_migrations` table (sqlx's migrator run with `search_path` set to the schema), so
//! domains version independently and a domain compiled out leaves its history untouched.
//! The whole pass runs under one advisory lock on a dedicated connection: replicas starting
//! together take turns, and a failed pass cannot leave the lock held by a pooled connection.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};

use crate::config::DatabaseSettings;

/// The kernel's own migrations (outbox, inbox).
pub static PLATFORM_MIGRATIONS: Migrator = sqlx::migrate!("migrations/platform");

/// A schema to create and, if it has any, the migrations to apply in it.
#[derive(Clone, Copy)]
pub struct SchemaMigrations {
    pub schema: &'static str,
    pub migrator: Option<&'static Migrator>,
}

/// How every connection is opened. The statement timeout travels in the startup packet, so
/// it costs no round trip: a request's statements need no `BEGIN; SET LOCAL` around them.
/// Statements are logged at debug under `sqlx::query` (inside the request's span, which is
/// how the tests count a request's round trips).
fn options(settings: &DatabaseSettings) -> anyhow::Result<PgConnectOptions> {
    PgConnectOptions::from_str(settings.url.expose_secret())
        .map_err(|e| anyhow::anyhow!("database.url: {e}"))
        .map(|o| {
            o.log_statements(tracing::log::LevelFilter::Debug)
                .options([(
                    "statement_timeout",
                    settings.statement_timeout_ms.to_string(),
                )])
        })
}

/// Where we connect, without the password, for error messages.
pub fn describe(settings: &DatabaseSettings) -> String {
    match options(settings) {
        Ok(o) => format!(
            "{}:{}/{}",
            o.get_host(),
            o.get_port(),
            o.get_database().unwrap_or("(default)")
        ),
        Err(_) => "(unparseable database.url)".into(),
    }
}

/// Opens the pool and proves the database answers, with an error that says what to do.
pub async fn connect(settings: &DatabaseSettings) -> anyhow::Result<PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .min_connections(settings.min_connections)
        .acquire_timeout(Duration::from_secs(settings.acquire_timeout_secs))
        // No ping before handing out an idle connection: that is a round trip on every
        // request. sqlx already pings a connection when it comes back to the pool (off the
        // request's path) and closes broken ones; after a PostgreSQL restart the first
        // statement on a dead connection fails once and that connection is dropped.
        .test_before_acquire(false)
        .connect_with(options(settings)?)
        .await
        .with_context(|| {
            format!(
                "cannot connect to PostgreSQL at {} (set DATABASE_URL, or run scripts/serve.sh which installs and starts one)",
                describe(settings)
            )
        })?;
    Ok(pool)
}

/// Creates each schema and applies its pending migrations, in order, under the advisory lock.
/// Idempotent: applied migrations are skipped (and their checksums verified by sqlx).
pub async fn migrate(pool: &PgPool, targets: &[SchemaMigrations]) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect_with(&pool.connect_options()).await?;
    // Migrations may rewrite large tables: no statement timeout on this connection.
    sqlx::query("SET statement_timeout = 0")
        .execute(&mut conn)
        .await?;
    sqlx::query("SELECT pg_advisory_lock(hashtext('basalt.migrate'))")
        .execute(&mut conn)
        .await?;
    let outcome = apply(&mut conn, targets).await;
    // Closing the connection releases the lock whatever happened above.
    let _ = conn.close().await;
    outcome
}

async fn apply(conn: &mut PgConnection, targets: &[SchemaMigrations]) -> anyhow::Result<()> {
    for target in targets {
        anyhow::ensure!(
            !target.schema.is_empty()
                && target
                    .schema
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_'),
            "schema name {:?} must be lower-case letters and underscores",
            target.schema
        );
        // The name is a compile-time constant checked above, never user input.
        sqlx::query(&format!(
            "CREATE SCHEMA IF NOT EXISTS \"{}\"",
            target.schema
        ))
        .execute(&mut *conn)
        .await
        .with_context(|| format!("creating schema {}", target.schema))?;
        if let Some(migrator) = target.migrator {
            sqlx::query(&format!("SET search_path TO \"{}\"", target.schema))
                .execute(&mut *conn)
                .await?;
            migrator
                .run(&mut *conn)
                .await
                .with_context(|| format!("migrating schema {}", target.schema))?;
            tracing::info!(schema = target.schema, "schema migrated");
        }
    }
    sqlx::query("RESET search_path").execute(&mut *conn).await?;
    Ok(())
}

/// Whether a schema exists (readiness and domain health).
pub async fn schema_exists(pool: &PgPool, schema: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
        .bind(schema)
        .fetch_one(pool)
        .await
}

/// Text matched literally inside a `LIKE` pattern (`%`, `_` and `\` stand for themselves),
/// for prefix and substring filters built from what clients send.
pub fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
