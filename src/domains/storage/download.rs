//! Downloads: who may read (a token, a grant, a public bucket or a signed URL), signed URLs
//! themselves, and streaming the bytes back with one `Range` (206, or 416 past the end),
//! `ETag` with `If-None-Match` (304), and headers that keep uploaded content from running as
//! a page of the API's origin.

use std::ops::Range;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{Duration, Utc};
use sqlx::PgConnection;

use super::backend::Store;
use super::buckets::{self, Target};
use super::files::{file_id, no_file, readable};
use super::model::*;
use super::repo::{self, FileRow, VersionRow};
use super::signing::Grant;
use super::{StorageState, sniff, variants};
use crate::platform::Platform;
use crate::platform::error::{ApiError, FieldError, Problem};
use crate::platform::grants::Caller;

/// One object to send.
pub struct Object<'a> {
    pub key: &'a str,
    pub size: u64,
    pub content_type: &'a str,
    /// Quoted.
    pub etag: String,
    pub name: &'a str,
    /// Readable by anyone (shared caches may keep it).
    pub public: bool,
    pub force_attachment: bool,
}

/// The byte range asked for: `None` for the whole object (no header, or one this server
/// does not serve, such as several ranges), `Err` when it starts past the end.
pub fn parse_range(header: Option<&str>, size: u64) -> Result<Option<Range<u64>>, ()> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((start, end)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (start, end) = (start.trim(), end.trim());
    let range = match (start.parse::<u64>(), end.parse::<u64>()) {
        (Ok(s), Ok(e)) if s <= e => s..(e + 1).min(size),
        (Ok(s), Err(_)) if end.is_empty() => s..size,
        (Err(_), Ok(n)) if start.is_empty() && n > 0 => size.saturating_sub(n)..size,
        _ => return Ok(None),
    };
    if range.start >= size {
        return Err(());
    }
    Ok(Some(range))
}

/// Every byte but RFC 3986's unreserved characters as `%XX` (for header parameters and URL
/// path segments alike).
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// RFC 6266 / 5987: a plain ASCII fallback and the exact UTF-8 name.
fn disposition(kind: &str, name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "{kind}; filename=\"{ascii}\"; filename*=UTF-8''{}",
        percent_encode(name)
    )
}

pub async fn serve(
    req: &HttpRequest,
    store: &Store,
    o: Object<'_>,
) -> Result<HttpResponse, ApiError> {
    let mut res = HttpResponse::build(StatusCode::OK);
    let etag = HeaderValue::from_str(&o.etag).map_err(ApiError::internal)?;
    res.insert_header((header::ETAG, etag));
    res.insert_header((header::ACCEPT_RANGES, "bytes"));
    res.insert_header((
        header::CACHE_CONTROL,
        if o.public {
            "public, max-age=300"
        } else {
            "private, no-cache"
        },
    ));
    // Served bytes are never a page or a script of this origin.
    res.insert_header((
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; sandbox",
    ));
    res.insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    let kind = if !o.force_attachment && sniff::inline_safe(o.content_type) {
        "inline"
    } else {
        "attachment"
    };
    if let Ok(v) = HeaderValue::from_str(&disposition(kind, o.name)) {
        res.insert_header((header::CONTENT_DISPOSITION, v));
    }
    let none_match = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    if none_match.is_some_and(|v| v.split(',').any(|t| t.trim() == o.etag || t.trim() == "*")) {
        return Ok(res.status(StatusCode::NOT_MODIFIED).finish());
    }
    let range_header = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok());
    let range = match parse_range(range_header, o.size) {
        Ok(r) => r,
        Err(()) => {
            return Err(
                ApiError::new(StatusCode::RANGE_NOT_SATISFIABLE, "range_not_satisfiable")
                    .detail(format!("The file is {} bytes long.", o.size))
                    .header(
                        header::CONTENT_RANGE,
                        HeaderValue::from_str(&format!("bytes */{}", o.size))
                            .map_err(ApiError::internal)?,
                    ),
            );
        }
    };
    res.insert_header((header::CONTENT_TYPE, o.content_type));
    let length = match &range {
        Some(r) => {
            res.status(StatusCode::PARTIAL_CONTENT);
            res.insert_header((
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{}", r.start, r.end - 1, o.size),
            ));
            r.end - r.start
        }
        None => o.size,
    };
    res.no_chunking(length);
    let body = store.read(o.key, range).await.map_err(ApiError::internal)?;
    Ok(res.streaming(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(Some("bytes=0-9"), 100), Ok(Some(0..10)));
        assert_eq!(parse_range(Some("bytes=90-"), 100), Ok(Some(90..100)));
        assert_eq!(parse_range(Some("bytes=-10"), 100), Ok(Some(90..100)));
        assert_eq!(parse_range(Some("bytes=50-500"), 100), Ok(Some(50..100)));
        assert_eq!(parse_range(Some("bytes=100-"), 100), Err(()));
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 100), Ok(None));
        assert_eq!(parse_range(Some("items=0-1"), 100), Ok(None));
        assert_eq!(parse_range(Some("bytes=9-1"), 100), Ok(None));
        assert_eq!(parse_range(None, 100), Ok(None));
    }

    #[test]
    fn dispositions_quote_safely() {
        assert_eq!(
            disposition("inline", "a b.png"),
            "inline; filename=\"a b.png\"; filename*=UTF-8''a%20b.png"
        );
        assert!(
            disposition("attachment", "é\".txt").starts_with("attachment; filename=\"__.txt\"")
        );
    }
}

/// Checks a signed URL's signature and expiry (403 on either), or the caller's grants;
/// returns the file with its bucket and current version, read in one query.
pub async fn authorised(
    conn: &mut PgConnection,
    state: &StorageState,
    caller: &Caller,
    raw: &str,
    (signature, expires): (Option<&String>, Option<i64>),
    version: Option<i32>,
    variant: Option<&str>,
) -> Result<(Target, FileRow, VersionRow), ApiError> {
    let id = file_id(raw)?;
    match (signature, expires) {
        (Some(signature), Some(expires)) => {
            let grant = Grant {
                file: id,
                version,
                variant,
                expires,
            };
            if !state.signer.verify(&grant, signature) {
                return Err(ApiError::forbidden("The URL's signature is not valid.")
                    .with_code("invalid_signature"));
            }
            if expires < Utc::now().timestamp() {
                return Err(ApiError::forbidden("The URL has expired.").with_code("url_expired"));
            }
            let (file, bucket, current) = repo::file_bundle(conn, id).await?.ok_or_else(no_file)?;
            let access = buckets::access(caller, &bucket);
            Ok((Target { bucket, access }, file, current))
        }
        (None, None) => {
            caller.require_scope("storage.read")?;
            let (file, bucket, current) = repo::file_bundle(conn, id).await?.ok_or_else(no_file)?;
            let access = buckets::access(caller, &bucket);
            if !access.visible() || !access.allows(access.read_all, caller, &file.perm_read) {
                return Err(no_file());
            }
            Ok((Target { bucket, access }, file, current))
        }
        _ => Err(
            ApiError::forbidden("A signed URL carries both expires and signature.")
                .with_code("invalid_signature"),
        ),
    }
}

fn public_read(t: &Target) -> bool {
    t.bucket.public
}

pub async fn serve_version(
    req: &HttpRequest,
    state: &StorageState,
    t: &Target,
    file: &FileRow,
    v: &VersionRow,
    params: &DownloadParams,
) -> Result<HttpResponse, ApiError> {
    let o = Object {
        key: &v.object_key,
        size: v.size as u64,
        content_type: &v.content_type,
        etag: format!("\"{}\"", v.sha256),
        name: &file.name,
        public: public_read(t),
        force_attachment: params.disposition.as_deref() == Some("attachment"),
    };
    serve(req, &state.store, o).await
}

/// Download the current version: `Range`, `If-None-Match`, public buckets without a token,
/// private files with a token that may read them or a signed URL.
#[utoipa::path(
    get, path = "/files/{file}/download", tag = "storage", security((), ("bearer" = []), ("api_key" = [])),
    params(("file" = Uuid, Path), DownloadParams, DownloadHeaders),
    responses(
        (status = 200, description = "The bytes", content_type = "application/octet-stream"),
        (status = 206, description = "The range asked for"),
        (status = 304, description = "If-None-Match matched"),
        (status = 403, description = "A signed URL that was changed or has expired", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 416, description = "The range starts past the end", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn download_file(
    req: HttpRequest,
    platform: web::Data<Platform>,
    state: web::Data<StorageState>,
    caller: Caller,
    path: web::Path<String>,
    params: web::Query<DownloadParams>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = platform.db.acquire().await?;
    let (t, file, v) = authorised(
        &mut conn,
        &state,
        &caller,
        &path,
        (params.signature.as_ref(), params.expires),
        None,
        None,
    )
    .await?;
    drop(conn);
    serve_version(&req, &state, &t, &file, &v, &params).await
}

/// Download a variant of the current version by name (made shortly after upload).
#[utoipa::path(
    get, path = "/files/{file}/variants/{name}", tag = "storage", security((), ("bearer" = []), ("api_key" = [])),
    params(("file" = Uuid, Path), ("name" = String, Path), DownloadParams, DownloadHeaders),
    responses(
        (status = 200, description = "The variant's bytes"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such file or variant, or not made yet (`variant_pending`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn download_variant(
    req: HttpRequest,
    platform: web::Data<Platform>,
    state: web::Data<StorageState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    params: web::Query<DownloadParams>,
) -> Result<HttpResponse, ApiError> {
    let (raw, name) = path.into_inner();
    let mut conn = platform.db.acquire().await?;
    let (t, file, _) = authorised(
        &mut conn,
        &state,
        &caller,
        &raw,
        (params.signature.as_ref(), params.expires),
        None,
        Some(&name),
    )
    .await?;
    let Some(variant) = repo::variant(&mut conn, file.current_version, &name).await? else {
        let declared = t.bucket.variants.0.iter().any(|v| v.name == name);
        return Err(if declared {
            ApiError::not_found("The variant is not made yet (or the file is not an image).")
                .with_code("variant_pending")
        } else {
            ApiError::not_found("The bucket has no such variant.")
        });
    };
    drop(conn);
    let o = Object {
        key: &variant.object_key,
        size: variant.size as u64,
        content_type: &variant.content_type,
        etag: format!("\"{}-{}\"", variant.version_id.simple(), variant.name),
        name: &file.name,
        public: public_read(&t),
        force_attachment: params.disposition.as_deref() == Some("attachment"),
    };
    serve(&req, &state.store, o).await
}

/// A URL that downloads the file (or one version, or a variant) without a token until it
/// expires. Changing any part of it, or using it after expiry, gives 403.
#[utoipa::path(
    post, path = "/files/{file}/signed-url", tag = "storage", request_body = SignedUrlRequest, security((), ("bearer" = []), ("api_key" = [])),
    params(("file" = Uuid, Path)),
    responses(
        (status = 200, body = SignedUrlResponse),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn signed_url(
    platform: web::Data<Platform>,
    state: web::Data<StorageState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<SignedUrlRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require_scope("storage.read")?;
    let body = body.into_inner();
    let ttl = body.expires_in.unwrap_or(3600);
    if !(1..=state.settings.max_signed_url_secs).contains(&ttl) {
        return Err(ApiError::validation(vec![FieldError {
            field: "expires_in".into(),
            code: "range".into(),
            message: format!(
                "must be between 1 and {}",
                state.settings.max_signed_url_secs
            ),
        }]));
    }
    let mut conn = platform.db.acquire().await?;
    let (_, file) = readable(&mut conn, &caller, &path, false).await?;
    if let Some(n) = body.version
        && repo::version_by_number(&mut conn, file.id, n)
            .await?
            .is_none()
    {
        return Err(ApiError::not_found("No such version."));
    }
    let expires_at = Utc::now() + Duration::seconds(ttl);
    let preview = body
        .preview
        .map(|p| variants::preview_spec(&state, p))
        .transpose()?;
    let preview_grant = preview.as_ref().map(|p| format!("preview:{}", p.key));
    let grant = Grant {
        file: file.id,
        version: body.version,
        variant: preview_grant.as_deref().or(body.variant.as_deref()),
        expires: expires_at.timestamp(),
    };
    let signature = state.signer.sign(&grant);
    let target = match (&body.version, &body.variant, &preview) {
        (Some(n), _, _) => format!("versions/{n}/download?"),
        (None, _, Some(p)) => format!("preview?{}&", p.query()),
        (None, Some(v), None) => format!("variants/{}?", percent_encode(v)),
        (None, None, None) => "download?".into(),
    };
    let url = format!(
        "{}/api/v1/storage/files/{}/{target}expires={}&signature={signature}",
        state.public_base, file.id, grant.expires
    );
    Ok(HttpResponse::Ok().json(SignedUrlResponse { url, expires_at }))
}
