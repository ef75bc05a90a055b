//! The domain's shared state, built once in `init`, and the life cycle of the bytes it
//! stores: a key is tracked before its bytes are written, forgotten in the transaction of
//! the row that comes to own them, and discarded (or queued as garbage, then collected)
//! when no row does.

use sqlx::PgPool;

use super::backend::Store;
use super::images::ImageLimits;
use super::repo;
use super::settings::StorageSettings;
use super::signing::UrlSigner;

pub struct StorageState {
    pub settings: StorageSettings,
    pub store: Store,
    pub signer: UrlSigner,
    /// `server.public_base_url` without a trailing slash, for the URLs handed out.
    pub public_base: String,
    pub db: PgPool,
    /// The replica's decode memory budget (`storage.decode_memory_budget_bytes`), one permit
    /// a KiB: each decode takes what its image and outputs need before it starts, so what
    /// previews and variants hold of one replica's memory at once stays within it, however
    /// many are asked for. Tokio's semaphore is fair, so a large decode is not starved by
    /// small ones behind it.
    pub decode_budget: tokio::sync::Semaphore,
    /// The budget's size in permits (KiB).
    pub decode_budget_kib: u32,
}

impl StorageState {
    pub fn image_limits(&self) -> ImageLimits {
        ImageLimits {
            max_pixels: self.settings.max_image_pixels,
            max_dimension: self.settings.max_image_dimension,
        }
    }

    /// The tighter limits of on-the-fly previews, which anyone who may read an image can ask
    /// for.
    pub fn preview_limits(&self) -> ImageLimits {
        ImageLimits {
            max_pixels: self
                .settings
                .max_preview_pixels
                .min(self.settings.max_image_pixels),
            max_dimension: self.settings.max_image_dimension,
        }
    }

    /// Records a key before its bytes are written: see `repo::track_pending`.
    pub async fn track(&self, key: &str) -> Result<(), sqlx::Error> {
        repo::track_pending(&self.db, key).await
    }

    /// Removes bytes that no row refers to; if the backend fails, the collector retries.
    pub async fn discard(&self, key: &str) {
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
    pub fn collect_soon(&self) {
        let (db, store) = (self.db.clone(), self.store.clone());
        tokio::spawn(async move {
            if let Err(e) = collect(&db, &store).await {
                tracing::warn!(error = %e, "storage collection failed; the job retries");
            }
        });
    }

    /// The collector job's run: bytes whose writer died before a row owned them become
    /// garbage, then all garbage is deleted from the backend.
    pub async fn collect(&self) -> anyhow::Result<()> {
        repo::sweep_pending(&self.db, self.settings.orphan_after_secs).await?;
        collect(&self.db, &self.store).await
    }

    /// Removes resumable uploads past their expiry (their parts become garbage).
    pub async fn expire_uploads(&self) -> anyhow::Result<()> {
        repo::expire_uploads(&self.db).await?;
        Ok(())
    }

    /// The health check: without the backend no file can be read or written.
    pub async fn backend_reachable(&self) -> anyhow::Result<()> {
        self.store.exists("health-check").await.map(|_| ())
    }
}

/// Deletes queued bytes from the backend, then forgets them.
async fn collect(db: &PgPool, store: &Store) -> anyhow::Result<()> {
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
