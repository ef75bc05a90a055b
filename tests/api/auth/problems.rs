//! Auth's problems render exactly as they did before its one error enum: the same status,
//! `type`, `title`, `code`, `detail`, request id and headers.

use serde_json::{Value, json};

use super::*;

/// Sends `req` with a chosen request id; the status, the headers and the problem body.
async fn problem_of(
    req: reqwest::RequestBuilder,
    request_id: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let res = req.header("x-request-id", request_id).send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, headers, problem(res).await)
}

#[tokio::test]
async fn domain_errors_render_the_same_problems_as_before() {
    let app = spawn_app_with(&[("BASALT__AUTH__MAX_FAILURES_PER_ACCOUNT", "1")]).await;
    assert_eq!(register(&app, "ada@example.com").await.status(), 201);

    let body = json!({ "email": "ADA@example.com", "password": PASSWORD, "first_name": "A", "last_name": "B" });
    let req = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .json(&body);
    let (status, _, p) = problem_of(req, "problem-taken").await;
    assert_eq!(status, 409);
    assert_eq!(
        p,
        json!({
            "type": "urn:basalt:problem:email_taken",
            "title": "Conflict",
            "status": 409,
            "detail": "An account with this email already exists.",
            "code": "email_taken",
            "request_id": "problem-taken",
        })
    );

    let wrong = json!({ "email": "ada@example.com", "password": "not the password at all" });
    let req = app.client.post(app.url("/api/v1/auth/login")).json(&wrong);
    let (status, headers, p) = problem_of(req, "problem-login").await;
    assert_eq!(status, 401);
    assert!(
        headers.get("www-authenticate").is_none(),
        "a failed sign-in is no bearer challenge"
    );
    assert_eq!(
        p,
        json!({
            "type": "urn:basalt:problem:invalid_credentials",
            "title": "Unauthorized",
            "status": 401,
            "detail": "The email or password is wrong.",
            "code": "invalid_credentials",
            "request_id": "problem-login",
        })
    );

    // Locked: the problem keeps its Retry-After header.
    let req = app.client.post(app.url("/api/v1/auth/login")).json(&wrong);
    let (status, headers, p) = problem_of(req, "problem-locked").await;
    assert_eq!(status, 429);
    let retry = headers["retry-after"].to_str().unwrap().to_owned();
    assert_eq!(p["code"], "login_locked");
    assert_eq!(
        p["detail"],
        format!("Too many failed sign-ins. Try again in {retry} s.")
    );
    assert_eq!(p["type"], "urn:basalt:problem:login_locked");

    // A valid token whose account is gone: 401 with the bearer challenge, as before.
    let ghost = app.token(&uuid::Uuid::now_v7().to_string(), &["user"], &[]);
    let req = app.as_user(reqwest::Method::GET, "/api/v1/auth/me", &ghost);
    let (status, headers, p) = problem_of(req, "problem-ghost").await;
    assert_eq!(status, 401);
    assert_eq!(headers["www-authenticate"], "Bearer");
    assert_eq!(
        p,
        json!({
            "type": "urn:basalt:problem:unauthorized",
            "title": "Unauthorized",
            "status": 401,
            "detail": "No such account.",
            "code": "unauthorized",
            "request_id": "problem-ghost",
        })
    );

    // A malformed id in a path is a 404 problem, as for any id that names nothing.
    let access = app.token(&uuid::Uuid::now_v7().to_string(), &["user"], &[]);
    for path in [
        "/api/v1/auth/sessions/not-a-uuid",
        "/api/v1/auth/sessions/0193a5f6-7d2c-7b9e-9f10-3c4d5e6f7a8b",
    ] {
        let req = app.as_user(reqwest::Method::DELETE, path, &access);
        let (status, _, p) = problem_of(req, "problem-session").await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(p["code"], "not_found");
    }
}
