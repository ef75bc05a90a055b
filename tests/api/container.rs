//! The container deployment's configuration: what compose.yaml's `basalt` service sets, on top
//! of the Dockerfile's runtime `ENV`, is configuration Basalt knows. An unknown key stops
//! start-up, so loading the settings with exactly those variables, and building the
//! application with them (each domain reads its own section there), is the check.
//! `scripts/check-container.sh` proves the rest of the container path: the build context,
//! the image's root filesystem, its HEALTHCHECK, and compose.yaml against the Compose schema.

use std::collections::HashMap;
use std::path::Path;

use basalt::config::Settings;
use secrecy::ExposeSecret;

use crate::helpers::*;

/// Values for the variables compose.yaml takes from the shell (`${NAME:?...}`).
const SHELL: &[(&str, &str)] = &[(
    "BASALT_JWT_SECRET",
    "a-test-secret-for-compose-that-is-long-enough",
)];

/// Variables Basalt reads besides `BASALT__*`: the shortcuts (and their `_FILE` forms), the
/// profile and configuration directory, and the log filter.
const OTHER_KNOWN: &[&str] = &[
    "DATABASE_URL",
    "DATABASE_URL_FILE",
    "REDIS_URL",
    "REDIS_URL_FILE",
    "KAFKA_BROKERS",
    "KAFKA_BROKERS_FILE",
    "BASALT_PROFILE",
    "BASALT_CONFIG_DIR",
    "RUST_LOG",
];

fn repo_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The environment the `basalt` container starts with: the image's `ENV`, then compose's
/// `environment` over it, with `${...}` filled in from [`SHELL`].
fn container_environment() -> HashMap<String, String> {
    let mut env: HashMap<String, String> = dockerfile_env(&repo_file("Dockerfile"))
        .into_iter()
        .collect();
    for (key, value) in compose_environment(&repo_file("compose.yaml"), "basalt") {
        env.insert(key, interpolate(&value));
    }
    env
}

#[test]
fn every_variable_compose_sets_is_a_setting_basalt_loads() {
    let env = container_environment();
    for key in env.keys() {
        assert!(
            key.starts_with("BASALT__") || OTHER_KNOWN.contains(&key.as_str()),
            "compose.yaml sets {key}, which Basalt does not read"
        );
    }
    let profile = env
        .get("BASALT_PROFILE")
        .expect("the image sets BASALT_PROFILE");
    assert_eq!(profile, "production");
    let settings = Settings::load_from(Path::new("config"), profile, env.clone())
        .unwrap_or_else(|e| panic!("compose.yaml's environment does not load: {e}"));

    // Each value landed where its name says, rather than being dropped on the way.
    assert_eq!(settings.database.url.expose_secret(), env["DATABASE_URL"]);
    assert_eq!(
        settings.redis.url(),
        env.get("REDIS_URL").map(String::as_str)
    );
    assert_eq!(
        settings.kafka.brokers(),
        env.get("KAFKA_BROKERS").map(String::as_str)
    );
    for (key, value) in env.iter().filter(|(k, _)| k.starts_with("BASALT__")) {
        let path: Vec<String> = key["BASALT__".len()..]
            .split("__")
            .map(str::to_lowercase)
            .collect();
        let section: serde_json::Value = settings
            .domain_section(&path[0])
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        let loaded = path[1..]
            .iter()
            .try_fold(&section, |v, k| v.get(k))
            .unwrap_or_else(|| panic!("{key} is not at {} once loaded", path.join(".")));
        let loaded = match loaded {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join(","),
            other => other.to_string(),
        };
        assert_eq!(&loaded, value, "{key}");
    }
}

#[tokio::test]
async fn compose_environment_starts_every_compiled_domain() {
    // Each domain reads (and checks) its own section while the application is built. The
    // compose hosts (postgres, redis, kafka) do not exist here: a test database stands in for
    // PostgreSQL, and Redis and Kafka stay off (their variables loaded in the test above).
    let mut env = container_environment();
    env.insert("DATABASE_URL".into(), fresh_database().await);
    env.remove("REDIS_URL");
    env.remove("KAFKA_BROKERS");
    env.insert("BASALT__SERVER__HOST".into(), "127.0.0.1".into());
    env.insert("BASALT__SERVER__PORT".into(), "0".into());
    env.insert("BASALT__SERVER__WORKERS".into(), "1".into());
    let profile = env["BASALT_PROFILE"].clone();
    let settings = Settings::load_from(Path::new("config"), &profile, env).expect("settings");
    let app = basalt::Application::build(settings)
        .await
        .unwrap_or_else(|e| panic!("compose.yaml's environment does not start Basalt: {e:#}"));
    let handle = app.server_handle();
    let stopped = tokio::spawn(app.run_until_stopped());
    handle.stop(true).await;
    stopped.await.unwrap().expect("clean shutdown");
}

#[tokio::test]
async fn a_misspelt_variable_in_compose_would_stop_start_up() {
    let mut env = container_environment();
    env.insert(
        "BASALT__SERVER__PUBLIC_BASE_URI".into(),
        "http://localhost:8080".into(),
    );
    let err = Settings::load_from(Path::new("config"), "production", env)
        .expect_err("an unknown key is refused");
    assert!(err.to_string().contains("public_base_uri"), "{err}");

    // A domain's section is checked when the domain starts.
    if cfg!(feature = "notifications") {
        let mut env = container_environment();
        env.insert("DATABASE_URL".into(), fresh_database().await);
        env.remove("REDIS_URL");
        env.remove("KAFKA_BROKERS");
        env.insert("BASALT__SERVER__PORT".into(), "0".into());
        env.insert(
            "BASALT__NOTIFICATIONS__SMTP_URI".into(),
            "smtp://mailpit:1025".into(),
        );
        let settings = Settings::load_from(Path::new("config"), "production", env)
            .expect("sections are read by their domains");
        let err = basalt::Application::build(settings)
            .await
            .err()
            .expect("an unknown key in a domain's section is refused");
        let err = format!("{err:#}");
        assert!(
            err.contains("notifications") && err.contains("smtp_uri"),
            "{err}"
        );
    }
}

#[test]
fn the_readers_below_understand_what_they_are_given() {
    let yaml = "\
# a comment
services:
  other:
    environment:
      NOT_THIS: 1
  basalt:
    build: .
    environment:
      PLAIN: value with spaces # and a comment
      QUOTED: \"a # b\"
      SINGLE: 'it''s'
      NUMBER: 8080
    ports: [\"8080:8080\"]
  after:
    image: x
";
    assert_eq!(
        compose_environment(yaml, "basalt"),
        vec![
            ("PLAIN".to_owned(), "value with spaces".to_owned()),
            ("QUOTED".to_owned(), "a # b".to_owned()),
            ("SINGLE".to_owned(), "it's".to_owned()),
            ("NUMBER".to_owned(), "8080".to_owned()),
        ]
    );
    let list = "services:\n  basalt:\n    environment:\n      - A=1\n      - \"B=two words\"\n";
    assert_eq!(
        compose_environment(list, "basalt"),
        vec![
            ("A".to_owned(), "1".to_owned()),
            ("B".to_owned(), "two words".to_owned()),
        ]
    );
    let dockerfile = "FROM a AS build\nENV NOT_THIS=1\nFROM b\nENV A=1 \\\n    B=2\nENV C=3\n";
    assert_eq!(
        dockerfile_env(dockerfile),
        vec![
            ("A".to_owned(), "1".to_owned()),
            ("B".to_owned(), "2".to_owned()),
            ("C".to_owned(), "3".to_owned()),
        ]
    );
    assert_eq!(
        interpolate("${BASALT_JWT_SECRET:?set it}"),
        "a-test-secret-for-compose-that-is-long-enough"
    );
    assert_eq!(interpolate("a$${b}${UNSET:-c}"), "a${b}c");
}

/// The `environment` of one service in a compose file. A small reader for the shape
/// compose.yaml has (block mappings; `KEY: value` or `- KEY=value` entries; plain, single- or
/// double-quoted scalars): anything else fails the test with a message rather than being
/// misread. The whole file is validated against the Compose schema by check-container.sh.
fn compose_environment(yaml: &str, service: &str) -> Vec<(String, String)> {
    let lines: Vec<(usize, &str)> = yaml
        .lines()
        .map(|l| (l.len() - l.trim_start().len(), l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let services = lines
        .iter()
        .position(|&(i, l)| i == 0 && l == "services:")
        .expect("compose.yaml has `services:`");
    let services = block_of(&lines, services + 1, 0);
    let child = services.first().expect("a service").0;
    let at = services
        .iter()
        .position(|&(i, l)| i == child && l == format!("{service}:"))
        .unwrap_or_else(|| panic!("no service `{service}`"));
    let body = block_of(services, at + 1, child);
    let key_indent = body.first().expect("the service's keys").0;
    for (i, l) in body {
        assert!(
            !(*i == key_indent && (l.starts_with("env_file:") || l.starts_with("<<"))),
            "`{l}`: this reader only follows `environment:`; teach it or drop the key"
        );
    }
    let Some(env_at) = body
        .iter()
        .position(|&(i, l)| i == key_indent && l.starts_with("environment:"))
    else {
        return Vec::new();
    };
    assert_eq!(
        body[env_at].1, "environment:",
        "write the environment as a block, not inline"
    );
    block_of(body, env_at + 1, key_indent)
        .iter()
        .map(|(_, l)| {
            if let Some(item) = l.strip_prefix("- ") {
                let item = scalar(item);
                let (k, v) = item
                    .split_once('=')
                    .unwrap_or_else(|| panic!("`{l}`: expected - KEY=value"));
                (k.to_owned(), v.to_owned())
            } else {
                let (k, v) = l
                    .split_once(':')
                    .unwrap_or_else(|| panic!("`{l}`: expected KEY: value"));
                let v = scalar(v.trim());
                assert!(!v.is_empty(), "`{l}`: an empty value is not supported here");
                (k.trim().to_owned(), v)
            }
        })
        .collect()
}

/// The lines of `lines` from `start` that are indented deeper than `indent`.
fn block_of<'a>(
    lines: &'a [(usize, &'a str)],
    start: usize,
    indent: usize,
) -> &'a [(usize, &'a str)] {
    let end = lines[start..]
        .iter()
        .position(|(i, _)| *i <= indent)
        .map_or(lines.len(), |n| start + n);
    &lines[start..end]
}

/// A YAML scalar on one line: quoted (with its escapes), or plain up to a ` #` comment.
fn scalar(raw: &str) -> String {
    if let Some(rest) = raw.strip_prefix('\'') {
        let end = rest.rfind('\'').expect("a closing quote");
        return rest[..end].replace("''", "'");
    }
    if let Some(rest) = raw.strip_prefix('"') {
        let end = rest.rfind('"').expect("a closing quote");
        let body = &rest[..end];
        assert!(
            !body.replace("\\\"", "").contains('\\'),
            "`{raw}`: only \\\" escapes are supported"
        );
        return body.replace("\\\"", "\"");
    }
    assert!(
        !raw.starts_with(['{', '[', '&', '*', '|', '>']),
        "`{raw}`: only plain and quoted scalars are supported"
    );
    raw.split(" #").next().unwrap_or("").trim().to_owned()
}

/// Fills in `${NAME}`, `${NAME:?message}`, `${NAME:-default}` (and the forms without the
/// colon) from [`SHELL`], as compose does from the shell; `$$` is a literal `$`.
fn interpolate(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
            continue;
        }
        let inner = rest
            .strip_prefix('{')
            .and_then(|r| r.split_once('}'))
            .unwrap_or_else(|| panic!("`{value}`: write variables as ${{NAME}}"));
        rest = inner.1;
        let expr = inner.0;
        let name_end = expr
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(expr.len());
        let (name, op) = expr.split_at(name_end);
        let known = SHELL.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
        let op = op.strip_prefix(':').unwrap_or(op);
        match (known, op.chars().next()) {
            (Some(v), _) => out.push_str(v),
            (None, Some('-')) => out.push_str(&op[1..]),
            _ => panic!("compose.yaml needs ${{{name}}} from the shell: add a value to SHELL"),
        }
    }
    out.push_str(rest);
    out
}

/// The `ENV` of a Dockerfile's last stage (unquoted `KEY=value` pairs).
fn dockerfile_env(dockerfile: &str) -> Vec<(String, String)> {
    let joined = dockerfile.replace("\\\n", " ");
    let lines: Vec<&str> = joined.lines().collect();
    let last_stage = lines
        .iter()
        .rposition(|l| l.trim_start().to_uppercase().starts_with("FROM "))
        .expect("a FROM");
    lines[last_stage..]
        .iter()
        .filter_map(|l| l.trim().strip_prefix("ENV "))
        .flat_map(str::split_whitespace)
        .map(|pair| {
            assert!(
                !pair.contains(['"', '\'']),
                "`{pair}`: quoted ENV values are not read here"
            );
            let (k, v) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("`{pair}`: expected KEY=value"));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}
