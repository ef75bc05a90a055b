//! Resumable uploads with the tus 1.0.0 protocol (core, creation, termination, expiration),
//! so tus clients (tus-js-client, Uppy, tus-py-client) resume a broken upload where it
//! stopped. Each PATCH streams into its own object, and what arrived before a connection
//! broke is kept; when the last byte arrives the parts are joined through the same pipeline
//! as a direct upload (type check, SHA-256), and the file appears.

use crate::platform::http::{Endpoint, Routes};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{Duration, Utc};
use futures_util::{StreamExt, TryStreamExt};
use serde_json::json;
use uuid::Uuid;

use super::buckets::{self, Target};
use super::files::{self, FileDetails, commit_upload, limit_for};
use super::repo::{self, NewUpload};
use super::upload::{self, Limit};
use super::{StorageState, sniff};
use crate::platform::Platform;
use crate::platform::error::{ApiError, Problem};
use crate::platform::grants::{Caller, ItemPermissions};

const VERSION: &str = "1.0.0";

pub fn configure(routes: &mut Routes) {
    routes
        .add(
            Endpoint::at("/buckets/{bucket}/uploads")
                .post(create_upload)
                .on(actix_web::http::Method::OPTIONS, options),
        )
        .add(
            Endpoint::at("/uploads/{upload}")
                .head(upload_offset)
                .patch(append)
                .delete(terminate),
        );
}

fn tus(mut res: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    res.insert_header(("Tus-Resumable", VERSION));
    res
}

fn check_version(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get("tus-resumable").and_then(|v| v.to_str().ok()) {
        Some(VERSION) => Ok(()),
        _ => Err(
            ApiError::new(StatusCode::PRECONDITION_FAILED, "tus_version")
                .detail("Send Tus-Resumable: 1.0.0.")
                .header(
                    header::HeaderName::from_static("tus-version"),
                    header::HeaderValue::from_static(VERSION),
                ),
        ),
    }
}

fn no_upload() -> ApiError {
    ApiError::not_found("No such upload (or it expired).")
}

/// `Upload-Metadata`: comma-separated `key base64value` pairs.
fn metadata(headers: &HeaderMap) -> Result<std::collections::HashMap<String, String>, ApiError> {
    let mut out = std::collections::HashMap::new();
    let Some(raw) = headers.get("upload-metadata").and_then(|v| v.to_str().ok()) else {
        return Ok(out);
    };
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once(' ').unwrap_or((pair, ""));
        let decoded = B64
            .decode(value.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_metadata",
                    format!("Upload-Metadata: `{key}` is not base64 UTF-8."),
                )
            })?;
        out.insert(key.to_owned(), decoded);
    }
    Ok(out)
}

/// Which tus features this server has (tus discovery).
#[utoipa::path(
    options, path = "/buckets/{bucket}/uploads", tag = "storage", params(("bucket" = Uuid, Path)),
    responses((status = 204, description = "Tus-Version, Tus-Extension and Tus-Max-Size headers"))
)]
pub async fn options(state: web::Data<StorageState>) -> HttpResponse {
    tus(HttpResponse::NoContent())
        .insert_header(("Tus-Version", VERSION))
        .insert_header(("Tus-Extension", "creation,termination,expiration"))
        .insert_header(("Tus-Max-Size", state.settings.max_file_bytes.to_string()))
        .finish()
}

/// Start a resumable upload (tus creation): `Upload-Length` bytes, with `Upload-Metadata`
/// `filename`, and optionally `tags`, `permissions` (JSON) and `file_id` (to upload a new
/// version of that file). Answers with the upload's URL in `Location`.
#[utoipa::path(
    post, path = "/buckets/{bucket}/uploads", tag = "storage", security((), ("bearer" = []), ("api_key" = [])),
    params(("bucket" = Uuid, Path), ("Tus-Resumable" = String, Header), ("Upload-Length" = u64, Header), ("Upload-Metadata" = Option<String>, Header)),
    responses(
        (status = 201, description = "Location: the upload's URL; Upload-Expires"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Not tus 1.0.0", body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The name's extension is not allowed", body = Problem, content_type = "application/problem+json"),
        (status = 507, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_upload(
    req: HttpRequest,
    platform: web::Data<Platform>,
    state: web::Data<StorageState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    check_version(req.headers())?;
    caller.require_scope("storage.write")?;
    let length: i64 = req
        .headers()
        .get("upload-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_length",
                "Upload-Length must be a positive number of bytes.",
            )
        })?;
    let meta = metadata(req.headers())?;
    let name = sniff::sanitize_name(meta.get("filename").map(String::as_str).unwrap_or_default());
    let mut conn = platform.db.acquire().await?;
    let t = buckets::target(&mut conn, &caller, &path).await?;
    let existing = match meta.get("file_id") {
        Some(raw) => {
            // A new version needs the right to change the file.
            let (ft, file) = files::changeable(&mut conn, &caller, raw, false).await?;
            if ft.bucket.id != t.bucket.id {
                return Err(ApiError::not_found("No such file."));
            }
            Some(file.id)
        }
        None => {
            if !t.access.create {
                return Err(ApiError::forbidden("You may not upload to this bucket."));
            }
            None
        }
    };
    let limit = limit_for(&mut conn, &state, &caller, &t).await?;
    check_length(&limit, length as u64)?;
    if !sniff::extension_allowed(&t.bucket.allowed_extensions, &name) {
        return Err(
            ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "extension_not_allowed").detail(
                format!(
                    "This bucket accepts only {}.",
                    t.bucket.allowed_extensions.join(", ")
                ),
            ),
        );
    }
    let permissions: Option<ItemPermissions> =
        match meta.get("permissions") {
            Some(raw) => Some(serde_json::from_str(raw).map_err(|_| {
                ApiError::bad_request("invalid_metadata", "permissions must be JSON")
            })?),
            None => None,
        };
    if let Some(p) = &permissions {
        let errors = p.check("permissions.");
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
    }
    let expires_at = Utc::now() + Duration::hours(state.settings.upload_expiry_hours);
    let u = NewUpload {
        bucket: t.bucket.id,
        uploader: caller.user_id,
        file: existing,
        name: &name,
        length,
        options: json!({"tags": meta.get("tags"), "permissions": permissions}),
        expires_at,
    };
    let row = repo::insert_upload(&mut conn, &u).await?;
    Ok(tus(HttpResponse::Created())
        .insert_header((
            header::LOCATION,
            format!("{}/api/v1/storage/uploads/{}", state.public_base, row.id),
        ))
        .insert_header(("Upload-Expires", expires_at.to_rfc2822()))
        .finish())
}

fn check_length(limit: &Limit, length: u64) -> Result<(), ApiError> {
    if length > limit.file_bytes {
        return Err(upload::too_large(limit.file_bytes));
    }
    if limit.quota_left.is_some_and(|left| length > left) {
        return Err(upload::quota_exceeded());
    }
    Ok(())
}

/// The upload's caller must be its creator (uploads are not shared).
async fn own_upload(
    conn: &mut sqlx::PgConnection,
    caller: &Caller,
    raw: &str,
    lock: bool,
) -> Result<repo::UploadRow, ApiError> {
    let id = Uuid::parse_str(raw).map_err(|_| no_upload())?;
    let u = repo::upload(conn, id, lock).await?.ok_or_else(no_upload)?;
    if u.uploader_id != caller.user_id {
        return Err(no_upload());
    }
    Ok(u)
}

/// How much of the upload has arrived (`Upload-Offset`): resume from there.
#[utoipa::path(
    head, path = "/uploads/{upload}", tag = "storage", security((), ("bearer" = []), ("api_key" = [])),
    params(("upload" = Uuid, Path), ("Tus-Resumable" = String, Header)),
    responses((status = 200, description = "Upload-Offset and Upload-Length"), (status = 404, description = "No such upload"))
)]
pub async fn upload_offset(
    req: HttpRequest,
    platform: web::Data<Platform>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    check_version(req.headers())?;
    let mut conn = platform.db.acquire().await?;
    let u = own_upload(&mut conn, &caller, &path, false).await?;
    Ok(tus(HttpResponse::Ok())
        .insert_header(("Upload-Offset", u.received.to_string()))
        .insert_header(("Upload-Length", u.length.to_string()))
        .insert_header(("Upload-Expires", u.expires_at.to_rfc2822()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

/// Send the next bytes (`Content-Type: application/offset+octet-stream`, `Upload-Offset`:
/// where they start). What arrives is kept even if the connection breaks; the answer's
/// `Upload-Offset` says where to continue. The last bytes finish the upload.
#[utoipa::path(
    patch, path = "/uploads/{upload}", tag = "storage", security((), ("bearer" = []), ("api_key" = [])),
    params(("upload" = Uuid, Path), ("Tus-Resumable" = String, Header), ("Upload-Offset" = u64, Header)),
    request_body(content = Vec<u8>, content_type = "application/offset+octet-stream"),
    responses(
        (status = 204, description = "Upload-Offset: the bytes received so far"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Upload-Offset is not where the upload stands (`offset_mismatch`)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "More bytes than Upload-Length", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not application/offset+octet-stream, or the finished file's type is not allowed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn append(
    req: HttpRequest,
    platform: web::Data<Platform>,
    state: web::Data<StorageState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    check_version(req.headers())?;
    if req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        != Some("application/offset+octet-stream")
    {
        return Err(
            ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
                .detail("Send Content-Type: application/offset+octet-stream."),
        );
    }
    let offset: i64 = req
        .headers()
        .get("upload-offset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| {
            ApiError::bad_request("invalid_offset", "Upload-Offset must be a number of bytes.")
        })?;
    let u = {
        let mut conn = platform.db.acquire().await?;
        own_upload(&mut conn, &caller, &path, false).await?
    };
    if offset != u.received {
        return Err(mismatch(u.received));
    }
    // Stream into this part's object, keeping whatever arrives before a break.
    let room = (u.length - u.received) as u64;
    let key = format!("uploads/{}/{}-{}", u.id, offset, Uuid::now_v7().simple());
    state.track(&key).await?;
    let mut writer = state.store.writer(&key).await.map_err(ApiError::internal)?;
    let mut got: u64 = 0;
    let mut body = body.map_err(|e| e.to_string());
    let mut broke = false;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(chunk) => {
                got += chunk.len() as u64;
                if got > room {
                    writer.abort().await;
                    state.discard(&key).await;
                    return Err(upload::too_large(u.length as u64).with_code("upload_too_long"));
                }
                writer.write(chunk).await.map_err(ApiError::internal)?;
            }
            Err(_) => {
                broke = true;
                break;
            }
        }
    }
    if got == 0 {
        writer.abort().await;
        state.discard(&key).await;
        return Ok(tus(HttpResponse::NoContent())
            .insert_header(("Upload-Offset", u.received.to_string()))
            .finish());
    }
    writer.finish().await.map_err(ApiError::internal)?;
    let mut tx = platform.db.begin().await?;
    let Some(locked) = repo::upload(&mut tx, u.id, true).await? else {
        state.discard(&key).await;
        return Err(no_upload());
    };
    if locked.received != offset {
        // Another request for the same offset won the race.
        drop(tx);
        state.discard(&key).await;
        return Err(mismatch(locked.received));
    }
    repo::add_part(&mut tx, u.id, offset, got as i64, &key).await?;
    repo::forget_pending(&mut tx, &key).await?;
    tx.commit().await?;
    let received = offset + got as i64;
    if broke || received < u.length {
        return Ok(tus(HttpResponse::NoContent())
            .insert_header(("Upload-Offset", received.to_string()))
            .finish());
    }
    finish(&platform, &state, &caller, u).await?;
    Ok(tus(HttpResponse::NoContent())
        .insert_header(("Upload-Offset", received.to_string()))
        .finish())
}

fn mismatch(received: i64) -> ApiError {
    ApiError::conflict(
        "offset_mismatch",
        format!("The upload stands at {received} bytes: send from there."),
    )
}

/// Joins the parts through the upload pipeline and records the file (or version).
async fn finish(
    platform: &Platform,
    state: &StorageState,
    caller: &Caller,
    u: repo::UploadRow,
) -> Result<(), ApiError> {
    let mut conn = platform.db.acquire().await?;
    let t: Target = buckets::target(&mut conn, caller, &u.bucket_id.to_string()).await?;
    let parts = repo::parts(&mut conn, u.id).await?;
    let limit = limit_for(&mut conn, state, caller, &t).await?;
    drop(conn);
    let store = state.store.clone();
    let joined = futures_util::stream::iter(parts)
        .then(move |key| {
            let store = store.clone();
            async move { store.read(&key, None).await.map_err(std::io::Error::other) }
        })
        .try_flatten()
        .boxed();
    let outcome = match upload::store(state, &t.bucket, &u.name, joined, limit).await {
        Ok(stored) => {
            let new_file = match u.file_id {
                Some(_) => None,
                None => {
                    let tags: Vec<String> = u.options.0["tags"]
                        .as_str()
                        .map(|t| {
                            t.split(',')
                                .map(str::trim)
                                .filter(|t| !t.is_empty())
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_default();
                    let permissions = serde_json::from_value::<Option<ItemPermissions>>(
                        u.options.0["permissions"].clone(),
                    )
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| ItemPermissions::owner(caller.user_id));
                    Some(FileDetails {
                        name: u.name.clone(),
                        tags,
                        metadata: serde_json::Map::new(),
                        permissions,
                    })
                }
            };
            commit_upload(platform, state, caller, &t, stored, u.file_id, new_file)
                .await
                .map(|_| ())
        }
        Err(e) => Err(e),
    };
    // Done or refused, the parts are no longer needed.
    let mut conn = platform.db.acquire().await?;
    repo::delete_upload(&mut conn, u.id).await?;
    state.collect_soon();
    outcome
}

/// Abandon an upload (tus termination); what arrived is deleted.
#[utoipa::path(
    delete, path = "/uploads/{upload}", tag = "storage", security((), ("bearer" = []), ("api_key" = [])),
    params(("upload" = Uuid, Path), ("Tus-Resumable" = String, Header)),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
pub async fn terminate(
    req: HttpRequest,
    platform: web::Data<Platform>,
    state: web::Data<StorageState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    check_version(req.headers())?;
    let mut conn = platform.db.acquire().await?;
    let u = own_upload(&mut conn, &caller, &path, false).await?;
    repo::delete_upload(&mut conn, u.id).await?;
    state.collect_soon();
    Ok(tus(HttpResponse::NoContent()).finish())
}
