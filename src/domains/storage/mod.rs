//! The storage domain: buckets owned by users, files streamed to local disk or any
//! S3-compatible store, resumable (tus) uploads, downloads with ranges and signed URLs,
//! versions, tags and metadata, image variants and previews, and per-user quotas.
//!
//! Schema `storage`; routes under `/api/v1/storage`. Publishes `storage.bucket.*`,
//! `storage.file.uploaded`, `storage.file.deleted` and `storage.variant.created` (source
//! `storage`); consumes its own `storage.file.uploaded` to queue image variants, which a job
//! makes.

mod backend;
mod buckets;
mod download;
mod events;
mod files;
mod images;
mod model;
mod repo;
mod settings;
mod signing;
mod sniff;
mod tus;
mod upload;
mod variants;
mod versions;

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use utoipa::OpenApi;

use crate::platform::domain::DomainState;
use crate::platform::events::Subscriber;
use crate::platform::health::HealthCheck;
use crate::platform::http::Routes;
use crate::platform::jobs::Job;
use crate::platform::{Domain, Platform};

pub use settings::StorageSettings;

static MIGRATIONS: Migrator = sqlx::migrate!("migrations/storage");

pub struct StorageState {
    pub settings: StorageSettings,
    store: backend::Store,
    signer: signing::UrlSigner,
    /// `server.public_base_url` without a trailing slash, for the URLs handed out.
    public_base: String,
    db: PgPool,
}

impl StorageState {
    fn image_limits(&self) -> images::ImageLimits {
        images::ImageLimits {
            max_pixels: self.settings.max_image_pixels,
            max_dimension: self.settings.max_image_dimension,
        }
    }

    /// Records a key before its bytes are written: see `repo::track_pending`.
    async fn track(&self, key: &str) -> Result<(), crate::platform::error::ApiError> {
        repo::track_pending(&self.db, key).await?;
        Ok(())
    }

    /// Removes bytes that no row refers to; if the backend fails, the collector retries.
    async fn discard(&self, key: &str) {
        if self.store.delete(key).await.is_err()
            && let Err(e) = repo::queue_garbage(&self.db, key).await
        {
            tracing::error!(key, error = %e, "bytes left in the backend without a row");
            return;
        }
        if let Ok(mut conn) = self.db.acquire().await {
            let _ = repo::forget_pending(&mut conn, key).await;
        }
    }

    /// Runs a collection now rather than at the next tick, after a delete.
    fn collect_soon(&self) {
        let (db, store) = (self.db.clone(), self.store.clone());
        tokio::spawn(async move {
            if let Err(e) = collect(&db, &store).await {
                tracing::warn!(error = %e, "storage collection failed; the job retries");
            }
        });
    }
}

/// Deletes queued bytes from the backend, then forgets them.
async fn collect(db: &PgPool, store: &backend::Store) -> anyhow::Result<()> {
    loop {
        let keys = repo::garbage(db, 100).await?;
        for key in &keys {
            store.delete(key).await?;
            repo::forget_garbage(db, key).await?;
        }
        if keys.len() < 100 {
            return Ok(());
        }
    }
}

#[derive(Default)]
pub struct Storage {
    state: DomainState<StorageState>,
}

#[derive(OpenApi)]
#[openapi(
    paths(
        buckets::create_bucket,
        buckets::list_buckets,
        buckets::get_bucket,
        buckets::update_bucket,
        buckets::delete_bucket,
        buckets::usage,
        files::upload_file,
        files::list_files,
        files::get_file,
        files::update_file,
        files::delete_file,
        download::download_file,
        download::signed_url,
        versions::list_versions,
        versions::upload_version,
        versions::download_version,
        versions::restore_version,
        versions::delete_version,
        download::download_variant,
        variants::preview,
        tus::options,
        tus::create_upload,
        tus::upload_offset,
        tus::append,
        tus::terminate,
    ),
    // Types only query parameters name are not collected from the paths.
    components(schemas(model::FileSort, images::Fit, images::Format)),
    tags((name = "storage", description = "Buckets, files, versions, variants, signed URLs and resumable uploads"))
)]
struct StorageApi;

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
        let store = backend::open(&settings)?;
        self.state.set(StorageState {
            store,
            signer: signing::UrlSigner::derive(&platform.settings.identity),
            public_base: platform
                .settings
                .server
                .public_base_url
                .trim_end_matches('/')
                .to_owned(),
            db: platform.db.clone(),
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
        tus::configure(routes);
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        StorageApi::openapi()
    }

    fn subscribers(&self, _platform: &Platform) -> Vec<Arc<dyn Subscriber>> {
        vec![variants::subscriber()]
    }

    fn health_checks(&self, _platform: &Platform) -> Vec<HealthCheck> {
        let Some(state) = self.state.get() else {
            return Vec::new();
        };
        // Without the backend no file can be read or written.
        vec![HealthCheck::new("storage-backend", true, move || {
            let state = state.clone();
            Box::pin(async move { state.store.exists("health-check").await.map(|_| ()) })
        })]
    }

    fn jobs(&self, _platform: &Platform) -> Vec<Job> {
        let Some(state) = self.state.get() else {
            return Vec::new();
        };
        let every = Duration::from_millis(state.settings.gc_interval_ms);
        let expiry = state.clone();
        let images = state.clone();
        vec![
            Job::new(
                "storage.variants",
                Duration::from_millis(state.settings.variants_poll_ms),
                move || {
                    let state = images.clone();
                    Box::pin(async move { variants::run_due(&state).await })
                },
            )
            .woken_by(repo::VARIANTS_CHANNEL),
            Job::new("storage.collect", every, move || {
                let state = state.clone();
                Box::pin(async move {
                    repo::sweep_pending(&state.db, state.settings.orphan_after_secs).await?;
                    collect(&state.db, &state.store).await
                })
            }),
            Job::new(
                "storage.expire_uploads",
                Duration::from_secs(60),
                move || {
                    let state = expiry.clone();
                    Box::pin(async move {
                        repo::expire_uploads(&state.db).await?;
                        Ok(())
                    })
                },
            ),
        ]
    }
}
