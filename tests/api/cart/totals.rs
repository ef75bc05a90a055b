//! Totals: per-line tax rounded half away from zero by country and region, tax-inclusive
//! currencies, flat shipping per country, all runtime settings.

use reqwest::Method;
use serde_json::{Value, json};

use super::*;
use crate::helpers::{problem, spawn_app};

fn address(country: &str, region: Option<&str>) -> Value {
    let mut a =
        json!({"name": "Ada Lovelace", "line1": "1 Main St", "city": "Town", "country": country});
    if let Some(r) = region {
        a["region"] = json!(r);
    }
    a
}

async fn ship_to(app: &TestApp, who: &Actor, a: Value) -> Value {
    let res = cart_req(
        app,
        Method::PUT,
        "/addresses",
        Some(who),
        None,
        Some(json!({"shipping_address": a, "email": "ada@example.com"})),
    )
    .await;
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn totals_add_tax_per_line_by_region_and_flat_shipping_per_country() {
    let app = spawn_app().await;
    set_setting(
        &app,
        "tax_rates",
        json!({"US": 500, "US-CA": 725, "DE": 1900}),
    )
    .await;
    set_setting(
        &app,
        "shipping_rates",
        json!({"US": {"USD": 500}, "*": {"USD": 1500, "EUR": 900}}),
    )
    .await;
    set_setting(&app, "tax_inclusive_currencies", json!(["EUR"])).await;
    let alice = seller(&app);
    let (_, a) = stocked(&app, &alice, 10, 1999, "USD").await;
    let (_, b) = stocked(&app, &alice, 10, 500, "USD").await;
    let bob = shopper(&app);
    add(&app, Some(&bob), None, &a, 3, 201).await;
    add(&app, Some(&bob), None, &b, 1, 200).await;

    // Without an address: no tax, no shipping yet.
    let cart = get_cart(&app, Some(&bob), None).await;
    assert_eq!(
        cart["totals"],
        json!({"subtotal": 6497, "discount": 0, "tax": 0, "shipping": 0, "total": 6497, "tax_inclusive": false})
    );

    // California, 7.25 %: 5997 × 0.0725 = 434.78 → 435; 500 × 0.0725 = 36.25 → 36.
    assert!(
        until(|| async {
            let c = ship_to(&app, &bob, address("US", Some("CA"))).await;
            c["totals"]["tax"] == 471
        })
        .await,
        "the settings apply"
    );
    let cart = get_cart(&app, Some(&bob), None).await;
    assert_eq!(
        cart["totals"],
        json!({"subtotal": 6497, "discount": 0, "tax": 471, "shipping": 500, "total": 7468, "tax_inclusive": false})
    );
    let taxes: Vec<i64> = cart["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["tax"].as_i64().unwrap())
        .collect();
    assert_eq!(taxes, vec![435, 36]);
    assert_eq!(cart["shipping_address"]["region"], "CA");
    assert_eq!(cart["email"], "ada@example.com");

    // Elsewhere in the US, the country's 5 %: 299.85 → 300, 25.
    let cart = ship_to(&app, &bob, address("US", Some("NY"))).await;
    assert_eq!(cart["totals"]["tax"], 325);
    assert_eq!(cart["totals"]["total"], 6497 + 325 + 500);
    // A country without a rate: no tax, the `*` shipping rate.
    let cart = ship_to(&app, &bob, address("FR", None)).await;
    assert_eq!(
        (
            cart["totals"]["tax"].as_i64(),
            cart["totals"]["shipping"].as_i64()
        ),
        (Some(0), Some(1500))
    );

    // A tax-inclusive currency: the tax is the part of the price that is tax.
    // 1190 incl. 19 % → 1190 × 19/119 = 190.
    let (_, eur) = stocked(&app, &alice, 10, 1190, "EUR").await;
    let carol = shopper(&app);
    add(&app, Some(&carol), None, &eur, 1, 201).await;
    let cart = ship_to(&app, &carol, address("DE", None)).await;
    assert_eq!(
        cart["totals"],
        json!({"subtotal": 1190, "discount": 0, "tax": 190, "shipping": 900, "total": 2090, "tax_inclusive": true})
    );

    // A bad address is a 422 naming its fields; nothing changes.
    let res = cart_req(
        &app,
        Method::PUT,
        "/addresses",
        Some(&carol),
        None,
        Some(json!({"shipping_address": {"name": "", "line1": "x", "city": "y", "country": "germany"},
                    "email": "not-an-email"})),
    )
    .await;
    assert_eq!(res.status(), 422);
    let p = problem(res).await;
    let mut fields = crate::helpers::error_fields(&p);
    fields.sort();
    assert_eq!(
        fields,
        vec!["email", "shipping_address.country", "shipping_address.name"]
    );
    assert_eq!(
        get_cart(&app, Some(&carol), None).await["totals"]["tax"],
        190
    );
}

#[tokio::test]
async fn a_runtime_setting_that_does_not_validate_leaves_the_default() {
    let app = spawn_app().await;
    let alice = seller(&app);
    let (_, v) = stocked(&app, &alice, 500, 100, "USD").await;
    let bob = shopper(&app);
    // The per-line cap: 100 by default, then 5 once set.
    add(&app, Some(&bob), None, &v, 100, 201).await;
    set_setting(&app, "max_line_quantity", json!(5)).await;
    assert!(
        until(|| async {
            let c = get_cart(&app, Some(&bob), None).await;
            c["lines"][0]["quantity"] == 5 && c["changes"][0]["kind"] == "quantity_reduced"
        })
        .await
    );
    // Out of range: ignored, the default (100) applies again.
    set_setting(&app, "max_line_quantity", json!(0)).await;
    assert!(
        until(|| async { get_cart(&app, Some(&bob), None).await["lines"][0]["quantity"] == 100 })
            .await
    );
}
