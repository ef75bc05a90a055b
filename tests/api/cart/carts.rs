//! Guest and signed-in carts, tokens, the merge at sign-in, re-validation reports, bad
//! input, and who may touch what.

use futures_util::FutureExt;
use reqwest::Method;
use serde_json::{Value, json};

use super::*;
use crate::helpers::{error_fields, problem, refused, spawn_app, spawn_app_with};

#[tokio::test]
async fn a_guest_cart_is_started_by_its_first_item_and_named_by_its_token() {
    let app = spawn_app().await;
    let alice = seller(&app);
    let (_, variant) = stocked(&app, &alice, 10, 1250, "USD").await;

    // No cart yet: a 404 for a guest without a token, and for a token that names nothing.
    let res = cart_req(&app, Method::GET, "", None, None, None).await;
    assert_eq!(res.status(), 404);
    let res = cart_req(&app, Method::GET, "", None, Some("ct_nothing"), None).await;
    assert_eq!(res.status(), 404);

    let res = post_item(&app, None, None, &variant, 2).await;
    assert_eq!(res.status(), 201);
    let header = res
        .headers()
        .get("x-cart-token")
        .expect("the token in a header")
        .to_str()
        .unwrap()
        .to_owned();
    let cart: Value = res.json().await.unwrap();
    assert_eq!(cart["token"], header.as_str());
    assert!(cart["user_id"].is_null());
    assert_eq!(cart["currency"], "USD");
    assert_eq!(cart["lines"][0]["quantity"], 2);
    assert_eq!(cart["lines"][0]["subtotal"], 2500);
    assert_eq!(cart["totals"]["total"], 2500);

    // Only the token's hash is stored.
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM cart.carts WHERE token_hash = sha256(convert_to($1, 'UTF8'))",
    )
    .bind(&header)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(stored, 1);

    // The token reads and grows the same cart; the token is not handed out again.
    let again = add(&app, None, Some(&header), &variant, 1, 200).await;
    assert_eq!(again["id"], cart["id"]);
    assert!(again.get("token").is_none());
    assert_eq!(again["lines"][0]["quantity"], 3);
    let read = get_cart(&app, None, Some(&header)).await;
    assert_eq!(read["lines"][0]["quantity"], 3);
    assert_eq!(read["totals"]["subtotal"], 3750);

    // Deleting it: the token names nothing any more; the next add starts a new cart.
    let res = cart_req(&app, Method::DELETE, "", None, Some(&header), None).await;
    assert_eq!(res.status(), 204);
    let res = cart_req(&app, Method::GET, "", None, Some(&header), None).await;
    assert_eq!(res.status(), 404);
    let res = post_item(&app, None, Some(&header), &variant, 1).await;
    assert_eq!(
        res.status(),
        404,
        "a stale token is not silently given a new cart"
    );
}

#[tokio::test]
async fn a_token_of_another_cart_cannot_touch_its_lines_nor_can_other_users() {
    let app = spawn_app().await;
    let alice = seller(&app);
    let (_, variant) = stocked(&app, &alice, 10, 500, "USD").await;
    let a = add(&app, None, None, &variant, 1, 201).await;
    let b = add(&app, None, None, &variant, 1, 201).await;
    let (ta, tb) = (a["token"].as_str().unwrap(), b["token"].as_str().unwrap());
    let line_a = a["lines"][0]["line_id"].as_str().unwrap();

    let eve = shopper(&app);
    for (who, token) in [(None, Some(tb)), (None, None), (Some(&eve), None)] {
        let res = cart_req(
            &app,
            Method::PUT,
            &format!("/items/{line_a}"),
            who,
            token,
            Some(json!({"quantity": 5})),
        )
        .await;
        refused(res, 404, "not_found").await;
        let res = cart_req(
            &app,
            Method::DELETE,
            &format!("/items/{line_a}"),
            who,
            token,
            None,
        )
        .await;
        assert_eq!(res.status(), 404);
    }
    assert_eq!(
        get_cart(&app, None, Some(ta)).await["lines"][0]["quantity"],
        1
    );

    // A signed-in user's cart is theirs alone.
    let bob = shopper(&app);
    let mine = add(&app, Some(&bob), None, &variant, 2, 201).await;
    assert!(mine.get("token").is_none(), "signed-in carts have no token");
    let line = mine["lines"][0]["line_id"].as_str().unwrap();
    let carol = shopper(&app);
    let res = cart_req(&app, Method::GET, "", Some(&carol), None, None).await;
    assert_eq!(res.status(), 404);
    for (method, path, body) in [
        (
            Method::PUT,
            format!("/items/{line}"),
            Some(json!({"quantity": 1})),
        ),
        (Method::DELETE, format!("/items/{line}"), None),
    ] {
        let res = cart_req(
            &app,
            method.clone(),
            &path,
            Some(&carol),
            None,
            body.clone(),
        )
        .await;
        assert_eq!(res.status(), 404, "{method} {path} as another user");
        let res = cart_req(&app, method.clone(), &path, None, None, body).await;
        assert_eq!(res.status(), 404, "{method} {path} anonymous");
    }
    // Every cart route refuses a bad token with 401, never silently anonymous.
    let res = app
        .client
        .get(app.url("/api/v1/cart"))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        get_cart(&app, Some(&bob), None).await["lines"][0]["quantity"],
        2
    );
}

#[tokio::test]
async fn bad_input_is_a_clear_problem_and_changes_nothing() {
    let app = spawn_app().await;
    let alice = seller(&app);
    let bob = shopper(&app);
    let (_, usd) = stocked(&app, &alice, 3, 500, "USD").await;
    let (_, eur) = stocked(&app, &alice, 3, 500, "EUR").await;
    let draft = crate::catalog::create_product(
        &app,
        &alice,
        json!({"title": "Draft", "currency": "USD", "variants": [{"price": 100, "on_hand": 5}]}),
    )
    .await;
    let draft_variant = draft["variants"][0]["id"].as_str().unwrap().to_owned();
    add(&app, Some(&bob), None, &usd, 1, 201).await;

    for q in [0, -1, 101] {
        let res = post_item(&app, Some(&bob), None, &usd, q).await;
        assert_eq!(res.status(), 422, "quantity {q}");
        assert_eq!(error_fields(&problem(res).await), vec!["quantity"]);
    }
    for (variant, status, code) in [
        (draft_variant.as_str(), 422, "variant_not_on_sale"),
        (
            "0193a5f6-7d2c-7b9e-9f10-3c4d5e6f7a8b",
            422,
            "variant_not_on_sale",
        ),
        (eur.as_str(), 422, "currency_mismatch"),
    ] {
        add_refused(&app, &bob, variant, 1, status, code).await;
    }
    // Past the stock: 409 naming what is available.
    let p = add_refused(&app, &bob, &usd, 3, 409, "insufficient_stock").await;
    assert!(p["detail"].as_str().unwrap().contains('3'));
    // A malformed body or line id.
    let res = post_item(&app, Some(&bob), None, "nope", 1).await;
    assert_eq!(res.status(), 400);
    let res = cart_req(
        &app,
        Method::PUT,
        "/items/not-a-uuid",
        Some(&bob),
        None,
        Some(json!({"quantity": 1})),
    )
    .await;
    assert_eq!(res.status(), 404);

    let cart = get_cart(&app, Some(&bob), None).await;
    assert_eq!(cart["lines"].as_array().unwrap().len(), 1);
    assert_eq!(cart["lines"][0]["quantity"], 1);
    assert_eq!(cart["currency"], "USD");
}

#[tokio::test]
async fn a_guest_cart_merges_into_the_users_cart_at_sign_in_capped_by_stock() {
    let app = spawn_app().await;
    let alice = seller(&app);
    let (_, v1) = stocked(&app, &alice, 5, 1000, "USD").await;
    let (_, v2) = stocked(&app, &alice, 50, 200, "USD").await;
    let (_, eur) = stocked(&app, &alice, 50, 200, "EUR").await;
    let bob = shopper(&app);
    add(&app, Some(&bob), None, &v1, 4, 201).await;

    let guest = add(&app, None, None, &v1, 3, 201).await;
    let token = guest["token"].as_str().unwrap().to_owned();
    add(&app, None, Some(&token), &v2, 2, 200).await;

    let merged = get_cart(&app, Some(&bob), Some(&token)).await;
    let lines = merged["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2, "{merged}");
    let q = |v: &str| {
        lines
            .iter()
            .find(|l| l["variant_id"] == v)
            .map(|l| l["quantity"].as_i64().unwrap())
    };
    assert_eq!(q(&v1), Some(5), "4 + 3 capped by the 5 in stock");
    assert_eq!(q(&v2), Some(2));

    // The guest cart is merged: its token names nothing for guests, and the user may keep
    // sending it without merging twice.
    let res = cart_req(&app, Method::GET, "", None, Some(&token), None).await;
    assert_eq!(res.status(), 404);
    let again = get_cart(&app, Some(&bob), Some(&token)).await;
    assert_eq!(again["lines"], merged["lines"]);
    // Another user presenting that token gets a 404, not bob's cart.
    let carol = shopper(&app);
    let res = cart_req(&app, Method::GET, "", Some(&carol), Some(&token), None).await;
    assert_eq!(res.status(), 404);

    // A user without a cart gets the guest's cart as theirs; lines in another currency than
    // the user's cart are dropped.
    let guest = add(&app, None, None, &eur, 1, 201).await;
    let t2 = guest["token"].as_str().unwrap().to_owned();
    let dave = shopper(&app);
    let got = add(&app, Some(&dave), Some(&t2), &eur, 1, 201).await;
    assert_eq!(got["currency"], "EUR");
    assert_eq!(got["lines"][0]["quantity"], 2);
    let guest = add(&app, None, None, &eur, 1, 201).await;
    let t3 = guest["token"].as_str().unwrap().to_owned();
    let after = get_cart(&app, Some(&bob), Some(&t3)).await;
    assert_eq!(after["lines"], merged["lines"]);
    assert_eq!(after["currency"], "USD");
}

#[tokio::test]
async fn concurrent_requests_with_one_token_merge_it_once() {
    let app = spawn_app_with(&[("BASALT__RATE_LIMIT__ENABLED", "false")]).await;
    let alice = seller(&app);
    let (_, variant) = stocked(&app, &alice, 100, 1000, "USD").await;
    let guest = add(&app, None, None, &variant, 3, 201).await;
    let token = guest["token"].as_str().unwrap().to_owned();
    let bob = shopper(&app);
    add(&app, Some(&bob), None, &variant, 1, 201).await;
    let statuses = crate::helpers::statuses_of((0..10).map(|_| {
        app.client
            .get(app.url("/api/v1/cart"))
            .bearer_auth(&bob.token)
            .header("X-Cart-Token", &token)
            .send()
            .map(|r| r.expect("request"))
    }))
    .await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let cart = get_cart(&app, Some(&bob), None).await;
    assert_eq!(cart["lines"][0]["quantity"], 4, "merged exactly once");
}

#[tokio::test]
async fn every_read_reports_price_changes_unavailable_lines_and_reduced_quantities() {
    let app = spawn_app().await;
    let alice = seller(&app);
    let bob = shopper(&app);
    let (p1, v1) = stocked(&app, &alice, 10, 1000, "USD").await;
    let (p2, v2) = stocked(&app, &alice, 10, 300, "USD").await;
    let (_, v3) = stocked(&app, &alice, 10, 700, "USD").await;
    add(&app, Some(&bob), None, &v1, 2, 201).await;
    add(&app, Some(&bob), None, &v2, 1, 200).await;
    let cart = add(&app, Some(&bob), None, &v3, 6, 200).await;
    assert_eq!(cart["changes"], json!([]));

    // The seller raises a price, archives a product, and stock falls under a line.
    let res = crate::catalog::send(
        &app,
        Method::PATCH,
        &format!("/api/v1/catalog/products/{p1}/variants/{v1}"),
        Some(&alice),
        Some(json!({"price": 1200})),
    )
    .await;
    assert_eq!(res.status(), 200);
    let res = crate::catalog::send(
        &app,
        Method::POST,
        &format!("/api/v1/catalog/products/{p2}/archive"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(res.status(), 200);
    let res = crate::catalog::send(
        &app,
        Method::POST,
        &format!("/api/v1/catalog/inventory/{v3}/adjustments"),
        Some(&alice),
        Some(json!({"delta": -6, "reason": "damaged"})),
    )
    .await;
    assert_eq!(res.status(), 200);

    let cart = get_cart(&app, Some(&bob), None).await;
    let changes = cart["changes"].as_array().unwrap();
    let kind = |v: &str| {
        changes
            .iter()
            .filter(|c| c["variant_id"] == v)
            .map(|c| c["kind"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(kind(&v1), vec!["price_changed"]);
    assert_eq!(kind(&v2), vec!["unavailable"]);
    assert_eq!(kind(&v3), vec!["quantity_reduced"]);
    let price = changes.iter().find(|c| c["variant_id"] == v1).unwrap();
    assert_eq!(
        (
            price["previous_unit_price"].as_i64(),
            price["unit_price"].as_i64()
        ),
        (Some(1000), Some(1200))
    );
    // Priced as it can be sold: the new price, the unavailable line left out, 4 of v3.
    let lines = cart["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(cart["totals"]["subtotal"], 2 * 1200 + 4 * 700);

    // Setting the line accepts the new price; the report goes.
    let line = lines.iter().find(|l| l["variant_id"] == v1).unwrap();
    let res = cart_req(
        &app,
        Method::PUT,
        &format!("/items/{}", line["line_id"].as_str().unwrap()),
        Some(&bob),
        None,
        Some(json!({"quantity": 2})),
    )
    .await;
    assert_eq!(res.status(), 200);
    let cart: Value = res.json().await.unwrap();
    assert_eq!(kind_of(&cart, &v1), Vec::<String>::new());
    // An unavailable line cannot be set; it can be removed.
    let gone = changes.iter().find(|c| c["variant_id"] == v2).unwrap();
    let path = format!("/items/{}", gone["line_id"].as_str().unwrap());
    let res = cart_req(
        &app,
        Method::PUT,
        &path,
        Some(&bob),
        None,
        Some(json!({"quantity": 1})),
    )
    .await;
    assert_eq!(res.status(), 422);
    let res = cart_req(&app, Method::DELETE, &path, Some(&bob), None, None).await;
    assert_eq!(res.status(), 200);
    let cart: Value = res.json().await.unwrap();
    assert_eq!(kind_of(&cart, &v2), Vec::<String>::new());
}

fn kind_of(cart: &Value, variant: &str) -> Vec<String> {
    cart["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["variant_id"] == variant)
        .map(|c| c["kind"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn reading_a_cart_of_ten_lines_is_two_statements() {
    let app = spawn_app().await;
    let alice = seller(&app);
    let bob = shopper(&app);
    for _ in 0..10 {
        let (_, v) = stocked(&app, &alice, 10, 100, "USD").await;
        add(
            &app,
            Some(&bob),
            None,
            &v,
            1,
            if get_is_empty(&app, &bob).await {
                201
            } else {
                200
            },
        )
        .await;
    }
    let res = cart_req(&app, Method::GET, "", Some(&bob), None, None).await;
    assert_eq!(res.status(), 200);
    let statements = crate::statements::of(&res);
    assert_eq!(
        crate::statements::round_trips(&res),
        2,
        "the cart with its lines, then the catalog: {statements:?}"
    );
    let cart: Value = res.json().await.unwrap();
    assert_eq!(cart["lines"].as_array().unwrap().len(), 10);
}

async fn get_is_empty(app: &TestApp, who: &Actor) -> bool {
    cart_req(app, Method::GET, "", Some(who), None, None)
        .await
        .status()
        == 404
}

#[tokio::test]
async fn idle_carts_expire_and_signed_in_carts_with_items_are_reported_abandoned_once() {
    let app = spawn_app_with(&[("BASALT__CART__SWEEP_MS", "200")]).await;
    let alice = seller(&app);
    let (_, variant) = stocked(&app, &alice, 10, 100, "USD").await;
    let bob = shopper(&app);
    add(&app, Some(&bob), None, &variant, 1, 201).await;
    let guest = add(&app, None, None, &variant, 1, 201).await;
    let token = guest["token"].as_str().unwrap().to_owned();

    // Bob's cart idles past a day: one cart.abandoned, however many sweeps pass.
    sqlx::query(
        "UPDATE cart.carts SET updated_at = now() - interval '2 days' WHERE user_id IS NOT NULL",
    )
    .execute(&app.db)
    .await
    .unwrap();
    assert!(until(|| async { app.events_of("cart.abandoned").await == 1 }).await);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(app.events_of("cart.abandoned").await, 1);

    // The guest cart idles past 30 days: it expires, its token names nothing.
    sqlx::query(
        "UPDATE cart.carts SET updated_at = now() - interval '31 days' WHERE user_id IS NULL",
    )
    .execute(&app.db)
    .await
    .unwrap();
    assert!(
        until(|| async {
            cart_req(&app, Method::GET, "", None, Some(&token), None)
                .await
                .status()
                == 404
        })
        .await
    );
    // Bob's (2 days idle) stays: users' carts last 90 days.
    assert_eq!(
        get_cart(&app, Some(&bob), None).await["lines"][0]["quantity"],
        1
    );
}

#[tokio::test]
async fn every_cart_route_as_another_user_or_anonymous_reaches_no_one_elses_cart() {
    let app = spawn_app().await;
    let alice = seller(&app);
    let (_, variant) = stocked(&app, &alice, 10, 400, "USD").await;
    let bob = shopper(&app);
    let cart = add(&app, Some(&bob), None, &variant, 2, 201).await;
    let line = cart["lines"][0]["line_id"].as_str().unwrap().to_owned();
    create_discount(
        &app,
        json!({"code": "BOBS", "kind": "percentage", "value": 1000}),
    )
    .await;
    let res = apply(&app, Some(&bob), None, "BOBS").await;
    assert_eq!(res.status(), 200);
    let before = get_cart(&app, Some(&bob), None).await;

    let carol = shopper(&app);
    let routes = [
        (Method::GET, String::new(), None),
        (Method::DELETE, String::new(), None),
        (
            Method::PUT,
            format!("/items/{line}"),
            Some(json!({"quantity": 1})),
        ),
        (Method::DELETE, format!("/items/{line}"), None),
        (
            Method::POST,
            "/discount-codes".to_owned(),
            Some(json!({"code": "BOBS"})),
        ),
        (Method::DELETE, "/discount-codes/BOBS".to_owned(), None),
        (
            Method::PUT,
            "/addresses".to_owned(),
            Some(json!({"email": "x@example.com"})),
        ),
    ];
    for (method, path, body) in routes {
        for who in [Some(&carol), None] {
            let res = cart_req(&app, method.clone(), &path, who, None, body.clone()).await;
            assert_eq!(
                res.status(),
                404,
                "{method} /cart{path} as {}",
                if who.is_some() {
                    "another user"
                } else {
                    "anonymous"
                }
            );
            assert_eq!(problem(res).await["code"], "not_found");
        }
    }
    // Adding as another user or anonymously starts their own cart, never bob's.
    let theirs = add(&app, Some(&carol), None, &variant, 1, 201).await;
    let guest = add(&app, None, None, &variant, 1, 201).await;
    assert_ne!(theirs["id"], before["id"]);
    assert_ne!(guest["id"], before["id"]);
    let after = get_cart(&app, Some(&bob), None).await;
    assert_eq!(after["lines"], before["lines"]);
    assert_eq!(after["discount"], before["discount"]);
    assert_eq!(after["email"], before["email"]);
}

#[tokio::test]
async fn concurrent_first_adds_make_one_cart_and_every_unit_counts() {
    let app = spawn_app_with(&[("BASALT__RATE_LIMIT__ENABLED", "false")]).await;
    let alice = seller(&app);
    let (_, variant) = stocked(&app, &alice, 100, 100, "USD").await;
    let bob = shopper(&app);
    let statuses = crate::helpers::statuses_of((0..20).map(|_| {
        app.as_user(Method::POST, "/api/v1/cart/items", &bob.token)
            .json(&json!({"variant_id": variant, "quantity": 1}))
            .send()
            .map(|r| r.expect("request"))
    }))
    .await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        19,
        "{statuses:?}"
    );
    let carts: i64 = sqlx::query_scalar("SELECT count(*) FROM cart.carts")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(carts, 1);
    assert_eq!(
        get_cart(&app, Some(&bob), None).await["lines"][0]["quantity"],
        20
    );
}

#[tokio::test]
async fn a_cart_holds_at_most_max_lines_lines() {
    let app = spawn_app_with(&[("BASALT__CART__MAX_LINES", "2")]).await;
    let alice = seller(&app);
    let bob = shopper(&app);
    let mut variants = Vec::new();
    for _ in 0..3 {
        variants.push(stocked(&app, &alice, 10, 100, "USD").await.1);
    }
    add(&app, Some(&bob), None, &variants[0], 1, 201).await;
    add(&app, Some(&bob), None, &variants[1], 1, 200).await;
    add_refused(&app, &bob, &variants[2], 1, 422, "too_many_lines").await;
    // More of a variant already in the cart is not a new line.
    let cart = add(&app, Some(&bob), None, &variants[0], 1, 200).await;
    assert_eq!(cart["lines"].as_array().unwrap().len(), 2);
    // An empty token header is no token at all.
    let res = app
        .as_user(Method::GET, "/api/v1/cart", &bob.token)
        .header("X-Cart-Token", "")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}
