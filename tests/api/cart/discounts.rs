//! Discount codes: staff management, applying them to carts (each refusal its own code),
//! how the amount spreads over lines, and the in-process `api` the orders domain calls:
//! consuming uses under concurrency, locking and completing a cart.

use basalt::domains::cart::{CartError, api};
use chrono::{Duration as Span, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use super::*;
use crate::helpers::{problem, refused, spawn_app, spawn_app_with};

/// An apply that is refused: (status, problem code).
async fn apply_refusal(
    app: &TestApp,
    who: Option<&Actor>,
    token: Option<&str>,
    code: &str,
) -> (u16, String) {
    let res = apply(app, who, token, code).await;
    let status = res.status().as_u16();
    (
        status,
        problem(res).await["code"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn staff_manage_discount_codes_and_nobody_else_does() {
    let app = spawn_app().await;
    let admin = discounts_staff(&app);
    let bob = shopper(&app);
    let body = json!({"code": "summer10", "kind": "percentage", "value": 1000});
    let res = app
        .client
        .post(app.url("/api/v1/cart/discounts"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let d = create_discount(&app, body.clone()).await;
    assert_eq!(d["code"], "SUMMER10", "codes are stored upper-case");
    assert_eq!(d["used_count"], 0);
    let id = d["id"].as_str().unwrap();
    let res = app
        .as_user(Method::POST, "/api/v1/cart/discounts", &admin.token)
        .json(&json!({"code": "Summer10", "kind": "fixed", "value": 500, "currency": "USD"}))
        .send()
        .await
        .unwrap();
    refused(res, 409, "code_taken").await;
    for bad in [
        json!({"code": "X", "kind": "percentage", "value": 10}),
        json!({"code": "BIG", "kind": "percentage", "value": 20000}),
        json!({"code": "FIX", "kind": "fixed", "value": 500}),
        json!({"code": "WIN", "kind": "fixed", "value": 5, "currency": "usd"}),
        json!({"code": "LIM", "kind": "percentage", "value": 5, "usage_limit": 0}),
    ] {
        let res = app
            .as_user(Method::POST, "/api/v1/cart/discounts", &admin.token)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422, "{bad}");
    }
    for (method, path) in [
        (Method::POST, "/api/v1/cart/discounts".to_owned()),
        (Method::GET, "/api/v1/cart/discounts".to_owned()),
        (Method::GET, format!("/api/v1/cart/discounts/{id}")),
        (Method::PUT, format!("/api/v1/cart/discounts/{id}")),
        (Method::DELETE, format!("/api/v1/cart/discounts/{id}")),
    ] {
        let res = app
            .as_user(method.clone(), &path, &bob.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "{method} {path} as a shopper");
        let res = app
            .client
            .request(method.clone(), app.url(&path))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{method} {path} anonymous");
    }
    let listed = app.items_as("/api/v1/cart/discounts", &admin.token).await;
    assert_eq!(listed.len(), 1);
    let res = app
        .as_user(
            Method::PUT,
            &format!("/api/v1/cart/discounts/{id}"),
            &admin.token,
        )
        .json(&json!({"code": "SUMMER15", "kind": "percentage", "value": 1500, "usage_limit": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let updated: Value = res.json().await.unwrap();
    assert_eq!(
        (updated["code"].as_str(), updated["usage_limit"].as_i64()),
        (Some("SUMMER15"), Some(3))
    );
    let res = app
        .as_user(
            Method::DELETE,
            &format!("/api/v1/cart/discounts/{id}"),
            &admin.token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let res = app
        .as_user(
            Method::GET,
            &format!("/api/v1/cart/discounts/{id}"),
            &admin.token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    // The retired code is free again.
    create_discount(
        &app,
        json!({"code": "SUMMER15", "kind": "percentage", "value": 100}),
    )
    .await;
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM platform.audit_log WHERE object_type = 'cart.discount'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(audited, 4);
}

#[tokio::test]
async fn each_unusable_code_is_refused_with_its_own_problem_and_nothing_changes() {
    let app = spawn_app().await;
    let alice = seller(&app);
    let bob = shopper(&app);
    let (_, v) = stocked(&app, &alice, 10, 1000, "USD").await;
    let now = Utc::now();
    create_discount(
        &app,
        json!({"code": "LATER", "kind": "percentage", "value": 1000,
        "starts_at": now + Span::days(1)}),
    )
    .await;
    create_discount(
        &app,
        json!({"code": "OVER", "kind": "percentage", "value": 1000,
        "ends_at": now - Span::days(1)}),
    )
    .await;
    let once = create_discount(
        &app,
        json!({"code": "ONCE", "kind": "percentage", "value": 1000,
        "usage_limit": 1}),
    )
    .await;
    create_discount(
        &app,
        json!({"code": "BIGSPEND", "kind": "percentage", "value": 1000,
        "min_subtotal": 100000}),
    )
    .await;
    create_discount(
        &app,
        json!({"code": "OTHERS", "kind": "percentage", "value": 1000,
        "product_ids": [Uuid::now_v7()]}),
    )
    .await;
    create_discount(
        &app,
        json!({"code": "EUROS", "kind": "fixed", "value": 100, "currency": "EUR"}),
    )
    .await;
    let mine = create_discount(
        &app,
        json!({"code": "MINE", "kind": "percentage", "value": 1000,
        "per_customer_limit": 1}),
    )
    .await;

    // No cart: 404.
    assert_eq!(apply(&app, Some(&bob), None, "LATER").await.status(), 404);
    add(&app, Some(&bob), None, &v, 2, 201).await;
    let guest = add(&app, None, None, &v, 2, 201).await;
    let token = guest["token"].as_str().unwrap().to_owned();

    // The uses are spent through the api, as checkout spends them.
    let mut conn = app.db.acquire().await.unwrap();
    api::consume_discount(&mut conn, uuid(&once["id"]), Uuid::now_v7())
        .await
        .unwrap();
    api::consume_discount(&mut conn, uuid(&mine["id"]), uuid(&json!(bob.id)))
        .await
        .unwrap();
    drop(conn);

    for (code, status, problem_code) in [
        ("NOPE", 422, "discount_unknown"),
        ("LATER", 422, "discount_not_started"),
        ("OVER", 422, "discount_expired"),
        ("ONCE", 409, "discount_used_up"),
        ("BIGSPEND", 422, "discount_minimum_not_met"),
        ("OTHERS", 422, "discount_not_applicable"),
        ("EUROS", 422, "discount_not_applicable"),
        ("MINE", 409, "discount_customer_limit"),
    ] {
        assert_eq!(
            apply_refusal(&app, Some(&bob), None, code).await,
            (status, problem_code.to_owned()),
            "{code}"
        );
    }
    // A per-customer code needs an account.
    assert_eq!(
        apply_refusal(&app, None, Some(&token), "mine").await,
        (422, "discount_needs_account".to_owned())
    );
    let cart = get_cart(&app, Some(&bob), None).await;
    assert!(
        cart["discount"].is_null() && cart["discount_problem"].is_null(),
        "{cart}"
    );
    assert_eq!(cart["totals"]["discount"], 0);
}

#[tokio::test]
async fn a_discount_spreads_over_its_lines_with_the_remainder_on_the_last() {
    let app = spawn_app().await;
    let alice = seller(&app);
    let bob = shopper(&app);
    let (p1, v1) = stocked(&app, &alice, 10, 1000, "USD").await;
    let (_, v2) = stocked(&app, &alice, 10, 1000, "USD").await;
    let (_, v3) = stocked(&app, &alice, 10, 1000, "USD").await;
    for (i, v) in [&v1, &v2, &v3].into_iter().enumerate() {
        add(&app, Some(&bob), None, v, 1, if i == 0 { 201 } else { 200 }).await;
    }
    create_discount(
        &app,
        json!({"code": "TENOFF", "kind": "fixed", "value": 1000, "currency": "USD"}),
    )
    .await;
    let res = apply(&app, Some(&bob), None, "tenoff").await;
    assert_eq!(res.status(), 200);
    let cart: Value = res.json().await.unwrap();
    let shares: Vec<i64> = cart["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["discount"].as_i64().unwrap())
        .collect();
    assert_eq!(shares, vec![333, 333, 334]);
    assert_eq!(cart["discount"]["amount"], 1000);
    assert_eq!(cart["totals"]["discount"], 1000);
    assert_eq!(cart["totals"]["total"], 2000);

    // One code per cart: a product-only percentage replaces it, on that line alone.
    // 12.5 % of 1000 = 125.
    create_discount(
        &app,
        json!({"code": "ONLY1", "kind": "percentage", "value": 1250,
        "product_ids": [p1]}),
    )
    .await;
    let res = apply(&app, Some(&bob), None, "ONLY1").await;
    assert_eq!(res.status(), 200);
    let cart: Value = res.json().await.unwrap();
    assert_eq!(
        discount_shares(&cart),
        vec![(v1.clone(), 125), (v2.clone(), 0), (v3.clone(), 0)]
    );

    // Taking it off; a code the cart does not hold is a 404.
    let res = cart_req(
        &app,
        Method::DELETE,
        "/discount-codes/only1",
        Some(&bob),
        None,
        None,
    )
    .await;
    assert_eq!(res.status(), 200);
    let cart: Value = res.json().await.unwrap();
    assert!(cart["discount"].is_null());
    assert_eq!(cart["totals"]["discount"], 0);
    let res = cart_req(
        &app,
        Method::DELETE,
        "/discount-codes/ONLY1",
        Some(&bob),
        None,
        None,
    )
    .await;
    assert_eq!(res.status(), 404);

    // A code retired by staff after it was applied stops applying; the read says why.
    let d = create_discount(
        &app,
        json!({"code": "BRIEF", "kind": "percentage", "value": 500}),
    )
    .await;
    assert_eq!(apply(&app, Some(&bob), None, "BRIEF").await.status(), 200);
    let admin = discounts_staff(&app);
    let res = app
        .as_user(
            Method::DELETE,
            &format!("/api/v1/cart/discounts/{}", d["id"].as_str().unwrap()),
            &admin.token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let cart = get_cart(&app, Some(&bob), None).await;
    assert!(cart["discount"].is_null());
    assert_eq!(cart["discount_problem"]["reason"], "discount_unknown");
    assert_eq!(cart["totals"]["total"], 3000);
}

#[tokio::test]
async fn a_hundred_concurrent_consumes_of_a_code_limited_to_ten_succeed_ten_times() {
    let app = spawn_app_with(&[("BASALT__DATABASE__MAX_CONNECTIONS", "40")]).await;
    let d = create_discount(
        &app,
        json!({"code": "TEN", "kind": "percentage", "value": 1000,
        "usage_limit": 10}),
    )
    .await;
    let id = uuid(&d["id"]);
    let results = futures_util::future::join_all((0..100).map(|_| {
        let db = app.db.clone();
        async move {
            let mut conn = db.acquire().await.unwrap();
            api::consume_discount(&mut conn, id, Uuid::now_v7()).await
        }
    }))
    .await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 10);
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| matches!(e, CartError::DiscountUnavailable)),
        "every refusal is discount_unavailable"
    );
    let (used, recorded): (i32, i64) = sqlx::query_as(
        "SELECT d.used_count, (SELECT sum(uses) FROM cart.discount_redemptions r WHERE r.discount_id = d.id)
           FROM cart.discounts d WHERE d.id = $1",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!((used, recorded), (10, 10));

    // One customer racing themselves for a per-customer limit of 3: exactly 3.
    let d = create_discount(
        &app,
        json!({"code": "THREE", "kind": "percentage", "value": 1000,
        "per_customer_limit": 3}),
    )
    .await;
    let id = uuid(&d["id"]);
    let user = Uuid::now_v7();
    let results = futures_util::future::join_all((0..30).map(|_| {
        let db = app.db.clone();
        async move {
            let mut tx = db.begin().await.unwrap();
            let r = api::consume_discount(&mut tx, id, user).await;
            if r.is_ok() {
                tx.commit().await.unwrap();
            }
            r
        }
    }))
    .await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 3);
    let used: i32 = sqlx::query_scalar("SELECT used_count FROM cart.discounts WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(used, 3);
    // A use given back can be taken again.
    let mut conn = app.db.acquire().await.unwrap();
    assert!(api::release_discount(&mut conn, id, user).await.unwrap());
    api::consume_discount(&mut conn, id, user).await.unwrap();
    assert!(matches!(
        api::consume_discount(&mut conn, id, user).await,
        Err(CartError::DiscountUnavailable)
    ));
}

#[tokio::test]
async fn checkout_locks_prices_and_completes_the_cart_through_the_api() {
    let app = spawn_app().await;
    let alice = seller(&app);
    let bob = shopper(&app);
    let (_, v1) = stocked(&app, &alice, 10, 1500, "USD").await;
    let (_, v2) = stocked(&app, &alice, 10, 250, "USD").await;
    add(&app, Some(&bob), None, &v1, 2, 201).await;
    add(&app, Some(&bob), None, &v2, 4, 200).await;
    let d = create_discount(
        &app,
        json!({"code": "FIVE", "kind": "fixed", "value": 500, "currency": "USD"}),
    )
    .await;
    assert_eq!(apply(&app, Some(&bob), None, "FIVE").await.status(), 200);
    set_setting(&app, "tax_rates", json!({"GB": 2000})).await;
    let res = cart_req(
        &app,
        Method::PUT,
        "/addresses",
        Some(&bob),
        None,
        Some(json!({"shipping_address": {"name": "Bob", "line1": "1 High St", "city": "Leeds", "country": "GB"}})),
    )
    .await;
    assert_eq!(res.status(), 200);
    let cart = get_cart(&app, Some(&bob), None).await;
    let cart_id = uuid(&cart["id"]);
    let user = uuid(&json!(bob.id));

    // Another user's id finds nothing.
    let mut tx = app.db.begin().await.unwrap();
    assert!(
        api::lock_for_checkout(&mut tx, cart_id, Uuid::now_v7())
            .await
            .unwrap()
            .is_none()
    );
    // The stored settings apply at once (no wait for the replica's refresh).
    let mut locked = api::lock_for_checkout(&mut tx, cart_id, user)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(locked.currency, "USD");
    assert_eq!(locked.lines.len(), 2);
    assert_eq!(locked.totals.subtotal, 4000);
    assert_eq!(locked.totals.discount, 500);
    // 20 % on each line's net: (3000 - 375) and (1000 - 125).
    assert_eq!(locked.totals.tax, 525 + 175);
    assert_eq!(locked.totals.total, 3500 + 700);
    assert_eq!(
        locked.shipping_address.as_ref().map(|a| a.country.as_str()),
        Some("GB")
    );
    assert_eq!(
        locked.discount.as_ref().map(|d| d.code.as_str()),
        Some("FIVE")
    );
    assert_eq!(
        locked.discount.as_ref().map(|d| d.discount_id),
        Some(uuid(&d["id"]))
    );
    assert!(locked.changes.is_empty());
    assert!(locked.completed_order_id.is_none());
    assert_eq!(locked.lines[0].seller_id, uuid(&json!(alice.id)));
    assert_eq!(
        locked.lines.iter().map(|l| l.total).sum::<i64>(),
        locked.totals.total
    );
    let order = Uuid::now_v7();
    api::consume_discount(&mut tx, uuid(&d["id"]), user)
        .await
        .unwrap();
    api::complete(&mut tx, cart_id, order).await.unwrap();
    assert!(matches!(
        api::complete(&mut tx, cart_id, order).await,
        Err(CartError::CartCompleted)
    ));
    tx.commit().await.unwrap();

    // Completed: read-only, checkout finds the order; the next add starts a new cart.
    let mut conn = app.db.acquire().await.unwrap();
    locked = api::lock_for_checkout(&mut conn, cart_id, user)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(locked.completed_order_id, Some(order));
    assert!(matches!(
        api::complete(&mut conn, Uuid::now_v7(), order).await,
        Err(CartError::CartNotFound)
    ));
    drop(conn);
    let res = cart_req(&app, Method::GET, "", Some(&bob), None, None).await;
    assert_eq!(res.status(), 404);
    let next = add(&app, Some(&bob), None, &v1, 1, 201).await;
    assert_ne!(next["id"], cart["id"]);
}

#[tokio::test]
async fn a_category_code_covers_its_subcategories_and_nothing_else() {
    let app = spawn_app().await;
    let alice = seller(&app);
    let bob = shopper(&app);
    let curator = staff(&app, &["catalog.categories.manage"]);
    let category = |body: Value| {
        let app = &app;
        let token = curator.token.clone();
        async move {
            let res = app
                .as_user(Method::POST, "/api/v1/catalog/categories", &token)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 201);
            res.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let home = category(json!({"name": "Home"})).await;
    let lamps = category(json!({"name": "Lamps", "parent_id": home})).await;
    let garden = category(json!({"name": "Garden"})).await;
    let mut variants = Vec::new();
    for cat in [&lamps, &garden] {
        let p = active_product(
            &app,
            &alice,
            json!({"title": "Thing", "currency": "USD", "category_id": cat,
                   "variants": [{"price": 2000, "on_hand": 10}]}),
        )
        .await;
        let p: Value = app
            .json_as(
                &format!("/api/v1/catalog/products/{}", p["id"].as_str().unwrap()),
                &alice.token,
            )
            .await;
        variants.push(p["variants"][0]["id"].as_str().unwrap().to_owned());
    }
    add(&app, Some(&bob), None, &variants[0], 1, 201).await;
    add(&app, Some(&bob), None, &variants[1], 1, 200).await;
    create_discount(
        &app,
        json!({"code": "HOME25", "kind": "percentage", "value": 2500, "category_ids": [home]}),
    )
    .await;
    let res = apply(&app, Some(&bob), None, "HOME25").await;
    assert_eq!(res.status(), 200);
    let cart: Value = res.json().await.unwrap();
    assert_eq!(
        discount_shares(&cart),
        vec![(variants[0].clone(), 500), (variants[1].clone(), 0)],
        "the lamp (in Home > Lamps) gets 25 %, the garden product nothing"
    );
    assert_eq!(cart["totals"]["total"], 3500);
}
