//! The contract every domain implements. `src/domains/mod.rs` lists the compiled-in domains;
//! the kernel does the rest: creates and migrates the schema, mounts the routes under
//! `/api/v1/<path>`, merges the OpenAPI document, registers the subscribers, health checks
//! and background jobs.

use std::sync::{Arc, OnceLock};

use actix_web::web;
use sqlx::migrate::Migrator;

use super::Platform;
use super::events::Subscriber;
use super::health::HealthCheck;
use super::http::routes::{Mounted, Routes};
use super::jobs::Job;

pub trait Domain: Send + Sync + 'static {
    /// The Cargo feature's name.
    fn name(&self) -> &'static str;
    /// The route prefix under `/api/v1/`; the name unless the API reads better otherwise
    /// (`baas-database` serves `/api/v1/databases`).
    fn path(&self) -> &'static str {
        self.name()
    }
    /// The PostgreSQL schema the domain owns (lower-case letters and underscores).
    fn schema(&self) -> &'static str;
    /// The event types this domain publishes (webhook subscriptions are checked against
    /// them).
    fn events(&self) -> &'static [&'static str] {
        &[]
    }
    /// Domains whose public `api` module this one calls; they must be enabled too.
    fn depends_on(&self) -> &'static [&'static str] {
        &[]
    }
    /// Prepares the domain once per application, before routes are mounted: reads its
    /// configuration section (`platform.settings.domain_section`) and builds its state. An
    /// error stops start-up with its message.
    fn init(&self, _platform: &Platform) -> anyhow::Result<()> {
        Ok(())
    }
    /// The domain's migrations (`migrations/<schema>/`), tracked inside its schema.
    fn migrations(&self) -> Option<&'static Migrator> {
        None
    }
    /// Mounts the domain's routes; the kernel has already scoped them to `/api/v1/<path>`.
    /// A domain that mounts none (one whose issue has not landed yet) is compiled but not
    /// offered: capabilities say so and `/health` leaves it out.
    fn routes(&self, _routes: &mut Routes) {}
    /// The stable error codes of the domain's error enum (`XError::CODES`), with statuses.
    fn error_codes(&self) -> &'static [(&'static str, actix_web::http::StatusCode)] {
        &[]
    }
    /// The OpenAPI document of those routes, with paths relative to `/api/v1/<path>`.
    fn openapi(&self) -> utoipa::openapi::OpenApi {
        utoipa::openapi::OpenApiBuilder::new().build()
    }
    /// What the domain offers beyond its routes, as `/api/v1/capabilities` lists it under
    /// the domain (`offers`): e.g. the orders domain's configured payment providers. Only
    /// what this deployment has configured; `None`: nothing to say.
    fn offers(&self) -> Option<serde_json::Value> {
        None
    }
    /// In-process subscribers to the event bus.
    fn subscribers(&self, _platform: &Platform) -> Vec<Arc<dyn Subscriber>> {
        Vec::new()
    }
    /// Checks beyond the kernel's default one (the schema exists), shown on /health.
    fn health_checks(&self, _platform: &Platform) -> Vec<HealthCheck> {
        Vec::new()
    }
    /// Periodic background work, stopped on shutdown.
    fn jobs(&self, _platform: &Platform) -> Vec<Job> {
        Vec::new()
    }
}

/// A domain's shared state: built once by `init`, handed to its handlers as `web::Data<T>`
/// and to its subscribers and jobs by `get`.
pub struct DomainState<T>(OnceLock<Arc<T>>);

impl<T> Default for DomainState<T> {
    fn default() -> Self {
        Self(OnceLock::new())
    }
}

impl<T: 'static> DomainState<T> {
    /// Stores the state; a second call (the same domain value initialised twice) keeps the first.
    pub fn set(&self, state: T) {
        let _ = self.0.set(Arc::new(state));
    }

    pub fn get(&self) -> Option<Arc<T>> {
        self.0.get().cloned()
    }

    /// Makes the state available to the domain's handlers; call it from `routes`.
    pub fn register(&self, routes: &mut Routes) {
        if let Some(state) = self.0.get() {
            routes.config().app_data(web::Data::from(state.clone()));
        }
    }
}

/// Checks the enabled set is closed under `depends_on`, naming the config key to change.
pub fn check_dependencies(enabled: &[Arc<dyn Domain>]) -> Result<(), String> {
    for domain in enabled {
        // Domains are mounted before the kernel's own `/api/v1/...` routes (app.rs), and a
        // scope answers everything under its prefix: a domain at one of these paths would
        // hide them.
        if KERNEL_API_PATHS.contains(&domain.path()) {
            return Err(format!(
                "domain `{}` may not serve /api/v1/{}: the kernel serves it",
                domain.name(),
                domain.path()
            ));
        }
        for dep in domain.depends_on() {
            if !enabled.iter().any(|d| d.name() == *dep) {
                return Err(format!(
                    "domains.disabled: `{}` needs `{dep}`, which is disabled",
                    domain.name()
                ));
            }
        }
    }
    Ok(())
}

/// The first segments under `/api/v1/` that the kernel serves itself.
pub const KERNEL_API_PATHS: &[&str] = &["capabilities", "events"];

/// Every operation a domain mounts, with its full path (`/api/v1/<path>/...`): mounted on a
/// throw-away app, so it needs neither a database nor a running server.
pub fn route_table(domain: &dyn Domain) -> Vec<Mounted> {
    let mut mounted = Vec::new();
    let _ = actix_web::App::new().configure(|cfg| {
        let mut routes = Routes::new(cfg);
        domain.routes(&mut routes);
        mounted = routes.mounted();
    });
    for m in &mut mounted {
        m.path = format!("/api/v1/{}{}", domain.path(), m.path);
    }
    mounted
}

/// Whether the domain serves anything yet.
pub fn serves_routes(domain: &dyn Domain) -> bool {
    !route_table(domain).is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct At(&'static str);

    impl Domain for At {
        fn name(&self) -> &'static str {
            "somewhere"
        }
        fn path(&self) -> &'static str {
            self.0
        }
        fn schema(&self) -> &'static str {
            "somewhere"
        }
    }

    #[test]
    fn a_domain_may_not_take_a_path_the_kernel_serves() {
        for path in KERNEL_API_PATHS {
            let err = check_dependencies(&[Arc::new(At(path)) as Arc<dyn Domain>]).unwrap_err();
            assert!(err.contains(path), "{err}");
        }
        assert!(check_dependencies(&[Arc::new(At("elsewhere")) as Arc<dyn Domain>]).is_ok());
    }
}
