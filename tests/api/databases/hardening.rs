//! Issue #11: a grant to update a document is not a grant to read it or to change who may
//! read or delete it (item 1), and list cursors are positions, not documents to look up.

use reqwest::Method;
use serde_json::json;

use super::{account, blog, docs, ok, send};
use crate::helpers::{problem, spawn_app};

#[tokio::test]
async fn an_update_grant_neither_reads_nor_regrants() {
    let app = spawn_app().await;
    let ada = account(&app, &["user"]);
    let bob = account(&app, &["user"]);
    // Anyone signed in may create and update; nobody but each document's grants may read.
    let db = blog(
        &app,
        &ada,
        json!({"create": ["users"], "update": ["users"]}),
    )
    .await;
    let docs = docs(&db);
    ok(
        send(
            &app,
            Method::POST,
            &docs,
            Some(&ada),
            Some(json!({"id": "secret", "data": {"title": "ada's secret"}})),
        )
        .await,
        201,
    )
    .await;
    let doc = format!("{docs}/secret");
    assert_eq!(
        send(&app, Method::GET, &doc, Some(&bob), None)
            .await
            .status(),
        404
    );

    // Bob may change the content, but the answer shows him nothing of the document.
    for method in [Method::PATCH, Method::PUT] {
        let data = if method == Method::PUT {
            json!({"title": "bob was here"})
        } else {
            json!({})
        };
        let res = send(
            &app,
            method.clone(),
            &doc,
            Some(&bob),
            Some(json!({"data": data})),
        )
        .await;
        assert_eq!(res.status(), 204, "{method}");
        let body = res.text().await.unwrap();
        assert!(body.is_empty(), "{method} showed {body}");
    }
    // Sending the grants back unchanged is no change of grants.
    let same = json!({"read": [format!("user:{}", ada.id)], "update": [format!("user:{}", ada.id)], "delete": [format!("user:{}", ada.id)]});
    let res = send(
        &app,
        Method::PATCH,
        &doc,
        Some(&bob),
        Some(json!({"permissions": same})),
    )
    .await;
    assert_eq!(res.status(), 204);

    // Widening the grants is the owner's (or the creator's) alone: by PATCH, PUT or batch.
    let widen = json!({"read": ["any"], "update": ["users"], "delete": ["users"]});
    for method in [Method::PATCH, Method::PUT] {
        let p = problem(
            send(
                &app,
                method.clone(),
                &doc,
                Some(&bob),
                Some(json!({"data": {"title": "x"}, "permissions": widen})),
            )
            .await,
        )
        .await;
        assert_eq!(
            (p["status"].as_u64(), p["code"].as_str()),
            (Some(403), Some("forbidden")),
            "{method}: {p}"
        );
    }
    let p = problem(
        send(
            &app,
            Method::POST,
            &format!("/{db}/batch"),
            Some(&bob),
            Some(json!({"operations": [
                {"action": "update", "collection": "posts", "id": "secret", "permissions": widen}
            ]})),
        )
        .await,
    )
    .await;
    assert_eq!(p["status"], 403, "{p}");
    // A batch update shows nothing of a document its caller may not read.
    let batch = ok(
        send(
            &app,
            Method::POST,
            &format!("/{db}/batch"),
            Some(&bob),
            Some(json!({"operations": [
                {"action": "update", "collection": "posts", "id": "secret", "data": {}}
            ]})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(batch["results"][0]["status"], 204, "{batch}");
    assert!(batch["results"][0].get("document").is_none(), "{batch}");

    // Nothing was widened: still hidden from others, and not Bob's to delete.
    assert_eq!(
        send(&app, Method::GET, &doc, None, None).await.status(),
        404
    );
    assert_eq!(
        send(&app, Method::DELETE, &doc, Some(&bob), None)
            .await
            .status(),
        404
    );
    let seen = ok(send(&app, Method::GET, &doc, Some(&ada), None).await, 200).await;
    assert_eq!(seen["title"], "bob was here");
    assert_eq!(
        seen["$permissions"]["read"],
        json!([format!("user:{}", ada.id)]),
        "{seen}"
    );

    // The collection's owner may change the grants, and sees the document.
    let mine = ok(
        send(
            &app,
            Method::PATCH,
            &doc,
            Some(&ada),
            Some(json!({"permissions": {"read": ["users"]}})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(mine["$id"], "secret");
    // So may a document's creator who does not own the collection.
    ok(
        send(
            &app,
            Method::POST,
            &docs,
            Some(&bob),
            Some(json!({"id": "bobs", "data": {"title": "b"}})),
        )
        .await,
        201,
    )
    .await;
    let shared = ok(
        send(
            &app,
            Method::PATCH,
            &format!("{docs}/bobs"),
            Some(&bob),
            Some(
                json!({"permissions": {"read": ["users"], "update": [format!("user:{}", bob.id)]}}),
            ),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(shared["$permissions"]["read"], json!(["users"]), "{shared}");
    // Anonymous callers hold no grant here at all.
    assert_eq!(
        send(&app, Method::PATCH, &doc, None, Some(json!({"data": {}})))
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn paging_goes_on_after_the_cursor_document_is_deleted() {
    let app = spawn_app().await;
    let ada = account(&app, &["user"]);
    let db = blog(&app, &ada, json!({})).await;
    let docs = docs(&db);
    for (id, views) in [("a", 3), ("b", 2), ("c", 2), ("d", 1)] {
        ok(
            send(
                &app,
                Method::POST,
                &docs,
                Some(&ada),
                Some(json!({"id": id, "data": {"title": id, "views": views}})),
            )
            .await,
            201,
        )
        .await;
    }
    let first = ok(
        send(
            &app,
            Method::GET,
            &format!("{docs}?sort=-views&limit=2"),
            Some(&ada),
            None,
        )
        .await,
        200,
    )
    .await;
    let ids: Vec<&str> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["$id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "c"], "ties newest first");
    let next = first["next"].as_str().unwrap().to_owned();
    assert_ne!(next, "c", "a position, not a document id");
    // The page's last document goes; the next page still starts where it stood.
    assert_eq!(
        send(&app, Method::DELETE, &format!("{docs}/c"), Some(&ada), None)
            .await
            .status(),
        204
    );
    let second = ok(
        send(
            &app,
            Method::GET,
            &format!("{docs}?sort=-views&limit=2&after={next}"),
            Some(&ada),
            None,
        )
        .await,
        200,
    )
    .await;
    let ids: Vec<&str> = second["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["$id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["b", "d"]);
    assert!(second.get("next").is_none(), "{second}");
    // A document id still works as a cursor, and a cursor of another sort is refused.
    let after_a = ok(
        send(
            &app,
            Method::GET,
            &format!("{docs}?sort=-views&limit=1&after=a"),
            Some(&ada),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(after_a["items"][0]["$id"], "b");
    let p = problem(
        send(
            &app,
            Method::GET,
            &format!("{docs}?sort=-views,title&after={next}"),
            Some(&ada),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(
        (p["status"].as_u64(), p["code"].as_str()),
        (Some(400), Some("invalid_cursor")),
        "{p}"
    );
    // The same keys in the opposite direction fit the cursor's shape, but its values are a
    // position only in the order it was made in (the review's finding).
    for sort in ["views", "title"] {
        let p = problem(
            send(
                &app,
                Method::GET,
                &format!("{docs}?sort={sort}&after={next}"),
                Some(&ada),
                None,
            )
            .await,
        )
        .await;
        assert_eq!(
            (p["status"].as_u64(), p["code"].as_str()),
            (Some(400), Some("invalid_cursor")),
            "{sort}: {p}"
        );
    }
}
