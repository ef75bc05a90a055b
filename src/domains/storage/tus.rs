//! Resumable uploads with the tus 1.0.0 protocol (core, creation, termination, expiration),
//! so tus clients (tus-js-client, Uppy, tus-py-client) resume a broken upload where it
//! stopped. Each PATCH streams into its own object, and what arrived before a connection
//! broke is kept; when the last byte arrives the parts are joined through the same pipeline
//! as a direct upload (type check, SHA-256), and the file appears.

use actix_web::http::header::{self, HeaderMap};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{Duration, Utc};
use futures_util::{StreamExt, TryStreamExt};
use serde_json::json;
use sha2::{Digest, Sha256};
use utoipa::OpenApi;
use uuid::Uuid;

use super::access;
use super::error::{StorageError, UPLOAD_BUCKET_GONE};
use super::model::{BucketId, FileId, UploadId};
use super::repo::{self, NewUpload, UploadRow};
use super::sniff;
use super::state::StorageState;
use super::upload::{self, FileDetails, Record, commit_upload, limit_for};
use crate::platform::Platform;
use crate::platform::error::responses::{
    BadRequest, Forbidden, NotFound, TooLarge, UnsupportedType,
};
use crate::platform::error::{OnConstraint, Problem};
use crate::platform::grants::{Caller, ItemPermissions};
use crate::platform::http::rate_limit::RateLimiter;
use crate::platform::http::{Endpoint, Routes};

const VERSION: &str = "1.0.0";

#[derive(OpenApi)]
#[openapi(paths(options, create_upload, upload_offset, append, terminate))]
pub struct TusApi;

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

fn check_version(headers: &HeaderMap) -> Result<(), StorageError> {
    match headers.get("tus-resumable").and_then(|v| v.to_str().ok()) {
        Some(VERSION) => Ok(()),
        _ => Err(StorageError::tus_version(VERSION)),
    }
}

/// `Upload-Metadata`: comma-separated `key base64value` pairs.
fn metadata(
    headers: &HeaderMap,
) -> Result<std::collections::HashMap<String, String>, StorageError> {
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
                StorageError::InvalidMetadata(format!(
                    "Upload-Metadata: `{key}` is not base64 UTF-8."
                ))
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
/// version of that file). Answers with the upload's URL in `Location`. `Upload-Length` is
/// reserved from the payer's quota until the upload finishes, expires or is ended. An upload
/// expires after `storage.unstarted_upload_expiry_secs` until its first bytes arrive, then
/// `storage.upload_expiry_hours` after its creation (see `Upload-Expires` on `HEAD`).
#[utoipa::path(
    post, path = "/buckets/{bucket}/uploads", tag = "storage", security((), ("bearer" = []), ("api_key" = [])),
    params(("bucket" = Uuid, Path), ("Tus-Resumable" = String, Header), ("Upload-Length" = u64, Header), ("Upload-Metadata" = Option<String>, Header)),
    responses(
        (status = 201, description = "Location: the upload's URL (for an anonymous upload, with the secret `token` that alone may resume it, also in `Upload-Token`); Upload-Expires"),
        BadRequest,
        Forbidden,
        NotFound,
        (status = 412, description = "Not tus 1.0.0 (`tus_version`; see `Tus-Version`)", body = Problem, content_type = "application/problem+json"),
        TooLarge,
        (status = 415, description = "The name's extension is not allowed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad `permissions` grants", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The payer has `storage.max_open_uploads_per_user` uploads open (`limit_reached`); for an anonymous upload, the bucket has `storage.max_anonymous_open_uploads_per_bucket` anonymous uploads open, or the caller's address (an IPv6 /64) `storage.max_anonymous_open_uploads_per_ip` in it, or the bucket's open anonymous uploads would reserve more than `storage.max_anonymous_reserved_bytes_per_bucket` (`anonymous_limit_reached`)", body = Problem, content_type = "application/problem+json"),
        (status = 507, description = "`Upload-Length` does not fit what is left of the payer's quota, counting what open uploads reserve (`quota_exceeded`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_upload(
    req: HttpRequest,
    platform: web::Data<Platform>,
    state: web::Data<StorageState>,
    limiter: web::Data<RateLimiter>,
    caller: Caller,
    path: web::Path<BucketId>,
) -> Result<HttpResponse, StorageError> {
    check_version(req.headers())?;
    caller.require_scope("storage.write")?;
    let length: i64 = req
        .headers()
        .get("upload-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .ok_or(StorageError::InvalidLength)?;
    let meta = metadata(req.headers())?;
    let name = sniff::sanitize_name(meta.get("filename").map(String::as_str).unwrap_or_default());
    let mut conn = platform.db.acquire().await?;
    let t = access::bucket(&mut conn, &caller, *path).await?;
    let existing = match meta.get("file_id") {
        Some(raw) => {
            // A new version needs the right to change the file.
            let id = raw
                .parse::<FileId>()
                .map_err(|_| StorageError::FileNotFound)?;
            let (ft, file) = access::changeable(&mut conn, &caller, id, false).await?;
            if ft.bucket.id != t.bucket.id {
                return Err(StorageError::FileNotFound);
            }
            Some(file.id)
        }
        None => {
            if !t.access.create {
                return Err(StorageError::UploadNotAllowed);
            }
            None
        }
    };
    // The whole length must fit now, before any byte is sent.
    limit_for(&mut conn, &state, &caller, &t)
        .await?
        .check(length as u64)?;
    if !sniff::extension_allowed(&t.bucket.allowed_extensions, &name) {
        return Err(StorageError::ExtensionNotAllowed(
            t.bucket.allowed_extensions.join(", "),
        ));
    }
    let permissions: Option<ItemPermissions> = match meta.get("permissions") {
        Some(raw) => Some(
            serde_json::from_str(raw)
                .map_err(|_| StorageError::InvalidMetadata("permissions must be JSON".into()))?,
        ),
        None => None,
    };
    if let Some(p) = &permissions {
        let errors = p.check("permissions.");
        if !errors.is_empty() {
            return Err(StorageError::invalid(errors));
        }
    }
    drop(conn);
    // Short until the first bytes arrive (`add_part` then extends it to the full expiry), so
    // an upload that is never started soon gives back its reservation and its place.
    let expires_at = Utc::now() + Duration::seconds(state.settings.unstarted_upload_expiry_secs);
    // An anonymous upload has no account to belong to: it belongs to whoever holds the secret
    // its URL carries.
    let token = caller.user_id.is_none().then(new_token);
    let payer = upload::payer(&caller, &t);
    let client_ip = caller
        .user_id
        .is_none()
        .then(|| address_group(&limiter.client_ip(&req)));
    let u = NewUpload {
        bucket: t.bucket.id,
        uploader: caller.user_id,
        file: existing,
        name: &name,
        length,
        options: json!({"tags": meta.get("tags"), "permissions": permissions}),
        expires_at,
        quota_owner: payer,
        token_hash: token.as_deref().map(token_hash),
        max_open: state.settings.max_open_uploads_per_user,
        client_ip: client_ip.as_deref(),
        max_anonymous_per_bucket: state.settings.max_anonymous_open_uploads_per_bucket,
        max_anonymous_per_ip: state.settings.max_anonymous_open_uploads_per_ip,
        max_anonymous_reserved: state.settings.max_anonymous_reserved_bytes_per_bucket,
    };
    // The whole length is reserved now (one conditional upsert, which also serialises the
    // payer's concurrent creations), and given back when the upload row goes.
    let mut tx = platform.db.begin().await?;
    if !repo::charge(&mut tx, payer, length, state.settings.quota_bytes_per_user).await? {
        return Err(StorageError::QuotaExceeded);
    }
    let row = repo::insert_upload(&mut tx, &u)
        .await
        .on_constraint(UPLOAD_BUCKET_GONE, || StorageError::BucketNotFound)?
        .map_err(|cap| match cap {
            repo::UploadCap::Payer => {
                StorageError::TooManyUploads(state.settings.max_open_uploads_per_user)
            }
            repo::UploadCap::Anonymous => StorageError::TooManyAnonymousUploads,
        })?;
    tx.commit().await?;
    let mut location = format!("{}/api/v1/storage/uploads/{}", state.public_base, row.id);
    if let Some(token) = &token {
        location.push_str(&format!("?token={token}"));
    }
    let mut res = tus(HttpResponse::Created());
    res.insert_header((header::LOCATION, location))
        .insert_header(("Upload-Expires", expires_at.to_rfc2822()));
    if let Some(token) = token {
        res.insert_header((UPLOAD_TOKEN, token));
    }
    Ok(res.finish())
}

/// The header an anonymous upload's secret may come in, besides its URL's `token`.
const UPLOAD_TOKEN: &str = "Upload-Token";

/// What an anonymous upload's address is counted as: an IPv4 address itself, an IPv6 one by
/// its /64 (one host usually holds a whole /64, so counting single addresses caps nothing).
fn address_group(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        _ => ip.to_owned(),
    }
}

/// 32 random bytes, base64url: the secret of an anonymous upload.
fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What is stored of a secret: its SHA-256, so a read of the table resumes no upload.
fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The secret a request presents: the URL's `token` (what a tus client keeps and reuses) or
/// the `Upload-Token` header.
fn presented_token(req: &HttpRequest) -> Option<String> {
    let from_query = web::Query::<UploadAccess>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.into_inner().token);
    from_query.or_else(|| {
        req.headers()
            .get(UPLOAD_TOKEN)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    })
}

/// The query an upload's URL carries.
#[derive(serde::Deserialize)]
struct UploadAccess {
    token: Option<String>,
}

/// The upload, if the caller created it (uploads are not shared): the same account, or for
/// an anonymous upload, the secret of its URL. Anything else is a 404.
async fn own_upload(
    conn: &mut sqlx::PgConnection,
    req: &HttpRequest,
    caller: &Caller,
    id: UploadId,
    lock: bool,
) -> Result<UploadRow, StorageError> {
    let u = repo::upload(conn, id, lock)
        .await?
        .ok_or(StorageError::UploadNotFound)?;
    let mine = match (u.uploader_id, &u.token_hash) {
        (Some(uploader), _) => caller.user_id == Some(uploader),
        // Compared as digests: how long the comparison takes says nothing about the secret.
        (None, Some(hash)) => presented_token(req).is_some_and(|t| token_hash(&t) == *hash),
        // Anonymous uploads made before they had secrets: nobody may resume them.
        (None, None) => false,
    };
    if mine {
        Ok(u)
    } else {
        Err(StorageError::UploadNotFound)
    }
}

/// How much of the upload has arrived (`Upload-Offset`): resume from there.
#[utoipa::path(
    head, path = "/uploads/{upload}", tag = "storage", security((), ("bearer" = []), ("api_key" = [])),
    params(("upload" = Uuid, Path), ("Tus-Resumable" = String, Header), ("token" = Option<String>, Query, description = "An anonymous upload's secret, as the `Location` of its creation carries it"), ("Upload-Token" = Option<String>, Header, description = "The same secret, for clients that keep the URL without its query")),
    responses((status = 200, description = "Upload-Offset and Upload-Length"), (status = 404, description = "No such upload"))
)]
pub async fn upload_offset(
    req: HttpRequest,
    platform: web::Data<Platform>,
    caller: Caller,
    path: web::Path<UploadId>,
) -> Result<HttpResponse, StorageError> {
    check_version(req.headers())?;
    let mut conn = platform.db.acquire().await?;
    let u = own_upload(&mut conn, &req, &caller, *path, false).await?;
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
    params(("upload" = Uuid, Path), ("Tus-Resumable" = String, Header), ("Upload-Offset" = u64, Header), ("token" = Option<String>, Query, description = "An anonymous upload's secret, as the `Location` of its creation carries it"), ("Upload-Token" = Option<String>, Header, description = "The same secret, for clients that keep the URL without its query")),
    request_body(content = Vec<u8>, content_type = "application/offset+octet-stream"),
    responses(
        (status = 204, description = "Upload-Offset: the bytes received so far"),
        BadRequest,
        NotFound,
        (status = 409, description = "Upload-Offset is not where the upload stands (`offset_mismatch`)", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Not tus 1.0.0 (`tus_version`; see `Tus-Version`)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "More bytes than Upload-Length (`upload_too_long`)", body = Problem, content_type = "application/problem+json"),
        UnsupportedType,
    )
)]
pub async fn append(
    req: HttpRequest,
    platform: web::Data<Platform>,
    state: web::Data<StorageState>,
    caller: Caller,
    path: web::Path<UploadId>,
    body: web::Payload,
) -> Result<HttpResponse, StorageError> {
    check_version(req.headers())?;
    if req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        != Some("application/offset+octet-stream")
    {
        return Err(StorageError::NotOffsetStream);
    }
    let offset: i64 = req
        .headers()
        .get("upload-offset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .ok_or(StorageError::InvalidOffset)?;
    let u = {
        let mut conn = platform.db.acquire().await?;
        own_upload(&mut conn, &req, &caller, *path, false).await?
    };
    if offset != u.received {
        return Err(StorageError::OffsetMismatch(u.received));
    }
    // Stream into this part's object, keeping whatever arrives before a break.
    let room = (u.length - u.received) as u64;
    let key = format!("uploads/{}/{}-{}", u.id, offset, Uuid::now_v7().simple());
    state.track(&key).await?;
    let mut writer = state.store.writer(&key).await?;
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
                    return Err(StorageError::UploadTooLong(u.length as u64));
                }
                writer.write(chunk).await?;
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
    writer.finish().await?;
    let mut tx = platform.db.begin().await?;
    let Some(locked) = repo::upload(&mut tx, u.id, true).await? else {
        state.discard(&key).await;
        return Err(StorageError::UploadNotFound);
    };
    if locked.received != offset {
        // Another request for the same offset won the race.
        drop(tx);
        state.discard(&key).await;
        return Err(StorageError::OffsetMismatch(locked.received));
    }
    repo::add_part(
        &mut tx,
        u.id,
        offset,
        got as i64,
        &key,
        state.settings.upload_expiry_hours as i32,
    )
    .await?;
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

/// Joins the parts through the upload pipeline and records the file (or version).
async fn finish(
    platform: &Platform,
    state: &StorageState,
    caller: &Caller,
    u: UploadRow,
) -> Result<(), StorageError> {
    let mut conn = platform.db.acquire().await?;
    let t = access::bucket(&mut conn, caller, u.bucket_id).await?;
    let parts = repo::parts(&mut conn, u.id).await?;
    let mut limit = limit_for(&mut conn, state, caller, &t).await?;
    drop(conn);
    // The usage counted includes this upload's own reservation, which the commit gives back.
    limit.quota_left = limit
        .quota_left
        .map(|left| left.saturating_add(u64::try_from(u.reserved).unwrap_or(0)));
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
            let record = match u.file_id {
                Some(id) => Record::Version(id),
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
                    Record::File(FileDetails {
                        name: u.name.clone(),
                        tags,
                        metadata: serde_json::Map::new(),
                        permissions,
                    })
                }
            };
            commit_upload(platform, state, caller, &t, stored, record, Some(u.id))
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
    params(("upload" = Uuid, Path), ("Tus-Resumable" = String, Header), ("token" = Option<String>, Query, description = "An anonymous upload's secret, as the `Location` of its creation carries it"), ("Upload-Token" = Option<String>, Header, description = "The same secret, for clients that keep the URL without its query")),
    responses((status = 204), NotFound)
)]
pub async fn terminate(
    req: HttpRequest,
    platform: web::Data<Platform>,
    state: web::Data<StorageState>,
    caller: Caller,
    path: web::Path<UploadId>,
) -> Result<HttpResponse, StorageError> {
    check_version(req.headers())?;
    let mut conn = platform.db.acquire().await?;
    let u = own_upload(&mut conn, &req, &caller, *path, false).await?;
    repo::delete_upload(&mut conn, u.id).await?;
    state.collect_soon();
    Ok(tus(HttpResponse::NoContent()).finish())
}
