//! Reviews and ratings: one per user per product, edited and deleted by its author,
//! moderated when the runtime setting says so, answered by the seller, voted helpful; the
//! product's count and average exact under concurrent reviews; purchases verify reviews.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use super::*;
use crate::helpers::{TestApp, error_fields, eventually, problem, spawn_app, statuses_of};

const PRODUCTS: &str = "/api/v1/catalog/products";

fn reviews_of(p: &Value) -> String {
    format!("{PRODUCTS}/{}/reviews", p["id"].as_str().unwrap())
}

fn review_at(p: &Value, r: &Value) -> String {
    format!("{}/{}", reviews_of(p), r["id"].as_str().unwrap())
}

async fn review(app: &TestApp, p: &Value, who: &Actor, rating: i64) -> Value {
    let res = send(
        app,
        Method::POST,
        &reviews_of(p),
        Some(who),
        Some(
            json!({"rating": rating, "title": format!("{rating} stars"), "body": "Said plainly."}),
        ),
    )
    .await;
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    body
}

async fn product_of(app: &TestApp, p: &Value, who: Option<&Actor>) -> Value {
    let res = send(
        app,
        Method::GET,
        &format!("{PRODUCTS}/{}", p["id"].as_str().unwrap()),
        who,
        None,
    )
    .await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// The product's stored counters, and what its published reviews add up to.
async fn counters(app: &TestApp, p: &Value) -> ((i32, i64), (i64, i64)) {
    let id = Uuid::parse_str(p["id"].as_str().unwrap()).unwrap();
    let stored: (i32, i64) =
        sqlx::query_as("SELECT rating_count, rating_sum FROM catalog.products WHERE id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    let truth: (i64, i64) = sqlx::query_as(
        "SELECT count(*), coalesce(sum(rating), 0)::bigint FROM catalog.reviews
          WHERE product_id = $1 AND status = 'published'",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    (stored, truth)
}

async fn items(res: reqwest::Response) -> Vec<Value> {
    let status = res.status();
    let page: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn authors_write_edit_and_delete_their_reviews_and_the_rating_follows() {
    let app = spawn_app().await;
    let alice = seller(&app);
    let (bob, carol) = (shopper(&app), shopper(&app));
    let p = active_product(&app, &alice, product_body("Beanie")).await;
    assert_eq!(p["rating_count"], 0);
    assert!(p["rating_average_hundredths"].is_null());

    let b = review(&app, &p, &bob, 4).await;
    assert_eq!(b["status"], "published");
    assert_eq!(b["user_id"], bob.id.as_str());
    assert_eq!(b["verified_purchase"], false);
    assert_eq!(b["helpful_count"], 0);
    let c = review(&app, &p, &carol, 5).await;
    let read = product_of(&app, &p, None).await;
    assert_eq!(read["rating_count"], 2);
    assert_eq!(read["rating_average_hundredths"], 450);

    // Anyone reads them, newest first.
    let listed = items(send(&app, Method::GET, &reviews_of(&p), None, None).await).await;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["id"], c["id"]);

    // Anonymous callers write nothing; a second review by the same user is a 409.
    let body = json!({"rating": 3, "title": "Again"});
    let res = send(
        &app,
        Method::POST,
        &reviews_of(&p),
        None,
        Some(body.clone()),
    )
    .await;
    assert_eq!(res.status(), 401);
    let res = send(&app, Method::POST, &reviews_of(&p), Some(&bob), Some(body)).await;
    assert_eq!(res.status(), 409);
    assert_eq!(problem(res).await["code"], "review_exists");
    // The seller does not review their own product.
    let res = send(
        &app,
        Method::POST,
        &reviews_of(&p),
        Some(&alice),
        Some(json!({"rating": 5, "title": "Mine is great"})),
    )
    .await;
    assert_eq!(res.status(), 403);

    // Another user editing or deleting Carol's review gets 404; anonymous 401; Carol may.
    let change = json!({"rating": 2, "body": "It shrank."});
    for who in [Some(&bob), Some(&alice)] {
        let res = send(
            &app,
            Method::PATCH,
            &review_at(&p, &c),
            who,
            Some(change.clone()),
        )
        .await;
        assert_eq!(problem(res).await["code"], "not_found");
        let res = send(&app, Method::DELETE, &review_at(&p, &c), who, None).await;
        assert_eq!(res.status(), 404);
    }
    let res = send(
        &app,
        Method::PATCH,
        &review_at(&p, &c),
        None,
        Some(change.clone()),
    )
    .await;
    assert_eq!(res.status(), 401);
    let res = send(
        &app,
        Method::PATCH,
        &review_at(&p, &c),
        Some(&carol),
        Some(change),
    )
    .await;
    assert_eq!(res.status(), 200);
    let edited: Value = res.json().await.unwrap();
    assert_eq!(
        (edited["rating"].clone(), edited["body"].clone()),
        (json!(2), json!("It shrank."))
    );
    assert_eq!(edited["title"], "5 stars", "absent fields stay");
    let read = product_of(&app, &p, None).await;
    assert_eq!(
        (
            read["rating_count"].clone(),
            read["rating_average_hundredths"].clone()
        ),
        (json!(2), json!(300))
    );

    // Bob deletes his own; a moderator deletes Carol's, and that is audited.
    let res = send(&app, Method::DELETE, &review_at(&p, &b), Some(&bob), None).await;
    assert_eq!(res.status(), 204);
    let read = product_of(&app, &p, None).await;
    assert_eq!(
        (
            read["rating_count"].clone(),
            read["rating_average_hundredths"].clone()
        ),
        (json!(1), json!(200))
    );
    let moderator = staff(&app, &["catalog.reviews.moderate"]);
    let res = send(
        &app,
        Method::DELETE,
        &review_at(&p, &c),
        Some(&moderator),
        None,
    )
    .await;
    assert_eq!(res.status(), 204);
    let read = product_of(&app, &p, None).await;
    assert_eq!(read["rating_count"], 0);
    assert!(read["rating_average_hundredths"].is_null());
    let audited: Vec<(String, String)> = sqlx::query_as(
        "SELECT action, actor FROM platform.audit_log WHERE object_type = 'catalog.review'",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(
        audited,
        [(
            "catalog.review.deleted".to_owned(),
            format!("user:{}", moderator.id)
        )]
    );
    let (stored, truth) = counters(&app, &p).await;
    assert_eq!((stored.0 as i64, stored.1), truth);

    // Each review published catalog.review.created, naming the seller and the author.
    assert_eq!(app.events_of("catalog.review.created").await, 2);
    let payload: Value = sqlx::query_scalar(
        "SELECT payload FROM platform.outbox WHERE event_type = 'catalog.review.created'
          ORDER BY occurred_at LIMIT 1",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(payload["user_id"], alice.id.as_str());
    assert_eq!(payload["author_id"], bob.id.as_str());
    assert_eq!(payload["rating"], 4);
    assert_eq!(payload["status"], "published");
}

#[tokio::test]
async fn bad_reviews_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let alice = seller(&app);
    let bob = shopper(&app);
    let p = active_product(&app, &alice, product_body("Scarf")).await;
    for (body, field) in [
        (json!({"rating": 0, "title": "Zero"}), "rating"),
        (json!({"rating": 6, "title": "Six"}), "rating"),
        (json!({"rating": -1, "title": "Minus"}), "rating"),
        (json!({"rating": 3, "title": "   "}), "title"),
        (json!({"rating": 3, "title": ""}), "title"),
        (json!({"rating": 3, "title": "t".repeat(201)}), "title"),
    ] {
        let res = send(
            &app,
            Method::POST,
            &reviews_of(&p),
            Some(&bob),
            Some(body.clone()),
        )
        .await;
        assert_eq!(res.status(), 422, "{body}");
        assert_eq!(error_fields(&problem(res).await), [field], "{body}");
    }
    for body in [
        json!({"rating": 2.5, "title": "Half"}),
        json!({"rating": "5", "title": "Text"}),
        json!({"rating": 40000, "title": "Huge"}),
        json!({"title": "No rating"}),
        json!({"rating": 5, "title": "Extra", "verified_purchase": true}),
    ] {
        let res = send(
            &app,
            Method::POST,
            &reviews_of(&p),
            Some(&bob),
            Some(body.clone()),
        )
        .await;
        assert!(
            [400, 422].contains(&res.status().as_u16()),
            "{body}: {}",
            res.status()
        );
    }

    // A product not on sale (a draft), an unknown one, a deleted one: 404.
    let draft = create_product(&app, &alice, product_body("Draft")).await;
    let ok = json!({"rating": 5, "title": "Fine"});
    let res = send(
        &app,
        Method::POST,
        &reviews_of(&draft),
        Some(&bob),
        Some(ok.clone()),
    )
    .await;
    assert_eq!(problem(res).await["code"], "not_found");
    let res = send(
        &app,
        Method::POST,
        &format!("{PRODUCTS}/{}/reviews", Uuid::now_v7()),
        Some(&bob),
        Some(ok.clone()),
    )
    .await;
    assert_eq!(res.status(), 404);
    // Its review list is 404 for those who cannot see it, and empty for its seller.
    let res = send(&app, Method::GET, &reviews_of(&draft), None, None).await;
    assert_eq!(res.status(), 404);
    assert!(
        items(send(&app, Method::GET, &reviews_of(&draft), Some(&alice), None).await)
            .await
            .is_empty()
    );
    // An unknown review, a tampered cursor.
    let res = send(
        &app,
        Method::PATCH,
        &format!("{}/{}", reviews_of(&p), Uuid::now_v7()),
        Some(&bob),
        Some(json!({"rating": 3})),
    )
    .await;
    assert_eq!(res.status(), 404);
    let res = send(
        &app,
        Method::GET,
        &format!("{}?after=bm9wZQ", reviews_of(&p)),
        None,
        None,
    )
    .await;
    assert_eq!(problem(res).await["code"], "invalid_cursor");

    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM catalog.reviews")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(stored, 0);
    // An edit out of range changes nothing either.
    let r = review(&app, &p, &bob, 4).await;
    for rating in [0, 6] {
        let res = send(
            &app,
            Method::PATCH,
            &review_at(&p, &r),
            Some(&bob),
            Some(json!({"rating": rating})),
        )
        .await;
        assert_eq!(res.status(), 422);
    }
    let read = product_of(&app, &p, None).await;
    assert_eq!(read["rating_average_hundredths"], 400);
}

#[tokio::test]
async fn concurrent_reviews_keep_the_count_and_sum_exact() {
    let app = spawn_app().await;
    let alice = seller(&app);
    let p = active_product(&app, &alice, product_body("Popular")).await;
    let shoppers: Vec<Actor> = (0..30).map(|_| shopper(&app)).collect();
    let path = reviews_of(&p);
    let statuses = statuses_of(shoppers.iter().enumerate().map(|(i, who)| {
        send(
            &app,
            Method::POST,
            &path,
            Some(who),
            Some(json!({"rating": i % 5 + 1, "title": "Concurrent"})),
        )
    }))
    .await;
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    let read = product_of(&app, &p, None).await;
    assert_eq!(read["rating_count"], 30);
    assert_eq!(
        read["rating_average_hundredths"], 300,
        "6 x (1+2+3+4+5) / 30"
    );
    assert_eq!(counters(&app, &p).await.0, (30, 90));

    // One user racing themself: exactly one review.
    let dave = shopper(&app);
    let statuses = statuses_of((0..5).map(|_| {
        send(
            &app,
            Method::POST,
            &path,
            Some(&dave),
            Some(json!({"rating": 5, "title": "Twice?"})),
        )
    }))
    .await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        4,
        "{statuses:?}"
    );

    // Edits and deletes racing each other and new reviews leave the counters equal to what
    // the published reviews add up to.
    let listed: Vec<Value> = {
        let mut all = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let path = match &next {
                Some(n) => format!("{}?limit=100&after={n}", reviews_of(&p)),
                None => format!("{}?limit=100", reviews_of(&p)),
            };
            let page: Value = send(&app, Method::GET, &path, None, None)
                .await
                .json()
                .await
                .unwrap();
            all.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next"].as_str() {
                Some(n) => next = Some(n.to_owned()),
                None => break,
            }
        }
        all
    };
    assert_eq!(listed.len(), 31);
    let by_author = |r: &Value| {
        shoppers
            .iter()
            .find(|s| r["user_id"] == s.id.as_str())
            .map(|s| Actor {
                id: s.id.clone(),
                token: s.token.clone(),
            })
    };
    let newcomers: Vec<Actor> = (0..10).map(|_| shopper(&app)).collect();
    let mut requests = Vec::new();
    for (i, r) in listed.iter().enumerate().take(20) {
        let Some(author) = by_author(r) else { continue };
        let path = review_at(&p, r);
        requests.push((
            if i % 2 == 0 {
                Method::DELETE
            } else {
                Method::PATCH
            },
            path,
            author,
            json!({"rating": 1}),
        ));
    }
    for who in newcomers {
        requests.push((
            Method::POST,
            reviews_of(&p),
            who,
            json!({"rating": 4, "title": "Late"}),
        ));
    }
    let statuses = statuses_of(requests.iter().map(|(m, path, who, body)| {
        let body = (*m != Method::DELETE).then(|| body.clone());
        send(&app, m.clone(), path, Some(who), body)
    }))
    .await;
    assert!(
        statuses.iter().all(|s| [200, 201, 204].contains(s)),
        "{statuses:?}"
    );
    let (stored, truth) = counters(&app, &p).await;
    assert_eq!((stored.0 as i64, stored.1), truth);
}

#[tokio::test]
async fn moderation_holds_reviews_until_a_moderator_approves_them() {
    let app = spawn_app().await;
    let alice = seller(&app);
    let (bob, carol) = (shopper(&app), shopper(&app));
    let p = active_product(&app, &alice, product_body("Held")).await;
    sqlx::query(
        "INSERT INTO platform.runtime_settings (namespace, key, value, updated_by)
         VALUES ('catalog', 'reviews_require_approval', 'true', 'user:test')",
    )
    .execute(&app.db)
    .await
    .unwrap();
    // The setting reaches the server within a second or so; the first review written after
    // it is held.
    let applied = eventually(Duration::from_secs(5), || {
        let who = shopper(&app);
        let (app, p) = (&app, &p);
        async move {
            let r = review(app, p, &who, 1).await;
            let pending = r["status"] == "pending";
            if !pending {
                let res = send(app, Method::DELETE, &review_at(p, &r), Some(&who), None).await;
                assert_eq!(res.status(), 204);
            }
            pending
        }
    })
    .await;
    assert!(applied, "reviews are held once the setting is on");
    let r = review(&app, &p, &bob, 5).await;
    assert_eq!(r["status"], "pending");
    assert!(app.events_of("catalog.review.created").await >= 2);

    // Not public, not in the rating; its author sees it.
    assert!(
        items(send(&app, Method::GET, &reviews_of(&p), None, None).await)
            .await
            .is_empty()
    );
    assert!(
        items(send(&app, Method::GET, &reviews_of(&p), Some(&carol), None).await)
            .await
            .is_empty()
    );
    let mine = items(send(&app, Method::GET, &reviews_of(&p), Some(&bob), None).await).await;
    assert_eq!(mine.len(), 1);
    assert_eq!(product_of(&app, &p, None).await["rating_count"], 0);

    // Only moderators approve; they list the queue.
    let approve = format!("{}/approve", review_at(&p, &r));
    for who in [Some(&carol), Some(&alice)] {
        assert_eq!(
            send(&app, Method::POST, &approve, who, None).await.status(),
            403
        );
    }
    assert_eq!(
        send(&app, Method::POST, &approve, None, None)
            .await
            .status(),
        401
    );
    let moderator = staff(&app, &["catalog.reviews.moderate"]);
    let queue = items(
        send(
            &app,
            Method::GET,
            &format!("{}?status=pending", reviews_of(&p)),
            Some(&moderator),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(queue.len(), 2, "the held reviews: {queue:?}");
    let res = send(&app, Method::POST, &approve, Some(&moderator), None).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "published");
    let res = send(&app, Method::POST, &approve, Some(&moderator), None).await;
    assert_eq!(res.status(), 200, "approving twice changes nothing");
    let read = product_of(&app, &p, None).await;
    assert_eq!(
        (
            read["rating_count"].clone(),
            read["rating_average_hundredths"].clone()
        ),
        (json!(1), json!(500))
    );
    assert_eq!(
        items(send(&app, Method::GET, &reviews_of(&p), None, None).await)
            .await
            .len(),
        1
    );
    let approved: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM platform.audit_log WHERE action = 'catalog.review.approved'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(approved, 1);

    // An edit goes back to the queue and out of the rating until approved again.
    let res = send(
        &app,
        Method::PATCH,
        &review_at(&p, &r),
        Some(&bob),
        Some(json!({"rating": 3})),
    )
    .await;
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "pending");
    assert_eq!(product_of(&app, &p, None).await["rating_count"], 0);
    let (stored, truth) = counters(&app, &p).await;
    assert_eq!((stored.0 as i64, stored.1), truth);
}

#[tokio::test]
async fn the_seller_answers_once_and_shoppers_vote_helpful_once() {
    let app = spawn_app().await;
    let (alice, other_seller) = (seller(&app), seller(&app));
    let (bob, carol) = (shopper(&app), shopper(&app));
    let p = active_product(&app, &alice, product_body("Answered")).await;
    let r = review(&app, &p, &bob, 2).await;
    let reply = format!("{}/reply", review_at(&p, &r));

    let answer = json!({"body": "Sorry: a replacement is on its way."});
    for who in [&other_seller, &bob, &carol] {
        let res = send(&app, Method::PUT, &reply, Some(who), Some(answer.clone())).await;
        assert_eq!(res.status(), 404);
    }
    assert_eq!(
        send(&app, Method::PUT, &reply, None, Some(answer.clone()))
            .await
            .status(),
        401
    );
    let res = send(
        &app,
        Method::PUT,
        &reply,
        Some(&alice),
        Some(json!({"body": " "})),
    )
    .await;
    assert_eq!(res.status(), 422);
    let res = send(&app, Method::PUT, &reply, Some(&alice), Some(answer)).await;
    assert_eq!(res.status(), 200);
    // One answer per review: a second replaces the first.
    let res = send(
        &app,
        Method::PUT,
        &reply,
        Some(&alice),
        Some(json!({"body": "Replaced."})),
    )
    .await;
    let answered: Value = res.json().await.unwrap();
    assert_eq!(answered["reply"]["body"], "Replaced.");
    let listed = items(send(&app, Method::GET, &reviews_of(&p), None, None).await).await;
    assert_eq!(listed[0]["reply"]["body"], "Replaced.");
    assert_eq!(
        send(&app, Method::DELETE, &reply, Some(&bob), None)
            .await
            .status(),
        404
    );
    let res = send(&app, Method::DELETE, &reply, Some(&alice), None).await;
    assert!(res.json::<Value>().await.unwrap().get("reply").is_none());

    // Helpful votes: once per user, repeats change nothing, never on one's own review.
    let helpful = format!("{}/helpful", review_at(&p, &r));
    let res = send(&app, Method::PUT, &helpful, Some(&carol), None).await;
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"helpful_count": 1, "voted": true})
    );
    let res = send(&app, Method::PUT, &helpful, Some(&carol), None).await;
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"helpful_count": 1, "voted": true})
    );
    assert_eq!(
        send(&app, Method::PUT, &helpful, Some(&bob), None)
            .await
            .status(),
        403
    );
    assert_eq!(
        send(&app, Method::PUT, &helpful, None, None).await.status(),
        401
    );
    let voters: Vec<Actor> = (0..20).map(|_| shopper(&app)).collect();
    let statuses = statuses_of(
        voters
            .iter()
            .chain(voters.iter())
            .map(|who| send(&app, Method::PUT, &helpful, Some(who), None)),
    )
    .await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let listed = items(send(&app, Method::GET, &reviews_of(&p), None, None).await).await;
    assert_eq!(listed[0]["helpful_count"], 21);
    // Withdrawing: once counts, again changes nothing.
    let res = send(&app, Method::DELETE, &helpful, Some(&carol), None).await;
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"helpful_count": 20, "voted": false})
    );
    let res = send(&app, Method::DELETE, &helpful, Some(&carol), None).await;
    assert_eq!(res.json::<Value>().await.unwrap()["helpful_count"], 20);
    assert_eq!(
        send(&app, Method::DELETE, &helpful, None, None)
            .await
            .status(),
        401
    );
    let unknown = format!("{}/{}/helpful", reviews_of(&p), Uuid::now_v7());
    assert_eq!(
        send(&app, Method::PUT, &unknown, Some(&carol), None)
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn recorded_purchases_verify_reviews_before_and_after_they_are_written() {
    let app = spawn_app().await;
    let alice = seller(&app);
    let (bob, carol) = (shopper(&app), shopper(&app));
    let p = active_product(&app, &alice, product_body("Bought")).await;
    let product = Uuid::parse_str(p["id"].as_str().unwrap()).unwrap();
    let r = review(&app, &p, &bob, 5).await;
    assert_eq!(r["verified_purchase"], false);

    // What the orders domain calls in-process, on its own transaction.
    let mut tx = app.db.begin().await.unwrap();
    let bob_id = Uuid::parse_str(&bob.id).unwrap();
    let new = basalt::domains::catalog::api::record_purchases(&mut tx, bob_id, &[product, product])
        .await
        .unwrap();
    assert_eq!(new, 1);
    tx.commit().await.unwrap();
    let mut conn = app.db.acquire().await.unwrap();
    let again = basalt::domains::catalog::api::record_purchases(&mut conn, bob_id, &[product])
        .await
        .unwrap();
    assert_eq!(again, 0, "recording twice changes nothing");
    let listed = items(send(&app, Method::GET, &reviews_of(&p), None, None).await).await;
    assert_eq!(listed[0]["verified_purchase"], true);

    // Bought first, reviewed later: verified at once.
    let carol_id = Uuid::parse_str(&carol.id).unwrap();
    basalt::domains::catalog::api::record_purchases(&mut conn, carol_id, &[product])
        .await
        .unwrap();
    assert_eq!(review(&app, &p, &carol, 4).await["verified_purchase"], true);
    // A transaction that rolls back records nothing.
    let dave = shopper(&app);
    let mut tx = app.db.begin().await.unwrap();
    basalt::domains::catalog::api::record_purchases(
        &mut tx,
        Uuid::parse_str(&dave.id).unwrap(),
        &[product],
    )
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(review(&app, &p, &dave, 3).await["verified_purchase"], false);
}

#[tokio::test]
async fn review_lists_page_by_keyset() {
    let app = spawn_app().await;
    let alice = seller(&app);
    let p = active_product(&app, &alice, product_body("Paged")).await;
    let mut written = Vec::new();
    for i in 0..5 {
        written.push(review(&app, &p, &shopper(&app), i % 5 + 1).await["id"].clone());
    }
    written.reverse();
    let mut seen = Vec::new();
    let mut path = format!("{}?limit=2", reviews_of(&p));
    let mut pages = 0;
    loop {
        let page: Value = send(&app, Method::GET, &path, None, None)
            .await
            .json()
            .await
            .unwrap();
        pages += 1;
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].clone()),
        );
        match page["next"].as_str() {
            Some(n) => path = format!("{}?limit=2&after={n}", reviews_of(&p)),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, written, "newest first, each once");
    let res = send(
        &app,
        Method::GET,
        &format!("{}?limit=101", reviews_of(&p)),
        None,
        None,
    )
    .await;
    assert_eq!(res.status(), 400);
}

/// A deleted account takes its reviews, votes and purchase records with it, and the
/// counters lose exactly what those added (a review found them kept after erasure).
#[cfg(feature = "auth")]
#[tokio::test]
async fn a_deleted_account_takes_its_reviews_and_votes_with_it() {
    let app = spawn_app().await;
    let alice = seller(&app);
    let p = active_product(&app, &alice, product_body("Erased")).await;
    let bob = shopper(&app);
    let kept = review(&app, &p, &bob, 1).await;

    assert_eq!(app.register("gone@example.com").await.status(), 201);
    let token = app.access_token("gone@example.com").await;
    let me: Value = app.json_as("/api/v1/auth/me", &token).await;
    let gone = Actor {
        id: me["id"].as_str().unwrap().to_owned(),
        token,
    };
    review(&app, &p, &gone, 5).await;
    let helpful = format!("{}/helpful", review_at(&p, &kept));
    let res = send(&app, Method::PUT, &helpful, Some(&gone), None).await;
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(counters(&app, &p).await.0, (2, 6));

    let res = app
        .as_user(Method::DELETE, "/api/v1/auth/me", &gone.token)
        .json(&json!({ "password": crate::helpers::PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let erased = eventually(Duration::from_secs(10), || async {
        counters(&app, &p).await.0 == (1, 1)
    })
    .await;
    assert!(erased, "{:?}", counters(&app, &p).await);
    let (stored, truth) = counters(&app, &p).await;
    assert_eq!((i64::from(stored.0), stored.1), truth);
    let left = items(send(&app, Method::GET, &reviews_of(&p), None, None).await).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["id"], kept["id"]);
    assert_eq!(left[0]["helpful_count"], 0);
}
