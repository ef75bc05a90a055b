//! The connection pool as the vendored sqlx-core changes it (vendor/README.md): a connection
//! with nothing queued goes back to the idle queue at once, without the ping round trip,
//! while a dropped transaction's rollback is still sent at once and a query abandoned half
//! way never leaks its answer into the next one.

use std::time::{Duration, Instant};

use basalt::config::DatabaseSettings;
use basalt::platform::db;
use sqlx::{Connection, PgConnection, PgPool};

use crate::helpers::fresh_database;

async fn pool(url: &str, max_connections: u32) -> PgPool {
    db::connect(&DatabaseSettings {
        url: url.to_owned().into(),
        max_connections,
        min_connections: 0,
        acquire_timeout_secs: 5,
        statement_timeout_ms: 5000,
        migrate_on_start: false,
    })
    .await
    .expect("pool")
}

#[tokio::test]
async fn a_returned_connection_is_idle_at_once_without_a_ping_task() {
    let url = fresh_database().await;
    let pool = pool(&url, 2).await;
    let mut conn = pool.acquire().await.unwrap();
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(one, 1);
    let idle_before = pool.num_idle();
    drop(conn);
    // No `.await` in between: sqlx as published spawns a task that pings the connection
    // before it is idle again, so it would not be counted yet.
    assert_eq!(pool.num_idle(), idle_before + 1);
}

#[tokio::test]
async fn a_dropped_transaction_releases_its_locks_without_waiting_for_reuse() {
    let url = fresh_database().await;
    let pool = pool(&url, 2).await;
    sqlx::query("CREATE TABLE held (id int PRIMARY KEY)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO held VALUES (1)")
        .execute(&pool)
        .await
        .unwrap();

    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SELECT id FROM held WHERE id = 1 FOR UPDATE")
        .execute(&mut *tx)
        .await
        .unwrap();
    drop(tx); // no commit, no rollback: the ROLLBACK is only queued on the connection

    // Nothing uses the pool again; another session must still get the row lock at once.
    let mut other = PgConnection::connect(&url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let released = loop {
        let locked = sqlx::query("SELECT id FROM held WHERE id = 1 FOR UPDATE NOWAIT")
            .execute(&mut other)
            .await;
        if locked.is_ok() || Instant::now() > deadline {
            break locked.is_ok();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(released, "the dropped transaction still holds its row lock");
    let in_transaction: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
          WHERE datname = current_database() AND state LIKE 'idle in transaction%'
            AND pid <> pg_backend_pid()",
    )
    .fetch_one(&mut other)
    .await
    .unwrap();
    assert_eq!(in_transaction, 0);
    assert_eq!(pool.num_idle(), 1, "the connection went back to the pool");
}

#[tokio::test]
async fn a_query_abandoned_half_way_does_not_answer_the_next_one() {
    let url = fresh_database().await;
    let pool = pool(&url, 1).await;
    // The future is dropped after the statement was sent and before its answer came back.
    let abandoned = tokio::time::timeout(
        Duration::from_millis(50),
        sqlx::query_scalar::<_, i32>("SELECT 41 FROM pg_sleep(0.3)").fetch_one(&pool),
    )
    .await;
    assert!(
        abandoned.is_err(),
        "the slow statement should have been cut off"
    );
    // The pool's only connection still has the abandoned answer in flight; the next
    // statement on it must wait for and discard that answer, not return it.
    for expected in [42, 43] {
        let got: i32 = sqlx::query_scalar(&format!("SELECT {expected}"))
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(got, expected);
    }
}

#[tokio::test]
async fn a_connection_with_an_answer_still_due_is_not_handed_out_before_it_is_drained() {
    let url = fresh_database().await;
    let pool = pool(&url, 2).await;
    let mut conn = pool.acquire().await.unwrap();
    let idle_before = pool.num_idle();
    let abandoned = tokio::time::timeout(
        Duration::from_millis(50),
        sqlx::query("SELECT pg_sleep(2)").execute(&mut *conn),
    )
    .await;
    assert!(
        abandoned.is_err(),
        "the slow statement should have been cut off"
    );
    drop(conn);
    // Not idle at once, unlike a clean connection: it waits in the pool's ping task for the
    // abandoned answer, so the next request gets another connection instead of waiting
    // behind a statement it never sent.
    assert_eq!(pool.num_idle(), idle_before);
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(one, 1);
}

#[tokio::test]
async fn killed_backends_fail_one_statement_each_and_the_pool_recovers() {
    let url = fresh_database().await;
    let pool = pool(&url, 3).await;
    // Open all three connections, then end their backends from outside.
    let held: Vec<_> = futures_util::future::try_join_all((0..3).map(|_| pool.acquire()))
        .await
        .unwrap();
    drop(held);
    let mut admin = PgConnection::connect(&url).await.unwrap();
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = current_database() AND pid <> pg_backend_pid()) t",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(killed, 3);
    let mut failed = 0;
    for _ in 0..50 {
        if sqlx::query_scalar::<_, i32>("SELECT 1")
            .fetch_one(&pool)
            .await
            .is_err()
        {
            failed += 1;
        }
    }
    // Each dead connection fails the one statement that finds it dead and is then closed,
    // not put back to fail again.
    assert!(
        failed <= 3,
        "{failed} of 50 statements failed after 3 backends were killed"
    );
}
