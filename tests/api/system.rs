//! Health, readiness, metrics, capabilities and the API documents.

use crate::helpers::*;

#[tokio::test]
async fn health_reports_every_dependency_and_domain() {
    let app = spawn_app().await;
    let res = app.get("/health").await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    let names: Vec<&str> = body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"database"));
    assert!(names.contains(&"domain:probe"));
    assert!(
        names.contains(&"probe:notes"),
        "a domain's own checks are included: {names:?}"
    );
    for domain in basalt::domains::compiled() {
        let name = format!("domain:{}", domain.name());
        // A domain reports on /health exactly when it serves routes: one whose issue has
        // not landed yet is not `ok`, it is absent.
        assert_eq!(
            names.contains(&name.as_str()),
            basalt::platform::domain::serves_routes(domain.as_ref()),
            "{name} in {names:?}"
        );
    }
}

#[tokio::test]
async fn health_is_503_when_a_critical_check_fails_and_liveness_stays_200() {
    let app = spawn_app().await;
    // Break what the probe domain's own check reads.
    sqlx::query("ALTER TABLE probe.notes RENAME TO notes_gone")
        .execute(&app.db)
        .await
        .unwrap();
    let res = app.get("/health").await;
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "down");
    let failing: Vec<&serde_json::Value> = body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "down")
        .collect();
    assert_eq!(failing.len(), 1);
    assert_eq!(failing[0]["name"], "probe:notes");
    assert!(failing[0]["error"].as_str().unwrap().contains("notes"));
    assert_eq!(app.get("/health/ready").await.status(), 503);
    assert_eq!(app.get("/health/live").await.status(), 200);
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_down_degrades_health_without_failing_it() {
    // Nothing listens on port 1.
    let app = spawn_app_with(&[("REDIS_URL", "redis://127.0.0.1:1")]).await;
    let res = app.get("/health").await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "degraded");
    let redis = health_check(&body, "redis");
    assert_eq!(redis["status"], "down");
    assert_eq!(redis["critical"], false);
    assert_eq!(app.get("/health/ready").await.status(), 200);
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_up_is_reported_ok() {
    let app = spawn_app_with(&[("REDIS_URL", &redis_url())]).await;
    let body: serde_json::Value = app.get("/health").await.json().await.unwrap();
    let redis = health_check(&body, "redis");
    assert_eq!(redis["status"], "ok", "{redis}");
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn capabilities_list_compiled_and_enabled_domains() {
    let app = spawn_app_with(&[("BASALT__DOMAINS__DISABLED", "content")]).await;
    let body: serde_json::Value = app.get("/api/v1/capabilities").await.json().await.unwrap();
    let domains = body["domains"].as_array().unwrap();
    assert_eq!(
        domains.len(),
        basalt::domains::ALL.len() + 1,
        "every domain plus the probe"
    );
    let find = |name: &str| domains.iter().find(|d| d["name"] == name).cloned().unwrap();
    assert_eq!(find("probe")["enabled"], true);
    assert_eq!(find("probe")["base_path"], "/api/v1/probe");
    let content = find("content");
    assert_eq!(content["compiled"], cfg!(feature = "content"));
    assert_eq!(content["enabled"], false, "disabled by configuration");
    // Compiled and not disabled, but without routes yet: not offered, no base path.
    for domain in basalt::domains::compiled() {
        let reported = find(domain.name());
        let serves = basalt::platform::domain::serves_routes(domain.as_ref());
        if domain.name() != "content" {
            assert_eq!(reported["enabled"], serves, "{reported}");
        }
        assert_eq!(
            reported["base_path"].is_null(),
            !serves || domain.name() == "content"
        );
    }
    if cfg!(feature = "catalog")
        && !basalt::platform::domain::serves_routes(
            &*basalt::domains::compiled()
                .into_iter()
                .find(|d| d.name() == "catalog")
                .unwrap(),
        )
    {
        assert_eq!(find("catalog")["compiled"], true);
        assert_eq!(find("catalog")["enabled"], false);
    }
    assert_eq!(
        body["infrastructure"]["kafka"]["compiled"],
        cfg!(feature = "kafka")
    );
    assert_eq!(body["infrastructure"]["kafka"]["configured"], false);
    assert_eq!(body["infrastructure"]["redis"]["configured"], false);
}

#[tokio::test]
async fn disabling_a_domain_others_depend_on_stops_start_up_with_the_key() {
    let url = fresh_database().await;
    let bad = settings(&url, &[("BASALT__DOMAINS__DISABLED", "nonsense")]);
    let err = basalt::Application::build(bad)
        .await
        .err()
        .expect("must fail");
    assert!(
        err.to_string()
            .starts_with("domains.disabled: unknown domain `nonsense`"),
        "{err}"
    );
    if cfg!(feature = "cart") {
        let bad = settings(&url, &[("BASALT__DOMAINS__DISABLED", "catalog")]);
        let err = basalt::Application::build(bad)
            .await
            .err()
            .expect("must fail");
        assert!(err.to_string().contains("needs `catalog`"), "{err}");
    }
}

#[tokio::test]
async fn metrics_expose_requests_pool_and_outbox() {
    let app = spawn_app().await;
    app.create_note("hello").await;
    assert_eq!(app.get("/api/v1/nothing-here").await.status(), 404);
    let res = app.get("/metrics").await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = res.text().await.unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("basalt_http_requests_total")
                && l.contains("route=\"/api/v1/probe/notes\"")
                && l.contains("status=\"201\"")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("route=\"unmatched\"") && l.contains("status=\"404\""))
    );
    assert!(text.contains("basalt_http_request_duration_seconds_bucket"));
    assert!(text.contains("basalt_db_pool_connections{state=\"idle\"}"));
    assert!(text.contains("basalt_outbox_backlog{queue=\"subscribers\"}"));
    assert!(text.contains("basalt_outbox_oldest_age_seconds"));
    assert!(
        eventually(std::time::Duration::from_secs(5), || async {
            app.get("/metrics")
                .await
                .text()
                .await
                .unwrap()
                .contains("basalt_events_dispatched_total")
        })
        .await
    );
}

#[tokio::test]
async fn openapi_merges_enabled_domains_and_declares_security_and_problems() {
    let app = spawn_app().await;
    let doc: serde_json::Value = app
        .get("/api-docs/openapi.json")
        .await
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/health"]["get"].is_object());
    assert!(doc["paths"]["/api/v1/capabilities"]["get"].is_object());
    assert!(
        doc["paths"]["/api/v1/probe/notes"]["post"].is_object(),
        "domain paths nested under its prefix"
    );
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    assert!(doc["components"]["schemas"]["NoteRequest"].is_object());
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"]["name"],
        "X-Api-Key"
    );
}

/// The whole document, every enabled domain's paths included, passes a real OpenAPI 3.1
/// validator (openapi-spec-validator from PyPI, which `scripts/test.sh` installs), so client
/// generators and gateways accept it.
#[tokio::test]
async fn openapi_document_is_valid_openapi() {
    let app = spawn_app().await;
    let doc = app
        .get("/api-docs/openapi.json")
        .await
        .bytes()
        .await
        .unwrap();
    let path = std::env::temp_dir().join(format!(
        "basalt-openapi-{}.json",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(&path, &doc).unwrap();
    let python = std::env::var("TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(python)
        .args(["-c", "import json, sys; from openapi_spec_validator import validate; validate(json.load(open(sys.argv[1])))"])
        .arg(&path)
        .output()
        .expect("python with openapi-spec-validator (scripts/test.sh installs it; TEST_PYTHON names its python)");
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn swagger_ui_is_served_offline() {
    let app = spawn_app().await;
    let res = app.get("/docs").await;
    assert_eq!(res.status(), 308);
    assert_eq!(res.headers()["location"], "/docs/");
    let res = app.get("/docs/").await;
    assert_eq!(res.status(), 200);
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let html = res.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(
        csp.contains("script-src 'self'"),
        "the UI may run its own scripts: {csp}"
    );
    let js = app.get("/docs/swagger-ui-bundle.js").await;
    assert_eq!(js.status(), 200);
    assert!(
        js.bytes().await.unwrap().len() > 100_000,
        "the bundle is vendored, not fetched"
    );
    let init = app
        .get("/docs/swagger-initializer.js")
        .await
        .text()
        .await
        .unwrap();
    assert!(init.contains("/api-docs/openapi.json"));
}

#[tokio::test]
async fn a_metrics_token_closes_metrics_to_scrapers_without_it() {
    let app = spawn_app_with(&[("BASALT__SERVER__METRICS_TOKEN", "scrape-me-9f8e7d")]).await;
    let scrape = |authorization: Option<&str>| {
        let mut req = client().get(app.url("/metrics"));
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        req.send()
    };
    for authorization in [
        None,
        Some("Bearer scrape-me"),
        Some("Basic scrape-me-9f8e7d"),
    ] {
        let res = scrape(authorization).await.unwrap();
        assert_eq!(
            res.headers()["www-authenticate"],
            "Bearer",
            "{authorization:?}"
        );
        let p = problem(res).await;
        assert_eq!(
            (p["status"].as_u64(), p["code"].as_str()),
            (Some(401), Some("unauthorized"))
        );
    }
    // The scheme is case-insensitive (RFC 9110).
    for authorization in ["Bearer scrape-me-9f8e7d", "bearer scrape-me-9f8e7d"] {
        let res = scrape(Some(authorization)).await.unwrap();
        assert_eq!(res.status(), 200, "{authorization}");
        assert!(
            res.text()
                .await
                .unwrap()
                .contains("basalt_db_pool_connections")
        );
    }
}

/// Runtime settings: a change stored by any replica (here, straight into the table, as
/// another replica's admin API would) applies on this one within about a second, without a
/// restart; a stored value that fails validation is ignored rather than applied.
#[tokio::test]
async fn rate_limits_follow_a_runtime_setting_changed_elsewhere() {
    let app = spawn_app_with(&[("BASALT__RATE_LIMIT__ENABLED", "true")]).await;
    let limit = |res: &reqwest::Response| {
        res.headers()
            .get("ratelimit-limit")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u32>().ok())
    };
    let before = app.get("/api/v1/capabilities").await;
    let default_limit = limit(&before).expect("rate limit headers");
    assert!(default_limit > 3);

    let store = |value: serde_json::Value| {
        let db = app.db.clone();
        async move {
            sqlx::query(
                "INSERT INTO platform.runtime_settings (namespace, key, value, updated_by)
                 VALUES ('platform', 'rate_limit', $1, 'user:test')
                 ON CONFLICT (namespace, key) DO UPDATE SET value = EXCLUDED.value",
            )
            .bind(value)
            .execute(&db)
            .await
            .unwrap();
        }
    };
    store(serde_json::json!({ "default": { "requests": 3, "window_secs": 60 } })).await;
    let applied = eventually(std::time::Duration::from_secs(3), || async {
        limit(&app.get("/api/v1/capabilities").await) == Some(3)
    })
    .await;
    assert!(applied, "the new limit applies without a restart");
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(app.get("/api/v1/capabilities").await.status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");

    // A value the owner's validation refuses is never applied: the TOML default returns.
    store(serde_json::json!({ "default": { "requests": 0, "window_secs": 60 } })).await;
    let reverted = eventually(std::time::Duration::from_secs(3), || async {
        limit(&app.get("/health/live").await).is_none()
            && limit(&app.get("/api/v1/capabilities").await) == Some(default_limit)
    })
    .await;
    assert!(reverted);
}

/// The kernel's store validates with the owner's rule, records each change in the audit
/// trail in the same transaction, and the audit trail refuses to be rewritten.
#[tokio::test]
async fn runtime_setting_changes_are_validated_and_audited_and_the_audit_is_append_only() {
    use basalt::platform::runtime::RuntimeSettings;

    let app = spawn_app().await;
    let store = RuntimeSettings::new(app.db.clone());
    fn positive(v: &u32) -> Result<(), String> {
        if *v == 0 {
            Err("must be at least 1".into())
        } else {
            Ok(())
        }
    }
    let setting = store.declare("probe", "cart_days", 30u32, positive);
    let mut conn = app.db.acquire().await.unwrap();
    let refused = store
        .set(&mut conn, "probe", "cart_days", &0u32, "user:admin")
        .await
        .unwrap_err();
    assert_eq!(refused.status().as_u16(), 422);
    let unknown = store
        .set(&mut conn, "probe", "nope", &1u32, "user:admin")
        .await
        .unwrap_err();
    assert_eq!(unknown.status().as_u16(), 404);

    for days in [45u32, 60] {
        let mut tx = app.db.begin().await.unwrap();
        store
            .set(&mut tx, "probe", "cart_days", &days, "user:admin")
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    store.refresh().await.unwrap();
    assert_eq!(*setting.get(), 60);

    let audit: Vec<(
        String,
        String,
        Option<serde_json::Value>,
        Option<serde_json::Value>,
    )> = sqlx::query_as(
        "SELECT actor, object_id, before, after FROM platform.audit_log
              WHERE action = 'settings.changed' ORDER BY id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(audit.len(), 2, "refused changes record nothing");
    assert_eq!(audit[0].0, "user:admin");
    assert_eq!(audit[0].1, "probe.cart_days");
    assert_eq!(audit[0].2, None);
    assert_eq!(audit[0].3, Some(serde_json::json!(45)));
    assert_eq!(audit[1].2, Some(serde_json::json!(45)));
    assert_eq!(audit[1].3, Some(serde_json::json!(60)));

    for rewrite in [
        "UPDATE platform.audit_log SET actor = 'someone else'",
        "DELETE FROM platform.audit_log",
        "TRUNCATE platform.audit_log",
    ] {
        let err = sqlx::query(rewrite).execute(&app.db).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{rewrite}: {err}");
    }
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM platform.audit_log")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(kept, 2);
}

/// Clients find every stable problem code in the OpenAPI document: the kernel's, and each
/// enabled domain's from its error enum.
#[tokio::test]
async fn the_openapi_document_lists_the_error_codes() {
    let app = spawn_app().await;
    let doc: serde_json::Value = app
        .get("/api-docs/openapi.json")
        .await
        .json()
        .await
        .unwrap();
    let codes = |name: &str| -> Vec<String> {
        doc["components"]["schemas"][name]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} missing"))
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect()
    };
    let kernel = codes("KernelErrorCode");
    for code in [
        "invalid_cursor",
        "validation_failed",
        "rate_limited",
        "not_found",
    ] {
        assert!(kernel.contains(&code.to_owned()), "{code} in {kernel:?}");
    }
    if cfg!(feature = "notifications") {
        assert!(codes("NotificationsErrorCode").contains(&"not_failed".to_owned()));
    }
    if cfg!(feature = "storage") {
        assert!(codes("StorageErrorCode").contains(&"quota_exceeded".to_owned()));
    }
}

#[tokio::test]
async fn made_up_http_methods_share_one_metric_series() {
    let app = spawn_app().await;
    for i in 0..50 {
        let method = reqwest::Method::from_bytes(format!("MADEUP{i}").as_bytes()).unwrap();
        let res = app
            .client
            .request(method, app.url("/api/v1/probe/notes"))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_client_error(), "{}", res.status());
    }
    let text = app.get("/metrics").await.text().await.unwrap();
    let requests: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("basalt_http_requests_total"))
        .collect();
    assert!(
        !requests.iter().any(|l| l.contains("MADEUP")),
        "{requests:#?}"
    );
    assert!(
        requests.iter().any(|l| l.contains("method=\"other\"")),
        "{requests:#?}"
    );
}
