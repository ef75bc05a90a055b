//! Assembles the application from settings and the enabled domains.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, web};
use anyhow::Context;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing_actix_web::TracingLogger;
use utoipa_swagger_ui::{Config as SwaggerConfig, SwaggerUi};

use crate::config::Settings;
use crate::domains;
use crate::platform::db::{self, SchemaMigrations};
use crate::platform::domain::{check_dependencies, serves_routes};
use crate::platform::error::ApiError;
use crate::platform::events::{self, KafkaMirror, Relay, RelayHandle, Subscriber};
use crate::platform::health::HealthCheck;
use crate::platform::http::logging::BasaltRootSpan;
use crate::platform::http::rate_limit::{self, RateLimiter, RateRules};
use crate::platform::http::routes::Routes;
use crate::platform::http::security_headers::{self, SecurityHeaders};
use crate::platform::http::system::{
    self, Capabilities, Component, DomainCapability, HealthChecks, Infrastructure,
};
use crate::platform::http::{cors, problems, request_id, wire};
use crate::platform::identity::{ApiKeys, TokenVerifier};
use crate::platform::jobs::Job;
use crate::platform::redis::RedisPool;
use crate::platform::revocation::Revocations;
use crate::platform::runtime::RuntimeSettings;
use crate::platform::wakeup::Wakeups;
use crate::platform::{Domain, Platform, metrics, openapi};

/// The compiled-in domains minus those `domains.disabled` turns off, plus `extra`; fails
/// with a one-line message naming the key when the set is not valid.
pub fn enabled_domains(
    settings: &Settings,
    extra: &[Arc<dyn Domain>],
) -> anyhow::Result<Vec<Arc<dyn Domain>>> {
    for name in &settings.domains.disabled {
        anyhow::ensure!(
            domains::ALL.contains(&name.as_str()) || extra.iter().any(|d| d.name() == name),
            "domains.disabled: unknown domain `{name}` (known: {})",
            domains::ALL.join(", ")
        );
    }
    let enabled: Vec<Arc<dyn Domain>> = domains::compiled()
        .into_iter()
        .chain(extra.iter().cloned())
        .filter(|d| !settings.domains.disabled.iter().any(|n| n == d.name()))
        .collect();
    check_dependencies(&enabled).map_err(anyhow::Error::msg)?;
    Ok(enabled)
}

/// Every schema to migrate, the kernel's first.
pub fn migration_targets(enabled: &[Arc<dyn Domain>]) -> Vec<SchemaMigrations> {
    std::iter::once(SchemaMigrations {
        schema: "platform",
        migrator: Some(&db::PLATFORM_MIGRATIONS),
    })
    .chain(enabled.iter().map(|d| SchemaMigrations {
        schema: d.schema(),
        migrator: d.migrations(),
    }))
    .collect()
}

/// Builds an [`Application`]; extra domains and subscribers let embedders (and tests) plug
/// in their own through the same machinery as the built-in ones.
pub struct Builder {
    settings: Settings,
    extra_domains: Vec<Arc<dyn Domain>>,
    extra_subscribers: Vec<Arc<dyn Subscriber>>,
}

impl Builder {
    pub fn domain(mut self, domain: Arc<dyn Domain>) -> Self {
        self.extra_domains.push(domain);
        self
    }

    pub fn subscriber(mut self, subscriber: Arc<dyn Subscriber>) -> Self {
        self.extra_subscribers.push(subscriber);
        self
    }

    pub async fn build(self) -> anyhow::Result<Application> {
        let settings = Arc::new(self.settings);
        // Install the recorder before anything records, or early counts are lost.
        metrics::handle();
        crate::platform::install_tls_provider();
        let enabled = enabled_domains(&settings, &self.extra_domains)?;

        let pool = db::connect(&settings.database).await?;
        if settings.database.migrate_on_start {
            db::migrate(&pool, &migration_targets(&enabled)).await?;
        }
        let redis = RedisPool::connect(&settings.redis)?;
        if redis.is_none() {
            tracing::info!(
                "Redis not configured: rate limits stay in-process (single replica only)"
            );
        }
        let mirror = KafkaMirror::new(&settings.kafka)?.map(Arc::new);
        if mirror.is_none() {
            tracing::info!("Kafka not configured: events go to in-process subscribers only");
        }
        let platform = Platform {
            db: pool.clone(),
            redis: redis.clone(),
            settings: settings.clone(),
            tokens: Arc::new(TokenVerifier::new(&settings.identity)?),
            revocations: Arc::new(Revocations::new(redis.clone())),
            domains: Arc::new(enabled.iter().map(|d| d.name()).collect()),
            event_types: Arc::new(
                enabled
                    .iter()
                    .flat_map(|d| d.events().iter().copied())
                    .collect(),
            ),
            api_keys: Default::default(),
            accounts: Default::default(),
            runtime: RuntimeSettings::new(pool.clone()),
        };
        let rate_rules = platform.runtime.declare(
            "platform",
            "rate_limit",
            RateRules::from_settings(&settings.rate_limit),
            RateRules::validate,
        );
        for domain in &enabled {
            domain.init(&platform)?;
        }
        // Every setting is declared now; apply what administrators stored before serving. A
        // database not migrated yet (`migrate_on_start = false`) has no table: the defaults
        // serve until the refresh job finds one.
        if let Err(e) = platform.runtime.refresh().await {
            tracing::warn!(error = %e, "runtime settings not loaded; the TOML defaults apply");
        }

        let subscribers: Vec<Arc<dyn Subscriber>> = self
            .extra_subscribers
            .into_iter()
            .chain(enabled.iter().flat_map(|d| d.subscribers(&platform)))
            .collect();
        let wakeups = Wakeups::new(pool.clone());
        let relay = Relay::new(
            pool.clone(),
            subscribers,
            mirror.clone(),
            settings.events.clone(),
        )
        .spawn(&wakeups);

        let limiter = web::Data::new(RateLimiter::new(
            &settings.rate_limit,
            rate_rules,
            redis.clone(),
            settings.server.trust_forwarded_for,
        ));
        let checks = health_checks(&platform, &enabled, mirror.clone());
        let jobs_shutdown = CancellationToken::new();
        let mut jobs: Vec<JoinHandle<()>> =
            platform_jobs(&platform, limiter.clone().into_inner(), mirror.is_some())
                .into_iter()
                .chain(enabled.iter().flat_map(|d| d.jobs(&platform)))
                .map(|job| job.spawn(jobs_shutdown.clone(), &wakeups))
                .collect();
        jobs.extend(wakeups.spawn(jobs_shutdown.clone()));

        let listener = TcpListener::bind((settings.server.host.as_str(), settings.server.port))
            .with_context(|| {
                format!(
                    "server.port: cannot listen on {}:{}",
                    settings.server.host, settings.server.port
                )
            })?;
        let port = listener.local_addr()?.port();
        let shared = Shared {
            platform: web::Data::new(platform.clone()),
            verifier: web::Data::from(platform.tokens.clone()),
            revocations: web::Data::from(platform.revocations.clone()),
            api_keys: web::Data::new(platform.api_keys.clone()),
            limiter,
            security: web::Data::new(SecurityHeaders::new(&settings.http.hsts)),
            checks: web::Data::new(HealthChecks(checks)),
            capabilities: web::Data::new(capabilities(&enabled, &platform, mirror.is_some())),
            mirror: web::Data::new(mirror),
            openapi: web::Data::new(openapi::ServedDocument::new(enabled.clone())),
            domains: enabled,
        };
        let server = serve(shared, &settings, listener)?;
        Ok(Application {
            port,
            server,
            relay,
            jobs,
            jobs_shutdown,
            platform,
            shutdown_timeout: Duration::from_secs(settings.server.shutdown_timeout_secs),
        })
    }
}

/// Everything the per-worker app factory clones.
#[derive(Clone)]
struct Shared {
    platform: web::Data<Platform>,
    verifier: web::Data<TokenVerifier>,
    revocations: web::Data<Revocations>,
    api_keys: web::Data<ApiKeys>,
    limiter: web::Data<RateLimiter>,
    security: web::Data<SecurityHeaders>,
    checks: web::Data<HealthChecks>,
    capabilities: web::Data<Capabilities>,
    mirror: web::Data<Option<Arc<KafkaMirror>>>,
    openapi: web::Data<openapi::ServedDocument>,
    domains: Vec<Arc<dyn Domain>>,
}

fn serve(shared: Shared, settings: &Settings, listener: TcpListener) -> anyhow::Result<Server> {
    let json_limit = settings.server.json_limit_bytes;
    let body_limit = settings.server.body_limit_bytes;
    let cors_settings = settings.http.cors.clone();
    let options = wire::ServeOptions {
        workers: settings.server.workers,
        shutdown_timeout_secs: settings.server.shutdown_timeout_secs,
    };
    let server = wire::serve(listener, &options, move || {
        let s = shared.clone();
        let mut app = App::new()
            .app_data(s.platform)
            .app_data(s.verifier)
            .app_data(s.revocations)
            .app_data(s.api_keys)
            .app_data(s.limiter)
            .app_data(s.security)
            .app_data(s.checks)
            .app_data(s.capabilities)
            .app_data(s.mirror)
            .app_data(s.openapi)
            .app_data(problems::json_config(json_limit))
            .app_data(problems::payload_config(body_limit))
            .app_data(problems::query_config())
            .app_data(problems::path_config());
        // Domains first: a scope is a literal prefix, one string compare to pass, while the
        // Swagger UI's and the dead letters' patterns are regexes that every API request
        // would otherwise run before reaching its domain. No domain path is `capabilities`,
        // `events` or `docs`, so nothing else changes.
        for domain in s.domains {
            app = app.service(web::scope(&format!("/api/v1/{}", domain.path())).configure(
                move |cfg| {
                    domain.routes(&mut Routes::new(cfg));
                },
            ));
        }
        app = app
            .configure(system::configure)
            .route(
                openapi::DOCUMENT_PATH,
                web::get().to(|document: web::Data<openapi::ServedDocument>| async move {
                    let json = document.json()?;
                    Ok::<_, ApiError>(
                        HttpResponse::Ok()
                            .content_type("application/json")
                            .body(json),
                    )
                }),
            )
            .service(
                SwaggerUi::new("/docs/{_:.*}").config(SwaggerConfig::new([openapi::DOCUMENT_PATH])),
            )
            .route(
                "/docs",
                web::get().to(|| async {
                    HttpResponse::PermanentRedirect()
                        .insert_header(("Location", "/docs/"))
                        .finish()
                }),
            );
        // Outermost last: the request id wraps everything, so every log line and every error
        // body (even a CORS rejection or a 429) carries it.
        app.default_service(web::to(problems::not_found))
            .wrap(from_fn(rate_limit::middleware))
            .wrap(cors::from_settings(&cors_settings))
            .wrap(from_fn(security_headers::middleware))
            .wrap(from_fn(problems::middleware))
            .wrap(from_fn(metrics::middleware))
            .wrap(TracingLogger::<BasaltRootSpan>::new())
            .wrap(from_fn(request_id::middleware))
    })?;
    Ok(server)
}

fn health_checks(
    platform: &Platform,
    enabled: &[Arc<dyn Domain>],
    mirror: Option<Arc<KafkaMirror>>,
) -> Vec<HealthCheck> {
    let mut checks = Vec::new();
    let pool = platform.db.clone();
    checks.push(HealthCheck::new("database", true, move || {
        let pool = pool.clone();
        Box::pin(async move {
            sqlx::query("SELECT 1").execute(&pool).await?;
            Ok(())
        })
    }));
    // Dead letters do not stop the API, but something is not being done: degraded, with
    // how many, until staff replay them.
    let pool = platform.db.clone();
    checks.push(HealthCheck::new("events", false, move || {
        let pool = pool.clone();
        Box::pin(async move {
            let dead = events::backlog(&pool).await?.dead_letters;
            anyhow::ensure!(
                dead == 0,
                "{dead} dead-lettered event(s): a subscriber gave up on them; see GET /api/v1/events/dead-letters"
            );
            Ok(())
        })
    }));
    if let Some(redis) = platform.redis.clone() {
        checks.push(HealthCheck::new("redis", false, move || {
            let redis = redis.clone();
            Box::pin(async move { redis.ping().await })
        }));
    }
    if let Some(mirror) = mirror {
        checks.push(HealthCheck::new("kafka", false, move || {
            let mirror = mirror.clone();
            Box::pin(async move { mirror.ping().await })
        }));
    }
    // A domain that serves nothing yet is not reported at all, rather than as `ok`.
    for domain in enabled.iter().filter(|d| serves_routes(d.as_ref())) {
        let pool = platform.db.clone();
        let schema = domain.schema();
        checks.push(HealthCheck::new(
            format!("domain:{}", domain.name()),
            true,
            move || {
                let pool = pool.clone();
                Box::pin(async move {
                    anyhow::ensure!(
                        db::schema_exists(&pool, schema).await?,
                        "schema {schema} is missing: run `basalt migrate`"
                    );
                    Ok(())
                })
            },
        ));
        checks.extend(domain.health_checks(platform));
    }
    checks
}

fn platform_jobs(platform: &Platform, limiter: Arc<RateLimiter>, mirror_enabled: bool) -> Vec<Job> {
    let pool = platform.db.clone();
    let retention = platform.settings.events.retention_hours;
    let revocations = platform.revocations.clone();
    let keys = platform.db.clone();
    vec![
        platform.runtime.job(),
        crate::platform::memory::trim_job(),
        Job::new("rate_limit.prune", Duration::from_secs(60), move || {
            limiter.prune();
            revocations.prune();
            Box::pin(async { Ok(()) })
        }),
        Job::new("idempotency.prune", Duration::from_secs(600), move || {
            let keys = keys.clone();
            Box::pin(async move {
                // Up to 1000 a statement; go on while whole batches come back.
                while crate::platform::idempotency::prune(&keys).await? == 1000 {}
                Ok(())
            })
        }),
        Job::new("outbox.prune", Duration::from_secs(3600), move || {
            let pool = pool.clone();
            Box::pin(async move {
                let n = events::prune(&pool, retention, mirror_enabled).await?;
                tracing::debug!(deleted = n, "pruned delivered events");
                Ok(())
            })
        }),
    ]
}

fn capabilities(
    enabled: &[Arc<dyn Domain>],
    platform: &Platform,
    kafka_configured: bool,
) -> Capabilities {
    let compiled = domains::compiled();
    let domains = domains::ALL
        .iter()
        .copied()
        .chain(
            enabled
                .iter()
                .map(|d| d.name())
                .filter(|n| !domains::ALL.contains(n)),
        )
        .map(|name| {
            // Enabled means serving: a domain whose routes have not landed yet is compiled
            // (its feature is on) but offers nothing, so it has no base path.
            let live = enabled
                .iter()
                .find(|d| d.name() == name)
                .filter(|d| serves_routes(d.as_ref()));
            DomainCapability {
                name,
                compiled: compiled.iter().any(|d| d.name() == name) || live.is_some(),
                enabled: live.is_some(),
                base_path: live.map(|d| format!("/api/v1/{}", d.path())),
                offers: live.and_then(|d| d.offers()),
            }
        })
        .collect();
    Capabilities {
        name: "basalt",
        version: env!("CARGO_PKG_VERSION"),
        domains,
        infrastructure: Infrastructure {
            kafka: Component {
                compiled: cfg!(feature = "kafka"),
                configured: kafka_configured,
            },
            redis: Component {
                compiled: cfg!(feature = "redis"),
                configured: platform.redis.is_some(),
            },
            // The storage domain chooses its backend; until it is configured for S3 the
            // local disk serves.
            s3: Component {
                compiled: cfg!(feature = "s3"),
                configured: false,
            },
        },
    }
}

/// A built application: listening, migrated, relay and jobs running.
pub struct Application {
    port: u16,
    server: Server,
    relay: RelayHandle,
    jobs: Vec<JoinHandle<()>>,
    jobs_shutdown: CancellationToken,
    platform: Platform,
    shutdown_timeout: Duration,
}

impl Application {
    pub fn builder(settings: Settings) -> Builder {
        Builder {
            settings,
            extra_domains: Vec::new(),
            extra_subscribers: Vec::new(),
        }
    }

    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::builder(settings).build().await
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    /// Stops the server gracefully from code (signals do the same).
    pub fn server_handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGTERM/SIGINT or a `ServerHandle::stop`: stops accepting, lets in-flight
    /// requests finish (up to `server.shutdown_timeout_secs`), drains the outbox relay,
    /// flushes the Kafka producer, stops the jobs and closes the pool.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let handle = self.server.handle();
        let signals = tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutdown signal received; finishing in-flight requests");
            handle.stop(true).await;
        });
        self.server.await?;
        signals.abort();
        tracing::info!("HTTP server stopped; draining the event relay and background jobs");
        // The relay and the jobs drain side by side, within `server.shutdown_timeout_secs`
        // together: a job stuck mid-run (a webhook that never answers) must not keep the
        // process up past the deadline the orchestrator was promised. What a cut-off job left
        // is claimed again by the next replica (its rows stay queued or time out of `sending`).
        self.jobs_shutdown.cancel();
        let deadline = tokio::time::Instant::now() + self.shutdown_timeout;
        let mut jobs = self.jobs;
        let drained = async {
            futures_util::future::join_all(jobs.iter_mut()).await;
        };
        let (_, drained) = tokio::join!(
            self.relay.shutdown(self.shutdown_timeout),
            tokio::time::timeout_at(deadline, drained)
        );
        if drained.is_err() {
            tracing::warn!(
                timeout = ?self.shutdown_timeout,
                "background jobs did not finish within server.shutdown_timeout_secs; stopping them"
            );
            for job in &jobs {
                job.abort();
            }
        }
        self.platform.db.close().await;
        tracing::info!("shutdown complete");
        Ok(())
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only SIGINT stops the server");
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
