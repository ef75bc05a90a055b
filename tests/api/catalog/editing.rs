//! Editing a product after creation: `null` clears its nullable fields (absent leaves
//! them), and its options are renamed and extended with the variants following.

use reqwest::Method;
use serde_json::{Value, json};

use super::*;
use crate::helpers::{problem, spawn_app};

const PRODUCTS: &str = "/api/v1/catalog/products";

fn at(p: &Value) -> String {
    format!("{PRODUCTS}/{}", p["id"].as_str().unwrap())
}

async fn patch(app: &TestApp, path: &str, who: Option<&Actor>, body: Value) -> (u16, Value) {
    let res = send(app, Method::PATCH, path, who, Some(body)).await;
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn null_clears_nullable_fields_and_absent_leaves_them() {
    let app = spawn_app().await;
    let alice = seller(&app);
    let admin = staff(&app, &["catalog.categories.manage"]);
    let res = send(
        &app,
        Method::POST,
        "/api/v1/catalog/categories",
        Some(&admin),
        Some(json!({"name": "Hats"})),
    )
    .await;
    let hats: Value = res.json().await.unwrap();
    let p = create_product(
        &app,
        &alice,
        json!({
            "title": "Beanie", "currency": "USD", "description": "Warm.",
            "seo_title": "Beanie | Shop", "seo_description": "A warm beanie.",
            "category_id": hats["id"]
        }),
    )
    .await;

    // Absent: unchanged.
    let (status, same) = patch(&app, &at(&p), Some(&alice), json!({"title": "Wool beanie"})).await;
    assert_eq!(status, 200, "{same}");
    assert_eq!(same["description"], "Warm.");
    assert_eq!(same["seo_title"], "Beanie | Shop");
    assert_eq!(same["category_id"], hats["id"]);

    // null: cleared.
    let (status, cleared) = patch(
        &app,
        &at(&p),
        Some(&alice),
        json!({"description": null, "seo_title": null, "seo_description": null, "category_id": null}),
    )
    .await;
    assert_eq!(status, 200, "{cleared}");
    assert_eq!(cleared["description"], "");
    assert!(cleared["seo_title"].is_null());
    assert!(cleared["seo_description"].is_null());
    assert!(cleared["category_id"].is_null());
    assert_eq!(cleared["title"], "Wool beanie");
    let read: Value = send(&app, Method::GET, &at(&p), Some(&alice), None)
        .await
        .json()
        .await
        .unwrap();
    assert!(read["seo_title"].is_null() && read["category_id"].is_null());

    // Values set them again; bad ones still fail; others may not clear anything.
    let (status, set) = patch(
        &app,
        &at(&p),
        Some(&alice),
        json!({"seo_title": "Back", "category_id": hats["id"]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (set["seo_title"].clone(), set["category_id"].clone()),
        (json!("Back"), hats["id"].clone())
    );
    let (status, _) = patch(
        &app,
        &at(&p),
        Some(&alice),
        json!({"seo_title": "x".repeat(201)}),
    )
    .await;
    assert_eq!(status, 422);
    let (status, _) = patch(
        &app,
        &at(&p),
        Some(&alice),
        json!({"category_id": uuid::Uuid::now_v7()}),
    )
    .await;
    assert_eq!(status, 422);
    let bob = seller(&app);
    let (status, _) = patch(&app, &at(&p), Some(&bob), json!({"seo_title": null})).await;
    assert_eq!(status, 404);
    let (status, _) = patch(&app, &at(&p), None, json!({"seo_title": null})).await;
    assert_eq!(status, 401);
    let read: Value = send(&app, Method::GET, &at(&p), Some(&alice), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["seo_title"], "Back");

    // A field that cannot be cleared refuses null instead of reading it as "leave it" (a
    // review found `{"title": null}` answered 200, changing nothing).
    for field in ["title", "slug", "tags", "images", "attributes", "featured"] {
        let (status, body) = patch(&app, &at(&p), Some(&alice), json!({ field: null })).await;
        assert_eq!(status, 400, "{field}: {body}");
        assert!(
            body["detail"].as_str().unwrap_or_default().contains("null"),
            "{field}: {body}"
        );
    }
}

#[tokio::test]
async fn options_are_renamed_and_extended_and_variants_follow() {
    let app = spawn_app().await;
    let alice = seller(&app);
    let p = create_product(
        &app,
        &alice,
        json!({
            "title": "Tee", "currency": "USD",
            "options": [{"name": "Size", "values": ["S", "M"]}, {"name": "Colour", "values": ["Red"]}],
            "variants": [
                {"sku": "TEE-S", "options": {"Size": "S", "Colour": "Red"}, "price": 1000},
                {"sku": "TEE-M", "title": "Medium red tee", "options": {"Size": "M", "Colour": "Red"}, "price": 1000}
            ]
        }),
    )
    .await;
    let options = format!("{}/options", at(&p));
    let (status, changed) = patch(
        &app,
        &options,
        Some(&alice),
        json!({"option": "Size", "name": "Fit", "add_values": ["L"], "rename_values": {"S": "Small"}}),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(
        changed["options"],
        json!([{"name": "Fit", "values": ["Small", "M", "L"]}, {"name": "Colour", "values": ["Red"]}])
    );
    let variants = changed["variants"].as_array().unwrap();
    let small = variants.iter().find(|v| v["sku"] == "TEE-S").unwrap();
    assert_eq!(small["options"], json!({"Fit": "Small", "Colour": "Red"}));
    assert_eq!(small["title"], "Small / Red", "a generated title follows");
    let medium = variants.iter().find(|v| v["sku"] == "TEE-M").unwrap();
    assert_eq!(medium["options"], json!({"Fit": "M", "Colour": "Red"}));
    assert_eq!(
        medium["title"], "Medium red tee",
        "a title of its own stays"
    );

    // Stored: a read shows the same, and a variant of the new value can be added.
    let read: Value = send(&app, Method::GET, &at(&p), Some(&alice), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["options"], changed["options"]);
    let res = send(
        &app,
        Method::POST,
        &format!("{}/variants", at(&p)),
        Some(&alice),
        Some(json!({"sku": "TEE-L", "options": {"Fit": "L", "Colour": "Red"}, "price": 1100})),
    )
    .await;
    assert_eq!(res.status(), 201);
    assert!(app.events_of("catalog.product.updated").await >= 1);

    // Bad edits: unknown option or value, a duplicate value or option name, blanks.
    for bad in [
        json!({"option": "Material"}),
        json!({"option": "Fit", "rename_values": {"XS": "Tiny"}}),
        json!({"option": "Fit", "add_values": ["M"]}),
        json!({"option": "Fit", "rename_values": {"Small": "M"}}),
        json!({"option": "Fit", "name": "Colour"}),
        json!({"option": "Fit", "add_values": [" "]}),
        json!({"option": "Fit", "colour": "red"}),
    ] {
        let (status, body) = patch(&app, &options, Some(&alice), bad.clone()).await;
        assert!(matches!(status, 400 | 422), "{bad}: {status} {body}");
    }
    // A swap is refused whole, whatever the rows' order (a review found a 409 by chance).
    let (status, body) = patch(
        &app,
        &options,
        Some(&alice),
        json!({"option": "Fit", "rename_values": {"Small": "M", "M": "Small"}}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("chained"), "{body}");
    // Others: 404; anonymous: 401.
    let bob = seller(&app);
    let res = send(
        &app,
        Method::PATCH,
        &options,
        Some(&bob),
        Some(json!({"option": "Fit", "add_values": ["XL"]})),
    )
    .await;
    assert_eq!(problem(res).await["code"], "not_found");
    let res = send(
        &app,
        Method::PATCH,
        &options,
        None,
        Some(json!({"option": "Fit", "add_values": ["XL"]})),
    )
    .await;
    assert_eq!(res.status(), 401);
    let read: Value = send(&app, Method::GET, &at(&p), Some(&alice), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["options"], changed["options"], "nothing changed");
}
