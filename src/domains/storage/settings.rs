//! The `[storage]` configuration section (`BASALT__STORAGE__...`).

use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Files under `local_dir`, written to a temporary file and renamed into place.
    Local,
    /// Any S3-compatible store (needs the `s3` feature).
    S3,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSettings {
    pub backend: Backend,
    pub local_dir: PathBuf,
    pub s3_bucket: String,
    pub s3_region: String,
    /// Empty: AWS itself. Set for MinIO, moto, R2 and the like (path-style requests).
    pub s3_endpoint: String,
    pub s3_access_key_id: String,
    pub s3_secret_access_key: SecretString,
    /// Allow `http://` endpoints (local test servers).
    pub s3_allow_http: bool,
    /// The largest file any bucket may accept; a bucket's own limit is at most this.
    pub max_file_bytes: u64,
    /// Bytes each user may store in all, counting every version of what they uploaded into any
    /// bucket; 0: no quota.
    pub quota_bytes_per_user: u64,
    /// Resumable uploads not finished within this many hours are removed.
    pub upload_expiry_hours: i64,
    /// Images with more pixels than this are not decoded (decompression bombs).
    pub max_image_pixels: u64,
    /// Images wider or taller than this are refused outright.
    pub max_image_dimension: u32,
    /// Originals larger than this get no variants or previews.
    pub max_image_bytes: u64,
    /// The largest width or height an on-the-fly preview may ask for.
    pub max_preview_dimension: u32,
    /// Preview sides snap up to the first of these at least as large as asked (Next.js's image
    /// sizes), or to `max_preview_dimension` past the last, so one image has a bounded number
    /// of previews however many sizes callers ask for.
    pub preview_sizes: Vec<u32>,
    /// Images with more pixels than this get no previews (a 422 `image_too_large`): decoding
    /// costs about 4 bytes a pixel whatever the preview's size.
    pub max_preview_pixels: u64,
    /// Bytes one replica may spend at once decoding and resizing images (previews and
    /// variants). Each decode reserves what its recorded dimensions need before it starts
    /// (about 4 bytes a source pixel plus the resize's intermediate and output) and waits
    /// until that much is free; a preview needing more than all of it is refused (422
    /// `image_too_large`), a variant job needing more runs alone. The default fits the
    /// largest preview `max_preview_pixels` and `max_preview_dimension` allow (a 4096 x 4096
    /// image rendered near 4K needs about 180 MiB).
    pub decode_memory_budget_bytes: u64,
    /// Resumable uploads one signed-in payer may have open at once (anonymous uploads, which
    /// the bucket's owner pays for, are not counted here: they have their own caps below).
    pub max_open_uploads_per_user: i64,
    /// Anonymous resumable uploads one bucket may have open at once.
    pub max_anonymous_open_uploads_per_bucket: i64,
    /// Anonymous resumable uploads one client address may have open in one bucket at once
    /// (an IPv6 address counts by its /64, what one host usually holds).
    pub max_anonymous_open_uploads_per_ip: i64,
    /// Bytes all open anonymous uploads of one bucket may reserve together: without it, two
    /// anonymous 5 GiB uploads held the owner's whole 10 GiB quota while sending nothing.
    pub max_anonymous_reserved_bytes_per_bucket: i64,
    /// Resumable uploads that have not received a byte are removed after this many seconds
    /// (the first bytes extend it to `upload_expiry_hours`), so an upload created and never
    /// started holds its reservation and its place under the caps only briefly.
    pub unstarted_upload_expiry_secs: i64,
    /// The longest a signed URL may stay valid.
    pub max_signed_url_secs: i64,
    /// How often deleted files' bytes are removed from the backend.
    pub gc_interval_ms: u64,
    /// How often the variants job looks for due work besides being woken when an upload
    /// queues some (this picks up retries, and work queued while its listener was down).
    pub variants_poll_ms: u64,
    /// How often resumable uploads past their expiry are removed (and their reservations
    /// given back).
    pub expire_uploads_ms: u64,
    /// Bytes written this long ago that no row owns (the writer died before committing) are
    /// removed.
    pub orphan_after_secs: i64,
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self {
            backend: Backend::Local,
            local_dir: PathBuf::from("data/storage"),
            s3_bucket: String::new(),
            s3_region: "us-east-1".into(),
            s3_endpoint: String::new(),
            s3_access_key_id: String::new(),
            s3_secret_access_key: SecretString::from(String::new()),
            s3_allow_http: false,
            max_file_bytes: 5 * 1024 * 1024 * 1024,
            quota_bytes_per_user: 10 * 1024 * 1024 * 1024,
            upload_expiry_hours: 24,
            max_image_pixels: 100_000_000,
            max_image_dimension: 20_000,
            max_image_bytes: 64 * 1024 * 1024,
            max_preview_dimension: 4096,
            preview_sizes: vec![
                16, 32, 48, 64, 96, 128, 256, 384, 640, 750, 828, 1080, 1200, 1920, 2048, 3840,
            ],
            max_preview_pixels: 16 * 1024 * 1024,
            decode_memory_budget_bytes: 192 * 1024 * 1024,
            max_open_uploads_per_user: 20,
            max_anonymous_open_uploads_per_bucket: 10,
            max_anonymous_open_uploads_per_ip: 3,
            max_anonymous_reserved_bytes_per_bucket: 1 << 30,
            unstarted_upload_expiry_secs: 3600,
            max_signed_url_secs: 7 * 24 * 3600,
            gc_interval_ms: 1000,
            variants_poll_ms: 1000,
            orphan_after_secs: 24 * 3600,
            expire_uploads_ms: 60_000,
        }
    }
}

impl StorageSettings {
    /// The decode memory budget in whole KiB, the unit its semaphore counts.
    pub fn decode_budget_kib(&self) -> u32 {
        u32::try_from(self.decode_memory_budget_bytes / 1024).unwrap_or(u32::MAX)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if self.backend == Backend::S3 {
            if !cfg!(feature = "s3") {
                anyhow::bail!("storage.backend: `s3` needs a build with the `s3` feature");
            }
            if self.s3_bucket.is_empty() {
                anyhow::bail!("storage.s3_bucket: required when storage.backend = \"s3\"");
            }
        }
        if self.max_file_bytes == 0 {
            anyhow::bail!("storage.max_file_bytes: must be above zero");
        }
        if self.max_signed_url_secs <= 0
            || self.upload_expiry_hours <= 0
            || self.gc_interval_ms == 0
            || self.variants_poll_ms == 0
            || self.expire_uploads_ms == 0
        {
            anyhow::bail!(
                "storage: max_signed_url_secs, upload_expiry_hours, gc_interval_ms, variants_poll_ms and expire_uploads_ms must be above zero"
            );
        }
        if self.decode_memory_budget_bytes < 1024
            || self.decode_memory_budget_bytes / 1024 > u64::from(u32::MAX)
        {
            anyhow::bail!("storage.decode_memory_budget_bytes: between 1 KiB and 4 TiB");
        }
        if self.max_open_uploads_per_user <= 0
            || self.max_anonymous_open_uploads_per_bucket < 0
            || self.max_anonymous_open_uploads_per_ip < 0
            || self.max_anonymous_reserved_bytes_per_bucket < 0
        {
            anyhow::bail!(
                "storage: max_open_uploads_per_user must be above zero, the anonymous caps at least zero"
            );
        }
        if self.unstarted_upload_expiry_secs <= 0 || self.upload_expiry_hours > i64::from(i32::MAX)
        {
            anyhow::bail!(
                "storage: unstarted_upload_expiry_secs must be above zero, upload_expiry_hours a 32-bit number"
            );
        }
        Ok(())
    }
}
