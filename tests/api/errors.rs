//! Every error is problem+json with the right status and a stable code, and bad input
//! changes nothing stored.

use crate::helpers::*;

async fn notes_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM probe.notes")
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn unknown_route_is_a_404_problem_with_the_request_id() {
    let app = spawn_app().await;
    let res = app.get("/api/v1/no-such-domain/things").await;
    assert_eq!(res.status(), 404);
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    let p = problem(res).await;
    assert_eq!(p["code"], "not_found");
    assert_eq!(p["status"], 404);
    assert_eq!(p["type"], "urn:basalt:problem:not_found");
    assert_eq!(p["request_id"], id.as_str());
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("/api/v1/no-such-domain/things")
    );
    // Inside a domain's scope too.
    let res = app.get("/api/v1/probe/nothing").await;
    assert_eq!(problem(res).await["code"], "not_found");
}

#[tokio::test]
async fn wrong_method_is_a_405_problem() {
    let app = spawn_app().await;
    let res = app
        .client
        .delete(app.url("/api/v1/probe/notes"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(problem(res).await["code"], "method_not_allowed");
    let res = app
        .client
        .post(app.url("/health/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
}

#[tokio::test]
async fn head_answers_every_get_route_without_a_body() {
    let app = spawn_app().await;
    let note = app.create_note("hello").await;
    let path = format!("/api/v1/probe/notes/{}", note["id"].as_str().unwrap());
    let get = app.get(&path).await;
    let head = app.client.head(app.url(&path)).send().await.unwrap();
    assert_eq!(head.status(), 200);
    for h in ["content-type", "content-length"] {
        assert_eq!(head.headers().get(h), get.headers().get(h), "{h}");
    }
    assert!(head.bytes().await.unwrap().is_empty(), "HEAD has no body");
    // The GET's errors too, and a route without GET still refuses HEAD.
    let missing = app
        .client
        .head(app.url(&format!("/api/v1/probe/notes/{}", uuid::Uuid::now_v7())))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let res = app
        .client
        .head(app.url("/api/v1/probe/notes"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
}

#[tokio::test]
async fn malformed_json_is_a_400_saying_where() {
    let app = spawn_app().await;
    let res = app
        .client
        .post(app.url("/api/v1/probe/notes"))
        .header("content-type", "application/json")
        .body("{\"body\": \"x\",\n \"email\": }")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let p = problem(res).await;
    assert_eq!(p["code"], "malformed_json");
    assert!(p["detail"].as_str().unwrap().contains("line 2"), "{p}");
    assert_eq!(notes_count(&app).await, 0);
}

#[tokio::test]
async fn json_of_the_wrong_shape_is_a_400_naming_the_field() {
    let app = spawn_app().await;
    let res = app
        .post_json(
            "/api/v1/probe/notes",
            &serde_json::json!({ "body": 12, "email": "a@b.co" }),
        )
        .await;
    assert_eq!(res.status(), 400);
    let p = problem(res).await;
    assert_eq!(p["code"], "invalid_body");
    assert!(
        p["detail"].as_str().unwrap().contains("invalid type"),
        "{p}"
    );
    let res = app
        .post_json("/api/v1/probe/notes", &serde_json::json!({ "body": "x" }))
        .await;
    assert!(
        problem(res).await["detail"]
            .as_str()
            .unwrap()
            .contains("missing field `email`")
    );
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let app = spawn_app().await;
    let res = app
        .client
        .post(app.url("/api/v1/probe/notes"))
        .header("content-type", "text/plain")
        .body("body=x")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
    assert_eq!(problem(res).await["code"], "unsupported_media_type");
}

#[tokio::test]
async fn body_over_the_limit_is_413_and_nothing_is_stored() {
    let app = spawn_app_with(&[("BASALT__SERVER__JSON_LIMIT_BYTES", "1024")]).await;
    let big = "x".repeat(4096);
    let res = app
        .post_json(
            "/api/v1/probe/notes",
            &serde_json::json!({ "body": big, "email": "a@b.co" }),
        )
        .await;
    assert_eq!(res.status(), 413);
    let p = problem(res).await;
    assert_eq!(p["code"], "payload_too_large");
    assert!(p["detail"].as_str().unwrap().contains("1024"));
    assert_eq!(notes_count(&app).await, 0);
}

#[tokio::test]
async fn validation_failures_are_422_with_one_message_per_field() {
    let app = spawn_app().await;
    let res = app
        .post_json(
            "/api/v1/probe/notes",
            &serde_json::json!({ "body": "", "email": "not-an-email" }),
        )
        .await;
    assert_eq!(res.status(), 422);
    let p = problem(res).await;
    assert_eq!(p["code"], "validation_failed");
    let errors = p["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{p}");
    assert_eq!(errors[0]["field"], "body");
    assert_eq!(errors[0]["code"], "length");
    assert_eq!(
        errors[0]["message"],
        "must be between 1 and 20 characters long"
    );
    assert_eq!(errors[1]["field"], "email");
    assert_eq!(errors[1]["message"], "must be a valid email address");
    assert_eq!(notes_count(&app).await, 0);
}

#[tokio::test]
async fn internal_errors_are_generic_and_never_leak_the_cause() {
    let app = spawn_app().await;
    let res = app.get("/api/v1/probe/boom").await;
    assert_eq!(res.status(), 500);
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    let text = res.text().await.unwrap();
    assert!(!text.contains("secret"), "{text}");
    assert!(!text.contains("postgres://"), "{text}");
    let p: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(p["code"], "internal_error");
    assert_eq!(p["request_id"], id.as_str());
}

#[tokio::test]
async fn a_bad_path_parameter_is_a_404_problem() {
    let app = spawn_app().await;
    let res = app.get("/api/v1/probe/notes/not-a-uuid").await;
    assert_eq!(res.status(), 404);
    assert_eq!(problem(res).await["code"], "not_found");
}

#[tokio::test]
async fn request_ids_are_accepted_echoed_or_minted() {
    let app = spawn_app().await;
    let res = app
        .client
        .get(app.url("/health/live"))
        .header("x-request-id", "trace-abc.123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "trace-abc.123");
    // Unsafe ids (log forging, oversize) are replaced by a fresh UUID.
    let res = app
        .client
        .get(app.url("/health/live"))
        .header("x-request-id", "a b\tc")
        .send()
        .await
        .unwrap();
    let minted = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&minted).is_ok(), "{minted}");
    let long = "a".repeat(200);
    let res = app
        .client
        .get(app.url("/health/live"))
        .header("x-request-id", &long)
        .send()
        .await
        .unwrap();
    assert_ne!(res.headers()["x-request-id"].to_str().unwrap(), long);
    let a = app.get("/health/live").await.headers()["x-request-id"].clone();
    let b = app.get("/health/live").await.headers()["x-request-id"].clone();
    assert_ne!(a, b);
}

#[tokio::test]
async fn identity_gives_401_without_a_valid_token_and_403_without_the_permission() {
    let app = spawn_app().await;
    let res = app.get("/api/v1/probe/me").await;
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    assert_eq!(problem(res).await["code"], "unauthorized");

    let user = uuid::Uuid::new_v4().to_string();
    let token = app.token(&user, &["user"], &[]);
    let res = app
        .as_user(reqwest::Method::GET, "/api/v1/probe/me", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["id"],
        user.as_str()
    );

    // Tampered signature, and `alg: none`, are both rejected.
    let mut forged = token.clone();
    forged.pop();
    forged.push(if token.ends_with('A') { 'B' } else { 'A' });
    let res = app
        .as_user(reqwest::Method::GET, "/api/v1/probe/me", &forged)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let payload = token.split('.').nth(1).unwrap();
    let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
    let res = app
        .as_user(reqwest::Method::GET, "/api/v1/probe/me", &none)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    let res = app
        .as_user(reqwest::Method::POST, "/api/v1/probe/moderate", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(problem(res).await["code"], "forbidden");
    let moderator = app.token(&user, &["user"], &["probe.notes.*"]);
    let res = app
        .as_user(reqwest::Method::POST, "/api/v1/probe/moderate", &moderator)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
}
