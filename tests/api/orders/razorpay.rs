//! Razorpay through HTTP. No maintained fake of Razorpay exists, so an in-test server
//! (`wiremock`) answers its Orders and order-payments API with the documented shapes and
//! checks Basic auth; the checkout callback and the webhooks are signed here, independently
//! of the code under test (hex HMAC-SHA256 of `"{order_id}|{payment_id}"` with the key
//! secret, and of the raw body with the webhook secret).

use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;
use uuid::Uuid;
use wiremock::matchers::{basic_auth, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::payments::payments_of;
use super::stripe::{env_refs, order_status};
use super::*;
use crate::helpers::{TestApp, eventually, refused, spawn_app_with};

const KEY_ID: &str = "rzp_test_basalt";
const KEY_SECRET: &str = "key_secret_0123456789";
const WEBHOOK_SECRET: &str = "webhook_secret_9876543210";

fn hmac_hex(secret: &str, message: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Razorpay's API in the test: `POST /v1/orders` opens `rzp_order` for whatever amount is
/// asked, `GET /v1/orders/{rzp_order}/payments` lists `payments`.
pub async fn razorpay(rzp_order: &str, payments: Value) -> MockServer {
    let server = MockServer::start().await;
    let id = rzp_order.to_owned();
    Mock::given(method("POST"))
        .and(path("/v1/orders"))
        .and(basic_auth(KEY_ID, KEY_SECRET))
        .respond_with(move |req: &wiremock::Request| {
            let asked: Value = serde_json::from_slice(&req.body).unwrap();
            ResponseTemplate::new(200).set_body_json(json!({
                "id": id, "entity": "order", "amount": asked["amount"],
                "amount_paid": 0, "amount_due": asked["amount"], "currency": asked["currency"],
                "receipt": asked["receipt"], "status": "created", "attempts": 0,
                "notes": asked["notes"], "created_at": 1_700_000_000
            }))
        })
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/orders/{rzp_order}/payments")))
        .and(basic_auth(KEY_ID, KEY_SECRET))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "entity": "collection", "count": payments.as_array().unwrap().len(), "items": payments
        })))
        .mount(&server)
        .await;
    server
}

fn captured(pay: &str, rzp_order: &str, amount: i64) -> Value {
    json!({
        "id": pay, "entity": "payment", "amount": amount, "currency": "USD",
        "status": "captured", "order_id": rzp_order, "method": "card", "captured": true,
        "fee": 0, "tax": 0, "error_description": null, "created_at": 1_700_000_100
    })
}

/// The settings that point Razorpay at `server`.
pub fn razorpay_env(server: &MockServer) -> Vec<(&'static str, String)> {
    vec![
        ("BASALT__ORDERS__RAZORPAY__KEY_ID", KEY_ID.into()),
        ("BASALT__ORDERS__RAZORPAY__KEY_SECRET", KEY_SECRET.into()),
        (
            "BASALT__ORDERS__RAZORPAY__WEBHOOK_SECRET",
            WEBHOOK_SECRET.into(),
        ),
        ("BASALT__ORDERS__RAZORPAY__BASE_URL", server.uri()),
    ]
}

async fn app_with_razorpay(server: &MockServer) -> TestApp {
    let mut env = razorpay_env(server);
    env.push(("BASALT__RATE_LIMIT__ENABLED", "false".into()));
    spawn_app_with(&env_refs(&env)).await
}

/// A placed order of `who` to be paid with Razorpay, and its payment started: (order id,
/// total, the payment's `client`).
async fn started(app: &TestApp, who: &Actor) -> (String, i64, Value) {
    let s = seller(app);
    let (_, v) = stocked(app, &s, 10, 1000).await;
    let cart = cart_with(app, who, &[(&v, 2)]).await;
    let res = app
        .as_user(Method::POST, "/api/v1/orders", &who.token)
        .header("Idempotency-Key", Uuid::now_v7().to_string())
        .json(&json!({ "cart_id": cart, "payment_provider": "razorpay" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let o: Value = res.json().await.unwrap();
    let id = o["id"].as_str().unwrap().to_owned();
    let res = app
        .as_user(
            Method::POST,
            &format!("/api/v1/orders/{id}/payment"),
            &who.token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let p: Value = res.json().await.unwrap();
    (id, o["total"].as_i64().unwrap(), p["client"].clone())
}

async fn callback(
    app: &TestApp,
    token: Option<&str>,
    order: &str,
    body: Value,
) -> reqwest::Response {
    let url = format!("/api/v1/orders/{order}/payment/razorpay");
    match token {
        Some(t) => app.as_user(Method::POST, &url, t),
        None => app.client.post(app.url(&url)),
    }
    .json(&body)
    .send()
    .await
    .unwrap()
}

#[tokio::test]
async fn a_razorpay_checkout_callback_pays_the_order_after_asking_razorpay() {
    let rzp_order = "order_RB58MiP5SPFYyM";
    let server = razorpay(rzp_order, json!([])).await;
    let app = app_with_razorpay(&server).await;
    let who = buyer(&app);
    let (id, total, client) = started(&app, &who).await;
    assert_eq!(client["order_id"], rzp_order);
    assert_eq!(client["key_id"], KEY_ID);
    assert_eq!(client["amount"], total);
    // Razorpay now says the payment was captured (the mock's list is replaced).
    server.reset().await;
    let items = json!([captured("pay_29QQoUBi66xm2f", rzp_order, total)]);
    Mock::given(method("GET"))
        .and(path(format!("/v1/orders/{rzp_order}/payments")))
        .and(basic_auth(KEY_ID, KEY_SECRET))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "entity": "collection", "count": 1, "items": items })),
        )
        .mount(&server)
        .await;

    let pay = "pay_29QQoUBi66xm2f";
    let good = hmac_hex(KEY_SECRET, &format!("{rzp_order}|{pay}"));
    let stranger = buyer(&app);
    let body = json!({ "razorpay_order_id": rzp_order, "razorpay_payment_id": pay,
                       "razorpay_signature": good });

    // Anonymous: 401; another buyer: 404 (the order is not theirs).
    assert_eq!(callback(&app, None, &id, body.clone()).await.status(), 401);
    refused(
        callback(&app, Some(&stranger.token), &id, body.clone()).await,
        404,
        "not_found",
    )
    .await;
    // A tampered signature, one made with the webhook secret, one for another payment id.
    for sig in [
        format!("{}0", &good[..good.len() - 1]),
        hmac_hex(WEBHOOK_SECRET, &format!("{rzp_order}|{pay}")),
        hmac_hex(KEY_SECRET, &format!("{rzp_order}|pay_someoneelse")),
    ] {
        refused(
            callback(
                &app,
                Some(&who.token),
                &id,
                json!({ "razorpay_order_id": rzp_order, "razorpay_payment_id": pay,
                        "razorpay_signature": sig }),
            )
            .await,
            400,
            "invalid_signature",
        )
        .await;
    }
    // Another Razorpay order's genuine signature: not this order's payment.
    refused(
        callback(
            &app,
            Some(&who.token),
            &id,
            json!({ "razorpay_order_id": "order_other", "razorpay_payment_id": pay,
                    "razorpay_signature": hmac_hex(KEY_SECRET, &format!("order_other|{pay}")) }),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    // Bad bodies.
    for bad in [
        json!({}),
        json!({ "razorpay_order_id": rzp_order }),
        json!([1]),
    ] {
        let res = callback(&app, Some(&who.token), &id, bad).await;
        assert!(
            res.status() == 400 || res.status() == 422,
            "{}",
            res.status()
        );
    }
    assert_eq!(order_status(&app, &who, &id).await, "pending_payment");

    // The genuine callback: Razorpay is asked, the capture is applied, the order is paid.
    let res = callback(&app, Some(&who.token), &id, body.clone()).await;
    assert_eq!(res.status(), 200);
    let p: Value = res.json().await.unwrap();
    assert_eq!(p["status"], "succeeded");
    assert_eq!(p["captured"], total);
    assert_eq!(order_status(&app, &who, &id).await, "paid");
    // The same callback again (a reload): nothing more is recorded.
    assert_eq!(
        callback(&app, Some(&who.token), &id, body).await.status(),
        200
    );
    let payments = payments_of(&app, &who, &id).await;
    assert_eq!(payments.len(), 1);
    let ledger = payments[0]["ledger"].as_array().unwrap();
    let captures: Vec<&Value> = ledger.iter().filter(|l| l["kind"] == "captured").collect();
    assert_eq!(captures.len(), 1, "{ledger:?}");
    assert_eq!(captures[0]["provider_reference"], pay);
    assert_eq!(captures[0]["amount"], total);
}

fn webhook_body(kind: &str, rzp_order: &str, pay: &str, amount: i64) -> String {
    json!({
        "entity": "event", "account_id": "acc_BFQ7uQEaa7j2z7", "event": kind,
        "contains": ["payment"], "created_at": chrono::Utc::now().timestamp(),
        "payload": { "payment": { "entity": {
            "id": pay, "entity": "payment", "amount": amount, "currency": "USD",
            "status": "captured", "order_id": rzp_order, "method": "upi", "captured": true,
            "fee": 0, "tax": 0, "notes": [], "error_description": null,
            "created_at": 1_700_000_100
        }}}
    })
    .to_string()
}

async fn deliver(
    app: &TestApp,
    body: &str,
    signature: Option<String>,
    event_id: Option<&str>,
) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url("/api/v1/orders/webhooks/razorpay"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(s) = signature {
        req = req.header("X-Razorpay-Signature", s);
    }
    if let Some(id) = event_id {
        req = req.header("x-razorpay-event-id", id);
    }
    req.send().await.unwrap()
}

async fn outcome_of(app: &TestApp, event_id: &str) -> Option<String> {
    event_outcome(app, "razorpay", event_id).await
}

#[tokio::test]
async fn razorpay_webhooks_are_verified_recorded_once_and_pay_the_order() {
    let rzp_order = "order_IluGWxBm9U8zJ8";
    let server = razorpay(rzp_order, json!([])).await;
    let app = app_with_razorpay(&server).await;
    let who = buyer(&app);
    let (id, total, _) = started(&app, &who).await;
    let pay = "pay_IH4NVgf4Dreq1l";
    let body = webhook_body("payment.captured", rzp_order, pay, total);
    let good = hmac_hex(WEBHOOK_SECRET, &body);

    // Missing, tampered and wrong-secret signatures; a missing event id.
    refused(
        deliver(&app, &body, None, Some("evt_1")).await,
        400,
        "invalid_signature",
    )
    .await;
    let tampered = body.replace(&total.to_string(), &(total + 1).to_string());
    refused(
        deliver(&app, &tampered, Some(good.clone()), Some("evt_1")).await,
        400,
        "invalid_signature",
    )
    .await;
    refused(
        deliver(
            &app,
            &body,
            Some(hmac_hex(KEY_SECRET, &body)),
            Some("evt_1"),
        )
        .await,
        400,
        "invalid_signature",
    )
    .await;
    assert_eq!(
        deliver(&app, &body, Some(good.clone()), None)
            .await
            .status(),
        400
    );
    assert_eq!(outcome_of(&app, "evt_1").await, None);
    assert_eq!(order_status(&app, &who, &id).await, "pending_payment");

    // The genuine event ten times at once: recorded once, applied once.
    let sends = (0..10).map(|_| deliver(&app, &body, Some(good.clone()), Some("evt_1")));
    let results = futures_util::future::join_all(sends).await;
    let mut recorded = 0;
    for res in results {
        assert_eq!(res.status(), 200);
        if res.json::<Value>().await.unwrap()["recorded"] == true {
            recorded += 1;
        }
    }
    assert_eq!(recorded, 1);
    assert!(
        eventually(Duration::from_secs(10), || async {
            order_status(&app, &who, &id).await == "paid"
        })
        .await
    );
    // `order.paid` names the same capture: a second event, no second ledger row.
    let order_paid = json!({
        "entity": "event", "event": "order.paid", "contains": ["payment", "order"],
        "created_at": chrono::Utc::now().timestamp(),
        "payload": {
            "payment": { "entity": { "id": pay, "entity": "payment", "amount": total,
                "currency": "USD", "status": "captured", "order_id": rzp_order,
                "captured": true, "fee": 0, "notes": [], "created_at": 1_700_000_100 } },
            "order": { "entity": { "id": rzp_order, "entity": "order", "amount": total,
                "amount_paid": total, "amount_due": 0, "currency": "USD", "status": "paid",
                "notes": { "basalt_order_id": id }, "created_at": 1_700_000_000 } }
        }
    })
    .to_string();
    let res = deliver(
        &app,
        &order_paid,
        Some(hmac_hex(WEBHOOK_SECRET, &order_paid)),
        Some("evt_2"),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert!(
        eventually(Duration::from_secs(10), || async {
            outcome_of(&app, "evt_2").await.as_deref() == Some("ignored")
        })
        .await
    );
    let payments = payments_of(&app, &who, &id).await;
    let captures = payments[0]["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["kind"] == "captured")
        .count();
    assert_eq!(captures, 1);

    // An event for a Razorpay order that is not ours: 200, kept as an orphan.
    let stray = webhook_body("payment.captured", "order_notours", "pay_x", 100);
    assert_eq!(
        deliver(
            &app,
            &stray,
            Some(hmac_hex(WEBHOOK_SECRET, &stray)),
            Some("evt_3")
        )
        .await
        .status(),
        200
    );
    assert!(
        eventually(Duration::from_secs(10), || async {
            outcome_of(&app, "evt_3").await.as_deref() == Some("orphan")
        })
        .await
    );
}

#[tokio::test]
async fn razorpay_routes_are_404_where_it_is_not_configured() {
    let app = crate::helpers::spawn_app().await;
    let who = buyer(&app);
    let body = webhook_body("payment.captured", "order_x", "pay_x", 100);
    refused(
        deliver(
            &app,
            &body,
            Some(hmac_hex(WEBHOOK_SECRET, &body)),
            Some("evt_1"),
        )
        .await,
        404,
        "provider_not_configured",
    )
    .await;
    let (order, _) = simple_order(&app, &who).await;
    let id = order["id"].as_str().unwrap();
    refused(
        callback(
            &app,
            Some(&who.token),
            id,
            json!({ "razorpay_order_id": "order_x", "razorpay_payment_id": "pay_x",
                    "razorpay_signature": "00" }),
        )
        .await,
        404,
        "provider_not_configured",
    )
    .await;
}

/// Razorpay's orders cannot be cancelled: the order's cancel goes through and leaves the
/// payment open, and a capture Razorpay reports afterwards moves the cancelled order to
/// `requires_attention` with a history note telling staff to refund it.
#[tokio::test]
async fn a_razorpay_capture_after_the_cancel_puts_the_order_before_staff() {
    let rzp_order = "order_LateCapture0001";
    let server = razorpay(rzp_order, json!([])).await;
    let app = app_with_razorpay(&server).await;
    let who = buyer(&app);
    let (id, total, _) = started(&app, &who).await;
    let res = post(&app, &who, &format!("/{id}/cancel"), None).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    assert_eq!(
        payments_of(&app, &who, &id).await[0]["status"],
        "requires_payment_method",
        "left open: Razorpay cannot cancel it"
    );
    let pay = "pay_LateCapture0001";
    let body = webhook_body("payment.captured", rzp_order, pay, total);
    let sig = hmac_hex(WEBHOOK_SECRET, &body);
    assert_eq!(
        deliver(&app, &body, Some(sig), Some("evt_late_capture"))
            .await
            .status(),
        200
    );
    assert!(
        eventually(Duration::from_secs(15), || async {
            order_status(&app, &who, &id).await == "requires_attention"
        })
        .await
    );
    let note: Option<String> = sqlx::query_scalar(
        "SELECT note FROM orders.order_history WHERE order_id = $1::uuid ORDER BY id DESC LIMIT 1",
    )
    .bind(&id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    let note = note.unwrap();
    assert!(note.contains("after cancel: refund it"), "{note}");
    assert_eq!(payments_of(&app, &who, &id).await[0]["captured"], total);
    // Its stock went back at the cancel: there is nothing to fulfil, only a refund.
    refused(
        post(&app, &manager(&app), &format!("/{id}/process"), None).await,
        409,
        "paid_after_cancel",
    )
    .await;
    assert_eq!(order_status(&app, &who, &id).await, "requires_attention");
}
