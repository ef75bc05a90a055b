//! The one path every upload takes, from a stream of bytes to a stored object: the type is
//! judged from the first bytes before anything is written, the size is counted as bytes
//! arrive (413 the moment it passes the limit), the SHA-256 is computed on the way, and
//! memory stays at one head plus the backend's parts whatever the file's size. A failure at
//! any point aborts the write, so nothing is left behind.

use actix_web::http::StatusCode;
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::StorageState;
use super::images::{self, ImageLimits};
use super::repo::BucketRow;
use super::sniff;
use crate::platform::error::ApiError;

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

impl Limit {
    fn check(&self, size: u64) -> Result<(), ApiError> {
        if size > self.file_bytes {
            return Err(too_large(self.file_bytes));
        }
        if let Some(left) = self.quota_left
            && size > left
        {
            return Err(quota_exceeded());
        }
        Ok(())
    }
}

/// Room for a form's other parts and boundaries on top of the file itself.
const FORM_SLACK: u64 = 1024 * 1024;

impl Limit {
    /// Refuses a multipart body whose declared length cannot fit, before any of it is read.
    pub fn check_declared(&self, req: &actix_web::HttpRequest) -> Result<(), ApiError> {
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

pub fn too_large(limit: u64) -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "file_too_large").detail(format!(
        "Files in this bucket may be at most {limit} bytes."
    ))
}

pub fn quota_exceeded() -> ApiError {
    ApiError::new(StatusCode::INSUFFICIENT_STORAGE, "quota_exceeded")
        .detail("This upload would take the owner past their storage quota.")
}

fn incomplete(cause: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(
        "upload_incomplete",
        format!("The upload broke off: {cause}"),
    )
}

fn unsupported(code: &'static str, detail: String) -> ApiError {
    ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, code).detail(detail)
}

/// Checks the head of a file against the bucket's rules; returns its type and, for images
/// whose header is in the head, their dimensions.
pub fn admit(
    bucket: &BucketRow,
    name: &str,
    head: &[u8],
    limits: &ImageLimits,
) -> Result<(String, Option<(u32, u32)>), ApiError> {
    if head.is_empty() {
        return Err(ApiError::bad_request("empty_file", "The file is empty."));
    }
    let mime = sniff::sniff(head, name);
    if !sniff::type_allowed(&bucket.allowed_types, &mime) {
        return Err(unsupported(
            "type_not_allowed",
            format!("The bytes are {mime}, which this bucket does not accept."),
        ));
    }
    if !sniff::extension_allowed(&bucket.allowed_extensions, name) {
        return Err(unsupported(
            "extension_not_allowed",
            format!(
                "This bucket accepts only {}.",
                bucket.allowed_extensions.join(", ")
            ),
        ));
    }
    if sniff::disguised(name, &mime) {
        return Err(unsupported(
            "type_mismatch",
            format!("The name says one type but the bytes are {mime}."),
        ));
    }
    let dimensions = if images::is_processable(&mime) {
        images::dimensions(head)
    } else {
        None
    };
    if let Some((w, h)) = dimensions {
        images::check_dimensions(w, h, limits).map_err(|e| {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "image_too_large").detail(e.to_string())
        })?;
    }
    Ok((mime, dimensions))
}

/// Streams `body` into a new object under the bucket.
pub async fn store<S, E>(
    state: &StorageState,
    bucket: &BucketRow,
    name: &str,
    body: S,
    limit: Limit,
) -> Result<Stored, ApiError>
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
    let mut writer = state.store.writer(&key).await.map_err(ApiError::internal)?;
    let mut hasher = Sha256::new();
    let mut size = head.len() as u64;
    hasher.update(&head);
    writer
        .write(head.freeze())
        .await
        .map_err(ApiError::internal)?;
    if let Some(rest) = rest {
        size += rest.len() as u64;
        limit.check(size)?;
        hasher.update(&rest);
        writer.write(rest).await.map_err(ApiError::internal)?;
    }
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(incomplete)?;
        size += chunk.len() as u64;
        // Returning drops the writer, which aborts the partial object.
        limit.check(size)?;
        hasher.update(&chunk);
        writer.write(chunk).await.map_err(ApiError::internal)?;
    }
    writer.finish().await.map_err(ApiError::internal)?;
    Ok(Stored {
        key,
        size: size as i64,
        sha256: hex::encode(hasher.finalize()),
        content_type,
        dimensions,
    })
}
