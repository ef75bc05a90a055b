//! Options and variants: prices in integer minor units of ISO 4217 currencies, the
//! product's price range, unique SKUs, the variant cap, and who may change what.

use reqwest::Method;
use serde_json::{Value, json};

use super::*;
use crate::helpers::{error_fields, problem, spawn_app, spawn_app_with};

const PRODUCTS: &str = "/api/v1/catalog/products";

fn at(p: &Value) -> String {
    format!("{PRODUCTS}/{}", p["id"].as_str().unwrap())
}

fn variant_at(p: &Value, v: &Value) -> String {
    format!("{}/variants/{}", at(p), v["id"].as_str().unwrap())
}

/// A tee in sizes S and M (L is an option value no variant uses yet), SKUs under `prefix`.
fn tee(prefix: &str) -> Value {
    json!({
        "title": "Logo Tee", "currency": "USD",
        "options": [{"name": "Size", "values": ["S", "M", "L"]}, {"name": "Colour", "values": ["Red"]}],
        "variants": [
            {"sku": format!("{prefix}-S-RED"), "options": {"Size": "S", "Colour": "Red"}, "price": 1999, "on_hand": 5},
            {"sku": format!("{prefix}-M-RED"), "options": {"Size": "M", "Colour": "Red"}, "price": 2499, "compare_at_price": 2999}
        ]
    })
}

async fn range(app: &TestApp, p: &Value, who: &Actor) -> Value {
    app.json_as::<Value>(&at(p), &who.token).await["price_range"].clone()
}

#[tokio::test]
async fn variants_keep_minor_units_and_the_product_its_price_range() {
    let app = spawn_app().await;
    let (alice, bob) = (seller(&app), seller(&app));
    let p = create_product(&app, &alice, tee("TEE")).await;
    assert_eq!(p["price_range"], json!({"min": 1999, "max": 2499}));
    let variants = p["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 2);
    assert_eq!(variants[0]["title"], "S / Red");
    assert_eq!(variants[0]["price"], 1999);
    assert_eq!(
        variants[0]["inventory"],
        json!({"on_hand": 5, "reserved": 0, "available": 5})
    );
    assert_eq!(variants[1]["in_stock"], false);
    let (s, m) = (variants[0].clone(), variants[1].clone());

    // Each currency says how many of its minor units make one: JPY 0, KWD 3.
    for (currency, exponent) in [("JPY", 0), ("KWD", 3), ("USD", 2)] {
        let q = create_product(
            &app,
            &alice,
            json!({"title": "Tea", "currency": currency, "price": 1500}),
        )
        .await;
        assert_eq!(q["currency_exponent"], exponent, "{currency}");
        assert_eq!(q["variants"][0]["title"], "Default");
        assert_eq!(q["price_range"], json!({"min": 1500, "max": 1500}));
    }

    // A new combination is a new variant; the same combination twice is a 409.
    let res = send(
        &app,
        Method::POST,
        &format!("{}/variants", at(&p)),
        Some(&alice),
        Some(json!({"options": {"Size": "L", "Colour": "Red"}, "price": 3499})),
    )
    .await;
    assert_eq!(res.status(), 201);
    let l: Value = res.json().await.unwrap();
    assert_eq!(l["title"], "L / Red");
    let res = send(
        &app,
        Method::POST,
        &format!("{}/variants", at(&p)),
        Some(&alice),
        Some(json!({"options": {"Size": "L", "Colour": "Red"}, "price": 1})),
    )
    .await;
    assert_eq!(problem(res).await["code"], "variant_exists");
    assert_eq!(
        range(&app, &p, &alice).await,
        json!({"min": 1999, "max": 3499})
    );

    // Editing one variant leaves its siblings' rows alone and moves the range.
    let res = send(
        &app,
        Method::PATCH,
        &variant_at(&p, &s),
        Some(&alice),
        Some(json!({"price": 999})),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["price"], 999);
    let now: Value = app.json_as(&at(&p), &alice.token).await;
    assert_eq!(now["price_range"], json!({"min": 999, "max": 3499}));
    let m_now = &now["variants"][1];
    assert_eq!(
        m_now["updated_at"], m["updated_at"],
        "the sibling was not rewritten"
    );
    assert_eq!(m_now["compare_at_price"], 2999);

    // Deleting narrows it; the last variant stays.
    let res = send(
        &app,
        Method::DELETE,
        &variant_at(&p, &l),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(res.status(), 204);
    assert_eq!(
        range(&app, &p, &alice).await,
        json!({"min": 999, "max": 2499})
    );
    assert_eq!(
        send(
            &app,
            Method::DELETE,
            &variant_at(&p, &m),
            Some(&alice),
            None
        )
        .await
        .status(),
        204
    );
    let res = send(
        &app,
        Method::DELETE,
        &variant_at(&p, &s),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(problem(res).await["code"], "last_variant");

    // Another seller and anonymous callers change nothing.
    let res = send(
        &app,
        Method::PATCH,
        &variant_at(&p, &s),
        Some(&bob),
        Some(json!({"price": 1})),
    )
    .await;
    assert_eq!(res.status(), 404);
    let res = send(
        &app,
        Method::PATCH,
        &variant_at(&p, &s),
        None,
        Some(json!({"price": 1})),
    )
    .await;
    assert_eq!(res.status(), 401);
    let res = send(
        &app,
        Method::POST,
        &format!("{}/variants", at(&p)),
        Some(&bob),
        Some(json!({"options": {"Size": "L", "Colour": "Red"}, "price": 1})),
    )
    .await;
    assert_eq!(res.status(), 404);
    assert_eq!(
        send(&app, Method::DELETE, &variant_at(&p, &s), Some(&bob), None)
            .await
            .status(),
        404
    );

    // The public sees an active product's variants, without stock counts.
    let q = active_product(&app, &alice, tee("PUB")).await;
    assert_eq!(
        send(&app, Method::GET, &at(&q), None, None).await.status(),
        200
    );
    let listed: Value = app
        .get(&format!("{}/variants", at(&q)))
        .await
        .json()
        .await
        .unwrap();
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(items[0].get("inventory").is_none(), "{}", items[0]);
    assert_eq!(items[0]["in_stock"], true);
    let draft_variants = app.get(&format!("{}/variants", at(&p))).await;
    assert_eq!(
        draft_variants.status(),
        404,
        "a draft's variants are private"
    );
    let mine = app
        .items_as(&format!("{}/variants?limit=1", at(&q)), &alice.token)
        .await;
    assert_eq!(mine[0]["inventory"]["on_hand"], 5);
}

#[tokio::test]
async fn skus_are_unique_among_live_variants() {
    let app = spawn_app().await;
    let (alice, bob) = (seller(&app), seller(&app));
    let p = create_product(
        &app,
        &alice,
        json!({"title": "Mug", "currency": "EUR", "price": 900, "sku": "MUG-1"}),
    )
    .await;

    let res = send(
        &app,
        Method::POST,
        PRODUCTS,
        Some(&bob),
        Some(json!({"title": "Copy", "currency": "EUR", "price": 800, "sku": "MUG-1"})),
    )
    .await;
    let body = problem(res).await;
    assert_eq!(body["code"], "sku_taken");
    assert!(body["detail"].as_str().unwrap().contains("MUG-1"), "{body}");
    assert!(
        app.items_as(PRODUCTS, &bob.token).await.is_empty(),
        "nothing stored"
    );

    // Two variants of one request with the same SKU.
    let mut dup = tee("DUP");
    dup["variants"][1]["sku"] = json!("DUP-S-RED");
    let res = send(&app, Method::POST, PRODUCTS, Some(&bob), Some(dup)).await;
    assert_eq!(problem(res).await["code"], "sku_taken");

    let t = create_product(&app, &bob, tee("TEE")).await;
    let res = send(
        &app,
        Method::PATCH,
        &variant_at(&t, &t["variants"][0]),
        Some(&bob),
        Some(json!({"sku": "MUG-1"})),
    )
    .await;
    assert_eq!(problem(res).await["code"], "sku_taken");
    let res = send(
        &app,
        Method::POST,
        &format!("{}/variants", at(&t)),
        Some(&bob),
        Some(json!({"sku": "MUG-1", "options": {"Size": "L", "Colour": "Red"}, "price": 1})),
    )
    .await;
    assert_eq!(problem(res).await["code"], "sku_taken");

    // A deleted product's SKUs are free again.
    assert_eq!(
        send(&app, Method::DELETE, &at(&p), Some(&alice), None)
            .await
            .status(),
        204
    );
    create_product(
        &app,
        &bob,
        json!({"title": "Mug", "currency": "EUR", "price": 800, "sku": "MUG-1"}),
    )
    .await;
}

#[tokio::test]
async fn bad_prices_and_option_values_are_422_and_nothing_changes() {
    let app = spawn_app().await;
    let alice = seller(&app);
    let p = create_product(&app, &alice, tee("TEE")).await;
    let s = p["variants"][0].clone();
    for price in [
        json!(-1),
        json!(12.5),
        json!(9223372036854775808u64),
        json!(1e20),
        json!(1_000_000_000_000_001i64),
        json!(-0.5),
    ] {
        let res = send(
            &app,
            Method::POST,
            PRODUCTS,
            Some(&alice),
            Some(json!({"title": "x", "currency": "USD", "price": price})),
        )
        .await;
        assert_eq!(res.status(), 422, "{price}");
        assert_eq!(error_fields(&problem(res).await), ["price"], "{price}");

        let res = send(
            &app,
            Method::PATCH,
            &variant_at(&p, &s),
            Some(&alice),
            Some(json!({"price": price})),
        )
        .await;
        assert_eq!(res.status(), 422, "{price}");
        let res = send(&app, Method::POST, &format!("{}/variants", at(&p)), Some(&alice),
            Some(json!({"options": {"Size": "L", "Colour": "Red"}, "price": 1, "compare_at_price": price}))).await;
        assert_eq!(
            error_fields(&problem(res).await),
            ["compare_at_price"],
            "{price}"
        );
    }
    let now: Value = app.json_as(&at(&p), &alice.token).await;
    assert_eq!(now["variants"][0]["price"], 1999, "unchanged");
    assert_eq!(now["variants"].as_array().unwrap().len(), 2);

    let mut missing = tee("MISSING");
    missing["variants"][0]["options"] = json!({"Size": "S"});
    let mut unknown = tee("UNKNOWN");
    unknown["variants"][1]["options"] = json!({"Size": "XXL", "Colour": "Red"});
    let mut none = tee("NONE");
    none["variants"] = json!([]);
    let mut twice = tee("TWICE");
    twice["options"][1]["name"] = json!("Size");
    for (body, field) in [
        (missing, "variants[0].options"),
        (unknown, "variants[1].options.Size"),
        (none, "variants"),
        (twice, "options[1].name"),
        (
            json!({"title": "x", "currency": "USD", "price": 1, "sku": "has space"}),
            "sku",
        ),
        (
            json!({"title": "x", "currency": "USD", "variants": [{"options": {"Size": "S"}, "price": 1}]}),
            "variants[0].options",
        ),
    ] {
        let res = send(
            &app,
            Method::POST,
            PRODUCTS,
            Some(&alice),
            Some(body.clone()),
        )
        .await;
        assert_eq!(res.status(), 422, "{body}");
        assert!(error_fields(&problem(res).await).contains(&field), "{body}");
    }
    let res = send(
        &app,
        Method::PATCH,
        &variant_at(&p, &s),
        Some(&alice),
        Some(json!({"options": {"Size": "XL", "Colour": "Red"}})),
    )
    .await;
    assert_eq!(error_fields(&problem(res).await), ["options.Size"]);
    assert_eq!(
        app.items_as(PRODUCTS, &alice.token).await.len(),
        1,
        "nothing stored"
    );
}

#[tokio::test]
async fn variants_per_product_are_capped() {
    let app = spawn_app_with(&[("BASALT__CATALOG__MAX_VARIANTS_PER_PRODUCT", "3")]).await;
    let alice = seller(&app);
    let mut body = tee("CAP");
    body["variants"]
        .as_array_mut()
        .unwrap()
        .push(json!({"options": {"Size": "L", "Colour": "Red"}, "price": 1}));
    let p = create_product(&app, &alice, body).await;
    let res = send(
        &app,
        Method::POST,
        &format!("{}/variants", at(&p)),
        Some(&alice),
        Some(json!({"options": {"Size": "L", "Colour": "Red"}, "price": 1})),
    )
    .await;
    let body = problem(res).await;
    assert_eq!(error_fields(&body), ["variants"]);

    // The default cap (100) refuses 10,000 variants in one request, storing nothing.
    let app = spawn_app().await;
    let alice = seller(&app);
    let values: Vec<String> = (0..100).map(|i| i.to_string()).collect();
    let variants: Vec<Value> = (0..10_000)
        .map(|i| json!({"options": {"A": (i / 100).to_string(), "B": (i % 100).to_string()}, "price": i}))
        .collect();
    let res = send(
        &app,
        Method::POST,
        PRODUCTS,
        Some(&alice),
        Some(json!({
            "title": "Too many", "currency": "USD",
            "options": [{"name": "A", "values": values}, {"name": "B", "values": values}],
            "variants": variants
        })),
    )
    .await;
    assert_eq!(res.status(), 422);
    assert_eq!(error_fields(&problem(res).await), ["variants"]);
    assert!(app.items_as(PRODUCTS, &alice.token).await.is_empty());
}
