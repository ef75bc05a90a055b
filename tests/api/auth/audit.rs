//! Administrators' actions in the audit trail: one entry per action, in the action's own
//! transaction, with who, what, which object, before and after, and the request; nothing
//! for a refused action; and a trail the database will not let anyone rewrite.

use reqwest::Method;
use serde_json::{Value, json};

use super::*;

/// One audit entry, as `platform.audit_log` holds it.
#[derive(Debug, sqlx::FromRow)]
struct Entry {
    actor: String,
    action: String,
    object_type: String,
    object_id: String,
    before: Option<Value>,
    after: Option<Value>,
    request_id: Option<String>,
}

async fn entries(app: &TestApp, action: &str) -> Vec<Entry> {
    sqlx::query_as(
        "SELECT actor, action, object_type, object_id, before, after, request_id
           FROM platform.audit_log WHERE action = $1 ORDER BY id",
    )
    .bind(action)
    .fetch_all(&app.db)
    .await
    .unwrap()
}

async fn all_entries(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM platform.audit_log")
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_grant_is_audited_once_and_a_refused_one_not_at_all() {
    let app = spawn_app_with(ADMIN).await;
    let root = signed_in(&app, "root@example.com").await;
    let root_access = root["access_token"].as_str().unwrap();
    let root_actor = format!("user:{}", me_id(&app, root_access).await);
    let bob = signed_in(&app, "bob@example.com").await;
    let bob_access = bob["access_token"].as_str().unwrap();
    let bob_id = me_id(&app, bob_access).await;
    let role = json!({ "name": "moderator", "permissions": ["probe.notes.moderate"] });
    let res = send(
        &app,
        Method::POST,
        "/api/v1/auth/admin/roles",
        root_access,
        Some(role),
    )
    .await;
    assert_eq!(res.status(), 201);
    let before_grants = all_entries(&app).await;

    // Refused: no permission, no such role, no such user. Nothing is recorded.
    let grant = format!("/api/v1/auth/admin/users/{bob_id}/roles");
    let moderator = json!({ "role": "moderator" });
    let refused = [
        (grant.as_str(), bob_access, moderator.clone(), 403),
        (grant.as_str(), root_access, json!({ "role": "nope" }), 404),
    ];
    for (path, token, body, status) in refused {
        let res = send(&app, Method::POST, path, token, Some(body)).await;
        assert_eq!(res.status().as_u16(), status);
    }
    let nobody = format!("/api/v1/auth/admin/users/{}/roles", uuid::Uuid::now_v7());
    let res = send(
        &app,
        Method::POST,
        &nobody,
        root_access,
        Some(moderator.clone()),
    )
    .await;
    assert_eq!(res.status(), 404);
    assert_eq!(
        all_entries(&app).await,
        before_grants,
        "refusals record nothing"
    );

    let res = traced(
        &app,
        Method::POST,
        &grant,
        Some(root_access),
        "audit-grant-1",
        Some(moderator),
    )
    .await;
    assert_eq!(res.status(), 204);
    let granted = entries(&app, "auth.role.granted").await;
    assert_eq!(granted.len(), 1, "{granted:?}");
    let e = &granted[0];
    assert_eq!(
        (e.actor.as_str(), e.action.as_str()),
        (root_actor.as_str(), "auth.role.granted")
    );
    assert_eq!(
        (e.object_type.as_str(), e.object_id.as_str()),
        ("user", bob_id.as_str())
    );
    assert_eq!(e.before, Some(json!({ "roles": ["user"] })));
    assert_eq!(e.after, Some(json!({ "roles": ["moderator", "user"] })));
    assert_eq!(e.request_id.as_deref(), Some("audit-grant-1"));
    assert_eq!(all_entries(&app).await, before_grants + 1);

    let revoke = format!("/api/v1/auth/admin/users/{bob_id}/roles/moderator");
    let res = traced(
        &app,
        Method::DELETE,
        &revoke,
        Some(root_access),
        "audit-revoke-1",
        None,
    )
    .await;
    assert_eq!(res.status(), 204);
    let revoked = entries(&app, "auth.role.revoked").await;
    assert_eq!(revoked.len(), 1);
    assert_eq!(
        revoked[0].before,
        Some(json!({ "roles": ["moderator", "user"] }))
    );
    assert_eq!(revoked[0].after, Some(json!({ "roles": ["user"] })));
    assert_eq!(revoked[0].request_id.as_deref(), Some("audit-revoke-1"));
    // Revoking what is not held is refused, and records nothing.
    let res = send(&app, Method::DELETE, &revoke, root_access, None).await;
    assert_eq!(res.status(), 404);
    assert_eq!(entries(&app, "auth.role.revoked").await.len(), 1);
}

#[tokio::test]
async fn role_changes_are_audited_with_before_and_after() {
    let app = spawn_app_with(ADMIN).await;
    let root = signed_in(&app, "root@example.com").await;
    let access = root["access_token"].as_str().unwrap();
    let actor = format!("user:{}", me_id(&app, access).await);
    let roles = "/api/v1/auth/admin/roles";
    let role =
        json!({ "name": "editor", "description": "Pages", "permissions": ["content.pages.write"] });
    let res = traced(
        &app,
        Method::POST,
        roles,
        Some(access),
        "audit-create",
        Some(role.clone()),
    )
    .await;
    assert_eq!(res.status(), 201);
    let res = send(&app, Method::POST, roles, access, Some(role)).await;
    assert_eq!(res.status(), 409, "a taken name");
    let created = entries(&app, "auth.role.created").await;
    assert_eq!(created.len(), 1, "the refused duplicate records nothing");
    let editor = json!({ "name": "editor", "description": "Pages", "builtin": false, "permissions": ["content.pages.write"] });
    assert_eq!(
        (
            created[0].object_type.as_str(),
            created[0].object_id.as_str()
        ),
        ("role", "editor")
    );
    assert_eq!(
        (created[0].before.clone(), created[0].after.clone()),
        (None, Some(editor.clone()))
    );
    assert_eq!(created[0].actor, actor);
    assert_eq!(created[0].request_id.as_deref(), Some("audit-create"));

    let body =
        json!({ "permissions": ["content.pages.*", "content.media.write", "content.pages.*"] });
    let res = traced(
        &app,
        Method::PUT,
        "/api/v1/auth/admin/roles/editor",
        Some(access),
        "audit-set",
        Some(body),
    )
    .await;
    assert_eq!(res.status(), 204);
    let set = entries(&app, "auth.role.permissions_set").await;
    assert_eq!(set.len(), 1);
    assert_eq!(set[0].before, Some(editor.clone()));
    let mut after = editor.clone();
    after["permissions"] = json!(["content.media.write", "content.pages.*"]);
    assert_eq!(set[0].after, Some(after.clone()));

    let res = send(
        &app,
        Method::DELETE,
        "/api/v1/auth/admin/roles/admin",
        access,
        None,
    )
    .await;
    assert_eq!(res.status(), 409, "built-in");
    let res = traced(
        &app,
        Method::DELETE,
        "/api/v1/auth/admin/roles/editor",
        Some(access),
        "audit-delete",
        None,
    )
    .await;
    assert_eq!(res.status(), 204);
    let deleted = entries(&app, "auth.role.deleted").await;
    assert_eq!(
        deleted.len(),
        1,
        "the refused built-in deletion records nothing"
    );
    assert_eq!(
        (deleted[0].before.clone(), deleted[0].after.clone()),
        (Some(json!({ "role": after, "holders": [] })), None)
    );
    assert_eq!(deleted[0].request_id.as_deref(), Some("audit-delete"));
}

#[tokio::test]
async fn the_audit_trail_cannot_be_rewritten() {
    let app = spawn_app_with(ADMIN).await;
    let root = signed_in(&app, "root@example.com").await;
    let access = root["access_token"].as_str().unwrap();
    let role = json!({ "name": "editor" });
    let res = send(
        &app,
        Method::POST,
        "/api/v1/auth/admin/roles",
        access,
        Some(role),
    )
    .await;
    assert_eq!(res.status(), 201);
    assert_eq!(all_entries(&app).await, 1);
    let update = sqlx::query("UPDATE platform.audit_log SET actor = 'user:someone-else'")
        .execute(&app.db)
        .await;
    assert!(update.is_err(), "UPDATE refused");
    let delete = sqlx::query("DELETE FROM platform.audit_log")
        .execute(&app.db)
        .await;
    assert!(delete.is_err(), "DELETE refused");
    let truncate = sqlx::query("TRUNCATE platform.audit_log")
        .execute(&app.db)
        .await;
    assert!(truncate.is_err(), "TRUNCATE refused");
    assert_eq!(all_entries(&app).await, 1);
    assert_eq!(
        entries(&app, "auth.role.created").await[0].object_id,
        "editor"
    );
}

/// Concurrent grants of many roles, each sent twice: every audit entry's before and after
/// differ by exactly the one role it granted (no stale `before` read while waiting for the
/// account's lock), a grant that changed nothing is not recorded, and the entries chain.
/// Revoking from no such account is a 404 `user_not_found`-style answer, not "not held";
/// deleting a role names its holders in the entry.
#[tokio::test]
async fn concurrent_grants_are_audited_exactly_and_no_ops_not_at_all() {
    let app = spawn_app_with(ADMIN).await;
    let root = signed_in(&app, "root@example.com").await;
    let root_access = root["access_token"].as_str().unwrap().to_owned();
    let bob = signed_in(&app, "bob@example.com").await;
    let bob_id = me_id(&app, bob["access_token"].as_str().unwrap()).await;
    let roles: Vec<String> = (0..6).map(|i| format!("r{i}")).collect();
    for r in &roles {
        let body = json!({ "name": r, "permissions": ["probe.notes.moderate"] });
        let res = send(
            &app,
            Method::POST,
            "/api/v1/auth/admin/roles",
            &root_access,
            Some(body),
        )
        .await;
        assert_eq!(res.status(), 201);
    }
    let grant = format!("/api/v1/auth/admin/users/{bob_id}/roles");
    let sends = roles.iter().chain(roles.iter()).map(|r| {
        let (app, grant, token) = (&app, grant.clone(), root_access.clone());
        let body = json!({ "role": r });
        async move {
            send(app, Method::POST, &grant, &token, Some(body))
                .await
                .status()
        }
    });
    for status in futures_util::future::join_all(sends).await {
        assert_eq!(status, 204);
    }
    let granted = entries(&app, "auth.role.granted").await;
    assert_eq!(
        granted.len(),
        roles.len(),
        "one entry per real change: {granted:?}"
    );
    let names = |v: &Option<Value>| -> Vec<String> {
        v.as_ref().unwrap()["roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_owned())
            .collect()
    };
    for pair in granted.windows(2) {
        assert_eq!(
            names(&pair[0].after),
            names(&pair[1].before),
            "entries chain"
        );
    }
    for e in &granted {
        let (before, after) = (names(&e.before), names(&e.after));
        assert_eq!(after.len(), before.len() + 1, "{e:?}");
        assert!(before.iter().all(|r| after.contains(r)), "{e:?}");
    }

    let nobody = format!("/api/v1/auth/admin/users/{}/roles/r0", uuid::Uuid::now_v7());
    let res = send(&app, Method::DELETE, &nobody, &root_access, None).await;
    assert_eq!(res.status(), 404);
    let p = problem(res).await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("account")
            || p["detail"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("user"),
        "names the missing account, not the role: {p}"
    );

    let res = send(
        &app,
        Method::DELETE,
        "/api/v1/auth/admin/roles/r1",
        &root_access,
        None,
    )
    .await;
    assert_eq!(res.status(), 204);
    let deleted = entries(&app, "auth.role.deleted").await;
    assert_eq!(deleted.len(), 1);
    assert_eq!(
        deleted[0].before.as_ref().unwrap()["holders"],
        json!([bob_id]),
        "the holders lose the role with it"
    );
}
