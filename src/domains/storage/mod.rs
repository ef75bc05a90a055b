//! The storage domain: buckets owned by users, files streamed to local disk or any
//! S3-compatible store, resumable (tus) uploads, downloads with ranges and signed URLs,
//! versions, tags and metadata, image variants and previews, and per-user quotas.
//!
//! Schema `storage`; routes under `/api/v1/storage`. Publishes `storage.bucket.*`,
//! `storage.file.uploaded`, `storage.file.deleted` and `storage.variant.created` (source
//! `storage`, see `events`); consumes its own `storage.file.uploaded` to queue image
//! variants, which a job makes. Calls no other domain.
//!
//! Resource files (`buckets`, `files`, `download`, `versions`, `variants`, `tus`) carry
//! their handlers, routes and OpenAPI paths; they share `access` (what a caller may see),
//! `upload` (the one upload pipeline) and `serve` (sending bytes back), which sit on
//! `state` and `repo`. Imports go that way only.

mod access;
mod backend;
mod buckets;
mod download;
mod error;
mod events;
mod files;
mod images;
mod model;
mod repo;
mod serve;
mod settings;
mod signing;
mod sniff;
mod state;
mod tus;
mod upload;
mod variants;
mod versions;

use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::Migrator;
use utoipa::OpenApi;

use crate::platform::domain::DomainState;
use crate::platform::events::Subscriber;
use crate::platform::health::HealthCheck;
use crate::platform::http::Routes;
use crate::platform::jobs::Job;
use crate::platform::{Domain, Platform};

pub use settings::StorageSettings;
use state::StorageState;

static MIGRATIONS: Migrator = sqlx::migrate!("migrations/storage");

#[derive(Default)]
pub struct Storage {
    state: DomainState<StorageState>,
}

impl Domain for Storage {
    fn name(&self) -> &'static str {
        "storage"
    }

    fn schema(&self) -> &'static str {
        "storage"
    }

    fn events(&self) -> &'static [&'static str] {
        events::TYPES
    }

    fn init(&self, platform: &Platform) -> anyhow::Result<()> {
        let settings: StorageSettings = platform.settings.domain_section("storage")?;
        settings.validate()?;
        self.state.set(StorageState {
            store: backend::open(&settings)?,
            signer: signing::UrlSigner::derive(&platform.settings.identity),
            public_base: platform
                .settings
                .server
                .public_base_url
                .trim_end_matches('/')
                .to_owned(),
            db: platform.db.clone(),
            decode_budget: tokio::sync::Semaphore::new(settings.decode_budget_kib() as usize),
            decode_budget_kib: settings.decode_budget_kib(),
            settings,
        });
        Ok(())
    }

    fn migrations(&self) -> Option<&'static Migrator> {
        Some(&MIGRATIONS)
    }

    fn routes(&self, routes: &mut Routes) {
        self.state.register(routes);
        buckets::configure(routes);
        files::configure(routes);
        download::configure(routes);
        versions::configure(routes);
        variants::configure(routes);
        tus::configure(routes);
    }

    fn error_codes(&self) -> &'static [(&'static str, actix_web::http::StatusCode)] {
        error::StorageError::CODES
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        let mut doc = buckets::BucketsApi::openapi();
        doc.merge(files::FilesApi::openapi());
        doc.merge(download::DownloadApi::openapi());
        doc.merge(versions::VersionsApi::openapi());
        doc.merge(variants::VariantsApi::openapi());
        doc.merge(tus::TusApi::openapi());
        doc.merge(events::EventsApi::openapi());
        doc
    }

    fn subscribers(&self, _platform: &Platform) -> Vec<Arc<dyn Subscriber>> {
        vec![variants::subscriber()]
    }

    fn health_checks(&self, _platform: &Platform) -> Vec<HealthCheck> {
        let Some(state) = self.state.get() else {
            return Vec::new();
        };
        vec![HealthCheck::new("storage-backend", true, move || {
            let state = state.clone();
            Box::pin(async move { state.backend_reachable().await })
        })]
    }

    fn jobs(&self, _platform: &Platform) -> Vec<Job> {
        let Some(state) = self.state.get() else {
            return Vec::new();
        };
        let (variants, collect, expire) = (state.clone(), state.clone(), state.clone());
        vec![
            Job::new(
                "storage.variants",
                Duration::from_millis(state.settings.variants_poll_ms),
                move || {
                    let state = variants.clone();
                    Box::pin(async move { variants::run_due(&state).await })
                },
            )
            .woken_by(repo::VARIANTS_CHANNEL),
            Job::new(
                "storage.collect",
                Duration::from_millis(state.settings.gc_interval_ms),
                move || {
                    let state = collect.clone();
                    Box::pin(async move { state.collect().await })
                },
            ),
            Job::new(
                "storage.expire_uploads",
                Duration::from_millis(state.settings.expire_uploads_ms),
                move || {
                    let state = expire.clone();
                    Box::pin(async move { state.expire_uploads().await })
                },
            ),
        ]
    }
}
