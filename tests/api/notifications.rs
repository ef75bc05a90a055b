//! The notifications domain: mail through a real SMTP server (aiosmtpd, storing into a
//! maildir the test reads back), the .eml fallback, retries, the inbox and preferences.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;

/// aiosmtpd on a loopback port, delivering every message into a maildir.
struct SmtpSink {
    child: Child,
    port: u16,
    maildir: PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("basalt-{name}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl SmtpSink {
    fn start_on(port: u16) -> Self {
        // Python's Maildir creates its new/cur/tmp only when it creates the folder itself.
        let maildir = temp_dir("maildir").join("box");
        let python = std::env::var("TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let child = Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("aiosmtpd (scripts/test.sh installs it; TEST_PYTHON names its python)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not start on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            port,
            maildir,
        }
    }

    fn start() -> Self {
        Self::start_on(free_port())
    }

    fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, raw.
    fn messages(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .collect()
    }

    async fn wait_for(&self, subject: &str) -> String {
        self.wait_for_to(subject, "").await
    }

    /// The first message with this subject (and recipient, unless empty) to arrive.
    async fn wait_for_to(&self, subject: &str, to: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        let wanted = |m: &String| {
            let m = decode(m);
            m.contains(&format!("Subject: {subject}")) && m.contains(&format!("To: {to}"))
        };
        loop {
            if let Some(m) = self.messages().into_iter().find(wanted) {
                return decode(&m);
            }
            assert!(
                Instant::now() < deadline,
                "no message {subject:?} arrived; got {:?}",
                self.messages()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Undoes quoted-printable (soft line breaks, =XX), which mail bodies may use.
fn decode(raw: &str) -> String {
    let joined = raw.replace("=\r\n", "").replace("=\n", "");
    let mut out = Vec::new();
    let bytes = joined.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        if bytes[i] == b'='
            && let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn token_in(mail: &str, page: &str) -> String {
    let start = mail.find(&format!("/{page}?token=")).expect("a link") + page.len() + 8;
    mail[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

async fn register(app: &TestApp, email: &str) {
    assert_eq!(app.register(email).await.status(), 201);
}

async fn access_token(app: &TestApp, email: &str) -> String {
    app.access_token(email).await
}

async fn messages(app: &TestApp, template: &str) -> Vec<(String, i32)> {
    sqlx::query_as("SELECT status, attempts FROM notifications.messages WHERE template = $1")
        .bind(template)
        .fetch_all(&app.db)
        .await
        .unwrap()
}

#[cfg(feature = "auth")]
#[tokio::test]
async fn registration_to_inbox_end_to_end() {
    let smtp = SmtpSink::start();
    let url = smtp.url();
    let app = spawn_app_with(&[
        ("BASALT__NOTIFICATIONS__SMTP_URL", url.as_str()),
        ("BASALT__NOTIFICATIONS__APP_NAME", "Acme Shop"),
        (
            "BASALT__NOTIFICATIONS__LINKS_BASE_URL",
            "https://shop.example",
        ),
        ("BASALT__AUTH__ADMIN_EMAILS", "root@example.com"),
        // A minute between polls: each mail goes out because queuing it woke the sender.
        ("BASALT__NOTIFICATIONS__POLL_INTERVAL_MS", "60000"),
    ])
    .await;
    register(&app, "ada@example.com").await;

    let mail = smtp.wait_for("Confirm your email address").await;
    assert!(mail.contains("To: ada@example.com"), "{mail}");
    assert!(mail.contains("From: Basalt <no-reply@localhost>"));
    assert!(mail.contains("multipart/alternative"));
    assert!(mail.contains("Content-Type: text/plain") && mail.contains("Content-Type: text/html"));
    assert!(mail.contains("Hello Ada,"));
    assert!(
        mail.contains("https://shop.example/verify-email?token="),
        "{mail}"
    );
    assert!(
        !mail.contains("List-Unsubscribe"),
        "security mail has no unsubscribe"
    );
    let token = token_in(&mail, "verify-email");

    let res = app
        .post_json("/api/v1/auth/verify-email", &json!({ "token": token }))
        .await;
    assert_eq!(res.status(), 200);
    let welcome = smtp.wait_for("Welcome to Acme Shop").await;
    assert!(
        welcome
            .contains("List-Unsubscribe: <http://127.0.0.1:8080/api/v1/notifications/unsubscribe?"),
        "{welcome}"
    );
    assert!(welcome.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));

    let access = access_token(&app, "ada@example.com").await;
    let inbox: Value = app.json_as("/api/v1/notifications/inbox", &access).await;
    assert_eq!(inbox["unread"], 1);
    assert_eq!(inbox["items"][0]["title"], "Welcome!");

    // Redelivering the event sends nothing twice.
    sqlx::query("UPDATE platform.outbox SET dispatched_at = NULL WHERE event_type = 'user.verification_requested'")
        .execute(&app.db)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        messages(&app, "verify-email").await,
        [("sent".to_owned(), 1)]
    );
    assert_eq!(smtp.messages().len(), 2);

    // The delivery log, for administrators only.
    register(&app, "root@example.com").await;
    // `auth.admin_emails` become administrators once verified.
    app.verify_email("root@example.com").await;
    let root = access_token(&app, "root@example.com").await;
    let log = app
        .as_user(
            reqwest::Method::GET,
            "/api/v1/notifications/messages?status=sent",
            &root,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(log.status(), 200);
    let log: Value = log.json().await.unwrap();
    assert!(
        log["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["template"] == "welcome" && m["to"] == "ada@example.com")
    );
    let denied = app
        .as_user(
            reqwest::Method::GET,
            "/api/v1/notifications/messages",
            &access,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);
}

#[cfg(feature = "auth")]
#[tokio::test]
async fn without_smtp_messages_become_eml_files() {
    let dir = temp_dir("outbox");
    let app = spawn_app_with(&[("BASALT__NOTIFICATIONS__OUTBOX_DIR", dir.to_str().unwrap())]).await;
    register(&app, "ada@example.com").await;
    let found = eventually(Duration::from_secs(10), || {
        let dir = dir.clone();
        async move {
            eml_files(&dir)
                .iter()
                .any(|m| decode(m).contains("Subject: Confirm your email address"))
        }
    })
    .await;
    assert!(found, "the message was written to the outbox folder");
    // The file is written before the message is marked sent, so wait for the mark too.
    let sent = eventually(Duration::from_secs(10), || async {
        messages(&app, "verify-email").await == [("sent".to_owned(), 1)]
    })
    .await;
    assert!(sent, "{:?}", messages(&app, "verify-email").await);
    let health: Value = app.get("/health").await.json().await.unwrap();
    assert_eq!(health_check(&health, "mail")["status"], "ok");
}

fn eml_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(feature = "auth")]
#[tokio::test]
async fn an_smtp_outage_is_retried_then_failed_and_an_admin_can_retry() {
    let port = free_port();
    let url = format!("smtp://127.0.0.1:{port}");
    let app = spawn_app_with(&[
        ("BASALT__NOTIFICATIONS__SMTP_URL", url.as_str()),
        ("BASALT__NOTIFICATIONS__MAX_ATTEMPTS", "3"),
        ("BASALT__NOTIFICATIONS__RETRY_BASE_MS", "100"),
        ("BASALT__NOTIFICATIONS__TIMEOUT_SECS", "2"),
        ("BASALT__AUTH__ADMIN_EMAILS", "root@example.com"),
    ])
    .await;
    register(&app, "ada@example.com").await;
    let failed = eventually(Duration::from_secs(20), || async {
        messages(&app, "verify-email").await == [("failed".to_owned(), 3)]
    })
    .await;
    assert!(
        failed,
        "three attempts, then failed: {:?}",
        messages(&app, "verify-email").await
    );
    let error: Option<String> = sqlx::query_scalar("SELECT last_error FROM notifications.messages")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(error.is_some_and(|e| !e.is_empty()));
    let health: Value = app.get("/health").await.json().await.unwrap();
    assert_eq!(health_check(&health, "mail")["status"], "down");
    assert_eq!(health["status"], "degraded");

    let smtp = SmtpSink::start_on(port);
    // Root's own verification mail goes out now that the server is up.
    register(&app, "root@example.com").await;
    // `auth.admin_emails` become administrators once verified.
    app.verify_email("root@example.com").await;
    let root = access_token(&app, "root@example.com").await;
    let failed = app
        .items_as("/api/v1/notifications/messages?status=failed", &root)
        .await;
    assert_eq!(failed.len(), 1);
    let id = failed[0]["id"].as_str().unwrap();
    let retry = format!("/api/v1/notifications/messages/{id}/retry");
    let res = app
        .as_user(reqwest::Method::POST, &retry, &root)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let mail = smtp
        .wait_for_to("Confirm your email address", "ada@example.com")
        .await;
    assert!(mail.contains("Hello Ada,"));
    assert!(
        eventually(Duration::from_secs(10), || async {
            messages(&app, "verify-email")
                .await
                .iter()
                .all(|(status, _)| status == "sent")
        })
        .await
    );
    let again = app
        .as_user(reqwest::Method::POST, &retry, &root)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409, "only failed messages are retried");
}

#[cfg(feature = "auth")]
#[tokio::test]
async fn preferences_and_one_click_unsubscribe() {
    let dir = temp_dir("outbox");
    let app = spawn_app_with(&[("BASALT__NOTIFICATIONS__OUTBOX_DIR", dir.to_str().unwrap())]).await;
    register(&app, "ada@example.com").await;
    let access = access_token(&app, "ada@example.com").await;
    let prefs = app
        .items_as("/api/v1/notifications/preferences", &access)
        .await;
    assert_eq!(prefs.len(), 4);
    assert_eq!(prefs[0]["category"], "security");
    assert_eq!(prefs[0]["can_disable_email"], false);

    let put = |category: &str, body: Value| {
        app.as_user(
            reqwest::Method::PUT,
            &format!("/api/v1/notifications/preferences/{category}"),
            &access,
        )
        .json(&body)
        .send()
    };
    let res = put("security", json!({ "email": false })).await.unwrap();
    assert_eq!(res.status(), 422);
    assert_eq!(
        put("nonsense", json!({ "email": false }))
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        put("account", json!({ "email": false }))
            .await
            .unwrap()
            .status(),
        204
    );

    // Verifying now sends no welcome mail (account mail is off) but still fills the inbox.
    let token = app
        .mailed_token("user.verification_requested", "ada@example.com")
        .await
        .unwrap();
    assert_eq!(
        app.post_json("/api/v1/auth/verify-email", &json!({ "token": token }))
            .await
            .status(),
        200
    );
    let inbox_filled = eventually(Duration::from_secs(10), || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM notifications.inbox")
            .fetch_one(&app.db)
            .await
            .unwrap()
            == 1
    })
    .await;
    assert!(inbox_filled);
    assert!(messages(&app, "welcome").await.is_empty());

    // One-click unsubscribe for a fresh account, from the link in its welcome mail.
    register(&app, "bob@example.com").await;
    let token = app
        .mailed_token("user.verification_requested", "bob@example.com")
        .await
        .unwrap();
    app.post_json("/api/v1/auth/verify-email", &json!({ "token": token }))
        .await;
    let link = eventually(Duration::from_secs(10), || async {
        sqlx::query_scalar::<_, Option<String>>(
            "SELECT unsubscribe_url FROM notifications.messages WHERE template = 'welcome'",
        )
        .fetch_optional(&app.db)
        .await
        .unwrap()
        .flatten()
        .is_some()
    })
    .await;
    assert!(link);
    let link: String = sqlx::query_scalar(
        "SELECT unsubscribe_url FROM notifications.messages WHERE template = 'welcome'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    let path = link.trim_start_matches("http://127.0.0.1:8080");
    let tampered = path.replace("category=account", "category=orders");
    assert_eq!(
        app.client
            .post(app.url(&tampered))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    let res = app.client.post(app.url(path)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let bob = access_token(&app, "bob@example.com").await;
    let prefs = app
        .items_as("/api/v1/notifications/preferences", &bob)
        .await;
    let account = prefs.iter().find(|p| p["category"] == "account").unwrap();
    assert_eq!(account["email"], false);
}

#[cfg(feature = "auth")]
#[tokio::test]
async fn the_inbox_is_private_and_can_be_read_and_cleared() {
    let app = spawn_app().await;
    register(&app, "ada@example.com").await;
    register(&app, "bob@example.com").await;
    let ada = access_token(&app, "ada@example.com").await;
    let bob = access_token(&app, "bob@example.com").await;
    // Two password changes give Ada two notifications.
    for (from, to) in [
        (PASSWORD, "a brand new passphrase 1"),
        ("a brand new passphrase 1", PASSWORD),
    ] {
        let res = app
            .as_user(reqwest::Method::POST, "/api/v1/auth/change-password", &ada)
            .json(&json!({ "current_password": from, "new_password": to }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 204);
    }
    let inbox = |token: String| {
        let app = &app;
        async move {
            app.json_as::<Value>("/api/v1/notifications/inbox", token)
                .await
        }
    };
    assert!(
        eventually(Duration::from_secs(10), || async {
            inbox(ada.clone()).await["unread"] == 2
        })
        .await
    );
    let page = inbox(ada.clone()).await;
    let first = page["items"][0]["id"].as_str().unwrap().to_owned();
    let second = page["items"][1]["id"].as_str().unwrap().to_owned();

    let post =
        |path: String, token: String| app.as_user(reqwest::Method::POST, &path, token).send();
    assert_eq!(
        post(
            format!("/api/v1/notifications/inbox/{first}/read"),
            bob.clone()
        )
        .await
        .unwrap()
        .status(),
        404
    );
    assert_eq!(
        post(
            format!("/api/v1/notifications/inbox/{first}/read"),
            ada.clone()
        )
        .await
        .unwrap()
        .status(),
        204
    );
    let page = inbox(ada.clone()).await;
    assert_eq!(page["unread"], 1);
    assert_eq!(page["items"][0]["id"], second.as_str(), "unread first");
    assert_eq!(
        post("/api/v1/notifications/inbox/read-all".into(), ada.clone())
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(inbox(ada.clone()).await["unread"], 0);
    let delete = app
        .as_user(
            reqwest::Method::DELETE,
            &format!("/api/v1/notifications/inbox/{second}"),
            &ada,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 204);
    assert_eq!(
        inbox(ada.clone()).await["items"].as_array().unwrap().len(),
        1
    );
    assert_eq!(
        inbox(bob.clone()).await["items"].as_array().unwrap().len(),
        0
    );
    let bad = app
        .as_user(
            reqwest::Method::GET,
            "/api/v1/notifications/inbox?limit=0",
            &ada,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[cfg(feature = "auth")]
#[tokio::test]
async fn templates_can_be_overridden_from_a_folder() {
    let outbox = temp_dir("outbox");
    let templates = temp_dir("templates");
    std::fs::write(
        templates.join("verify-email.subject"),
        "Please confirm, {{ first_name }}",
    )
    .unwrap();
    let app = spawn_app_with(&[
        (
            "BASALT__NOTIFICATIONS__OUTBOX_DIR",
            outbox.to_str().unwrap(),
        ),
        (
            "BASALT__NOTIFICATIONS__TEMPLATES_DIR",
            templates.to_str().unwrap(),
        ),
    ])
    .await;
    register(&app, "ada@example.com").await;
    let found = eventually(Duration::from_secs(10), || {
        let outbox = outbox.clone();
        async move {
            eml_files(&outbox)
                .iter()
                .any(|m| decode(m).contains("Subject: Please confirm, Ada"))
        }
    })
    .await;
    assert!(found, "the folder's subject wins; {:?}", eml_files(&outbox));
    // The parts not overridden still come from the built-in templates.
    let mail = eml_files(&outbox)
        .into_iter()
        .map(|m| decode(&m))
        .find(|m| m.contains("Please confirm"))
        .unwrap();
    assert!(
        mail.contains("Confirm your email address for Basalt"),
        "{mail}"
    );
}

/// The inbox pages by keyset in its own order (unread first, then newest), never ends on an
/// empty page, and refuses a cursor it did not hand out.
#[tokio::test]
async fn the_inbox_pages_unread_first_without_an_empty_last_page() {
    let app = spawn_app().await;
    let user = uuid::Uuid::now_v7();
    let token = app.token(&user.to_string(), &[], &[]);
    for i in 0..5 {
        sqlx::query(
            "INSERT INTO notifications.inbox (id, user_id, category, title, body, read_at, created_at)
             VALUES ($1, $2, 'account', $3, '', CASE WHEN $4 THEN now() END, now() - make_interval(secs => $5))",
        )
        .bind(uuid::Uuid::now_v7())
        .bind(user)
        .bind(format!("n{i}"))
        .bind(i % 2 == 0)
        .bind(f64::from(i))
        .execute(&app.db)
        .await
        .unwrap();
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/notifications/inbox?limit=2".to_owned();
    loop {
        let page: Value = app.json_as(&path, &token).await;
        assert_eq!(page["unread"], 2);
        let items = page["items"].as_array().unwrap();
        assert!(!items.is_empty(), "no empty page: {page}");
        seen.extend(
            items
                .iter()
                .map(|i| i["title"].as_str().unwrap().to_owned()),
        );
        match page["next"].as_str() {
            Some(next) => path = format!("/api/v1/notifications/inbox?limit=2&after={next}"),
            None => break,
        }
    }
    // Unread (n1, n3) newest first, then read (n0, n2, n4) newest first.
    assert_eq!(seen, ["n1", "n3", "n0", "n2", "n4"]);

    let exact: Value = app
        .json_as("/api/v1/notifications/inbox?limit=5", &token)
        .await;
    assert_eq!(exact["items"].as_array().unwrap().len(), 5);
    assert!(exact.get("next").is_none(), "a full last page has no next");

    for bad in ["garbage!", "eyJub3QiOiJhIGN1cnNvciJ9"] {
        let res = app
            .as_user(
                reqwest::Method::GET,
                &format!("/api/v1/notifications/inbox?after={bad}"),
                &token,
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
        assert_eq!(problem(res).await["code"], "invalid_cursor");
    }
}

// ---- order mails to the account's address (the `recipients` read model) ----

/// A registered, signed-in buyer (auth's real tokens): (actor, email).
#[cfg(all(feature = "auth", feature = "orders"))]
pub(crate) async fn account_buyer(app: &TestApp, email: &str) -> crate::catalog::Actor {
    register(app, email).await;
    let token = access_token(app, email).await;
    let me: Value = app.json_as("/api/v1/auth/me", &token).await;
    crate::catalog::Actor {
        id: me["id"].as_str().unwrap().to_owned(),
        token,
    }
}

/// The address the read model holds for `user`: `None` without a row, `Some(None)` for a
/// row without an address.
#[cfg(all(feature = "auth", feature = "orders"))]
async fn recipient(app: &TestApp, user: &str) -> Option<Option<String>> {
    sqlx::query_scalar("SELECT email FROM notifications.recipients WHERE user_id = $1::uuid")
        .bind(user)
        .fetch_optional(&app.db)
        .await
        .unwrap()
}

/// Places `who`'s one-line order (with `cart_email` set on the cart, if given) and has
/// staff mark it paid; returns the order number.
#[cfg(all(feature = "auth", feature = "orders"))]
async fn place_and_pay(
    app: &TestApp,
    who: &crate::catalog::Actor,
    cart_email: Option<&str>,
) -> String {
    use crate::orders::{cart_with, manager, place, post, stocked};
    let (_, variant) = stocked(app, &crate::catalog::seller(app), 10, 1000).await;
    let cart = cart_with(app, who, &[(&variant, 1)]).await;
    if let Some(email) = cart_email {
        let res = app
            .as_user(reqwest::Method::PUT, "/api/v1/cart/addresses", &who.token)
            .json(&json!({ "email": email }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    }
    let o = place(app, who, &cart).await;
    let res = post(
        app,
        &manager(app),
        &format!("/{}/mark-paid", o["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(res.status(), 200);
    o["number"].as_str().unwrap().to_owned()
}

/// The order mails' addresses, confirmation first.
#[cfg(all(feature = "auth", feature = "orders"))]
async fn order_mail_addresses(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT to_address FROM notifications.messages
          WHERE template = 'order-confirmation' ORDER BY created_at, id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap()
}

#[cfg(all(feature = "auth", feature = "orders"))]
#[tokio::test]
async fn a_buyer_without_a_cart_email_gets_the_order_mails_at_the_account_address() {
    let smtp = SmtpSink::start();
    let url = smtp.url();
    let app = spawn_app_with(&[("BASALT__NOTIFICATIONS__SMTP_URL", url.as_str())]).await;
    let grace = account_buyer(&app, "grace@example.com").await;
    // Never `PUT /cart/addresses`: the order names no email.
    let number = place_and_pay(&app, &grace, None).await;
    let stored: Option<String> =
        sqlx::query_scalar("SELECT email FROM orders.orders WHERE number = $1")
            .bind(&number)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(stored, None, "the order itself has no email");
    let confirmed = smtp
        .wait_for_to(&format!("Order {number} confirmed"), "grace@example.com")
        .await;
    assert!(
        confirmed.contains(&format!("Thank you for your order {number}")),
        "{confirmed}"
    );
    smtp.wait_for_to(
        &format!("Payment received for order {number}"),
        "grace@example.com",
    )
    .await;
    assert_eq!(
        order_mail_addresses(&app).await,
        ["grace@example.com", "grace@example.com"]
    );
}

#[cfg(all(feature = "auth", feature = "orders"))]
#[tokio::test]
async fn an_email_given_on_the_cart_still_wins_over_the_account_address() {
    let smtp = SmtpSink::start();
    let url = smtp.url();
    let app = spawn_app_with(&[("BASALT__NOTIFICATIONS__SMTP_URL", url.as_str())]).await;
    let ada = account_buyer(&app, "ada.account@example.com").await;
    let number = place_and_pay(&app, &ada, Some("ada.cart@example.com")).await;
    smtp.wait_for_to(
        &format!("Payment received for order {number}"),
        "ada.cart@example.com",
    )
    .await;
    smtp.wait_for_to(&format!("Order {number} confirmed"), "ada.cart@example.com")
        .await;
    // The account's address was known (the sign-in taught it), and not used.
    assert_eq!(
        recipient(&app, &ada.id).await,
        Some(Some("ada.account@example.com".to_owned()))
    );
    assert_eq!(
        order_mail_addresses(&app).await,
        ["ada.cart@example.com", "ada.cart@example.com"]
    );
}

/// Publishes a forged `user.logged_in` for `user` with `email`, `age` in the past, and waits
/// until the relay has handed it out.
#[cfg(all(feature = "auth", feature = "orders"))]
async fn late_sign_in(app: &TestApp, user: &str, email: &str, age: chrono::Duration) {
    let id = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO platform.outbox (id, event_type, source, aggregate_id, occurred_at,
                                      schema_version, actor, payload)
         VALUES ($1, 'user.logged_in', 'auth', $2, now() - make_interval(secs => $3), 1,
                 'system', jsonb_build_object('user_id', $2, 'session_id', gen_random_uuid(),
                                              'email', $4::text))",
    )
    .bind(id)
    .bind(user)
    .bind(age.num_seconds() as f64)
    .bind(email)
    .execute(&app.db)
    .await
    .unwrap();
    let handled = eventually(Duration::from_secs(10), || async {
        sqlx::query_scalar::<_, bool>(
            "SELECT dispatched_at IS NOT NULL FROM platform.outbox WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap()
    })
    .await;
    assert!(handled, "the forged sign-in was dispatched");
}

#[cfg(all(feature = "auth", feature = "orders"))]
#[tokio::test]
async fn addresses_follow_event_time_and_a_deleted_account_is_erased_for_good() {
    let app = spawn_app().await;
    let lin = account_buyer(&app, "lin@example.com").await;
    let learned = eventually(Duration::from_secs(10), || async {
        recipient(&app, &lin.id).await == Some(Some("lin@example.com".to_owned()))
    })
    .await;
    assert!(learned, "registration and sign-in teach the address");

    // An older event delivered late does not overwrite what a newer one said.
    late_sign_in(&app, &lin.id, "old@example.com", chrono::Duration::hours(1)).await;
    assert_eq!(
        recipient(&app, &lin.id).await,
        Some(Some("lin@example.com".to_owned()))
    );

    let res = app
        .as_user(reqwest::Method::DELETE, "/api/v1/auth/me", &lin.token)
        .json(&json!({ "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let erased = eventually(Duration::from_secs(10), || async {
        recipient(&app, &lin.id).await == Some(None)
    })
    .await;
    assert!(erased, "user.deleted erases the address");
    // Not even an event from before the deletion, delivered after it, brings it back.
    late_sign_in(
        &app,
        &lin.id,
        "lin@example.com",
        chrono::Duration::minutes(1),
    )
    .await;
    assert_eq!(recipient(&app, &lin.id).await, Some(None));

    // An order event for the deleted buyer (a token minted for the id) mails no one.
    let ghost = crate::catalog::Actor {
        id: lin.id.clone(),
        token: app.token(&lin.id, &["user"], &[]),
    };
    let (o, _) = crate::orders::simple_order(&app, &ghost).await;
    let dispatched = eventually(Duration::from_secs(10), || async {
        sqlx::query_scalar::<_, bool>(
            "SELECT bool_and(dispatched_at IS NOT NULL) FROM platform.outbox
              WHERE event_type = 'order.created' AND aggregate_id = $1",
        )
        .bind(o["id"].as_str().unwrap())
        .fetch_one(&app.db)
        .await
        .unwrap()
    })
    .await;
    assert!(dispatched);
    assert!(order_mail_addresses(&app).await.is_empty());
}
