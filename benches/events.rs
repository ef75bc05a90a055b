//! Event pipeline benchmark (run by `scripts/bench.sh`, or directly with
//! `BENCH_DATABASE_URL=... [KAFKA_BROKERS=...] cargo bench --bench events`):
//! 1. outbox -> in-process subscriber latency (p50/p99) for events committed one by one at a
//!    steady pace, so each measures a real NOTIFY wake-up rather than a batch;
//! 2. events per second relayed to Kafka for a backlog of committed events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use basalt::config::Settings;
use basalt::platform::db;
use basalt::platform::events::{self, Event, KafkaMirror, Relay, RelayHandle, subscriber_fn};
use basalt::platform::wakeup::Wakeups;
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Starts a relay woken by NOTIFY, as the server runs it; cancel the token after its shutdown.
fn start(relay: Relay, pool: &PgPool) -> (RelayHandle, CancellationToken) {
    let wakeups = Wakeups::new(pool.clone());
    let handle = relay.spawn(&wakeups);
    let listening = CancellationToken::new();
    wakeups.spawn(listening.clone());
    (handle, listening)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("BENCH_DATABASE_URL").map_err(|_| {
        anyhow::anyhow!("set BENCH_DATABASE_URL to an empty database (scripts/bench.sh does)")
    })?;
    let mut env: std::collections::HashMap<String, String> = std::env::vars().collect();
    env.insert("DATABASE_URL".into(), url.clone());
    let settings = Settings::load_from(std::path::Path::new("config"), "local", env)?;
    let pool = db::connect(&settings.database).await?;
    db::migrate(&pool, &basalt::app_migration_targets(&[])).await?;
    sqlx::query("TRUNCATE platform.outbox, platform.inbox")
        .execute(&pool)
        .await?;

    subscriber_latency(&pool, &settings).await?;
    kafka_throughput(&pool, &settings).await?;
    Ok(())
}

async fn subscriber_latency(pool: &PgPool, settings: &Settings) -> anyhow::Result<()> {
    const N: usize = 2000;
    let (tx, mut rx) = mpsc::unbounded_channel::<f64>();
    let sub = subscriber_fn("bench.latency", &["bench.*"], move |event, _conn| {
        let lag = (chrono::Utc::now() - event.occurred_at)
            .num_microseconds()
            .unwrap_or(0) as f64
            / 1000.0;
        let _ = tx.send(lag);
        Box::pin(async { Ok(()) })
    });
    let (relay, listening) = start(
        Relay::new(pool.clone(), vec![sub], None, settings.events.clone()),
        pool,
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..N {
        let mut txn = pool.begin().await?;
        let event = Event::new(
            "bench",
            "bench.ping",
            format!("k{}", i % 16),
            serde_json::json!({ "i": i }),
        );
        events::publish_envelope(&mut txn, &event).await?;
        txn.commit().await?;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut lags = Vec::with_capacity(N);
    while lags.len() < N {
        match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
            Ok(Some(l)) => lags.push(l),
            _ => anyhow::bail!("only {} of {N} events reached the subscriber", lags.len()),
        }
    }
    relay.shutdown(Duration::from_secs(5)).await;
    listening.cancel();
    lags.sort_by(f64::total_cmp);
    println!(
        "outbox -> subscriber latency over {N} events: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&lags, 0.5),
        percentile(&lags, 0.99),
        lags[N - 1]
    );
    Ok(())
}

async fn kafka_throughput(pool: &PgPool, settings: &Settings) -> anyhow::Result<()> {
    const N: i64 = 20_000;
    let Some(mirror) = KafkaMirror::new(&settings.kafka)? else {
        println!("Kafka: skipped (set KAFKA_BROKERS and build with the kafka feature)");
        return Ok(());
    };
    // A backlog committed up front, as after an outage: the relay's best rate.
    sqlx::query(
        "INSERT INTO platform.outbox (id, event_type, source, aggregate_id, occurred_at, schema_version, payload, dispatched_at)
         SELECT gen_random_uuid(), 'bench.kafka', 'bench', 'k' || (i % 64), now(), 1, jsonb_build_object('i', i), now()
           FROM generate_series(1, $1) AS i",
    )
    .bind(N)
    .execute(pool)
    .await?;
    // Warm up: topic creation and metadata are not part of the rate.
    mirror
        .send(&[Event::new(
            "bench",
            "bench.warmup",
            "w",
            serde_json::json!({}),
        )])
        .await;
    let started = Instant::now();
    let (relay, listening) = start(
        Relay::new(
            pool.clone(),
            Vec::new(),
            Some(Arc::new(mirror)),
            settings.events.clone(),
        ),
        pool,
    );
    loop {
        let left: i64 =
            sqlx::query_scalar("SELECT count(*) FROM platform.outbox WHERE mirrored_at IS NULL")
                .fetch_one(pool)
                .await?;
        if left == 0 {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(300),
            "{left} events still unmirrored"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    relay.shutdown(Duration::from_secs(5)).await;
    listening.cancel();
    println!(
        "Kafka mirror: {N} events in {secs:.2} s = {:.0} events/s",
        N as f64 / secs
    );
    Ok(())
}
