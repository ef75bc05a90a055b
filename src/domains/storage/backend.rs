//! Where the bytes live: local disk or an S3-compatible store, both behind `object_store`, so
//! uploads stream the same way to either (disk writes go to a staging file that is renamed
//! into place when complete; S3 writes are multipart uploads).

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, WriteMultipart};

use super::settings::{Backend, StorageSettings};

/// Parts of a streamed write are this large (S3 wants at least 5 MiB but the last).
const PART_BYTES: usize = 8 * 1024 * 1024;
/// Parts in flight per write: with the part being filled, memory per upload stays under
/// about (1 + this) × PART_BYTES whatever the file's size.
const PARTS_IN_FLIGHT: usize = 2;

#[derive(Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
}

pub fn open(settings: &StorageSettings) -> anyhow::Result<Store> {
    let inner: Arc<dyn ObjectStore> = match settings.backend {
        Backend::Local => {
            std::fs::create_dir_all(&settings.local_dir).map_err(|e| {
                anyhow::anyhow!(
                    "storage.local_dir: cannot create {}: {e}",
                    settings.local_dir.display()
                )
            })?;
            Arc::new(object_store::local::LocalFileSystem::new_with_prefix(
                &settings.local_dir,
            )?)
        }
        Backend::S3 => s3(settings)?,
    };
    Ok(Store { inner })
}

#[cfg(feature = "s3")]
fn s3(settings: &StorageSettings) -> anyhow::Result<Arc<dyn ObjectStore>> {
    use secrecy::ExposeSecret;
    let mut builder = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(&settings.s3_bucket)
        .with_region(&settings.s3_region)
        .with_allow_http(settings.s3_allow_http);
    if !settings.s3_endpoint.is_empty() {
        builder = builder
            .with_endpoint(&settings.s3_endpoint)
            .with_virtual_hosted_style_request(false);
    }
    if !settings.s3_access_key_id.is_empty() {
        builder = builder
            .with_access_key_id(&settings.s3_access_key_id)
            .with_secret_access_key(settings.s3_secret_access_key.expose_secret());
    }
    Ok(Arc::new(builder.build()?))
}

#[cfg(not(feature = "s3"))]
fn s3(_: &StorageSettings) -> anyhow::Result<Arc<dyn ObjectStore>> {
    anyhow::bail!("storage.backend: `s3` needs a build with the `s3` feature")
}

/// A write in progress; dropped without `finish`, it is aborted.
pub struct Writer {
    inner: Option<WriteMultipart>,
}

impl Writer {
    pub async fn write(&mut self, bytes: Bytes) -> anyhow::Result<()> {
        if let Some(w) = self.inner.as_mut() {
            w.wait_for_capacity(PARTS_IN_FLIGHT).await?;
            w.put(bytes);
        }
        Ok(())
    }

    pub async fn finish(mut self) -> anyhow::Result<()> {
        if let Some(w) = self.inner.take() {
            w.finish().await?;
        }
        Ok(())
    }

    pub async fn abort(mut self) {
        if let Some(w) = self.inner.take() {
            let _ = w.abort().await;
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if let Some(w) = self.inner.take() {
            // A write dropped mid-way (the client went away) must not leave a partial object.
            tokio::spawn(async move {
                let _ = w.abort().await;
            });
        }
    }
}

impl Store {
    pub async fn writer(&self, key: &str) -> anyhow::Result<Writer> {
        let upload = self.inner.put_multipart(&Path::from(key)).await?;
        Ok(Writer {
            inner: Some(WriteMultipart::new_with_chunk_size(upload, PART_BYTES)),
        })
    }

    pub async fn put(&self, key: &str, bytes: Bytes) -> anyhow::Result<()> {
        self.inner.put(&Path::from(key), bytes.into()).await?;
        Ok(())
    }

    /// The bytes of `range` (or all), as a stream.
    pub async fn read(
        &self,
        key: &str,
        range: Option<Range<u64>>,
    ) -> anyhow::Result<BoxStream<'static, std::io::Result<Bytes>>> {
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..Default::default()
        };
        let result = self.inner.get_opts(&Path::from(key), options).await?;
        Ok(result.into_stream().map_err(std::io::Error::other).boxed())
    }

    /// The whole object in memory (images, which are size-capped before this is called).
    pub async fn read_all(&self, key: &str) -> anyhow::Result<Bytes> {
        Ok(self.inner.get(&Path::from(key)).await?.bytes().await?)
    }

    /// Deletes the object; one already gone counts as deleted.
    pub async fn delete(&self, key: &str) -> anyhow::Result<()> {
        match self.inner.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn exists(&self, key: &str) -> anyhow::Result<bool> {
        match self.inner.head(&Path::from(key)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}
