//! Health checks: named probes run concurrently, each bounded by a timeout. A failing
//! critical check (database, an enabled domain) makes the service `down` (503); a failing
//! optional one (Redis, Kafka: the service degrades but keeps serving) makes it `degraded`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use serde::Serialize;
use utoipa::ToSchema;

type CheckFn = dyn Fn() -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync;

const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Clone)]
pub struct HealthCheck {
    pub name: String,
    pub critical: bool,
    check: Arc<CheckFn>,
}

impl HealthCheck {
    pub fn new<F>(name: impl Into<String>, critical: bool, check: F) -> Self
    where
        F: Fn() -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync + 'static,
    {
        Self {
            name: name.into(),
            critical,
            check: Arc::new(check),
        }
    }

    async fn run(&self) -> CheckReport {
        let started = Instant::now();
        let outcome = tokio::time::timeout(CHECK_TIMEOUT, (self.check)()).await;
        let error = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("{e:#}")),
            Err(_) => Some(format!("no answer within {CHECK_TIMEOUT:?}")),
        };
        CheckReport {
            name: self.name.clone(),
            status: if error.is_none() {
                Status::Ok
            } else {
                Status::Down
            },
            critical: self.critical,
            latency_ms: started.elapsed().as_secs_f64() * 1000.0,
            error,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Degraded,
    Down,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CheckReport {
    /// `database`, `redis`, `kafka`, or `domain:<name>` and a domain's own checks.
    pub name: String,
    pub status: Status,
    /// Whether a failure makes the whole service unavailable.
    pub critical: bool,
    pub latency_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HealthReport {
    pub status: Status,
    pub version: String,
    pub checks: Vec<CheckReport>,
}

/// Runs `checks` concurrently and folds them into one report.
pub async fn run(checks: &[HealthCheck]) -> HealthReport {
    let checks = futures_util::future::join_all(checks.iter().map(HealthCheck::run)).await;
    let status = if checks.iter().any(|c| c.critical && c.status != Status::Ok) {
        Status::Down
    } else if checks.iter().any(|c| c.status != Status::Ok) {
        Status::Degraded
    } else {
        Status::Ok
    };
    HealthReport {
        status,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        checks,
    }
}
