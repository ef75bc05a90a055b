//! Auth's lists in the one page shape: `{items, next}`, keyset-paged, never an empty last
//! page, and cursors that cannot be forged.

use serde_json::{Value, json};

use super::*;

/// Follows `next` from the first page to the last at `limit` items a page; every item, in
/// order. Checks each page on the way: never empty, full whenever another follows.
async fn walk(app: &TestApp, path: &str, token: &str, limit: usize) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let url = match &after {
            Some(cursor) => format!("{path}?limit={limit}&after={cursor}"),
            None => format!("{path}?limit={limit}"),
        };
        let res = authed_get(app, &url, token).await;
        assert_eq!(res.status(), 200, "{url}");
        let page: Value = res.json().await.unwrap();
        let items = page["items"].as_array().expect("items").clone();
        assert!(!items.is_empty(), "never an empty page: {url}");
        assert!(items.len() <= limit, "{url}");
        all.extend(items.iter().cloned());
        match page.get("next") {
            Some(next) => {
                assert_eq!(items.len(), limit, "only a full page has a next");
                after = Some(next.as_str().expect("an opaque cursor").to_owned());
            }
            None => return all,
        }
    }
}

/// The values of `field` in `items`.
fn values<'a>(items: &'a [Value], field: &str) -> Vec<&'a str> {
    items.iter().map(|i| i[field].as_str().unwrap()).collect()
}

/// Pages of `path` at every size from 1 to past its length visit the same items, in the
/// same order, each once; a page of exactly all of them says nothing follows.
async fn check_pages(app: &TestApp, path: &str, token: &str, key: &str, expected: usize) {
    let whole = walk(app, path, token, 100).await;
    assert_eq!(whole.len(), expected, "{path}");
    let ids = values(&whole, key);
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "each item once: {path}");
    for limit in 1..=expected + 1 {
        let paged = walk(app, path, token, limit).await;
        assert_eq!(values(&paged, key), ids, "{path} at {limit} a page");
    }
    let exact: Value = authed_get(app, &format!("{path}?limit={expected}"), token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(exact["items"].as_array().unwrap().len(), expected);
    assert!(exact.get("next").is_none(), "no next after the last item");
}

/// A cursor the list did not hand out is a 400 `invalid_cursor`.
async fn check_tampered_cursor(app: &TestApp, path: &str, token: &str) {
    for bad in ["not-a-cursor", "eyJub3QiOiJhIGtleSJ9", "%00"] {
        let res = authed_get(app, &format!("{path}?after={bad}"), token).await;
        assert_eq!(res.status(), 400, "{path} after={bad}");
        assert_eq!(problem(res).await["code"], "invalid_cursor", "{path}");
    }
    let res = authed_get(app, &format!("{path}?limit=101"), token).await;
    assert_eq!(res.status(), 400, "{path} limit=101");
}

/// Walking lists page by page takes more requests than the default rate limit allows.
const UNLIMITED: (&str, &str) = ("BASALT__RATE_LIMIT__ENABLED", "false");

#[tokio::test]
async fn sessions_and_api_keys_come_in_pages() {
    let app = spawn_app_with(&[UNLIMITED]).await;
    let first = signed_in(&app, "ada@example.com").await;
    for _ in 0..3 {
        assert_eq!(
            login_as(&app, "ada@example.com", PASSWORD).await.status(),
            200
        );
    }
    let access = first["access_token"].as_str().unwrap();
    check_pages(&app, "/api/v1/auth/sessions", access, "id", 4).await;
    check_tampered_cursor(&app, "/api/v1/auth/sessions", access).await;
    // Most recently used first: the first sign-in comes last.
    let sessions = walk(&app, "/api/v1/auth/sessions", access, 3).await;
    assert_eq!(sessions[3]["id"], first["session_id"]);
    assert_eq!(sessions[3]["current"], true);

    for name in ["one", "two", "three"] {
        let res = app
            .as_user(reqwest::Method::POST, "/api/v1/auth/api-keys", access)
            .json(&json!({ "name": name, "scopes": [] }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }
    check_pages(&app, "/api/v1/auth/api-keys", access, "id", 3).await;
    check_tampered_cursor(&app, "/api/v1/auth/api-keys", access).await;
    let keys = walk(&app, "/api/v1/auth/api-keys", access, 2).await;
    assert_eq!(
        values(&keys, "name"),
        ["one", "two", "three"],
        "oldest first"
    );
}

#[tokio::test]
async fn administrators_page_through_users_and_roles() {
    let app = spawn_app_with(&[ADMIN[0], UNLIMITED]).await;
    let root = signed_in(&app, "root@example.com").await;
    let access = root["access_token"].as_str().unwrap();
    for email in ["a@example.com", "b@example.com", "c@example.com"] {
        assert_eq!(register(&app, email).await.status(), 201);
    }
    check_pages(&app, "/api/v1/auth/admin/users", access, "id", 4).await;
    check_tampered_cursor(&app, "/api/v1/auth/admin/users", access).await;
    let users = walk(&app, "/api/v1/auth/admin/users", access, 3).await;
    assert_eq!(users[0]["email"], "c@example.com", "newest first");

    // The three built-in roles, by name.
    check_pages(&app, "/api/v1/auth/admin/roles", access, "name", 3).await;
    check_tampered_cursor(&app, "/api/v1/auth/admin/roles", access).await;
    let roles = walk(&app, "/api/v1/auth/admin/roles", access, 2).await;
    assert_eq!(values(&roles, "name"), ["admin", "user", "vendor"]);
}
