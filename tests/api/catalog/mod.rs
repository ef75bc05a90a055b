//! The catalog domain through HTTP: products (slugs, the moderated status machine, who sees
//! and changes what), variants and prices, with helpers shared by the submodules.

mod categories;
mod editing;
mod inventory;
mod products;
mod reviews;
mod search;
mod variants;

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::TestApp;

/// A seller: a fresh account holding `catalog.products.sell` (the `vendor` role's grant).
pub struct Actor {
    pub id: String,
    pub token: String,
}

pub fn seller(app: &TestApp) -> Actor {
    let id = Uuid::now_v7().to_string();
    let token = app.token(&id, &["user", "vendor"], &["catalog.products.sell"]);
    Actor { id, token }
}

/// A staff account holding `permissions` and nothing else.
pub fn staff(app: &TestApp, permissions: &[&str]) -> Actor {
    let id = Uuid::now_v7().to_string();
    let token = app.token(&id, &["user", "staff"], permissions);
    Actor { id, token }
}

/// A signed-in account that sells nothing.
pub fn shopper(app: &TestApp) -> Actor {
    let id = Uuid::now_v7().to_string();
    let token = app.token(&id, &["user"], &[]);
    Actor { id, token }
}

pub async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    who: Option<&Actor>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = app.client.request(method, app.url(path));
    if let Some(who) = who {
        req = req.bearer_auth(&who.token);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.expect("request")
}

/// Creates a product as `who` (201 asserted) and returns it.
pub async fn create_product(app: &TestApp, who: &Actor, body: Value) -> Value {
    let res = send(
        app,
        Method::POST,
        "/api/v1/catalog/products",
        Some(who),
        Some(body),
    )
    .await;
    let status = res.status();
    let body: Value = res.json().await.expect("json");
    assert_eq!(status, 201, "{body}");
    body
}

pub fn product_body(title: &str) -> Value {
    json!({ "title": title, "currency": "USD" })
}

/// Creates a product and takes it through moderation to `active`.
pub async fn active_product(app: &TestApp, who: &Actor, body: Value) -> Value {
    let p = create_product(app, who, body).await;
    let id = p["id"].as_str().unwrap();
    let res = send(
        app,
        Method::POST,
        &format!("/api/v1/catalog/products/{id}/submit"),
        Some(who),
        None,
    )
    .await;
    assert_eq!(res.status(), 200);
    let moderator = staff(app, &["catalog.products.moderate"]);
    let res = send(
        app,
        Method::POST,
        &format!("/api/v1/catalog/products/{id}/approve"),
        Some(&moderator),
        None,
    )
    .await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}
