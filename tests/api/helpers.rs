//! Starts the real application (the same builder `main` uses) against a fresh database, on
//! a random port, with the `probe` test domain plugged in.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use basalt::Application;
use basalt::config::Settings;
use basalt::platform::identity::{Claims, TokenVerifier};
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

use crate::probe::Probe;

/// The password test accounts are registered with.
#[cfg_attr(not(feature = "auth"), allow(dead_code))]
pub const PASSWORD: &str = "correct horse battery staple";

/// The server that test databases are created on.
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Creates an empty database with a unique name and returns its URL.
pub async fn fresh_database() -> String {
    let admin = admin_url();
    let name = format!("basalt_test_{}", Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(&admin)
        .await
        .expect("PostgreSQL for tests (scripts/test.sh starts one)");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let base = admin
        .rsplit_once('/')
        .map(|(b, _)| b.to_owned())
        .unwrap_or(admin);
    format!("{base}/{name}")
}

/// Settings as a deployment would load them: config/ files, the `test` profile, and these
/// environment variables on top.
pub fn settings(database_url: &str, env: &[(&str, &str)]) -> Settings {
    let mut vars: HashMap<String, String> = HashMap::from([
        ("DATABASE_URL".into(), database_url.into()),
        ("BASALT__SERVER__PORT".into(), "0".into()),
        ("BASALT__SERVER__WORKERS".into(), "1".into()),
        ("BASALT__SERVER__SHUTDOWN_TIMEOUT_SECS".into(), "10".into()),
    ]);
    for (k, v) in env {
        vars.insert((*k).into(), (*v).into());
    }
    Settings::load_from(Path::new("config"), "test", vars).expect("test settings")
}

pub struct TestApp {
    pub address: String,
    pub db: PgPool,
    pub database_url: String,
    pub client: reqwest::Client,
    pub settings: Settings,
    pub probe: Probe,
    pub handle: actix_web::dev::ServerHandle,
    pub stopped: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

pub async fn spawn_app_with(env: &[(&str, &str)]) -> TestApp {
    let database_url = fresh_database().await;
    spawn_on(&database_url, env).await
}

/// Starts an app on an existing database (a second replica, say).
pub async fn spawn_on(database_url: &str, env: &[(&str, &str)]) -> TestApp {
    spawn_custom(database_url, env, |_| {}).await
}

/// Starts an app with settings changed in code, for what environment variables cannot say
/// (lists of tables, such as signing keys).
pub async fn spawn_custom(
    database_url: &str,
    env: &[(&str, &str)],
    change: impl FnOnce(&mut Settings),
) -> TestApp {
    let mut settings = settings(database_url, env);
    change(&mut settings);
    // The statement counter (and, with TEST_LOG, the log output) before the app starts.
    crate::statements::install();
    let probe = Probe::default();
    let app = Application::builder(settings.clone())
        .domain(Arc::new(probe.clone()))
        .build()
        .await
        .expect("application builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let db = app.platform().db.clone();
    let handle = app.server_handle();
    let stopped = tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        db,
        database_url: database_url.to_owned(),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        settings,
        probe,
        handle,
        stopped,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// A request on behalf of a signed-in caller, ready for a body and `send()`.
    pub fn as_user(
        &self,
        method: reqwest::Method,
        path: &str,
        token: impl std::fmt::Display,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
    }

    /// GET on behalf of a signed-in caller, read as JSON.
    #[cfg_attr(not(feature = "notifications"), allow(dead_code))]
    pub async fn json_as<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        token: impl std::fmt::Display,
    ) -> T {
        let res = self
            .as_user(reqwest::Method::GET, path, token)
            .send()
            .await
            .expect("request");
        res.json().await.expect("json")
    }

    /// The `items` of one page of a list endpoint (the kernel's `{items, next}` shape).
    pub async fn items_as(
        &self,
        path: &str,
        token: impl std::fmt::Display,
    ) -> Vec<serde_json::Value> {
        let page: serde_json::Value = self.json_as(path, token).await;
        page["items"]
            .as_array()
            .unwrap_or_else(|| panic!("{path} is not a page: {page}"))
            .clone()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// Creates a note through the probe domain; the note and its event commit together.
    pub async fn create_note(&self, body: &str) -> serde_json::Value {
        let res = self
            .post_json(
                "/api/v1/probe/notes",
                &serde_json::json!({ "body": body, "email": "a@example.com" }),
            )
            .await;
        assert_eq!(res.status(), 201);
        res.json().await.expect("json")
    }

    /// Registers an account (auth domain) with [`PASSWORD`].
    #[cfg_attr(not(feature = "auth"), allow(dead_code))]
    pub async fn register(&self, email: &str) -> reqwest::Response {
        let body = serde_json::json!({
            "email": email, "password": PASSWORD, "first_name": "Ada", "last_name": "Lovelace"
        });
        self.post_json("/api/v1/auth/register", &body).await
    }

    #[cfg_attr(not(feature = "auth"), allow(dead_code))]
    pub async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.post_json(
            "/api/v1/auth/login",
            &serde_json::json!({ "email": email, "password": password }),
        )
        .await
    }

    /// Signs in with [`PASSWORD`] and returns the access token.
    #[cfg_attr(not(feature = "auth"), allow(dead_code))]
    pub async fn access_token(&self, email: &str) -> String {
        let res = self.login(email, PASSWORD).await;
        assert_eq!(res.status(), 200, "sign-in of {email}");
        let tokens: serde_json::Value = res.json().await.expect("json");
        tokens["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// An access token signed with this app's secret.
    pub fn token(&self, sub: &str, roles: &[&str], permissions: &[&str]) -> String {
        let now = chrono::Utc::now().timestamp();
        let verifier = TokenVerifier::new(&self.settings.identity).expect("keys");
        verifier
            .sign(&Claims {
                sub: sub.into(),
                roles: roles.iter().map(|r| r.to_string()).collect(),
                permissions: permissions.iter().map(|p| p.to_string()).collect(),
                jti: Uuid::new_v4().to_string(),
                email_verified: true,
                sid: None,
                iat: now,
                exp: now + 600,
                iss: self.settings.identity.issuer.clone(),
                aud: self.settings.identity.audience.clone(),
            })
            .expect("sign")
    }

    /// The single-use token mailed by the latest `event_type` event for `email`: derived, as
    /// the mailer derives it, from the nonce the event carries and the server's secret (the
    /// outbox alone holds no token).
    #[cfg_attr(not(feature = "auth"), allow(dead_code))]
    pub async fn mailed_token(&self, event_type: &str, email: &str) -> Option<String> {
        let nonce: Option<String> = sqlx::query_scalar(
            "SELECT payload->'secret'->>'nonce' FROM platform.outbox
              WHERE event_type = $1 AND payload->>'email' = $2 ORDER BY seq DESC LIMIT 1",
        )
        .bind(event_type)
        .bind(email)
        .fetch_optional(&self.db)
        .await
        .expect("outbox");
        nonce.map(|n| basalt::events::auth::one_time_token(&self.settings.identity, &n))
    }

    /// Follows the verification link mailed to `email` (registered already).
    #[cfg_attr(not(feature = "auth"), allow(dead_code))]
    pub async fn verify_email(&self, email: &str) {
        let token = self
            .mailed_token("user.verification_requested", email)
            .await
            .expect("a verification token");
        let res = self
            .post_json(
                "/api/v1/auth/verify-email",
                &serde_json::json!({ "token": token }),
            )
            .await;
        assert_eq!(res.status(), 200, "verification of {email}");
    }

    /// How many events of this type are in the outbox.
    #[cfg_attr(not(feature = "auth"), allow(dead_code))]
    pub async fn events_of(&self, event_type: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM platform.outbox WHERE event_type = $1")
            .bind(event_type)
            .fetch_one(&self.db)
            .await
            .expect("count")
    }

    /// How many times the probe's subscriber handled `event_id`.
    pub async fn times_seen(&self, event_id: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM probe.seen WHERE event_id = $1::uuid")
            .bind(event_id)
            .fetch_one(&self.db)
            .await
            .expect("count")
    }
}

/// An HTTP client for tests that talk to a server started another way (the binary).
pub fn client() -> reqwest::Client {
    basalt::platform::install_tls_provider();
    reqwest::Client::new()
}

/// Polls `check` until it holds or `timeout` passes; returns whether it held.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One named check of a /health report.
#[cfg_attr(
    not(any(feature = "redis", feature = "kafka", feature = "notifications")),
    allow(dead_code)
)]
pub fn health_check(report: &serde_json::Value, name: &str) -> serde_json::Value {
    report["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|c| c["name"] == name))
        .cloned()
        .unwrap_or_else(|| panic!("no {name} check in {report}"))
}

/// Reads a problem+json body, checking the content type on the way.
pub async fn problem(res: reqwest::Response) -> serde_json::Value {
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or("").to_owned());
    assert_eq!(
        ct.as_deref(),
        Some("application/problem+json"),
        "problem content type"
    );
    res.json().await.expect("problem json")
}

/// Asserts a refusal: `status` and a problem+json with `code`; returns the problem.
pub async fn refused(res: reqwest::Response, status: u16, code: &str) -> serde_json::Value {
    assert_eq!(res.status(), status);
    let p = problem(res).await;
    assert_eq!(p["code"], code, "{p}");
    p
}

/// The `field` of each entry in a 422 problem's `errors`, in order.
pub fn error_fields(problem: &serde_json::Value) -> Vec<&str> {
    problem["errors"]
        .as_array()
        .expect("a validation problem")
        .iter()
        .map(|e| e["field"].as_str().expect("a field"))
        .collect()
}

/// Sends the requests at once; their statuses, in order.
pub async fn statuses_of<F>(requests: impl IntoIterator<Item = F>) -> Vec<u16>
where
    F: std::future::Future<Output = reqwest::Response>,
{
    futures_util::future::join_all(requests)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect()
}
