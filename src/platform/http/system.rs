//! The kernel's own endpoints: health for people and orchestrators, Prometheus metrics, and
//! the capabilities a client can rely on.

use actix_web::http::header::ContentType;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::ExposeSecret;
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::platform::Platform;
use crate::platform::error::{ApiError, Problem};
use crate::platform::events::KafkaMirror;
use crate::platform::health::{self as checks_runner, HealthCheck, HealthReport, Status};
use crate::platform::identity::{TokenVerifier, bearer_token};

/// Every check the app runs for /health, and the critical subset for /health/ready.
pub struct HealthChecks(pub Vec<HealthCheck>);

/// What this build and configuration offer, computed once at start-up.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Capabilities {
    pub name: &'static str,
    pub version: &'static str,
    /// Every Basalt domain, whether compiled into this binary and enabled by configuration.
    pub domains: Vec<DomainCapability>,
    pub infrastructure: Infrastructure,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DomainCapability {
    pub name: &'static str,
    pub compiled: bool,
    pub enabled: bool,
    /// Where its routes live, when enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_path: Option<String>,
    /// What the domain offers that is configured here (orders: `payment_providers`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub offers: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Infrastructure {
    pub kafka: Component,
    pub redis: Component,
    pub s3: Component,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct Component {
    /// Built with the Cargo feature.
    pub compiled: bool,
    /// Compiled and configured, so in use.
    pub configured: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Liveness {
    pub status: Status,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    // Resources with method routes (not `#[get]` guards), so a wrong method is a 405.
    cfg.service(web::resource("/health").route(web::get().to(health_report)))
        .service(web::resource("/health/live").route(web::get().to(live)))
        .service(web::resource("/health/ready").route(web::get().to(ready)))
        .service(web::resource("/metrics").route(web::get().to(metrics)))
        .service(web::resource("/api/v1/capabilities").route(web::get().to(capabilities)))
        .service(web::resource("/.well-known/jwks.json").route(web::get().to(jwks)))
        .configure(super::dead_letters::configure);
}

/// Aggregated health of every dependency and enabled domain.
#[utoipa::path(
    get,
    path = "/health",

    tag = "system",
    responses(
        (status = 200, description = "Every critical check passes (status ok or degraded)", body = HealthReport),
        (status = 503, description = "A critical check fails", body = HealthReport),
    )
)]
pub async fn health_report(checks: web::Data<HealthChecks>) -> HttpResponse {
    let report = checks_runner::run(&checks.0).await;
    respond(report)
}

/// Liveness: the process serves HTTP. Never touches a dependency.
#[utoipa::path(
    get,
    path = "/health/live",
   tag = "system", responses((status = 200, body = Liveness)))]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(Liveness { status: Status::Ok })
}

/// Readiness: the critical checks (database, enabled domains' schemas) pass.
#[utoipa::path(
    get,
    path = "/health/ready",

    tag = "system",
    responses(
        (status = 200, description = "Ready for traffic", body = HealthReport),
        (status = 503, description = "Not ready", body = HealthReport),
    )
)]
pub async fn ready(checks: web::Data<HealthChecks>) -> HttpResponse {
    let critical: Vec<HealthCheck> = checks.0.iter().filter(|c| c.critical).cloned().collect();
    respond(checks_runner::run(&critical).await)
}

fn respond(report: HealthReport) -> HttpResponse {
    if report.status == Status::Down {
        HttpResponse::ServiceUnavailable().json(report)
    } else {
        HttpResponse::Ok().json(report)
    }
}

/// Lets a scrape through when no token is configured or it carries the token. Digests are
/// compared, so the time taken says nothing about the token.
fn scrape_allowed(req: &HttpRequest, token: &str) -> Result<(), ApiError> {
    if token.is_empty() {
        return Ok(());
    }
    let given = bearer_token(req).unwrap_or_default();
    if Sha256::digest(given.as_bytes()) == Sha256::digest(token.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::unauthorized(
            "Send the metrics token: Authorization: Bearer <server.metrics_token>.",
        ))
    }
}

/// Prometheus metrics: requests by route and status, latency histograms, database pool use,
/// outbox backlog and age, dead letters, events relayed.
#[utoipa::path(
    get,
    path = "/metrics",

    tag = "system",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Prometheus text exposition format", body = String, content_type = "text/plain; version=0.0.4"),
        (status = 401, description = "`server.metrics_token` is set and the request does not carry it", body = Problem, content_type = "application/problem+json"),
        (status = 500, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn metrics(
    req: HttpRequest,
    platform: web::Data<Platform>,
    mirror: web::Data<Option<std::sync::Arc<KafkaMirror>>>,
) -> Result<HttpResponse, ApiError> {
    scrape_allowed(&req, platform.settings.server.metrics_token.expose_secret())?;
    let pool = &platform.db;
    let size = f64::from(pool.size());
    let idle = pool.num_idle() as f64;
    ::metrics::gauge!("basalt_db_pool_connections", "state" => "idle").set(idle);
    ::metrics::gauge!("basalt_db_pool_connections", "state" => "in_use").set(size - idle);
    ::metrics::gauge!("basalt_db_pool_max_connections")
        .set(f64::from(pool.options().get_max_connections()));
    // The backlog query is cheap (partial indexes), but a scrape must not fail because the
    // database is slow: keep the last figures then.
    if let Ok(Ok(b)) = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        crate::platform::events::backlog(pool),
    )
    .await
    {
        ::metrics::gauge!("basalt_outbox_backlog", "queue" => "subscribers")
            .set(b.undispatched as f64);
        ::metrics::gauge!("basalt_outbox_oldest_age_seconds", "queue" => "subscribers")
            .set(b.oldest_undispatched_secs.unwrap_or(0.0));
        ::metrics::gauge!("basalt_outbox_dead_letters").set(b.dead_letters as f64);
        if mirror.is_some() {
            ::metrics::gauge!("basalt_outbox_backlog", "queue" => "kafka").set(b.unmirrored as f64);
            ::metrics::gauge!("basalt_outbox_oldest_age_seconds", "queue" => "kafka")
                .set(b.oldest_unmirrored_secs.unwrap_or(0.0));
        }
    }
    Ok(HttpResponse::Ok()
        .insert_header(ContentType(
            "text/plain; version=0.0.4; charset=utf-8"
                .parse()
                .map_err(ApiError::internal)?,
        ))
        .body(crate::platform::metrics::handle().render()))
}

/// The domains and infrastructure this deployment offers.
#[utoipa::path(
    get,
    path = "/api/v1/capabilities",
   tag = "system", responses((status = 200, body = Capabilities)))]
pub async fn capabilities(caps: web::Data<Capabilities>) -> HttpResponse {
    HttpResponse::Ok().json(caps.get_ref())
}

/// The public keys access tokens are signed with (EdDSA or RS256), so other services can
/// verify them; empty when tokens use the shared HS256 secret.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "system",
    responses((status = 200, description = "RFC 7517 JSON Web Key Set", body = Object))
)]
pub async fn jwks(tokens: web::Data<TokenVerifier>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(tokens.jwks())
}
