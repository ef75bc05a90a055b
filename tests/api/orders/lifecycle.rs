//! After checkout: manual payment, fulfilment per seller, cancellation (stock released or
//! returned), the state machine's 409s, lapsed holds, unpaid orders, who sees what, and
//! the round-trip budget of reading an order.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use super::*;
use crate::helpers::{eventually, problem, refused, spawn_app, spawn_app_with};

async fn ok(res: reqwest::Response) -> Value {
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn staff_take_an_order_from_payment_to_completion_and_history_records_each_move() {
    let app = spawn_app().await;
    let b = buyer(&app);
    let Split {
        order: o,
        parts: [(s1, _, v1), (s2, _, v2)],
        ..
    } = split_order(&app, &b, [(1000, 2), (500, 1)]).await;
    let id = o["id"].as_str().unwrap().to_owned();
    let staff = manager(&app);
    let warehouse = crate::catalog::staff(&app, &["orders.fulfil"]);

    // Fulfilment before payment: 409 naming the state.
    let p = refused(
        post(&app, &warehouse, &format!("/{id}/process"), None).await,
        409,
        "invalid_transition",
    )
    .await;
    assert!(
        p["detail"].as_str().unwrap().contains("pending_payment"),
        "{p}"
    );
    // Only orders.manage marks payments; the buyer may not.
    refused(
        post(&app, &b, &format!("/{id}/mark-paid"), None).await,
        403,
        "forbidden",
    )
    .await;
    refused(
        post(&app, &warehouse, &format!("/{id}/mark-paid"), None).await,
        403,
        "forbidden",
    )
    .await;
    let paid = ok(post(&app, &staff, &format!("/{id}/mark-paid"), None).await).await;
    assert_eq!(paid["status"], "paid");
    assert!(paid["paid_at"].is_string());
    assert!(
        paid["sub_orders"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["status"] == "paid")
    );
    assert_eq!(paid["sub_orders"][0]["lines"][0]["stock"], "committed");
    // Sold: on_hand and reserved both went down.
    assert_eq!(stock_of(&app, &s1, &v1).await, (8, 0));
    assert_eq!(stock_of(&app, &s2, &v2).await, (9, 0));
    // Twice is a 409 naming the state.
    let p = refused(
        post(&app, &staff, &format!("/{id}/mark-paid"), None).await,
        409,
        "invalid_transition",
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("paid"), "{p}");

    ok(post(&app, &warehouse, &format!("/{id}/process"), None).await).await;
    let parts: Vec<String> = paid["sub_orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    let tracking =
        json!({"carrier": "DHL", "number": "JD0146", "url": "https://dhl.example/JD0146"});
    let one = ok(post(
        &app,
        &warehouse,
        &format!("/{id}/sub-orders/{}/ship", parts[0]),
        Some(tracking.clone()),
    )
    .await)
    .await;
    assert_eq!(one["status"], "processing", "one part of two shipped");
    let shipped_part = one["sub_orders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == parts[0].as_str())
        .unwrap()
        .clone();
    assert_eq!(shipped_part["status"], "shipped");
    assert_eq!(shipped_part["tracking"], tracking);
    // Delivering a part that has not shipped: 409 naming its state.
    let p = refused(
        post(
            &app,
            &warehouse,
            &format!("/{id}/sub-orders/{}/deliver", parts[1]),
            None,
        )
        .await,
        409,
        "invalid_transition",
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("processing"), "{p}");
    // A part of another order: 404. Bad tracking: 422.
    refused(
        post(
            &app,
            &warehouse,
            &format!("/{id}/sub-orders/{}/ship", Uuid::now_v7()),
            Some(tracking.clone()),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    refused(
        post(
            &app,
            &warehouse,
            &format!("/{id}/sub-orders/{}/ship", parts[1]),
            Some(json!({"carrier": "", "number": "1"})),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    let both = ok(post(
        &app,
        &warehouse,
        &format!("/{id}/sub-orders/{}/ship", parts[1]),
        Some(tracking.clone()),
    )
    .await)
    .await;
    assert_eq!(both["status"], "shipped");
    // Completing before delivery: 409.
    refused(
        post(&app, &staff, &format!("/{id}/complete"), None).await,
        409,
        "invalid_transition",
    )
    .await;
    for part in &parts {
        ok(post(
            &app,
            &warehouse,
            &format!("/{id}/sub-orders/{part}/deliver"),
            None,
        )
        .await)
        .await;
    }
    let done = ok(post(&app, &warehouse, &format!("/{id}/complete"), None).await).await;
    assert_eq!(done["status"], "completed");

    let history: Vec<Value> = app
        .json_as(&format!("/api/v1/orders/{id}/history"), &b.token)
        .await;
    let moves: Vec<(Option<&str>, &str, bool)> = history
        .iter()
        .map(|h| {
            (
                h["from"].as_str(),
                h["to"].as_str().unwrap(),
                h["sub_order_id"].is_string(),
            )
        })
        .collect();
    assert_eq!(
        moves,
        vec![
            (None, "pending_payment", false),
            (Some("pending_payment"), "paid", false),
            (Some("paid"), "processing", false),
            (Some("processing"), "shipped", true),
            (Some("processing"), "shipped", true),
            (Some("processing"), "shipped", false),
            (Some("shipped"), "delivered", true),
            (Some("shipped"), "delivered", true),
            (Some("shipped"), "delivered", false),
            (Some("delivered"), "completed", false),
        ]
    );
    assert_eq!(history[0]["actor"], format!("user:{}", b.id));
    assert_eq!(history[1]["actor"], format!("user:{}", staff.id));
    for (event, n) in [
        ("order.created", 1),
        ("order.paid", 1),
        ("order.shipped", 2),
        ("order.delivered", 2),
        ("order.completed", 1),
    ] {
        assert_eq!(app.events_of(event).await, n, "{event}");
    }
    let shipped: Value = sqlx::query_scalar(
        "SELECT payload FROM platform.outbox WHERE event_type = 'order.shipped' ORDER BY seq DESC LIMIT 1",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(shipped["order_status"], "shipped");
    assert_eq!(shipped["tracking"]["carrier"], "DHL");
    // Paid orders count as purchases and sales in the catalog.
    let sold: i64 =
        sqlx::query_scalar("SELECT count(*) FROM catalog.purchases WHERE user_id = $1::uuid")
            .bind(&b.id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(sold, 2);
}

#[tokio::test]
async fn customers_cancel_before_shipping_staff_after_and_stock_comes_back() {
    let app = spawn_app().await;
    let staff = manager(&app);
    let b = buyer(&app);

    // Unpaid: the hold is released.
    let (o, v) = simple_order(&app, &b).await;
    let id = o["id"].as_str().unwrap();
    let c = ok(post(&app, &b, &format!("/{id}/cancel"), None).await).await;
    assert_eq!(c["status"], "cancelled");
    assert_eq!(c["cancel_reason"], "customer");
    assert_eq!(c["sub_orders"][0]["lines"][0]["stock"], "released");
    let reserved: i64 = sqlx::query_scalar(
        "SELECT reserved::bigint FROM catalog.stock WHERE variant_id = $1::uuid",
    )
    .bind(&v)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(reserved, 0);
    let p = refused(
        post(&app, &b, &format!("/{id}/cancel"), None).await,
        409,
        "invalid_transition",
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("cancelled"));

    // Unpaid with a one-use code: cancelling gives the use back, so it works again.
    let s = seller(&app);
    let (_, coded) = stocked(&app, &s, 10, 1000).await;
    discount(&app, "ONCE", Some(1)).await;
    let cart = cart_with(&app, &b, &[(&coded, 1)]).await;
    apply_code(&app, &b, "ONCE").await;
    let o = place(&app, &b, &cart).await;
    assert_eq!(o["discount_code"], "ONCE");
    let id = o["id"].as_str().unwrap();
    ok(post(&app, &b, &format!("/{id}/cancel"), None).await).await;
    let used: i32 = sqlx::query_scalar("SELECT used_count FROM cart.discounts WHERE code = 'ONCE'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(used, 0);
    let other = buyer(&app);
    let cart = cart_with(&app, &other, &[(&coded, 1)]).await;
    apply_code(&app, &other, "ONCE").await;
    assert_eq!(place(&app, &other, &cart).await["discount_code"], "ONCE");

    // Shipped: the customer may not.
    let (o, v) = simple_order(&app, &b).await;
    let id = o["id"].as_str().unwrap();
    ok(post(&app, &staff, &format!("/{id}/mark-paid"), None).await).await;
    let part = o["sub_orders"][0]["id"].as_str().unwrap();
    ok(post(
        &app,
        &staff,
        &format!("/{id}/sub-orders/{part}/ship"),
        Some(json!({"carrier": "UPS", "number": "1Z"})),
    )
    .await)
    .await;
    let on_hand = || async {
        sqlx::query_scalar::<_, i32>(
            "SELECT on_hand FROM catalog.stock WHERE variant_id = $1::uuid",
        )
        .bind(&v)
        .fetch_one(&app.db)
        .await
        .unwrap()
    };
    assert_eq!(on_hand().await, 8);
    let p = refused(
        post(&app, &b, &format!("/{id}/cancel"), None).await,
        409,
        "invalid_transition",
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("shipped"), "{p}");
    // Staff may; the shipped units have left the warehouse, so they do not come back on
    // hand with the cancel (that is a return) and the line stays sold.
    let c = ok(post(&app, &staff, &format!("/{id}/cancel"), None).await).await;
    assert_eq!(c["status"], "cancelled");
    assert_eq!(c["sub_orders"][0]["lines"][0]["stock"], "committed");
    assert_eq!(on_hand().await, 8);
    let e: Value = sqlx::query_scalar(
        "SELECT payload FROM platform.outbox WHERE event_type = 'order.cancelled' ORDER BY seq DESC LIMIT 1",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(
        (e["from"].as_str(), e["was_paid"].as_bool()),
        (Some("shipped"), Some(true))
    );
}

#[tokio::test]
async fn cancelling_a_paid_order_whose_product_was_deleted_keeps_its_line_sold() {
    let app = spawn_app().await;
    let (s, b) = (seller(&app), buyer(&app));
    let (product, v) = stocked(&app, &s, 10, 1000).await;
    let cart = cart_with(&app, &b, &[(&v, 2)]).await;
    let o = place(&app, &b, &cart).await;
    let id = o["id"].as_str().unwrap();
    ok(post(&app, &manager(&app), &format!("/{id}/mark-paid"), None).await).await;
    let res = app
        .as_user(
            Method::DELETE,
            &format!("/api/v1/catalog/products/{product}"),
            &s.token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    // (on_hand, stock movements) of the variant.
    let stock = || async {
        sqlx::query_as::<_, (i32, i64)>(
            "SELECT st.on_hand,
                    (SELECT count(*) FROM catalog.stock_movements m WHERE m.variant_id = st.variant_id)
               FROM catalog.stock st WHERE st.variant_id = $1::uuid",
        )
        .bind(&v)
        .fetch_one(&app.db)
        .await
        .unwrap()
    };
    let (on_hand, movements) = stock().await;
    assert_eq!(on_hand, 8, "two sold");

    // The variant is gone: nothing can go back on hand, and the cancel still goes through.
    let c = ok(post(&app, &b, &format!("/{id}/cancel"), None).await).await;
    assert_eq!(c["status"], "cancelled");
    assert_eq!(
        c["sub_orders"][0]["lines"][0]["stock"], "committed",
        "sold, not claimed restocked"
    );
    assert_eq!(
        stock().await,
        (8, movements),
        "nothing went back, nothing recorded"
    );
    let was_paid: bool = sqlx::query_scalar(
        "SELECT (payload->>'was_paid')::boolean FROM platform.outbox
          WHERE event_type = 'order.cancelled' AND aggregate_id = $1",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(was_paid, "a refund is due");
}

#[tokio::test]
async fn cancelling_with_one_part_shipped_names_the_part_and_restocks_only_what_stayed() {
    let app = spawn_app().await;
    let staff = manager(&app);
    let b = buyer(&app);
    let Split {
        order: o,
        parts: [(s1, _, v1), (s2, _, v2)],
        ..
    } = split_order(&app, &b, [(1000, 2), (500, 3)]).await;
    let id = o["id"].as_str().unwrap();
    ok(post(&app, &staff, &format!("/{id}/mark-paid"), None).await).await;
    let part_of = |v: &str| {
        o["sub_orders"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["lines"][0]["variant_id"] == v)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let shipped = part_of(&v1);
    let tracking = json!({"carrier": "UPS", "number": "1Z"});
    ok(post(
        &app,
        &staff,
        &format!("/{id}/sub-orders/{shipped}/ship"),
        Some(tracking),
    )
    .await)
    .await;
    assert_eq!(
        (
            stock_of(&app, &s1, &v1).await,
            stock_of(&app, &s2, &v2).await
        ),
        ((8, 0), (7, 0))
    );

    // The order is still `paid`: the refusal says a part has shipped, not that the order did.
    let p = refused(
        post(&app, &b, &format!("/{id}/cancel"), None).await,
        409,
        "invalid_transition",
    )
    .await;
    let detail = p["detail"].as_str().unwrap();
    assert!(detail.contains("A part of the order is shipped"), "{p}");
    assert!(!detail.starts_with("The order is shipped"), "{p}");

    // Staff cancel: the unshipped part's units return, the shipped part's stay sold.
    let c = ok(post(&app, &staff, &format!("/{id}/cancel"), None).await).await;
    assert_eq!(c["status"], "cancelled");
    let line_of = |v: &str| {
        c["sub_orders"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|p| p["lines"].as_array().unwrap())
            .find(|l| l["variant_id"] == v)
            .unwrap()["stock"]
            .clone()
    };
    assert_eq!(line_of(&v1), "committed");
    assert_eq!(line_of(&v2), "restocked");
    assert_eq!(stock_of(&app, &s1, &v1).await, (8, 0));
    assert_eq!(stock_of(&app, &s2, &v2).await, (10, 0));
}

#[tokio::test]
async fn tracking_must_be_an_http_link_and_blank_carriers_or_numbers_are_refused() {
    let app = spawn_app().await;
    let staff = manager(&app);
    let b = buyer(&app);
    let (o, _) = simple_order(&app, &b).await;
    let id = o["id"].as_str().unwrap();
    let part = o["sub_orders"][0]["id"].as_str().unwrap();
    ok(post(&app, &staff, &format!("/{id}/mark-paid"), None).await).await;
    let ship = format!("/{id}/sub-orders/{part}/ship");
    for bad in [
        json!({"carrier": "UPS", "number": "1Z", "url": "javascript:alert(1)"}),
        json!({"carrier": "UPS", "number": "1Z", "url": "data:text/html,<script>alert(1)</script>"}),
        json!({"carrier": "UPS", "number": "1Z", "url": "ftp://ups.example/1Z"}),
        json!({"carrier": "UPS", "number": "1Z", "url": "https://"}),
        json!({"carrier": "   ", "number": "1Z"}),
        json!({"carrier": "UPS", "number": " \t "}),
    ] {
        let res = post(&app, &staff, &ship, Some(bad.clone())).await;
        assert_eq!(res.status(), 422, "{bad}");
        problem(res).await;
    }
    // Surrounding blanks are trimmed before they are checked and stored.
    let done = ok(post(
        &app,
        &staff,
        &ship,
        Some(json!({"carrier": " UPS ", "number": " 1Z ", "url": "  https://ups.example/track?n=1Z "})),
    )
    .await)
    .await;
    assert_eq!(
        done["sub_orders"][0]["tracking"],
        json!({"carrier": "UPS", "number": "1Z", "url": "https://ups.example/track?n=1Z"})
    );
}

#[tokio::test]
async fn concurrent_transitions_of_one_order_cannot_both_win() {
    let app = spawn_app().await;
    let staff = manager(&app);
    let b = buyer(&app);
    let (o, v) = simple_order(&app, &b).await;
    let id = o["id"].as_str().unwrap().to_owned();
    // Ten payments and ten cancels at once: one of them wins, the rest see its result.
    let (pay_path, cancel_path) = (format!("/{id}/mark-paid"), format!("/{id}/cancel"));
    let pays = (0..10).map(|_| post(&app, &staff, &pay_path, None));
    let cancels = (0..10).map(|_| post(&app, &b, &cancel_path, None));
    let (pays, cancels) = futures_util::future::join(
        futures_util::future::join_all(pays),
        futures_util::future::join_all(cancels),
    )
    .await;
    let won = |rs: &[reqwest::Response]| rs.iter().filter(|r| r.status() == 200).count();
    let (paid, cancelled) = (won(&pays), won(&cancels));
    assert!(
        pays.iter()
            .chain(&cancels)
            .all(|r| r.status() == 200 || r.status() == 409)
    );
    let order: Value = app.json_as(&format!("/api/v1/orders/{id}"), &b.token).await;
    assert!(paid <= 1, "at most one payment");
    assert!(cancelled <= 1, "at most one cancel");
    let history: Vec<Value> = app
        .json_as(&format!("/api/v1/orders/{id}/history"), &b.token)
        .await;
    assert_eq!(
        history.len(),
        1 + paid + cancelled,
        "one history row per winning move"
    );
    let (on_hand, reserved): (i32, i32) =
        sqlx::query_as("SELECT on_hand, reserved FROM catalog.stock WHERE variant_id = $1::uuid")
            .bind(&v)
            .fetch_one(&app.db)
            .await
            .unwrap();
    match (order["status"].as_str().unwrap(), paid) {
        ("paid", 1) => assert_eq!((on_hand, reserved), (8, 0)),
        ("cancelled", 1) => assert_eq!((on_hand, reserved), (10, 0), "sold, then returned"),
        ("cancelled", 0) => assert_eq!((on_hand, reserved), (10, 0), "released"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn orders_are_private_listed_in_pages_and_filtered() {
    let app = spawn_app().await;
    let b = buyer(&app);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (o, _) = simple_order(&app, &b).await;
        ids.push(o["id"].as_str().unwrap().to_owned());
    }
    let other = buyer(&app);
    let (theirs, _) = simple_order(&app, &other).await;
    let theirs = theirs["id"].as_str().unwrap();

    // Another user: 404 for reads and changes; anonymous: 401.
    for path in [
        format!("/api/v1/orders/{}", ids[0]),
        format!("/api/v1/orders/{}/history", ids[0]),
    ] {
        let res = app
            .as_user(Method::GET, &path, &other.token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{path}");
        assert_eq!(app.get(&path).await.status(), 401, "{path}");
    }
    refused(
        post(&app, &other, &format!("/{}/cancel", ids[0]), None).await,
        404,
        "not_found",
    )
    .await;
    assert_eq!(app.get("/api/v1/orders").await.status(), 401);
    let res = app
        .client
        .post(app.url(&format!("/api/v1/orders/{}/cancel", ids[0])))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // Not a uuid: 404 as well.
    let res = app
        .as_user(Method::GET, "/api/v1/orders/nope", &b.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    // Mine, newest first, two a page.
    let page: Value = app.json_as("/api/v1/orders?limit=2", &b.token).await;
    let got: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, vec![ids[2].as_str(), ids[1].as_str()]);
    let next = page["next"].as_str().unwrap();
    let page: Value = app
        .json_as(&format!("/api/v1/orders?limit=2&after={next}"), &b.token)
        .await;
    assert_eq!(page["items"][0]["id"], ids[0].as_str());
    assert!(page.get("next").is_none());
    let res = app
        .as_user(Method::GET, "/api/v1/orders?after=garbage", &b.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    // Filters: status and creation date.
    let staff = manager(&app);
    ok(post(&app, &staff, &format!("/{}/mark-paid", ids[1]), None).await).await;
    let paid = app.items_as("/api/v1/orders?status=paid", &b.token).await;
    assert_eq!(paid.len(), 1);
    assert_eq!(paid[0]["id"], ids[1].as_str());
    let res = app
        .as_user(Method::GET, "/api/v1/orders?status=lost", &b.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%SZ");
    assert_eq!(
        app.items_as(&format!("/api/v1/orders?created_from={future}"), &b.token)
            .await
            .len(),
        0
    );
    assert_eq!(
        app.items_as(&format!("/api/v1/orders?created_to={future}"), &b.token)
            .await
            .len(),
        3
    );

    // Everyone's: staff only.
    let res = app
        .as_user(Method::GET, "/api/v1/orders?all=true", &b.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let all = app.items_as("/api/v1/orders?all=true", &staff.token).await;
    assert_eq!(all.len(), 4);
    assert!(all.iter().any(|o| o["id"] == theirs));
    let read: Value = app
        .json_as(&format!("/api/v1/orders/{theirs}"), &staff.token)
        .await;
    assert_eq!(read["id"], theirs);
}

#[tokio::test]
async fn reading_an_order_is_one_statement() {
    let app = spawn_app().await;
    let b = buyer(&app);
    let (o, _) = simple_order(&app, &b).await;
    let id = o["id"].as_str().unwrap();
    // Twice: the first use of a pooled connection may prepare; the count is the same.
    for _ in 0..2 {
        let res = app
            .as_user(Method::GET, &format!("/api/v1/orders/{id}"), &b.token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(
            crate::statements::round_trips(&res),
            1,
            "{:?}",
            crate::statements::of(&res)
        );
    }
}

#[tokio::test]
async fn a_payment_after_the_hold_lapsed_takes_the_stock_again_or_needs_attention() {
    let app = spawn_app_with(&[
        ("BASALT__ORDERS__HOLD_TTL_SECS", "1"),
        ("BASALT__CATALOG__RESERVATION_SWEEP_MS", "200"),
    ])
    .await;
    let s = seller(&app);
    let staff = manager(&app);
    let (_, scarce) = stocked(&app, &s, 1, 900).await;
    let (_, plenty) = stocked(&app, &s, 10, 100).await;
    let late = buyer(&app);
    let cart = cart_with(&app, &late, &[(&scarce, 1), (&plenty, 2)]).await;
    let o = place(&app, &late, &cart).await;
    let id = o["id"].as_str().unwrap();
    // The hold lapses and the sweeper returns the stock to sale.
    assert!(
        eventually(Duration::from_secs(10), || async {
            stock_of(&app, &s, &scarce).await == (1, 0)
        })
        .await
    );
    assert_eq!(stock_of(&app, &s, &plenty).await, (10, 0));
    // Someone else buys the last unit meanwhile.
    let quick = buyer(&app);
    let cart = cart_with(&app, &quick, &[(&scarce, 1)]).await;
    let q = place(&app, &quick, &cart).await;
    ok(post(
        &app,
        &staff,
        &format!("/{}/mark-paid", q["id"].as_str().unwrap()),
        None,
    )
    .await)
    .await;

    // The late payment is not lost: what is still there is sold, the rest needs staff.
    let paid = ok(post(&app, &staff, &format!("/{id}/mark-paid"), None).await).await;
    assert_eq!(paid["status"], "requires_attention");
    let lines = paid["sub_orders"][0]["lines"].as_array().unwrap();
    let stock_of_line =
        |v: &str| lines.iter().find(|l| l["variant_id"] == v).unwrap()["stock"].clone();
    assert_eq!(stock_of_line(&scarce), "missing");
    assert_eq!(stock_of_line(&plenty), "committed");
    assert_eq!(stock_of(&app, &s, &plenty).await, (8, 0));
    assert_eq!(stock_of(&app, &s, &scarce).await, (0, 0));
    // Staff see it and decide: it may go on to processing (after restocking by hand) or be
    // cancelled, which returns what was sold.
    let flagged = app
        .items_as(
            "/api/v1/orders?all=true&status=requires_attention",
            &staff.token,
        )
        .await;
    assert_eq!(flagged.len(), 1);
    // Processing takes the missing unit off on_hand: refused while there is none...
    let p = refused(
        post(&app, &staff, &format!("/{id}/process"), None).await,
        409,
        "insufficient_stock",
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains(&scarce), "{p}");
    assert_eq!(
        ok(app_get(&app, &staff, id).await).await["status"],
        "requires_attention"
    );
    // ...and taken once the seller restocks: the unit is sold, not shipped from nowhere.
    let res = app
        .as_user(
            Method::POST,
            &format!("/api/v1/catalog/inventory/{scarce}/adjustments"),
            &s.token,
        )
        .json(&json!({"delta": 3, "reason": "found in the back"}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    let p = ok(post(&app, &staff, &format!("/{id}/process"), None).await).await;
    assert_eq!(p["status"], "processing");
    assert!(
        p["sub_orders"][0]["lines"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["stock"] == "committed"),
        "{p}"
    );
    assert_eq!(stock_of(&app, &s, &scarce).await, (2, 0));
    let c = ok(post(&app, &staff, &format!("/{id}/cancel"), None).await).await;
    assert_eq!(c["status"], "cancelled");
    assert_eq!(stock_of(&app, &s, &plenty).await, (10, 0));
    assert_eq!(stock_of(&app, &s, &scarce).await, (3, 0));
}

/// `GET /orders/{id}` as `who`.
async fn app_get(
    app: &crate::helpers::TestApp,
    who: &crate::catalog::Actor,
    id: &str,
) -> reqwest::Response {
    app.as_user(Method::GET, &format!("/api/v1/orders/{id}"), &who.token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn orders_left_unpaid_past_the_grace_are_cancelled_by_the_job() {
    let app = spawn_app_with(&[
        ("BASALT__ORDERS__HOLD_TTL_SECS", "1"),
        ("BASALT__ORDERS__UNPAID_CANCEL_AFTER_SECS", "1"),
        ("BASALT__ORDERS__UNPAID_SWEEP_MS", "200"),
        ("BASALT__CATALOG__RESERVATION_SWEEP_MS", "200"),
    ])
    .await;
    let b = buyer(&app);
    let (o, v) = simple_order(&app, &b).await;
    let id = o["id"].as_str().unwrap().to_owned();
    let staff = manager(&app);
    let (paid, _) = simple_order(&app, &b).await;
    let paid_id = paid["id"].as_str().unwrap();
    ok(post(&app, &staff, &format!("/{paid_id}/mark-paid"), None).await).await;

    let cancelled = eventually(Duration::from_secs(15), || async {
        let o: Value = app.json_as(&format!("/api/v1/orders/{id}"), &b.token).await;
        o["status"] == "cancelled"
    })
    .await;
    assert!(cancelled, "the job cancels the unpaid order");
    let o: Value = app.json_as(&format!("/api/v1/orders/{id}"), &b.token).await;
    assert_eq!(o["cancel_reason"], "payment_timeout");
    let history: Vec<Value> = app
        .json_as(&format!("/api/v1/orders/{id}/history"), &b.token)
        .await;
    assert_eq!(history.last().unwrap()["actor"], "system");
    // Its lapsed hold went back to stock (the catalog's sweeper).
    let released = eventually(Duration::from_secs(10), || async {
        let reserved: i32 =
            sqlx::query_scalar("SELECT reserved FROM catalog.stock WHERE variant_id = $1::uuid")
                .bind(&v)
                .fetch_one(&app.db)
                .await
                .unwrap();
        reserved == 0
    })
    .await;
    assert!(released);
    // The paid one is left alone.
    let p: Value = app
        .json_as(&format!("/api/v1/orders/{paid_id}"), &b.token)
        .await;
    assert_eq!(p["status"], "paid");
    assert_eq!(app.events_of("order.cancelled").await, 1);
}

#[tokio::test]
async fn an_unpaid_order_the_job_cannot_cancel_does_not_hold_up_the_others() {
    let app = spawn_app_with(&[
        ("BASALT__ORDERS__HOLD_TTL_SECS", "1"),
        ("BASALT__ORDERS__UNPAID_CANCEL_AFTER_SECS", "1"),
        ("BASALT__ORDERS__UNPAID_SWEEP_MS", "200"),
    ])
    .await;
    let b = buyer(&app);
    // The first order's part is in a state no cancel may leave (a corrupt row standing for
    // any order whose cancel fails): the job's cancel of it errors every time.
    let (broken, _) = simple_order(&app, &b).await;
    let broken = broken["id"].as_str().unwrap().to_owned();
    sqlx::query("UPDATE orders.sub_orders SET status = 'completed' WHERE order_id = $1::uuid")
        .bind(&broken)
        .execute(&app.db)
        .await
        .unwrap();
    let (o, _) = simple_order(&app, &b).await;
    let id = o["id"].as_str().unwrap().to_owned();
    let cancelled = eventually(Duration::from_secs(15), || async {
        let o: Value = app.json_as(&format!("/api/v1/orders/{id}"), &b.token).await;
        o["status"] == "cancelled"
    })
    .await;
    assert!(
        cancelled,
        "the other unpaid order is cancelled all the same"
    );
    let o: Value = app
        .json_as(&format!("/api/v1/orders/{broken}"), &b.token)
        .await;
    assert_eq!(o["status"], "pending_payment");
}
