//! The events auth publishes: written to the outbox in the transaction of the change, with
//! the payload consumers decode, the actor who caused it and the request it came from.

use reqwest::Method;
use serde_json::{Value, json};

use super::*;

/// One event as the outbox holds it.
#[derive(Debug)]
struct Published {
    payload: Value,
    actor: String,
    request_id: Option<String>,
}

/// Every `event_type` event in the outbox, oldest first.
async fn published(app: &TestApp, event_type: &str) -> Vec<Published> {
    let rows: Vec<(Value, String, Option<String>)> = sqlx::query_as(
        "SELECT payload, actor, request_id FROM platform.outbox WHERE event_type = $1 ORDER BY seq",
    )
    .bind(event_type)
    .fetch_all(&app.db)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(payload, actor, request_id)| Published {
            payload,
            actor,
            request_id,
        })
        .collect()
}

/// Checks the one event of its kind: payload, actor and request id.
fn check(events: &[Published], payload: Value, actor: &str, request_id: &str) {
    assert_eq!(events.len(), 1, "published once: {events:?}");
    let e = &events[0];
    assert_eq!(e.payload, payload);
    assert_eq!(e.actor, actor);
    assert_eq!(e.request_id.as_deref(), Some(request_id));
}

async fn sign_in_traced(app: &TestApp, email: &str, request_id: &str) -> Value {
    let body = json!({ "email": email, "password": PASSWORD });
    let res = traced(
        app,
        Method::POST,
        "/api/v1/auth/login",
        None,
        request_id,
        Some(body),
    )
    .await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

#[tokio::test]
async fn signing_in_and_out_publish_their_events_with_actor_and_request_id() {
    let app = spawn_app().await;
    let user: Value = register(&app, "ada@example.com")
        .await
        .json()
        .await
        .unwrap();
    let id = user["id"].as_str().unwrap();
    let actor = format!("user:{id}");

    let tokens = sign_in_traced(&app, "ada@example.com", "auth-login-1").await;
    let session = tokens["session_id"].as_str().unwrap();
    check(
        &published(&app, "user.logged_in").await,
        json!({ "user_id": id, "session_id": session, "email": "ada@example.com" }),
        &actor,
        "auth-login-1",
    );
    // A failed sign-in publishes nothing.
    let wrong = login_as(&app, "ada@example.com", "not the password at all").await;
    assert_eq!(wrong.status(), 401);
    assert_eq!(published(&app, "user.logged_in").await.len(), 1);

    let access = tokens["access_token"].as_str().unwrap();
    let res = traced(
        &app,
        Method::POST,
        "/api/v1/auth/logout",
        Some(access),
        "auth-logout-1",
        None,
    )
    .await;
    assert_eq!(res.status(), 204);
    check(
        &published(&app, "user.logged_out").await,
        json!({ "user_id": id, "session_id": session }),
        &actor,
        "auth-logout-1",
    );
    assert!(
        published(&app, "user.sessions_revoked").await.is_empty(),
        "signing out is not a revocation"
    );
}

#[tokio::test]
async fn revoking_sessions_publishes_which_and_why() {
    let app = spawn_app().await;
    let laptop = signed_in(&app, "ada@example.com").await;
    let access = laptop["access_token"].as_str().unwrap();
    let id = me_id(&app, access).await;
    let actor = format!("user:{id}");
    let revocations = |reason: &'static str| {
        let app = &app;
        async move {
            published(app, "user.sessions_revoked")
                .await
                .into_iter()
                .filter(|e| e.payload["reason"] == reason)
                .collect::<Vec<_>>()
        }
    };

    // One session, by its id.
    let phone = sign_in_traced(&app, "ada@example.com", "auth-phone").await;
    let phone_session = phone["session_id"].as_str().unwrap();
    let path = format!("/api/v1/auth/sessions/{phone_session}");
    let res = traced(
        &app,
        Method::DELETE,
        &path,
        Some(access),
        "auth-revoke-one",
        None,
    )
    .await;
    assert_eq!(res.status(), 204);
    check(
        &revocations("revoked").await,
        json!({ "user_id": id, "session_ids": [phone_session], "reason": "revoked" }),
        &actor,
        "auth-revoke-one",
    );

    // Every other one.
    let tablet = sign_in_traced(&app, "ada@example.com", "auth-tablet").await;
    let res = traced(
        &app,
        Method::DELETE,
        "/api/v1/auth/sessions",
        Some(access),
        "auth-revoke-others",
        None,
    )
    .await;
    assert_eq!(res.status(), 204);
    let by_user = revocations("revoked").await;
    assert_eq!(by_user.len(), 2);
    assert_eq!(
        by_user[1].payload,
        json!({ "user_id": id, "session_ids": [tablet["session_id"]], "reason": "revoked" })
    );
    assert_eq!(by_user[1].actor, actor);
    assert_eq!(by_user[1].request_id.as_deref(), Some("auth-revoke-others"));
    // Nothing left to revoke: no event.
    let res = send(&app, Method::DELETE, "/api/v1/auth/sessions", access, None).await;
    assert_eq!(res.status(), 204);
    assert_eq!(revocations("revoked").await.len(), 2);

    // A password change signs out the other sessions.
    let desktop = sign_in_traced(&app, "ada@example.com", "auth-desktop").await;
    let new_password = "a brand new passphrase 42";
    let res = traced(
        &app,
        Method::POST,
        "/api/v1/auth/change-password",
        Some(access),
        "auth-change",
        Some(json!({ "current_password": PASSWORD, "new_password": new_password })),
    )
    .await;
    assert_eq!(res.status(), 204);
    check(
        &revocations("password_changed").await,
        json!({ "user_id": id, "session_ids": [desktop["session_id"]], "reason": "password_changed" }),
        &actor,
        "auth-change",
    );

    // A reset signs out all of them; following the emailed link acts as the account.
    let res = app
        .post_json(
            "/api/v1/auth/forgot-password",
            &json!({ "email": "ada@example.com" }),
        )
        .await;
    assert_eq!(res.status(), 202);
    let token = mailed_token(&app, "user.password_reset_requested", "ada@example.com")
        .await
        .unwrap();
    let res = traced(
        &app,
        Method::POST,
        "/api/v1/auth/reset-password",
        None,
        "auth-reset",
        Some(json!({ "token": token, "password": "yet another passphrase 7" })),
    )
    .await;
    assert_eq!(res.status(), 204);
    check(
        &revocations("password_reset").await,
        json!({ "user_id": id, "session_ids": [laptop["session_id"]], "reason": "password_reset" }),
        &actor,
        "auth-reset",
    );

    // Deleting the account ends its sessions.
    let password = "yet another passphrase 7";
    let last: Value = login_as(&app, "ada@example.com", password)
        .await
        .json()
        .await
        .unwrap();
    let last_access = last["access_token"].as_str();
    let body = Some(json!({ "password": password }));
    let res = traced(
        &app,
        Method::DELETE,
        "/api/v1/auth/me",
        last_access,
        "auth-delete",
        body,
    )
    .await;
    assert_eq!(res.status(), 204);
    check(
        &revocations("account_deleted").await,
        json!({ "user_id": id, "session_ids": [last["session_id"]], "reason": "account_deleted" }),
        &actor,
        "auth-delete",
    );
}

#[tokio::test]
async fn a_reused_refresh_token_publishes_the_revocation() {
    let app = spawn_app_with(&[("BASALT__AUTH__REFRESH_GRACE_SECS", "0")]).await;
    let tokens = signed_in(&app, "ada@example.com").await;
    let r0 = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(refresh(&app, r0).await.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let reuse = refresh(&app, r0).await;
    assert_eq!(reuse.status(), 401);
    let events = published(&app, "user.sessions_revoked").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].payload["reason"], "refresh_token_reused");
    assert_eq!(
        events[0].payload["session_ids"],
        json!([tokens["session_id"]])
    );
    assert_eq!(
        events[0].actor, "system",
        "nobody signed in asked for it: the server revoked the session"
    );
}
