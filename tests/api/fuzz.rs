//! Generated requests against every operation in the OpenAPI document (databases and
//! storage; auth, notifications and the kernel's routes as an administrator and as a deleted
//! account), with Schemathesis (`scripts/test.sh` installs it from PyPI): examples, boundary and
//! malformed values, fuzzed bodies and chains of calls. Whatever it sends, no answer may be a
//! server error. The path parameters name real things, so requests reach the handlers'
//! logic instead of stopping at a 404.

use std::path::PathBuf;

use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, spawn_app_with};

async fn create(app: &TestApp, token: &str, path: &str, body: Value) -> Value {
    let res = app
        .as_user(Method::POST, path, token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{path}");
    res.json().await.unwrap()
}

/// Submits and approves `product` (created by `seller`, who may also moderate), returning
/// its id: the fuzz runs need a product on sale.
async fn put_on_sale(app: &TestApp, seller: &str, product: &Value) -> String {
    let id = product["id"].as_str().unwrap().to_owned();
    for action in ["submit", "approve"] {
        let res = app
            .as_user(
                Method::POST,
                &format!("/api/v1/catalog/products/{id}/{action}"),
                seller,
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{action}");
    }
    id
}

/// The id of the first item `path` lists, once it lists one (events arrive asynchronously).
async fn first_id(app: &TestApp, token: &str, path: &str) -> String {
    for _ in 0..200 {
        let items = app.items_as(path, token).await;
        if let Some(id) = items.first().and_then(|i| i["id"].as_str()) {
            return id.to_owned();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{path} lists nothing");
}

#[tokio::test]
async fn generated_requests_never_get_a_server_error() {
    let dir = std::env::temp_dir().join(format!("basalt-fuzz-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let files = dir.join("files");
    let app = spawn_app_with(&[
        ("BASALT__STORAGE__LOCAL_DIR", files.to_str().unwrap()),
        ("BASALT__RATE_LIMIT__ENABLED", "false"),
    ])
    .await;
    let token = app.token(&Uuid::now_v7().to_string(), &["user"], &[]);

    let db = create(&app, &token, "/api/v1/databases", json!({"name": "fuzz"})).await;
    let db = db["id"].as_str().unwrap().to_owned();
    create(
        &app,
        &token,
        &format!("/api/v1/databases/{db}/collections"),
        json!({
            "id": "books",
            "name": "Books",
            "attributes": [
                {"key": "title", "type": "string", "size": 100, "required": true},
                {"key": "year", "type": "integer", "min": 0, "max": 3000},
                {"key": "price", "type": "float"},
                {"key": "tags", "type": "string", "size": 20, "array": true},
                {"key": "genre", "type": "enum", "elements": ["fiction", "poetry"]},
                {"key": "published", "type": "datetime"}
            ],
            "indexes": [{"key": "by_year", "type": "key", "attributes": ["year"]}]
        }),
    )
    .await;
    create(
        &app,
        &token,
        &format!("/api/v1/databases/{db}/collections/books/documents"),
        json!({"id": "b1", "data": {"title": "Dune", "year": 1965, "tags": ["sf"]}}),
    )
    .await;
    let bucket = create(
        &app,
        &token,
        "/api/v1/storage/buckets",
        json!({"name": "fuzz", "versioning": true, "variants": [{"name": "thumb", "width": 16, "height": 16}]}),
    )
    .await;
    let bucket = bucket["id"].as_str().unwrap().to_owned();
    let res = app
        .as_user(
            Method::POST,
            &format!("/api/v1/storage/buckets/{bucket}/files"),
            &token,
        )
        .multipart(Form::new().part(
            "file",
            Part::bytes(b"hello, fuzz".to_vec()).file_name("a.txt"),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let file = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    std::fs::write(
        dir.join("schemathesis.toml"),
        format!(
            r#"base-url = "{base}"
headers = {{ Authorization = "Bearer {token}" }}

[parameters]
db = "{db}"
collection = "books"
id = "b1"
key = "year"
bucket = "{bucket}"
file = "{file}"
number = "1"
name = "thumb"
"#,
            base = app.address
        ),
    )
    .unwrap();
    schemathesis(
        &app,
        &dir,
        &[
            "--include-tag",
            "databases",
            "--include-tag",
            "documents",
            "--include-tag",
            "storage",
            // tus PATCH bodies are application/offset+octet-stream, which it cannot
            // generate; the storage tests break and resume them by hand.
            "--exclude-name",
            "PATCH /api/v1/storage/uploads/{upload}",
            // Deleting what the path parameters name would leave the rest of the run
            // with 404s; those deletes have tests of their own.
            "--exclude-name",
            "DELETE /api/v1/databases/{db}",
            "--exclude-name",
            "DELETE /api/v1/databases/{db}/collections/{collection}",
            "--exclude-name",
            "DELETE /api/v1/storage/buckets/{bucket}",
            "--exclude-name",
            "DELETE /api/v1/storage/files/{file}",
        ],
    )
    .await;
}

/// The rest of the API (auth, notifications, webhooks, the kernel's own routes), called
/// with a valid token of a user who no longer exists, holding every permission: what a
/// replica without Redis still accepts for a while after the account is deleted elsewhere.
#[tokio::test]
async fn generated_requests_from_a_deleted_user_never_get_a_server_error() {
    let dir = std::env::temp_dir().join(format!("basalt-fuzz-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let app = spawn_app_with(&[("BASALT__RATE_LIMIT__ENABLED", "false")]).await;
    let token = app.token(
        &Uuid::now_v7().to_string(),
        &["user", "admin"],
        &[
            "auth.users.read",
            "auth.roles.read",
            "auth.roles.manage",
            "auth.roles.grant",
            "notifications.messages.read",
            "notifications.messages.manage",
            "notifications.webhooks.manage",
        ],
    );
    std::fs::write(
        dir.join("schemathesis.toml"),
        format!(
            "base-url = \"{}\"\nheaders = {{ Authorization = \"Bearer {token}\" }}\n",
            app.address
        ),
    )
    .unwrap();
    schemathesis(
        &app,
        &dir,
        &[
            "--exclude-tag",
            "databases",
            "--exclude-tag",
            "documents",
            "--exclude-tag",
            "storage",
            // The tests' own probe domain, which fails on request.
            "--exclude-path-regex",
            "^/api/v1/probe",
        ],
    )
    .await;
}

/// Every other operation (auth, its administration, notifications, webhooks, the kernel's
/// routes) as a real signed-in administrator, with the path parameters naming real things
/// (an endpoint and one of its deliveries, a second session, an API key, a role, another
/// account, a queued message), so requests reach the handlers' logic.
#[tokio::test]
async fn generated_requests_from_a_real_administrator_never_get_a_server_error() {
    let dir = std::env::temp_dir().join(format!("basalt-fuzz-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let app = spawn_app_with(&[
        ("BASALT__RATE_LIMIT__ENABLED", "false"),
        ("BASALT__AUTH__ADMIN_EMAILS", "root@example.com"),
        ("BASALT__NOTIFICATIONS__ALLOW_PRIVATE_WEBHOOKS", "true"),
    ])
    .await;
    assert_eq!(app.register("root@example.com").await.status(), 201);
    // Verified: `admin_emails` grants the role then, and webhooks and keys need it.
    app.verify_email("root@example.com").await;
    let token = app.access_token("root@example.com").await;
    // A second session of root's, for the session routes to revoke.
    app.access_token("root@example.com").await;
    let endpoint = create(
        &app,
        &token,
        "/api/v1/notifications/webhooks",
        json!({"url": "http://127.0.0.1:9/hook", "event_types": ["user.*"]}),
    )
    .await;
    let endpoint = endpoint["id"].as_str().unwrap().to_owned();
    assert_eq!(app.register("other@example.com").await.status(), 201);
    let other: Value = app
        .json_as(
            "/api/v1/auth/me",
            app.access_token("other@example.com").await,
        )
        .await;
    let other = other["id"].as_str().unwrap().to_owned();
    let key = create(
        &app,
        &token,
        "/api/v1/auth/api-keys",
        json!({"name": "fuzz", "scopes": ["databases.read"]}),
    )
    .await;
    let key = key["id"].as_str().unwrap().to_owned();
    create(
        &app,
        &token,
        "/api/v1/auth/admin/roles",
        json!({"name": "fuzzers", "description": "Fuzzed", "permissions": ["databases.read"]}),
    )
    .await;
    let deliveries = format!("/api/v1/notifications/webhooks/{endpoint}/deliveries");
    let delivery = first_id(&app, &token, &deliveries).await;
    let message = first_id(&app, &token, "/api/v1/notifications/messages").await;
    let sessions = app.items_as("/api/v1/auth/sessions", &token).await;
    let session = sessions
        .iter()
        .find(|s| s["current"] != true)
        .and_then(|s| s["id"].as_str())
        .unwrap_or_else(|| panic!("a second session: {sessions:?}"))
        .to_owned();

    std::fs::write(
        dir.join("schemathesis.toml"),
        format!(
            r#"base-url = "{base}"
headers = {{ Authorization = "Bearer {token}" }}

[[operations]]
include-path-regex = "^/api/v1/notifications/webhooks/"
parameters = {{ id = "{endpoint}", delivery = "{delivery}" }}

[[operations]]
include-path-regex = "^/api/v1/notifications/messages/"
parameters = {{ id = "{message}" }}

[[operations]]
include-path-regex = "^/api/v1/auth/sessions/"
parameters = {{ id = "{session}" }}

[[operations]]
include-path-regex = "^/api/v1/auth/api-keys/"
parameters = {{ id = "{key}" }}

[[operations]]
include-path-regex = "^/api/v1/auth/admin/users/"
parameters = {{ id = "{other}", role = "fuzzers" }}

[[operations]]
include-path-regex = "^/api/v1/auth/admin/roles/"
parameters = {{ name = "fuzzers" }}
"#,
            base = app.address
        ),
    )
    .unwrap();
    schemathesis(
        &app,
        &dir,
        &[
            // The first test covers these, with objects of their own.
            "--exclude-tag",
            "databases",
            "--exclude-tag",
            "documents",
            "--exclude-tag",
            "storage",
            // The tests' own probe domain, which fails on request.
            "--exclude-path-regex",
            "^/api/v1/probe",
            // Signing out or deleting what the parameters name would leave the rest of
            // the run with 401s and 404s; those have tests of their own.
            "--exclude-name",
            "POST /api/v1/auth/logout",
            "--exclude-name",
            "DELETE /api/v1/notifications/webhooks/{id}",
            "--exclude-name",
            "DELETE /api/v1/auth/api-keys/{id}",
            "--exclude-name",
            "DELETE /api/v1/auth/admin/roles/{name}",
        ],
    )
    .await;
}

/// The catalog (products, options, variants, stock, categories, reviews), called by a
/// seller who is also staff holding every catalog permission, with a product on sale that
/// someone else has reviewed, so the path parameters name real things.
#[cfg(feature = "catalog")]
#[tokio::test]
async fn generated_catalog_requests_never_get_a_server_error() {
    let dir = std::env::temp_dir().join(format!("basalt-fuzz-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let app = spawn_app_with(&[("BASALT__RATE_LIMIT__ENABLED", "false")]).await;
    let token = app.token(
        &Uuid::now_v7().to_string(),
        &["user", "vendor", "staff"],
        &[
            "catalog.products.sell",
            "catalog.products.manage",
            "catalog.products.moderate",
            "catalog.categories.manage",
            "catalog.stock.manage",
            "catalog.stock.reserve",
            "catalog.reviews.moderate",
        ],
    );
    let shopper = app.token(&Uuid::now_v7().to_string(), &["user"], &[]);
    let category = create(
        &app,
        &token,
        "/api/v1/catalog/categories",
        json!({"name": "Fuzz"}),
    )
    .await;
    let product = create(
        &app,
        &token,
        "/api/v1/catalog/products",
        json!({
            "title": "Fuzzed", "currency": "USD", "category_id": category["id"],
            "options": [{"name": "Size", "values": ["S", "M"]}],
            "variants": [{"sku": "FZ-S", "options": {"Size": "S"}, "price": 100, "on_hand": 1000}]
        }),
    )
    .await;
    let id = put_on_sale(&app, &token, &product).await;
    let variant = product["variants"][0]["id"].as_str().unwrap().to_owned();
    let review = create(
        &app,
        &shopper,
        &format!("/api/v1/catalog/products/{id}/reviews"),
        json!({"rating": 4, "title": "Fine"}),
    )
    .await;
    let reservation = create(
        &app,
        &token,
        &format!("/api/v1/catalog/inventory/{variant}/reservations"),
        json!({"holder": "cart:fuzz", "quantity": 1}),
    )
    .await;
    std::fs::write(
        dir.join("schemathesis.toml"),
        format!(
            r#"base-url = "{base}"
headers = {{ Authorization = "Bearer {token}" }}

[parameters]
product = "{id}"
variant = "{variant}"
review = "{review}"
category = "{category}"
slug = "fuzzed"
reservation = "{reservation}"
"#,
            base = app.address,
            review = review["id"].as_str().unwrap(),
            category = category["id"].as_str().unwrap(),
            reservation = reservation["id"].as_str().unwrap(),
        ),
    )
    .unwrap();
    schemathesis(
        &app,
        &dir,
        &[
            "--include-tag",
            "catalog",
            // Deleting what the path parameters name would leave the rest of the run with
            // 404s; those deletes have tests of their own.
            "--exclude-name",
            "DELETE /api/v1/catalog/products/{product}",
            "--exclude-name",
            "DELETE /api/v1/catalog/categories/{category}",
            "--exclude-name",
            "DELETE /api/v1/catalog/products/{product}/reviews/{review}",
            "--exclude-name",
            "DELETE /api/v1/catalog/products/{product}/variants/{variant}",
        ],
    )
    .await;
}

/// The cart (the shopper's cart, its lines, discount codes, addresses, and the staff's
/// discount codes), called by a shopper who also manages discount codes, holding a cart
/// with a line and a code, so the path parameters name real things.
#[cfg(feature = "cart")]
#[tokio::test]
async fn generated_cart_requests_never_get_a_server_error() {
    let dir = std::env::temp_dir().join(format!("basalt-fuzz-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let app = spawn_app_with(&[("BASALT__RATE_LIMIT__ENABLED", "false")]).await;
    let seller = app.token(
        &Uuid::now_v7().to_string(),
        &["user", "vendor", "staff"],
        &["catalog.products.sell", "catalog.products.moderate"],
    );
    let token = app.token(
        &Uuid::now_v7().to_string(),
        &["user", "staff"],
        &["cart.discounts.manage"],
    );
    let product = create(
        &app,
        &seller,
        "/api/v1/catalog/products",
        json!({"title": "Fuzzed", "currency": "USD",
               "variants": [{"sku": "FZ-C", "price": 100, "on_hand": 100000}]}),
    )
    .await;
    put_on_sale(&app, &seller, &product).await;
    let variant = product["variants"][0]["id"].as_str().unwrap().to_owned();
    let cart = create(
        &app,
        &token,
        "/api/v1/cart/items",
        json!({"variant_id": variant, "quantity": 1}),
    )
    .await;
    let discount = create(
        &app,
        &token,
        "/api/v1/cart/discounts",
        json!({"code": "FUZZ", "kind": "percentage", "value": 500}),
    )
    .await;
    std::fs::write(
        dir.join("schemathesis.toml"),
        format!(
            r#"base-url = "{base}"
headers = {{ Authorization = "Bearer {token}" }}

[parameters]
line = "{line}"
code = "FUZZ"
discount = "{discount}"
"#,
            base = app.address,
            line = cart["lines"][0]["line_id"].as_str().unwrap(),
            discount = discount["id"].as_str().unwrap(),
        ),
    )
    .unwrap();
    schemathesis(
        &app,
        &dir,
        &[
            "--include-tag",
            "cart",
            // Deleting what the path parameters name would leave the rest of the run with
            // 404s; those deletes have tests of their own.
            "--exclude-name",
            "DELETE /api/v1/cart/discounts/{discount}",
            "--exclude-name",
            "DELETE /api/v1/cart",
        ],
    )
    .await;
}

/// The orders (checkout, reads, payments, refunds, the Stripe and Razorpay webhooks and
/// callback, cancel, fulfilment), called by a buyer who is also staff with the orders
/// permissions, with a placed order from two sellers, so the path parameters name a real
/// order and one of its parts; Stripe is configured against a localstripe and Razorpay
/// against an in-test Razorpay API, so their routes answer rather than 404. The
/// `Idempotency-Key` that checkout and refunds require is a header parameter of their
/// OpenAPI operations, so Schemathesis sends it.
#[cfg(feature = "orders")]
#[tokio::test]
async fn generated_order_requests_never_get_a_server_error() {
    let dir = std::env::temp_dir().join(format!("basalt-fuzz-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let stripe = crate::orders::stripe::LocalStripe::start();
    let razorpay = crate::orders::razorpay::razorpay("order_fuzz", json!([])).await;
    let mut env = crate::orders::stripe::stripe_env(&stripe);
    env.extend(crate::orders::razorpay::razorpay_env(&razorpay));
    env.push(("BASALT__RATE_LIMIT__ENABLED", "false".into()));
    let app = spawn_app_with(&crate::orders::stripe::env_refs(&env)).await;
    let seller = app.token(
        &Uuid::now_v7().to_string(),
        &["user", "vendor", "staff"],
        &["catalog.products.sell", "catalog.products.moderate"],
    );
    let token = app.token(
        &Uuid::now_v7().to_string(),
        &["user", "staff"],
        &["orders.manage", "orders.fulfil", "orders.refund"],
    );
    let product = create(
        &app,
        &seller,
        "/api/v1/catalog/products",
        json!({"title": "Fuzzed", "currency": "USD",
               "variants": [{"sku": "FZ-O", "price": 100, "on_hand": 1000}]}),
    )
    .await;
    put_on_sale(&app, &seller, &product).await;
    let variant = product["variants"][0]["id"].as_str().unwrap();
    let res = app
        .as_user(Method::POST, "/api/v1/cart/items", &token)
        .json(&json!({"variant_id": variant, "quantity": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let cart: Value = res.json().await.unwrap();
    let res = app
        .as_user(Method::POST, "/api/v1/orders", &token)
        .header("Idempotency-Key", "fuzz")
        .json(&json!({"cart_id": cart["id"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let order: Value = res.json().await.unwrap();
    std::fs::write(
        dir.join("schemathesis.toml"),
        format!(
            r#"base-url = "{base}"
headers = {{ Authorization = "Bearer {token}" }}

[parameters]
order = "{order}"
sub_order = "{sub_order}"
"#,
            base = app.address,
            order = order["id"].as_str().unwrap(),
            sub_order = order["sub_orders"][0]["id"].as_str().unwrap(),
        ),
    )
    .unwrap();
    schemathesis(&app, &dir, &["--include-tag", "orders"]).await;
}

/// Runs Schemathesis over the app's OpenAPI document from `dir` (where its
/// `schemathesis.toml` is), asserting that no generated request got a server error.
async fn schemathesis(app: &TestApp, dir: &std::path::Path, filters: &[&str]) {
    let python = PathBuf::from(std::env::var("TEST_PYTHON").unwrap_or_else(|_| "python3".into()));
    let st = python.with_file_name("st");
    // A fixed, small run by default; FUZZ_EXAMPLES=200 FUZZ_SEED=$RANDOM digs deeper.
    let examples = std::env::var("FUZZ_EXAMPLES").unwrap_or_else(|_| "10".into());
    let seed = std::env::var("FUZZ_SEED").unwrap_or_else(|_| "1".into());
    let out = tokio::process::Command::new(&st)
        .current_dir(dir)
        .args(["run", &format!("{}/api-docs/openapi.json", app.address)])
        .args(["--checks", "not_a_server_error", "--no-color"])
        .args(["--max-examples", &examples, "--seed", &seed])
        .args(filters)
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "{} (scripts/test.sh installs Schemathesis next to TEST_PYTHON): {e}",
                st.display()
            )
        });
    let report = String::from_utf8_lossy(&out.stdout);
    let _ = std::fs::remove_dir_all(dir);
    assert!(
        out.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("passed"), "{report}");
}
