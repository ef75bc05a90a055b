//! Downloads of a file's current version (by a token that may read it, a public bucket or a
//! signed URL), and the signed URLs themselves.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{Duration, Utc};
use utoipa::OpenApi;

use super::access::{self, Opens};
use super::error::StorageError;
use super::model::*;
use super::repo;
use super::serve::{percent_encode, serve_version};
use super::signing::Grant;
use super::state::StorageState;
use crate::platform::Platform;
use crate::platform::error::responses::{Forbidden, Invalid, NotFound};
use crate::platform::error::{FieldError, Problem};
use crate::platform::grants::Caller;
use crate::platform::http::{Endpoint, Routes};

#[derive(OpenApi)]
#[openapi(paths(download_file, signed_url))]
pub struct DownloadApi;

pub fn configure(routes: &mut Routes) {
    routes
        .add(Endpoint::at("/files/{file}/download").get(download_file))
        .add(Endpoint::at("/files/{file}/signed-url").post(signed_url));
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
        (status = 403, description = "A signed URL that was changed (`invalid_signature`) or has expired (`url_expired`)", body = Problem, content_type = "application/problem+json"),
        NotFound,
        (status = 416, description = "The range starts past the end", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn download_file(
    req: HttpRequest,
    platform: web::Data<Platform>,
    state: web::Data<StorageState>,
    caller: Caller,
    path: web::Path<FileId>,
    params: web::Query<DownloadParams>,
) -> Result<HttpResponse, StorageError> {
    let mut conn = platform.db.acquire().await?;
    let (t, file, v) = access::downloadable(
        &mut conn,
        &state,
        &caller,
        *path,
        params.signed(),
        Opens::default(),
    )
    .await?;
    drop(conn);
    serve_version(&req, &state, &t, &file, &v, &params).await
}

/// A URL that downloads the file (or one version, or a variant, or a preview) without a
/// token until it expires. Changing any part of it, or using it after expiry, gives 403.
#[utoipa::path(
    post, path = "/files/{file}/signed-url", tag = "storage", request_body = SignedUrlRequest, security((), ("bearer" = []), ("api_key" = [])),
    params(("file" = Uuid, Path)),
    responses((status = 200, body = SignedUrlResponse), Forbidden, NotFound, Invalid)
)]
pub async fn signed_url(
    platform: web::Data<Platform>,
    state: web::Data<StorageState>,
    caller: Caller,
    path: web::Path<FileId>,
    body: web::Json<SignedUrlRequest>,
) -> Result<HttpResponse, StorageError> {
    caller.require_scope("storage.read")?;
    let body = body.into_inner();
    let ttl = body.expires_in.unwrap_or(3600);
    let max_ttl = state.settings.max_signed_url_secs;
    if !(1..=max_ttl).contains(&ttl) {
        return Err(StorageError::invalid(vec![FieldError {
            field: "expires_in".into(),
            code: "range".into(),
            message: format!("must be between 1 and {max_ttl}"),
        }]));
    }
    let mut conn = platform.db.acquire().await?;
    let (_, file) = access::readable(&mut conn, &caller, *path, false).await?;
    if let Some(n) = body.version
        && repo::version_by_number(&mut conn, file.id, n)
            .await?
            .is_none()
    {
        return Err(StorageError::VersionNotFound);
    }
    let expires_at = Utc::now() + Duration::seconds(ttl);
    let preview = body
        .preview
        .map(|p| {
            p.spec(
                state.settings.max_preview_dimension,
                &state.settings.preview_sizes,
            )
        })
        .transpose()?;
    let preview_grant = preview.as_ref().map(|p| format!("preview:{}", p.key));
    let grant = Grant {
        file: file.id.0,
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
