//! Products: create, read by id and slug, change, delete; who sees and changes what; the
//! status machine and moderation; what bad input gets.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use super::*;
use crate::helpers::{error_fields, eventually, problem, spawn_app, spawn_app_with};

const PRODUCTS: &str = "/api/v1/catalog/products";

fn at(id: &Value) -> String {
    format!("{PRODUCTS}/{}", id.as_str().unwrap())
}

#[tokio::test]
async fn a_seller_creates_reads_changes_and_deletes_a_product_others_get_404() {
    let app = spawn_app().await;
    let (alice, bob) = (seller(&app), seller(&app));
    let p = create_product(
        &app,
        &alice,
        json!({
            "title": "Merino Wool Beanie", "currency": "EUR", "description": "Soft, **warm**.",
            "tags": [" Winter", "wool", "winter"], "attributes": {"material": "merino", "gsm": 250, "vegan": false},
            "images": [{"url": "https://cdn.example.com/b.jpg", "alt": "A beanie"}],
            "seo_title": "Beanie"
        }),
    )
    .await;
    assert_eq!(p["status"], "draft");
    assert_eq!(p["seller_id"], alice.id.as_str());
    assert_eq!(p["slug"], "merino-wool-beanie");
    assert_eq!(p["tags"], json!(["winter", "wool"]), "tags normalised");
    assert_eq!(p["attributes"]["gsm"], 250);
    assert_eq!(p["currency"], "EUR");
    assert_eq!(p["currency_exponent"], 2);
    let path = at(&p["id"]);

    // A draft: its seller sees it; anonymous callers and other sellers do not.
    let res = send(&app, Method::GET, &path, Some(&alice), None).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        send(&app, Method::GET, &path, None, None).await.status(),
        404
    );
    assert_eq!(
        send(&app, Method::GET, &path, Some(&bob), None)
            .await
            .status(),
        404
    );

    // Changing: the seller may; another seller gets 404, an anonymous caller 401.
    let change = json!({"title": "Merino Beanie", "tags": ["Winter"]});
    let res = send(&app, Method::PATCH, &path, Some(&bob), Some(change.clone())).await;
    assert_eq!(problem(res).await["code"], "not_found");
    let res = send(&app, Method::PATCH, &path, None, Some(change.clone())).await;
    assert_eq!(res.status(), 401);
    let res = send(&app, Method::PATCH, &path, Some(&alice), Some(change)).await;
    assert_eq!(res.status(), 200);
    let changed: Value = res.json().await.unwrap();
    assert_eq!(changed["title"], "Merino Beanie");
    assert_eq!(changed["tags"], json!(["winter"]));
    assert_eq!(
        changed["slug"], "merino-wool-beanie",
        "a new title keeps the slug"
    );
    assert_eq!(
        changed["attributes"]["material"], "merino",
        "absent fields stay"
    );

    // Deleting: not by another seller; by the seller, after which it is gone for everyone.
    assert_eq!(
        send(&app, Method::DELETE, &path, Some(&bob), None)
            .await
            .status(),
        404
    );
    assert_eq!(
        send(&app, Method::DELETE, &path, None, None).await.status(),
        401
    );
    assert_eq!(
        send(&app, Method::DELETE, &path, Some(&alice), None)
            .await
            .status(),
        204
    );
    assert_eq!(
        send(&app, Method::GET, &path, Some(&alice), None)
            .await
            .status(),
        404
    );
    assert_eq!(
        send(&app, Method::DELETE, &path, Some(&alice), None)
            .await
            .status(),
        404
    );

    assert_eq!(app.events_of("catalog.product.created").await, 1);
    assert_eq!(app.events_of("catalog.product.updated").await, 1);
    assert_eq!(app.events_of("catalog.product.deleted").await, 1);
    let payload: Value = sqlx::query_scalar(
        "SELECT payload FROM platform.outbox WHERE event_type = 'catalog.product.created'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(payload["product"]["title"], "Merino Wool Beanie");
    assert_eq!(payload["user_id"], alice.id.as_str());
}

#[tokio::test]
async fn slugs_are_generated_unique_editable_and_old_ones_redirect() {
    let app = spawn_app().await;
    let (alice, bob) = (seller(&app), seller(&app));
    let first = active_product(&app, &alice, product_body("Crème Brûlée Kit!")).await;
    assert_eq!(first["slug"], "creme-brulee-kit");
    let second = create_product(&app, &bob, product_body("Creme brulee kit")).await;
    let slug = second["slug"].as_str().unwrap();
    assert!(
        slug.starts_with("creme-brulee-kit-") && slug.len() > "creme-brulee-kit-".len(),
        "{slug}"
    );

    // An explicit slug another product holds is a 409, and nothing is created.
    let mut body = product_body("Another");
    body["slug"] = json!("creme-brulee-kit");
    let res = send(&app, Method::POST, PRODUCTS, Some(&bob), Some(body)).await;
    assert_eq!(problem(res).await["code"], "slug_taken");
    let bobs = app
        .items_as(&format!("{PRODUCTS}?seller_id={}", bob.id), &bob.token)
        .await;
    assert_eq!(bobs.len(), 1);

    // Renaming the slug: the new one answers, the old one redirects to it.
    let path = at(&first["id"]);
    let res = send(
        &app,
        Method::PATCH,
        &path,
        Some(&alice),
        Some(json!({"slug": "brulee-kit"})),
    )
    .await;
    assert_eq!(res.status(), 200);
    let res = app.get(&format!("{PRODUCTS}/by-slug/brulee-kit")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["id"], first["id"]);
    let res = app
        .get(&format!("{PRODUCTS}/by-slug/creme-brulee-kit"))
        .await;
    assert_eq!(res.status(), 301);
    assert_eq!(
        res.headers()["location"],
        "/api/v1/catalog/products/by-slug/brulee-kit"
    );

    // The old slug stays the first product's: nobody else may take it.
    let res = send(
        &app,
        Method::PATCH,
        &at(&second["id"]),
        Some(&bob),
        Some(json!({"slug": "creme-brulee-kit"})),
    )
    .await;
    assert_eq!(problem(res).await["code"], "slug_taken");
    let res = send(&app, Method::GET, &at(&second["id"]), Some(&bob), None).await;
    assert_eq!(
        res.json::<Value>().await.unwrap()["slug"],
        slug,
        "unchanged"
    );
    // ... but its own product may go back to it.
    let res = send(
        &app,
        Method::PATCH,
        &path,
        Some(&alice),
        Some(json!({"slug": "creme-brulee-kit"})),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        app.get(&format!("{PRODUCTS}/by-slug/creme-brulee-kit"))
            .await
            .status(),
        200
    );
    assert_eq!(
        app.get(&format!("{PRODUCTS}/by-slug/brulee-kit"))
            .await
            .status(),
        301
    );

    // A draft's slug is as private as the draft; unknown and malformed slugs are 404s.
    let draft_slug = format!("{PRODUCTS}/by-slug/{slug}");
    assert_eq!(app.get(&draft_slug).await.status(), 404);
    let res = send(&app, Method::GET, &draft_slug, Some(&bob), None).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        app.get(&format!("{PRODUCTS}/by-slug/nothing-here"))
            .await
            .status(),
        404
    );
    assert_eq!(
        app.get(&format!("{PRODUCTS}/by-slug/NOT%20A%20SLUG"))
            .await
            .status(),
        404
    );

    // Deleting a product releases its slugs.
    assert_eq!(
        send(&app, Method::DELETE, &path, Some(&alice), None)
            .await
            .status(),
        204
    );
    let mut body = product_body("Reborn");
    body["slug"] = json!("brulee-kit");
    create_product(&app, &bob, body).await;
}

#[tokio::test]
async fn products_move_through_moderation_and_decisions_are_audited() {
    let app = spawn_app().await;
    let alice = seller(&app);
    let moderator = staff(&app, &["catalog.products.moderate"]);
    let p = create_product(&app, &alice, product_body("Desk Lamp")).await;
    let path = at(&p["id"]);
    let action = |name: &str| format!("{path}/{name}");

    // A draft cannot be approved: the 409 names the state it is in.
    let res = send(
        &app,
        Method::POST,
        &action("approve"),
        Some(&moderator),
        None,
    )
    .await;
    let body = problem(res).await;
    assert_eq!(body["code"], "invalid_transition");
    assert!(body["detail"].as_str().unwrap().contains("draft"), "{body}");

    let res = send(&app, Method::POST, &action("submit"), Some(&alice), None).await;
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "pending");
    assert_eq!(app.get(&path).await.status(), 404, "pending is not public");

    // Sellers do not approve their own products; moderators see the queue.
    let res = send(&app, Method::POST, &action("approve"), Some(&alice), None).await;
    assert_eq!(res.status(), 403);
    let queue = app
        .items_as(&format!("{PRODUCTS}?status=pending"), &moderator.token)
        .await;
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0]["id"], p["id"]);
    let other = seller(&app);
    let queue = app
        .items_as(&format!("{PRODUCTS}?status=pending"), &other.token)
        .await;
    assert!(queue.is_empty(), "another seller sees no one's queue");

    let res = send(
        &app,
        Method::POST,
        &action("approve"),
        Some(&moderator),
        None,
    )
    .await;
    let approved: Value = res.json().await.unwrap();
    assert_eq!(approved["status"], "active");
    assert!(approved["published_at"].is_string());
    assert_eq!(app.get(&path).await.status(), 200, "active is public");
    let res = send(
        &app,
        Method::POST,
        &action("reject"),
        Some(&moderator),
        Some(json!({"reason": "late"})),
    )
    .await;
    assert_eq!(problem(res).await["code"], "invalid_transition");

    // A second product is rejected with a reason its seller reads, then resubmitted.
    let q = create_product(&app, &alice, product_body("Blurry Lamp")).await;
    let qpath = at(&q["id"]);
    send(
        &app,
        Method::POST,
        &format!("{qpath}/submit"),
        Some(&alice),
        None,
    )
    .await;
    let res = send(
        &app,
        Method::POST,
        &format!("{qpath}/reject"),
        Some(&moderator),
        Some(json!({"reason": ""})),
    )
    .await;
    assert_eq!(res.status(), 422, "a rejection needs a reason");
    let res = send(
        &app,
        Method::POST,
        &format!("{qpath}/reject"),
        Some(&moderator),
        Some(json!({"reason": "The photo is blurry."})),
    )
    .await;
    let rejected: Value = res.json().await.unwrap();
    assert_eq!(rejected["status"], "rejected");
    let mine: Value = app.json_as(&qpath, &alice.token).await;
    assert_eq!(mine["rejection_reason"], "The photo is blurry.");
    let res = send(
        &app,
        Method::POST,
        &format!("{qpath}/submit"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "pending");

    // Archiving takes it off sale; restoring makes it a draft; another seller cannot.
    let res = send(&app, Method::POST, &action("archive"), Some(&other), None).await;
    assert_eq!(res.status(), 404);
    let res = send(&app, Method::POST, &action("archive"), Some(&alice), None).await;
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "archived");
    assert_eq!(app.get(&path).await.status(), 404);
    let res = send(&app, Method::POST, &action("archive"), Some(&alice), None).await;
    assert_eq!(problem(res).await["code"], "invalid_transition");
    let res = send(&app, Method::POST, &action("restore"), Some(&alice), None).await;
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "draft");

    // Every decision is in the audit trail, by the moderator, with the reason.
    let decisions: Vec<(String, String, Value)> = sqlx::query_as(
        "SELECT action, actor, after FROM platform.audit_log
          WHERE object_type = 'catalog.product' ORDER BY id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    let actions: Vec<&str> = decisions.iter().map(|d| d.0.as_str()).collect();
    assert_eq!(
        actions,
        ["catalog.product.approved", "catalog.product.rejected"]
    );
    assert!(
        decisions
            .iter()
            .all(|d| d.1 == format!("user:{}", moderator.id))
    );
    assert_eq!(decisions[1].2["reason"], "The photo is blurry.");
    assert_eq!(app.events_of("catalog.product.published").await, 1);
    assert_eq!(app.events_of("catalog.product.rejected").await, 1);
    assert_eq!(app.events_of("catalog.product.submitted").await, 3);
    assert_eq!(app.events_of("catalog.product.archived").await, 1);
}

#[tokio::test]
async fn auto_approval_is_a_runtime_setting() {
    let app = spawn_app().await;
    let alice = seller(&app);
    sqlx::query(
        "INSERT INTO platform.runtime_settings (namespace, key, value, updated_by)
         VALUES ('catalog', 'auto_approve', 'true', 'user:test')",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let published = eventually(Duration::from_secs(5), || async {
        let p = create_product(&app, &alice, product_body("Instant")).await;
        let res = send(
            &app,
            Method::POST,
            &format!("{}/submit", at(&p["id"])),
            Some(&alice),
            None,
        )
        .await;
        res.json::<Value>().await.unwrap()["status"] == "active"
    })
    .await;
    assert!(
        published,
        "submitting publishes at once while auto-approval is on"
    );
    assert_eq!(app.events_of("catalog.product.published").await, 1);
}

#[tokio::test]
async fn staff_manage_every_product_and_their_changes_are_audited() {
    let app = spawn_app().await;
    let alice = seller(&app);
    let manager = staff(&app, &["catalog.*"]);
    let p = create_product(&app, &alice, product_body("Teapot")).await;
    let path = at(&p["id"]);

    // Only staff feature products.
    let res = send(
        &app,
        Method::PATCH,
        &path,
        Some(&alice),
        Some(json!({"featured": true})),
    )
    .await;
    assert_eq!(res.status(), 403);
    let mut body = product_body("Featured teapot");
    body["featured"] = json!(true);
    let res = send(&app, Method::POST, PRODUCTS, Some(&alice), Some(body)).await;
    assert_eq!(res.status(), 403);

    // Staff see drafts, change them and delete them; each is recorded.
    let res = send(&app, Method::GET, &path, Some(&manager), None).await;
    assert_eq!(res.status(), 200);
    let res = send(
        &app,
        Method::PATCH,
        &path,
        Some(&manager),
        Some(json!({"featured": true})),
    )
    .await;
    assert_eq!(res.json::<Value>().await.unwrap()["featured"], true);
    let featured = app
        .items_as(&format!("{PRODUCTS}?featured=true"), &manager.token)
        .await;
    assert_eq!(featured.len(), 1);
    assert_eq!(
        send(&app, Method::DELETE, &path, Some(&manager), None)
            .await
            .status(),
        204
    );
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM platform.audit_log WHERE object_id = $1 ORDER BY id",
    )
    .bind(p["id"].as_str().unwrap())
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(
        actions,
        ["catalog.product.updated", "catalog.product.deleted"]
    );

    // Without a selling permission there is no creating products.
    let buyer = shopper(&app);
    let res = send(
        &app,
        Method::POST,
        PRODUCTS,
        Some(&buyer),
        Some(product_body("x")),
    )
    .await;
    assert_eq!(problem(res).await["code"], "forbidden");
    let res = send(&app, Method::POST, PRODUCTS, None, Some(product_body("x"))).await;
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn lists_page_by_keyset_and_show_each_caller_what_they_may_see() {
    let app = spawn_app_with(&[("BASALT__RATE_LIMIT__ENABLED", "false")]).await;
    let (alice, bob) = (seller(&app), seller(&app));
    let mut active = Vec::new();
    for i in 0..3 {
        active.push(active_product(&app, &alice, product_body(&format!("Active {i}"))).await);
    }
    create_product(&app, &alice, product_body("Alice's draft")).await;
    create_product(&app, &bob, product_body("Bob's draft")).await;

    // Anonymous: the active ones, newest first, one page at a time.
    let mut seen = Vec::new();
    let mut url = format!("{PRODUCTS}?limit=2");
    loop {
        let page: Value = app.get(&url).await.json().await.unwrap();
        for item in page["items"].as_array().unwrap() {
            seen.push(item["id"].clone());
        }
        match page["next"].as_str() {
            Some(next) => url = format!("{PRODUCTS}?limit=2&after={next}"),
            None => break,
        }
    }
    let expected: Vec<Value> = active.iter().rev().map(|p| p["id"].clone()).collect();
    assert_eq!(seen, expected);

    // Sellers add their own drafts; nobody else's.
    let alices = app.items_as(PRODUCTS, &alice.token).await;
    assert_eq!(alices.len(), 4);
    let bobs = app.items_as(PRODUCTS, &bob.token).await;
    assert_eq!(bobs.len(), 4, "three active and Bob's draft");
    assert!(bobs.iter().all(|p| p["title"] != "Alice's draft"));
    let drafts = app
        .items_as(
            &format!("{PRODUCTS}?status=draft&seller_id={}", alice.id),
            &bob.token,
        )
        .await;
    assert!(drafts.is_empty());

    // A tampered cursor and a bad filter are 400s.
    let res = app.get(&format!("{PRODUCTS}?after=garbage")).await;
    assert_eq!(problem(res).await["code"], "invalid_cursor");
    let res = app.get(&format!("{PRODUCTS}?status=sold")).await;
    assert_eq!(problem(res).await["code"], "invalid_query");
    let res = app.get(&format!("{PRODUCTS}?limit=1000")).await;
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn bad_product_input_is_refused_and_nothing_is_stored() {
    let app = spawn_app().await;
    let alice = seller(&app);
    let refused = |body: Value| {
        let app = &app;
        let alice = &alice;
        async move {
            let res = send(app, Method::POST, PRODUCTS, Some(alice), Some(body)).await;
            (res.status().as_u16(), problem(res).await)
        }
    };
    for (body, field) in [
        (json!({"title": "x", "currency": "ABC"}), "currency"),
        (json!({"title": "x", "currency": "usd"}), "currency"),
        (json!({"title": "x", "currency": "XXX"}), "currency"),
        (json!({"title": "", "currency": "USD"}), "title"),
        (
            json!({"title": "x", "currency": "USD", "slug": "Not A Slug"}),
            "slug",
        ),
        (
            json!({"title": "x", "currency": "USD", "slug": "a--b"}),
            "slug",
        ),
        (
            json!({"title": "x", "currency": "USD", "tags": vec!["t"; 21]}),
            "tags",
        ),
        (
            json!({"title": "x", "currency": "USD", "tags": [" "]}),
            "tags[0]",
        ),
        (
            json!({"title": "x", "currency": "USD", "attributes": {"Bad Key": "v"}}),
            "attributes.Bad Key",
        ),
        (
            json!({"title": "x", "currency": "USD", "images": [{"alt": "none"}]}),
            "images[0]",
        ),
        (
            json!({"title": "x", "currency": "USD", "images": [{"url": "javascript:alert(1)"}]}),
            "images[0].url",
        ),
    ] {
        let (status, p) = refused(body.clone()).await;
        assert_eq!(status, 422, "{body}");
        assert!(error_fields(&p).contains(&field), "{body}: {p}");
    }
    // Shapes JSON cannot take: floats in attributes, unknown fields, text for a currency.
    for body in [
        json!({"title": "x", "currency": "USD", "attributes": {"size": 1.5}}),
        json!({"title": "x", "currency": "USD", "price_in_floats": 1}),
        json!({"title": "x", "currency": 840}),
    ] {
        let (status, p) = refused(body.clone()).await;
        assert_eq!(status, 400, "{body}: {p}");
    }
    let (status, p) = refused(json!({"title": "nul\u{0}byte", "currency": "USD"})).await;
    assert_eq!((status, p["code"].as_str()), (400, Some("invalid_text")));

    assert!(
        app.items_as(PRODUCTS, &alice.token).await.is_empty(),
        "nothing stored"
    );
    assert_eq!(app.events_of("catalog.product.created").await, 0);
    assert_eq!(
        app.get(&format!("{PRODUCTS}/not-a-uuid")).await.status(),
        404
    );
}
