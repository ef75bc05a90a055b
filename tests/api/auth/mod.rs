//! The auth domain through HTTP: accounts, tokens, sessions, verification and passwords;
//! its pages, events, audit trail and problems in the submodules.

mod audit;
mod events;
mod hardening;
mod pages;
mod problems;

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

async fn register(app: &TestApp, email: &str) -> reqwest::Response {
    app.register(email).await
}

async fn login_as(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    app.login(email, password).await
}

/// Registers, verifies the email and signs in; returns the token response.
async fn signed_in(app: &TestApp, email: &str) -> Value {
    assert_eq!(register(app, email).await.status(), 201);
    app.verify_email(email).await;
    let res = login_as(app, email, PASSWORD).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn authed_get(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.as_user(reqwest::Method::GET, path, token)
        .send()
        .await
        .unwrap()
}

/// The id of the account `token` signs in.
async fn me_id(app: &TestApp, token: &str) -> String {
    let me: Value = authed_get(app, "/api/v1/auth/me", token)
        .await
        .json()
        .await
        .unwrap();
    me["id"].as_str().expect("an id").to_owned()
}

/// A request as `token` (if any) with a chosen `X-Request-Id`, so the events and audit
/// entries it causes can be told apart.
async fn traced(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    request_id: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = app
        .client
        .request(method, app.url(path))
        .header("x-request-id", request_id);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.unwrap()
}

async fn refresh(app: &TestApp, refresh_token: &str) -> reqwest::Response {
    app.post_json(
        "/api/v1/auth/refresh",
        &json!({ "refresh_token": refresh_token }),
    )
    .await
}

/// The single-use token the latest `event_type` event for `email` carried to the mailer.
async fn mailed_token(app: &TestApp, event_type: &str, email: &str) -> Option<String> {
    app.mailed_token(event_type, email).await
}

async fn users(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM auth.users")
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn register_login_and_me() {
    let app = spawn_app().await;
    let res = register(&app, "  Ada@Example.COM ").await;
    assert_eq!(res.status(), 201);
    let user: Value = res.json().await.unwrap();
    assert_eq!(user["email"], "ada@example.com", "normalised");
    assert_eq!(user["roles"], json!(["user"]));
    assert_eq!(user["email_verified"], false);

    let tokens: Value = login_as(&app, "ADA@example.com", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    assert!(tokens["expires_in"].as_u64().unwrap() > 800);
    let access = tokens["access_token"].as_str().unwrap();
    let me: Value = authed_get(&app, "/api/v1/auth/me", access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["id"], user["id"]);
    assert_eq!(me["first_name"], "Ada");

    let types: Vec<String> =
        sqlx::query_scalar("SELECT event_type FROM platform.outbox ORDER BY seq")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(
        types,
        [
            "user.registered",
            "user.verification_requested",
            "user.logged_in"
        ]
    );
    // The password is stored as an argon2id hash at OWASP's parameters.
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM auth.users")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
}

#[tokio::test]
async fn bad_registrations_are_rejected_and_store_nothing() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({ "email": "not-an-email", "password": PASSWORD, "first_name": "A", "last_name": "B" }),
            422,
            "email",
        ),
        (
            json!({ "email": "a@b.co", "password": "short pw", "first_name": "A", "last_name": "B" }),
            422,
            "password",
        ),
        (
            json!({ "email": "a@b.co", "password": "qwerty123456", "first_name": "A", "last_name": "B" }),
            422,
            "password",
        ),
        (
            json!({ "email": "a@b.co", "password": PASSWORD, "first_name": "A".repeat(101), "last_name": "B" }),
            422,
            "first_name",
        ),
        (
            json!({ "email": "a@b.co", "password": "x".repeat(129), "first_name": "A", "last_name": "B" }),
            422,
            "password",
        ),
    ];
    for (body, status, field) in cases {
        let res = app.post_json("/api/v1/auth/register", &body).await;
        assert_eq!(res.status().as_u16(), status, "{body}");
        let p = problem(res).await;
        assert!(
            p["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["field"] == field),
            "{p}"
        );
    }
    let common = app
        .post_json(
            "/api/v1/auth/register",
            &json!({ "email": "a@b.co", "password": "qwerty123456", "first_name": "A", "last_name": "B" }),
        )
        .await;
    assert_eq!(problem(common).await["errors"][0]["code"], "common");
    let unknown = app
        .post_json(
            "/api/v1/auth/register",
            &json!({ "email": "a@b.co", "password": PASSWORD, "first_name": "A", "last_name": "B", "admin": true }),
        )
        .await;
    assert_eq!(unknown.status(), 400);
    assert!(
        problem(unknown).await["detail"]
            .as_str()
            .unwrap()
            .contains("unknown field `admin`")
    );
    assert_eq!(users(&app).await, 0);

    assert_eq!(register(&app, "dup@example.com").await.status(), 201);
    let again = register(&app, "DUP@example.com").await;
    assert_eq!(again.status(), 409);
    assert_eq!(problem(again).await["code"], "email_taken");
    assert_eq!(users(&app).await, 1);
}

#[tokio::test]
async fn wrong_password_and_unknown_email_look_the_same() {
    let app = spawn_app().await;
    register(&app, "ada@example.com").await;
    let wrong = login_as(&app, "ada@example.com", "not the password at all").await;
    let unknown = login_as(&app, "nobody@example.com", "not the password at all").await;
    assert_eq!(wrong.status(), 401);
    assert_eq!(unknown.status(), 401);
    let (a, b) = (problem(wrong).await, problem(unknown).await);
    assert_eq!(a["code"], "invalid_credentials");
    assert_eq!((&a["code"], &a["detail"]), (&b["code"], &b["detail"]));
}

#[tokio::test]
async fn repeated_failures_lock_the_account_for_a_while() {
    let app = spawn_app_with(&[("BASALT__AUTH__MAX_FAILURES_PER_ACCOUNT", "3")]).await;
    register(&app, "ada@example.com").await;
    register(&app, "bob@example.com").await;
    for _ in 0..3 {
        assert_eq!(
            login_as(&app, "ada@example.com", "wrong wrong wrong")
                .await
                .status(),
            401
        );
    }
    let locked = login_as(&app, "ada@example.com", PASSWORD).await;
    assert_eq!(
        locked.status(),
        429,
        "even the right password waits out the lock"
    );
    let retry: u64 = locked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= 900);
    assert_eq!(problem(locked).await["code"], "login_locked");
    assert_eq!(
        login_as(&app, "bob@example.com", PASSWORD).await.status(),
        200,
        "other accounts are unaffected"
    );
}

#[tokio::test]
async fn refresh_rotates_and_the_grace_window_returns_the_same_pair_to_concurrent_tabs() {
    let app = spawn_app().await;
    let first = signed_in(&app, "ada@example.com").await;
    let r0 = first["refresh_token"].as_str().unwrap().to_owned();
    // Five tabs refresh with the same token at once.
    let tabs = (0..5).map(|_| refresh(&app, &r0));
    let mut pairs = Vec::new();
    for res in futures_util::future::join_all(tabs).await {
        assert_eq!(res.status(), 200);
        pairs.push(res.json::<Value>().await.unwrap());
    }
    let r1 = pairs[0]["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(r1, r0);
    for p in &pairs {
        assert_eq!(
            p["refresh_token"], pairs[0]["refresh_token"],
            "one rotation, the same pair for every tab"
        );
        assert_eq!(p["access_token"], pairs[0]["access_token"]);
    }
    let generation: i32 = sqlx::query_scalar("SELECT generation FROM auth.sessions")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(generation, 1);
    let next: Value = refresh(&app, &r1).await.json().await.unwrap();
    assert_ne!(next["refresh_token"], pairs[0]["refresh_token"]);
}

#[tokio::test]
async fn a_reused_refresh_token_revokes_the_whole_session() {
    let app = spawn_app_with(&[("BASALT__AUTH__REFRESH_GRACE_SECS", "0")]).await;
    let first = signed_in(&app, "ada@example.com").await;
    let r0 = first["refresh_token"].as_str().unwrap();
    let second: Value = refresh(&app, r0).await.json().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let reuse = refresh(&app, r0).await;
    assert_eq!(reuse.status(), 401);
    assert_eq!(problem(reuse).await["code"], "refresh_token_reused");
    // The thief's and the owner's tokens are both dead now.
    let r1 = second["refresh_token"].as_str().unwrap();
    assert_eq!(refresh(&app, r1).await.status(), 401);
    let access = second["access_token"].as_str().unwrap();
    assert_eq!(
        authed_get(&app, "/api/v1/auth/me", access).await.status(),
        401
    );
}

#[tokio::test]
async fn forged_and_garbled_refresh_tokens_are_401() {
    let app = spawn_app().await;
    let tokens = signed_in(&app, "ada@example.com").await;
    let real = tokens["refresh_token"].as_str().unwrap();
    let forged = real.replacen(".0.", ".5.", 1);
    for bad in [forged.as_str(), "brt_nothing", "x"] {
        let res = refresh(&app, bad).await;
        assert_eq!(res.status(), 401, "{bad}");
        assert_eq!(problem(res).await["code"], "invalid_refresh_token");
    }
    assert_eq!(
        refresh(&app, real).await.status(),
        200,
        "the genuine one still works"
    );
}

#[tokio::test]
async fn logout_kills_the_access_token_at_once_and_the_session() {
    let app = spawn_app().await;
    let tokens = signed_in(&app, "ada@example.com").await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        authed_get(&app, "/api/v1/auth/me", access).await.status(),
        200
    );
    let res = app
        .as_user(reqwest::Method::POST, "/api/v1/auth/logout", access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let after = authed_get(&app, "/api/v1/auth/me", access).await;
    assert_eq!(after.status(), 401);
    assert!(
        problem(after).await["detail"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
    assert_eq!(
        refresh(&app, tokens["refresh_token"].as_str().unwrap())
            .await
            .status(),
        401
    );
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn logout_is_seen_by_every_replica_through_redis() {
    let url = fresh_database().await;
    let redis = redis_url();
    let one = spawn_on(&url, &[("REDIS_URL", &redis)]).await;
    let two = spawn_on(&url, &[("REDIS_URL", &redis)]).await;
    let tokens = signed_in(&one, "ada@example.com").await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        authed_get(&two, "/api/v1/auth/me", access).await.status(),
        200
    );
    one.as_user(reqwest::Method::POST, "/api/v1/auth/logout", access)
        .send()
        .await
        .unwrap();
    assert_eq!(
        authed_get(&two, "/api/v1/auth/me", access).await.status(),
        401
    );
}

#[tokio::test]
async fn sessions_can_be_listed_and_revoked_but_only_ones_own() {
    let app = spawn_app().await;
    let laptop = signed_in(&app, "ada@example.com").await;
    let phone: Value = login_as(&app, "ada@example.com", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let laptop_access = laptop["access_token"].as_str().unwrap();
    let phone_access = phone["access_token"].as_str().unwrap();
    let list = app.items_as("/api/v1/auth/sessions", laptop_access).await;
    assert_eq!(list.len(), 2);
    assert_eq!(list.iter().filter(|s| s["current"] == true).count(), 1);
    assert!(list.iter().all(|s| s["ip"] == "127.0.0.1"));

    let mallory = signed_in(&app, "mallory@example.com").await;
    let mallory_access = mallory["access_token"].as_str().unwrap();
    let phone_session = phone["session_id"].as_str().unwrap();
    let res = app
        .as_user(
            reqwest::Method::DELETE,
            &format!("/api/v1/auth/sessions/{phone_session}"),
            mallory_access,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        404,
        "another user's session does not exist for you"
    );
    assert_eq!(
        authed_get(&app, "/api/v1/auth/me", phone_access)
            .await
            .status(),
        200
    );

    let res = app
        .as_user(
            reqwest::Method::DELETE,
            &format!("/api/v1/auth/sessions/{phone_session}"),
            laptop_access,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(
        authed_get(&app, "/api/v1/auth/me", phone_access)
            .await
            .status(),
        401
    );
    let list = app.items_as("/api/v1/auth/sessions", laptop_access).await;
    assert_eq!(list.len(), 1);

    let tablet: Value = login_as(&app, "ada@example.com", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let res = app
        .as_user(
            reqwest::Method::DELETE,
            "/api/v1/auth/sessions",
            laptop_access,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(
        authed_get(
            &app,
            "/api/v1/auth/me",
            tablet["access_token"].as_str().unwrap()
        )
        .await
        .status(),
        401
    );
    assert_eq!(
        authed_get(&app, "/api/v1/auth/me", laptop_access)
            .await
            .status(),
        200,
        "this one stays"
    );
}

#[tokio::test]
async fn email_verification_is_single_use_and_expires() {
    let app = spawn_app_with(&[("BASALT__AUTH__REQUIRE_VERIFIED_EMAIL", "true")]).await;
    register(&app, "ada@example.com").await;
    let res = login_as(&app, "ada@example.com", PASSWORD).await;
    assert_eq!(res.status(), 403);
    assert_eq!(problem(res).await["code"], "email_not_verified");

    let token = mailed_token(&app, "user.verification_requested", "ada@example.com")
        .await
        .unwrap();
    let res = app
        .post_json("/api/v1/auth/verify-email", &json!({ "token": token }))
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["email_verified"], true);
    let again = app
        .post_json("/api/v1/auth/verify-email", &json!({ "token": token }))
        .await;
    assert_eq!(again.status(), 400);
    assert_eq!(problem(again).await["code"], "invalid_token");
    assert_eq!(
        login_as(&app, "ada@example.com", PASSWORD).await.status(),
        200
    );

    register(&app, "bob@example.com").await;
    let token = mailed_token(&app, "user.verification_requested", "bob@example.com")
        .await
        .unwrap();
    sqlx::query("UPDATE auth.one_time_tokens SET expires_at = now() - interval '1 second' WHERE used_at IS NULL")
        .execute(&app.db)
        .await
        .unwrap();
    let expired = app
        .post_json("/api/v1/auth/verify-email", &json!({ "token": token }))
        .await;
    assert_eq!(expired.status(), 400);
    // Resend: always 202; a fresh token for the unverified account only.
    for email in ["bob@example.com", "nobody@example.com", "ada@example.com"] {
        let res = app
            .post_json(
                "/api/v1/auth/verify-email/resend",
                &json!({ "email": email }),
            )
            .await;
        assert_eq!(res.status(), 202);
    }
    let fresh = mailed_token(&app, "user.verification_requested", "bob@example.com")
        .await
        .unwrap();
    assert_ne!(fresh, token);
    let requests = app.events_of("user.verification_requested").await;
    assert_eq!(requests, 3, "two at registration, one resend");
    let res = app
        .post_json("/api/v1/auth/verify-email", &json!({ "token": fresh }))
        .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn password_reset_revokes_every_session_and_is_single_use() {
    let app = spawn_app().await;
    let tokens = signed_in(&app, "ada@example.com").await;
    let old_access = tokens["access_token"].as_str().unwrap();
    for email in ["ada@example.com", "nobody@example.com"] {
        let res = app
            .post_json("/api/v1/auth/forgot-password", &json!({ "email": email }))
            .await;
        assert_eq!(res.status(), 202, "no account enumeration");
    }
    assert!(
        mailed_token(&app, "user.password_reset_requested", "nobody@example.com")
            .await
            .is_none()
    );
    let token = mailed_token(&app, "user.password_reset_requested", "ada@example.com")
        .await
        .unwrap();

    let weak = app
        .post_json(
            "/api/v1/auth/reset-password",
            &json!({ "token": token, "password": "short" }),
        )
        .await;
    assert_eq!(weak.status(), 422);
    let new_password = "a brand new passphrase 42";
    let res = app
        .post_json(
            "/api/v1/auth/reset-password",
            &json!({ "token": token, "password": new_password }),
        )
        .await;
    assert_eq!(res.status(), 204);
    assert_eq!(
        authed_get(&app, "/api/v1/auth/me", old_access)
            .await
            .status(),
        401,
        "every session revoked"
    );
    assert_eq!(
        login_as(&app, "ada@example.com", PASSWORD).await.status(),
        401
    );
    assert_eq!(
        login_as(&app, "ada@example.com", new_password)
            .await
            .status(),
        200
    );
    let again = app
        .post_json(
            "/api/v1/auth/reset-password",
            &json!({ "token": token, "password": "yet another passphrase" }),
        )
        .await;
    assert_eq!(again.status(), 400);
    let changed = app.events_of("user.password_changed").await;
    assert_eq!(changed, 1);
}

#[tokio::test]
async fn change_password_needs_the_current_one_and_signs_out_elsewhere() {
    let app = spawn_app().await;
    let here = signed_in(&app, "ada@example.com").await;
    let there: Value = login_as(&app, "ada@example.com", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let access = here["access_token"].as_str().unwrap();
    let change = |current: &str, new: &str| {
        app.as_user(
            reqwest::Method::POST,
            "/api/v1/auth/change-password",
            access,
        )
        .json(&json!({ "current_password": current, "new_password": new }))
        .send()
    };
    let wrong = change("not my password", "a brand new passphrase 42")
        .await
        .unwrap();
    assert_eq!(wrong.status(), 422);
    assert_eq!(
        problem(wrong).await["errors"][0]["field"],
        "current_password"
    );
    let common = change(PASSWORD, "1qaz2wsx3edc").await.unwrap();
    assert_eq!(common.status(), 422);
    assert_eq!(
        change(PASSWORD, "a brand new passphrase 42")
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        authed_get(&app, "/api/v1/auth/me", access).await.status(),
        200,
        "this session stays"
    );
    assert_eq!(
        authed_get(
            &app,
            "/api/v1/auth/me",
            there["access_token"].as_str().unwrap()
        )
        .await
        .status(),
        401
    );
    assert_eq!(
        login_as(&app, "ada@example.com", "a brand new passphrase 42")
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn profile_updates_and_account_deletion() {
    let app = spawn_app().await;
    let tokens = signed_in(&app, "ada@example.com").await;
    let access = tokens["access_token"].as_str().unwrap();
    let res = app
        .as_user(reqwest::Method::PATCH, "/api/v1/auth/me", access)
        .json(&json!({ "first_name": "  Augusta " }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let me: Value = res.json().await.unwrap();
    assert_eq!(
        (me["first_name"].as_str(), me["last_name"].as_str()),
        (Some("Augusta"), Some("Lovelace"))
    );
    let res = app
        .as_user(reqwest::Method::PATCH, "/api/v1/auth/me", access)
        .json(&json!({ "first_name": "" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);

    let delete = |password: &str| {
        app.as_user(reqwest::Method::DELETE, "/api/v1/auth/me", access)
            .json(&json!({ "password": password }))
            .send()
    };
    assert_eq!(delete("wrong password here").await.unwrap().status(), 422);
    assert_eq!(users(&app).await, 1);
    assert_eq!(delete(PASSWORD).await.unwrap().status(), 204);
    assert_eq!(users(&app).await, 0);
    assert_eq!(
        authed_get(&app, "/api/v1/auth/me", access).await.status(),
        401
    );
    assert_eq!(
        login_as(&app, "ada@example.com", PASSWORD).await.status(),
        401
    );
    let deleted = app.events_of("user.deleted").await;
    assert_eq!(deleted, 1);
}

#[tokio::test]
async fn the_auth_api_is_documented() {
    let app = spawn_app().await;
    let doc: Value = app
        .get("/api-docs/openapi.json")
        .await
        .json()
        .await
        .unwrap();
    for (path, method) in [
        ("/api/v1/auth/register", "post"),
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/refresh", "post"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/auth/sessions", "get"),
        ("/api/v1/auth/sessions/{id}", "delete"),
        ("/api/v1/auth/me", "patch"),
        ("/api/v1/auth/reset-password", "post"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path}");
    }
    assert!(doc["components"]["schemas"]["RegisterRequest"]["example"].is_object());
}

const ADMIN: &[(&str, &str)] = &[("BASALT__AUTH__ADMIN_EMAILS", "root@example.com")];

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = app.as_user(method, path, token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn api_keys_carry_scopes_no_wider_than_their_owner() {
    use reqwest::Method;
    let app = spawn_app_with(ADMIN).await;
    let root = signed_in(&app, "root@example.com").await;
    let root_access = root["access_token"].as_str().unwrap();
    let bob = signed_in(&app, "bob@example.com").await;
    let bob_access = bob["access_token"].as_str().unwrap();

    let res = send(
        &app,
        Method::POST,
        "/api/v1/auth/api-keys",
        bob_access,
        Some(json!({ "name": "x", "scopes": ["probe.notes.moderate"] })),
    )
    .await;
    assert_eq!(res.status(), 422);
    assert_eq!(problem(res).await["errors"][0]["code"], "not_held");
    let res = send(
        &app,
        Method::POST,
        "/api/v1/auth/api-keys",
        root_access,
        Some(json!({ "name": "x", "scopes": ["Bad Scope"] })),
    )
    .await;
    assert_eq!(res.status(), 422);
    let res = send(
        &app,
        Method::POST,
        "/api/v1/auth/api-keys",
        root_access,
        Some(json!({ "name": "x", "scopes": [], "expires_at": "2001-01-01T00:00:00Z" })),
    )
    .await;
    assert_eq!(problem(res).await["errors"][0]["field"], "expires_at");

    let res = send(
        &app,
        Method::POST,
        "/api/v1/auth/api-keys",
        root_access,
        // A key reaches a route with its domain's scope (`probe.read` for GETs,
        // `probe.write` otherwise) and whatever the handler requires besides.
        Some(json!({ "name": "sync", "scopes": ["probe.notes.moderate", "probe.read", "probe.write"] })),
    )
    .await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("bsk_"));
    let listed = app.items_as("/api/v1/auth/api-keys", root_access).await;
    assert_eq!(listed.len(), 1);
    assert!(listed[0].get("key").is_none(), "the secret is shown once");

    let with_key = |k: &str| {
        app.client
            .post(app.url("/api/v1/probe/moderate"))
            .header("x-api-key", k)
            .send()
    };
    assert_eq!(with_key(&key).await.unwrap().status(), 204);
    let me: Value = app
        .client
        .get(app.url("/api/v1/probe/me"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let root_id = me_id(&app, root_access).await;
    assert_eq!(me["id"], root_id.as_str(), "a key acts as its owner");
    let used: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT last_used_at FROM auth.api_keys")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(used.is_some(), "last use is recorded");
    let mut tampered = key.clone();
    tampered.pop();
    assert_eq!(with_key(&tampered).await.unwrap().status(), 401);
    assert_eq!(with_key("bsk_nonsense").await.unwrap().status(), 401);

    // A key cannot mint keys, and nobody else can revoke it.
    let res = app
        .client
        .post(app.url("/api/v1/auth/api-keys"))
        .header("x-api-key", &key)
        .json(&json!({ "name": "y", "scopes": [] }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let id = created["id"].as_str().unwrap();
    let path = format!("/api/v1/auth/api-keys/{id}");
    assert_eq!(
        send(&app, Method::DELETE, &path, bob_access, None)
            .await
            .status(),
        404
    );
    assert_eq!(with_key(&key).await.unwrap().status(), 204);
    assert_eq!(
        send(&app, Method::DELETE, &path, root_access, None)
            .await
            .status(),
        204
    );
    assert_eq!(with_key(&key).await.unwrap().status(), 401, "revoked");
}

#[tokio::test]
async fn expired_api_keys_are_refused() {
    use reqwest::Method;
    let app = spawn_app_with(ADMIN).await;
    let root = signed_in(&app, "root@example.com").await;
    let created: Value = send(
        &app,
        Method::POST,
        "/api/v1/auth/api-keys",
        root["access_token"].as_str().unwrap(),
        Some(json!({ "name": "short-lived", "scopes": ["probe.notes.moderate", "probe.write"], "expires_at": "2099-01-01T00:00:00Z" })),
    )
    .await
    .json()
    .await
    .unwrap();
    let key = created["key"].as_str().unwrap();
    let call = || {
        app.client
            .post(app.url("/api/v1/probe/moderate"))
            .header("x-api-key", key)
            .send()
    };
    assert_eq!(call().await.unwrap().status(), 204);
    sqlx::query("UPDATE auth.api_keys SET expires_at = now() - interval '1 second'")
        .execute(&app.db)
        .await
        .unwrap();
    assert_eq!(call().await.unwrap().status(), 401);
}

#[tokio::test]
async fn admins_define_roles_and_grant_them() {
    use reqwest::Method;
    let app = spawn_app_with(ADMIN).await;
    let root = signed_in(&app, "root@example.com").await;
    let root_access = root["access_token"].as_str().unwrap();
    let bob = signed_in(&app, "bob@example.com").await;
    let bob_access = bob["access_token"].as_str().unwrap();
    let bob_id = me_id(&app, bob_access).await;

    let res = authed_get(&app, "/api/v1/auth/admin/users", bob_access).await;
    assert_eq!(res.status(), 403);
    assert_eq!(problem(res).await["code"], "forbidden");
    assert_eq!(
        send(
            &app,
            Method::POST,
            "/api/v1/auth/admin/roles",
            bob_access,
            Some(json!({ "name": "x1" }))
        )
        .await
        .status(),
        403
    );

    let role = json!({ "name": "moderator", "description": "Reviews notes", "permissions": ["probe.notes.moderate"] });
    let res = send(
        &app,
        Method::POST,
        "/api/v1/auth/admin/roles",
        root_access,
        Some(role.clone()),
    )
    .await;
    assert_eq!(res.status(), 201);
    assert_eq!(
        send(
            &app,
            Method::POST,
            "/api/v1/auth/admin/roles",
            root_access,
            Some(role)
        )
        .await
        .status(),
        409
    );
    for bad in [
        json!({ "name": "Bad Name" }),
        json!({ "name": "ok-name", "permissions": ["Not.Valid"] }),
    ] {
        let res = send(
            &app,
            Method::POST,
            "/api/v1/auth/admin/roles",
            root_access,
            Some(bad.clone()),
        )
        .await;
        assert_eq!(res.status(), 422, "{bad}");
    }

    let grant = format!("/api/v1/auth/admin/users/{bob_id}/roles");
    assert_eq!(
        send(
            &app,
            Method::POST,
            &grant,
            root_access,
            Some(json!({ "role": "nope" }))
        )
        .await
        .status(),
        404
    );
    let nobody = format!("/api/v1/auth/admin/users/{}/roles", uuid::Uuid::now_v7());
    assert_eq!(
        send(
            &app,
            Method::POST,
            &nobody,
            root_access,
            Some(json!({ "role": "moderator" }))
        )
        .await
        .status(),
        404
    );
    assert_eq!(
        send(
            &app,
            Method::POST,
            &grant,
            root_access,
            Some(json!({ "role": "moderator" }))
        )
        .await
        .status(),
        204
    );

    // The grant shows in the next token.
    let fresh: Value = refresh(&app, bob["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    let res = send(
        &app,
        Method::POST,
        "/api/v1/probe/moderate",
        fresh["access_token"].as_str().unwrap(),
        None,
    )
    .await;
    assert_eq!(res.status(), 204);

    let roles = app.items_as("/api/v1/auth/admin/roles", root_access).await;
    let moderator = roles.iter().find(|r| r["name"] == "moderator").unwrap();
    assert_eq!(moderator["permissions"], json!(["probe.notes.moderate"]));
    assert_eq!(roles.len(), 4, "user, vendor, admin and moderator");

    let page: Value = authed_get(&app, "/api/v1/auth/admin/users?limit=1", root_access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let next = page["next"].as_str().unwrap();
    let page2: Value = authed_get(
        &app,
        &format!("/api/v1/auth/admin/users?limit=1&after={next}"),
        root_access,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_ne!(page2["items"][0]["id"], page["items"][0]["id"]);
    assert_eq!(
        authed_get(&app, "/api/v1/auth/admin/users?limit=1000", root_access)
            .await
            .status(),
        400
    );

    let revoke = format!("/api/v1/auth/admin/users/{bob_id}/roles/moderator");
    assert_eq!(
        send(&app, Method::DELETE, &revoke, root_access, None)
            .await
            .status(),
        204
    );
    assert_eq!(
        send(&app, Method::DELETE, &revoke, root_access, None)
            .await
            .status(),
        404
    );
    assert_eq!(
        send(
            &app,
            Method::DELETE,
            "/api/v1/auth/admin/roles/admin",
            root_access,
            None
        )
        .await
        .status(),
        409
    );
    assert_eq!(
        send(
            &app,
            Method::DELETE,
            "/api/v1/auth/admin/roles/moderator",
            root_access,
            None
        )
        .await
        .status(),
        204
    );
    assert_eq!(
        send(
            &app,
            Method::DELETE,
            "/api/v1/auth/admin/roles/moderator",
            root_access,
            None
        )
        .await
        .status(),
        404
    );
}

fn eddsa(settings: &mut basalt::config::Settings, kids: &[&str]) {
    settings.identity.algorithm = "EdDSA".into();
    settings.identity.keys = kids
        .iter()
        .map(|kid| basalt::config::SigningKey {
            kid: (*kid).into(),
            private_key_file: format!("tests/fixtures/ed25519-{kid}.pem").into(),
        })
        .collect();
}

#[tokio::test]
async fn eddsa_keys_rotate_and_are_published_as_a_jwks() {
    let url = fresh_database().await;
    let old = spawn_custom(&url, &[], |s| eddsa(s, &["2026-05"])).await;
    let tokens = signed_in(&old, "ada@example.com").await;
    let old_token = tokens["access_token"].as_str().unwrap().to_owned();
    let header = jsonwebtoken::decode_header(&old_token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    assert_eq!(header.kid.as_deref(), Some("2026-05"));
    let jwks: Value = old
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    let key = &jwks["keys"][0];
    assert_eq!(
        (
            key["kid"].as_str(),
            key["kty"].as_str(),
            key["crv"].as_str()
        ),
        (Some("2026-05"), Some("OKP"), Some("Ed25519"))
    );
    assert!(key.get("d").is_none(), "never the private part");

    // A replica with a new key first and the old one kept: old tokens still verify.
    let new = spawn_custom(&url, &[], |s| eddsa(s, &["2026-11", "2026-05"])).await;
    assert_eq!(
        authed_get(&new, "/api/v1/auth/me", &old_token)
            .await
            .status(),
        200
    );
    let fresh: Value = login_as(&new, "ada@example.com", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let new_token = fresh["access_token"].as_str().unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(new_token)
            .unwrap()
            .kid
            .as_deref(),
        Some("2026-11")
    );
    let jwks: Value = new
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    assert_eq!(
        authed_get(&old, "/api/v1/auth/me", new_token)
            .await
            .status(),
        401,
        "unknown kid"
    );

    // Algorithm confusion: an HS256 token (signed with the shared secret) is not accepted
    // where EdDSA is configured.
    let hs = spawn_on(&url, &[]).await;
    let user_id = me_id(&new, new_token).await;
    let hs_token = hs.token(&user_id, &["admin"], &[]);
    assert_eq!(
        authed_get(&hs, "/api/v1/auth/me", &hs_token).await.status(),
        200
    );
    assert_eq!(
        authed_get(&new, "/api/v1/auth/me", &hs_token)
            .await
            .status(),
        401
    );
    let jwks: Value = hs.get("/.well-known/jwks.json").await.json().await.unwrap();
    assert_eq!(
        jwks["keys"],
        json!([]),
        "an HS256 secret is never published"
    );
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn lockouts_are_shared_between_replicas_through_redis() {
    let url = fresh_database().await;
    let redis = redis_url();
    let env = [
        ("REDIS_URL", redis.as_str()),
        ("BASALT__AUTH__MAX_FAILURES_PER_ACCOUNT", "2"),
    ];
    let one = spawn_on(&url, &env).await;
    let two = spawn_on(&url, &env).await;
    // Redis outlives test databases: a unique address keeps other runs' counters out.
    let email = format!("ada-{}@example.com", uuid::Uuid::new_v4().simple());
    register(&one, &email).await;
    for _ in 0..2 {
        assert_eq!(
            login_as(&one, &email, "wrong wrong wrong").await.status(),
            401
        );
    }
    let res = login_as(&two, &email, PASSWORD).await;
    assert_eq!(res.status(), 429, "the other replica sees the failures");
}

#[tokio::test]
async fn expired_access_tokens_are_refused() {
    let app = spawn_app().await;
    let tokens = signed_in(&app, "ada@example.com").await;
    let me: Value = authed_get(
        &app,
        "/api/v1/auth/me",
        tokens["access_token"].as_str().unwrap(),
    )
    .await
    .json()
    .await
    .unwrap();
    let verifier = basalt::platform::identity::TokenVerifier::new(&app.settings.identity).unwrap();
    let now = chrono::Utc::now().timestamp();
    let expired = verifier
        .sign(&basalt::platform::identity::Claims {
            sub: me["id"].as_str().unwrap().into(),
            roles: vec!["user".into()],
            permissions: vec![],
            jti: "old".into(),
            email_verified: true,
            sid: None,
            iat: now - 3600,
            exp: now - 600,
            iss: app.settings.identity.issuer.clone(),
            aud: app.settings.identity.audience.clone(),
        })
        .unwrap();
    let res = authed_get(&app, "/api/v1/auth/me", &expired).await;
    assert_eq!(res.status(), 401);
    assert!(
        problem(res).await["detail"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
}

#[tokio::test]
async fn role_permissions_can_be_replaced_by_admins_only() {
    use reqwest::Method;
    let app = spawn_app_with(ADMIN).await;
    let root = signed_in(&app, "root@example.com").await;
    let root_access = root["access_token"].as_str().unwrap();
    let bob = signed_in(&app, "bob@example.com").await;
    let bob_access = bob["access_token"].as_str().unwrap();
    let role = json!({ "name": "editor", "permissions": ["content.pages.write"] });
    assert_eq!(
        send(
            &app,
            Method::POST,
            "/api/v1/auth/admin/roles",
            root_access,
            Some(role)
        )
        .await
        .status(),
        201
    );

    let body = json!({ "permissions": ["content.pages.*", "content.media.write"] });
    let path = "/api/v1/auth/admin/roles/editor";
    assert_eq!(
        send(&app, Method::PUT, path, bob_access, Some(body.clone()))
            .await
            .status(),
        403
    );
    let bad = send(
        &app,
        Method::PUT,
        path,
        root_access,
        Some(json!({ "permissions": ["Content Pages"] })),
    )
    .await;
    assert_eq!(bad.status(), 422);
    let unknown = send(
        &app,
        Method::PUT,
        "/api/v1/auth/admin/roles/nobody",
        root_access,
        Some(body.clone()),
    )
    .await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        send(&app, Method::PUT, path, root_access, Some(body))
            .await
            .status(),
        204
    );
    let roles = app.items_as("/api/v1/auth/admin/roles", root_access).await;
    let editor = roles.iter().find(|r| r["name"] == "editor").unwrap();
    assert_eq!(
        editor["permissions"],
        json!(["content.media.write", "content.pages.*"])
    );
}

#[tokio::test]
async fn a_token_outliving_its_account_cannot_mint_api_keys() {
    // A replica without Redis learns of a deletion elsewhere only when the token expires;
    // until then the token verifies but names no account (this answered 500).
    let app = spawn_app().await;
    let ghost = app.token(&uuid::Uuid::now_v7().to_string(), &["user"], &[]);
    let res = send(
        &app,
        reqwest::Method::POST,
        "/api/v1/auth/api-keys",
        &ghost,
        Some(json!({ "name": "left behind", "scopes": [] })),
    )
    .await;
    assert_eq!(res.status(), 401);
    assert_eq!(problem(res).await["code"], "unauthorized");
    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM auth.api_keys")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(keys, 0);
}
