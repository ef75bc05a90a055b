//! `StorageError`: every problem the storage domain answers with, its status and stable
//! `code` in one place (the kernel lists the codes in OpenAPI as `StorageErrorCode`).
//! Problems that need a response header (`Content-Range` on a 416, `Tus-Version` on a 412)
//! are built here as kernel problems with that header and passed through.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};

use crate::platform::error::ApiError;

/// The bucket of a new file or upload was deleted while its bytes arrived. (Storage has no
/// unique names a client could collide on: bucket and file names may repeat.)
pub const FILE_BUCKET_GONE: &str = "files_bucket_id_fkey";
pub const UPLOAD_BUCKET_GONE: &str = "uploads_bucket_id_fkey";

crate::domain_errors! {
    /// Errors of the storage domain.
    pub enum StorageError {
        #[problem(NOT_FOUND, "not_found")]
        #[error("No such bucket.")]
        BucketNotFound,
        #[problem(NOT_FOUND, "not_found")]
        #[error("No such file.")]
        FileNotFound,
        #[problem(NOT_FOUND, "not_found")]
        #[error("No such version.")]
        VersionNotFound,
        #[problem(NOT_FOUND, "not_found")]
        #[error("The bucket has no such variant.")]
        VariantNotFound,
        #[problem(NOT_FOUND, "variant_pending")]
        #[error("The variant is not made yet (or the file is not an image).")]
        VariantPending,
        #[problem(NOT_FOUND, "not_found")]
        #[error("No such upload (or it expired).")]
        UploadNotFound,
        #[problem(FORBIDDEN, "forbidden")]
        #[error("You may not upload to this bucket.")]
        UploadNotAllowed,
        /// A grant to update is not one to change grants (issue #11).
        #[problem(FORBIDDEN, "forbidden")]
        #[error("Only the bucket's owner or the file's uploader may change its grants.")]
        MayNotRegrant,
        #[problem(FORBIDDEN, "invalid_signature")]
        #[error("The URL's signature is not valid.")]
        BadSignature,
        #[problem(FORBIDDEN, "invalid_signature")]
        #[error("A signed URL carries both expires and signature.")]
        HalfSigned,
        #[problem(FORBIDDEN, "url_expired")]
        #[error("The URL has expired.")]
        UrlExpired,
        #[problem(CONFLICT, "current_version")]
        #[error("This is the current version: restore another one first.")]
        CurrentVersion,
        #[problem(CONFLICT, "offset_mismatch")]
        #[error("The upload stands at {0} bytes: send from there.")]
        OffsetMismatch(i64),
        #[problem(CONFLICT, "limit_reached")]
        #[error("You have {0} resumable uploads open, the most allowed: finish or end one first.")]
        TooManyUploads(i64),
        /// Anonymous uploads have caps of their own, so they cannot use up the owner's.
        #[problem(CONFLICT, "anonymous_limit_reached")]
        #[error("This bucket, or your address in it, has as many anonymous resumable uploads open (or bytes reserved by them) as allowed: finish or end one, or sign in.")]
        TooManyAnonymousUploads,
        #[problem(BAD_REQUEST, "invalid_multipart")]
        #[error("{0}")]
        InvalidMultipart(String),
        #[problem(BAD_REQUEST, "empty_file")]
        #[error("The file is empty.")]
        EmptyFile,
        #[problem(BAD_REQUEST, "upload_incomplete")]
        #[error("The upload broke off: {0}")]
        UploadIncomplete(String),
        #[problem(BAD_REQUEST, "invalid_preview")]
        #[error("width and height must be between 1 and {0}")]
        InvalidPreview(u32),
        #[problem(BAD_REQUEST, "not_an_image")]
        #[error("Previews are made of JPEG, PNG, WebP and GIF images.")]
        NotAnImage,
        #[problem(BAD_REQUEST, "invalid_length")]
        #[error("Upload-Length must be a positive number of bytes.")]
        InvalidLength,
        #[problem(BAD_REQUEST, "invalid_offset")]
        #[error("Upload-Offset must be a number of bytes.")]
        InvalidOffset,
        #[problem(BAD_REQUEST, "invalid_metadata")]
        #[error("{0}")]
        InvalidMetadata(String),
        #[problem(PAYLOAD_TOO_LARGE, "file_too_large")]
        #[error("Files in this bucket may be at most {0} bytes.")]
        FileTooLarge(u64),
        /// More bytes arrived than the resumable upload declared.
        #[problem(PAYLOAD_TOO_LARGE, "upload_too_long")]
        #[error("Files in this bucket may be at most {0} bytes.")]
        UploadTooLong(u64),
        #[problem(UNSUPPORTED_MEDIA_TYPE, "type_not_allowed")]
        #[error("The bytes are {0}, which this bucket does not accept.")]
        TypeNotAllowed(String),
        #[problem(UNSUPPORTED_MEDIA_TYPE, "extension_not_allowed")]
        #[error("This bucket accepts only {0}.")]
        ExtensionNotAllowed(String),
        /// An executable named `.png`, say.
        #[problem(UNSUPPORTED_MEDIA_TYPE, "type_mismatch")]
        #[error("The name says one type but the bytes are {0}.")]
        TypeMismatch(String),
        #[problem(UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")]
        #[error("Send Content-Type: application/offset+octet-stream.")]
        NotOffsetStream,
        #[problem(UNPROCESSABLE_ENTITY, "image_too_large")]
        #[error("{0}")]
        ImageTooLarge(String),
        #[problem(UNPROCESSABLE_ENTITY, "image_unreadable")]
        #[error("{0}")]
        ImageUnreadable(String),
        #[problem(INSUFFICIENT_STORAGE, "quota_exceeded")]
        #[error("This upload would take the owner past their storage quota.")]
        QuotaExceeded,
    }
}

impl StorageError {
    /// 416, with the `Content-Range: bytes */<size>` RFC 9110 asks for.
    pub fn range_not_satisfiable(size: u64) -> Self {
        ApiError::new(StatusCode::RANGE_NOT_SATISFIABLE, "range_not_satisfiable")
            .detail(format!("The file is {size} bytes long."))
            .header(
                header::CONTENT_RANGE,
                // Digits and ASCII only: always a valid header value.
                HeaderValue::try_from(format!("bytes */{size}"))
                    .unwrap_or(HeaderValue::from_static("bytes */0")),
            )
            .into()
    }

    /// 412 for a request that is not tus 1.0.0, naming the version this server speaks.
    pub fn tus_version(version: &'static str) -> Self {
        ApiError::new(StatusCode::PRECONDITION_FAILED, "tus_version")
            .detail(format!("Send Tus-Resumable: {version}."))
            .header(
                HeaderName::from_static("tus-version"),
                HeaderValue::from_static(version),
            )
            .into()
    }
}
