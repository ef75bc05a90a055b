//! Issue #11's auth findings, each reproduced from outside: what an attacker tried, and that
//! it no longer works.

use reqwest::Method;
use serde_json::{Value, json};

use super::*;

/// Signs in again (after a grant) and returns the access token.
async fn fresh_access(app: &TestApp, email: &str) -> String {
    app.access_token(email).await
}

async fn roles_of_me(app: &TestApp, token: &str) -> Vec<String> {
    let me: Value = authed_get(app, "/api/v1/auth/me", token)
        .await
        .json()
        .await
        .unwrap();
    serde_json::from_value(me["roles"].clone()).unwrap()
}

#[tokio::test]
async fn delegated_role_administration_never_escalates() {
    // Many auth calls from one address: past the per-IP limit of the auth routes.
    let app = spawn_app_with(&[ADMIN[0], ("BASALT__RATE_LIMIT__ENABLED", "false")]).await;
    let root = signed_in(&app, "root@example.com").await;
    let root = root["access_token"].as_str().unwrap().to_owned();
    let root_id = me_id(&app, &root).await;
    for (name, permissions) in [
        ("granter", json!(["auth.roles.grant"])),
        ("manager", json!(["auth.roles.manage", "auth.roles.read"])),
    ] {
        let body = json!({ "name": name, "permissions": permissions });
        let res = send(
            &app,
            Method::POST,
            "/api/v1/auth/admin/roles",
            &root,
            Some(body),
        )
        .await;
        assert_eq!(res.status(), 201);
    }
    let mut ids = Vec::new();
    for (email, role) in [
        ("bob@example.com", "granter"),
        ("cy@example.com", "manager"),
    ] {
        let token = signed_in(&app, email).await;
        let id = me_id(&app, token["access_token"].as_str().unwrap()).await;
        let path = format!("/api/v1/auth/admin/users/{id}/roles");
        let res = send(
            &app,
            Method::POST,
            &path,
            &root,
            Some(json!({ "role": role })),
        )
        .await;
        assert_eq!(res.status(), 204);
        ids.push(id);
    }
    let bob = fresh_access(&app, "bob@example.com").await;
    let cy = fresh_access(&app, "cy@example.com").await;

    // A granter grants only roles whose permissions it holds: not admin, not manager.
    let own = format!("/api/v1/auth/admin/users/{}/roles", ids[0]);
    for role in ["admin", "manager"] {
        let res = send(
            &app,
            Method::POST,
            &own,
            &bob,
            Some(json!({ "role": role })),
        )
        .await;
        assert_eq!(res.status(), 403, "{role}");
        assert_eq!(problem(res).await["code"], "forbidden");
    }
    // ... nor strips an administrator of the role.
    let res = send(
        &app,
        Method::DELETE,
        &format!("/api/v1/auth/admin/users/{root_id}/roles/admin"),
        &bob,
        None,
    )
    .await;
    assert_eq!(res.status(), 403);
    // What it holds it may hand on.
    let cys = format!("/api/v1/auth/admin/users/{}/roles", ids[1]);
    let res = send(
        &app,
        Method::POST,
        &cys,
        &bob,
        Some(json!({ "role": "granter" })),
    )
    .await;
    assert_eq!(res.status(), 204);
    assert_eq!(
        roles_of_me(&app, &fresh_access(&app, "bob@example.com").await).await,
        ["granter", "user"]
    );
    assert_eq!(roles_of_me(&app, &root).await, ["admin", "user"]);

    // A role manager widens no role beyond what it holds, and not its own at all.
    let res = send(
        &app,
        Method::PUT,
        "/api/v1/auth/admin/roles/manager",
        &cy,
        Some(json!({ "permissions": ["auth.roles.manage", "auth.roles.read", "auth.users.read"] })),
    )
    .await;
    assert_eq!(res.status(), 403);
    let res = send(
        &app,
        Method::POST,
        "/api/v1/auth/admin/roles",
        &cy,
        Some(json!({ "name": "sneaky", "permissions": ["auth.*"] })),
    )
    .await;
    assert_eq!(res.status(), 422);
    assert_eq!(error_fields(&problem(res).await), ["permissions"]);
    let res = send(
        &app,
        Method::POST,
        "/api/v1/auth/admin/roles",
        &cy,
        Some(json!({ "name": "reader", "permissions": ["auth.roles.read"] })),
    )
    .await;
    assert_eq!(res.status(), 201);
    let res = send(
        &app,
        Method::PUT,
        "/api/v1/auth/admin/roles/reader",
        &cy,
        Some(json!({ "permissions": ["auth.users.read"] })),
    )
    .await;
    assert_eq!(res.status(), 422);
    // Built-in roles are not editable, by anyone.
    for token in [&cy, &root] {
        for role in ["user", "admin"] {
            let res = send(
                &app,
                Method::PUT,
                &format!("/api/v1/auth/admin/roles/{role}"),
                token,
                Some(json!({ "permissions": ["auth.roles.manage"] })),
            )
            .await;
            assert_eq!(res.status(), 409, "{role}");
            assert_eq!(problem(res).await["code"], "builtin_role");
        }
    }
    let roles = app
        .items_as("/api/v1/auth/admin/roles?limit=100", &root)
        .await;
    let manager = roles.iter().find(|r| r["name"] == "manager").unwrap();
    assert_eq!(
        manager["permissions"],
        json!(["auth.roles.manage", "auth.roles.read"])
    );
    let user = roles.iter().find(|r| r["name"] == "user").unwrap();
    assert!(
        !user["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("auth.roles.manage"))
    );
}

/// An app that queues mail to files and lets webhooks point at loopback.
async fn mail_app(extra: &[(&'static str, &'static str)]) -> TestApp {
    let dir = std::env::temp_dir().join(format!("basalt-hardening-{}", uuid::Uuid::now_v7()));
    let dir: &'static str = Box::leak(dir.to_string_lossy().into_owned().into_boxed_str());
    let mut env = vec![
        ("BASALT__NOTIFICATIONS__OUTBOX_DIR", dir),
        ("BASALT__NOTIFICATIONS__ALLOW_PRIVATE_WEBHOOKS", "true"),
    ];
    env.extend_from_slice(extra);
    spawn_app_with(&env).await
}

async fn create_key(app: &TestApp, token: &str, scopes: Value) -> reqwest::Response {
    let body = json!({ "name": "k", "scopes": scopes });
    send(
        app,
        Method::POST,
        "/api/v1/auth/api-keys",
        token,
        Some(body),
    )
    .await
}

async fn create_hook(app: &TestApp, token: &str) -> reqwest::Response {
    let body = json!({ "url": "http://127.0.0.1:9/hook", "event_types": ["user.*"] });
    send(
        app,
        Method::POST,
        "/api/v1/notifications/webhooks",
        token,
        Some(body),
    )
    .await
}

fn with_key(app: &TestApp, method: Method, path: &str, key: &str) -> reqwest::RequestBuilder {
    app.client
        .request(method, app.url(path))
        .header("x-api-key", key)
}

#[tokio::test]
async fn an_unverified_account_makes_no_keys_or_webhooks_and_verification_evicts_a_squatter() {
    let app = mail_app(&[]).await;
    // The squatter registers the victim's address first and signs in (allowed unverified).
    assert_eq!(register(&app, "victim@example.com").await.status(), 201);
    let squatter = app.access_token("victim@example.com").await;
    for res in [
        create_key(&app, &squatter, json!(["databases.read"])).await,
        create_hook(&app, &squatter).await,
    ] {
        assert_eq!(res.status(), 403);
        assert_eq!(problem(res).await["code"], "email_not_verified");
    }
    // The owner follows the verification link: the squatter's session ends.
    app.verify_email("victim@example.com").await;
    let res = authed_get(&app, "/api/v1/auth/me", &squatter).await;
    assert_eq!(res.status(), 401);
    assert_eq!(app.events_of("user.credentials_revoked").await, 1);
    // Verified and signed in again, keys and webhooks can be made.
    let owner = app.access_token("victim@example.com").await;
    assert_eq!(
        create_key(&app, &owner, json!(["databases.read"]))
            .await
            .status(),
        201
    );
    assert_eq!(create_hook(&app, &owner).await.status(), 201);
}

#[tokio::test]
async fn a_password_reset_revokes_api_keys_and_disables_webhooks_made_before() {
    let app = mail_app(&[]).await;
    let ada = signed_in(&app, "ada@example.com").await;
    let ada = ada["access_token"].as_str().unwrap().to_owned();
    let key: Value = create_key(&app, &ada, json!(["databases.read"]))
        .await
        .json()
        .await
        .unwrap();
    let key = key["key"].as_str().unwrap().to_owned();
    let hook: Value = create_hook(&app, &ada).await.json().await.unwrap();
    let hook = hook["id"].as_str().unwrap().to_owned();
    let res = with_key(&app, Method::GET, "/api/v1/databases", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

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
    let new_password = "a brand new passphrase here";
    let res = app
        .post_json(
            "/api/v1/auth/reset-password",
            &json!({ "token": token, "password": new_password }),
        )
        .await;
    assert_eq!(res.status(), 204);

    let res = with_key(&app, Method::GET, "/api/v1/databases", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        401,
        "the key made before the reset is revoked"
    );
    let res = login_as(&app, "ada@example.com", new_password).await;
    let fresh: Value = res.json().await.unwrap();
    let fresh = fresh["access_token"].as_str().unwrap().to_owned();
    assert!(
        app.items_as("/api/v1/auth/api-keys", &fresh)
            .await
            .is_empty()
    );
    let path = format!("/api/v1/notifications/webhooks/{hook}");
    let disabled = eventually(Duration::from_secs(10), || async {
        let endpoint: Value = authed_get(&app, &path, &fresh).await.json().await.unwrap();
        endpoint["enabled"] == false
    })
    .await;
    assert!(disabled, "the webhook made before the reset is disabled");
}

#[tokio::test]
async fn admin_emails_become_administrators_only_once_verified() {
    let app = spawn_app_with(ADMIN).await;
    let res = register(&app, "root@example.com").await;
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["roles"], json!(["user"]), "not at registration");
    let squatter = app.access_token("root@example.com").await;
    let res = authed_get(&app, "/api/v1/auth/admin/users", &squatter).await;
    assert_eq!(res.status(), 403);

    let token = mailed_token(&app, "user.verification_requested", "root@example.com")
        .await
        .unwrap();
    let res = app
        .post_json("/api/v1/auth/verify-email", &json!({ "token": token }))
        .await;
    assert_eq!(res.status(), 200);
    let verified: Value = res.json().await.unwrap();
    assert_eq!(verified["roles"], json!(["admin", "user"]));
    let root = app.access_token("root@example.com").await;
    let res = authed_get(&app, "/api/v1/auth/admin/users", &root).await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn api_keys_are_refused_on_routes_outside_their_scopes() {
    let app = mail_app(&[]).await;
    let ada = signed_in(&app, "ada@example.com").await;
    let access = ada["access_token"].as_str().unwrap().to_owned();
    let key: Value = create_key(&app, &access, json!(["databases.read"]))
        .await
        .json()
        .await
        .unwrap();
    let key = key["key"].as_str().unwrap().to_owned();

    let hook = with_key(&app, Method::POST, "/api/v1/notifications/webhooks", &key)
        .json(&json!({ "url": "http://127.0.0.1:9/hook", "event_types": ["user.*"] }));
    for (what, req) in [
        ("create a webhook", hook),
        (
            "sign out everywhere",
            with_key(&app, Method::DELETE, "/api/v1/auth/sessions", &key),
        ),
        (
            "sign out",
            with_key(&app, Method::POST, "/api/v1/auth/logout", &key),
        ),
        (
            "read the account",
            with_key(&app, Method::GET, "/api/v1/auth/me", &key),
        ),
        (
            "read the inbox",
            with_key(&app, Method::GET, "/api/v1/notifications/inbox", &key),
        ),
    ] {
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 403, "{what}");
        assert_eq!(problem(res).await["code"], "forbidden", "{what}");
    }
    // Nothing happened: the session lives, no endpoint exists.
    assert_eq!(
        authed_get(&app, "/api/v1/auth/me", &access).await.status(),
        200
    );
    assert!(
        app.items_as("/api/v1/notifications/webhooks", &access)
            .await
            .is_empty()
    );
    // Where its scope applies, the key works.
    let res = with_key(&app, Method::GET, "/api/v1/databases", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

/// Every string value in a JSON document.
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn single_use_tokens_are_not_at_rest_in_the_outbox_or_the_mail_store() {
    let app = mail_app(&[]).await;
    assert_eq!(register(&app, "ada@example.com").await.status(), 201);
    let res = app
        .post_json(
            "/api/v1/auth/forgot-password",
            &json!({ "email": "ada@example.com" }),
        )
        .await;
    assert_eq!(res.status(), 202);
    let stored = eventually(Duration::from_secs(10), || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM notifications.messages WHERE template IN ('verify-email', 'reset-password')",
        )
        .fetch_one(&app.db)
        .await
        .unwrap()
            == 2
    })
    .await;
    assert!(stored, "both mails are queued");

    // What a reader of the database finds: every string of the outbox's payloads, and every
    // link parameter in the stored mails.
    let mut candidates = Vec::new();
    let payloads: Vec<Value> = sqlx::query_scalar("SELECT payload FROM platform.outbox")
        .fetch_all(&app.db)
        .await
        .unwrap();
    payloads.iter().for_each(|p| strings(p, &mut candidates));
    // Token-shaped strings only (ids, emails and times are not), so the tries stay within
    // the auth routes' rate limit.
    candidates.retain(|c| {
        c.len() >= 40
            && c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    let bodies: Vec<(String, String)> =
        sqlx::query_as("SELECT text_body, html_body FROM notifications.messages")
            .fetch_all(&app.db)
            .await
            .unwrap();
    for (text, html) in &bodies {
        for body in [text, html] {
            for part in body.split("token=").skip(1) {
                let token: String = part
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                    .collect();
                candidates.push(token.clone());
                candidates.extend(token.rsplit('-').next().map(str::to_owned));
            }
        }
    }
    candidates.sort();
    candidates.dedup();
    assert!(candidates.len() >= 4, "{candidates:?}");
    let new_password = "a brand new passphrase here";
    for candidate in &candidates {
        for (path, body) in [
            (
                "/api/v1/auth/reset-password",
                json!({ "token": candidate, "password": new_password }),
            ),
            ("/api/v1/auth/verify-email", json!({ "token": candidate })),
        ] {
            let res = app.post_json(path, &body).await;
            assert_eq!(
                res.status(),
                400,
                "{path} with {candidate:?} from the database"
            );
        }
    }
    // The mailed token (derived with the server's secret) still works.
    let token = mailed_token(&app, "user.password_reset_requested", "ada@example.com")
        .await
        .unwrap();
    let res = app
        .post_json(
            "/api/v1/auth/reset-password",
            &json!({ "token": token, "password": new_password }),
        )
        .await;
    assert_eq!(res.status(), 204);
}

#[tokio::test]
async fn parallel_wrong_passwords_are_evaluated_at_most_up_to_the_lockout_limit() {
    let app = spawn_app().await;
    assert_eq!(register(&app, "ada@example.com").await.status(), 201);
    let attempts = (0..20).map(|_| login_as(&app, "ada@example.com", "wrong wrong wrong"));
    let statuses = statuses_of(attempts).await;
    let evaluated = statuses.iter().filter(|s| **s == 401).count();
    let locked = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(evaluated + locked, 20, "{statuses:?}");
    assert!(
        evaluated <= 10,
        "at most max_failures_per_account: {statuses:?}"
    );
    assert_eq!(evaluated, 10, "and all of those: {statuses:?}");
}

#[tokio::test]
async fn a_valid_token_does_not_lift_the_per_ip_limit_on_auth_routes() {
    let app = spawn_custom(&fresh_database().await, &[], |s| {
        s.rate_limit.routes = vec![basalt::config::RoutePolicy {
            prefix: "/api/v1/auth".into(),
            requests: 5,
            window_secs: 60,
        }];
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..7 {
        // A fresh, valid token each time: another "user" for a per-user count.
        let token = app.token(&uuid::Uuid::now_v7().to_string(), &[], &[]);
        statuses.push(
            authed_get(&app, "/api/v1/auth/sessions", &token)
                .await
                .status()
                .as_u16(),
        );
    }
    assert!(statuses[..5].iter().all(|s| *s != 429), "{statuses:?}");
    assert_eq!(
        statuses[5..],
        [429, 429],
        "the IP's budget is spent: {statuses:?}"
    );
}

/// The link a stored mail of `template` carries, sealed token and all (the page path is what
/// this checks; the token is the one the mailer derives).
async fn mailed_link(app: &TestApp, template: &str) -> String {
    let mut body = String::new();
    for _ in 0..200 {
        let text: Option<String> = sqlx::query_scalar(
            "SELECT text_body FROM notifications.messages WHERE template = $1 ORDER BY created_at DESC LIMIT 1",
        )
        .bind(template)
        .fetch_optional(&app.db)
        .await
        .unwrap();
        body = text.unwrap_or_default();
        if !body.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let found = !body.is_empty();
    assert!(found, "a {template} mail");
    let start = body.find("http").expect("a link");
    body[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .split("?token=")
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_emailed_links_open_working_pages_with_default_settings() {
    let app = mail_app(&[]).await;
    assert_eq!(register(&app, "ada@example.com").await.status(), 201);
    let link = mailed_link(&app, "verify-email").await;
    // The host is the configured public address (by default the server's own, port 8080);
    // the test server listens elsewhere, so the path is what is checked and followed.
    assert!(link.ends_with("/api/v1/auth/pages/verify-email"), "{link}");
    let token = mailed_token(&app, "user.verification_requested", "ada@example.com")
        .await
        .unwrap();

    // GET shows a form and changes nothing (mail scanners follow links).
    let res = app
        .get(&format!("/api/v1/auth/pages/verify-email?token={token}"))
        .await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = res.text().await.unwrap();
    assert!(html.contains("<form method=\"post\""), "{html}");
    assert!(html.contains(&token), "{html}");
    let access = app.access_token("ada@example.com").await;
    let me: Value = authed_get(&app, "/api/v1/auth/me", &access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["email_verified"], false, "a GET verifies nothing");
    // A hostile token is shown escaped.
    let res = app
        .get("/api/v1/auth/pages/verify-email?token=%22%3E%3Cscript%3E")
        .await;
    let html = res.text().await.unwrap();
    assert!(
        !html.contains("<script>") && html.contains("&quot;&gt;&lt;script&gt;"),
        "{html}"
    );

    // The form's POST verifies; a second use is a 400 page.
    let post = |path: &str, form: &[(&str, &str)]| app.client.post(app.url(path)).form(form).send();
    let res = post("/api/v1/auth/pages/verify-email", &[("token", &token)])
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = post("/api/v1/auth/pages/verify-email", &[("token", &token)])
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let access = app.access_token("ada@example.com").await;
    let me: Value = authed_get(&app, "/api/v1/auth/me", &access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["email_verified"], true);

    // The reset flow, from the forgot-password page to a new password.
    let res = app.get("/api/v1/auth/pages/forgot-password").await;
    assert_eq!(res.status(), 200);
    let res = post(
        "/api/v1/auth/pages/forgot-password",
        &[("email", "ada@example.com")],
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    let link = mailed_link(&app, "reset-password").await;
    assert!(
        link.ends_with("/api/v1/auth/pages/reset-password"),
        "{link}"
    );
    let token = mailed_token(&app, "user.password_reset_requested", "ada@example.com")
        .await
        .unwrap();
    let res = app
        .get(&format!("/api/v1/auth/pages/reset-password?token={token}"))
        .await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("name=\"password\""));
    let res = post(
        "/api/v1/auth/pages/reset-password",
        &[("token", &token), ("password", "short")],
    )
    .await
    .unwrap();
    assert_eq!(
        res.status(),
        422,
        "a weak password is refused, the token kept"
    );
    let new_password = "a brand new passphrase here";
    let res = post(
        "/api/v1/auth/pages/reset-password",
        &[("token", &token), ("password", new_password)],
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        login_as(&app, "ada@example.com", new_password)
            .await
            .status(),
        200
    );
}
