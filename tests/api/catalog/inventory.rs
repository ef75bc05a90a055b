//! Stock: reservations that cannot oversell under concurrency, commit, release and expiry,
//! adjustments with a reason, the ledger, low-stock events, and who may do what.

use std::time::Duration;

use futures_util::FutureExt;
use reqwest::Method;
use serde_json::{Value, json};

use super::*;
use crate::helpers::{error_fields, eventually, problem, spawn_app_with};

/// An active product with one variant of `on_hand` stock; returns (product, variant id).
async fn stocked(app: &TestApp, who: &Actor, on_hand: i32, extra: Value) -> (Value, String) {
    let mut variant = json!({"sku": format!("SKU-{}", uuid::Uuid::now_v7().simple()), "price": 500, "on_hand": on_hand});
    if let (Some(v), Some(e)) = (variant.as_object_mut(), extra.as_object()) {
        v.extend(e.clone());
    }
    let p = active_product(
        app,
        who,
        json!({"title": "Stocked", "currency": "USD", "variants": [variant]}),
    )
    .await;
    let p: Value = app
        .json_as(
            &format!("/api/v1/catalog/products/{}", p["id"].as_str().unwrap()),
            &who.token,
        )
        .await;
    let v = p["variants"][0]["id"].as_str().unwrap().to_owned();
    (p, v)
}

fn reserver(app: &TestApp) -> Actor {
    staff(app, &["catalog.stock.reserve"])
}

async fn inventory(app: &TestApp, who: &Actor, variant: &str) -> Value {
    app.json_as(&format!("/api/v1/catalog/inventory/{variant}"), &who.token)
        .await
}

#[tokio::test]
async fn concurrent_reservations_never_oversell() {
    let app = spawn_app_with(&[("BASALT__RATE_LIMIT__ENABLED", "false")]).await;
    let alice = seller(&app);
    let (_, variant) = stocked(&app, &alice, 50, json!({})).await;
    let cart = reserver(&app);
    let path = format!("/api/v1/catalog/inventory/{variant}/reservations");
    let statuses = crate::helpers::statuses_of((0..200).map(|i| {
        app.as_user(Method::POST, &path, &cart.token)
            .json(&json!({"holder": format!("cart:{i}"), "quantity": 1}))
            .send()
            .map(|r| r.expect("request"))
    }))
    .await;
    let won = statuses.iter().filter(|s| **s == 201).count();
    let refused = statuses.iter().filter(|s| **s == 409).count();
    assert_eq!((won, refused), (50, 150), "{statuses:?}");

    let stock = inventory(&app, &alice, &variant).await;
    assert_eq!(stock["reserved"], 50);
    assert_eq!(stock["on_hand"], 50);
    assert_eq!(stock["available"], 0);
    let holds: i64 = sqlx::query_scalar("SELECT count(*) FROM catalog.reservations")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let recorded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM catalog.stock_movements WHERE kind = 'reserved'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!((holds, recorded), (50, 50));
    let res = app
        .as_user(Method::POST, &path, &cart.token)
        .json(&json!({"holder": "late", "quantity": 1}))
        .send()
        .await
        .unwrap();
    let body = problem(res).await;
    assert_eq!(body["code"], "insufficient_stock");
    assert!(
        body["detail"].as_str().unwrap().contains("0 available"),
        "{body}"
    );
}

#[tokio::test]
async fn holds_are_committed_released_and_expire() {
    let app = spawn_app_with(&[("BASALT__CATALOG__RESERVATION_SWEEP_MS", "100")]).await;
    let alice = seller(&app);
    let cart = reserver(&app);
    let (_, variant) = stocked(&app, &alice, 10, json!({})).await;
    let reserve = |quantity: i32, ttl: i64| {
        let req = app
            .as_user(
                Method::POST,
                &format!("/api/v1/catalog/inventory/{variant}/reservations"),
                &cart.token,
            )
            .json(&json!({"holder": "cart:1", "quantity": quantity, "ttl_secs": ttl}));
        async move { req.send().await.unwrap() }
    };
    let action = |id: &Value, what: &str| {
        let req = app.as_user(
            Method::POST,
            &format!(
                "/api/v1/catalog/reservations/{}/{what}",
                id.as_str().unwrap()
            ),
            &cart.token,
        );
        async move { req.send().await.unwrap() }
    };

    let a: Value = reserve(3, 600).await.json().await.unwrap();
    assert_eq!(
        (a["on_hand"].as_i64(), a["reserved"].as_i64()),
        (Some(10), Some(3))
    );
    let res = action(&a["id"], "commit").await;
    assert_eq!(res.status(), 200);
    let stock = inventory(&app, &alice, &variant).await;
    assert_eq!(
        (stock["on_hand"].as_i64(), stock["reserved"].as_i64()),
        (Some(7), Some(0)),
        "sold"
    );
    assert_eq!(
        action(&a["id"], "commit").await.status(),
        404,
        "committed once"
    );
    assert_eq!(action(&a["id"], "release").await.status(), 404);

    let b: Value = reserve(2, 600).await.json().await.unwrap();
    assert_eq!(action(&b["id"], "release").await.status(), 200);
    let stock = inventory(&app, &alice, &variant).await;
    assert_eq!(
        (stock["on_hand"].as_i64(), stock["reserved"].as_i64()),
        (Some(7), Some(0))
    );

    // A hold whose time is up is released by the sweeper, and can no longer be committed.
    let c: Value = reserve(4, 1).await.json().await.unwrap();
    assert_eq!(c["reserved"], 4);
    let released = eventually(Duration::from_secs(10), || async {
        inventory(&app, &alice, &variant).await["reserved"] == 0
    })
    .await;
    assert!(released, "the sweeper releases expired holds");
    assert_eq!(action(&c["id"], "commit").await.status(), 404);

    let kinds: Vec<String> = sqlx::query_scalar(
        "SELECT kind FROM catalog.stock_movements WHERE variant_id = $1::uuid ORDER BY id",
    )
    .bind(&variant)
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(
        kinds,
        [
            "adjusted",
            "reserved",
            "committed",
            "reserved",
            "released",
            "reserved",
            "expired"
        ]
    );

    // Bad input, wrong callers, variants not on sale.
    for (body, field) in [
        (json!({"holder": "x", "quantity": 0}), "quantity"),
        (
            json!({"holder": "x", "quantity": 1, "ttl_secs": 0}),
            "ttl_secs",
        ),
        (json!({"holder": "", "quantity": 1}), "holder"),
    ] {
        let res = app
            .as_user(
                Method::POST,
                &format!("/api/v1/catalog/inventory/{variant}/reservations"),
                &cart.token,
            )
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422);
        assert_eq!(error_fields(&problem(res).await), [field]);
    }
    let path = format!("/api/v1/catalog/inventory/{variant}/reservations");
    let body = json!({"holder": "x", "quantity": 1});
    assert_eq!(
        send(&app, Method::POST, &path, Some(&alice), Some(body.clone()))
            .await
            .status(),
        403
    );
    assert_eq!(
        send(&app, Method::POST, &path, None, Some(body.clone()))
            .await
            .status(),
        401
    );
    let draft = create_product(
        &app,
        &alice,
        json!({"title": "Draft", "currency": "USD", "price": 1}),
    )
    .await;
    let draft_variant = draft["variants"][0]["id"].as_str().unwrap();
    let res = send(
        &app,
        Method::POST,
        &format!("/api/v1/catalog/inventory/{draft_variant}/reservations"),
        Some(&cart),
        Some(body.clone()),
    )
    .await;
    assert_eq!(res.status(), 404, "not on sale");
    let res = send(
        &app,
        Method::POST,
        "/api/v1/catalog/reservations/not-a-uuid/commit",
        Some(&cart),
        None,
    )
    .await;
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn policies_backorders_and_untracked_stock() {
    let app = spawn_app_with(&[]).await;
    let alice = seller(&app);
    let cart = reserver(&app);
    let (_, backorder) = stocked(&app, &alice, 1, json!({"allow_backorder": true})).await;
    let (_, untracked) = stocked(&app, &alice, 0, json!({"track_inventory": false})).await;
    for variant in [&backorder, &untracked] {
        let path = format!("/api/v1/catalog/inventory/{variant}/reservations");
        let res = send(
            &app,
            Method::POST,
            &path,
            Some(&cart),
            Some(json!({"holder": "x", "quantity": 5})),
        )
        .await;
        assert_eq!(res.status(), 201, "{variant}");
        let held: Value = res.json().await.unwrap();
        let res = send(
            &app,
            Method::POST,
            &format!(
                "/api/v1/catalog/reservations/{}/commit",
                held["id"].as_str().unwrap()
            ),
            Some(&cart),
            None,
        )
        .await;
        assert_eq!(res.status(), 200);
    }
    assert_eq!(
        inventory(&app, &alice, &backorder).await["on_hand"],
        -4,
        "sold past zero"
    );
}

#[tokio::test]
async fn stock_is_adjusted_with_a_reason_and_every_change_is_in_the_ledger() {
    let app = spawn_app_with(&[]).await;
    let (alice, bob) = (seller(&app), seller(&app));
    let keeper = staff(&app, &["catalog.stock.manage"]);
    let cart = reserver(&app);
    let (_, variant) = stocked(&app, &alice, 8, json!({})).await;
    let adjust = format!("/api/v1/catalog/inventory/{variant}/adjustments");

    let res = send(
        &app,
        Method::POST,
        &adjust,
        Some(&alice),
        Some(json!({"delta": 4, "reason": "Received a delivery"})),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["on_hand"], 12);
    let res = send(
        &app,
        Method::POST,
        &adjust,
        Some(&alice),
        Some(json!({"delta": -13, "reason": "Lost"})),
    )
    .await;
    assert_eq!(problem(res).await["code"], "insufficient_stock");
    for body in [
        json!({"delta": 1}),
        json!({"delta": 0, "reason": "x"}),
        json!({"delta": 1, "reason": ""}),
    ] {
        let res = send(
            &app,
            Method::POST,
            &adjust,
            Some(&alice),
            Some(body.clone()),
        )
        .await;
        assert!(matches!(res.status().as_u16(), 400 | 422), "{body}");
    }
    assert_eq!(
        send(
            &app,
            Method::POST,
            &adjust,
            Some(&bob),
            Some(json!({"delta": 1, "reason": "x"}))
        )
        .await
        .status(),
        404
    );
    assert_eq!(
        send(
            &app,
            Method::POST,
            &adjust,
            None,
            Some(json!({"delta": 1, "reason": "x"}))
        )
        .await
        .status(),
        401
    );
    let path = format!("/api/v1/catalog/inventory/{variant}");
    assert_eq!(
        send(&app, Method::GET, &path, Some(&bob), None)
            .await
            .status(),
        404
    );
    assert_eq!(
        inventory(&app, &alice, &variant).await["on_hand"],
        12,
        "unchanged by the refusals"
    );

    // Staff adjust anyone's stock, and it is audited.
    let res = send(
        &app,
        Method::POST,
        &adjust,
        Some(&keeper),
        Some(json!({"delta": -5, "reason": "Damaged in storage"})),
    )
    .await;
    assert_eq!(res.json::<Value>().await.unwrap()["on_hand"], 7);
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM platform.audit_log WHERE action = 'catalog.stock.adjusted'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(audited, 1);

    // Falling to the threshold (5) publishes catalog.stock.low once.
    let reserve = format!("{path}/reservations");
    send(
        &app,
        Method::POST,
        &reserve,
        Some(&cart),
        Some(json!({"holder": "c", "quantity": 1})),
    )
    .await;
    assert_eq!(app.events_of("catalog.stock.low").await, 0, "6 left");
    send(
        &app,
        Method::POST,
        &reserve,
        Some(&cart),
        Some(json!({"holder": "c", "quantity": 1})),
    )
    .await;
    send(
        &app,
        Method::POST,
        &reserve,
        Some(&cart),
        Some(json!({"holder": "c", "quantity": 1})),
    )
    .await;
    assert_eq!(app.events_of("catalog.stock.low").await, 1);

    // The ledger, newest first, one page at a time; as private as the stock.
    let page: Value = app
        .json_as(&format!("{path}/movements?limit=2"), &alice.token)
        .await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["kind"], "reserved");
    let rest: Value = app
        .json_as(
            &format!(
                "{path}/movements?limit=10&after={}",
                page["next"].as_str().unwrap()
            ),
            &alice.token,
        )
        .await;
    let rest = rest["items"].as_array().unwrap();
    let opening = rest.last().unwrap();
    assert_eq!(opening["reason"], "opening stock");
    assert_eq!(opening["on_hand_delta"], 8);
    let delivery = &rest[rest.len() - 2];
    assert_eq!(delivery["kind"], "adjusted");
    assert_eq!(delivery["reason"], "Received a delivery");
    assert_eq!(delivery["on_hand_delta"], 4);
    assert_eq!(items.len() + rest.len(), 6);
    assert_eq!(
        send(
            &app,
            Method::GET,
            &format!("{path}/movements"),
            Some(&bob),
            None
        )
        .await
        .status(),
        404
    );
}
