//! Versions of a file: list, upload a new one, download, restore and delete one.

use actix_multipart::Multipart;
use actix_web::{HttpRequest, HttpResponse, web};

use super::StorageState;
use super::download::{authorised, serve_version};
use super::files::{
    changeable, commit_upload, file_response, limit_for, no_file, readable, receive,
};
use super::model::*;
use super::repo;
use crate::platform::Platform;
use crate::platform::error::{ApiError, Problem};
use crate::platform::grants::Caller;

fn version_number(raw: &str) -> Result<i32, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::not_found("No such version."))
}

/// Download one version.
#[utoipa::path(
    get, path = "/files/{file}/versions/{number}/download", tag = "storage", security((), ("bearer" = []), ("api_key" = [])),
    params(("file" = Uuid, Path), ("number" = i32, Path), DownloadParams, DownloadHeaders),
    responses(
        (status = 200, description = "The bytes", content_type = "application/octet-stream"),
        (status = 206, description = "The range asked for"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 416, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn download_version(
    req: HttpRequest,
    platform: web::Data<Platform>,
    state: web::Data<StorageState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    params: web::Query<DownloadParams>,
) -> Result<HttpResponse, ApiError> {
    let number = version_number(&path.1)?;
    let mut conn = platform.db.acquire().await?;
    let (t, file, _) = authorised(
        &mut conn,
        &state,
        &caller,
        &path.0,
        (params.signature.as_ref(), params.expires),
        Some(number),
        None,
    )
    .await?;
    let v = repo::version_by_number(&mut conn, file.id, number)
        .await?
        .ok_or_else(|| ApiError::not_found("No such version."))?;
    drop(conn);
    serve_version(&req, &state, &t, &file, &v, &params).await
}

/// A file's versions, oldest first.
#[utoipa::path(
    get, path = "/files/{file}/versions", tag = "storage", security((), ("bearer" = []), ("api_key" = [])),
    params(("file" = Uuid, Path)),
    responses((status = 200, body = VersionList), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
pub async fn list_versions(
    platform: web::Data<Platform>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require_scope("storage.read")?;
    let mut conn = platform.db.acquire().await?;
    let (_, file) = readable(&mut conn, &caller, &path, false).await?;
    let versions = repo::versions(&mut conn, file.id)
        .await?
        .into_iter()
        .map(|v| VersionResponse {
            current: v.id == file.current_version,
            number: v.number,
            size: v.size,
            content_type: v.content_type,
            sha256: v.sha256,
            width: v.width,
            height: v.height,
            created_at: v.created_at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(VersionList { versions }))
}

/// Upload a new version (multipart `file`). With versioning on, earlier versions stay;
/// otherwise they are replaced.
#[utoipa::path(
    post, path = "/files/{file}/versions", tag = "storage", request_body(content = UploadForm, content_type = "multipart/form-data"),
    security((), ("bearer" = []), ("api_key" = [])),
    params(("file" = Uuid, Path)),
    responses(
        (status = 201, body = FileResponse),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 507, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn upload_version(
    req: HttpRequest,
    platform: web::Data<Platform>,
    state: web::Data<StorageState>,
    caller: Caller,
    path: web::Path<String>,
    form: Multipart,
) -> Result<HttpResponse, ApiError> {
    caller.require_scope("storage.write")?;
    let (t, file, limit) = {
        let mut conn = platform.db.acquire().await?;
        let (t, file) = changeable(&mut conn, &caller, &path, false).await?;
        let limit = limit_for(&mut conn, &state, &caller, &t).await?;
        (t, file, limit)
    };
    limit.check_declared(&req)?;
    let (stored, _, _) = receive(&state, &t, form, limit).await?;
    let res = commit_upload(&platform, &state, &caller, &t, stored, Some(file.id), None).await?;
    state.collect_soon();
    Ok(HttpResponse::Created().json(res))
}

/// Make an earlier version the current one again.
#[utoipa::path(
    post, path = "/files/{file}/versions/{number}/restore", tag = "storage", security((), ("bearer" = []), ("api_key" = [])),
    params(("file" = Uuid, Path), ("number" = i32, Path)),
    responses(
        (status = 200, body = FileResponse),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn restore_version(
    platform: web::Data<Platform>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    caller.require_scope("storage.write")?;
    let number = version_number(&path.1)?;
    let mut tx = platform.db.begin().await?;
    let (_, file) = changeable(&mut tx, &caller, &path.0, false).await?;
    let v = repo::version_by_number(&mut tx, file.id, number)
        .await?
        .ok_or_else(|| ApiError::not_found("No such version."))?;
    repo::set_current(&mut tx, file.id, v.id).await?;
    let file = repo::file(&mut tx, file.id, false)
        .await?
        .ok_or_else(no_file)?;
    let res = file_response(&mut tx, file).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(res))
}

/// Delete one version (not the current one: restore another first).
#[utoipa::path(
    delete, path = "/files/{file}/versions/{number}", tag = "storage", security((), ("bearer" = []), ("api_key" = [])),
    params(("file" = Uuid, Path), ("number" = i32, Path)),
    responses(
        (status = 204),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It is the current version (`current_version`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete_version(
    platform: web::Data<Platform>,
    state: web::Data<StorageState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    caller.require_scope("storage.write")?;
    let number = version_number(&path.1)?;
    let mut tx = platform.db.begin().await?;
    let (_, file) = changeable(&mut tx, &caller, &path.0, true).await?;
    let v = repo::version_by_number(&mut tx, file.id, number)
        .await?
        .ok_or_else(|| ApiError::not_found("No such version."))?;
    if v.id == file.current_version {
        return Err(ApiError::conflict(
            "current_version",
            "This is the current version: restore another one first.",
        ));
    }
    repo::delete_version(&mut tx, v.id).await?;
    tx.commit().await?;
    state.collect_soon();
    Ok(HttpResponse::NoContent().finish())
}
