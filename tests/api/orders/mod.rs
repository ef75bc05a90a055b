//! The orders domain through HTTP: checkout from carts built with the cart's routes (under
//! concurrency, with idempotency keys and discount limits), the order state machine,
//! payment, cancellation and fulfilment, who sees what, and the round-trip budget.

mod checkout;
mod lifecycle;
pub mod payments;
pub mod razorpay;
pub mod stripe;

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::catalog::{Actor, active_product, seller, staff};
use crate::helpers::TestApp;

/// A variant on sale by `who` with `on_hand` units at `price` minor units (USD); returns
/// (product id, variant id).
pub async fn stocked(app: &TestApp, who: &Actor, on_hand: i32, price: i64) -> (String, String) {
    let sku = format!("SKU-{}", Uuid::now_v7().simple());
    let p = active_product(
        app,
        who,
        json!({"title": "Teapot", "currency": "USD",
               "variants": [{"sku": sku, "price": price, "on_hand": on_hand}]}),
    )
    .await;
    let id = p["id"].as_str().unwrap().to_owned();
    let p: Value = app
        .json_as(&format!("/api/v1/catalog/products/{id}"), &who.token)
        .await;
    let v = p["variants"][0]["id"].as_str().unwrap().to_owned();
    (id, v)
}

/// A signed-in buyer.
pub fn buyer(app: &TestApp) -> Actor {
    crate::catalog::shopper(app)
}

/// Staff holding `orders.manage`.
pub fn manager(app: &TestApp) -> Actor {
    staff(app, &["orders.manage"])
}

/// Puts `lines` (variant, quantity) in `who`'s cart; returns the cart's id.
pub async fn cart_with(app: &TestApp, who: &Actor, lines: &[(&str, i32)]) -> String {
    let mut id = String::new();
    for (variant, quantity) in lines {
        let res = app
            .as_user(Method::POST, "/api/v1/cart/items", &who.token)
            .json(&json!({"variant_id": variant, "quantity": quantity}))
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert!(status.is_success(), "{status} {body}");
        id = body["id"].as_str().unwrap().to_owned();
    }
    id
}

/// Applies a discount code to `who`'s cart.
pub async fn apply_code(app: &TestApp, who: &Actor, code: &str) {
    let res = app
        .as_user(Method::POST, "/api/v1/cart/discount-codes", &who.token)
        .json(&json!({ "code": code }))
        .send()
        .await
        .unwrap();
    let status = res.status();
    assert!(
        status.is_success(),
        "{status} {}",
        res.text().await.unwrap()
    );
}

/// A 10 % code created by discount staff.
pub async fn discount(app: &TestApp, code: &str, usage_limit: Option<i32>) -> Value {
    crate::cart::create_discount(
        app,
        json!({"code": code, "kind": "percentage", "value": 1000, "usage_limit": usage_limit}),
    )
    .await
}

/// `POST /orders` for `cart` under idempotency key `key`.
pub async fn checkout(app: &TestApp, who: &Actor, cart: &str, key: &str) -> reqwest::Response {
    checkout_as(app, who, cart, key, "manual").await
}

/// `POST /orders` for `cart`, to be paid through `provider`, under a fresh key.
pub async fn checkout_via(
    app: &TestApp,
    who: &Actor,
    cart: &str,
    provider: &str,
) -> reqwest::Response {
    checkout_as(app, who, cart, &Uuid::now_v7().to_string(), provider).await
}

async fn checkout_as(
    app: &TestApp,
    who: &Actor,
    cart: &str,
    key: &str,
    provider: &str,
) -> reqwest::Response {
    app.as_user(Method::POST, "/api/v1/orders", &who.token)
        .header("Idempotency-Key", key)
        .json(&json!({ "cart_id": cart, "payment_provider": provider }))
        .send()
        .await
        .unwrap()
}

/// Checks out (201 asserted) and returns the order.
pub async fn place(app: &TestApp, who: &Actor, cart: &str) -> Value {
    place_via(app, who, cart, "manual").await
}

/// Checks out to be paid through `provider` (201 asserted) and returns the order.
pub async fn place_via(app: &TestApp, who: &Actor, cart: &str, provider: &str) -> Value {
    let res = checkout_via(app, who, cart, provider).await;
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    body
}

/// An order of `who` split between two sellers.
pub struct Split {
    pub order: Value,
    pub cart: String,
    /// Each seller's (seller, product id, variant id), in the order of `lines`.
    pub parts: [(Actor, String, String); 2],
}

/// `who` orders from two sellers at once: `lines` are each one's (unit price, quantity)
/// of a fresh variant with 10 in stock.
pub async fn split_order(app: &TestApp, who: &Actor, lines: [(i64, i32); 2]) -> Split {
    let (s1, s2) = (seller(app), seller(app));
    let (p1, v1) = stocked(app, &s1, 10, lines[0].0).await;
    let (p2, v2) = stocked(app, &s2, 10, lines[1].0).await;
    let cart = cart_with(app, who, &[(&v1, lines[0].1), (&v2, lines[1].1)]).await;
    Split {
        order: place(app, who, &cart).await,
        cart,
        parts: [(s1, p1, v1), (s2, p2, v2)],
    }
}

/// A one-line order of `who` for a fresh variant of `seller` (on_hand 10, 1 000 a unit).
pub async fn simple_order(app: &TestApp, who: &Actor) -> (Value, String) {
    let s = seller(app);
    let (_, v) = stocked(app, &s, 10, 1000).await;
    let cart = cart_with(app, who, &[(&v, 2)]).await;
    (place(app, who, &cart).await, v)
}

/// POST `path` (under /api/v1/orders) as `who`, with an optional body.
pub async fn post(
    app: &TestApp,
    who: &Actor,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = app.as_user(Method::POST, &format!("/api/v1/orders{path}"), &who.token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap()
}

/// A variant's stock as its seller sees it: (on_hand, reserved).
pub async fn stock_of(app: &TestApp, who: &Actor, variant: &str) -> (i64, i64) {
    let s: Value = app
        .json_as(&format!("/api/v1/catalog/inventory/{variant}"), &who.token)
        .await;
    (
        s["on_hand"].as_i64().unwrap(),
        s["reserved"].as_i64().unwrap(),
    )
}

/// What became of a provider's webhook event (`orders.provider_events.outcome`: applied,
/// ignored, orphan, pending), or `None` while it is not recorded.
pub async fn event_outcome(app: &TestApp, provider: &str, event_id: &str) -> Option<String> {
    sqlx::query_scalar(
        "SELECT outcome FROM orders.provider_events WHERE provider = $1 AND event_id = $2",
    )
    .bind(provider)
    .bind(event_id)
    .fetch_optional(&app.db)
    .await
    .unwrap()
}
