//! The cart domain through HTTP: guest and signed-in carts, the merge at sign-in,
//! re-validation against the catalog, totals, discount codes, expiry, and the in-process
//! `api` the orders domain calls, with helpers shared by the submodules.

mod carts;
mod discounts;
mod review;
mod totals;

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

pub use crate::catalog::{Actor, active_product, seller, shopper, staff};
use crate::helpers::{TestApp, eventually, refused};

/// An active product with one variant of `on_hand` stock at `price` in `currency`;
/// returns (product id, variant id).
pub async fn stocked(
    app: &TestApp,
    who: &Actor,
    on_hand: i32,
    price: i64,
    currency: &str,
) -> (String, String) {
    stocked_with(
        app,
        who,
        json!({"price": price, "on_hand": on_hand}),
        currency,
    )
    .await
}

/// An active product whose one variant is `variant` (price, on_hand, stock policy).
pub async fn stocked_with(
    app: &TestApp,
    who: &Actor,
    variant: Value,
    currency: &str,
) -> (String, String) {
    let p = active_product(
        app,
        who,
        json!({"title": "Cartable", "currency": currency, "variants": [variant]}),
    )
    .await;
    let p: Value = app
        .json_as(
            &format!("/api/v1/catalog/products/{}", p["id"].as_str().unwrap()),
            &who.token,
        )
        .await;
    (
        p["id"].as_str().unwrap().to_owned(),
        p["variants"][0]["id"].as_str().unwrap().to_owned(),
    )
}

/// A cart request as `who` (or anonymous), with a guest token if given.
pub async fn cart_req(
    app: &TestApp,
    method: Method,
    path: &str,
    who: Option<&Actor>,
    token: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = app
        .client
        .request(method, app.url(&format!("/api/v1/cart{path}")));
    if let Some(who) = who {
        req = req.bearer_auth(&who.token);
    }
    if let Some(t) = token {
        req = req.header("X-Cart-Token", t);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.expect("request")
}

/// `POST /cart/items` of `quantity` of `variant`.
pub async fn post_item(
    app: &TestApp,
    who: Option<&Actor>,
    token: Option<&str>,
    variant: &str,
    quantity: i32,
) -> reqwest::Response {
    let body = json!({"variant_id": variant, "quantity": quantity});
    cart_req(app, Method::POST, "/items", who, token, Some(body)).await
}

/// An add by `who` refused with `status` and problem `code`; returns the problem.
pub async fn add_refused(
    app: &TestApp,
    who: &Actor,
    variant: &str,
    quantity: i32,
    status: u16,
    code: &str,
) -> Value {
    refused(
        post_item(app, Some(who), None, variant, quantity).await,
        status,
        code,
    )
    .await
}

/// `POST /cart/discount-codes` of `code`.
pub async fn apply(
    app: &TestApp,
    who: Option<&Actor>,
    token: Option<&str>,
    code: &str,
) -> reqwest::Response {
    let body = json!({ "code": code });
    cart_req(app, Method::POST, "/discount-codes", who, token, Some(body)).await
}

/// Adds `quantity` of `variant`, asserting `status`; returns the cart.
pub async fn add(
    app: &TestApp,
    who: Option<&Actor>,
    token: Option<&str>,
    variant: &str,
    quantity: i32,
    status: u16,
) -> Value {
    let res = post_item(app, who, token, variant, quantity).await;
    let got = res.status().as_u16();
    let body: Value = res.json().await.expect("json");
    assert_eq!(got, status, "{body}");
    body
}

/// The cart, asserting 200.
pub async fn get_cart(app: &TestApp, who: Option<&Actor>, token: Option<&str>) -> Value {
    let res = cart_req(app, Method::GET, "", who, token, None).await;
    let status = res.status();
    let body: Value = res.json().await.expect("json");
    assert_eq!(status, 200, "{body}");
    body
}

/// Stores a cart runtime setting and waits until this replica prices with it (`probe`
/// returns true once it does).
pub async fn set_setting(app: &TestApp, key: &str, value: Value) {
    sqlx::query(
        "INSERT INTO platform.runtime_settings (namespace, key, value, updated_by)
         VALUES ('cart', $1, $2, 'user:test')
         ON CONFLICT (namespace, key) DO UPDATE SET value = EXCLUDED.value",
    )
    .bind(key)
    .bind(&value)
    .execute(&app.db)
    .await
    .unwrap();
}

/// Waits until `check` holds (settings apply within a second on every replica).
pub async fn until<F, Fut>(check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    eventually(Duration::from_secs(5), check).await
}

/// A staff account that manages discount codes.
pub fn discounts_staff(app: &TestApp) -> Actor {
    staff(app, &["cart.discounts.manage"])
}

/// Creates a discount code (201 asserted).
pub async fn create_discount(app: &TestApp, body: Value) -> Value {
    let who = discounts_staff(app);
    let res = app
        .as_user(Method::POST, "/api/v1/cart/discounts", &who.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    body
}

/// Each priced line's (variant, discount share), in the cart's order.
pub fn discount_shares(cart: &Value) -> Vec<(String, i64)> {
    cart["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| {
            (
                l["variant_id"].as_str().unwrap().to_owned(),
                l["discount"].as_i64().unwrap(),
            )
        })
        .collect()
}

pub fn uuid(v: &Value) -> Uuid {
    Uuid::parse_str(v.as_str().expect("a uuid string")).expect("a uuid")
}
