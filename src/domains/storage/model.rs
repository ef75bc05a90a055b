//! The storage API's ids, request and response bodies, and how rows become responses.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use validator::Validate;

use super::error::StorageError;
use super::images::{Fit, Format, VariantSpec};
use super::repo::{BucketRow, FileRow, VariantRow, VersionRow, VersionSummary};
use crate::platform::grants::{ContainerPermissions, ItemPermissions};
use crate::platform::page::PageQuery;

crate::id_type!(
    /// A bucket.
    BucketId
);
crate::id_type!(
    /// A file (all its versions).
    FileId
);
crate::id_type!(
    /// One version of a file.
    VersionId
);
crate::id_type!(
    /// A resumable (tus) upload in progress.
    UploadId
);

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "avatars", "max_file_bytes": 5242880, "allowed_types": ["image/*"],
    "allowed_extensions": ["jpg", "jpeg", "png", "webp"], "public": true, "versioning": false,
    "variants": [{"name": "thumbnail", "width": 128, "height": 128, "fit": "cover", "format": "webp"}]
}))]
pub struct CreateBucketRequest {
    #[validate(length(min = 1, max = 128))]
    pub name: String,
    /// Default and ceiling: `storage.max_file_bytes`.
    pub max_file_bytes: Option<u64>,
    /// MIME types or families (`image/*`), judged from the bytes; empty: any.
    #[serde(default)]
    pub allowed_types: Vec<String>,
    /// Extensions without the dot; empty: any.
    #[serde(default)]
    pub allowed_extensions: Vec<String>,
    /// Anyone may read its files, without a token.
    #[serde(default)]
    pub public: bool,
    /// Keep earlier versions when a file gets a new one.
    #[serde(default)]
    pub versioning: bool,
    #[serde(default)]
    pub variants: Vec<VariantSpec>,
    #[serde(default)]
    pub permissions: ContainerPermissions,
    /// Whether each file's own grants apply (default true).
    #[serde(default = "yes")]
    pub file_security: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBucketRequest {
    #[validate(length(min = 1, max = 128))]
    pub name: Option<String>,
    pub max_file_bytes: Option<u64>,
    pub allowed_types: Option<Vec<String>>,
    pub allowed_extensions: Option<Vec<String>>,
    pub public: Option<bool>,
    pub versioning: Option<bool>,
    pub variants: Option<Vec<VariantSpec>>,
    pub permissions: Option<ContainerPermissions>,
    pub file_security: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BucketResponse {
    pub id: BucketId,
    pub owner_id: Uuid,
    pub name: String,
    pub max_file_bytes: i64,
    pub allowed_types: Vec<String>,
    pub allowed_extensions: Vec<String>,
    pub public: bool,
    pub versioning: bool,
    pub variants: Vec<VariantSpec>,
    pub permissions: ContainerPermissions,
    pub file_security: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VersionResponse {
    pub number: i32,
    pub size: i64,
    pub content_type: String,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<i32>,
    pub current: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VariantResponse {
    pub name: String,
    pub width: i32,
    pub height: i32,
    pub size: i64,
    pub content_type: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "0193a5f6-7d2c-7b9e-9f10-3c4d5e6f7a8b", "bucket_id": "0193a5f6-7d2c-7b9e-9f10-3c4d5e6f7a8c",
    "name": "cat.png", "size": 48213, "content_type": "image/png",
    "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "version": 1,
    "tags": ["pets"], "metadata": {"alt": "A cat"}, "width": 640, "height": 480,
    "variants": [{"name": "thumbnail", "width": 128, "height": 128, "size": 3120, "content_type": "image/webp"}],
    "permissions": {"read": ["any"], "update": [], "delete": []},
    "created_at": "2026-11-22T10:00:00Z", "updated_at": "2026-11-22T10:00:00Z"
}))]
pub struct FileResponse {
    pub id: FileId,
    pub bucket_id: BucketId,
    pub name: String,
    /// Of the current version.
    pub size: i64,
    pub content_type: String,
    pub sha256: String,
    /// The current version's number.
    pub version: i32,
    pub tags: Vec<String>,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<i32>,
    /// Variants made so far (they are made after the upload answers).
    pub variants: Vec<VariantResponse>,
    pub uploader_id: Option<Uuid>,
    pub permissions: ItemPermissions,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum FileSort {
    Name,
    #[default]
    CreatedAt,
}

/// `GET /buckets/{bucket}/files` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FileListParams {
    /// Names starting with this.
    pub prefix: Option<String>,
    /// An exact type (`image/png`) or a family (`image/*`).
    pub content_type: Option<String>,
    /// Files carrying this tag.
    pub tag: Option<String>,
    /// `name` or `created_at` (default).
    pub sort: Option<FileSort>,
    /// `asc` (default) or `desc`.
    pub order: Option<SortOrder>,
    /// Items per page: 1 to 100, default 25.
    #[param(minimum = 1, maximum = 100, default = 25)]
    pub limit: Option<i64>,
    /// The `next` cursor of the previous page (made for the same `sort`).
    pub after: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    #[default]
    Asc,
    Desc,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "cat.png", "tags": ["pets", "cute"], "metadata": {"alt": "A cat"}}))]
pub struct UpdateFileRequest {
    #[validate(length(min = 1, max = 255))]
    pub name: Option<String>,
    pub tags: Option<Vec<String>>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    pub permissions: Option<ItemPermissions>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"expires_in": 3600}))]
pub struct SignedUrlRequest {
    /// Seconds, 1 to `storage.max_signed_url_secs` (default one hour).
    pub expires_in: Option<i64>,
    /// A version number instead of the current version.
    pub version: Option<i32>,
    /// A variant's name instead of the file.
    pub variant: Option<String>,
    /// A preview of the current version instead of the file.
    pub preview: Option<PreviewOptions>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SignedUrlResponse {
    /// Absolute, under `server.public_base_url`; anyone holding it may download until it expires.
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

/// Query parameters of downloads: a signed URL's.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DownloadParams {
    /// Unix seconds; with `signature`, from a signed URL.
    pub expires: Option<i64>,
    pub signature: Option<String>,
    /// `attachment` forces a download even for types a browser could show.
    pub disposition: Option<String>,
}

/// A download's `signature` and `expires`, when it comes through a signed URL.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    pub signature: Option<&'a str>,
    pub expires: Option<i64>,
}

impl DownloadParams {
    pub fn signed(&self) -> Signed<'_> {
        Signed {
            signature: self.signature.as_deref(),
            expires: self.expires,
        }
    }
}

impl PreviewParams {
    pub fn signed(&self) -> Signed<'_> {
        Signed {
            signature: self.signature.as_deref(),
            expires: self.expires,
        }
    }
}

/// The request headers every download honours. Documentation only: the handlers read them
/// from the request.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct DownloadHeaders {
    /// One range: `bytes=0-1023`, `bytes=1024-` or `bytes=-512` (206, or 416 past the end).
    #[param(rename = "Range")]
    pub range: Option<String>,
    /// An ETag from an earlier download: 304 while the bytes are unchanged.
    #[param(rename = "If-None-Match")]
    pub if_none_match: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PreviewParams {
    /// 1 to `storage.max_preview_dimension` (the default).
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// `contain` (default) or `cover`.
    pub fit: Option<Fit>,
    /// `jpeg` (default), `png` or `webp`.
    pub format: Option<Format>,
    /// With `signature`, from a signed URL.
    pub expires: Option<i64>,
    pub signature: Option<String>,
}

/// A preview a signed URL opens.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewOptions {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fit: Option<Fit>,
    pub format: Option<Format>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UsageResponse {
    pub bytes: i64,
    /// Absent when there is no quota.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota_bytes: Option<u64>,
}

/// The parts of a multipart upload (documentation only: the server streams it).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The file. Its type is judged from its bytes.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
    /// Overrides the file part's file name.
    pub name: Option<String>,
    /// Comma-separated.
    pub tags: Option<String>,
    /// A JSON object of custom keys and values.
    pub metadata: Option<String>,
    /// JSON like `{"read": ["any"]}`; default: the uploader only.
    pub permissions: Option<String>,
}

/// Where a page of files ends: the sort key's values, never a file id the server would look
/// up, so a cursor cannot tell anything about another bucket's files. Each sort has its own
/// shape, so a cursor made under one sort is an `invalid_cursor` under the other.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum FileCursor {
    Name(ByName),
    CreatedAt(ByCreated),
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ByName {
    pub name: String,
    pub id: FileId,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ByCreated {
    pub created_at: DateTime<Utc>,
    pub id: FileId,
}

impl FileCursor {
    /// The cursor after `file` in this sort.
    pub fn of(sort: FileSort, file: &FileRow) -> Self {
        match sort {
            FileSort::Name => Self::Name(ByName {
                name: file.name.clone(),
                id: file.id,
            }),
            FileSort::CreatedAt => Self::CreatedAt(ByCreated {
                created_at: file.created_at,
                id: file.id,
            }),
        }
    }

    /// The `after` of a request listed in this sort.
    pub fn decode(sort: FileSort, page: &PageQuery) -> Result<Option<Self>, StorageError> {
        Ok(match sort {
            FileSort::Name => page.cursor::<ByName>()?.map(Self::Name),
            FileSort::CreatedAt => page.cursor::<ByCreated>()?.map(Self::CreatedAt),
        })
    }
}

impl From<BucketRow> for BucketResponse {
    fn from(b: BucketRow) -> Self {
        Self {
            id: b.id,
            owner_id: b.owner_id,
            name: b.name,
            max_file_bytes: b.max_file_bytes,
            allowed_types: b.allowed_types,
            allowed_extensions: b.allowed_extensions,
            public: b.public,
            versioning: b.versioning,
            variants: b.variants.0,
            permissions: b.permissions.0,
            file_security: b.file_security,
            created_at: b.created_at,
            updated_at: b.updated_at,
        }
    }
}

impl From<VariantRow> for VariantResponse {
    fn from(v: VariantRow) -> Self {
        Self {
            name: v.name,
            width: v.width,
            height: v.height,
            size: v.size,
            content_type: v.content_type,
        }
    }
}

impl FileResponse {
    /// A file as shown: its current version `v` and the variants made of it so far.
    pub fn new(file: FileRow, v: &VersionSummary, variants: Vec<VariantRow>) -> Self {
        let permissions = file.permissions();
        Self {
            id: file.id,
            bucket_id: file.bucket_id,
            name: file.name,
            size: v.size,
            content_type: v.content_type.clone(),
            sha256: v.sha256.clone(),
            version: v.number,
            tags: file.tags,
            metadata: file.metadata.0,
            width: v.width,
            height: v.height,
            variants: variants.into_iter().map(Into::into).collect(),
            uploader_id: file.uploader_id,
            permissions,
            created_at: file.created_at,
            updated_at: file.updated_at,
        }
    }
}

impl VersionResponse {
    pub fn new(v: VersionRow, current: VersionId) -> Self {
        Self {
            current: v.id == current,
            number: v.number,
            size: v.size,
            content_type: v.content_type,
            sha256: v.sha256,
            width: v.width,
            height: v.height,
            created_at: v.created_at,
        }
    }
}

/// A preview's settings, defaults filled in, with the key that names it (in the cache and in
/// a signed URL's grant).
pub struct PreviewSpec {
    pub width: u32,
    pub height: u32,
    pub fit: Fit,
    pub format: Format,
    pub key: String,
}

impl PreviewOptions {
    /// The preview asked for, each side at most `max` (`storage.max_preview_dimension`, also
    /// the default) and snapped up to the first of `sizes` that is as large, so that callers
    /// cannot make a decode and a stored preview per pixel of width.
    pub fn spec(self, max: u32, sizes: &[u32]) -> Result<PreviewSpec, StorageError> {
        let (width, height) = (self.width.unwrap_or(max), self.height.unwrap_or(max));
        if !(1..=max).contains(&width) || !(1..=max).contains(&height) {
            return Err(StorageError::InvalidPreview(max));
        }
        let snap = |side: u32| {
            sizes
                .iter()
                .copied()
                .filter(|s| (side..=max).contains(s))
                .min()
                .unwrap_or(max)
        };
        let (width, height) = (snap(width), snap(height));
        let (fit, format) = (
            self.fit.unwrap_or(Fit::Contain),
            self.format.unwrap_or(Format::Jpeg),
        );
        let key = format!("{width}x{height}-{}.{}", fit.name(), format.name());
        Ok(PreviewSpec {
            width,
            height,
            fit,
            format,
            key,
        })
    }
}

impl PreviewSpec {
    /// The query string that asks for exactly this preview.
    pub fn query(&self) -> String {
        format!(
            "width={}&height={}&fit={}&format={}",
            self.width,
            self.height,
            self.fit.name(),
            self.format.name()
        )
    }
}
