//! The events storage publishes (source `storage`), written to the outbox in the transaction
//! that makes the change. Payloads name the bucket's owner as `user_id`, so the owner's
//! webhooks receive them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::model::{BucketId, FileId, VersionId};

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BucketCreated {
    pub user_id: Uuid,
    pub bucket_id: BucketId,
    pub name: String,
}

/// A bucket's settings changed (they apply to uploads from then on).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BucketUpdated {
    pub user_id: Uuid,
    pub bucket_id: BucketId,
}

/// A bucket and every file in it are gone.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BucketDeleted {
    pub user_id: Uuid,
    pub bucket_id: BucketId,
}

/// A new file, or a new version of one (then `version` is above 1).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FileUploaded {
    pub user_id: Uuid,
    /// Absent (null) for an anonymous upload a bucket allowed.
    pub uploader_id: Option<Uuid>,
    pub bucket_id: BucketId,
    pub file_id: FileId,
    pub version_id: VersionId,
    pub version: i32,
    pub name: String,
    pub size: i64,
    pub content_type: String,
    pub sha256: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FileDeleted {
    pub user_id: Uuid,
    /// Who deleted it; null for an anonymous caller a grant allowed.
    pub actor_id: Option<Uuid>,
    pub bucket_id: BucketId,
    pub file_id: FileId,
    pub name: String,
}

/// A bucket's image variant of one version was made.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VariantCreated {
    pub user_id: Uuid,
    pub bucket_id: BucketId,
    pub file_id: FileId,
    pub version_id: VersionId,
    pub name: String,
    pub width: i32,
    pub height: i32,
    pub size: i64,
    pub content_type: String,
}

crate::declare_events! {
    source = "storage";
    BucketCreated = "storage.bucket.created" by bucket_id,
    BucketUpdated = "storage.bucket.updated" by bucket_id,
    BucketDeleted = "storage.bucket.deleted" by bucket_id,
    FileUploaded = "storage.file.uploaded" by file_id,
    FileDeleted = "storage.file.deleted" by file_id,
    VariantCreated = "storage.variant.created" by file_id,
}
