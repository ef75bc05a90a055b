//! Payments with the `manual` provider and what every provider shares: starting (once,
//! however many calls race), the ledger, `mark-paid` through the same path, refunds within
//! what was captured (also under concurrency), who may do what, and a provider that is not
//! configured (absent from capabilities, its routes a 404).

use reqwest::Method;
use serde_json::{Value, json};

use super::*;
use crate::helpers::{TestApp, refused, spawn_app, statuses_of};

async fn status_json(res: reqwest::Response, status: u16) -> Value {
    let got = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(got, status, "{body}");
    body
}

/// Staff who refund.
pub fn refunder(app: &TestApp) -> crate::catalog::Actor {
    crate::catalog::staff(app, &["orders.refund", "orders.manage"])
}

/// `POST /orders/{id}/refunds` as `who`, with a fresh `Idempotency-Key` (a new refund).
pub async fn refund(
    app: &TestApp,
    who: &crate::catalog::Actor,
    id: &str,
    body: Option<Value>,
) -> reqwest::Response {
    refund_keyed(app, who, id, body, &uuid::Uuid::now_v7().to_string()).await
}

/// `POST /orders/{id}/refunds` as `who` under `key` (a retry sends the same one).
pub async fn refund_keyed(
    app: &TestApp,
    who: &crate::catalog::Actor,
    id: &str,
    body: Option<Value>,
    key: &str,
) -> reqwest::Response {
    let mut req = app
        .as_user(
            Method::POST,
            &format!("/api/v1/orders/{id}/refunds"),
            &who.token,
        )
        .header("Idempotency-Key", key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap()
}

pub async fn payments_of(app: &TestApp, who: &crate::catalog::Actor, id: &str) -> Vec<Value> {
    let res = app
        .as_user(
            Method::GET,
            &format!("/api/v1/orders/{id}/payments"),
            &who.token,
        )
        .send()
        .await
        .unwrap();
    status_json(res, 200).await.as_array().unwrap().clone()
}

#[tokio::test]
async fn a_manual_payment_starts_once_and_mark_paid_records_it_in_the_ledger() {
    let app = spawn_app().await;
    let b = buyer(&app);
    let (o, _) = simple_order(&app, &b).await;
    let id = o["id"].as_str().unwrap();
    let total = o["total"].as_i64().unwrap();

    let first = status_json(post(&app, &b, &format!("/{id}/payment"), None).await, 201).await;
    assert_eq!(first["provider"], "manual");
    assert_eq!(first["status"], "requires_payment_method");
    assert_eq!(first["amount"], total);
    assert_eq!(first["captured"], 0);
    assert!(
        first["client"]["instructions"]
            .as_str()
            .unwrap()
            .contains(o["number"].as_str().unwrap()),
        "{first}"
    );
    // Again, with the provider named: the same payment, 200.
    let again = status_json(
        post(
            &app,
            &b,
            &format!("/{id}/payment"),
            Some(json!({"provider": "manual"})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["reference"], first["reference"]);
    assert_eq!(payments_of(&app, &b, id).await.len(), 1);

    let staff = manager(&app);
    let paid = status_json(
        post(&app, &staff, &format!("/{id}/mark-paid"), None).await,
        200,
    )
    .await;
    assert_eq!(paid["status"], "paid");
    let ps = payments_of(&app, &b, id).await;
    assert_eq!(ps.len(), 1, "mark-paid finished the open payment: {ps:?}");
    assert_eq!(ps[0]["id"], first["id"]);
    assert_eq!(ps[0]["status"], "succeeded");
    assert_eq!(ps[0]["captured"], total);
    let ledger = ps[0]["ledger"].as_array().unwrap();
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    assert_eq!(ledger[0]["kind"], "captured");
    assert_eq!(ledger[0]["amount"], total);
    assert_eq!(ledger[0]["currency"], "USD");
    assert_eq!(app.events_of("payment.succeeded").await, 1);
    assert_eq!(app.events_of("order.paid").await, 1);

    // Paid: no more payments (409 naming the status), and the ledger refuses changes.
    let p = refused(
        post(&app, &b, &format!("/{id}/payment"), None).await,
        409,
        "invalid_transition",
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("paid"), "{p}");
    let err = sqlx::query("UPDATE orders.payment_ledger SET amount = 1")
        .execute(&app.db)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    assert!(
        sqlx::query("DELETE FROM orders.payment_ledger")
            .execute(&app.db)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn mark_paid_without_a_started_payment_records_one() {
    let app = spawn_app().await;
    let b = buyer(&app);
    let (o, _) = simple_order(&app, &b).await;
    let id = o["id"].as_str().unwrap();
    let staff = manager(&app);
    status_json(
        post(&app, &staff, &format!("/{id}/mark-paid"), None).await,
        200,
    )
    .await;
    let ps = payments_of(&app, &staff, id).await;
    assert_eq!(ps.len(), 1);
    assert_eq!(ps[0]["provider"], "manual");
    assert_eq!(ps[0]["status"], "succeeded");
    assert_eq!(ps[0]["ledger"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn ten_concurrent_starts_open_one_payment() {
    let app = spawn_app().await;
    let b = buyer(&app);
    let (o, _) = simple_order(&app, &b).await;
    let id = o["id"].as_str().unwrap();
    let path = format!("/api/v1/orders/{id}/payment");
    let responses = futures_util::future::join_all(
        (0..10).map(|_| app.as_user(Method::POST, &path, &b.token).send()),
    )
    .await;
    let mut ids = Vec::new();
    let mut created = 0;
    for r in responses {
        let r = r.unwrap();
        let status = r.status().as_u16();
        assert!(status == 200 || status == 201, "{status}");
        created += usize::from(status == 201);
        let body: Value = r.json().await.unwrap();
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(created, 1);
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(payments_of(&app, &b, id).await.len(), 1);
}

#[tokio::test]
async fn payments_are_the_buyers_and_staffs_and_refunds_need_orders_refund() {
    let app = spawn_app().await;
    let b = buyer(&app);
    let (o, _) = simple_order(&app, &b).await;
    let id = o["id"].as_str().unwrap();
    let other = buyer(&app);
    refused(
        post(&app, &other, &format!("/{id}/payment"), None).await,
        404,
        "not_found",
    )
    .await;
    let res = app
        .as_user(
            Method::GET,
            &format!("/api/v1/orders/{id}/payments"),
            &other.token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    for (method, path) in [
        (Method::POST, format!("/api/v1/orders/{id}/payment")),
        (Method::GET, format!("/api/v1/orders/{id}/payments")),
        (Method::POST, format!("/api/v1/orders/{id}/refunds")),
    ] {
        let res = app
            .client
            .request(method, app.url(&path))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{path}");
    }
    // Staff see it; the buyer and `orders.manage` alone may not refund.
    let staff = manager(&app);
    assert_eq!(payments_of(&app, &staff, id).await.len(), 0);
    status_json(
        post(&app, &staff, &format!("/{id}/mark-paid"), None).await,
        200,
    )
    .await;
    refused(refund(&app, &b, id, None).await, 403, "forbidden").await;
    refused(refund(&app, &staff, id, None).await, 403, "forbidden").await;
    // Bad bodies: 422 / 400, never the default.
    let r = refunder(&app);
    refused(
        refund(&app, &r, id, Some(json!({"amount": 0}))).await,
        422,
        "validation_failed",
    )
    .await;
    let res = app
        .as_user(
            Method::POST,
            &format!("/api/v1/orders/{id}/refunds"),
            &r.token,
        )
        .header("content-type", "application/json")
        .body("{\"amount\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    refused(
        post(
            &app,
            &b,
            &format!("/{id}/payment"),
            Some(json!({"provider": 5})),
        )
        .await,
        400,
        "invalid_body",
    )
    .await;
    assert_eq!(payments_of(&app, &b, id).await[0]["refunded"], 0);
}

#[tokio::test]
async fn refunds_go_up_to_what_was_captured_and_move_the_order() {
    let app = spawn_app().await;
    let b = buyer(&app);
    let (o, _) = simple_order(&app, &b).await;
    let id = o["id"].as_str().unwrap();
    let total = o["total"].as_i64().unwrap();
    let staff = manager(&app);
    let r = refunder(&app);
    // Nothing captured yet: nothing to refund.
    refused(
        refund(&app, &r, id, None).await,
        409,
        "refund_exceeds_captured",
    )
    .await;
    status_json(
        post(&app, &staff, &format!("/{id}/mark-paid"), None).await,
        200,
    )
    .await;

    let part = status_json(
        refund(
            &app,
            &r,
            id,
            Some(json!({"amount": 500, "reason": "a cup broke"})),
        )
        .await,
        201,
    )
    .await;
    // The order is still to be fulfilled: a partial refund does not move it.
    assert_eq!(part["order_status"], "paid");
    assert_eq!(part["payment"]["refunded"], 500);
    assert_eq!(part["payment"]["status"], "partially_refunded");
    let p = refused(
        refund(&app, &r, id, Some(json!({"amount": total}))).await,
        409,
        "refund_exceeds_captured",
    )
    .await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains(&(total - 500).to_string()),
        "{p}"
    );
    let rest = status_json(refund(&app, &r, id, None).await, 201).await;
    assert_eq!(rest["order_status"], "refunded");
    assert_eq!(rest["payment"]["refunded"], total);
    assert_eq!(rest["payment"]["status"], "refunded");
    let kinds: Vec<(String, i64)> = rest["payment"]["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["kind"].as_str().unwrap().to_owned(),
                l["amount"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("captured".to_owned(), total),
            ("refunded".to_owned(), 500),
            ("refunded".to_owned(), total - 500)
        ]
    );
    assert_eq!(app.events_of("payment.refunded").await, 2);
    let order: Value = app.json_as(&format!("/api/v1/orders/{id}"), &b.token).await;
    assert_eq!(order["status"], "refunded");
    refused(
        refund(&app, &r, id, None).await,
        409,
        "refund_exceeds_captured",
    )
    .await;
}

#[tokio::test]
async fn ten_concurrent_refunds_that_exceed_the_capture_let_only_those_that_fit_through() {
    let app = spawn_app().await;
    let b = buyer(&app);
    let (o, _) = simple_order(&app, &b).await;
    let id = o["id"].as_str().unwrap();
    let total = o["total"].as_i64().unwrap();
    status_json(
        post(&app, &manager(&app), &format!("/{id}/mark-paid"), None).await,
        200,
    )
    .await;
    let r = refunder(&app);
    let each = total / 4 + 1; // four would exceed it: three fit
    let path = format!("/api/v1/orders/{id}/refunds");
    let statuses = statuses_of((0..10).map(|_| {
        let req = app
            .as_user(Method::POST, &path, &r.token)
            .header("Idempotency-Key", uuid::Uuid::now_v7().to_string())
            .json(&json!({ "amount": each }));
        async move { req.send().await.unwrap() }
    }))
    .await;
    let fit = (total / each) as usize;
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        fit,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        10 - fit,
        "{statuses:?}"
    );
    let ps = payments_of(&app, &b, id).await;
    assert_eq!(ps[0]["refunded"], each * fit as i64);
    let refunds = ps[0]["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["kind"] == "refunded")
        .count();
    assert_eq!(refunds, fit);
}

#[tokio::test]
async fn a_provider_not_configured_is_absent_from_capabilities_and_its_routes_are_404() {
    let app = spawn_app().await;
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
        json!(["manual"]),
        "{orders}"
    );

    let res = app
        .client
        .post(app.url("/api/v1/orders/webhooks/stripe"))
        .header("Stripe-Signature", "t=1,v1=00")
        .body("{}")
        .send()
        .await
        .unwrap();
    refused(res, 404, "provider_not_configured").await;

    let b = buyer(&app);
    let (o, _) = simple_order(&app, &b).await;
    let id = o["id"].as_str().unwrap();
    refused(
        post(
            &app,
            &b,
            &format!("/{id}/payment"),
            Some(json!({"provider": "stripe"})),
        )
        .await,
        404,
        "provider_not_configured",
    )
    .await;
    // Checkout names only configured providers.
    let s = seller(&app);
    let (_, v) = stocked(&app, &s, 5, 100).await;
    let cart = cart_with(&app, &b, &[(&v, 1)]).await;
    let res = checkout_via(&app, &b, &cart, "stripe").await;
    let p = refused(res, 422, "payment_provider_unavailable").await;
    assert!(p["detail"].as_str().unwrap().contains("manual"), "{p}");
}

#[tokio::test]
async fn the_openapi_document_has_the_payment_routes_and_the_payment_status_enum() {
    let app = spawn_app().await;
    let doc: Value = app
        .get("/api-docs/openapi.json")
        .await
        .json()
        .await
        .unwrap();
    for (path, method) in [
        ("/api/v1/orders/{order}/payment", "post"),
        ("/api/v1/orders/{order}/payments", "get"),
        ("/api/v1/orders/{order}/refunds", "post"),
        ("/api/v1/orders/{order}/mark-paid", "post"),
        ("/api/v1/orders/webhooks/stripe", "post"),
        ("/api/v1/orders/webhooks/razorpay", "post"),
        ("/api/v1/orders/{order}/payment/razorpay", "post"),
    ] {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{path} {method}");
        assert!(
            op["responses"]["404"].is_object(),
            "{path}: its 404 problem"
        );
    }
    assert!(doc["paths"]["/api/v1/orders/{order}/refunds"]["post"]["responses"]["409"].is_object());
    let statuses = doc["components"]["schemas"]["PaymentStatus"]["enum"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(statuses, 9);
}

/// A refund double-submitted (a double click, a retry after a timeout) under one
/// `Idempotency-Key` refunds once: the retry replays the first answer
/// (`Idempotent-Replayed: true`), ten at once make one refund, the same key with another
/// body is a 422, and no key is a 400.
#[tokio::test]
async fn a_double_submitted_refund_refunds_once_and_replays_its_answer() {
    let app = spawn_app().await;
    let b = buyer(&app);
    let (o, _) = simple_order(&app, &b).await;
    let id = o["id"].as_str().unwrap();
    status_json(
        post(&app, &manager(&app), &format!("/{id}/mark-paid"), None).await,
        200,
    )
    .await;
    let r = refunder(&app);
    let key = uuid::Uuid::now_v7().to_string();
    let first = refund_keyed(&app, &r, id, Some(json!({"amount": 300})), &key).await;
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    let again = refund_keyed(&app, &r, id, Some(json!({"amount": 300})), &key).await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    // Ten at once under another key: one refund; the others replay it or are told the
    // first is still running.
    let key2 = uuid::Uuid::now_v7().to_string();
    let path = format!("/api/v1/orders/{id}/refunds");
    let statuses = statuses_of((0..10).map(|_| {
        let req = app
            .as_user(Method::POST, &path, &r.token)
            .header("Idempotency-Key", &key2)
            .json(&json!({ "amount": 200 }));
        async move { req.send().await.unwrap() }
    }))
    .await;
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    assert!(statuses.contains(&201), "{statuses:?}");
    let ps = payments_of(&app, &b, id).await;
    assert_eq!(ps[0]["refunded"], 500, "one refund per key");
    let refunds = ps[0]["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["kind"] == "refunded")
        .count();
    assert_eq!(refunds, 2);
    assert_eq!(app.events_of("payment.refunded").await, 2);
    // The same key with another amount: 422; without a key: 400. Nothing refunded.
    refused(
        refund_keyed(&app, &r, id, Some(json!({"amount": 100})), &key).await,
        422,
        "idempotency_key_reused",
    )
    .await;
    let res = app
        .as_user(Method::POST, &path, &r.token)
        .json(&json!({"amount": 100}))
        .send()
        .await
        .unwrap();
    refused(res, 400, "idempotency_key_missing").await;
    assert_eq!(payments_of(&app, &b, id).await[0]["refunded"], 500);
}

/// The payments list is its buyer's and staff's, read in one statement: an order without
/// payments is `[]`, another buyer's order and an order that does not exist are 404.
#[tokio::test]
async fn the_payments_list_is_empty_before_a_payment_and_404_for_others_and_unknown_orders() {
    let app = spawn_app().await;
    let b = buyer(&app);
    let (o, _) = simple_order(&app, &b).await;
    let id = o["id"].as_str().unwrap();
    assert!(payments_of(&app, &b, id).await.is_empty());
    let (other, staff) = (buyer(&app), manager(&app));
    for (who, order) in [
        (&other, id.to_owned()),
        (&b, uuid::Uuid::now_v7().to_string()),
        (&staff, uuid::Uuid::now_v7().to_string()),
    ] {
        let res = app
            .as_user(
                Method::GET,
                &format!("/api/v1/orders/{order}/payments"),
                &who.token,
            )
            .send()
            .await
            .unwrap();
        refused(res, 404, "not_found").await;
    }
    post(&app, &b, &format!("/{id}/payment"), None).await;
    status_json(
        post(&app, &staff, &format!("/{id}/mark-paid"), None).await,
        200,
    )
    .await;
    assert_eq!(payments_of(&app, &staff, id).await.len(), 1);
    let ps = payments_of(&app, &b, id).await;
    assert_eq!(ps.len(), 1);
    assert_eq!(ps[0]["status"], "succeeded");
    assert_eq!(ps[0]["ledger"][0]["kind"], "captured");
}

/// A partial refund of an order still being fulfilled leaves its fulfilment alone (it is
/// processed and shipped as before; the refund shows on the payment and in the history);
/// once delivered, another partial refund moves it to `partially_refunded`.
#[tokio::test]
async fn a_partial_refund_leaves_fulfilment_going_and_moves_only_a_delivered_order() {
    let app = spawn_app().await;
    let b = buyer(&app);
    let (o, _) = simple_order(&app, &b).await;
    let id = o["id"].as_str().unwrap();
    status_json(
        post(&app, &manager(&app), &format!("/{id}/mark-paid"), None).await,
        200,
    )
    .await;
    let r = refunder(&app);
    let body = status_json(
        refund(&app, &r, id, Some(json!({"amount": 100}))).await,
        201,
    )
    .await;
    assert_eq!(body["order_status"], "paid", "{body}");
    assert_eq!(body["payment"]["refunded"], 100);
    let notes: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT to_status, note FROM orders.order_history WHERE order_id = $1::uuid ORDER BY id",
    )
    .bind(id)
    .fetch_all(&app.db)
    .await
    .unwrap();
    let (to, note) = notes.last().unwrap();
    assert_eq!(to, "paid");
    assert!(note.as_deref().unwrap().contains("100 "), "{notes:?}");

    let warehouse = crate::catalog::staff(&app, &["orders.fulfil"]);
    status_json(
        post(&app, &warehouse, &format!("/{id}/process"), None).await,
        200,
    )
    .await;
    let part = o["sub_orders"][0]["id"].as_str().unwrap();
    status_json(
        post(
            &app,
            &warehouse,
            &format!("/{id}/sub-orders/{part}/ship"),
            Some(json!({"carrier": "DHL", "number": "JD1"})),
        )
        .await,
        200,
    )
    .await;
    status_json(
        post(
            &app,
            &warehouse,
            &format!("/{id}/sub-orders/{part}/deliver"),
            None,
        )
        .await,
        200,
    )
    .await;
    let order: Value = app.json_as(&format!("/api/v1/orders/{id}"), &b.token).await;
    assert_eq!(order["status"], "delivered");
    let body = status_json(
        refund(&app, &r, id, Some(json!({"amount": 100}))).await,
        201,
    )
    .await;
    assert_eq!(body["order_status"], "partially_refunded", "{body}");
    let body = status_json(refund(&app, &r, id, None).await, 201).await;
    assert_eq!(body["order_status"], "refunded", "{body}");
}
