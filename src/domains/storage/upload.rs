//! The one path every upload takes (a multipart form, a new version, the parts of a
//! resumable upload), from a stream of bytes to a recorded file: the payer's quota and the
//! bucket's limit are known before the first byte; the type is judged from the first bytes
//! before anything is written; the size is counted as bytes arrive (413 the moment it
//! passes the limit); the SHA-256 is computed on the way; and memory stays at one head plus
//! the backend's parts whatever the file's size. A failure at any point aborts the write,
//! and bytes whose rows do not commit are discarded, so nothing is left behind.

use actix_multipart::{Field, Multipart};
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use super::access::Target;
use super::error::{FILE_BUCKET_GONE, StorageError};
use super::events::FileUploaded;
use super::images::{self, ImageLimits};
use super::model::{FileId, FileResponse, UploadId, VersionId};
use super::repo::{self, BucketRow, NewFile, NewVersion};
use super::sniff;
use super::state::StorageState;
use crate::platform::Platform;
use crate::platform::error::OnConstraint;
use crate::platform::events::publish;
use crate::platform::grants::{Caller, ItemPermissions};

/// What was stored.
#[derive(Debug, Clone)]
pub struct Stored {
    pub key: String,
    pub size: i64,
    pub sha256: String,
    pub content_type: String,
    pub dimensions: Option<(u32, u32)>,
}

/// The most an upload may hold, and why.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub file_bytes: u64,
    /// What is left of the uploader's quota, when there is one.
    pub quota_left: Option<u64>,
}

/// Room for a form's other parts and boundaries on top of the file itself.
const FORM_SLACK: u64 = 1024 * 1024;

impl Limit {
    /// 413 past the bucket's limit, 507 past the payer's quota.
    pub fn check(&self, size: u64) -> Result<(), StorageError> {
        if size > self.file_bytes {
            return Err(StorageError::FileTooLarge(self.file_bytes));
        }
        if let Some(left) = self.quota_left
            && size > left
        {
            return Err(StorageError::QuotaExceeded);
        }
        Ok(())
    }

    /// Refuses a multipart body whose declared length cannot fit, before any of it is read.
    pub fn check_declared(&self, req: &actix_web::HttpRequest) -> Result<(), StorageError> {
        let declared = req
            .headers()
            .get(actix_web::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        match declared {
            Some(len) => self.check(len.saturating_sub(FORM_SLACK)),
            None => Ok(()),
        }
    }
}

/// Whose quota an upload spends: the signed-in uploader's (an API key's owner's), so that a
/// grant to upload into someone's bucket never lets a stranger fill that owner's quota.
/// Anonymous uploads, which a bucket owner chose to allow, fall to the owner.
pub fn payer(caller: &Caller, t: &Target) -> Uuid {
    caller.user_id.unwrap_or(t.bucket.owner_id)
}

/// What the payer's quota leaves for one upload.
pub async fn limit_for(
    conn: &mut PgConnection,
    state: &StorageState,
    caller: &Caller,
    t: &Target,
) -> Result<Limit, StorageError> {
    let quota = state.settings.quota_bytes_per_user;
    let quota_left = if quota == 0 {
        None
    } else {
        let used = repo::usage(conn, payer(caller, t)).await?;
        Some(quota.saturating_sub(u64::try_from(used).unwrap_or(0)))
    };
    Ok(Limit {
        file_bytes: t.bucket.max_file_bytes as u64,
        quota_left,
    })
}

/// Checks the head of a file against the bucket's rules; returns its type and, for images
/// whose header is in the head, their dimensions.
pub fn admit(
    bucket: &BucketRow,
    name: &str,
    head: &[u8],
    limits: &ImageLimits,
) -> Result<(String, Option<(u32, u32)>), StorageError> {
    if head.is_empty() {
        return Err(StorageError::EmptyFile);
    }
    let mime = sniff::sniff(head, name);
    if !sniff::type_allowed(&bucket.allowed_types, &mime) {
        return Err(StorageError::TypeNotAllowed(mime));
    }
    if !sniff::extension_allowed(&bucket.allowed_extensions, name) {
        return Err(StorageError::ExtensionNotAllowed(
            bucket.allowed_extensions.join(", "),
        ));
    }
    if sniff::disguised(name, &mime) {
        return Err(StorageError::TypeMismatch(mime));
    }
    let dimensions = if images::is_processable(&mime) {
        images::dimensions(head)
    } else {
        None
    };
    if let Some((w, h)) = dimensions {
        images::check_dimensions(w, h, limits)
            .map_err(|e| StorageError::ImageTooLarge(e.to_string()))?;
    }
    Ok((mime, dimensions))
}

fn incomplete(cause: impl std::fmt::Display) -> StorageError {
    StorageError::UploadIncomplete(cause.to_string())
}

/// Streams `body` into a new object under the bucket.
pub async fn store<S, E>(
    state: &StorageState,
    bucket: &BucketRow,
    name: &str,
    body: S,
    limit: Limit,
) -> Result<Stored, StorageError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    // Fused: a multipart field must not be polled again once it has ended.
    let mut body = body.fuse();
    let mut head = BytesMut::new();
    let mut rest: Option<Bytes> = None;
    while head.len() < sniff::HEAD_BYTES {
        match body.next().await {
            Some(Ok(chunk)) => {
                limit.check((head.len() + chunk.len()) as u64)?;
                let room = sniff::HEAD_BYTES - head.len();
                if chunk.len() > room {
                    head.extend_from_slice(&chunk[..room]);
                    rest = Some(chunk.slice(room..));
                } else {
                    head.extend_from_slice(&chunk);
                }
            }
            Some(Err(e)) => return Err(incomplete(e)),
            None => break,
        }
    }
    let (content_type, dimensions) = admit(bucket, name, &head, &state.image_limits())?;
    let key = format!("files/{}/{}", bucket.id, Uuid::now_v7());
    state.track(&key).await?;
    let mut writer = state.store.writer(&key).await?;
    let mut hasher = Sha256::new();
    let mut size = head.len() as u64;
    hasher.update(&head);
    writer.write(head.freeze()).await?;
    if let Some(rest) = rest {
        size += rest.len() as u64;
        limit.check(size)?;
        hasher.update(&rest);
        writer.write(rest).await?;
    }
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(incomplete)?;
        size += chunk.len() as u64;
        // Returning drops the writer, which aborts the partial object.
        limit.check(size)?;
        hasher.update(&chunk);
        writer.write(chunk).await?;
    }
    writer.finish().await?;
    Ok(Stored {
        key,
        size: size as i64,
        sha256: hex::encode(hasher.finalize()),
        content_type,
        dimensions,
    })
}

/// What a new file is called and carries, besides its bytes.
pub struct FileDetails {
    pub name: String,
    pub tags: Vec<String>,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub permissions: ItemPermissions,
}

/// The text parts of an upload form.
#[derive(Default)]
pub struct FormFields {
    pub name: Option<String>,
    pub tags: Option<String>,
    pub metadata: Option<String>,
    pub permissions: Option<String>,
}

const MAX_TEXT_FIELD: usize = 64 * 1024;

fn invalid_form(detail: impl Into<String>) -> StorageError {
    StorageError::InvalidMultipart(detail.into())
}

fn malformed(e: impl std::fmt::Display) -> StorageError {
    invalid_form(format!("The multipart body is malformed: {e}"))
}

async fn read_text(field: &mut Field) -> Result<String, StorageError> {
    let mut out = Vec::new();
    while let Some(chunk) = field.try_next().await.map_err(malformed)? {
        if out.len() + chunk.len() > MAX_TEXT_FIELD {
            return Err(invalid_form(
                "Form fields other than the file are at most 64 KiB.",
            ));
        }
        out.extend_from_slice(&chunk);
    }
    String::from_utf8(out).map_err(|_| invalid_form("Form fields must be UTF-8 text."))
}

/// Reads the form, streaming the `file` part into the backend as it arrives; returns what
/// was stored, the file part's (sanitised) name and the other fields.
pub async fn receive(
    state: &StorageState,
    t: &Target,
    mut form: Multipart,
    limit: Limit,
) -> Result<(Stored, String, FormFields), StorageError> {
    let mut fields = FormFields::default();
    let mut stored: Option<(Stored, String)> = None;
    let result: Result<(), StorageError> = async {
        while let Some(mut field) = form.try_next().await.map_err(malformed)? {
            let name = field
                .content_disposition()
                .and_then(|d| d.get_name())
                .unwrap_or_default()
                .to_owned();
            match name.as_str() {
                "file" => {
                    if stored.is_some() {
                        return Err(invalid_form("Send one file per upload."));
                    }
                    let filename = field
                        .content_disposition()
                        .and_then(|d| d.get_filename())
                        .unwrap_or_default()
                        .to_owned();
                    let given = sniff::sanitize_name(&filename);
                    let s = store(state, &t.bucket, &given, &mut field, limit).await?;
                    stored = Some((s, given));
                }
                "name" => fields.name = Some(read_text(&mut field).await?),
                "tags" => fields.tags = Some(read_text(&mut field).await?),
                "metadata" => fields.metadata = Some(read_text(&mut field).await?),
                "permissions" => fields.permissions = Some(read_text(&mut field).await?),
                other => {
                    let shown: String = other.chars().take(64).collect();
                    return Err(invalid_form(format!("Unknown form field `{shown}`.")));
                }
            }
        }
        Ok(())
    }
    .await;
    match (result, stored) {
        (Ok(()), Some((s, given))) => Ok((s, given, fields)),
        (Ok(()), None) => Err(invalid_form("The form has no `file` part.")),
        (Err(e), stored) => {
            if let Some((s, _)) = stored {
                state.discard(&s.key).await;
            }
            Err(e)
        }
    }
}

/// What a stored upload becomes.
pub enum Record {
    /// A new file in the bucket.
    File(FileDetails),
    /// The new current version of this file.
    Version(FileId),
}

/// Records a stored upload (the rows, the usage it costs and its event, in one
/// transaction); the bytes are discarded if the rows do not commit. A finished resumable
/// upload names itself in `finishes`: its row goes in the same transaction, giving back the
/// quota it reserved before the actual size is charged.
pub async fn commit_upload(
    platform: &Platform,
    state: &StorageState,
    caller: &Caller,
    t: &Target,
    stored: Stored,
    record: Record,
    finishes: Option<UploadId>,
) -> Result<FileResponse, StorageError> {
    let key = stored.key.clone();
    let result = async {
        let mut tx = platform.db.begin().await?;
        if let Some(upload) = finishes {
            repo::delete_upload(&mut tx, upload).await?;
        }
        let (file_id, details) = match record {
            Record::File(details) => (FileId::new(), Some(details)),
            Record::Version(id) => {
                // Locked first: versions of one file are numbered one after another, and
                // the file cannot be deleted under its new version.
                if repo::file(&mut tx, id, true).await?.is_none() {
                    return Err(StorageError::FileNotFound);
                }
                (id, None)
            }
        };
        let payer = payer(caller, t);
        let quota = state.settings.quota_bytes_per_user;
        if !repo::charge(&mut tx, payer, stored.size, quota).await? {
            return Err(StorageError::QuotaExceeded);
        }
        let version_id = VersionId::new();
        let new_row = match details {
            Some(d) => {
                let f = NewFile {
                    id: file_id,
                    bucket_id: t.bucket.id,
                    uploader: caller.user_id,
                    name: &d.name,
                    version: version_id,
                    tags: &d.tags,
                    metadata: &d.metadata,
                    permissions: &d.permissions,
                };
                let row = repo::insert_file(&mut tx, &f)
                    .await
                    .on_constraint(FILE_BUCKET_GONE, || StorageError::BucketNotFound)?;
                Some(row)
            }
            None => None,
        };
        let v = NewVersion {
            id: version_id,
            file_id,
            size: stored.size,
            content_type: &stored.content_type,
            sha256: &stored.sha256,
            object_key: &stored.key,
            dimensions: stored.dimensions,
            quota_owner: payer,
        };
        let version = repo::insert_version(&mut tx, &v).await?;
        repo::forget_pending(&mut tx, &stored.key).await?;
        let file = match new_row {
            Some(f) => f,
            None => {
                let f = repo::set_current(&mut tx, file_id, version_id).await?;
                if !t.bucket.versioning {
                    repo::delete_other_versions(&mut tx, file_id, version_id).await?;
                }
                f
            }
        };
        publish(
            &mut tx,
            &FileUploaded {
                user_id: t.bucket.owner_id,
                uploader_id: caller.user_id,
                bucket_id: t.bucket.id,
                file_id: file.id,
                version_id: version.id,
                version: version.number,
                name: file.name.clone(),
                size: version.size,
                content_type: version.content_type.clone(),
                sha256: version.sha256.clone(),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(FileResponse::new(file, &version.summary(), Vec::new()))
    }
    .await;
    if result.is_err() {
        state.discard(&key).await;
    }
    result
}
