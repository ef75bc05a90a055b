//! Outbound webhooks, received by a real HTTP listener in the test that checks the Standard
//! Webhooks signature.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::*;

#[derive(Clone, Debug)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

/// An HTTP listener on loopback that records every POST and answers with `status`.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
}

impl Receiver {
    fn start() -> Self {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let status = Arc::new(AtomicU16::new(200));
        let (g, st) = (got.clone(), status.clone());
        let server = HttpServer::new(move || {
            let (g, st) = (g.clone(), st.clone());
            App::new().default_service(web::to(move |req: HttpRequest, body: String| {
                let (g, st) = (g.clone(), st.clone());
                async move {
                    let header = |n: &str| {
                        req.headers()
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned()
                    };
                    g.lock().unwrap().push(Received {
                        id: header("webhook-id"),
                        timestamp: header("webhook-timestamp"),
                        signature: header("webhook-signature"),
                        body,
                    });
                    HttpResponse::build(
                        actix_web::http::StatusCode::from_u16(st.load(Ordering::SeqCst)).unwrap(),
                    )
                    .finish()
                }
            }))
        })
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .unwrap();
        let port = server.addrs()[0].port();
        tokio::spawn(server.run());
        Self {
            url: format!("http://127.0.0.1:{port}/hook"),
            got,
            status,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    fn of_type(&self, event_type: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| serde_json::from_str::<Value>(&r.body).unwrap()["type"] == event_type)
            .collect()
    }
}

/// Whether one of the `v1,` signatures matches under `secret`.
fn verifies(r: &Received, secret: &str) -> bool {
    let key = B64.decode(secret.trim_start_matches("whsec_")).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", r.id, r.timestamp, r.body).as_bytes());
    let expected = format!("v1,{}", B64.encode(mac.finalize().into_bytes()));
    r.signature.split(' ').any(|s| s == expected)
}

/// Registers and verifies (only verified accounts make webhook endpoints).
async fn register(app: &TestApp, email: &str) {
    assert_eq!(app.register(email).await.status(), 201);
    app.verify_email(email).await;
}

async fn token(app: &TestApp, email: &str) -> String {
    app.access_token(email).await
}

async fn create_endpoint(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.as_user(
        reqwest::Method::POST,
        "/api/v1/notifications/webhooks",
        token,
    )
    .json(&body)
    .send()
    .await
    .unwrap()
}

async fn deliveries(app: &TestApp, token: &str, endpoint: &str) -> Vec<Value> {
    app.items_as(
        &format!("/api/v1/notifications/webhooks/{endpoint}/deliveries"),
        token,
    )
    .await
}

const FAST: &[(&str, &str)] = &[
    ("BASALT__NOTIFICATIONS__ALLOW_PRIVATE_WEBHOOKS", "true"),
    ("BASALT__NOTIFICATIONS__WEBHOOK_RETRY_BASE_MS", "50"),
    ("BASALT__NOTIFICATIONS__POLL_INTERVAL_MS", "100"),
    ("BASALT__AUTH__ADMIN_EMAILS", "root@example.com"),
];

async fn admin(app: &TestApp) -> String {
    register(app, "root@example.com").await;
    token(app, "root@example.com").await
}

#[tokio::test]
async fn events_are_delivered_signed_and_without_secrets() {
    let receiver = Receiver::start();
    // A minute between polls: the delivery goes out because queuing it woke the job.
    let mut env: Vec<_> = FAST
        .iter()
        .filter(|(k, _)| *k != "BASALT__NOTIFICATIONS__POLL_INTERVAL_MS")
        .copied()
        .collect();
    env.push(("BASALT__NOTIFICATIONS__POLL_INTERVAL_MS", "60000"));
    let app = spawn_app_with(&env).await;
    let root = admin(&app).await;
    let res = create_endpoint(
        &app,
        &root,
        json!({ "url": receiver.url, "event_types": ["user.*"] }),
    )
    .await;
    assert_eq!(res.status(), 201);
    let endpoint: Value = res.json().await.unwrap();
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(endpoint["sees_all"], true);

    register(&app, "ada@example.com").await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            receiver.of_type("user.verification_requested").len() == 1
        })
        .await
    );
    let hook = receiver.of_type("user.verification_requested").remove(0);
    assert!(verifies(&hook, &secret), "{hook:?}");
    assert!(!verifies(
        &hook,
        "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
    ));
    let body: Value = serde_json::from_str(&hook.body).unwrap();
    assert_eq!(body["data"]["email"], "ada@example.com");
    assert!(
        body["data"].get("secret").is_none(),
        "single-use tokens never leave: {body}"
    );
    let event_id: String = sqlx::query_scalar(
        "SELECT id::text FROM platform.outbox WHERE event_type = 'user.verification_requested' AND payload->>'email' = 'ada@example.com'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(
        hook.id, event_id,
        "webhook-id is the event id, stable across retries"
    );
    let sent_at: i64 = hook.timestamp.parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - sent_at).abs() < 60);

    // The receiver has the request before the server has read the answer and recorded it.
    let endpoint_id = endpoint["id"].as_str().unwrap();
    assert!(
        eventually(Duration::from_secs(10), || async {
            deliveries(&app, &root, endpoint_id).await.iter().any(|d| {
                d["event_type"] == "user.verification_requested"
                    && d["status"] == "succeeded"
                    && d["last_status"] == 200
            })
        })
        .await
    );
}

#[tokio::test]
async fn bad_endpoints_are_refused() {
    let app = spawn_app_with(&[("BASALT__AUTH__ADMIN_EMAILS", "root@example.com")]).await;
    let root = admin(&app).await;
    for (body, field) in [
        (
            json!({ "url": "http://127.0.0.1:9/hook", "event_types": ["user.*"] }),
            "url",
        ),
        (
            json!({ "url": "http://10.0.0.7/hook", "event_types": ["user.*"] }),
            "url",
        ),
        (
            json!({ "url": "ftp://example.com/hook", "event_types": ["user.*"] }),
            "url",
        ),
        (
            json!({ "url": "not a url", "event_types": ["user.*"] }),
            "url",
        ),
        (
            json!({ "url": "http://127.0.0.1:9/hook", "event_types": ["order.teleported"] }),
            "event_types",
        ),
        (
            json!({ "url": "http://127.0.0.1:9/hook", "event_types": [] }),
            "event_types",
        ),
    ] {
        let res = create_endpoint(&app, &root, body.clone()).await;
        assert_eq!(res.status(), 422, "{body}");
        let p = problem(res).await;
        assert!(
            p["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["field"] == field),
            "{body}: {p}"
        );
    }
    let none: i64 = sqlx::query_scalar("SELECT count(*) FROM notifications.webhook_endpoints")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(none, 0);
    let anon = app
        .post_json(
            "/api/v1/notifications/webhooks",
            &json!({ "url": "https://example.com", "event_types": ["*"] }),
        )
        .await;
    assert_eq!(anon.status(), 401);
}

#[tokio::test]
async fn failures_are_retried_dead_lettered_replayed_and_the_endpoint_disabled() {
    let receiver = Receiver::start();
    receiver.status.store(500, Ordering::SeqCst);
    let mut env = FAST.to_vec();
    env.push(("BASALT__NOTIFICATIONS__WEBHOOK_MAX_ATTEMPTS", "3"));
    env.push(("BASALT__NOTIFICATIONS__WEBHOOK_DISABLE_AFTER", "5"));
    let app = spawn_app_with(&env).await;
    let root = admin(&app).await;
    let endpoint: Value = create_endpoint(
        &app,
        &root,
        json!({ "url": receiver.url, "event_types": ["user.registered"] }),
    )
    .await
    .json()
    .await
    .unwrap();
    let id = endpoint["id"].as_str().unwrap().to_owned();

    register(&app, "ada@example.com").await;
    let dead = eventually(Duration::from_secs(15), || async {
        deliveries(&app, &root, &id)
            .await
            .first()
            .is_some_and(|d| d["status"] == "dead")
    })
    .await;
    assert!(dead, "{:?}", deliveries(&app, &root, &id).await);
    let log = deliveries(&app, &root, &id).await;
    assert_eq!(log[0]["attempts"], 3);
    assert_eq!(log[0]["last_status"], 500);
    assert_eq!(receiver.received().len(), 3, "one POST per attempt");
    assert!(
        receiver.received().windows(2).all(|w| w[0].id == w[1].id),
        "the same webhook-id on every retry"
    );

    // The receiver is fixed: replay that one delivery.
    receiver.status.store(204, Ordering::SeqCst);
    let delivery = log[0]["id"].as_str().unwrap();
    let replay = format!("/api/v1/notifications/webhooks/{id}/deliveries/{delivery}/replay");
    let res = app
        .as_user(reqwest::Method::POST, &replay, &root)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    assert!(
        eventually(Duration::from_secs(10), || async {
            deliveries(&app, &root, &id).await[0]["status"] == "succeeded"
        })
        .await
    );

    // A range replay sends everything since then again.
    let since = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let res = app
        .as_user(
            reqwest::Method::POST,
            &format!("/api/v1/notifications/webhooks/{id}/replay"),
            &root,
        )
        .json(&json!({ "since": since }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    assert_eq!(
        res.json::<Value>().await.unwrap()["queued"],
        1,
        "ada's registration, the one since the endpoint exists"
    );
    assert!(
        eventually(Duration::from_secs(10), || async {
            receiver.received().len() >= 5
        })
        .await
    );

    // Five failed attempts in a row disable it; enabling resets the count.
    receiver.status.store(503, Ordering::SeqCst);
    register(&app, "bob@example.com").await;
    register(&app, "cy@example.com").await;
    let get = || async {
        app.json_as::<Value>(&format!("/api/v1/notifications/webhooks/{id}"), &root)
            .await
    };
    assert!(
        eventually(Duration::from_secs(15), || async {
            get().await["enabled"] == false
        })
        .await
    );
    let endpoint = get().await;
    assert!(
        endpoint["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("failed attempts")
    );
    let res = app
        .as_user(
            reqwest::Method::POST,
            &format!("/api/v1/notifications/webhooks/{id}/enable"),
            &root,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(get().await["consecutive_failures"], 0);
}

#[tokio::test]
async fn a_users_endpoint_sees_only_their_own_events_and_nobody_elses_endpoints() {
    let receiver = Receiver::start();
    let app = spawn_app_with(FAST).await;
    register(&app, "bob@example.com").await;
    let bob = token(&app, "bob@example.com").await;
    let endpoint: Value = create_endpoint(
        &app,
        &bob,
        json!({ "url": receiver.url, "event_types": ["user.password_changed"] }),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(endpoint["sees_all"], false);
    register(&app, "ada@example.com").await;
    let ada = token(&app, "ada@example.com").await;
    for access in [&ada, &bob] {
        let res = app.as_user(reqwest::Method::POST, "/api/v1/auth/change-password", access)
            .json(&json!({ "current_password": PASSWORD, "new_password": "a brand new passphrase 9" }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 204);
    }
    assert!(
        eventually(Duration::from_secs(10), || async {
            !receiver.received().is_empty()
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = receiver.of_type("user.password_changed");
    assert_eq!(got.len(), 1);
    assert_eq!(
        serde_json::from_str::<Value>(&got[0].body).unwrap()["data"]["email"],
        "bob@example.com"
    );

    let path = format!(
        "/api/v1/notifications/webhooks/{}",
        endpoint["id"].as_str().unwrap()
    );
    let res = app
        .as_user(reqwest::Method::GET, &path, &ada)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        404,
        "another user's endpoint does not exist for you"
    );
    let res = app
        .as_user(reqwest::Method::DELETE, &path, &ada)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn a_rotated_secret_signs_alongside_the_new_one_for_a_while() {
    let receiver = Receiver::start();
    let app = spawn_app_with(FAST).await;
    let root = admin(&app).await;
    let endpoint: Value = create_endpoint(
        &app,
        &root,
        json!({ "url": receiver.url, "event_types": ["user.registered"] }),
    )
    .await
    .json()
    .await
    .unwrap();
    let old = endpoint["secret"].as_str().unwrap().to_owned();
    let rotated: Value = app
        .as_user(
            reqwest::Method::POST,
            &format!(
                "/api/v1/notifications/webhooks/{}/rotate-secret",
                endpoint["id"].as_str().unwrap()
            ),
            &root,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    let listed = app.items_as("/api/v1/notifications/webhooks", &root).await;
    assert!(listed[0].get("secret").is_none(), "secrets are shown once");

    register(&app, "ada@example.com").await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            !receiver.of_type("user.registered").is_empty()
        })
        .await
    );
    let hook = receiver.of_type("user.registered").remove(0);
    assert_eq!(hook.signature.split(' ').count(), 2);
    assert!(verifies(&hook, &new) && verifies(&hook, &old));
}

#[tokio::test]
async fn delivery_logs_and_replays_reject_bad_input() {
    let app = spawn_app_with(FAST).await;
    let root = admin(&app).await;
    let endpoint: Value = create_endpoint(
        &app,
        &root,
        json!({ "url": "http://127.0.0.1:9/hook", "event_types": ["user.*"] }),
    )
    .await
    .json()
    .await
    .unwrap();
    let id = endpoint["id"].as_str().unwrap();
    let log = format!("/api/v1/notifications/webhooks/{id}/deliveries?limit=500");
    let res = app
        .as_user(reqwest::Method::GET, &log, &root)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let replay = format!("/api/v1/notifications/webhooks/{id}/replay");
    let res = app
        .as_user(reqwest::Method::POST, &replay, &root)
        .json(&json!({ "since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let res = app
        .as_user(reqwest::Method::POST, &replay, &root)
        .json(&json!({ "since": "yesterday" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let missing = format!(
        "/api/v1/notifications/webhooks/{id}/deliveries/{}/replay",
        uuid::Uuid::now_v7()
    );
    let res = app
        .as_user(reqwest::Method::POST, &missing, &root)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn urls_spelling_private_addresses_another_way_are_refused() {
    let app = spawn_app_with(&[("BASALT__AUTH__ADMIN_EMAILS", "root@example.com")]).await;
    let root = admin(&app).await;
    for url in [
        "http://[64:ff9b::a9fe:a9fe]/hook", // NAT64 of 169.254.169.254
        "http://[2002:a9fe:a9fe::1]/hook",  // 6to4
        "http://[::a9fe:a9fe]/hook",        // IPv4-compatible
        "http://[::ffff:a9fe:a9fe]/hook",   // IPv4-mapped
        "http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/hook", // Teredo of 10.0.0.1
        "http://[fec0::1]/hook",            // site-local
        "http://0.1.2.3/hook",
        "http://192.0.0.8/hook",
        "http://198.18.0.1/hook",
        "http://240.0.0.1/hook",
    ] {
        let res = create_endpoint(
            &app,
            &root,
            json!({ "url": url, "event_types": ["user.*"] }),
        )
        .await;
        assert_eq!(res.status(), 422, "{url}");
        let p = problem(res).await;
        assert_eq!(error_fields(&p), ["url"], "{url}: {p}");
    }
    let none: i64 = sqlx::query_scalar("SELECT count(*) FROM notifications.webhook_endpoints")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(none, 0);
}

#[tokio::test]
async fn webhooks_ignore_the_proxy_environment() {
    // A proxy would resolve and connect on the server's behalf, past the address checks.
    let proxy = Receiver::start();
    let receiver = Receiver::start();
    let proxy_url = proxy.url.trim_end_matches("/hook").to_owned();
    // SAFETY: each test runs in a process of its own (nextest), and no other thread reads
    // the environment yet.
    unsafe {
        std::env::set_var("HTTP_PROXY", &proxy_url);
        std::env::set_var("http_proxy", &proxy_url);
        std::env::set_var("ALL_PROXY", &proxy_url);
        std::env::remove_var("NO_PROXY");
        std::env::remove_var("no_proxy");
    }
    let mut app = spawn_app_with(FAST).await;
    // The test's own client goes straight to the server.
    app.client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let root = admin(&app).await;
    let res = create_endpoint(
        &app,
        &root,
        json!({ "url": receiver.url, "event_types": ["user.registered"] }),
    )
    .await;
    assert_eq!(res.status(), 201);
    register(&app, "ada@example.com").await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            !receiver.of_type("user.registered").is_empty()
        })
        .await,
        "delivered directly"
    );
    assert!(proxy.received().is_empty(), "{:?}", proxy.received());
}

#[tokio::test]
async fn a_demoted_or_deleted_owner_stops_receiving_everyone_elses_events() {
    let receiver = Receiver::start();
    let app = spawn_app_with(FAST).await;
    let root = admin(&app).await;
    register(&app, "ops@example.com").await;
    let me: Value = app
        .json_as("/api/v1/auth/me", token(&app, "ops@example.com").await)
        .await;
    let ops_id = me["id"].as_str().unwrap().to_owned();
    let res = app
        .as_user(
            reqwest::Method::POST,
            &format!("/api/v1/auth/admin/users/{ops_id}/roles"),
            &root,
        )
        .json(&json!({ "role": "admin" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let ops = token(&app, "ops@example.com").await;
    let endpoint: Value = create_endpoint(
        &app,
        &ops,
        json!({ "url": receiver.url, "event_types": ["user.registered", "user.password_changed"] }),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(endpoint["sees_all"], true);

    // While an administrator, ops receives others' events.
    register(&app, "ada@example.com").await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            !receiver.of_type("user.registered").is_empty()
        })
        .await
    );

    // Demoted (the token ops holds still says admin), ops gets only its own events.
    let res = app
        .as_user(
            reqwest::Method::DELETE,
            &format!("/api/v1/auth/admin/users/{ops_id}/roles/admin"),
            &root,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    register(&app, "bob@example.com").await;
    let res = app
        .as_user(reqwest::Method::POST, "/api/v1/auth/change-password", &ops)
        .json(&json!({ "current_password": PASSWORD, "new_password": "a brand new passphrase 9" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert!(
        eventually(Duration::from_secs(10), || async {
            !receiver.of_type("user.password_changed").is_empty()
        })
        .await,
        "ops's own event still arrives"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let registered: Vec<Value> = receiver
        .of_type("user.registered")
        .iter()
        .map(|r| serde_json::from_str::<Value>(&r.body).unwrap()["data"]["email"].clone())
        .collect();
    assert_eq!(registered, [json!("ada@example.com")], "not bob's");

    // Deleting the account deletes its endpoints.
    let ops = app
        .login("ops@example.com", "a brand new passphrase 9")
        .await
        .json::<Value>()
        .await
        .unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .as_user(reqwest::Method::DELETE, "/api/v1/auth/me", &ops)
        .json(&json!({ "password": "a brand new passphrase 9" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let gone = eventually(Duration::from_secs(10), || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM notifications.webhook_endpoints WHERE owner_id = $1::uuid",
        )
        .bind(&ops_id)
        .fetch_one(&app.db)
        .await
        .unwrap()
            == 0
    })
    .await;
    assert!(gone, "the deleted account's endpoints are deleted");
}
