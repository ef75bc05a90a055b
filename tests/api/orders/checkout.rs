//! Checkout: exactly as many orders as there is stock however many buyers race, one order
//! per idempotency key however often it is sent, discount limits that hold under
//! concurrency, a failure halfway that leaves nothing behind, and the bad inputs.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use super::*;
use crate::helpers::{TestApp, problem, refused, spawn_app, spawn_app_with};

/// Many buyers at once: a wider pool wait than the default, so the contention is on the
/// stock row and not on the test's connection pool.
async fn busy_app() -> TestApp {
    spawn_app_with(&[
        ("BASALT__RATE_LIMIT__ENABLED", "false"),
        ("BASALT__DATABASE__ACQUIRE_TIMEOUT_SECS", "60"),
    ])
    .await
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&app.db).await.unwrap()
}

#[tokio::test]
async fn two_hundred_checkouts_of_the_last_fifty_units_make_exactly_fifty_orders() {
    let app = busy_app().await;
    let s = seller(&app);
    let (_, variant) = stocked(&app, &s, 50, 700).await;
    let mut buyers = Vec::new();
    for _ in 0..200 {
        let b = buyer(&app);
        let cart = cart_with(&app, &b, &[(&variant, 1)]).await;
        buyers.push((b, cart));
    }
    let started = std::time::Instant::now();
    let responses = futures_util::future::join_all(buyers.iter().map(|(b, cart)| async {
        let key = Uuid::now_v7().to_string();
        checkout(&app, b, cart, &key).await
    }))
    .await;
    let wall = started.elapsed();
    let mut created = 0;
    for res in responses {
        match res.status().as_u16() {
            201 => created += 1,
            409 => {
                // Refused at the reservation (naming the variant), or before it, when the
                // cart was priced and found the variant sold out.
                let p = problem(res).await;
                match p["code"].as_str().unwrap() {
                    "insufficient_stock" => {
                        assert!(p["detail"].as_str().unwrap().contains(&variant), "{p}")
                    }
                    "cart_changed" => assert_eq!(p["errors"][0]["code"], "unavailable", "{p}"),
                    other => panic!("{other}: {p}"),
                }
            }
            other => panic!("{other}: {}", res.text().await.unwrap()),
        }
    }
    assert_eq!(created, 50);
    assert_eq!(count(&app, "SELECT count(*) FROM orders.orders").await, 50);
    let (on_hand, reserved) = stock_of(&app, &s, &variant).await;
    assert_eq!((on_hand, reserved), (50, 50), "every unit held once");
    // Never negative, at any step: the ledger's running availability.
    let lowest: i64 = count(
        &app,
        "SELECT min(50 - running) FROM (SELECT sum(reserved_delta) OVER (ORDER BY id) AS running
           FROM catalog.stock_movements) m",
    )
    .await;
    assert!(lowest >= 0, "availability went to {lowest}");
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM platform.outbox WHERE event_type = 'order.created'"
        )
        .await,
        50
    );
    eprintln!("200 checkouts over 50 units: {wall:?}");
}

/// Every concurrent response is a success or a stock 409; a 5xx (a deadlock's `40P01`) fails.
async fn no_server_error(res: reqwest::Response, what: &str) -> u16 {
    let status = res.status().as_u16();
    match status {
        200 | 201 => {}
        409 => {
            let p = problem(res).await;
            assert_eq!(p["code"], "insufficient_stock", "{what}: {p}");
        }
        other => panic!("{what}: {other} {}", res.text().await.unwrap()),
    }
    status
}

#[tokio::test]
async fn buyers_whose_carts_list_the_same_variants_in_opposite_orders_never_deadlock() {
    let app = busy_app().await;
    let s = seller(&app);
    let staff = manager(&app);
    let mut variants = Vec::new();
    for _ in 0..4 {
        variants.push(stocked(&app, &s, 1000, 100).await.1);
    }
    for round in 0..3 {
        // Even buyers add A to D, odd ones D to A: in cart order their stock locks would cross.
        let mut buyers = Vec::new();
        for i in 0..16 {
            let b = buyer(&app);
            let mut lines: Vec<(&str, i32)> = variants.iter().map(|v| (v.as_str(), 1)).collect();
            if i % 2 == 1 {
                lines.reverse();
            }
            let cart = cart_with(&app, &b, &lines).await;
            buyers.push((b, cart));
        }
        let placed =
            futures_util::future::join_all(buyers.iter().map(|(b, cart)| async {
                checkout(&app, b, cart, &Uuid::now_v7().to_string()).await
            }))
            .await;
        let mut orders = Vec::new();
        for res in placed {
            assert_eq!(
                res.status(),
                201,
                "round {round}: {}",
                res.text().await.unwrap()
            );
            let o: Value = res.json().await.unwrap();
            orders.push(o["id"].as_str().unwrap().to_owned());
        }
        // Paying (commits) and then cancelling (restocks) them all at once walk the same rows.
        let (app_ref, staff_ref) = (&app, &staff);
        let paid = futures_util::future::join_all(orders.iter().map(|id| async move {
            post(app_ref, staff_ref, &format!("/{id}/mark-paid"), None).await
        }))
        .await;
        for res in paid {
            assert_eq!(no_server_error(res, "mark-paid").await, 200);
        }
        let cancelled = futures_util::future::join_all(orders.iter().map(|id| async move {
            post(app_ref, staff_ref, &format!("/{id}/cancel"), None).await
        }))
        .await;
        for res in cancelled {
            assert_eq!(no_server_error(res, "cancel").await, 200);
        }
    }
    for v in &variants {
        assert_eq!(stock_of(&app, &s, v).await, (1000, 0));
    }
}

#[tokio::test]
async fn carts_holding_the_same_variants_in_opposite_orders_check_out_at_once_without_deadlock() {
    let app = busy_app().await;
    let s = seller(&app);
    let (_, a) = stocked(&app, &s, 1000, 500).await;
    let (_, b) = stocked(&app, &s, 1000, 700).await;
    let (_, c) = stocked(&app, &s, 1000, 900).await;
    // Half the shoppers added a, b, c; the other half c, b, a: reserved in the cart's order,
    // pairs of them would lock the three stock rows in opposite orders.
    let mut buyers = Vec::new();
    for i in 0..40 {
        let who = buyer(&app);
        let lines: [(&str, i32); 3] = if i % 2 == 0 {
            [(&a, 1), (&b, 1), (&c, 1)]
        } else {
            [(&c, 1), (&b, 1), (&a, 1)]
        };
        let cart = cart_with(&app, &who, &lines).await;
        buyers.push((who, cart));
    }
    let responses = futures_util::future::join_all(buyers.iter().map(|(who, cart)| async {
        let key = Uuid::now_v7().to_string();
        checkout(&app, who, cart, &key).await
    }))
    .await;
    for res in responses {
        let status = res.status();
        assert_eq!(status, 201, "{}", res.text().await.unwrap());
    }
    assert_eq!(count(&app, "SELECT count(*) FROM orders.orders").await, 40);
    for v in [&a, &b, &c] {
        assert_eq!(stock_of(&app, &s, v).await, (1000, 40));
    }
    // The lines keep the cart's order: the second shopper's order starts with c.
    let first_of_second: String = sqlx::query_scalar(
        "SELECT l.variant_id::text FROM orders.order_lines l JOIN orders.orders o ON o.id = l.order_id
          WHERE o.cart_id = $1::uuid ORDER BY l.position LIMIT 1",
    )
    .bind(&buyers[1].1)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(first_of_second, c);
}

#[tokio::test]
async fn one_key_sent_twenty_times_at_once_makes_one_order_and_identical_replays() {
    let app = busy_app().await;
    let s = seller(&app);
    let (_, variant) = stocked(&app, &s, 100, 1200).await;
    let b = buyer(&app);
    let cart = cart_with(&app, &b, &[(&variant, 3)]).await;
    let key = Uuid::now_v7().to_string();
    let responses =
        futures_util::future::join_all((0..20).map(|_| checkout(&app, &b, &cart, &key))).await;
    let mut bodies = Vec::new();
    let (mut replays, mut in_flight) = (0, 0);
    for res in responses {
        let status = res.status().as_u16();
        let replayed = res.headers().get("idempotent-replayed").is_some();
        match status {
            201 => {
                replays += usize::from(replayed);
                bodies.push(res.json::<Value>().await.unwrap());
            }
            409 => {
                let p = problem(res).await;
                assert_eq!(p["code"], "idempotency_key_in_flight", "{p}");
                in_flight += 1;
            }
            other => panic!("{other}: {}", res.text().await.unwrap()),
        }
    }
    assert_eq!(bodies.len() + in_flight, 20);
    assert_eq!(
        replays,
        bodies.len() - 1,
        "one first answer, the rest replays"
    );
    assert!(
        bodies.iter().all(|b| *b == bodies[0]),
        "replays are identical"
    );
    assert_eq!(count(&app, "SELECT count(*) FROM orders.orders").await, 1);
    assert_eq!(stock_of(&app, &s, &variant).await, (100, 3));

    // Afterwards the key answers with the stored response, for 24 hours.
    let again = checkout(&app, &b, &cart, &key).await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), bodies[0]);
    // The same key is another caller's own: it does not replay someone else's order.
    let other = buyer(&app);
    let res = checkout(&app, &other, &cart, &key).await;
    assert_eq!(res.status(), 404, "not this caller's cart");
}

#[tokio::test]
async fn the_key_is_required_and_may_not_be_reused_for_another_request() {
    let app = spawn_app().await;
    let s = seller(&app);
    let (_, variant) = stocked(&app, &s, 10, 500).await;
    let b = buyer(&app);
    let cart = cart_with(&app, &b, &[(&variant, 1)]).await;

    let res = app
        .as_user(Method::POST, "/api/v1/orders", &b.token)
        .json(&json!({ "cart_id": cart }))
        .send()
        .await
        .unwrap();
    refused(res, 400, "idempotency_key_missing").await;
    let res = checkout(&app, &b, &cart, &"k".repeat(256)).await;
    refused(res, 400, "idempotency_key_invalid").await;
    // Anonymous: 401 before anything else.
    let res = app
        .client
        .post(app.url("/api/v1/orders"))
        .header("Idempotency-Key", "x")
        .json(&json!({ "cart_id": cart }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(count(&app, "SELECT count(*) FROM orders.orders").await, 0);

    let key = Uuid::now_v7().to_string();
    assert_eq!(checkout(&app, &b, &cart, &key).await.status(), 201);
    let res = app
        .as_user(Method::POST, "/api/v1/orders", &b.token)
        .header("Idempotency-Key", &key)
        .json(&json!({ "cart_id": Uuid::now_v7() }))
        .send()
        .await
        .unwrap();
    refused(res, 422, "idempotency_key_reused").await;

    // Another key for the same cart: the cart was checked out, so its order, with 200.
    let first: Value = app.items_as("/api/v1/orders", &b.token).await.remove(0);
    let res = checkout(&app, &b, &cart, &Uuid::now_v7().to_string()).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), first);
    assert_eq!(count(&app, "SELECT count(*) FROM orders.orders").await, 1);
}

#[tokio::test]
async fn a_hundred_checkouts_with_a_code_for_ten_uses_succeed_ten_times() {
    let app = busy_app().await;
    let s = seller(&app);
    let (_, variant) = stocked(&app, &s, 1000, 2000).await;
    discount(&app, "TENONLY", Some(10)).await;
    let mut buyers = Vec::new();
    for _ in 0..100 {
        let b = buyer(&app);
        let cart = cart_with(&app, &b, &[(&variant, 1)]).await;
        apply_code(&app, &b, "TENONLY").await;
        buyers.push((b, cart));
    }
    let responses = futures_util::future::join_all(buyers.iter().map(|(b, cart)| async {
        let key = Uuid::now_v7().to_string();
        checkout(&app, b, cart, &key).await
    }))
    .await;
    let mut created = 0;
    for res in responses {
        match res.status().as_u16() {
            201 => {
                let o: Value = res.json().await.unwrap();
                assert_eq!(o["discount_code"], "TENONLY");
                assert_eq!(o["discount"], 200);
                created += 1;
            }
            409 => {
                let p = problem(res).await;
                // Refused at the conditional UPDATE, or seen used up when the cart was priced.
                assert!(
                    p["code"] == "discount_unavailable" || p["code"] == "cart_changed",
                    "{p}"
                );
            }
            other => panic!("{other}: {}", res.text().await.unwrap()),
        }
    }
    assert_eq!(created, 10);
    assert_eq!(count(&app, "SELECT count(*) FROM orders.orders").await, 10);
    assert_eq!(
        count(
            &app,
            "SELECT used_count::bigint FROM cart.discounts WHERE code = 'TENONLY'"
        )
        .await,
        10
    );
    // Only the ten orders hold stock: the refused checkouts' holds rolled back with them.
    assert_eq!(stock_of(&app, &s, &variant).await, (1000, 10));
}

#[tokio::test]
async fn a_checkout_that_fails_at_the_discount_leaves_no_hold_no_order_and_no_use() {
    let app = spawn_app().await;
    let s = seller(&app);
    let (_, variant) = stocked(&app, &s, 10, 2000).await;
    let code = discount(&app, "LASTONE", Some(1)).await;
    let b = buyer(&app);
    let cart = cart_with(&app, &b, &[(&variant, 2)]).await;
    apply_code(&app, &b, "LASTONE").await;

    // Someone else takes the last use while our checkout runs: the test holds the code's
    // row with that change uncommitted, so the checkout prices the cart with the code still
    // usable, reserves its stock, then waits at the discount's conditional UPDATE.
    let mut other = app.db.begin().await.unwrap();
    sqlx::query("UPDATE cart.discounts SET used_count = used_count + 1 WHERE id = $1::uuid")
        .bind(code["id"].as_str().unwrap())
        .execute(&mut *other)
        .await
        .unwrap();
    let pending = tokio::spawn({
        let (url, token, cart) = (app.url("/api/v1/orders"), b.token.clone(), cart.clone());
        let client = app.client.clone();
        async move {
            client
                .post(url)
                .bearer_auth(token)
                .header("Idempotency-Key", "halfway")
                .json(&json!({ "cart_id": cart }))
                .send()
                .await
                .unwrap()
        }
    });
    let waiting = crate::helpers::eventually(Duration::from_secs(10), || async {
        count(
            &app,
            "SELECT count(*) FROM pg_stat_activity
              WHERE wait_event_type = 'Lock' AND query LIKE '%cart.discounts%'",
        )
        .await
            == 1
    })
    .await;
    assert!(waiting, "the checkout reached the discount");
    // Halfway: its hold is taken (uncommitted, so the seller sees none yet).
    other.commit().await.unwrap();
    let res = pending.await.unwrap();
    refused(res, 409, "discount_unavailable").await;

    assert_eq!(count(&app, "SELECT count(*) FROM orders.orders").await, 0);
    assert_eq!(
        count(&app, "SELECT count(*) FROM catalog.reservations").await,
        0
    );
    assert_eq!(stock_of(&app, &s, &variant).await, (10, 0));
    assert_eq!(
        count(&app, "SELECT count(*) FROM cart.discount_redemptions").await,
        0,
        "no use of the code recorded for this buyer"
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM platform.idempotency_keys").await,
        0,
        "nothing stored: a retry runs again"
    );
    // The cart is still open: without the code it checks out (after confirming the change).
    let res = checkout(&app, &b, &cart, "halfway").await;
    refused(res, 409, "cart_changed").await;
}

#[tokio::test]
async fn changed_prices_empty_carts_and_other_peoples_carts_are_refused() {
    let app = spawn_app().await;
    let s = seller(&app);
    let (product, variant) = stocked(&app, &s, 10, 1000).await;
    let b = buyer(&app);
    let cart = cart_with(&app, &b, &[(&variant, 1)]).await;

    // Another user's cart, and a cart that does not exist: 404.
    let other = buyer(&app);
    let res = checkout(&app, &other, &cart, "a").await;
    assert_eq!(res.status(), 404);
    let res = checkout(&app, &b, &Uuid::now_v7().to_string(), "b").await;
    assert_eq!(res.status(), 404);
    // An unknown payment provider: 422.
    let res = app
        .as_user(Method::POST, "/api/v1/orders", &b.token)
        .header("Idempotency-Key", "c")
        .json(&json!({ "cart_id": cart, "payment_provider": "barter" }))
        .send()
        .await
        .unwrap();
    refused(res, 422, "payment_provider_unavailable").await;

    // The seller raises the price after the buyer saw it: 409 listing the line.
    let res = app
        .as_user(
            Method::PATCH,
            &format!("/api/v1/catalog/products/{product}/variants/{variant}"),
            &s.token,
        )
        .json(&json!({ "price": 1500 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = checkout(&app, &b, &cart, "d").await;
    let p = refused(res, 409, "cart_changed").await;
    assert_eq!(p["errors"][0]["code"], "price_changed", "{p}");
    assert!(
        p["errors"][0]["field"]
            .as_str()
            .unwrap()
            .starts_with("lines[")
    );
    assert_eq!(stock_of(&app, &s, &variant).await, (10, 0), "nothing held");

    // The buyer accepts it (PUT sets the line again) and checks out at the new price.
    let c: Value = app.json_as("/api/v1/cart", &b.token).await;
    let line = c["lines"][0]["line_id"].as_str().unwrap().to_owned();
    let res = app
        .as_user(Method::PUT, &format!("/api/v1/cart/items/{line}"), &b.token)
        .json(&json!({ "quantity": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let o = place(&app, &b, &cart).await;
    assert_eq!(o["sub_orders"][0]["lines"][0]["unit_price"], 1500);

    // An empty cart: 422, nothing changed.
    let c = buyer(&app);
    let cart = cart_with(&app, &c, &[(&variant, 1)]).await;
    let body: Value = app.json_as("/api/v1/cart", &c.token).await;
    let line = body["lines"][0]["line_id"].as_str().unwrap().to_owned();
    let res = app
        .as_user(
            Method::DELETE,
            &format!("/api/v1/cart/items/{line}"),
            &c.token,
        )
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    let res = checkout(&app, &c, &cart, "e").await;
    refused(res, 422, "cart_empty").await;
    assert_eq!(count(&app, "SELECT count(*) FROM orders.orders").await, 1);
}

#[tokio::test]
async fn an_order_from_two_sellers_has_one_part_each_with_snapshots_and_totals() {
    let app = spawn_app().await;
    let b = buyer(&app);
    let Split {
        order: o,
        cart,
        parts: [(s1, p1, v1), (s2, _, v2)],
    } = split_order(&app, &b, [(1000, 2), (250, 3)]).await;

    assert_eq!(o["status"], "pending_payment");
    assert_eq!(o["currency"], "USD");
    assert_eq!(o["subtotal"], 2750);
    assert!(o["number"].as_str().unwrap().starts_with("BS-"));
    let parts = o["sub_orders"].as_array().unwrap();
    assert_eq!(parts.len(), 2);
    let part = |seller: &str| {
        parts
            .iter()
            .find(|p| p["seller_id"] == seller)
            .unwrap_or_else(|| panic!("no part for {seller}"))
            .clone()
    };
    let first = part(&s1.id);
    assert_eq!(first["status"], "pending_payment");
    assert_eq!(first["subtotal"], 2000);
    let line = &first["lines"][0];
    assert_eq!(line["product_id"], p1.as_str());
    assert_eq!(line["variant_id"], v1.as_str());
    assert_eq!(line["product_title"], "Teapot");
    assert_eq!(
        (line["unit_price"].as_i64(), line["quantity"].as_i64()),
        (Some(1000), Some(2))
    );
    assert_eq!(line["stock"], "held");
    assert_eq!(part(&s2.id)["subtotal"], 750);
    let sum: i64 = parts.iter().map(|p| p["total"].as_i64().unwrap()).sum();
    assert_eq!(
        sum + o["shipping"].as_i64().unwrap(),
        o["total"].as_i64().unwrap()
    );

    assert!(o.get("discount_id").is_none(), "{o}");
    // GET answers with the same order.
    let id = o["id"].as_str().unwrap();
    let read: Value = app.json_as(&format!("/api/v1/orders/{id}"), &b.token).await;
    assert_eq!(read, o);
    assert_eq!(stock_of(&app, &s1, &v1).await, (10, 2));
    // The cart is completed: the next add starts a new one.
    let next = cart_with(&app, &b, &[(&v2, 1)]).await;
    assert_ne!(next, cart);
}

#[cfg(feature = "notifications")]
#[tokio::test]
async fn placing_and_paying_an_order_mails_the_confirmation_and_the_receipt() {
    let app = spawn_app().await;
    let (o, mails) = order_mails(&app).await;
    let number = o["number"].as_str().unwrap();
    let (subject, text, html) = &mails[0];
    assert_eq!(subject, &format!("Order {number} confirmed"));
    assert!(
        text.contains(&format!("Thank you for your order {number}")),
        "{text}"
    );
    assert!(text.contains("25.00 USD"), "{text}");
    // The API serves no order page: without a storefront URL the mail links nowhere.
    for (_, text, html) in &mails {
        assert!(!text.contains("/orders/"), "{text}");
        assert!(!text.contains("Follow it here"), "{text}");
        assert!(!html.contains("&#x2f;orders&#x2f;"), "{html}");
        assert!(!html.contains("Follow your order"), "{html}");
    }
    assert!(html.contains("25.00 USD"), "{html}");
    // The receipt is its own mail, not a second confirmation.
    let (subject, text, _) = &mails[1];
    assert_eq!(subject, &format!("Payment received for order {number}"));
    assert!(text.contains("received your payment"), "{text}");
}

#[cfg(feature = "notifications")]
#[tokio::test]
async fn order_mails_link_to_the_configured_storefront_page() {
    let app = spawn_app_with(&[(
        "BASALT__NOTIFICATIONS__ORDER_URL",
        "https://shop.example/account/orders/{id}",
    )])
    .await;
    let (o, mails) = order_mails(&app).await;
    let page = format!(
        "https://shop.example/account/orders/{}",
        o["id"].as_str().unwrap()
    );
    for (_, text, html) in &mails {
        assert!(text.contains(&format!("Follow it here: {page}")), "{text}");
        // The HTML escapes the slashes.
        let href = format!("href=\"{}\"", page.replace('/', "&#x2f;"));
        assert!(html.contains(&href), "{html}");
    }
}

/// Places and pays a 2 × 12.50 USD order whose cart gave an email; returns the order and
/// its two mails (subject, text, html), the confirmation first.
#[cfg(feature = "notifications")]
async fn order_mails(app: &TestApp) -> (Value, Vec<(String, String, String)>) {
    let s = seller(app);
    let (_, variant) = stocked(app, &s, 10, 1250).await;
    let b = buyer(app);
    let cart = cart_with(app, &b, &[(&variant, 2)]).await;
    let res = app
        .as_user(Method::PUT, "/api/v1/cart/addresses", &b.token)
        .json(&json!({ "email": "ada@example.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let o = place(app, &b, &cart).await;
    let id = o["id"].as_str().unwrap();
    let res = post(app, &manager(app), &format!("/{id}/mark-paid"), None).await;
    assert_eq!(res.status(), 200);
    let mailed = crate::helpers::eventually(Duration::from_secs(15), || async {
        count(
            app,
            "SELECT count(*) FROM notifications.messages
              WHERE template = 'order-confirmation' AND to_address = 'ada@example.com'",
        )
        .await
            == 2
    })
    .await;
    assert!(mailed, "a confirmation and a receipt");
    let mails = sqlx::query_as(
        "SELECT subject, text_body, html_body FROM notifications.messages
          WHERE template = 'order-confirmation' ORDER BY created_at, id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    (o, mails)
}

#[tokio::test]
async fn a_checkout_costs_nine_round_trips_plus_one_per_line() {
    let app = spawn_app().await;
    let s = seller(&app);
    let (_, v1) = stocked(&app, &s, 100, 300).await;
    let (_, v2) = stocked(&app, &s, 100, 400).await;
    let (_, v3) = stocked(&app, &s, 100, 500).await;
    for lines in [
        vec![(v1.as_str(), 1)],
        vec![(v1.as_str(), 1), (v2.as_str(), 2), (v3.as_str(), 3)],
    ] {
        let b = buyer(&app);
        let cart = cart_with(&app, &b, &lines).await;
        let res = checkout(&app, &b, &cart, "rt").await;
        assert_eq!(res.status(), 201);
        // BEGIN, key, cart (lock, lines, catalog: 3), a hold per line, order, cart completed,
        // response, COMMIT.
        assert_eq!(
            crate::statements::round_trips(&res),
            9 + lines.len(),
            "{:?}",
            crate::statements::of(&res)
        );
        // A replay: BEGIN, key, ROLLBACK.
        let res = checkout(&app, &b, &cart, "rt").await;
        assert_eq!(res.status(), 201);
        assert_eq!(
            crate::statements::round_trips(&res),
            3,
            "{:?}",
            crate::statements::of(&res)
        );
    }
}

#[tokio::test]
async fn the_openapi_document_lists_403s_the_idempotency_headers_and_typed_addresses() {
    let app = spawn_app().await;
    let doc: Value = app
        .get("/api-docs/openapi.json")
        .await
        .json()
        .await
        .unwrap();
    let paths = &doc["paths"];
    for (path, method) in [
        ("/api/v1/orders", "post"),
        ("/api/v1/orders/{order}", "get"),
        ("/api/v1/orders/{order}/cancel", "post"),
    ] {
        assert!(
            paths[path][method]["responses"]["403"].is_object(),
            "{method} {path}: {}",
            paths[path][method]["responses"]
        );
    }
    let checkout = &paths["/api/v1/orders"]["post"]["responses"];
    for status in ["200", "201"] {
        assert!(
            checkout[status]["headers"]["Idempotent-Replayed"].is_object(),
            "{checkout}"
        );
    }
    assert!(
        checkout["409"]["headers"]["Retry-After"].is_object(),
        "{checkout}"
    );
    let order = &doc["components"]["schemas"]["OrderResponse"]["properties"];
    // The response is the row too: what is only for the server stays out of the schema.
    assert!(order.get("discount_id").is_none(), "{order}");
    assert_eq!(order["sub_orders"]["type"], "array", "{order}");
    let discount = &doc["components"]["schemas"]["DiscountResponse"]["properties"];
    assert!(discount.get("deleted_at").is_none(), "{discount}");
    assert!(
        discount["kind"].to_string().contains("DiscountKind"),
        "{discount}"
    );
    for field in ["shipping_address", "billing_address"] {
        assert!(
            order[field]
                .to_string()
                .contains("#/components/schemas/Address"),
            "{field}: {}",
            order[field]
        );
    }
}
