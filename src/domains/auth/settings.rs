//! The `[auth]` configuration section (`BASALT__AUTH__...`).

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// Access-token lifetime.
    pub access_ttl_secs: u64,
    /// Refresh-token (session) lifetime.
    pub refresh_ttl_days: u64,
    /// How long the refresh token just rotated away still returns the same new pair, so tabs
    /// refreshing at once do not log the user out.
    pub refresh_grace_secs: u64,
    /// OWASP ASVS level 2: at least 12 characters, at most 128, no composition rules.
    pub min_password_length: usize,
    pub max_password_length: usize,
    /// Whether an account must verify its email before it can log in.
    pub require_verified_email: bool,
    pub verification_ttl_hours: u64,
    pub reset_ttl_minutes: u64,
    /// Failed logins per account before it is locked for `lockout_secs`.
    pub max_failures_per_account: u32,
    /// Failed logins per IP (any accounts) before the IP is locked for `lockout_secs`.
    pub max_failures_per_ip: u32,
    /// The failure window and the lockout (growing to an hour as failures repeat).
    pub lockout_secs: u64,
    /// Forgot-password and verification-resend requests per account per hour.
    pub mail_requests_per_hour: u32,
    /// Accounts registered with these emails get the `admin` role: how the first
    /// administrator comes to exist. A list, or comma-separated from the environment.
    #[serde(deserialize_with = "list_or_commas")]
    pub admin_emails: Vec<String>,
}

fn list_or_commas<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        List(Vec<String>),
        Commas(String),
    }
    Ok(match Either::deserialize(d)? {
        Either::List(list) => list,
        Either::Commas(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            access_ttl_secs: 900,
            refresh_ttl_days: 30,
            refresh_grace_secs: 10,
            min_password_length: 12,
            max_password_length: 128,
            require_verified_email: false,
            verification_ttl_hours: 24,
            reset_ttl_minutes: 60,
            max_failures_per_account: 10,
            max_failures_per_ip: 100,
            lockout_secs: 900,
            mail_requests_per_hour: 5,
            admin_emails: Vec::new(),
        }
    }
}

impl AuthSettings {
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.access_ttl_secs >= 30,
            "auth.access_ttl_secs: must be at least 30"
        );
        anyhow::ensure!(
            (8..=self.max_password_length).contains(&self.min_password_length),
            "auth.min_password_length: must be between 8 and auth.max_password_length"
        );
        anyhow::ensure!(
            self.max_password_length <= 1024,
            "auth.max_password_length: at most 1024 (argon2 input is bounded)"
        );
        anyhow::ensure!(
            self.max_failures_per_account >= 1 && self.max_failures_per_account <= 100,
            "auth.max_failures_per_account: between 1 and 100"
        );
        Ok(())
    }
}
