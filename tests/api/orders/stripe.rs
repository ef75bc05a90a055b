//! Stripe through a stateful fake (PyPI's `localstripe`, one per test): the end-to-end
//! payment as Stripe.js would make it, with the signed webhook localstripe sends; and the
//! webhook's signature scheme, dedupe and ordering with bodies signed here, independently of
//! the code under test (HMAC-SHA256 of `"{t}.{body}"`).

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use rand::seq::SliceRandom;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;
use uuid::Uuid;

use super::payments::{payments_of, refund, refunder};
use super::*;
use crate::helpers::{TestApp, eventually, problem, spawn_app_with};

const OLD_SECRET: &str = "whsec_old_0123456789";
const NEW_SECRET: &str = "whsec_new_9876543210";
const SECRET_KEY: &str = "sk_test_basalt";

/// A localstripe server on a free loopback port, killed on drop.
pub struct LocalStripe {
    child: Child,
    pub url: String,
}

impl LocalStripe {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let python = std::env::var("TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let child = Command::new(python)
            .args([
                "-m",
                "localstripe",
                "--port",
                &port.to_string(),
                "--from-scratch",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("localstripe (scripts/services.sh installs it; TEST_PYTHON names its python)");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "localstripe did not start on {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// A form POST with the secret key, as the provider (or Stripe.js) makes it.
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Value {
        let res = reqwest::Client::new()
            .post(format!("{}{path}", self.url))
            .bearer_auth(SECRET_KEY)
            .form(form)
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }
}

impl Drop for LocalStripe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The settings that point Stripe at `stripe`, both signing secrets configured (a rotation).
pub fn stripe_env(stripe: &LocalStripe) -> Vec<(&'static str, String)> {
    vec![
        ("BASALT__ORDERS__STRIPE__SECRET_KEY", SECRET_KEY.into()),
        (
            "BASALT__ORDERS__STRIPE__WEBHOOK_SECRET",
            format!("{OLD_SECRET},{NEW_SECRET}"),
        ),
        ("BASALT__ORDERS__STRIPE__BASE_URL", stripe.url.clone()),
    ]
}

/// An app with Stripe pointed at `stripe` (`stripe_env`), rate limits off.
pub async fn app_with_stripe(stripe: &LocalStripe) -> TestApp {
    let mut env = stripe_env(stripe);
    env.push(("BASALT__RATE_LIMIT__ENABLED", "false".into()));
    spawn_app_with(&env_refs(&env)).await
}

/// `spawn_app_with`'s borrowed form of owned settings.
pub fn env_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// A placed order of `who` to be paid with Stripe: (order, total).
pub async fn stripe_order(app: &TestApp, who: &crate::catalog::Actor) -> (Value, i64) {
    let s = seller(app);
    let (_, v) = stocked(app, &s, 10, 1000).await;
    let cart = cart_with(app, who, &[(&v, 2)]).await;
    let o = place_via(app, who, &cart, "stripe").await;
    let total = o["total"].as_i64().unwrap();
    (o, total)
}

fn sign(secret: &str, t: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A Stripe event about payment intent `pi` (amounts in cents: USD).
fn event(id: &str, kind: &str, pi: &str, amount: i64, status: &str) -> String {
    json!({
        "id": id, "object": "event", "type": kind, "created": now(), "api_version": "2024-06-20",
        "data": {"object": {
            "id": pi, "object": "payment_intent", "amount": amount, "amount_received": if status == "succeeded" { amount } else { 0 },
            "currency": "usd", "status": status, "latest_charge": format!("ch_{pi}"),
            "metadata": {"order_id": Uuid::now_v7().to_string()},
            "last_payment_error": if status == "requires_payment_method" { json!({"message": "Your card was declined."}) } else { Value::Null }
        }}
    })
    .to_string()
}

async fn deliver(app: &TestApp, body: &str, signature: Option<String>) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url("/api/v1/orders/webhooks/stripe"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(s) = signature {
        req = req.header("Stripe-Signature", s);
    }
    req.send().await.unwrap()
}

async fn deliver_signed(app: &TestApp, body: &str) -> reqwest::Response {
    let t = now();
    deliver(
        app,
        body,
        Some(format!("t={t},v1={}", sign(NEW_SECRET, t, body))),
    )
    .await
}

/// Delivers Stripe's signed `payment_intent.succeeded` (event `evt`) for intent `pi` and
/// waits until `who`'s order `id` is paid.
async fn paid_by_webhook(
    app: &TestApp,
    who: &crate::catalog::Actor,
    id: &str,
    evt: &str,
    pi: &str,
    total: i64,
) {
    let s = event(evt, "payment_intent.succeeded", pi, total, "succeeded");
    assert_eq!(deliver_signed(app, &s).await.status(), 200);
    assert!(
        eventually(Duration::from_secs(15), || async {
            order_status(app, who, id).await == "paid"
        })
        .await,
        "order {id} paid by {evt}"
    );
}

/// A Stripe in the test (`wiremock`) that opens PaymentIntent `pi` (2000 USD cents) for any
/// start; a test mounts the rest of what it needs (refunds, their lookups).
async fn intents_at(pi: &str) -> wiremock::MockServer {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": pi, "object": "payment_intent", "status": "requires_payment_method",
            "client_secret": format!("{pi}_secret_x"), "amount": 2000, "currency": "usd"})))
        .mount(&server)
        .await;
    server
}

/// An app with Stripe pointed at the in-test `server`, rate limits off, and `extra` settings.
async fn app_on(server: &wiremock::MockServer, extra: &[(&str, &str)]) -> TestApp {
    let uri = server.uri();
    let mut env = vec![
        ("BASALT__RATE_LIMIT__ENABLED", "false"),
        ("BASALT__ORDERS__STRIPE__SECRET_KEY", SECRET_KEY),
        ("BASALT__ORDERS__STRIPE__WEBHOOK_SECRET", NEW_SECRET),
        ("BASALT__ORDERS__STRIPE__BASE_URL", uri.as_str()),
    ];
    env.extend_from_slice(extra);
    spawn_app_with(&env).await
}

/// A fresh variant of a new product of `s` priced `price` in `currency`, 5 in stock; its id.
async fn variant_in(
    app: &TestApp,
    s: &crate::catalog::Actor,
    title: &str,
    currency: &str,
    price: i64,
) -> String {
    let p = crate::catalog::active_product(
        app,
        s,
        json!({"title": title, "currency": currency,
               "variants": [{"sku": format!("{currency}-{}", Uuid::now_v7().simple()), "price": price, "on_hand": 5}]}),
    )
    .await;
    let p: Value = app
        .json_as(
            &format!("/api/v1/catalog/products/{}", p["id"].as_str().unwrap()),
            &s.token,
        )
        .await;
    p["variants"][0]["id"].as_str().unwrap().to_owned()
}

/// An app on `stripe` whose unpaid-order job releases holds after 1 s and cancels after 2 s,
/// sweeping every 200 ms.
async fn app_with_a_quick_unpaid_job(stripe: &LocalStripe) -> TestApp {
    let mut env = stripe_env(stripe);
    env.extend([
        ("BASALT__RATE_LIMIT__ENABLED", "false".to_owned()),
        ("BASALT__ORDERS__HOLD_TTL_SECS", "1".to_owned()),
        ("BASALT__ORDERS__UNPAID_CANCEL_AFTER_SECS", "2".to_owned()),
        ("BASALT__ORDERS__UNPAID_SWEEP_MS", "200".to_owned()),
    ]);
    spawn_app_with(&env_refs(&env)).await
}

/// Starts the order's payment as `who`; the intent's id.
async fn intent_of(app: &TestApp, who: &crate::catalog::Actor, order: &str) -> String {
    let p: Value = post(app, who, &format!("/{order}/payment"), None)
        .await
        .json()
        .await
        .unwrap();
    p["reference"].as_str().unwrap().to_owned()
}

pub async fn order_status(app: &TestApp, who: &crate::catalog::Actor, id: &str) -> String {
    let o: Value = app
        .json_as(&format!("/api/v1/orders/{id}"), &who.token)
        .await;
    o["status"].as_str().unwrap().to_owned()
}

async fn outcome_of(app: &TestApp, event_id: &str) -> Option<String> {
    event_outcome(app, "stripe", event_id).await
}

#[tokio::test]
async fn a_card_payment_through_stripe_pays_the_order_by_its_signed_webhook() {
    let stripe = LocalStripe::start();
    let app = app_with_stripe(&stripe).await;
    let caps: Value = app.get("/api/v1/capabilities").await.json().await.unwrap();
    let orders = caps["domains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "orders")
        .unwrap()
        .clone();
    assert_eq!(
        orders["offers"]["payment_providers"],
        json!(["manual", "stripe"])
    );

    let b = buyer(&app);
    let (o, total) = stripe_order(&app, &b).await;
    let id = o["id"].as_str().unwrap();
    let res = post(&app, &b, &format!("/{id}/payment"), None).await;
    assert_eq!(res.status(), 201);
    let payment: Value = res.json().await.unwrap();
    assert_eq!(payment["provider"], "stripe");
    let pi = payment["reference"].as_str().unwrap().to_owned();
    assert!(pi.starts_with("pi_"), "{payment}");
    let secret = payment["client"]["client_secret"].as_str().unwrap();
    assert!(secret.starts_with(&format!("{pi}_secret_")), "{payment}");
    // Resumed: the same intent, not a second.
    let again: Value = post(&app, &b, &format!("/{id}/payment"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["reference"], pi.as_str());
    assert_eq!(again["client"], payment["client"]);
    assert_eq!(payments_of(&app, &b, id).await.len(), 1);

    // localstripe signs its webhooks with the new secret and posts them to Basalt.
    stripe
        .post(
            "/_config/webhooks/basalt",
            &[
                ("url", &app.url("/api/v1/orders/webhooks/stripe")),
                ("secret", NEW_SECRET),
            ],
        )
        .await;
    // What Stripe.js does with the card the buyer typed.
    let pm = stripe
        .post(
            "/v1/payment_methods",
            &[
                ("type", "card"),
                ("card[number]", "4242424242424242"),
                ("card[exp_month]", "12"),
                ("card[exp_year]", "2034"),
                ("card[cvc]", "123"),
            ],
        )
        .await;
    let pm = pm["id"].as_str().unwrap();
    stripe
        .post(
            &format!("/v1/payment_intents/{pi}"),
            &[("payment_method", pm)],
        )
        .await;
    let confirmed = stripe
        .post(&format!("/v1/payment_intents/{pi}/confirm"), &[])
        .await;
    assert_eq!(
        confirmed["amount"], total,
        "USD cents pass through unchanged"
    );

    assert!(
        eventually(Duration::from_secs(20), || async {
            order_status(&app, &b, id).await == "paid"
        })
        .await,
        "the order was not paid: {:?}",
        payments_of(&app, &b, id).await
    );
    let ps = payments_of(&app, &b, id).await;
    assert_eq!(ps.len(), 1);
    assert_eq!(ps[0]["status"], "succeeded");
    assert_eq!(ps[0]["captured"], total);
    let ledger = ps[0]["ledger"].as_array().unwrap();
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    assert_eq!(ledger[0]["kind"], "captured");
    assert_eq!(ledger[0]["amount"], total);
    assert!(
        ledger[0]["provider_event_id"]
            .as_str()
            .unwrap()
            .starts_with("evt_")
    );

    // A refund of part of it goes through Stripe's refund API.
    let r = refunder(&app);
    let res = refund(&app, &r, id, Some(json!({"amount": 300}))).await;
    let body: Value = res.json().await.unwrap();
    // A partial refund leaves a paid order's fulfilment alone.
    assert_eq!(body["order_status"], "paid", "{body}");
    let refund = body["payment"]["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["kind"] == "refunded")
        .unwrap()
        .clone();
    assert!(
        refund["provider_reference"]
            .as_str()
            .unwrap()
            .starts_with("re_"),
        "{refund}"
    );
}

#[tokio::test]
async fn webhook_signatures_valid_rotated_tampered_expired_and_missing() {
    let stripe = LocalStripe::start();
    let app = app_with_stripe(&stripe).await;
    let body = event(
        "evt_sig_1",
        "payment_intent.processing",
        "pi_unknown_sig",
        100,
        "processing",
    );
    let t = now();

    // Missing, malformed, tampered, expired, a wrong secret: 400, nothing recorded.
    refused(deliver(&app, &body, None).await, "invalid_signature").await;
    refused(
        deliver(&app, &body, Some("v1=abc".into())).await,
        "invalid_signature",
    )
    .await;
    let tampered = body.replace("processing", "succeeded");
    refused(
        deliver(
            &app,
            &tampered,
            Some(format!("t={t},v1={}", sign(NEW_SECRET, t, &body))),
        )
        .await,
        "invalid_signature",
    )
    .await;
    let old = t - 301;
    refused(
        deliver(
            &app,
            &body,
            Some(format!("t={old},v1={}", sign(NEW_SECRET, old, &body))),
        )
        .await,
        "invalid_signature",
    )
    .await;
    refused(
        deliver(
            &app,
            &body,
            Some(format!("t={t},v1={}", sign("whsec_other", t, &body))),
        )
        .await,
        "invalid_signature",
    )
    .await;
    assert_eq!(outcome_of(&app, "evt_sig_1").await, None);

    // Signed with the old secret during the rotation, and with several v1s: accepted.
    let res = deliver(
        &app,
        &body,
        Some(format!(
            "t={t},v1={},v1={}",
            sign("whsec_other", t, &body),
            sign(OLD_SECRET, t, &body)
        )),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["recorded"], true);
    // The same event again: 200, nothing new.
    let res = deliver_signed(&app, &body).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["recorded"], false);
    // Signed, but not an event: 400 invalid_payload.
    refused(
        deliver_signed(&app, "{\"nope\": 1}").await,
        "invalid_payload",
    )
    .await;

    // An event for a payment that is not ours: recorded as an orphan.
    assert!(
        eventually(Duration::from_secs(10), || async {
            outcome_of(&app, "evt_sig_1").await.as_deref() == Some("orphan")
        })
        .await
    );

    async fn refused(res: reqwest::Response, code: &str) {
        assert_eq!(res.status(), 400);
        assert_eq!(problem(res).await["code"], code);
    }
}

#[tokio::test]
async fn the_same_event_ten_times_shuffled_with_others_moves_the_payment_once() {
    let stripe = LocalStripe::start();
    let app = app_with_stripe(&stripe).await;
    let b = buyer(&app);
    let (o, total) = stripe_order(&app, &b).await;
    let id = o["id"].as_str().unwrap();
    let payment: Value = post(&app, &b, &format!("/{id}/payment"), None)
        .await
        .json()
        .await
        .unwrap();
    let pi = payment["reference"].as_str().unwrap();

    let succeeded = event("evt_ok", "payment_intent.succeeded", pi, total, "succeeded");
    let mut bodies: Vec<String> = (0..10).map(|_| succeeded.clone()).collect();
    bodies.push(event(
        "evt_proc",
        "payment_intent.processing",
        pi,
        total,
        "processing",
    ));
    bodies.push(event(
        "evt_fail",
        "payment_intent.payment_failed",
        pi,
        total,
        "requires_payment_method",
    ));
    bodies.push(event(
        "evt_act",
        "payment_intent.requires_action",
        pi,
        total,
        "requires_action",
    ));
    bodies.shuffle(&mut rand::rng());
    let statuses =
        crate::helpers::statuses_of(bodies.iter().map(|b| deliver_signed(&app, b))).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");

    assert!(
        eventually(Duration::from_secs(15), || async {
            order_status(&app, &b, id).await == "paid"
        })
        .await
    );
    // Every recorded event applied or ignored before looking at the ledger.
    assert!(
        eventually(Duration::from_secs(15), || async {
            let pending: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM orders.provider_events WHERE outcome = 'pending'",
            )
            .fetch_one(&app.db)
            .await
            .unwrap();
            pending == 0
        })
        .await
    );
    let ps = payments_of(&app, &b, id).await;
    assert_eq!(ps.len(), 1);
    assert_eq!(ps[0]["status"], "succeeded");
    assert_eq!(ps[0]["captured"], total);
    assert_eq!(ps[0]["ledger"].as_array().unwrap().len(), 1, "{:?}", ps[0]);
    let recorded: i64 = sqlx::query_scalar("SELECT count(*) FROM orders.provider_events")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(recorded, 4);
    assert_eq!(app.events_of("payment.succeeded").await, 1);
    assert_eq!(app.events_of("order.paid").await, 1);
    let paid_moves: i64 = sqlx::query_scalar("SELECT count(*) FROM orders.order_history WHERE order_id = $1::uuid AND to_status = 'paid'")
        .bind(id).fetch_one(&app.db).await.unwrap();
    assert_eq!(paid_moves, 1);

    // Refunded in full on Stripe's side (its dashboard: a signed `refund.updated`), then a
    // (new) `succeeded` arrives: nothing changes.
    let refund = json!({
        "id": "evt_refund", "object": "event", "type": "refund.updated", "created": now(),
        "data": {"object": {"id": "re_dashboard", "object": "refund", "amount": total,
            "currency": "usd", "status": "succeeded", "payment_intent": pi}}
    })
    .to_string();
    assert_eq!(deliver_signed(&app, &refund).await.status(), 200);
    assert!(
        eventually(Duration::from_secs(10), || async {
            order_status(&app, &b, id).await == "refunded"
        })
        .await
    );
    assert_eq!(app.events_of("payment.refunded").await, 1);
    let late = event(
        "evt_late",
        "payment_intent.succeeded",
        pi,
        total,
        "succeeded",
    );
    assert_eq!(deliver_signed(&app, &late).await.status(), 200);
    assert!(
        eventually(Duration::from_secs(10), || async {
            outcome_of(&app, "evt_late").await.as_deref() == Some("ignored")
        })
        .await
    );
    let ps = payments_of(&app, &b, id).await;
    assert_eq!(ps[0]["status"], "refunded");
    assert_eq!(ps[0]["captured"], total);
    assert_eq!(ps[0]["ledger"].as_array().unwrap().len(), 2, "{:?}", ps[0]);
    assert_eq!(order_status(&app, &b, id).await, "refunded");
}

#[tokio::test]
async fn a_payment_stuck_in_processing_is_reconciled_from_stripe() {
    let stripe = LocalStripe::start();
    // The job looks every 200 ms at payments waiting at all (threshold 0).
    let app = spawn_app_with(&[
        ("BASALT__RATE_LIMIT__ENABLED", "false"),
        ("BASALT__ORDERS__STRIPE__SECRET_KEY", SECRET_KEY),
        ("BASALT__ORDERS__STRIPE__WEBHOOK_SECRET", NEW_SECRET),
        ("BASALT__ORDERS__STRIPE__BASE_URL", &stripe.url),
        ("BASALT__ORDERS__RECONCILE_AFTER_SECS", "0"),
        ("BASALT__ORDERS__RECONCILE_SWEEP_MS", "200"),
    ])
    .await;
    let b = buyer(&app);
    let (o, total) = stripe_order(&app, &b).await;
    let id = o["id"].as_str().unwrap();
    let payment: Value = post(&app, &b, &format!("/{id}/payment"), None)
        .await
        .json()
        .await
        .unwrap();
    let pi = payment["reference"].as_str().unwrap().to_owned();
    // Stripe said `processing` (signed webhook) ...
    let processing = event(
        "evt_proc_r",
        "payment_intent.processing",
        &pi,
        total,
        "processing",
    );
    assert_eq!(deliver_signed(&app, &processing).await.status(), 200);
    assert!(
        eventually(Duration::from_secs(10), || async {
            payments_of(&app, &b, id).await[0]["status"] == "processing"
        })
        .await
    );
    // ... then the card went through, but its webhook never came (none is registered).
    let pm = stripe
        .post(
            "/v1/payment_methods",
            &[
                ("type", "card"),
                ("card[number]", "4242424242424242"),
                ("card[exp_month]", "12"),
                ("card[exp_year]", "2034"),
                ("card[cvc]", "123"),
            ],
        )
        .await;
    stripe
        .post(
            &format!("/v1/payment_intents/{pi}"),
            &[("payment_method", pm["id"].as_str().unwrap())],
        )
        .await;
    stripe
        .post(&format!("/v1/payment_intents/{pi}/confirm"), &[])
        .await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            order_status(&app, &b, id).await == "paid"
        })
        .await,
        "{:?}",
        payments_of(&app, &b, id).await
    );
    let ps = payments_of(&app, &b, id).await;
    assert_eq!(ps[0]["status"], "succeeded");
    let ledger = ps[0]["ledger"].as_array().unwrap();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0]["kind"], "captured");
    assert_eq!(ledger[0]["amount"], total);
    assert!(
        ledger[0]["provider_event_id"].is_null(),
        "found by the job, not a webhook"
    );
}

#[cfg(feature = "notifications")]
#[tokio::test]
async fn a_failed_card_payment_mails_the_buyer_and_a_new_start_resumes_the_same_intent() {
    let stripe = LocalStripe::start();
    let app = app_with_stripe(&stripe).await;
    let s = seller(&app);
    let (_, v) = stocked(&app, &s, 10, 1250).await;
    let b = buyer(&app);
    let cart = cart_with(&app, &b, &[(&v, 1)]).await;
    let res = app
        .as_user(Method::PUT, "/api/v1/cart/addresses", &b.token)
        .json(&json!({ "email": "grace@example.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let o: Value = checkout_via(&app, &b, &cart, "stripe")
        .await
        .json()
        .await
        .unwrap();
    let id = o["id"].as_str().unwrap();
    let first: Value = post(&app, &b, &format!("/{id}/payment"), None)
        .await
        .json()
        .await
        .unwrap();
    let pi = first["reference"].as_str().unwrap();
    let failed = event(
        "evt_declined",
        "payment_intent.payment_failed",
        pi,
        1250,
        "requires_payment_method",
    );
    assert_eq!(deliver_signed(&app, &failed).await.status(), 200);

    let mailed = eventually(Duration::from_secs(15), || async {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM notifications.messages
              WHERE template = 'payment-failed' AND to_address = 'grace@example.com'",
        )
        .fetch_one(&app.db)
        .await
        .unwrap();
        n == 1
    })
    .await;
    assert!(mailed, "the payment-failed mail");
    let (subject, text): (String, String) = sqlx::query_as(
        "SELECT subject, text_body FROM notifications.messages WHERE template = 'payment-failed'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(subject.contains(o["number"].as_str().unwrap()), "{subject}");
    assert!(text.contains("Your card was declined."), "{text}");

    let ps = payments_of(&app, &b, id).await;
    assert_eq!(ps[0]["status"], "requires_payment_method");
    assert_eq!(ps[0]["failure"], "Your card was declined.");
    assert_eq!(order_status(&app, &b, id).await, "pending_payment");
    // The buyer tries again: the same intent, still confirmable at Stripe.
    let res = post(&app, &b, &format!("/{id}/payment"), None).await;
    assert_eq!(res.status(), 200);
    let second: Value = res.json().await.unwrap();
    assert_eq!(second["reference"], first["reference"]);
    assert_eq!(payments_of(&app, &b, id).await.len(), 1);
}

/// A buyer who gave the cart no email gets the payment-failed mail at their account's
/// address, as the order's other mails.
#[cfg(all(feature = "notifications", feature = "auth"))]
#[tokio::test]
async fn a_failed_payment_is_mailed_to_the_account_address_without_a_cart_email() {
    let stripe = LocalStripe::start();
    let app = app_with_stripe(&stripe).await;
    let ada = crate::notifications::account_buyer(&app, "ada.failed@example.com").await;
    let (o, total) = stripe_order(&app, &ada).await;
    let id = o["id"].as_str().unwrap();
    let p: Value = post(&app, &ada, &format!("/{id}/payment"), None)
        .await
        .json()
        .await
        .unwrap();
    let failed = event(
        "evt_l4_declined",
        "payment_intent.payment_failed",
        p["reference"].as_str().unwrap(),
        total,
        "requires_payment_method",
    );
    assert_eq!(deliver_signed(&app, &failed).await.status(), 200);
    let mailed = eventually(Duration::from_secs(15), || async {
        let to: Vec<String> = sqlx::query_scalar(
            "SELECT to_address FROM notifications.messages WHERE template = 'payment-failed'",
        )
        .fetch_all(&app.db)
        .await
        .unwrap();
        to == ["ada.failed@example.com"]
    })
    .await;
    assert!(mailed, "the payment-failed mail at the account's address");
}

/// A one-request-at-a-time HTTP server on a free port that records each request (head and
/// body, as text) and answers every one with a PaymentIntent `pi_wire` in Stripe's shape.
async fn recording_stripe() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut raw = Vec::new();
            let mut buf = [0u8; 4096];
            // Read the head, then as much body as Content-Length says.
            loop {
                let n = socket.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                raw.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&raw).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if raw.len() >= end + 4 + length {
                        break;
                    }
                }
            }
            log.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&raw).to_string());
            let body = r#"{"id":"pi_wire","object":"payment_intent","status":"requires_payment_method","client_secret":"pi_wire_secret_abc"}"#;
            let res = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(res.as_bytes()).await;
        }
    });
    (url, seen)
}

#[tokio::test]
async fn stripe_calls_are_form_encoded_with_an_idempotency_key_in_stripes_units() {
    let (url, seen) = recording_stripe().await;
    let app = spawn_app_with(&[
        ("BASALT__ORDERS__STRIPE__SECRET_KEY", SECRET_KEY),
        ("BASALT__ORDERS__STRIPE__WEBHOOK_SECRET", NEW_SECRET),
        ("BASALT__ORDERS__STRIPE__BASE_URL", &url),
    ])
    .await;
    // An order in ISK: whole krónur in ISO 4217 (and Basalt), hundredths in Stripe's API.
    let s = seller(&app);
    let v = variant_in(&app, &s, "Lopapeysa", "ISK", 15000).await;
    let b = buyer(&app);
    let cart = cart_with(&app, &b, &[(&v, 2)]).await;
    let o: Value = checkout_via(&app, &b, &cart, "stripe")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(o["currency"], "ISK", "{o}");
    let id = o["id"].as_str().unwrap();
    let total = o["total"].as_i64().unwrap();
    let res = post(&app, &b, &format!("/{id}/payment"), None).await;
    assert_eq!(res.status(), 201);
    let payment: Value = res.json().await.unwrap();
    assert_eq!(payment["reference"], "pi_wire");
    assert_eq!(payment["amount"], total, "the payment keeps Basalt's units");
    assert_eq!(payment["client"]["client_secret"], "pi_wire_secret_abc");

    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let r = requests[0].to_ascii_lowercase();
    assert!(r.starts_with("post /v1/payment_intents http/1.1"), "{r}");
    assert!(
        r.contains(&format!("authorization: bearer {SECRET_KEY}")),
        "{r}"
    );
    assert!(
        r.contains("content-type: application/x-www-form-urlencoded"),
        "{r}"
    );
    assert!(
        r.contains(&format!("idempotency-key: order:{id}:payment:1")),
        "{r}"
    );
    let body = &requests[0][requests[0].find("\r\n\r\n").unwrap() + 4..];
    assert!(
        body.contains(&format!("amount={}", total * 100)),
        "ISK × 100: {body}"
    );
    assert!(body.contains("currency=isk"), "{body}");
    assert!(
        body.contains(&format!("metadata%5Border_id%5D={id}")),
        "{body}"
    );
}

/// An app whose Stripe is never called (the webhook routes only verify and record): its
/// base URL points nowhere.
async fn app_with_unreachable_stripe() -> TestApp {
    spawn_app_with(&[
        ("BASALT__RATE_LIMIT__ENABLED", "false"),
        ("BASALT__ORDERS__STRIPE__SECRET_KEY", SECRET_KEY),
        ("BASALT__ORDERS__STRIPE__WEBHOOK_SECRET", NEW_SECRET),
        ("BASALT__ORDERS__STRIPE__BASE_URL", "http://127.0.0.1:9"),
    ])
    .await
}

/// `t` is the sender's: `now - t` must not overflow (it panicked debug builds for
/// `t=i64::MIN`, killing the connection of an anonymous caller).
#[tokio::test]
async fn a_webhook_timestamp_at_either_end_of_i64_is_a_400_not_a_crash() {
    let app = app_with_unreachable_stripe().await;
    let body = event(
        "evt_t_ends",
        "payment_intent.processing",
        "pi_t_ends",
        100,
        "processing",
    );
    for t in [i64::MIN, i64::MAX, i64::MIN + 1, -1] {
        let res = deliver(
            &app,
            &body,
            Some(format!("t={t},v1={}", sign(NEW_SECRET, t, &body))),
        )
        .await;
        assert_eq!(res.status(), 400, "t={t}");
        assert_eq!(problem(res).await["code"], "invalid_signature", "t={t}");
    }
    assert_eq!(outcome_of(&app, "evt_t_ends").await, None);
    // The app still serves: the same event signed now is recorded.
    let res = deliver_signed(&app, &body).await;
    assert_eq!(res.status(), 200);
}

/// The webhook routes read at most 256 KiB (not the global 4 MiB) before the signature is
/// checked: a larger body, signed or not, declared or streamed, is a 413 problem, and
/// nothing is recorded.
#[tokio::test]
async fn a_webhook_body_over_256_kib_is_a_413_before_its_signature_is_checked() {
    let app = app_with_unreachable_stripe().await;
    let pad = "a".repeat(300 * 1024);
    let big = json!({"id": "evt_big", "object": "event", "type": "customer.updated",
        "created": now(), "data": {"object": {"id": "cus_x", "pad": pad}}})
    .to_string();
    // Signed, with its Content-Length.
    let res = deliver_signed(&app, &big).await;
    assert_eq!(res.status(), 413);
    assert_eq!(problem(res).await["code"], "payload_too_large");
    // Unsigned, streamed without a Content-Length (chunked).
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big
        .as_bytes()
        .chunks(16 * 1024)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let res = app
        .client
        .post(app.url("/api/v1/orders/webhooks/stripe"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    assert_eq!(problem(res).await["code"], "payload_too_large");
    // Razorpay's route has the same limit (it answers 404 here: not configured, before
    // reading anything).
    assert_eq!(outcome_of(&app, "evt_big").await, None);
    // Under the limit: read, verified, recorded.
    let pad = "a".repeat(200 * 1024);
    let fits = json!({"id": "evt_fits", "object": "event", "type": "customer.updated",
        "created": now(), "data": {"object": {"id": "cus_x", "pad": pad}}})
    .to_string();
    let res = deliver_signed(&app, &fits).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["recorded"], true);
}

/// The payment-timeout job must not cancel an order whose payment is in flight at the
/// provider (a bank debit `processing` for days): the money would then land on a cancelled
/// order. An order beside it without a payment in flight is cancelled by the same job (so
/// the job did run), and the in-flight one is paid when its capture arrives.
#[tokio::test]
async fn the_timeout_job_leaves_an_order_whose_payment_is_processing() {
    let stripe = LocalStripe::start();
    let app = app_with_a_quick_unpaid_job(&stripe).await;
    let b = buyer(&app);
    let (o, total) = stripe_order(&app, &b).await;
    let id = o["id"].as_str().unwrap().to_owned();
    let (idle, _) = stripe_order(&app, &b).await;
    let idle = idle["id"].as_str().unwrap().to_owned();
    let pi = intent_of(&app, &b, &id).await;
    let e = event(
        "evt_timeout_1",
        "payment_intent.processing",
        &pi,
        total,
        "processing",
    );
    assert_eq!(deliver_signed(&app, &e).await.status(), 200);
    assert!(
        eventually(Duration::from_secs(10), || async {
            payments_of(&app, &b, &id).await[0]["status"] == "processing"
        })
        .await
    );
    // The idle order is cancelled by the job; the processing one is not.
    assert!(
        eventually(Duration::from_secs(15), || async {
            order_status(&app, &b, &idle).await == "cancelled"
        })
        .await,
        "the timeout job did not run"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(order_status(&app, &b, &id).await, "pending_payment");
    // The capture arrives: the order is paid.
    let s = event(
        "evt_timeout_2",
        "payment_intent.succeeded",
        &pi,
        total,
        "succeeded",
    );
    assert_eq!(deliver_signed(&app, &s).await.status(), 200);
    assert!(
        eventually(Duration::from_secs(15), || async {
            order_status(&app, &b, &id).await == "paid"
        })
        .await
    );
}

/// A Stripe server that answers every call with `status` and `body` (wiremock).
async fn stripe_answering(status: u16, body: Value) -> wiremock::MockServer {
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(wiremock::ResponseTemplate::new(status).set_body_json(body))
        .mount(&server)
        .await;
    server
}

/// A wrong, revoked or rotated-away secret key is ours to fix, not the buyer's: Stripe's
/// 401 (or 403) reaches the buyer as a 503 `provider_unavailable` that does not repeat
/// Stripe's message (it names the key), never a 502 with it.
#[tokio::test]
async fn a_secret_key_stripe_refuses_is_a_503_without_stripes_message() {
    for status in [401, 403] {
        let server = stripe_answering(
            status,
            json!({"error": {"type": "invalid_request_error",
                "message": "Invalid API Key provided: sk_test_****asal"}}),
        )
        .await;
        let app = spawn_app_with(&[
            ("BASALT__RATE_LIMIT__ENABLED", "false"),
            ("BASALT__ORDERS__STRIPE__SECRET_KEY", SECRET_KEY),
            ("BASALT__ORDERS__STRIPE__WEBHOOK_SECRET", NEW_SECRET),
            ("BASALT__ORDERS__STRIPE__BASE_URL", &server.uri()),
        ])
        .await;
        let b = buyer(&app);
        let (o, _) = stripe_order(&app, &b).await;
        let id = o["id"].as_str().unwrap();
        let res = post(&app, &b, &format!("/{id}/payment"), None).await;
        assert_eq!(res.status(), 503, "Stripe {status}");
        let p = problem(res).await;
        assert_eq!(p["code"], "provider_unavailable");
        assert!(!p.to_string().contains("API Key"), "{p}");
        assert!(payments_of(&app, &b, id).await.is_empty());
    }
}

/// An amount Stripe cannot express (a three-decimal currency not in tens: 5.125 KWD) is
/// the order's, not Stripe's, failure: a 422 `provider_unsupported` before Stripe is asked,
/// not a 502. An amount it can take (5.120 KWD) opens the intent.
#[tokio::test]
async fn an_amount_stripe_cannot_express_is_a_422_before_stripe_is_asked() {
    let server = stripe_answering(
        200,
        json!({"id": "pi_kwd", "object": "payment_intent",
            "status": "requires_payment_method", "client_secret": "pi_kwd_secret"}),
    )
    .await;
    let app = app_on(&server, &[]).await;
    let s = seller(&app);
    for (price, status) in [(5125_i64, 422_u16), (5120, 201)] {
        let v = variant_in(&app, &s, "Dallah", "KWD", price).await;
        let b = buyer(&app);
        let cart = cart_with(&app, &b, &[(&v, 1)]).await;
        let o: Value = checkout_via(&app, &b, &cart, "stripe")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(o["currency"], "KWD", "{o}");
        let id = o["id"].as_str().unwrap();
        let asked_before = server.received_requests().await.unwrap().len();
        let res = post(&app, &b, &format!("/{id}/payment"), None).await;
        assert_eq!(res.status(), status, "KWD {price}");
        if status == 422 {
            assert_eq!(problem(res).await["code"], "provider_unsupported");
            assert_eq!(
                server.received_requests().await.unwrap().len(),
                asked_before,
                "Stripe was not asked"
            );
            assert!(payments_of(&app, &b, id).await.is_empty());
        }
    }
}

/// Stripe answers some refunds `pending` (bank debits, some cards) and says later, with
/// `refund.updated`, whether the money went back. A pending refund holds its amount on the
/// payment (no second refund can take it) but is not a `refunded` ledger row, does not move
/// the order and publishes no `payment.refunded`; its failure gives the amount back (and the
/// order's history says so), its success completes it. The amount recorded is the one
/// Stripe's answer names.
#[tokio::test]
async fn a_pending_refund_waits_for_stripe_a_failed_one_is_released_a_succeeded_one_completes() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, ResponseTemplate};
    let server = intents_at("pi_pend").await;
    for re in ["re_pend_1", "re_pend_2"] {
        Mock::given(method("POST"))
            .and(path("/v1/refunds"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "id": re, "object": "refund", "status": "pending", "amount": 2000,
                "currency": "usd", "payment_intent": "pi_pend"})))
            .up_to_n_times(1)
            .mount(&server)
            .await;
    }
    let app = app_on(&server, &[]).await;
    let b = buyer(&app);
    let (o, total) = stripe_order(&app, &b).await;
    let id = o["id"].as_str().unwrap();
    assert_eq!(total, 2000);
    assert_eq!(
        post(&app, &b, &format!("/{id}/payment"), None)
            .await
            .status(),
        201
    );
    paid_by_webhook(&app, &b, id, "evt_pend_paid", "pi_pend", total).await;
    let r = refunder(&app);
    let refunded_rows = |ps: &[Value]| {
        ps[0]["ledger"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["kind"] == "refunded")
            .count()
    };

    // Pending: held, not refunded.
    let res = refund(&app, &r, id, None).await;
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["pending"], true, "{body}");
    assert_eq!(body["refund_reference"], "re_pend_1");
    assert_eq!(body["order_status"], "paid");
    assert_eq!(body["payment"]["refunded"], 0);
    assert_eq!(
        body["payment"]["refund_pending"], total,
        "held on the payment"
    );
    assert_eq!(order_status(&app, &b, id).await, "paid");
    assert_eq!(refunded_rows(&payments_of(&app, &b, id).await), 0);
    assert_eq!(app.events_of("payment.refunded").await, 0);
    // Nothing left to refund while it is pending.
    let res = refund(&app, &r, id, Some(json!({"amount": 1}))).await;
    assert_eq!(res.status(), 409);
    assert_eq!(problem(res).await["code"], "refund_exceeds_captured");

    // It fails at Stripe: released, and the history tells staff.
    let failed = |ev: &str, re: &str, status: &str| {
        json!({
            "id": ev, "object": "event", "type": "refund.updated", "created": now(),
            "data": {"object": {"id": re, "object": "refund", "amount": total,
                "currency": "usd", "payment_intent": "pi_pend", "status": status,
                "failure_reason": "expired_or_canceled_card"}}
        })
        .to_string()
    };
    let e = failed("evt_pend_failed", "re_pend_1", "failed");
    assert_eq!(deliver_signed(&app, &e).await.status(), 200);
    assert!(
        eventually(Duration::from_secs(15), || async {
            payments_of(&app, &b, id).await[0]["refund_pending"] == 0
        })
        .await,
        "the failed refund's amount is released"
    );
    assert_eq!(payments_of(&app, &b, id).await[0]["refunded"], 0);
    assert_eq!(order_status(&app, &b, id).await, "paid");
    assert_eq!(refunded_rows(&payments_of(&app, &b, id).await), 0);
    assert_eq!(app.events_of("payment.refunded").await, 0);
    let notes: Vec<Option<String>> = sqlx::query_scalar(
        "SELECT note FROM orders.order_history WHERE order_id = $1::uuid ORDER BY id",
    )
    .bind(id)
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert!(
        notes
            .iter()
            .flatten()
            .any(|n| n.contains("re_pend_1") && n.contains("failed")),
        "{notes:?}"
    );
    // Its redelivery changes nothing (the amount is not released twice).
    let again = failed("evt_pend_failed_again", "re_pend_1", "failed");
    assert_eq!(deliver_signed(&app, &again).await.status(), 200);

    // Refunded again (pending), then it succeeds: the refund completes.
    let res = refund(&app, &r, id, None).await;
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["pending"], true, "{body}");
    assert_eq!(body["refund_reference"], "re_pend_2");
    let e = failed("evt_pend_ok", "re_pend_2", "succeeded");
    assert_eq!(deliver_signed(&app, &e).await.status(), 200);
    assert!(
        eventually(Duration::from_secs(15), || async {
            order_status(&app, &b, id).await == "refunded"
        })
        .await
    );
    let ps = payments_of(&app, &b, id).await;
    assert_eq!(ps[0]["refunded"], total);
    assert_eq!(ps[0]["refund_pending"], 0);
    assert_eq!(ps[0]["status"], "refunded");
    assert_eq!(refunded_rows(&ps), 1);
    assert_eq!(app.events_of("payment.refunded").await, 1);
    let released_twice: i64 =
        sqlx::query_scalar("SELECT refunded FROM orders.payments WHERE reference = 'pi_pend'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(released_twice, total);
}

/// The refund's `Idempotency-Key` reaches Stripe: a retry under the same key is replayed
/// without asking Stripe again, and each request's provider key is derived from its own
/// key (`payment:{id}:refund:{digest}`), so two refunds never share one at Stripe.
#[tokio::test]
async fn a_refund_retried_under_its_key_asks_stripe_once_under_a_key_derived_from_it() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, ResponseTemplate};
    let server = intents_at("pi_keyed").await;
    for (re, amount) in [("re_keyed_1", 300), ("re_keyed_2", 200)] {
        Mock::given(method("POST"))
            .and(path("/v1/refunds"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "id": re, "object": "refund", "status": "succeeded", "amount": amount,
                "currency": "usd", "payment_intent": "pi_keyed"})))
            .up_to_n_times(1)
            .mount(&server)
            .await;
    }
    let app = app_on(&server, &[]).await;
    let b = buyer(&app);
    let (o, total) = stripe_order(&app, &b).await;
    let id = o["id"].as_str().unwrap();
    assert_eq!(
        post(&app, &b, &format!("/{id}/payment"), None)
            .await
            .status(),
        201
    );
    paid_by_webhook(&app, &b, id, "evt_keyed_paid", "pi_keyed", total).await;
    let r = refunder(&app);
    let (k1, k2) = (Uuid::now_v7().to_string(), Uuid::now_v7().to_string());
    for key in [&k1, &k1, &k2] {
        let amount = if key == &k1 { 300 } else { 200 };
        let res =
            super::payments::refund_keyed(&app, &r, id, Some(json!({ "amount": amount })), key)
                .await;
        assert_eq!(res.status(), 201);
    }
    let keys: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|q| q.url.path() == "/v1/refunds")
        .map(|q| q.headers["idempotency-key"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys.len(), 2, "the retry was replayed, not sent: {keys:?}");
    assert_ne!(keys[0], keys[1]);
    let payment = payments_of(&app, &b, id).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for k in &keys {
        let digest = k
            .strip_prefix(&format!("payment:{payment}:refund:"))
            .unwrap_or_else(|| panic!("{k}"));
        assert_eq!(digest.len(), 64, "{k}");
        assert!(
            !k.contains(&k1) && !k.contains(&k2),
            "the caller's key itself is not sent"
        );
    }
    assert_eq!(payments_of(&app, &b, id).await[0]["refunded"], 500);
}

/// A pending refund whose `refund.updated` never arrives (an endpoint down) is looked up
/// at Stripe by the reconciliation job and completed as its webhook would have.
#[tokio::test]
async fn a_pending_refund_whose_webhook_is_lost_is_reconciled_from_stripe() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, ResponseTemplate};
    let server = intents_at("pi_lost").await;
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "re_lost", "object": "refund", "status": "pending", "amount": 2000,
            "currency": "usd", "payment_intent": "pi_lost"})))
        .mount(&server)
        .await;
    // Stripe's own answer when asked later: it went through.
    Mock::given(method("GET"))
        .and(path("/v1/refunds/re_lost"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "re_lost", "object": "refund", "status": "succeeded", "amount": 2000,
            "currency": "usd", "payment_intent": "pi_lost"})))
        .mount(&server)
        .await;
    let app = app_on(
        &server,
        &[
            ("BASALT__ORDERS__RECONCILE_AFTER_SECS", "0"),
            ("BASALT__ORDERS__RECONCILE_SWEEP_MS", "200"),
        ],
    )
    .await;
    let b = buyer(&app);
    let (o, total) = stripe_order(&app, &b).await;
    assert_eq!(total, 2000, "the mocked refund is the whole order");
    let id = o["id"].as_str().unwrap();
    assert_eq!(
        post(&app, &b, &format!("/{id}/payment"), None)
            .await
            .status(),
        201
    );
    paid_by_webhook(&app, &b, id, "evt_lost_paid", "pi_lost", total).await;
    let r = refunder(&app);
    let res = refund(&app, &r, id, None).await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.json::<Value>().await.unwrap()["pending"], true);
    // No webhook: the job asks Stripe and completes it.
    assert!(
        eventually(Duration::from_secs(15), || async {
            payments_of(&app, &b, id).await[0]["refunded"] == total
        })
        .await,
        "the job completed the refund"
    );
    let ps = payments_of(&app, &b, id).await;
    assert_eq!(ps[0]["refund_pending"], 0);
    assert_eq!(ps[0]["status"], "refunded");
    assert_eq!(order_status(&app, &b, id).await, "refunded");
    assert_eq!(app.events_of("payment.refunded").await, 1);
    let asked = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .any(|q| q.method.as_str() == "GET" && q.url.path() == "/v1/refunds/re_lost");
    assert!(asked);
}

/// What the order's `captured` ledger rows sum to, across all its payments.
async fn captured_total(app: &TestApp, id: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT COALESCE(sum(amount), 0)::bigint FROM orders.payment_ledger
          WHERE order_id = $1::uuid AND kind = 'captured'",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .unwrap()
}

/// The order's history: (to_status, note), oldest first.
async fn history_notes(app: &TestApp, id: &str) -> Vec<(String, Option<String>)> {
    sqlx::query_as(
        "SELECT to_status, note FROM orders.order_history WHERE order_id = $1::uuid ORDER BY id",
    )
    .bind(id)
    .fetch_all(&app.db)
    .await
    .unwrap()
}

/// Stripe puts a failed PaymentIntent back to `requires_payment_method`, still confirmable
/// (Stripe.js retries on it): the payment stays open with the failure, a new start resumes
/// that intent rather than opening a second beside it, and its later success is the order's
/// one capture, the failure cleared.
#[tokio::test]
async fn a_failed_card_attempt_stays_open_and_the_retry_resumes_the_same_intent_captured_once() {
    let stripe = LocalStripe::start();
    let app = app_with_stripe(&stripe).await;
    let b = buyer(&app);
    let (o, total) = stripe_order(&app, &b).await;
    let id = o["id"].as_str().unwrap();
    let first: Value = post(&app, &b, &format!("/{id}/payment"), None)
        .await
        .json()
        .await
        .unwrap();
    let pi = first["reference"].as_str().unwrap();
    let failed = event(
        "evt_h1_fail",
        "payment_intent.payment_failed",
        pi,
        total,
        "requires_payment_method",
    );
    assert_eq!(deliver_signed(&app, &failed).await.status(), 200);
    assert!(
        eventually(Duration::from_secs(15), || async {
            outcome_of(&app, "evt_h1_fail").await.as_deref() == Some("applied")
        })
        .await
    );
    let ps = payments_of(&app, &b, id).await;
    assert_eq!(ps[0]["status"], "requires_payment_method", "{:?}", ps[0]);
    assert_eq!(ps[0]["failure"], "Your card was declined.");
    assert_eq!(app.events_of("payment.failed").await, 1);
    // The buyer retries: the same intent, never a second one.
    let res = post(&app, &b, &format!("/{id}/payment"), None).await;
    assert_eq!(res.status(), 200);
    let again: Value = res.json().await.unwrap();
    assert_eq!(again["reference"], first["reference"]);
    assert_eq!(again["client"], first["client"]);
    // The same failure delivered again is a duplicate: no second `payment.failed`.
    assert_eq!(deliver_signed(&app, &failed).await.status(), 200);
    paid_by_webhook(&app, &b, id, "evt_h1_ok", pi, total).await;
    let ps = payments_of(&app, &b, id).await;
    assert_eq!(ps.len(), 1, "{ps:?}");
    assert_eq!(ps[0]["status"], "succeeded");
    assert_eq!(
        ps[0]["failure"],
        Value::Null,
        "a success clears the failure"
    );
    assert_eq!(
        captured_total(&app, id).await,
        total,
        "one order, one capture"
    );
    assert_eq!(app.events_of("payment.failed").await, 1);
}

/// A declined card leaves its intent open (the buyer may retry on it), but not in the way:
/// staff's `mark-paid` (a bank transfer after all) cancels the intent at Stripe first and
/// records the manual payment, the order's one capture. While a card payment is
/// `processing` (money may be on its way) another provider's start is a 409
/// `payment_in_progress`.
#[tokio::test]
async fn a_declined_card_gives_way_to_a_bank_transfer_and_its_intent_is_cancelled_at_stripe() {
    let stripe = LocalStripe::start();
    let app = app_with_stripe(&stripe).await;
    let b = buyer(&app);
    let (o, total) = stripe_order(&app, &b).await;
    let id = o["id"].as_str().unwrap();
    let pi = intent_of(&app, &b, id).await;
    let f = event(
        "evt_h1_m1",
        "payment_intent.payment_failed",
        &pi,
        total,
        "requires_payment_method",
    );
    assert_eq!(deliver_signed(&app, &f).await.status(), 200);
    assert!(
        eventually(Duration::from_secs(15), || async {
            outcome_of(&app, "evt_h1_m1").await.as_deref() == Some("applied")
        })
        .await
    );
    let res = post(&app, &manager(&app), &format!("/{id}/mark-paid"), None).await;
    assert_eq!(res.status(), 200);
    assert_eq!(order_status(&app, &b, id).await, "paid");
    let ps = payments_of(&app, &b, id).await;
    assert_eq!(ps.len(), 2, "{ps:?}");
    assert_eq!(ps[0]["status"], "canceled");
    assert_eq!(ps[1]["provider"], "manual");
    assert_eq!(ps[1]["status"], "succeeded");
    assert_eq!(captured_total(&app, id).await, total);
    let at_stripe: Value = reqwest::Client::new()
        .get(format!("{}/v1/payment_intents/{pi}", stripe.url))
        .bearer_auth(SECRET_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(at_stripe["status"], "canceled", "{at_stripe}");

    // Another order whose card payment is processing: no switching away from it.
    let (o2, total2) = stripe_order(&app, &b).await;
    let id2 = o2["id"].as_str().unwrap();
    let p2: Value = post(&app, &b, &format!("/{id2}/payment"), None)
        .await
        .json()
        .await
        .unwrap();
    let processing = event(
        "evt_h1_m2",
        "payment_intent.processing",
        p2["reference"].as_str().unwrap(),
        total2,
        "processing",
    );
    assert_eq!(deliver_signed(&app, &processing).await.status(), 200);
    assert!(
        eventually(Duration::from_secs(15), || async {
            outcome_of(&app, "evt_h1_m2").await.as_deref() == Some("applied")
        })
        .await
    );
    crate::helpers::refused(
        post(
            &app,
            &b,
            &format!("/{id2}/payment"),
            Some(json!({"provider": "manual"})),
        )
        .await,
        409,
        "payment_in_progress",
    )
    .await;
    crate::helpers::refused(
        post(&app, &manager(&app), &format!("/{id2}/mark-paid"), None).await,
        409,
        "payment_in_progress",
    )
    .await;
    assert_eq!(payments_of(&app, &b, id2).await.len(), 1);
}

/// Cancelling an order (its buyer, or staff) cancels its open PaymentIntent at Stripe first,
/// so the client secret the buyer holds can take no money; a late `succeeded` for it then
/// changes nothing. While the payment is `processing` the cancel is a 409
/// `payment_in_progress` and the order stays as it was.
#[tokio::test]
async fn cancelling_an_order_cancels_its_open_intent_at_stripe_and_refuses_while_processing() {
    let stripe = LocalStripe::start();
    let app = app_with_stripe(&stripe).await;
    let b = buyer(&app);
    let intent = |pi: String| {
        let url = stripe.url.clone();
        async move {
            let v: Value = reqwest::Client::new()
                .get(format!("{url}/v1/payment_intents/{pi}"))
                .bearer_auth(SECRET_KEY)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["status"].as_str().unwrap_or_default().to_owned()
        }
    };
    let staff = manager(&app);
    for who in [&b, &staff] {
        let (o, total) = stripe_order(&app, &b).await;
        let id = o["id"].as_str().unwrap();
        let pi = intent_of(&app, &b, id).await;
        let res = post(&app, who, &format!("/{id}/cancel"), None).await;
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
        assert_eq!(intent(pi.clone()).await, "canceled");
        let ps = payments_of(&app, &b, id).await;
        assert_eq!(ps[0]["status"], "canceled", "{:?}", ps[0]);
        // A (forged or delayed) success of the cancelled intent changes nothing.
        let late = event(
            &format!("evt_h2_{pi}"),
            "payment_intent.succeeded",
            &pi,
            total,
            "succeeded",
        );
        assert_eq!(deliver_signed(&app, &late).await.status(), 200);
        assert!(
            eventually(Duration::from_secs(15), || async {
                outcome_of(&app, &format!("evt_h2_{pi}")).await.as_deref() == Some("ignored")
            })
            .await
        );
        assert_eq!(captured_total(&app, id).await, 0);
        assert_eq!(order_status(&app, &b, id).await, "cancelled");
    }

    // Processing: money may be on its way; neither the buyer nor staff may cancel.
    let (o, total) = stripe_order(&app, &b).await;
    let id = o["id"].as_str().unwrap();
    let pi = intent_of(&app, &b, id).await;
    let processing = event(
        "evt_h2_proc",
        "payment_intent.processing",
        &pi,
        total,
        "processing",
    );
    assert_eq!(deliver_signed(&app, &processing).await.status(), 200);
    assert!(
        eventually(Duration::from_secs(15), || async {
            outcome_of(&app, "evt_h2_proc").await.as_deref() == Some("applied")
        })
        .await
    );
    for who in [&b, &staff] {
        crate::helpers::refused(
            post(&app, who, &format!("/{id}/cancel"), None).await,
            409,
            "payment_in_progress",
        )
        .await;
    }
    assert_eq!(order_status(&app, &b, id).await, "pending_payment");
    assert_ne!(intent(pi).await, "canceled");
    assert_eq!(payments_of(&app, &b, id).await[0]["status"], "processing");
}

/// The unpaid-order job does not cancel an order whose intent it cannot cancel: with Stripe
/// unreachable (or refusing, as it does for an intent that is processing) the order waits
/// for the next run rather than being cancelled under money in flight, and the payment that
/// then arrives pays it.
#[tokio::test]
async fn the_unpaid_order_job_leaves_an_order_whose_intent_it_cannot_cancel() {
    let stripe = LocalStripe::start();
    let app = app_with_a_quick_unpaid_job(&stripe).await;
    let b = buyer(&app);
    let (o, total) = stripe_order(&app, &b).await;
    let id = o["id"].as_str().unwrap();
    let pi = intent_of(&app, &b, id).await;
    // Stripe goes away: the job cannot cancel the intent, sweep after sweep.
    drop(stripe);
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(order_status(&app, &b, id).await, "pending_payment");
    assert_eq!(
        payments_of(&app, &b, id).await[0]["status"],
        "requires_payment_method"
    );
    let paid = event(
        "evt_h2_late",
        "payment_intent.succeeded",
        &pi,
        total,
        "succeeded",
    );
    assert_eq!(deliver_signed(&app, &paid).await.status(), 200);
    assert!(
        eventually(Duration::from_secs(15), || async {
            order_status(&app, &b, id).await == "paid"
        })
        .await,
        "{:?}",
        history_notes(&app, id).await
    );
    assert_eq!(captured_total(&app, id).await, total);
    assert_eq!(app.events_of("payment.succeeded").await, 1);
}

/// A refund made on Stripe's side right after the capture, its `refund.created` delivered
/// before `payment_intent.succeeded`: not lost (its event is retried until the capture is
/// in), so the payment ends refunded in the ledger.
#[tokio::test]
async fn a_refund_event_delivered_before_its_capture_is_applied_once_the_capture_is() {
    let stripe = LocalStripe::start();
    let app = app_with_stripe(&stripe).await;
    let b = buyer(&app);
    let (o, total) = stripe_order(&app, &b).await;
    let id = o["id"].as_str().unwrap();
    let pi = intent_of(&app, &b, id).await;
    let refund = json!({
        "id": "evt_h4_refund", "object": "event", "type": "refund.created", "created": now(),
        "data": {"object": {"id": "re_h4", "object": "refund", "amount": total,
            "currency": "usd", "payment_intent": pi, "status": "succeeded"}}
    })
    .to_string();
    assert_eq!(deliver_signed(&app, &refund).await.status(), 200);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        outcome_of(&app, "evt_h4_refund").await.as_deref(),
        Some("pending"),
        "not settled before its capture"
    );
    let s = event(
        "evt_h4_ok",
        "payment_intent.succeeded",
        &pi,
        total,
        "succeeded",
    );
    assert_eq!(deliver_signed(&app, &s).await.status(), 200);
    // The relay retries a failing subscriber with backoff (2 s, 4 s, 8 s, …).
    assert!(
        eventually(Duration::from_secs(40), || async {
            outcome_of(&app, "evt_h4_refund").await.as_deref() == Some("applied")
        })
        .await
    );
    let ps = payments_of(&app, &b, id).await;
    assert_eq!(ps[0]["captured"], total);
    assert_eq!(
        ps[0]["refunded"], total,
        "the refund Stripe made is in the ledger"
    );
    assert_eq!(ps[0]["status"], "refunded");
    assert_eq!(order_status(&app, &b, id).await, "refunded");
    assert_eq!(app.events_of("payment.refunded").await, 1);
}

/// The buyer's cancel racing the intent's `succeeded` webhook, over several orders: they
/// take turns on the order's lock, so each order ends either cancelled with its intent
/// cancelled and nothing captured, or paid first (one capture) and then cancelled as a
/// paid order (`was_paid`: a refund is due), never money captured on an order cancelled
/// before it, and never two captures.
#[tokio::test]
async fn a_cancel_racing_the_intents_success_leaves_no_untraced_money() {
    let stripe = LocalStripe::start();
    let app = app_with_stripe(&stripe).await;
    let b = buyer(&app);
    let mut orders = Vec::new();
    for _ in 0..5 {
        let (o, total) = stripe_order(&app, &b).await;
        let id = o["id"].as_str().unwrap().to_owned();
        let p: Value = post(&app, &b, &format!("/{id}/payment"), None)
            .await
            .json()
            .await
            .unwrap();
        orders.push((id, p["reference"].as_str().unwrap().to_owned(), total));
    }
    let paths: Vec<String> = orders
        .iter()
        .map(|(id, _, _)| format!("/{id}/cancel"))
        .collect();
    // Staggered, so that some cancels come before the subscriber applies the success and
    // some after (the assertions hold either way).
    let (app_ref, b_ref) = (&app, &b);
    let cancels = paths.iter().enumerate().map(|(i, path)| async move {
        tokio::time::sleep(Duration::from_millis(100 * i as u64)).await;
        post(app_ref, b_ref, path, None).await
    });
    let bodies: Vec<String> = orders
        .iter()
        .map(|(_, pi, total)| {
            event(
                &format!("evt_race_{pi}"),
                "payment_intent.succeeded",
                pi,
                *total,
                "succeeded",
            )
        })
        .collect();
    let webhooks = bodies.iter().map(|body| deliver_signed(&app, body));
    let (cancelled, delivered) = futures_util::future::join(
        crate::helpers::statuses_of(cancels),
        crate::helpers::statuses_of(webhooks),
    )
    .await;
    assert!(delivered.iter().all(|s| *s == 200), "{delivered:?}");
    assert!(cancelled.iter().all(|s| *s == 200), "{cancelled:?}");
    assert!(
        eventually(Duration::from_secs(20), || async {
            let pending: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM orders.provider_events WHERE outcome = 'pending'",
            )
            .fetch_one(&app.db)
            .await
            .unwrap();
            pending == 0
        })
        .await
    );
    for (id, _, total) in &orders {
        let captured = captured_total(&app, id).await;
        let status = order_status(&app, &b, id).await;
        let notes = history_notes(&app, id).await;
        let paid_first = notes.iter().any(|(to, _)| to == "paid");
        let ps = payments_of(&app, &b, id).await;
        assert_eq!(ps.len(), 1, "{ps:?}");
        assert_eq!(status, "cancelled", "{notes:?}");
        if paid_first {
            assert_eq!(captured, *total, "{notes:?}");
            assert_eq!(ps[0]["status"], "succeeded");
        } else {
            assert_eq!(captured, 0, "{notes:?}");
            assert_eq!(ps[0]["status"], "canceled");
        }
    }
}

/// The unpaid-order job cancels the order's open intent at Stripe before the order.
#[tokio::test]
async fn the_unpaid_order_job_cancels_the_open_intent_at_stripe() {
    let stripe = LocalStripe::start();
    let app = app_with_a_quick_unpaid_job(&stripe).await;
    let b = buyer(&app);
    let (o, _) = stripe_order(&app, &b).await;
    let id = o["id"].as_str().unwrap();
    let pi = intent_of(&app, &b, id).await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            order_status(&app, &b, id).await == "cancelled"
        })
        .await
    );
    assert_eq!(payments_of(&app, &b, id).await[0]["status"], "canceled");
    let at_stripe: Value = reqwest::Client::new()
        .get(format!("{}/v1/payment_intents/{pi}", stripe.url))
        .bearer_auth(SECRET_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(at_stripe["status"], "canceled");
}

/// Two refunds pending at Stripe at once (1200 and 800 of a 2000 payment): the first one's
/// success counts only itself — the payment is partially refunded, the order (still to be
/// fulfilled) stays paid, and `payment.refunded` tells 1200, not the 2000 held — and the
/// second one's failure gives its 800 back without moving anything.
#[tokio::test]
async fn two_pending_refunds_the_first_success_counts_only_itself() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, ResponseTemplate};
    let server = intents_at("pi_two").await;
    for (re, amount) in [("re_two_a", 1200), ("re_two_b", 800)] {
        Mock::given(method("POST"))
            .and(path("/v1/refunds"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "id": re, "object": "refund", "status": "pending", "amount": amount,
                "currency": "usd", "payment_intent": "pi_two"})))
            .up_to_n_times(1)
            .mount(&server)
            .await;
    }
    let app = app_on(&server, &[]).await;
    let b = buyer(&app);
    let (o, total) = stripe_order(&app, &b).await;
    assert_eq!(total, 2000);
    let id = o["id"].as_str().unwrap();
    assert_eq!(
        post(&app, &b, &format!("/{id}/payment"), None)
            .await
            .status(),
        201
    );
    paid_by_webhook(&app, &b, id, "evt_two_paid", "pi_two", total).await;
    let r = refunder(&app);
    for amount in [1200, 800] {
        let res = refund(&app, &r, id, Some(json!({ "amount": amount }))).await;
        assert_eq!(res.status(), 201);
    }
    let updated = |evt: &str, re: &str, amount: i64, status: &str| {
        json!({"id": evt, "object": "event", "type": "refund.updated", "created": now(),
            "data": {"object": {"id": re, "object": "refund", "amount": amount,
                "currency": "usd", "payment_intent": "pi_two", "status": status,
                "failure_reason": "expired_or_canceled_card"}}})
        .to_string()
    };
    let a = updated("evt_two_a", "re_two_a", 1200, "succeeded");
    assert_eq!(deliver_signed(&app, &a).await.status(), 200);
    assert!(
        eventually(Duration::from_secs(15), || async {
            outcome_of(&app, "evt_two_a").await.as_deref() == Some("applied")
        })
        .await
    );
    let ps = payments_of(&app, &b, id).await;
    assert_eq!(ps[0]["status"], "partially_refunded", "{:?}", ps[0]);
    assert_eq!(ps[0]["refunded"], 1200);
    assert_eq!(ps[0]["refund_pending"], 800);
    assert_eq!(order_status(&app, &b, id).await, "paid");
    let told: Value = sqlx::query_scalar(
        "SELECT payload FROM platform.outbox WHERE event_type = 'payment.refunded'
          ORDER BY seq DESC LIMIT 1",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(told["refunded"], 1200, "{told}");
    assert_eq!(told["order_status"], "paid", "{told}");
    let bad = updated("evt_two_b", "re_two_b", 800, "failed");
    assert_eq!(deliver_signed(&app, &bad).await.status(), 200);
    assert!(
        eventually(Duration::from_secs(15), || async {
            payments_of(&app, &b, id).await[0]["refund_pending"] == 0
        })
        .await
    );
    let ps = payments_of(&app, &b, id).await;
    assert_eq!(ps[0]["status"], "partially_refunded");
    assert_eq!(ps[0]["refunded"], 1200);
    assert_eq!(order_status(&app, &b, id).await, "paid");
}

/// Stripe may fail a refund after reporting it succeeded (the money comes back): the order's
/// history tells staff to refund the buyer another way, rather than the event being ignored.
#[tokio::test]
async fn a_refund_that_fails_after_succeeding_is_put_before_staff() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, ResponseTemplate};
    let server = intents_at("pi_back").await;
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "re_back", "object": "refund", "status": "succeeded", "amount": 500,
            "currency": "usd", "payment_intent": "pi_back"})))
        .mount(&server)
        .await;
    let app = app_on(&server, &[]).await;
    let b = buyer(&app);
    let (o, total) = stripe_order(&app, &b).await;
    let id = o["id"].as_str().unwrap();
    assert_eq!(
        post(&app, &b, &format!("/{id}/payment"), None)
            .await
            .status(),
        201
    );
    paid_by_webhook(&app, &b, id, "evt_back_paid", "pi_back", total).await;
    let r = refunder(&app);
    let res = refund(&app, &r, id, Some(json!({ "amount": 500 }))).await;
    assert_eq!(res.status(), 201);
    let failed = json!({"id": "evt_back_failed", "object": "event", "type": "refund.updated",
        "created": now(), "data": {"object": {"id": "re_back", "object": "refund",
            "amount": 500, "currency": "usd", "payment_intent": "pi_back", "status": "failed",
            "failure_reason": "expired_or_canceled_card"}}})
    .to_string();
    assert_eq!(deliver_signed(&app, &failed).await.status(), 200);
    assert!(
        eventually(Duration::from_secs(15), || async {
            outcome_of(&app, "evt_back_failed").await.as_deref() == Some("applied")
        })
        .await
    );
    let notes = history_notes(&app, id).await;
    let (_, note) = notes.last().unwrap();
    let note = note.as_deref().unwrap();
    assert!(
        note.contains("re_back") && note.contains("failed after it succeeded"),
        "{note}"
    );
}
