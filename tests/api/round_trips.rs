//! Round-trip budgets of the hot paths (DESIGN.md, "Round-trip budgets"), counted per
//! request by `statements`: a path that grows a statement, a transaction or a `SET` fails
//! here rather than in a benchmark.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, spawn_app, spawn_on};
use crate::statements;

fn token(app: &TestApp) -> (Uuid, String) {
    let id = Uuid::now_v7();
    (id, app.token(&id.to_string(), &["user"], &[]))
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = app
        .client
        .request(method, app.url(&format!("/api/v1/databases{path}")))
        .bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.expect("request")
}

/// A database with a `posts` collection (a required title, a count with a default) whose
/// documents signed-in users may read and create; its path.
async fn posts(app: &TestApp, owner: &str) -> String {
    let res = send(app, Method::POST, "", owner, Some(json!({"name": "blog"}))).await;
    assert_eq!(res.status(), 201);
    let db: Value = res.json().await.unwrap();
    let db = db["id"].as_str().unwrap().to_owned();
    let res = send(
        app,
        Method::POST,
        &format!("/{db}/collections"),
        owner,
        Some(json!({
            "id": "posts", "name": "Posts",
            "permissions": {"read": ["users"], "create": ["users"]},
            "attributes": [
                {"key": "title", "type": "string", "size": 50, "required": true},
                {"key": "views", "type": "integer", "default": 0}
            ]
        })),
    )
    .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    format!("/{db}/collections/posts")
}

/// The response's status and the round trips its request made, with its statements in the
/// failure message.
fn counted(res: &reqwest::Response) -> (u16, usize) {
    (res.status().as_u16(), statements::round_trips(res))
}

fn said(res: &reqwest::Response) -> String {
    format!("statements: {:?}", statements::of(res))
}

#[tokio::test]
async fn a_document_read_and_create_are_one_round_trip_each() {
    let app = spawn_app().await;
    let (_, ada) = token(&app);
    let (_, bob) = token(&app);
    let posts = posts(&app, &ada).await;

    // The first request on the collection fetches it into the cache: two round trips.
    let res = send(
        &app,
        Method::POST,
        &format!("{posts}/documents"),
        &ada,
        Some(json!({"id": "first", "data": {"title": "First"}})),
    )
    .await;
    assert_eq!(counted(&res), (201, 2), "{}", said(&res));

    // From then on: the insert and its event in one statement, no transaction.
    let res = send(
        &app,
        Method::POST,
        &format!("{posts}/documents"),
        &bob,
        Some(json!({"id": "second", "data": {"title": "Second"}, "permissions": {"read": ["users"]}})),
    )
    .await;
    assert_eq!(counted(&res), (201, 1), "{}", said(&res));
    let created: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM platform.outbox WHERE event_type = 'baas.document.created'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(created, 2);

    // A read by id: one statement, for the owner, for another reader, and for a 404.
    for (who, id, status) in [
        (&ada, "first", 200),
        (&bob, "second", 200),
        (&bob, "first", 200),
        (&bob, "missing", 404),
    ] {
        let res = send(
            &app,
            Method::GET,
            &format!("{posts}/documents/{id}"),
            who,
            None,
        )
        .await;
        assert_eq!(counted(&res), (status, 1), "GET {id}: {}", said(&res));
    }

    // A bulk create: one statement too.
    let res = send(
        &app,
        Method::POST,
        &format!("{posts}/documents/bulk"),
        &ada,
        Some(json!({"documents": [{"data": {"title": "a"}}, {"data": {"title": "b"}}]})),
    )
    .await;
    assert_eq!(counted(&res), (201, 1), "{}", said(&res));

    // The first page of a list: one statement; with the total, two.
    let res = send(
        &app,
        Method::GET,
        &format!("{posts}/documents?limit=2"),
        &ada,
        None,
    )
    .await;
    assert_eq!(counted(&res), (200, 1), "{}", said(&res));
    let page: Value = res.json().await.unwrap();
    let next = page["next"].as_str().unwrap().to_owned();
    let res = send(
        &app,
        Method::GET,
        &format!("{posts}/documents?limit=2&total=true"),
        &ada,
        None,
    )
    .await;
    assert_eq!(counted(&res), (200, 2), "{}", said(&res));
    // After a `next`: a position in the order, so still the page alone.
    let res = send(
        &app,
        Method::GET,
        &format!("{posts}/documents?limit=2&after={next}"),
        &ada,
        None,
    )
    .await;
    assert_eq!(counted(&res), (200, 1), "{}", said(&res));

    // The counter sees transactions: a change is BEGIN, lock, update, event, COMMIT at most.
    let res = send(
        &app,
        Method::PATCH,
        &format!("{posts}/documents/first"),
        &ada,
        Some(json!({"data": {"views": 3}})),
    )
    .await;
    let (status, trips) = counted(&res);
    assert_eq!(status, 200);
    assert!((2..=6).contains(&trips), "{trips}: {}", said(&res));
}

#[tokio::test]
async fn a_schema_change_is_seen_at_once_by_every_replica() {
    let one = spawn_app().await;
    let two = spawn_on(&one.database_url, &[]).await;
    let (_, ada) = token(&one);
    let (_, bob) = token(&one);
    let posts = posts(&one, &ada).await;
    let res = send(
        &one,
        Method::POST,
        &format!("{posts}/documents"),
        &ada,
        Some(json!({"id": "doc", "data": {"title": "Doc"}, "permissions": {"read": []}})),
    )
    .await;
    assert_eq!(res.status(), 201);
    // Replica two caches the collection: bob may read every document.
    let path = format!("{posts}/documents/doc");
    let res = send(&two, Method::GET, &path, &bob, None).await;
    assert_eq!(counted(&res), (200, 2), "{}", said(&res));
    let res = send(&two, Method::GET, &path, &bob, None).await;
    assert_eq!(counted(&res), (200, 1), "{}", said(&res));

    // Replica one takes the read grant away. Replica two's very next read, however soon,
    // answers 404: its statement checks the cached collection's version, finds it stale,
    // fetches the collection again and reads again.
    let res = send(
        &one,
        Method::PATCH,
        &posts,
        &ada,
        Some(json!({"permissions": {"read": [], "create": ["users"]}})),
    )
    .await;
    assert_eq!(res.status(), 200);
    let res = send(&two, Method::GET, &path, &bob, None).await;
    assert_eq!(res.status(), 404, "{}", said(&res));

    // And the NOTIFY from the change drops every replica's copy: after a moment, the next
    // read fetches the collection first (two round trips) instead of reading with a stale
    // copy and retrying (three).
    let res = send(
        &one,
        Method::PATCH,
        &posts,
        &ada,
        Some(json!({"permissions": {"read": ["users"], "create": ["users"]}})),
    )
    .await;
    assert_eq!(res.status(), 200);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let res = send(&two, Method::GET, &path, &bob, None).await;
    assert_eq!(counted(&res), (200, 2), "{}", said(&res));

    // A deleted collection is gone on the other replica too.
    let res = send(&one, Method::DELETE, &posts, &ada, None).await;
    assert_eq!(res.status(), 204);
    let res = send(&two, Method::GET, &path, &ada, None).await;
    assert_eq!(res.status(), 404);
    let res = send(
        &two,
        Method::POST,
        &format!("{posts}/documents"),
        &ada,
        Some(json!({"data": {"title": "late"}})),
    )
    .await;
    assert_eq!(res.status(), 404);
}

/// Creates race a schema change that fills a new required attribute into every document:
/// creates validated against the cached (old) schema must either land before the change
/// (and be filled by it) or be validated again against the new one. None may end up
/// without the attribute.
#[tokio::test]
async fn creates_racing_a_schema_change_never_miss_it() {
    let app = spawn_app().await;
    let (_, ada) = token(&app);
    let posts = posts(&app, &ada).await;
    for round in 0..3 {
        let key = format!("extra{round}");
        // Four writers create documents back to back until the change has returned.
        let done = std::sync::atomic::AtomicBool::new(false);
        let writer = |w: usize| {
            let (app, ada, posts, done) = (&app, &ada, &posts, &done);
            async move {
                let mut statuses = Vec::new();
                let mut i = 0;
                while !done.load(std::sync::atomic::Ordering::Relaxed) || i < 5 {
                    let res = send(
                        app,
                        Method::POST,
                        &format!("{posts}/documents"),
                        ada,
                        Some(json!({"data": {"title": format!("r{round} w{w} d{i}")}})),
                    )
                    .await;
                    statuses.push(res.status().as_u16());
                    i += 1;
                }
                statuses
            }
        };
        let change = async {
            tokio::time::sleep(Duration::from_millis(30)).await;
            let status = send(
                &app,
                Method::POST,
                &format!("{posts}/attributes"),
                &ada,
                Some(json!({"key": key, "type": "integer", "required": true, "default": 7})),
            )
            .await
            .status()
            .as_u16();
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            status
        };
        let (statuses, changed) =
            tokio::join!(futures_util::future::join_all((0..4).map(writer)), change);
        let statuses: Vec<u16> = statuses.into_iter().flatten().collect();
        assert_eq!(changed, 201);
        assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
        let table: String = sqlx::query_scalar(
            "SELECT 'baas.\"d_' || replace(id::text, '-', '') || '\"' FROM baas.collections WHERE key = 'posts'",
        )
        .fetch_one(&app.db)
        .await
        .unwrap();
        let missing: i64 =
            sqlx::query_scalar(&format!("SELECT count(*) FROM {table} WHERE NOT data ? $1"))
                .bind(&key)
                .fetch_one(&app.db)
                .await
                .unwrap();
        assert_eq!(missing, 0, "round {round}: documents without {key}");
    }
}

/// `GET /auth/me`, a file's metadata and download, and the notifications inbox: one
/// statement each.
#[cfg(all(feature = "auth", feature = "storage", feature = "notifications"))]
#[tokio::test]
async fn me_files_and_the_inbox_are_one_round_trip_each() {
    let dir = std::env::temp_dir().join(format!("basalt-trips-{}", Uuid::new_v4().simple()));
    let dir_s = dir.to_string_lossy().into_owned();
    let app = crate::helpers::spawn_app_with(&[("BASALT__STORAGE__LOCAL_DIR", &dir_s)]).await;
    assert_eq!(app.register("ada@example.com").await.status(), 201);
    let ada = app.access_token("ada@example.com").await;
    let get = |path: String| {
        let (app, ada) = (&app, &ada);
        async move {
            app.as_user(Method::GET, &path, ada)
                .send()
                .await
                .expect("request")
        }
    };

    let res = get("/api/v1/auth/me".into()).await;
    assert_eq!(counted(&res), (200, 1), "{}", said(&res));

    let bucket: Value = app
        .as_user(Method::POST, "/api/v1/storage/buckets", &ada)
        .json(&json!({"name": "docs"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"hello, round trips".to_vec()).file_name("a.txt"),
    );
    let res = app
        .as_user(
            Method::POST,
            &format!(
                "/api/v1/storage/buckets/{}/files",
                bucket["id"].as_str().unwrap()
            ),
            &ada,
        )
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let file: Value = res.json().await.unwrap();
    let file = file["id"].as_str().unwrap().to_owned();
    let res = get(format!("/api/v1/storage/files/{file}")).await;
    assert_eq!(counted(&res), (200, 1), "{}", said(&res));
    let res = get(format!("/api/v1/storage/files/{file}/download")).await;
    assert_eq!(counted(&res), (200, 1), "{}", said(&res));
    assert_eq!(res.bytes().await.unwrap().as_ref(), b"hello, round trips");

    let me: Value = get("/api/v1/auth/me".into()).await.json().await.unwrap();
    for i in 0..3 {
        sqlx::query(
            "INSERT INTO notifications.inbox (id, user_id, category, title, body) VALUES ($1, $2::uuid, 'account', $3, 'b')",
        )
        .bind(Uuid::now_v7())
        .bind(me["id"].as_str().unwrap())
        .bind(format!("note {i}"))
        .execute(&app.db)
        .await
        .unwrap();
    }
    let res = get("/api/v1/notifications/inbox?limit=2".into()).await;
    assert_eq!(counted(&res), (200, 1), "{}", said(&res));
    let page: Value = res.json().await.unwrap();
    assert_eq!(page["unread"], 3);
    let titles: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["note 2", "note 1"]);
    let next = page["next"].as_str().unwrap();
    let rest: Value = get(format!("/api/v1/notifications/inbox?limit=2&after={next}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["items"][0]["title"], "note 0");
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    let _ = std::fs::remove_dir_all(dir);
}

/// A create's event skips the outbox trigger's NOTIFY (which would serialise concurrent
/// commits) and wakes the relays after the commit instead: with the relay's poll an hour
/// away, the event is still dispatched at once.
#[tokio::test]
async fn a_create_wakes_the_relay_after_its_commit() {
    let app =
        crate::helpers::spawn_app_with(&[("BASALT__EVENTS__POLL_INTERVAL_MS", "3600000")]).await;
    let (_, ada) = token(&app);
    let posts = posts(&app, &ada).await;
    // Let the relay finish what start-up woke it for.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let res = send(
        &app,
        Method::POST,
        &format!("{posts}/documents"),
        &ada,
        Some(json!({"id": "woke", "data": {"title": "Wake up"}})),
    )
    .await;
    assert_eq!(res.status(), 201);
    let dispatched = crate::helpers::eventually(Duration::from_secs(5), || async {
        sqlx::query_scalar::<_, bool>(
            "SELECT dispatched_at IS NOT NULL FROM platform.outbox
              WHERE event_type = 'baas.document.created' AND payload->>'document_id' = 'woke'",
        )
        .fetch_optional(&app.db)
        .await
        .unwrap()
        .unwrap_or(false)
    })
    .await;
    assert!(dispatched, "the relay was not woken by the create");
}

/// A refusal decided on a cached collection is decided again on the stored one before it is
/// answered: with the NOTIFY that drops copies switched off (as if it were still in flight),
/// a grant or an attribute that has just been added is honoured at once on the replica that
/// cached the collection before the change.
#[tokio::test]
async fn a_refusal_from_a_cached_copy_is_checked_against_the_stored_collection() {
    let one = spawn_app().await;
    let two = spawn_on(&one.database_url, &[]).await;
    let (_, ada) = token(&one);
    let (_, bob) = token(&one);
    let posts = posts(&one, &ada).await;
    let res = send(
        &one,
        Method::PATCH,
        &posts,
        &ada,
        Some(json!({"permissions": {"read": ["users"], "create": []}})),
    )
    .await;
    assert_eq!(res.status(), 200);
    sqlx::query("ALTER TABLE baas.collections DISABLE TRIGGER collections_notify")
        .execute(&one.db)
        .await
        .unwrap();
    // Replica two caches the collection as it is now: bob may not create.
    let doc = json!({"data": {"title": "Hi"}});
    let res = send(
        &two,
        Method::POST,
        &format!("{posts}/documents"),
        &bob,
        Some(doc.clone()),
    )
    .await;
    assert_eq!(res.status(), 403, "{}", said(&res));

    // Replica one grants create; replica two's stale copy would refuse again.
    let res = send(
        &one,
        Method::PATCH,
        &posts,
        &ada,
        Some(json!({"permissions": {"read": ["users"], "create": ["users"]}})),
    )
    .await;
    assert_eq!(res.status(), 200);
    let res = send(
        &two,
        Method::POST,
        &format!("{posts}/documents"),
        &bob,
        Some(doc),
    )
    .await;
    assert_eq!(res.status(), 201, "{}", said(&res));

    // The same for an attribute added on replica one, in a create, a bulk create and a query.
    let res = send(
        &one,
        Method::POST,
        &format!("{posts}/attributes"),
        &ada,
        Some(json!({"key": "n", "type": "integer"})),
    )
    .await;
    assert_eq!(res.status(), 201, "{}", said(&res));
    let with_n = json!({"data": {"title": "N", "n": 1}});
    let res = send(
        &two,
        Method::POST,
        &format!("{posts}/documents"),
        &bob,
        Some(with_n.clone()),
    )
    .await;
    assert_eq!(res.status(), 201, "{}", said(&res));
    let res = send(
        &one,
        Method::POST,
        &format!("{posts}/attributes"),
        &ada,
        Some(json!({"key": "m", "type": "integer"})),
    )
    .await;
    assert_eq!(res.status(), 201, "{}", said(&res));
    let res = send(
        &two,
        Method::POST,
        &format!("{posts}/documents/bulk"),
        &bob,
        Some(json!({"documents": [{"data": {"title": "M", "m": 2}}]})),
    )
    .await;
    assert_eq!(res.status(), 201, "{}", said(&res));
    let res = send(
        &one,
        Method::POST,
        &format!("{posts}/attributes"),
        &ada,
        Some(json!({"key": "k", "type": "integer"})),
    )
    .await;
    assert_eq!(res.status(), 201, "{}", said(&res));
    let res = send(
        &two,
        Method::POST,
        &format!("{posts}/documents/query"),
        &bob,
        Some(json!({"select": ["k"]})),
    )
    .await;
    assert_eq!(res.status(), 200, "{}", said(&res));

    // A refusal that the stored collection confirms is still a refusal.
    let res = send(
        &two,
        Method::POST,
        &format!("{posts}/documents"),
        &bob,
        Some(json!({"data": {"title": "X", "nope": 1}})),
    )
    .await;
    assert_eq!(res.status(), 422, "{}", said(&res));
}

/// A product by id and by slug, and a page of its reviews: one statement each, whoever
/// asks (the visibility rule is in the WHERE; the review list carries the product's in the
/// same statement, so an unknown product is a 404 without a second look).
#[cfg(feature = "catalog")]
#[tokio::test]
async fn catalog_reads_are_one_round_trip_each() {
    use crate::catalog::{active_product, seller, send, shopper};
    let app = spawn_app().await;
    let vendor = seller(&app);
    let p = active_product(
        &app,
        &vendor,
        json!({"title": "Counted", "currency": "USD", "price": 500}),
    )
    .await;
    let product = format!("/api/v1/catalog/products/{}", p["id"].as_str().unwrap());
    let reviews = format!("{product}/reviews");
    for i in 0..3 {
        let body = json!({"rating": i + 3, "title": "Fine"});
        let res = send(
            &app,
            Method::POST,
            &reviews,
            Some(&shopper(&app)),
            Some(body),
        )
        .await;
        assert_eq!(res.status(), 201);
    }

    for who in [None, Some(&vendor)] {
        let res = send(&app, Method::GET, &product, who, None).await;
        assert_eq!(counted(&res), (200, 1), "{}", said(&res));
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["rating_count"], 3);
        assert_eq!(body["rating_average_hundredths"], 400);
        let by_slug = "/api/v1/catalog/products/by-slug/counted";
        let res = send(&app, Method::GET, by_slug, who, None).await;
        assert_eq!(counted(&res), (200, 1), "{}", said(&res));
        let res = send(&app, Method::GET, &format!("{reviews}?limit=2"), who, None).await;
        assert_eq!(counted(&res), (200, 1), "{}", said(&res));
        let page: Value = res.json().await.unwrap();
        let next = page["next"].as_str().unwrap().to_owned();
        let later = format!("{reviews}?limit=2&after={next}");
        let res = send(&app, Method::GET, &later, None, None).await;
        assert_eq!(counted(&res), (200, 1), "{}", said(&res));
    }
    let unknown = format!("/api/v1/catalog/products/{}/reviews", Uuid::now_v7());
    let res = send(&app, Method::GET, &unknown, None, None).await;
    assert_eq!(counted(&res), (404, 1), "{}", said(&res));
}

/// A catalog search page with its total and facets, a later page, and a shelf: one
/// statement each (run unprepared, so each is planned with its own words and filters).
#[cfg(feature = "catalog")]
#[tokio::test]
async fn a_catalog_search_with_its_facets_is_one_statement() {
    let app = spawn_app().await;
    let vendor = crate::catalog::seller(&app);
    for title in ["Brass Lamp", "Oak Lamp", "Steel Lamp"] {
        crate::catalog::active_product(
            &app,
            &vendor,
            json!({"title": title, "currency": "USD", "price": 1000, "tags": ["light"]}),
        )
        .await;
    }
    let get = |path: String| {
        let app = &app;
        async move { app.client.get(app.url(&path)).send().await.unwrap() }
    };
    let res = get("/api/v1/catalog/products?q=lamp&tags=light&limit=2".into()).await;
    assert_eq!(counted(&res), (200, 1), "{}", said(&res));
    let page: Value = res.json().await.unwrap();
    assert!(page["facets"].is_object());
    let next = page["next"].as_str().unwrap().to_owned();
    let res = get(format!(
        "/api/v1/catalog/products?q=lamp&tags=light&limit=2&after={next}"
    ))
    .await;
    assert_eq!(counted(&res), (200, 1), "{}", said(&res));
    let res = get("/api/v1/catalog/products?q=lmap".into()).await;
    assert_eq!(counted(&res), (200, 1), "the typo fallback: {}", said(&res));
    let res = get("/api/v1/catalog/products/featured".into()).await;
    assert_eq!(counted(&res), (200, 1), "{}", said(&res));
}
