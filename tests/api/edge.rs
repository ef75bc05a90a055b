//! The HTTP edge: security headers, CORS, rate limits and graceful shutdown.

use std::time::Duration;

use crate::helpers::*;

#[tokio::test]
async fn security_headers_are_on_every_response() {
    let app = spawn_app().await;
    for path in ["/health/live", "/api/v1/nowhere"] {
        let res = app.get(path).await;
        let h = res.headers();
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["referrer-policy"], "no-referrer");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert!(
            h.get("strict-transport-security").is_none(),
            "HSTS is off unless configured"
        );
    }
    let app = spawn_app_with(&[
        ("BASALT__HTTP__HSTS__ENABLED", "true"),
        ("BASALT__HTTP__HSTS__MAX_AGE_SECS", "600"),
    ])
    .await;
    let res = app.get("/health/live").await;
    assert_eq!(
        res.headers()["strict-transport-security"],
        "max-age=600; includeSubDomains"
    );
}

#[tokio::test]
async fn cors_follows_configuration() {
    let app = spawn_app_with(&[(
        "BASALT__HTTP__CORS__ALLOWED_ORIGINS",
        "https://shop.example",
    )])
    .await;
    let res = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/probe/notes"))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,authorization",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    let res = app
        .client
        .get(app.url("/health/live"))
        .header("origin", "https://shop.example")
        .send()
        .await
        .unwrap();
    let exposed = res.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(
        [
            "x-request-id",
            "ratelimit-remaining",
            "x-cart-token",
            "idempotent-replayed"
        ]
        .iter()
        .all(|h| exposed.contains(h)),
        "{exposed}"
    );

    let res = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/probe/notes"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error());
    assert!(res.headers().get("access-control-allow-origin").is_none());
    assert_eq!(res.headers()["content-type"], "application/problem+json");
}

const TIGHT: &[(&str, &str)] = &[
    ("BASALT__RATE_LIMIT__DEFAULT__REQUESTS", "5"),
    ("BASALT__RATE_LIMIT__DEFAULT__WINDOW_SECS", "60"),
];

async fn burst(app: &TestApp, path: &str, n: usize, token: Option<&str>) -> Vec<reqwest::Response> {
    let mut out = Vec::new();
    for _ in 0..n {
        let mut req = app.client.get(app.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        out.push(req.send().await.unwrap());
    }
    out
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after_and_ratelimit_headers() {
    let app = spawn_app_with(TIGHT).await;
    let responses = burst(&app, "/api/v1/capabilities", 6, None).await;
    for (i, res) in responses[..5].iter().enumerate() {
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["ratelimit-limit"], "5");
        assert_eq!(
            res.headers()["ratelimit-remaining"],
            (4 - i).to_string().as_str()
        );
        assert_eq!(res.headers()["ratelimit-policy"], "5;w=60");
    }
    let last = responses.into_iter().last().unwrap();
    assert_eq!(last.status(), 429);
    let retry: u64 = last.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(last.headers()["ratelimit-remaining"], "0");
    assert!(last.headers().get("x-request-id").is_some());
    assert_eq!(problem(last).await["code"], "rate_limited");
    // Health stays reachable for orchestrators.
    assert_eq!(app.get("/health/live").await.status(), 200);
}

#[tokio::test]
async fn auth_routes_get_their_stricter_policy() {
    let app = spawn_app_with(&[
        ("BASALT__RATE_LIMIT__DEFAULT__REQUESTS", "100"),
        ("BASALT__RATE_LIMIT__DEFAULT__WINDOW_SECS", "60"),
    ])
    .await;
    // config/default.toml: /api/v1/auth allows 30 a minute.
    let res = app.get("/api/v1/auth/login").await;
    assert_eq!(res.headers()["ratelimit-limit"], "30");
    let res = app.get("/api/v1/capabilities").await;
    assert_eq!(res.headers()["ratelimit-limit"], "100");
}

#[tokio::test]
async fn signed_in_users_have_their_own_budget() {
    let app = spawn_app_with(TIGHT).await;
    let alice = app.token("alice", &["user"], &[]);
    let bob = app.token("bob", &["user"], &[]);
    let a = burst(&app, "/api/v1/capabilities", 6, Some(&alice)).await;
    assert_eq!(a.last().unwrap().status(), 429);
    // Same IP, another user: a fresh budget.
    let b = burst(&app, "/api/v1/capabilities", 1, Some(&bob)).await;
    assert_eq!(b[0].status(), 200);
    // A forged token does not buy a budget of its own: it counts against the IP.
    let forged = format!("{}x", &bob[..bob.len() - 1]);
    let anon = burst(&app, "/api/v1/capabilities", 6, Some(&forged)).await;
    assert_eq!(anon.last().unwrap().status(), 429);
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_counters_are_shared_between_replicas() {
    let url = fresh_database().await;
    // A window key unique to this test run so other runs do not share the counter.
    let window = (3600 + (uuid::Uuid::new_v4().as_u128() % 1000) as u64).to_string();
    let env = [
        ("REDIS_URL", redis_url()),
        ("BASALT__RATE_LIMIT__DEFAULT__REQUESTS", "4".into()),
        ("BASALT__RATE_LIMIT__DEFAULT__WINDOW_SECS", window),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let one = spawn_on(&url, &env).await;
    let two = spawn_on(&url, &env).await;
    let user = format!("shared-{}", uuid::Uuid::new_v4());
    let token = one.token(&user, &[], &[]);
    let first = burst(&one, "/api/v1/capabilities", 4, Some(&token)).await;
    assert!(first.iter().all(|r| r.status() == 200));
    let second = burst(&two, "/api/v1/capabilities", 1, Some(&token)).await;
    assert_eq!(
        second[0].status(),
        429,
        "the second replica sees the first one's count"
    );
}

#[tokio::test]
async fn redis_down_falls_back_to_in_process_limits() {
    let mut env = TIGHT.to_vec();
    env.push(("REDIS_URL", "redis://127.0.0.1:1"));
    let app = spawn_app_with(&env).await;
    let responses = burst(&app, "/api/v1/capabilities", 6, None).await;
    assert!(
        responses[..5].iter().all(|r| r.status() == 200),
        "requests keep succeeding"
    );
    assert_eq!(responses[5].status(), 429, "and are still limited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_in_flight_requests_and_drains_events() {
    let app = spawn_app().await;
    let slow = {
        let client = app.client.clone();
        let url = app.url("/api/v1/probe/slow");
        tokio::spawn(async move { client.get(url).send().await })
    };
    let started = app.probe.slow_started.clone();
    assert!(
        eventually(Duration::from_secs(5), || {
            let started = started.load(std::sync::atomic::Ordering::SeqCst);
            async move { started }
        })
        .await
    );
    let note = app.create_note("last words").await;
    let event_id = note["event_id"].as_str().unwrap().to_owned();
    let db = app.db.clone();
    let address = app.address.clone();
    app.handle.stop(true).await;
    let res = slow
        .await
        .unwrap()
        .expect("the in-flight request completes");
    assert_eq!(res.status(), 200);
    app.stopped.await.unwrap().expect("clean shutdown");
    // Stopped: no longer accepting.
    assert!(
        client()
            .get(format!("{address}/health/live"))
            .send()
            .await
            .is_err()
    );
    // Pool closed by shutdown; look with a fresh connection.
    drop(db);
    let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
    let dispatched: bool = sqlx::query_scalar(
        "SELECT dispatched_at IS NOT NULL FROM platform.outbox WHERE id = $1::uuid",
    )
    .bind(&event_id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(dispatched, "the relay drained before exiting");
}

/// Sends `request` on a raw connection (a client library would refuse or reshape it) and
/// returns everything the server answers before it closes.
async fn raw_exchange(app: &TestApp, request: Vec<u8>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.address.trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    // The server stops reading once it has judged the head: the rest may fail to send.
    let writer = tokio::spawn(async move {
        let _ = write.write_all(&request).await;
        write
    });
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), read.read_to_end(&mut answer)).await;
    drop(writer.await);
    String::from_utf8_lossy(&answer).into_owned()
}

/// actix-http answers these two from inside its HTTP/1 parser, before any middleware: the
/// connection wrapper turns its bare heads into problem+json like every other error.
#[tokio::test]
async fn heads_the_parser_refuses_get_problem_json() {
    let app = spawn_app().await;

    let huge = "a".repeat(1 << 20);
    let request = format!(
        "GET /api/v1/auth/me HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {huge}\r\n\r\n"
    );
    let answer = raw_exchange(&app, request.into_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer:.300}");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(
        head.contains("content-type: application/problem+json"),
        "{head}"
    );
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["status"], 431);
    assert_eq!(body["code"], "request_head_too_large");

    let answer = raw_exchange(
        &app,
        b"GET /health/live HTTP/1.1\r\nHo st: x\r\n\r\n".to_vec(),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(
        head.contains("content-type: application/problem+json"),
        "{head}"
    );
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["code"], "malformed_request");

    // The same connection type still serves ordinary requests, kept alive.
    let answer = raw_exchange(
        &app,
        b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\nGET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
    )
    .await;
    assert_eq!(answer.matches("HTTP/1.1 200 OK").count(), 2, "{answer}");
}
