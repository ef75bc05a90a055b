//! Notifications benchmark (run by `scripts/bench.sh`, or directly with
//! `BENCH_DATABASE_URL=... BENCH_SMTP_URL=smtp://127.0.0.1:PORT cargo bench --bench notifications`):
//! 1. emails per second: a backlog of verification-request events rendered, queued and sent
//!    to a local SMTP sink;
//! 2. webhooks: deliveries per second to a local receiver, and the delay from an event's
//!    `occurred_at` to its delivery (p50, p99), for events published at a steady pace.
//!
//! Polls are left at their defaults: the relay, the sender and the webhook job are woken by
//! NOTIFY when work is committed, which is what the delays measure.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use basalt::Application;
use basalt::config::Settings;
use basalt::platform::events::{self, Event};
use chrono::Utc;
use sqlx::PgPool;
use uuid::Uuid;

/// (the event's timestamp, when it arrived) for each delivery.
type Arrivals = Arc<Mutex<Vec<(String, chrono::DateTime<Utc>)>>>;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn publish(
    pool: &PgPool,
    event_type: &str,
    payload: serde_json::Value,
) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    let user = payload["user_id"].as_str().unwrap_or_default().to_owned();
    events::publish_envelope(&mut tx, &Event::new("auth", event_type, user, payload)).await?;
    tx.commit().await?;
    Ok(())
}

async fn wait_until(pool: &PgPool, sql: &str, target: i64) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        let n: i64 = sqlx::query_scalar(sql).fetch_one(pool).await?;
        if n >= target {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(300),
            "only {n} of {target} after 300 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("BENCH_DATABASE_URL")
        .map_err(|_| anyhow::anyhow!("set BENCH_DATABASE_URL"))?;
    let smtp =
        std::env::var("BENCH_SMTP_URL").map_err(|_| anyhow::anyhow!("set BENCH_SMTP_URL"))?;
    let env: HashMap<String, String> = [
        ("DATABASE_URL", url.as_str()),
        ("BASALT__SERVER__PORT", "0"),
        ("BASALT__RATE_LIMIT__ENABLED", "false"),
        ("BASALT__LOG__FILTER", "error"),
        ("BASALT__NOTIFICATIONS__SMTP_URL", smtp.as_str()),
        ("BASALT__NOTIFICATIONS__ALLOW_PRIVATE_WEBHOOKS", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let settings = Settings::load_from(std::path::Path::new("config"), "local", env)?;
    let app = Application::build(settings).await?;
    let pool = app.platform().db.clone();
    let handle = app.server_handle();
    let server = tokio::spawn(app.run_until_stopped());

    // 1. Emails.
    const MAILS: i64 = 500;
    let expires = (Utc::now() + chrono::Duration::hours(24)).to_rfc3339();
    for i in 0..MAILS {
        let payload = serde_json::json!({
            "user_id": Uuid::now_v7(), "email": format!("user{i}@example.com"), "first_name": "Bench",
            "secret": { "token": format!("token{i}"), "expires_at": expires },
        });
        publish(&pool, "user.verification_requested", payload).await?;
    }
    let took = wait_until(
        &pool,
        "SELECT count(*) FROM notifications.messages WHERE status = 'sent'",
        MAILS,
    )
    .await?;
    println!(
        "email: {MAILS} events rendered, queued and sent over SMTP in {:.2} s = {:.0} emails/s",
        took.as_secs_f64(),
        MAILS as f64 / took.as_secs_f64()
    );

    // 2. Webhooks, to a receiver that notes when each event arrives.
    let arrivals: Arrivals = Arc::default();
    let seen = arrivals.clone();
    let receiver = HttpServer::new(move || {
        let seen = seen.clone();
        App::new().default_service(web::to(move |body: String| {
            let seen = seen.clone();
            async move {
                let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                let stamp = v["timestamp"].as_str().unwrap_or_default().to_owned();
                seen.lock().map(|mut s| s.push((stamp, Utc::now()))).ok();
                HttpResponse::NoContent().finish()
            }
        }))
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", 0))?;
    let port = receiver.addrs()[0].port();
    tokio::spawn(receiver.run());
    let endpoint = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO notifications.webhook_endpoints (id, owner_id, sees_all, url, event_types, secret)
         VALUES ($1, $2, true, $3, ARRAY['user.registered'], 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')",
    )
    .bind(endpoint)
    .bind(Uuid::now_v7())
    .bind(format!("http://127.0.0.1:{port}/hook"))
    .execute(&pool)
    .await?;

    const HOOKS: i64 = 1000;
    let started = Instant::now();
    for _ in 0..HOOKS {
        let payload = serde_json::json!({ "user_id": Uuid::now_v7(), "email": "x@example.com" });
        publish(&pool, "user.registered", payload).await?;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    wait_until(
        &pool,
        "SELECT count(*) FROM notifications.webhook_deliveries WHERE status = 'succeeded'",
        HOOKS,
    )
    .await?;
    let took = started.elapsed();
    let mut lags: Vec<f64> = arrivals
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .iter()
        .filter_map(|(stamp, at)| {
            let sent: chrono::DateTime<Utc> = stamp.parse().ok()?;
            Some((*at - sent).num_microseconds()? as f64 / 1000.0)
        })
        .collect();
    lags.sort_by(f64::total_cmp);
    println!(
        "webhooks: {HOOKS} events published every 5 ms, all delivered in {:.2} s ({:.0}/s); event to delivery p50 {:.1} ms, p99 {:.1} ms",
        took.as_secs_f64(),
        HOOKS as f64 / took.as_secs_f64(),
        percentile(&lags, 0.5),
        percentile(&lags, 0.99)
    );

    // Deliveries per second for a backlog (as after a receiver outage): queued, then released
    // all at once.
    sqlx::query(
        "INSERT INTO notifications.webhook_deliveries (id, endpoint_id, event_id, event_type, body, next_attempt_at)
         SELECT gen_random_uuid(), $1, gen_random_uuid(), 'user.registered',
                '{\"type\":\"user.registered\",\"timestamp\":\"2026-01-01T00:00:00Z\",\"data\":{}}',
                now() + interval '1 hour'
           FROM generate_series(1, $2)",
    )
    .bind(endpoint)
    .bind(HOOKS)
    .execute(&pool)
    .await?;
    // Released as a replay releases them: due now, and the webhook job woken.
    let mut release = pool.begin().await?;
    sqlx::query("UPDATE notifications.webhook_deliveries SET next_attempt_at = now() WHERE status = 'pending'")
        .execute(&mut *release)
        .await?;
    basalt::platform::wakeup::notify(&mut *release, "notifications_deliveries").await?;
    release.commit().await?;
    let took = wait_until(
        &pool,
        "SELECT count(*) FROM notifications.webhook_deliveries WHERE status = 'succeeded'",
        2 * HOOKS,
    )
    .await?;
    println!(
        "webhooks: a backlog of {HOOKS} delivered in {:.2} s = {:.0} deliveries/s",
        took.as_secs_f64(),
        HOOKS as f64 / took.as_secs_f64()
    );

    handle.stop(true).await;
    server.await??;
    Ok(())
}
