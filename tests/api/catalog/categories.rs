//! Categories: a tree read by everyone and shaped by staff (`catalog.categories.manage`),
//! products listed with their category's descendants, subtree moves that refuse loops, and
//! deletes that keep products.

use reqwest::Method;
use serde_json::{Value, json};

use super::*;
use crate::helpers::spawn_app;

const CATEGORIES: &str = "/api/v1/catalog/categories";

async fn create(app: &TestApp, who: &Actor, body: Value) -> Value {
    let res = send(app, Method::POST, CATEGORIES, Some(who), Some(body)).await;
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    body
}

fn id(v: &Value) -> &str {
    v["id"].as_str().unwrap()
}

async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    let res = send(app, Method::GET, path, None, None).await;
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

async fn titles_in(app: &TestApp, category: &str) -> Vec<String> {
    let (status, page) = get(
        app,
        &format!("/api/v1/catalog/products?category={category}"),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let mut t: Vec<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap().to_owned())
        .collect();
    t.sort();
    t
}

#[tokio::test]
async fn categories_form_a_tree_and_product_listings_include_descendants() {
    let app = spawn_app().await;
    let admin = staff(&app, &["catalog.categories.manage"]);
    let vendor = seller(&app);
    let clothes = create(&app, &admin, json!({"name": "Clothes"})).await;
    assert_eq!(clothes["slug"], "clothes");
    let shoes = create(
        &app,
        &admin,
        json!({"name": "Shoes", "parent_id": id(&clothes)}),
    )
    .await;
    let boots = create(
        &app,
        &admin,
        json!({"name": "Boots", "slug": "boots", "parent_id": id(&shoes)}),
    )
    .await;
    assert_eq!(boots["path"], json!([id(&clothes), id(&shoes), id(&boots)]));
    let food = create(&app, &admin, json!({"name": "Food"})).await;

    for (title, cat) in [
        ("Hat", &clothes),
        ("Sneaker", &shoes),
        ("Wellington", &boots),
        ("Bread", &food),
    ] {
        let mut b = product_body(title);
        b["category_id"] = json!(id(cat));
        active_product(&app, &vendor, b).await;
    }
    // By id and by slug, with every descendant's products.
    assert_eq!(
        titles_in(&app, id(&clothes)).await,
        ["Hat", "Sneaker", "Wellington"]
    );
    assert_eq!(titles_in(&app, "shoes").await, ["Sneaker", "Wellington"]);
    assert_eq!(titles_in(&app, "boots").await, ["Wellington"]);
    assert!(titles_in(&app, "no-such-category").await.is_empty());

    // Public reads, by id or slug; roots and children listed by position.
    let (status, c) = get(&app, &format!("{CATEGORIES}/boots")).await;
    assert_eq!((status, c["id"].clone()), (200, boots["id"].clone()));
    let (_, roots) = get(&app, CATEGORIES).await;
    let names: Vec<&str> = roots["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Clothes", "Food"]);
    let (_, kids) = get(&app, &format!("{CATEGORIES}?parent={}", id(&clothes))).await;
    assert_eq!(kids["items"].as_array().unwrap().len(), 1);

    // A product naming a category that does not exist is a 422, not a 500.
    let mut b = product_body("Ghost");
    b["category_id"] = json!(uuid::Uuid::now_v7().to_string());
    let res = send(
        &app,
        Method::POST,
        "/api/v1/catalog/products",
        Some(&vendor),
        Some(b),
    )
    .await;
    assert_eq!(res.status(), 422);

    // Slugs are unique across the catalogue.
    let res = send(
        &app,
        Method::POST,
        CATEGORIES,
        Some(&admin),
        Some(json!({"name": "Boots", "parent_id": id(&food)})),
    )
    .await;
    assert_eq!(res.status(), 409);
}

#[tokio::test]
async fn moving_a_subtree_is_one_operation_and_loops_are_refused() {
    let app = spawn_app().await;
    let admin = staff(&app, &["catalog.categories.manage"]);
    let vendor = seller(&app);
    let a = create(&app, &admin, json!({"name": "A"})).await;
    let b = create(&app, &admin, json!({"name": "B", "parent_id": id(&a)})).await;
    let c = create(&app, &admin, json!({"name": "C", "parent_id": id(&b)})).await;
    let x = create(&app, &admin, json!({"name": "X"})).await;
    let mut p = product_body("Deep");
    p["category_id"] = json!(id(&c));
    active_product(&app, &vendor, p).await;

    // A under its own grandchild C, or under itself: a loop, refused, nothing changes.
    for target in [id(&c), id(&a)] {
        let res = send(
            &app,
            Method::POST,
            &format!("{CATEGORIES}/{}/move", id(&a)),
            Some(&admin),
            Some(json!({"parent_id": target})),
        )
        .await;
        assert_eq!(res.status(), 409);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["code"], "category_loop", "{body}");
    }
    let (_, c_now) = get(&app, &format!("{CATEGORIES}/{}", id(&c))).await;
    assert_eq!(c_now["path"], json!([id(&a), id(&b), id(&c)]));

    // B with its subtree under X: every path follows, and listings with it.
    let res = send(
        &app,
        Method::POST,
        &format!("{CATEGORIES}/{}/move", id(&b)),
        Some(&admin),
        Some(json!({"parent_id": id(&x)})),
    )
    .await;
    assert_eq!(res.status(), 200);
    let (_, c_now) = get(&app, &format!("{CATEGORIES}/{}", id(&c))).await;
    assert_eq!(c_now["path"], json!([id(&x), id(&b), id(&c)]));
    assert_eq!(titles_in(&app, id(&x)).await, ["Deep"]);
    assert!(titles_in(&app, id(&a)).await.is_empty());

    // To the roots, and to a parent that does not exist.
    let res = send(
        &app,
        Method::POST,
        &format!("{CATEGORIES}/{}/move", id(&b)),
        Some(&admin),
        Some(json!({"parent_id": null})),
    )
    .await;
    assert_eq!(res.status(), 200);
    let (_, c_now) = get(&app, &format!("{CATEGORIES}/{}", id(&c))).await;
    assert_eq!(c_now["path"], json!([id(&b), id(&c)]));
    let res = send(
        &app,
        Method::POST,
        &format!("{CATEGORIES}/{}/move", id(&b)),
        Some(&admin),
        Some(json!({"parent_id": uuid::Uuid::now_v7()})),
    )
    .await;
    assert_eq!(res.status(), 422);
}

#[tokio::test]
async fn deleting_a_category_with_products_needs_somewhere_to_move_them() {
    let app = spawn_app().await;
    let admin = staff(&app, &["catalog.categories.manage"]);
    let vendor = seller(&app);
    let old = create(&app, &admin, json!({"name": "Old"})).await;
    let new = create(&app, &admin, json!({"name": "New"})).await;
    let child = create(&app, &admin, json!({"name": "Kid", "parent_id": id(&new)})).await;
    let mut p = product_body("Lamp");
    p["category_id"] = json!(id(&old));
    active_product(&app, &vendor, p).await;

    let at = format!("{CATEGORIES}/{}", id(&old));
    let res = send(&app, Method::DELETE, &at, Some(&admin), None).await;
    assert_eq!(res.status(), 409);
    assert_eq!(titles_in(&app, id(&old)).await, ["Lamp"]);
    let res = send(
        &app,
        Method::DELETE,
        &format!("{at}?move_products_to={}", uuid::Uuid::now_v7()),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(res.status(), 422);
    let res = send(
        &app,
        Method::DELETE,
        &format!("{at}?move_products_to=nope"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(res.status(), 400);
    assert_eq!(titles_in(&app, id(&old)).await, ["Lamp"]);
    // A category with subcategories stays.
    let res = send(
        &app,
        Method::DELETE,
        &format!("{CATEGORIES}/{}", id(&new)),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(res.status(), 409);

    let res = send(
        &app,
        Method::DELETE,
        &format!("{at}?move_products_to={}", id(&child)),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(res.status(), 204);
    assert_eq!(get(&app, &at).await.0, 404);
    assert_eq!(titles_in(&app, id(&new)).await, ["Lamp"]);
}

#[tokio::test]
async fn only_category_staff_shape_the_tree_and_bad_input_is_refused() {
    let app = spawn_app().await;
    let admin = staff(&app, &["catalog.categories.manage"]);
    let other = shopper(&app);
    let vendor = seller(&app);
    let cat = create(&app, &admin, json!({"name": "Toys"})).await;
    let at = format!("{CATEGORIES}/{}", id(&cat));
    let writes = [
        (
            Method::POST,
            CATEGORIES.to_owned(),
            Some(json!({"name": "Games"})),
        ),
        (Method::PATCH, at.clone(), Some(json!({"name": "Games"}))),
        (
            Method::POST,
            format!("{at}/move"),
            Some(json!({"parent_id": null})),
        ),
        (Method::DELETE, at.clone(), None),
    ];
    for (method, path, body) in writes {
        for who in [&other, &vendor] {
            let res = send(&app, method.clone(), &path, Some(who), body.clone()).await;
            assert_eq!(res.status(), 403, "{method} {path}");
        }
        let res = send(&app, method.clone(), &path, None, body.clone()).await;
        assert_eq!(res.status(), 401, "{method} {path}");
    }
    // Reads are public.
    assert_eq!(get(&app, &at).await.0, 200);
    assert_eq!(get(&app, CATEGORIES).await.0, 200);

    for bad in [
        json!({"name": ""}),
        json!({"name": "   "}),
        json!({"name": "X", "slug": "Not A Slug"}),
        json!({"name": "X", "parent_id": uuid::Uuid::now_v7()}),
        json!({"name": "X", "parent_id": "nope"}),
        json!({"name": "X", "colour": "red"}),
    ] {
        let res = send(
            &app,
            Method::POST,
            CATEGORIES,
            Some(&admin),
            Some(bad.clone()),
        )
        .await;
        assert!(
            matches!(res.status().as_u16(), 400 | 422),
            "{bad}: {}",
            res.status()
        );
    }
    let res = send(
        &app,
        Method::PATCH,
        &at,
        Some(&admin),
        Some(json!({"slug": "-"})),
    )
    .await;
    assert_eq!(res.status(), 422);
    let res = send(
        &app,
        Method::PATCH,
        &format!("{CATEGORIES}/{}", uuid::Uuid::now_v7()),
        Some(&admin),
        Some(json!({"name": "Y"})),
    )
    .await;
    assert_eq!(res.status(), 404);
    let res = send(
        &app,
        Method::PATCH,
        &at,
        Some(&admin),
        Some(json!({"name": "Games", "position": 3})),
    )
    .await;
    assert_eq!(res.status(), 200);
    let (_, now) = get(&app, &at).await;
    assert_eq!(
        (
            now["name"].clone(),
            now["position"].clone(),
            now["slug"].clone()
        ),
        (json!("Games"), json!(3), json!("toys"))
    );
}

#[tokio::test]
async fn category_changes_publish_events_and_are_audited() {
    let app = spawn_app().await;
    let admin = staff(&app, &["catalog.categories.manage"]);
    let vendor = seller(&app);
    let clothes = create(&app, &admin, json!({"name": "Clothes"})).await;
    let hats = create(&app, &admin, json!({"name": "Hats"})).await;
    let caps = create(
        &app,
        &admin,
        json!({"name": "Caps", "parent_id": id(&hats)}),
    )
    .await;
    let res = send(
        &app,
        Method::PATCH,
        &format!("{CATEGORIES}/{}", id(&caps)),
        Some(&admin),
        Some(json!({"name": "Baseball caps"})),
    )
    .await;
    assert_eq!(res.status(), 200);
    let res = send(
        &app,
        Method::POST,
        &format!("{CATEGORIES}/{}/move", id(&caps)),
        Some(&admin),
        Some(json!({"parent_id": id(&clothes)})),
    )
    .await;
    assert_eq!(res.status(), 200);
    // Two live products and a deleted one in Caps; the delete moves the live ones.
    let mut moved = Vec::new();
    for title in ["Red cap", "Blue cap", "Gone cap"] {
        let p = create_product(
            &app,
            &vendor,
            json!({"title": title, "currency": "USD", "category_id": id(&caps)}),
        )
        .await;
        moved.push(p["id"].as_str().unwrap().to_owned());
    }
    let gone = moved.pop().unwrap();
    let res = send(
        &app,
        Method::DELETE,
        &format!("/api/v1/catalog/products/{gone}"),
        Some(&vendor),
        None,
    )
    .await;
    assert_eq!(res.status(), 204);
    let updates_before = app.events_of("catalog.product.updated").await;
    let res = send(
        &app,
        Method::DELETE,
        &format!(
            "{CATEGORIES}/{}?move_products_to={}",
            id(&caps),
            id(&clothes)
        ),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(res.status(), 204);

    for (event, n) in [
        ("catalog.category.created", 3),
        ("catalog.category.updated", 1),
        ("catalog.category.moved", 1),
        ("catalog.category.deleted", 1),
    ] {
        assert_eq!(app.events_of(event).await, n, "{event}");
    }
    let moved_payload: Value = sqlx::query_scalar(
        "SELECT payload FROM platform.outbox WHERE event_type = 'catalog.category.moved'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(moved_payload["old_parent_id"], id(&hats));
    assert_eq!(moved_payload["category"]["parent_id"], id(&clothes));
    let deleted: Value = sqlx::query_scalar(
        "SELECT payload FROM platform.outbox WHERE event_type = 'catalog.category.deleted'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(deleted["moved_products"], 2);
    assert_eq!(deleted["moved_products_to"], id(&clothes));
    // Each moved live product gets its own catalog.product.updated naming its new category.
    assert_eq!(
        app.events_of("catalog.product.updated").await - updates_before,
        2
    );
    let mut updated: Vec<String> = sqlx::query_scalar(
        "SELECT payload->>'product_id' FROM platform.outbox
          WHERE event_type = 'catalog.product.updated' AND payload->'product'->>'category_id' = $1",
    )
    .bind(id(&clothes))
    .fetch_all(&app.db)
    .await
    .unwrap();
    updated.sort();
    moved.sort();
    assert_eq!(updated, moved);

    // Every change is a staff action in the audit trail, by the admin.
    let audited: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT action, actor, object_id FROM platform.audit_log
          WHERE object_type = 'catalog.category' ORDER BY id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    let actions: Vec<&str> = audited.iter().map(|a| a.0.as_str()).collect();
    assert_eq!(
        actions,
        [
            "catalog.category.created",
            "catalog.category.created",
            "catalog.category.created",
            "catalog.category.updated",
            "catalog.category.moved",
            "catalog.category.deleted"
        ]
    );
    assert!(audited.iter().all(|a| a.1 == format!("user:{}", admin.id)));
    assert!(audited[3..].iter().all(|a| a.2 == id(&caps)));
    let update: (Value, Value) = sqlx::query_as(
        "SELECT before, after FROM platform.audit_log WHERE action = 'catalog.category.updated'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(update.0["name"], "Caps");
    assert_eq!(update.1["name"], "Baseball caps");

    // A refused change publishes and records nothing.
    let res = send(
        &app,
        Method::POST,
        &format!("{CATEGORIES}/{}/move", id(&clothes)),
        Some(&admin),
        Some(json!({"parent_id": id(&clothes)})),
    )
    .await;
    assert_eq!(res.status(), 409);
    assert_eq!(app.events_of("catalog.category.moved").await, 1);

    // A move that leaves it where it was publishes nothing; one without `parent_id` is
    // refused rather than read as "to the roots" (both review findings).
    let moved = format!("{CATEGORIES}/{}/move", id(&hats));
    let (status, now): (_, Value) = {
        let res = send(
            &app,
            Method::GET,
            &format!("{CATEGORIES}/{}", id(&hats)),
            None,
            None,
        )
        .await;
        (res.status(), res.json().await.unwrap())
    };
    assert_eq!(status, 200);
    let res = send(
        &app,
        Method::POST,
        &moved,
        Some(&admin),
        Some(json!({"parent_id": now["parent_id"]})),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(app.events_of("catalog.category.moved").await, 1);
    let res = send(
        &app,
        Method::POST,
        &moved,
        Some(&admin),
        Some(json!({"position": 5})),
    )
    .await;
    assert_eq!(res.status(), 400);
    let (_, after): (_, Value) = {
        let res = send(
            &app,
            Method::GET,
            &format!("{CATEGORIES}/{}", id(&hats)),
            None,
            None,
        )
        .await;
        (res.status(), res.json().await.unwrap())
    };
    assert_eq!(after["parent_id"], now["parent_id"]);
}
