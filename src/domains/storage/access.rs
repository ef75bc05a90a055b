//! The lookups every resource starts from: the bucket a caller may see (or owns), the file
//! they may read or change, and what a download may open (by grant or by signed URL). Each
//! answers 404 for anything the caller may not learn exists.

use chrono::Utc;
use sqlx::{PgConnection, PgPool};

use super::error::StorageError;
use super::model::{BucketId, FileId, FileResponse, Signed};
use super::repo::{self, BucketRow, FileRow, VersionRow};
use super::signing::Grant;
use super::state::StorageState;
use crate::platform::grants::{Access, Caller};

/// A bucket as one caller sees it.
pub struct Target {
    pub bucket: BucketRow,
    pub access: Access,
}

impl Target {
    fn of(caller: &Caller, bucket: BucketRow) -> Self {
        let mut access = Access::new(
            caller,
            bucket.owner_id,
            &bucket.permissions.0,
            bucket.file_security,
        );
        // A public bucket's files are readable by anyone, token or not.
        access.read_all |= bucket.public;
        Self { bucket, access }
    }

    /// Whether the caller may read this file of the bucket.
    pub fn reads(&self, caller: &Caller, file: &FileRow) -> bool {
        self.access.visible()
            && self
                .access
                .allows(self.access.read_all, caller, &file.perm_read)
    }
}

/// The bucket, if the caller may know it exists.
pub async fn bucket(
    conn: &mut PgConnection,
    caller: &Caller,
    id: BucketId,
) -> Result<Target, StorageError> {
    let bucket = repo::bucket(conn, id)
        .await?
        .ok_or(StorageError::BucketNotFound)?;
    let t = Target::of(caller, bucket);
    if !t.access.visible() {
        return Err(StorageError::BucketNotFound);
    }
    Ok(t)
}

/// The caller's own bucket (buckets are managed by their owner alone).
pub async fn own_bucket(
    conn: &mut PgConnection,
    caller: &Caller,
    id: BucketId,
) -> Result<BucketRow, StorageError> {
    let owner = caller.account()?;
    match repo::bucket(conn, id).await? {
        Some(b) if b.owner_id == owner => Ok(b),
        _ => Err(StorageError::BucketNotFound),
    }
}

/// The file and its bucket, if the caller may read it (404 otherwise, whatever the reason).
pub async fn readable(
    conn: &mut PgConnection,
    caller: &Caller,
    id: FileId,
    for_update: bool,
) -> Result<(Target, FileRow), StorageError> {
    let (t, file) = with_bucket(conn, caller, id, for_update).await?;
    if !t.reads(caller, &file) {
        return Err(StorageError::FileNotFound);
    }
    Ok((t, file))
}

/// A file's metadata if the caller may read it (404 otherwise): one statement.
pub async fn file_view(
    db: &PgPool,
    caller: &Caller,
    id: FileId,
) -> Result<FileResponse, StorageError> {
    let (file, bucket, version, variants) = repo::file_view(db, id)
        .await?
        .ok_or(StorageError::FileNotFound)?;
    let t = Target::of(caller, bucket);
    if !t.reads(caller, &file) {
        return Err(StorageError::FileNotFound);
    }
    Ok(FileResponse::new(file, &version.summary(), variants))
}

/// The file locked for a change the caller may make: 404 if they cannot even read it, 403
/// if they can read but not make this change.
pub async fn changeable(
    conn: &mut PgConnection,
    caller: &Caller,
    id: FileId,
    delete: bool,
) -> Result<(Target, FileRow), StorageError> {
    let (t, file) = with_bucket(conn, caller, id, true).await?;
    if !t.access.visible() {
        return Err(StorageError::FileNotFound);
    }
    t.access
        .may_change(caller, file.grants(), delete)
        .map_err(|d| d.into_error(StorageError::FileNotFound.into(), "file", delete))?;
    Ok((t, file))
}

/// The file (locked when asked) and its bucket as the caller sees it.
async fn with_bucket(
    conn: &mut PgConnection,
    caller: &Caller,
    id: FileId,
    lock: bool,
) -> Result<(Target, FileRow), StorageError> {
    let file = repo::file(conn, id, lock)
        .await?
        .ok_or(StorageError::FileNotFound)?;
    let bucket = repo::bucket(conn, file.bucket_id)
        .await?
        .ok_or(StorageError::FileNotFound)?;
    Ok((Target::of(caller, bucket), file))
}

/// What a download opens: the file's current version, one version, or a variant (or a
/// preview, as `preview:<key>`); a signed URL's grant must name exactly that.
#[derive(Clone, Copy, Default)]
pub struct Opens<'a> {
    pub version: Option<i32>,
    pub variant: Option<&'a str>,
}

/// Checks a signed URL's signature and expiry (403 on either), or else the caller's
/// grants; returns the file with its bucket and current version, read in one query.
pub async fn downloadable(
    conn: &mut PgConnection,
    state: &StorageState,
    caller: &Caller,
    id: FileId,
    signed: Signed<'_>,
    opens: Opens<'_>,
) -> Result<(Target, FileRow, VersionRow), StorageError> {
    let by_url = match (signed.signature, signed.expires) {
        (Some(signature), Some(expires)) => {
            let grant = Grant {
                file: id.0,
                version: opens.version,
                variant: opens.variant,
                expires,
            };
            if !state.signer.verify(&grant, signature) {
                return Err(StorageError::BadSignature);
            }
            if expires < Utc::now().timestamp() {
                return Err(StorageError::UrlExpired);
            }
            true
        }
        (None, None) => {
            caller.require_scope("storage.read")?;
            false
        }
        _ => return Err(StorageError::HalfSigned),
    };
    let (file, bucket, current) = repo::file_bundle(conn, id)
        .await?
        .ok_or(StorageError::FileNotFound)?;
    let t = Target::of(caller, bucket);
    if !by_url && !t.reads(caller, &file) {
        return Err(StorageError::FileNotFound);
    }
    Ok((t, file, current))
}

/// A file as the API shows it: its current version and the variants made so far.
pub async fn file_response(
    conn: &mut PgConnection,
    file: FileRow,
) -> Result<FileResponse, StorageError> {
    let version = repo::version(conn, file.current_version)
        .await?
        .ok_or(StorageError::FileNotFound)?;
    let variants = repo::variants(conn, version.id).await?;
    Ok(FileResponse::new(file, &version.summary(), variants))
}
