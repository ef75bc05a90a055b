//! Per-schema migrations: idempotent, safe with replicas starting at once, and optional at
//! start-up.

use std::sync::Arc;

use basalt::platform::db;

use crate::helpers::*;
use crate::probe::Probe;

fn targets() -> Vec<db::SchemaMigrations> {
    let settings = settings("postgres://unused@127.0.0.1/unused", &[]);
    let enabled = basalt::enabled_domains(&settings, &[Arc::new(Probe::default())]).unwrap();
    basalt::app_migration_targets(&enabled)
}

#[tokio::test]
async fn concurrent_migrations_are_serialised_and_idempotent() {
    let url = fresh_database().await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let targets = targets();
    // Each run opens its own connection, so the four really race in PostgreSQL.
    let runs = (0..4).map(|_| db::migrate(&pool, &targets));
    for run in futures_util::future::join_all(runs).await {
        run.expect("every concurrent run succeeds");
    }
    db::migrate(&pool, &targets).await.expect("and again");
    // Each schema keeps its own history.
    let platform: i64 = sqlx::query_scalar("SELECT count(*) FROM platform._sqlx_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    let probe: i64 = sqlx::query_scalar("SELECT count(*) FROM probe._sqlx_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    let shipped = db::PLATFORM_MIGRATIONS.iter().count() as i64;
    assert_eq!(
        (platform, probe),
        (shipped, 1),
        "each migration recorded once"
    );
    for domain in basalt::domains::compiled() {
        assert!(
            db::schema_exists(&pool, domain.schema()).await.unwrap(),
            "{}",
            domain.schema()
        );
    }
}

#[tokio::test]
async fn replicas_starting_together_both_come_up() {
    let url = fresh_database().await;
    let (a, b) = tokio::join!(spawn_on(&url, &[]), spawn_on(&url, &[]));
    assert_eq!(a.get("/health/ready").await.status(), 200);
    assert_eq!(b.get("/health/ready").await.status(), 200);
}

#[tokio::test]
async fn without_migrate_on_start_the_app_is_not_ready_until_migrated() {
    let url = fresh_database().await;
    let app = spawn_on(&url, &[("BASALT__DATABASE__MIGRATE_ON_START", "false")]).await;
    assert_eq!(app.get("/health/ready").await.status(), 503);
    db::migrate(&app.db, &targets()).await.unwrap();
    assert_eq!(app.get("/health/ready").await.status(), 200);
}
