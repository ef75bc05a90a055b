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
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
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
///
/// TLS: a URL (or `PGSSLMODE`) that names an `sslmode` gets exactly that. Without one, sqlx's
/// default is `prefer`, which encrypts whenever the server offers it, even over loopback,
/// where it protects nothing and costs both processes CPU on every statement (a tenth of a
/// document read's instructions here); so a loopback host or a Unix socket gets `disable`.
fn options(settings: &DatabaseSettings) -> anyhow::Result<PgConnectOptions> {
    let url = settings.url.expose_secret();
    let tls_named = url.contains("sslmode=")
        || url.contains("ssl-mode=")
        || std::env::var_os("PGSSLMODE").is_some();
    PgConnectOptions::from_str(url)
        .map_err(|e| anyhow::anyhow!("database.url: {e}"))
        .map(|o| {
            let o = if !tls_named && is_local(&o) {
                o.ssl_mode(PgSslMode::Disable)
            } else {
                o
            };
            o.log_statements(tracing::log::LevelFilter::Debug)
                .options([(
                    "statement_timeout",
                    settings.statement_timeout_ms.to_string(),
                )])
        })
}

/// Whether the connection never leaves this host: a Unix socket or a loopback address.
fn is_local(o: &PgConnectOptions) -> bool {
    let host = o.get_host();
    o.get_socket().is_some()
        || host.starts_with('/')
        || host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
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
        // request. Nor when a clean one comes back (the vendored sqlx, vendor/README.md); one
        // that failed or was abandoned with an answer still due is pinged then, and closed if
        // its socket is broken, so after a PostgreSQL restart each dead connection fails one
        // statement and is gone (`tests/api/pool.rs`).
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

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(url: &str) -> PgSslMode {
        let settings = DatabaseSettings {
            url: url.to_owned().into(),
            max_connections: 1,
            min_connections: 0,
            acquire_timeout_secs: 1,
            statement_timeout_ms: 1000,
            migrate_on_start: false,
        };
        options(&settings).unwrap().get_ssl_mode()
    }

    #[test]
    fn loopback_connections_skip_tls_unless_the_url_asks_for_it() {
        if std::env::var_os("PGSSLMODE").is_some() {
            return; // the environment decides, as it should
        }
        for url in [
            "postgres://u@127.0.0.1:5432/db",
            "postgres://u@localhost/db",
            "postgres://u@[::1]:5432/db",
            "postgres://u@%2Fvar%2Frun%2Fpostgresql/db",
        ] {
            assert!(matches!(mode(url), PgSslMode::Disable), "{url}");
        }
        assert!(matches!(
            mode("postgres://u@127.0.0.1/db?sslmode=require"),
            PgSslMode::Require
        ));
        assert!(matches!(
            mode("postgres://u@db.internal:5432/db"),
            PgSslMode::Prefer
        ));
    }
}
