//! A file's versions: list, upload a new one, download, restore and delete one.

use actix_multipart::Multipart;
use actix_web::{HttpRequest, HttpResponse, web};
use utoipa::OpenApi;

use super::access::{self, Opens};
use super::error::StorageError;
use super::model::*;
use super::repo;
use super::serve::serve_version;
use super::state::StorageState;
use super::upload::{Record, commit_upload, limit_for, receive};
use crate::platform::Platform;
use crate::platform::error::Problem;
use crate::platform::error::responses::{
    BadRequest, Conflict, Forbidden, NotFound, TooLarge, UnsupportedType,
};
use crate::platform::grants::Caller;
use crate::platform::http::{Endpoint, Routes};
use crate::platform::page::{Page, PageQuery};

#[derive(OpenApi)]
#[openapi(paths(
    list_versions,
    upload_version,
    download_version,
    restore_version,
    delete_version
))]
pub struct VersionsApi;

pub fn configure(routes: &mut Routes) {
    routes
        .add(
            Endpoint::at("/files/{file}/versions")
                .get(list_versions)
                .post(upload_version),
        )
        .add(Endpoint::at("/files/{file}/versions/{number}").delete(delete_version))
        .add(Endpoint::at("/files/{file}/versions/{number}/download").get(download_version))
        .add(Endpoint::at("/files/{file}/versions/{number}/restore").post(restore_version));
}

/// Download one version.
#[utoipa::path(
    get, path = "/files/{file}/versions/{number}/download", tag = "storage", security((), ("bearer" = []), ("api_key" = [])),
    params(("file" = Uuid, Path), ("number" = i32, Path), DownloadParams, DownloadHeaders),
    responses(
        (status = 200, description = "The bytes", content_type = "application/octet-stream"),
        (status = 206, description = "The range asked for"),
        (status = 304, description = "If-None-Match matched"),
        Forbidden,
        NotFound,
        (status = 416, description = "The range starts past the end", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn download_version(
    req: HttpRequest,
    platform: web::Data<Platform>,
    state: web::Data<StorageState>,
    caller: Caller,
    path: web::Path<(FileId, i32)>,
    params: web::Query<DownloadParams>,
) -> Result<HttpResponse, StorageError> {
    let (id, number) = path.into_inner();
    let mut conn = platform.db.acquire().await?;
    let opens = Opens {
        version: Some(number),
        variant: None,
    };
    let (t, file, _) =
        access::downloadable(&mut conn, &state, &caller, id, params.signed(), opens).await?;
    let v = repo::version_by_number(&mut conn, file.id, number)
        .await?
        .ok_or(StorageError::VersionNotFound)?;
    drop(conn);
    serve_version(&req, &state, &t, &file, &v, &params).await
}

/// A file's versions, oldest first. Paged: with versioning on, every upload adds one.
#[utoipa::path(
    get, path = "/files/{file}/versions", tag = "storage", security((), ("bearer" = []), ("api_key" = [])),
    params(("file" = Uuid, Path), PageQuery),
    responses((status = 200, body = Page<VersionResponse>), BadRequest, NotFound)
)]
pub async fn list_versions(
    platform: web::Data<Platform>,
    caller: Caller,
    path: web::Path<FileId>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, StorageError> {
    caller.require_scope("storage.read")?;
    let (limit, after) = (page.limit()?, page.cursor::<i32>()?);
    let mut conn = platform.db.acquire().await?;
    let (_, file) = access::readable(&mut conn, &caller, *path, false).await?;
    let rows = repo::versions(&mut conn, file.id, after, page.fetch()?).await?;
    let current = file.current_version;
    Ok(HttpResponse::Ok().json(Page::from_rows(
        rows,
        limit,
        |v| v.number,
        |v| VersionResponse::new(v, current),
    )))
}

/// Upload a new version (multipart `file`). With versioning on, earlier versions stay;
/// otherwise they are replaced.
#[utoipa::path(
    post, path = "/files/{file}/versions", tag = "storage", request_body(content = UploadForm, content_type = "multipart/form-data"),
    security((), ("bearer" = []), ("api_key" = [])),
    params(("file" = Uuid, Path)),
    responses(
        (status = 201, body = FileResponse),
        BadRequest,
        Forbidden,
        NotFound,
        TooLarge,
        UnsupportedType,
        (status = 507, description = "Past the uploader's quota (`quota_exceeded`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn upload_version(
    req: HttpRequest,
    platform: web::Data<Platform>,
    state: web::Data<StorageState>,
    caller: Caller,
    path: web::Path<FileId>,
    form: Multipart,
) -> Result<HttpResponse, StorageError> {
    caller.require_scope("storage.write")?;
    let (t, file, limit) = {
        let mut conn = platform.db.acquire().await?;
        let (t, file) = access::changeable(&mut conn, &caller, *path, false).await?;
        let limit = limit_for(&mut conn, &state, &caller, &t).await?;
        (t, file, limit)
    };
    limit.check_declared(&req)?;
    let (stored, _, _) = receive(&state, &t, form, limit).await?;
    let res = commit_upload(
        &platform,
        &state,
        &caller,
        &t,
        stored,
        Record::Version(file.id),
        None,
    )
    .await?;
    state.collect_soon();
    Ok(HttpResponse::Created().json(res))
}

/// Make an earlier version the current one again.
#[utoipa::path(
    post, path = "/files/{file}/versions/{number}/restore", tag = "storage", security((), ("bearer" = []), ("api_key" = [])),
    params(("file" = Uuid, Path), ("number" = i32, Path)),
    responses((status = 200, body = FileResponse), Forbidden, NotFound)
)]
pub async fn restore_version(
    platform: web::Data<Platform>,
    caller: Caller,
    path: web::Path<(FileId, i32)>,
) -> Result<HttpResponse, StorageError> {
    caller.require_scope("storage.write")?;
    let (id, number) = path.into_inner();
    let mut tx = platform.db.begin().await?;
    let (_, file) = access::changeable(&mut tx, &caller, id, false).await?;
    let v = repo::version_by_number(&mut tx, file.id, number)
        .await?
        .ok_or(StorageError::VersionNotFound)?;
    let file = repo::set_current(&mut tx, file.id, v.id).await?;
    let res = access::file_response(&mut tx, file).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(res))
}

/// Delete one version (not the current one: restore another first).
#[utoipa::path(
    delete, path = "/files/{file}/versions/{number}", tag = "storage", security((), ("bearer" = []), ("api_key" = [])),
    params(("file" = Uuid, Path), ("number" = i32, Path)),
    responses((status = 204), Forbidden, NotFound, Conflict)
)]
pub async fn delete_version(
    platform: web::Data<Platform>,
    state: web::Data<StorageState>,
    caller: Caller,
    path: web::Path<(FileId, i32)>,
) -> Result<HttpResponse, StorageError> {
    caller.require_scope("storage.write")?;
    let (id, number) = path.into_inner();
    let mut tx = platform.db.begin().await?;
    let (_, file) = access::changeable(&mut tx, &caller, id, true).await?;
    let v = repo::version_by_number(&mut tx, file.id, number)
        .await?
        .ok_or(StorageError::VersionNotFound)?;
    if v.id == file.current_version {
        return Err(StorageError::CurrentVersion);
    }
    repo::delete_version(&mut tx, v.id).await?;
    tx.commit().await?;
    state.collect_soon();
    Ok(HttpResponse::NoContent().finish())
}
