//! Typed settings: `config/default.toml` < the profile (built in, then `config/<profile>.toml`
//! over it) < environment.
//!
//! Environment variables are `BASALT__SECTION__KEY`; `DATABASE_URL`, `REDIS_URL` and
//! `KAFKA_BROKERS` are shortcuts for the usual three. Any of them may instead be given as
//! `<NAME>_FILE`, the path of a file holding the value (Docker and Kubernetes secrets).
//! Secrets are `SecretString`s, so neither `Debug` nor a log line can print them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// The defaults, compiled in so the binary runs from any directory; a `config/default.toml`
/// on disk takes their place when present.
const EMBEDDED_DEFAULTS: &str = include_str!("../config/default.toml");
/// The shipped profiles, compiled in for the same reason. `local` (the default) is empty.
const EMBEDDED_PROFILES: &[(&str, &str)] = &[
    ("local", ""),
    ("production", include_str!("../config/production.toml")),
    ("test", include_str!("../config/test.toml")),
];
const DEV_JWT_SECRET: &str = "basalt-local-development-secret-change-me";
const ENV_PREFIX: &str = "BASALT__";
const KERNEL_SECTIONS: &[&str] = &[
    "server",
    "database",
    "redis",
    "kafka",
    "log",
    "http",
    "rate_limit",
    "events",
    "identity",
    "domains",
];

/// The kernel's sections. A domain's own section (`[auth]`, `[storage]`, ...) is read by the
/// domain with [`Settings::domain_section`]; any other top-level key is refused at load.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(skip)]
    pub profile: String,
    /// Everything loaded, for the domains' sections.
    #[serde(skip)]
    raw: Option<config::Config>,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub kafka: KafkaSettings,
    pub log: LogSettings,
    pub http: HttpSettings,
    pub rate_limit: RateLimitSettings,
    pub events: EventsSettings,
    pub identity: IdentitySettings,
    pub domains: DomainsSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub workers: usize,
    pub shutdown_timeout_secs: u64,
    pub public_base_url: String,
    pub json_limit_bytes: usize,
    pub body_limit_bytes: usize,
    pub trust_forwarded_for: bool,
    /// When set, `/metrics` answers only `Authorization: Bearer <this>` (Prometheus's
    /// `authorization` scrape setting); empty leaves it open, for a private network.
    pub metrics_token: SecretString,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: SecretString,
    pub max_connections: u32,
    pub min_connections: u32,
    pub acquire_timeout_secs: u64,
    /// Every pooled connection starts with this `statement_timeout` (0: none), so a request's
    /// statement needs no `SET` of its own; a path that needs another one says
    /// `SET LOCAL statement_timeout` inside its own transaction.
    #[serde(default = "default_statement_timeout_ms")]
    pub statement_timeout_ms: u64,
    pub migrate_on_start: bool,
}

fn default_statement_timeout_ms() -> u64 {
    5000
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    pub url: SecretString,
    pub pool_size: usize,
    pub timeout_ms: u64,
}

impl RedisSettings {
    /// The URL when one is configured; an empty string means "no Redis".
    pub fn url(&self) -> Option<&str> {
        Some(self.url.expose_secret()).filter(|u| !u.is_empty())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSettings {
    pub brokers: String,
    pub topic_prefix: String,
    /// Topics of their own for some events; the rest go to `<topic_prefix>.<domain>`.
    #[serde(default)]
    pub topics: Vec<TopicRoute>,
    pub client_id: String,
    pub message_timeout_ms: u64,
    pub partitions: i32,
    pub replication_factor: i32,
}

/// `[[kafka.topics]]`: the events `match` names go to `topic`. A list rather than a map
/// because event types hold dots, which configuration keys cannot.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicRoute {
    /// An event type (`user.registered`), a family (`user.*`) or a source domain (`auth`).
    #[serde(rename = "match")]
    pub matches: String,
    pub topic: String,
    /// The type name these events carry on Kafka, for consumers that expect another
    /// (the seeds' `user.logged-in` for `user.logged_in`); in-process names never change.
    #[serde(default)]
    pub event_type: Option<String>,
}

impl KafkaSettings {
    pub fn brokers(&self) -> Option<&str> {
        Some(self.brokers.trim()).filter(|b| !b.is_empty())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    pub filter: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    pub cors: CorsSettings,
    pub hsts: HstsSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsSettings {
    pub allowed_origins: Vec<String>,
    pub allow_credentials: bool,
    pub max_age_secs: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HstsSettings {
    pub enabled: bool,
    pub max_age_secs: u64,
    pub include_subdomains: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    pub enabled: bool,
    pub default: RatePolicy,
    pub routes: Vec<RoutePolicy>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatePolicy {
    pub requests: u32,
    pub window_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutePolicy {
    pub prefix: String,
    pub requests: u32,
    pub window_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsSettings {
    pub poll_interval_ms: u64,
    pub batch_size: i64,
    pub max_attempts: i32,
    pub retention_hours: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentitySettings {
    /// The HS256 secret; also the root the `auth` domain derives its refresh-token key from.
    pub jwt_secret: SecretString,
    pub issuer: String,
    pub audience: String,
    /// `HS256` (the secret above), or `EdDSA` / `RS256` with `keys`.
    #[serde(default = "default_algorithm")]
    pub algorithm: String,
    /// Asymmetric signing keys, newest first: the first signs, every one verifies (keep an
    /// old key listed until the last token it signed has expired). Published at
    /// /.well-known/jwks.json.
    #[serde(default)]
    pub keys: Vec<SigningKey>,
}

fn default_algorithm() -> String {
    "HS256".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningKey {
    /// The `kid` tokens carry.
    pub kid: String,
    /// A PKCS#8 PEM private key (Ed25519 for EdDSA, RSA for RS256).
    pub private_key_file: std::path::PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainsSettings {
    pub disabled: Vec<String>,
}

/// A configuration problem, worded as one line that names the key.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

impl Settings {
    /// Loads from `BASALT_CONFIG_DIR` (default `config`) and `BASALT_PROFILE` (default `local`)
    /// and the process environment.
    pub fn load() -> Result<Self, ConfigError> {
        let dir = std::env::var("BASALT_CONFIG_DIR").unwrap_or_else(|_| "config".into());
        let profile = std::env::var("BASALT_PROFILE").unwrap_or_else(|_| "local".into());
        Self::load_from(Path::new(&dir), &profile, std::env::vars().collect())
    }

    /// Loads with an explicit directory, profile and environment (tests use this).
    pub fn load_from(
        dir: &Path,
        profile: &str,
        env: HashMap<String, String>,
    ) -> Result<Self, ConfigError> {
        use config::{Config, Environment, File, FileFormat};

        let env = resolve_env(env)?;
        let defaults = dir.join("default.toml");
        let mut builder = Config::builder();
        builder = if defaults.exists() {
            builder.add_source(File::from(defaults))
        } else {
            builder.add_source(File::from_str(EMBEDDED_DEFAULTS, FileFormat::Toml))
        };
        // The built-in profile, then a file of the same name on disk over it (its keys win);
        // a profile that is neither is a mistake to stop at, not one to run past on defaults.
        let profile_file: PathBuf = dir.join(format!("{profile}.toml"));
        let embedded = EMBEDDED_PROFILES.iter().find(|(name, _)| *name == profile);
        if embedded.is_none() && !profile_file.exists() {
            let known: Vec<&str> = EMBEDDED_PROFILES.iter().map(|(name, _)| *name).collect();
            return Err(ConfigError(format!(
                "BASALT_PROFILE={profile}: no such profile (built in: {}; or put {} in place)",
                known.join(", "),
                profile_file.display()
            )));
        }
        if let Some((_, text)) = embedded {
            builder = builder.add_source(File::from_str(text, FileFormat::Toml));
        }
        builder = builder.add_source(File::from(profile_file).required(false));

        let basalt_vars: HashMap<String, String> = env
            .iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        builder = builder.add_source(
            Environment::with_prefix("BASALT")
                .prefix_separator("__")
                .separator("__")
                .list_separator(",")
                .with_list_parse_key("http.cors.allowed_origins")
                .with_list_parse_key("domains.disabled")
                .try_parsing(true)
                .source(Some(basalt_vars)),
        );
        for (var, key) in [
            ("DATABASE_URL", "database.url"),
            ("REDIS_URL", "redis.url"),
            ("KAFKA_BROKERS", "kafka.brokers"),
        ] {
            builder = builder
                .set_override_option(key, env.get(var).cloned())
                .map_err(|e| ConfigError(e.to_string()))?;
        }

        let raw = builder.build().map_err(|e| ConfigError(e.to_string()))?;
        let mut settings: Settings = raw
            .clone()
            .try_deserialize()
            .map_err(|e| ConfigError(e.to_string()))?;
        let top: HashMap<String, config::Value> = raw
            .clone()
            .try_deserialize()
            .map_err(|e| ConfigError(e.to_string()))?;
        for key in top.keys() {
            let domain_key = crate::domains::ALL
                .iter()
                .any(|d| d.replace('-', "_") == *key);
            if !KERNEL_SECTIONS.contains(&key.as_str()) && !domain_key {
                return Err(ConfigError(format!(
                    "{key}: unknown section (known: {}, and one per domain)",
                    KERNEL_SECTIONS.join(", ")
                )));
            }
        }
        settings.profile = profile.to_owned();
        settings.raw = Some(raw);
        settings.validate()?;
        Ok(settings)
    }

    /// A domain's section, e.g. `[auth]` (`BASALT__AUTH__...`), over the domain's defaults.
    /// Errors name the key, like every configuration error.
    pub fn domain_section<T: serde::de::DeserializeOwned + Default>(
        &self,
        domain: &str,
    ) -> Result<T, ConfigError> {
        let key = domain.replace('-', "_");
        match self.raw.as_ref().map(|raw| raw.get::<T>(&key)) {
            None | Some(Err(config::ConfigError::NotFound(_))) => Ok(T::default()),
            Some(Ok(section)) => Ok(section),
            Some(Err(e)) => Err(ConfigError(format!("{key}: {e}"))),
        }
    }

    /// Whether the server listens on loopback only (`127.0.0.0/8`, `::1`, `localhost`).
    fn loopback_only(&self) -> bool {
        let host = self
            .server
            .host
            .trim_start_matches('[')
            .trim_end_matches(']');
        host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let fail = |key: &str, why: &str| Err(ConfigError(format!("{key}: {why}")));
        let db = self.database.url.expose_secret();
        if !(db.starts_with("postgres://") || db.starts_with("postgresql://")) {
            return fail(
                "database.url",
                "must be a postgres:// URL (set DATABASE_URL or BASALT__DATABASE__URL)",
            );
        }
        if self.database.max_connections < 2 {
            return fail(
                "database.max_connections",
                "must be at least 2 (the event relay holds one)",
            );
        }
        if let Some(url) = self.redis.url()
            && !(url.starts_with("redis://") || url.starts_with("rediss://"))
        {
            return fail("redis.url", "must be a redis:// or rediss:// URL, or empty");
        }
        if let Some(r) = self.kafka.topics.iter().find(|r| {
            r.event_type.is_some() && (r.matches.ends_with(".*") || !r.matches.contains('.'))
        }) {
            return Err(ConfigError(format!(
                "kafka.topics: `event_type` renames one event type; `{}` names a family or a domain",
                r.matches
            )));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.filter).is_err() {
            return fail("log.filter", "is not a valid filter (RUST_LOG syntax)");
        }
        if self.server.json_limit_bytes == 0 || self.server.body_limit_bytes == 0 {
            return fail("server.json_limit_bytes", "body limits must be above zero");
        }
        for origin in &self.http.cors.allowed_origins {
            if origin != "*" && !(origin.starts_with("http://") || origin.starts_with("https://")) {
                return fail(
                    "http.cors.allowed_origins",
                    &format!("{origin:?} is neither \"*\" nor an http(s) origin"),
                );
            }
        }
        if self.http.cors.allow_credentials
            && self.http.cors.allowed_origins.iter().any(|o| o == "*")
        {
            return fail(
                "http.cors.allow_credentials",
                "cannot be true while allowed_origins contains \"*\"",
            );
        }
        let policies = std::iter::once(("rate_limit.default", self.rate_limit.default)).chain(
            self.rate_limit.routes.iter().map(|r| {
                (
                    "rate_limit.routes",
                    RatePolicy {
                        requests: r.requests,
                        window_secs: r.window_secs,
                    },
                )
            }),
        );
        for (key, p) in policies {
            if p.requests == 0 || p.window_secs == 0 {
                return fail(key, "requests and window_secs must be above zero");
            }
        }
        if self.events.batch_size < 1 || self.events.poll_interval_ms == 0 {
            return fail(
                "events.batch_size",
                "batch_size and poll_interval_ms must be above zero",
            );
        }
        let secret = self.identity.jwt_secret.expose_secret();
        if secret.len() < 32 {
            return fail("identity.jwt_secret", "must be at least 32 bytes");
        }
        if !matches!(
            self.identity.algorithm.as_str(),
            "HS256" | "EdDSA" | "RS256"
        ) {
            return fail("identity.algorithm", "must be HS256, EdDSA or RS256");
        }
        if self.identity.algorithm != "HS256" && self.identity.keys.is_empty() {
            return fail(
                "identity.keys",
                "EdDSA and RS256 need at least one signing key",
            );
        }
        // Anyone can sign tokens with the well-known default: fine on a developer's loopback,
        // never in production nor wherever other machines can reach the server.
        if secret == DEV_JWT_SECRET && (self.profile == "production" || !self.loopback_only()) {
            return fail(
                "identity.jwt_secret",
                "is still the development default, which only a server listening on loopback \
                 may use; set BASALT__IDENTITY__JWT_SECRET(_FILE)",
            );
        }
        Ok(())
    }
}

/// Replaces every `<NAME>_FILE` variable by `<NAME>` holding the file's contents.
fn resolve_env(mut env: HashMap<String, String>) -> Result<HashMap<String, String>, ConfigError> {
    let file_vars: Vec<(String, String)> = env
        .iter()
        .filter(|(k, _)| {
            k.ends_with("_FILE")
                && (k.starts_with(ENV_PREFIX)
                    || matches!(
                        k.as_str(),
                        "DATABASE_URL_FILE" | "REDIS_URL_FILE" | "KAFKA_BROKERS_FILE"
                    ))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (var, path) in file_vars {
        env.remove(&var);
        let name = var.trim_end_matches("_FILE").to_owned();
        let value = std::fs::read_to_string(&path)
            .map_err(|e| ConfigError(format!("{var}: cannot read {path:?}: {e}")))?;
        env.insert(name, value.trim_end_matches(['\r', '\n']).to_owned());
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seeds' topic mapping, as the README gives it, loads from a profile file: event
    /// types keep their dots (a map keyed by them would be split at each dot).
    #[test]
    fn kafka_topic_routes_load_from_a_profile() {
        let dir = std::env::temp_dir().join(format!("basalt-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("seeds.toml"),
            "[[kafka.topics]]\nmatch = \"user.*\"\ntopic = \"user-events\"\n\n\
             [[kafka.topics]]\nmatch = \"session.revoked\"\ntopic = \"auth-events\"\n",
        )
        .unwrap();
        let settings = Settings::load_from(&dir, "seeds", HashMap::new()).unwrap();
        std::fs::remove_dir_all(&dir).ok();
        let routes: Vec<(&str, &str)> = settings
            .kafka
            .topics
            .iter()
            .map(|r| (r.matches.as_str(), r.topic.as_str()))
            .collect();
        assert_eq!(
            routes,
            vec![
                ("user.*", "user-events"),
                ("session.revoked", "auth-events")
            ]
        );
    }
}
