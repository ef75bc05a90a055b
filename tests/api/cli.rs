//! The `basalt` binary: its commands, its configuration errors and its signal handling.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::helpers::*;

fn basalt() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_basalt"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    for (key, _) in std::env::vars() {
        if key.starts_with("BASALT")
            || matches!(key.as_str(), "DATABASE_URL" | "REDIS_URL" | "KAFKA_BROKERS")
        {
            cmd.env_remove(key);
        }
    }
    cmd
}

fn stderr_of(cmd: &mut Command) -> (i32, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn version_and_help() {
    let out = basalt().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("basalt {}", env!("CARGO_PKG_VERSION"))
    );
    let help =
        String::from_utf8_lossy(&basalt().arg("--help").output().unwrap().stdout).into_owned();
    for command in ["serve", "migrate", "openapi"] {
        assert!(help.contains(command), "{help}");
    }
}

#[test]
fn openapi_prints_the_document() {
    let out = basalt().arg("openapi").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["paths"]["/health"].is_object());
    assert!(doc["paths"]["/api/v1/capabilities"].is_object());
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn a_bad_value_stops_start_up_with_one_line_naming_the_key() {
    let cases: &[(&str, &str, &str)] = &[
        ("BASALT__SERVER__PORT", "eighty", "server.port"),
        ("DATABASE_URL", "mysql://root@localhost/db", "database.url"),
        ("BASALT__LOG__FORMAT", "xml", "log.format"),
        ("BASALT__SERVER__NO_SUCH_KEY", "1", "no_such_key"),
        ("BASALT__NO_SUCH_SECTION__KEY", "1", "no_such_section"),
        ("BASALT__IDENTITY__ALGORITHM", "ES256", "identity.algorithm"),
        ("BASALT__IDENTITY__ALGORITHM", "EdDSA", "identity.keys"),
        (
            "BASALT__RATE_LIMIT__DEFAULT__REQUESTS",
            "0",
            "rate_limit.default",
        ),
    ];
    for (var, value, key) in cases {
        let (code, stderr) = stderr_of(basalt().arg("serve").env(var, value));
        assert_eq!(code, 2, "{var}={value}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains(key),
            "{var}={value} should name {key}: {stderr}"
        );
    }
}

#[test]
fn production_refuses_the_development_secret_and_reads_secret_files() {
    let (code, stderr) = stderr_of(basalt().arg("openapi").env("BASALT_PROFILE", "production"));
    assert_eq!(code, 2);
    assert!(stderr.contains("identity.jwt_secret"), "{stderr}");

    let dir = std::env::temp_dir().join(format!("basalt-secret-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("jwt");
    std::fs::write(&file, "a-production-secret-that-is-long-enough-1234\n").unwrap();
    let out = basalt()
        .arg("openapi")
        .env("BASALT_PROFILE", "production")
        .env("BASALT__IDENTITY__JWT_SECRET_FILE", &file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (code, stderr) = stderr_of(
        basalt()
            .arg("openapi")
            .env("BASALT__IDENTITY__JWT_SECRET_FILE", dir.join("missing")),
    );
    assert_eq!(code, 2);
    assert!(
        stderr.contains("BASALT__IDENTITY__JWT_SECRET_FILE"),
        "{stderr}"
    );
}

#[test]
fn the_development_secret_is_refused_beyond_loopback_whatever_the_profile() {
    for host in ["0.0.0.0", "192.0.2.10", "::"] {
        let (code, stderr) = stderr_of(
            basalt()
                .arg("openapi")
                .env("BASALT_PROFILE", "local")
                .env("BASALT__SERVER__HOST", host),
        );
        assert_eq!(code, 2, "{host}: {stderr}");
        assert!(stderr.contains("identity.jwt_secret"), "{host}: {stderr}");
    }
    for host in ["127.0.0.1", "::1", "localhost"] {
        let out = basalt()
            .arg("openapi")
            .env("BASALT_PROFILE", "local")
            .env("BASALT__SERVER__HOST", host)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{host}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = basalt()
        .arg("openapi")
        .env("BASALT__SERVER__HOST", "0.0.0.0")
        .env(
            "BASALT__IDENTITY__JWT_SECRET",
            "a-real-secret-that-is-long-enough-for-hs256",
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_unreachable_database_is_named_without_its_password() {
    let (code, stderr) = stderr_of(
        basalt()
            .arg("migrate")
            .env("DATABASE_URL", "postgres://app:s3cr3tpw@127.0.0.1:1/app"),
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains("127.0.0.1:1/app") && stderr.contains("DATABASE_URL"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cr3tpw"), "{stderr}");
}

#[tokio::test]
async fn migrate_then_serve_then_stop_on_sigterm() {
    let url = fresh_database().await;
    let out = basalt()
        .arg("migrate")
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = basalt()
        .arg("serve")
        .env("DATABASE_URL", &url)
        .env("BASALT__SERVER__PORT", port.to_string())
        .env("BASALT__LOG__FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let up = eventually(Duration::from_secs(20), || async {
        client()
            .get(format!("{base}/health/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(up, "the binary serves");
    let res = client()
        .get(format!("{base}/health/live"))
        .header("x-request-id", "cli-test-request")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exited = eventually(Duration::from_secs(15), || {
        let done = child.try_wait().unwrap().is_some();
        async move { done }
    })
    .await;
    assert!(exited, "SIGTERM stops the server");
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let logs = String::from_utf8_lossy(&output.stderr);
    let line = logs
        .lines()
        .find(|l| l.contains("cli-test-request"))
        .expect("the request was logged with its id");
    let parsed: serde_json::Value = serde_json::from_str(line).expect("JSON log lines");
    assert_eq!(parsed["span"]["request_id"], "cli-test-request");
    assert!(logs.contains("shutdown complete"));
    assert!(
        !logs.contains("basalt-local-development-secret"),
        "secrets never logged"
    );
}

#[test]
fn openapi_into_a_closed_pipe_exits_quietly() {
    // The reading end is closed before the command writes anything, as when `head` has
    // read its lines and gone.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = basalt()
        .arg("openapi")
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.trim().is_empty(), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

#[test]
fn profiles_are_built_in_and_a_missing_one_stops_start_up() {
    // Outside the checkout: no config/ directory to read profiles from.
    let elsewhere = std::env::temp_dir().join(format!("basalt-cwd-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&elsewhere).unwrap();
    // The built-in production profile applies: it refuses the development secret.
    let (code, stderr) = stderr_of(
        basalt()
            .current_dir(&elsewhere)
            .arg("openapi")
            .env("BASALT_PROFILE", "production"),
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("identity.jwt_secret"), "{stderr}");

    let (code, stderr) = stderr_of(
        basalt()
            .current_dir(&elsewhere)
            .arg("openapi")
            .env("BASALT_PROFILE", "prodution"),
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("prodution") && stderr.contains("no such profile"),
        "{stderr}"
    );

    // A file on disk adds a profile of its own.
    let config = elsewhere.join("config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("staging.toml"), "[log]\nformat = \"json\"\n").unwrap();
    let out = basalt()
        .current_dir(&elsewhere)
        .arg("openapi")
        .env("BASALT_PROFILE", "staging")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A broker that is down is logged once and then summarised, not once per reconnect and
/// retry (hundreds of lines a minute), and `/health` says degraded meanwhile.
#[cfg(feature = "kafka")]
#[tokio::test]
async fn a_kafka_outage_is_logged_once_not_per_retry() {
    let url = fresh_database().await;
    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (port, closed) = (free_port(), free_port());
    let mut child = basalt()
        .arg("serve")
        .env("DATABASE_URL", &url)
        .env("BASALT__SERVER__PORT", port.to_string())
        .env("KAFKA_BROKERS", format!("127.0.0.1:{closed}"))
        .env("BASALT__LOG__FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let up = eventually(Duration::from_secs(20), || async {
        client()
            .get(format!("{base}/health/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(up, "the binary serves");
    // Events for the mirror to fail on.
    for i in 0..3 {
        let res = client()
            .post(format!("{base}/api/v1/auth/register"))
            .json(&serde_json::json!({
                "email": format!("k{i}@example.com"), "password": PASSWORD,
                "first_name": "K", "last_name": "F"
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }
    let health: serde_json::Value = client()
        .get(format!("{base}/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health_check(&health, "kafka")["status"], "down");
    // A window of reconnects and retries (librdkafka reconnects every 2 s at most, the
    // mirror retries from 250 ms up).
    tokio::time::sleep(Duration::from_secs(8)).await;
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let exited = eventually(Duration::from_secs(20), || {
        let done = child.try_wait().unwrap().is_some();
        async move { done }
    })
    .await;
    assert!(exited);
    let output = child.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&output.stderr);
    let about_kafka: Vec<&str> = logs
        .lines()
        .filter(|l| l.to_lowercase().contains("kafka"))
        .filter(|l| !l.contains("\"level\":\"INFO\"") && !l.contains("\"level\":\"DEBUG\""))
        .collect();
    assert!(
        !about_kafka.is_empty() && about_kafka.len() <= 3,
        "{} lines about Kafka:\n{}",
        about_kafka.len(),
        about_kafka.join("\n")
    );
}
