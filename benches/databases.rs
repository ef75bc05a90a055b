//! Database domain benchmark (run by `scripts/bench.sh`, or directly with
//! `BENCH_DATABASE_URL=... cargo bench --bench databases`), all through HTTP:
//! 1. document inserts per second, one per request and in bulk requests of 1,000;
//! 2. with `BENCH_DOCUMENTS` (default 1,000,000) documents in one collection, p50 and p99 of
//!    an equality filter on an indexed attribute, a range filter with sort and limit 25, a
//!    fulltext search and counts;
//! 3. PostgreSQL's plans for the same SQL, showing the indexes in use.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use basalt::Application;
use basalt::config::Settings;
use basalt::platform::identity::{Claims, TokenVerifier};
use serde_json::{Value, json};
use uuid::Uuid;

const CATEGORIES: usize = 1000;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    async fn call(
        &self,
        method: reqwest::Method,
        path: String,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await?;
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        anyhow::ensure!(status.is_success(), "{path}: {status} {body}");
        Ok(body)
    }
}

fn document(i: usize) -> Value {
    json!({"data": {
        "sku": format!("sku-{i:07}"),
        "price": (i * 7919) % 1_000_000,
        "category": format!("c{}", i % CATEGORIES),
        "title": format!("item {i}"),
        "body": format!("word{} word{} common", i % 5000, (i / 7) % 5000),
    }})
}

/// Runs `query` `n` times, one at a time, and prints p50 and p99 in milliseconds.
async fn timed<F, Fut>(label: &str, n: usize, mut query: F) -> anyhow::Result<()>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Value>>,
{
    let mut ms = Vec::with_capacity(n);
    let mut sample = Value::Null;
    for i in 0..n {
        let started = Instant::now();
        sample = query(i).await?;
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    let shown = sample
        .get("documents")
        .and_then(Value::as_array)
        .map(|d| format!("{} documents", d.len()))
        .unwrap_or_else(|| sample.to_string());
    println!(
        "{label}: p50 {:.2} ms, p99 {:.2} ms over {n} requests (last answer: {shown})",
        percentile(&ms, 0.5),
        percentile(&ms, 0.99)
    );
    Ok(())
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("BENCH_DATABASE_URL")
        .map_err(|_| anyhow::anyhow!("set BENCH_DATABASE_URL"))?;
    let total: usize = std::env::var("BENCH_DOCUMENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let env: HashMap<String, String> = [
        ("DATABASE_URL", url.as_str()),
        ("BASALT__SERVER__PORT", "0"),
        ("BASALT__RATE_LIMIT__ENABLED", "false"),
        ("BASALT__LOG__FILTER", "error"),
        ("BASALT__BAAS_DATABASE__STATEMENT_TIMEOUT_MS", "60000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let settings = Settings::load_from(std::path::Path::new("config"), "local", env)?;
    let now = chrono::Utc::now().timestamp();
    let token = TokenVerifier::new(&settings.identity)?
        .sign(&Claims {
            sub: Uuid::now_v7().to_string(),
            roles: vec!["user".into()],
            permissions: Vec::new(),
            jti: Uuid::new_v4().to_string(),
            email_verified: true,
            sid: None,
            iat: now,
            exp: now + 24 * 3600,
            iss: settings.identity.issuer.clone(),
            aud: settings.identity.audience.clone(),
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let app = Application::build(settings).await?;
    let pool = app.platform().db.clone();
    let base = format!("http://127.0.0.1:{}/api/v1/databases", app.port());
    let handle = app.server_handle();
    let server = tokio::spawn(app.run_until_stopped());
    let client = Client {
        http: reqwest::Client::new(),
        base,
        token,
    };

    let db = client
        .call(
            reqwest::Method::POST,
            String::new(),
            Some(json!({"name": "bench"})),
        )
        .await?;
    let db = db["id"].as_str().unwrap_or_default().to_owned();
    client
        .call(
            reqwest::Method::POST,
            format!("/{db}/collections"),
            Some(json!({
                "id": "items", "name": "Items",
                "attributes": [
                    {"key": "sku", "type": "string", "size": 32, "required": true, "unique": true},
                    {"key": "price", "type": "integer", "min": 0},
                    {"key": "category", "type": "string", "size": 16},
                    {"key": "title", "type": "string", "size": 64},
                    {"key": "body", "type": "string", "size": 256}
                ],
                "indexes": [
                    {"key": "by_category", "type": "key", "attributes": ["category"]},
                    {"key": "by_price", "type": "key", "attributes": ["price"]},
                    {"key": "body_search", "type": "fulltext", "attributes": ["body"]}
                ]
            })),
        )
        .await?;
    let docs = format!("/{db}/collections/items/documents");

    // 1. Inserts: one per request (a single client), then bulk requests from two clients.
    const SINGLE: usize = 2000;
    let started = Instant::now();
    for i in 0..SINGLE {
        client
            .call(reqwest::Method::POST, docs.clone(), Some(document(i)))
            .await?;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "single inserts, 1 client: {:.0} documents/s ({SINGLE} in {secs:.2} s)",
        SINGLE as f64 / secs
    );
    // The same from 16 clients at once (each request is one transaction with its event).
    let started = Instant::now();
    let clients = (0..16).map(|c| {
        let (client, docs) = (&client, docs.clone());
        async move {
            for i in 0..SINGLE / 16 {
                client
                    .call(
                        reqwest::Method::POST,
                        docs.clone(),
                        Some(document(SINGLE + c * SINGLE + i)),
                    )
                    .await?;
            }
            anyhow::Ok(())
        }
    });
    for r in futures_util::future::join_all(clients).await {
        r?;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "single inserts, 16 clients: {:.0} documents/s ({SINGLE} in {secs:.2} s)",
        SINGLE as f64 / secs
    );

    // Bulk: the rest of `total`, with skus past those the single inserts used.
    let (bulk_start, bulk_end) = (SINGLE * 18, SINGLE * 18 + total.saturating_sub(SINGLE * 2));
    let started = Instant::now();
    let mut next = bulk_start;
    while next < bulk_end {
        let mut batch = Vec::new();
        for _ in 0..2 {
            if next >= bulk_end {
                break;
            }
            let end = (next + 1000).min(bulk_end);
            let documents: Vec<Value> = (next..end).map(document).collect();
            batch.push(client.call(
                reqwest::Method::POST,
                format!("{docs}/bulk"),
                Some(json!({"documents": documents})),
            ));
            next = end;
        }
        for r in futures_util::future::join_all(batch).await {
            r?;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let bulk = bulk_end - bulk_start;
    println!(
        "bulk inserts (1,000 per request, 2 clients): {:.0} documents/s ({bulk} in {secs:.1} s)",
        bulk as f64 / secs
    );
    let table: String = sqlx::query_scalar("SELECT 'baas.\"d_' || replace(id::text, '-', '') || '\"' FROM baas.collections WHERE key = 'items'")
        .fetch_one(&pool)
        .await?;
    sqlx::query(&format!("VACUUM ANALYZE {table}"))
        .execute(&pool)
        .await?;
    let size: String = sqlx::query_scalar(&format!(
        "SELECT pg_size_pretty(pg_total_relation_size('{table}'))"
    ))
    .fetch_one(&pool)
    .await?;
    println!("{total} documents, table with indexes: {size}");

    // 2. Queries.
    let query =
        |body: Value| client.call(reqwest::Method::POST, format!("{docs}/query"), Some(body));
    timed("equality on an indexed attribute (category, ~1,000 matches, limit 25)", 300, |i| {
        query(json!({"filter": {"attribute": "category", "op": "equal", "value": format!("c{}", (i * 37) % CATEGORIES)}}))
    })
    .await?;
    timed("range with sort and limit 25 (price between, -price)", 300, |i| {
        let low = (i * 3331) % 900_000;
        query(json!({"filter": {"attribute": "price", "op": "between", "value": [low, low + 50_000]}, "sort": ["-price"], "limit": 25}))
    })
    .await?;
    timed("fulltext search (one word, ~400 matches, limit 25)", 300, |i| {
        query(json!({"filter": {"attribute": "body", "op": "search", "value": format!("word{}", (i * 13) % 5000)}}))
    })
    .await?;
    timed("count with an indexed filter (category, total=true)", 300, |i| {
        query(json!({"filter": {"attribute": "category", "op": "equal", "value": format!("c{}", (i * 37) % CATEGORIES)}, "limit": 1, "total": true}))
    })
    .await?;
    let aggregate = format!("{docs}/aggregate");
    timed(
        "count of the whole collection (aggregate count)",
        20,
        |_| {
            client.call(
                reqwest::Method::POST,
                aggregate.clone(),
                Some(json!({"aggregations": [{"op": "count"}]})),
            )
        },
    )
    .await?;
    let middle = query(json!({"filter": {"attribute": "price", "op": "greaterThan", "value": 500_000}, "sort": ["price"], "limit": 100})).await?;
    let cursors: Vec<String> = middle["documents"]
        .as_array()
        .map(|d| {
            d.iter()
                .filter_map(|d| d["$id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    timed(
        "cursor page from the middle (after a document, sort -price, limit 25)",
        300,
        |i| query(json!({"sort": ["-price"], "limit": 25, "after": cursors[i % cursors.len()]})),
    )
    .await?;

    // 3. Plans, for the SQL the API generates (the owner reads everything: `WHERE true`).
    for (label, sql) in [
        (
            "equality",
            format!(
                "SELECT * FROM {table} WHERE true AND ((data->>'category') = 'c42') ORDER BY seq ASC LIMIT 25"
            ),
        ),
        (
            "range + sort",
            format!(
                "SELECT * FROM {table} WHERE true AND ((data->>'price')::bigint) BETWEEN 1000 AND 51000 ORDER BY ((data->>'price')::bigint) DESC, seq DESC LIMIT 25"
            ),
        ),
        (
            "fulltext",
            format!(
                "SELECT * FROM {table} WHERE true AND to_tsvector('simple', coalesce(data->>'body', '')) @@ websearch_to_tsquery('simple', 'word42') ORDER BY seq ASC LIMIT 25"
            ),
        ),
        (
            "count",
            format!("SELECT count(*) FROM {table} WHERE true AND ((data->>'category') = 'c42')"),
        ),
    ] {
        let plan: Vec<String> = sqlx::query_scalar(&format!(
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) {sql}"
        ))
        .fetch_all(&pool)
        .await?;
        println!("--- EXPLAIN {label}\n{}", plan.join("\n"));
    }

    handle.stop(true).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    Ok(())
}
