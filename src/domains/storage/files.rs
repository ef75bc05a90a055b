//! Files: streamed multipart uploads, metadata, listing, and the routes of everything under
//! `/files` (downloads and signed URLs live in `download`, versions in `versions`).

use crate::platform::http::{Endpoint, Routes};
use actix_multipart::{Field, Multipart};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::TryStreamExt;
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use super::buckets::{self, Target};
use super::model::*;
use super::repo::{self, FileRow, NewFile, NewVersion};
use super::upload::{self, Limit, Stored};
use super::{StorageState, download, events, variants, versions};
use crate::platform::Platform;
use crate::platform::error::{ApiError, FieldError, Problem};
use crate::platform::grants::{Caller, ItemPermissions};
use crate::platform::http::ValidatedJson;
use crate::platform::page::limit as page_limit;

pub fn configure(routes: &mut Routes) {
    routes
        .add(
            Endpoint::at("/buckets/{bucket}/files")
                .get(list_files)
                .post(upload_file),
        )
        .add(
            Endpoint::at("/files/{file}")
                .get(get_file)
                .patch(update_file)
                .delete(delete_file),
        )
        .add(Endpoint::at("/files/{file}/download").get(download::download_file))
        .add(Endpoint::at("/files/{file}/signed-url").post(download::signed_url))
        .add(
            Endpoint::at("/files/{file}/versions")
                .get(versions::list_versions)
                .post(versions::upload_version),
        )
        .add(Endpoint::at("/files/{file}/versions/{number}").delete(versions::delete_version))
        .add(
            Endpoint::at("/files/{file}/versions/{number}/download")
                .get(versions::download_version),
        )
        .add(
            Endpoint::at("/files/{file}/versions/{number}/restore").post(versions::restore_version),
        )
        .add(Endpoint::at("/files/{file}/variants/{name}").get(download::download_variant))
        .add(Endpoint::at("/files/{file}/preview").get(variants::preview));
}

const MAX_TEXT_FIELD: usize = 64 * 1024;
const MAX_TAGS: usize = 32;

pub fn no_file() -> ApiError {
    ApiError::not_found("No such file.")
}

pub fn file_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| no_file())
}

/// The file and its bucket, if the caller may read it (404 otherwise, whatever the reason).
pub async fn readable(
    conn: &mut PgConnection,
    caller: &Caller,
    raw: &str,
    for_update: bool,
) -> Result<(Target, FileRow), ApiError> {
    let file = repo::file(conn, file_id(raw)?, for_update)
        .await?
        .ok_or_else(no_file)?;
    let t = buckets::target(conn, caller, &file.bucket_id.to_string())
        .await
        .map_err(|_| no_file())?;
    if !t.access.allows(t.access.read_all, caller, &file.perm_read) {
        return Err(no_file());
    }
    Ok((t, file))
}

/// The file locked for a change the caller may make: 404 if they cannot even read it, 403
/// if they can read but not make this change.
pub async fn changeable(
    conn: &mut PgConnection,
    caller: &Caller,
    raw: &str,
    delete: bool,
) -> Result<(Target, FileRow), ApiError> {
    let file = repo::file(conn, file_id(raw)?, true)
        .await?
        .ok_or_else(no_file)?;
    let t = buckets::target(conn, caller, &file.bucket_id.to_string())
        .await
        .map_err(|_| no_file())?;
    t.access
        .may_change(caller, file.grants(), delete)
        .map_err(|d| d.into_error(no_file(), "file", delete))?;
    Ok((t, file))
}

pub async fn file_response(
    conn: &mut PgConnection,
    file: FileRow,
) -> Result<FileResponse, ApiError> {
    let version = repo::version(conn, file.current_version)
        .await?
        .ok_or_else(no_file)?;
    let variants = repo::variants(conn, version.id).await?;
    Ok(shape(file, &version.summary(), variants))
}

fn shape(file: FileRow, v: &repo::VersionSummary, variants: Vec<repo::VariantRow>) -> FileResponse {
    let permissions = file.permissions();
    FileResponse {
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
        variants: variants
            .into_iter()
            .map(|x| VariantResponse {
                name: x.name,
                width: x.width,
                height: x.height,
                size: x.size,
                content_type: x.content_type,
            })
            .collect(),
        uploader_id: file.uploader_id,
        permissions,
        created_at: file.created_at,
        updated_at: file.updated_at,
    }
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
    name: Option<String>,
    tags: Option<String>,
    metadata: Option<String>,
    permissions: Option<String>,
}

async fn read_text(field: &mut Field) -> Result<String, ApiError> {
    let mut out = Vec::new();
    while let Some(chunk) = field.try_next().await.map_err(invalid_multipart)? {
        if out.len() + chunk.len() > MAX_TEXT_FIELD {
            return Err(ApiError::bad_request(
                "invalid_multipart",
                "Form fields other than the file are at most 64 KiB.",
            ));
        }
        out.extend_from_slice(&chunk);
    }
    String::from_utf8(out)
        .map_err(|_| ApiError::bad_request("invalid_multipart", "Form fields must be UTF-8 text."))
}

fn invalid_multipart(e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(
        "invalid_multipart",
        format!("The multipart body is malformed: {e}"),
    )
}

/// Reads the form, streaming the `file` part into the backend as it arrives.
pub async fn receive(
    state: &StorageState,
    t: &Target,
    mut form: Multipart,
    limit: Limit,
) -> Result<(Stored, String, FormFields), ApiError> {
    let mut fields = FormFields::default();
    let mut stored: Option<(Stored, String)> = None;
    let result: Result<(), ApiError> = async {
        while let Some(mut field) = form.try_next().await.map_err(invalid_multipart)? {
            let name = field
                .content_disposition()
                .and_then(|d| d.get_name())
                .unwrap_or_default()
                .to_owned();
            match name.as_str() {
                "file" => {
                    if stored.is_some() {
                        return Err(ApiError::bad_request(
                            "invalid_multipart",
                            "Send one file per upload.",
                        ));
                    }
                    let filename = field
                        .content_disposition()
                        .and_then(|d| d.get_filename())
                        .unwrap_or_default()
                        .to_owned();
                    let given = super::sniff::sanitize_name(&filename);
                    let s = upload::store(state, &t.bucket, &given, &mut field, limit).await?;
                    stored = Some((s, given));
                }
                "name" => fields.name = Some(read_text(&mut field).await?),
                "tags" => fields.tags = Some(read_text(&mut field).await?),
                "metadata" => fields.metadata = Some(read_text(&mut field).await?),
                "permissions" => fields.permissions = Some(read_text(&mut field).await?),
                other => {
                    let shown: String = other.chars().take(64).collect();
                    return Err(ApiError::bad_request(
                        "invalid_multipart",
                        format!("Unknown form field `{shown}`."),
                    ));
                }
            }
        }
        Ok(())
    }
    .await;
    match (result, stored) {
        (Ok(()), Some((s, given))) => Ok((s, given, fields)),
        (Ok(()), None) => Err(ApiError::bad_request(
            "invalid_multipart",
            "The form has no `file` part.",
        )),
        (Err(e), stored) => {
            if let Some((s, _)) = stored {
                state.discard(&s.key).await;
            }
            Err(e)
        }
    }
}

fn parse_fields(
    fields: &FormFields,
    default_name: &str,
    creator: Option<Uuid>,
) -> Result<FileDetails, ApiError> {
    let mut errors = Vec::new();
    let name = super::sniff::sanitize_name(fields.name.as_deref().unwrap_or(default_name));
    let tags = parse_tags(fields.tags.as_deref().unwrap_or_default(), &mut errors);
    let metadata = match fields
        .metadata
        .as_deref()
        .map(serde_json::from_str::<serde_json::Map<String, serde_json::Value>>)
    {
        None => serde_json::Map::new(),
        Some(Ok(m)) => m,
        Some(Err(_)) => {
            errors.push(FieldError {
                field: "metadata".into(),
                code: "json".into(),
                message: "must be a JSON object".into(),
            });
            serde_json::Map::new()
        }
    };
    check_metadata(&metadata, &mut errors);
    let permissions = match fields
        .permissions
        .as_deref()
        .map(serde_json::from_str::<ItemPermissions>)
    {
        None => ItemPermissions::owner(creator),
        Some(Ok(p)) => p,
        Some(Err(_)) => {
            errors.push(FieldError {
                field: "permissions".into(),
                code: "json".into(),
                message: "must be JSON like {\"read\": [\"any\"]}".into(),
            });
            ItemPermissions::default()
        }
    };
    errors.extend(permissions.check("permissions."));
    if errors.is_empty() {
        Ok(FileDetails {
            name,
            tags,
            metadata,
            permissions,
        })
    } else {
        Err(ApiError::validation(errors))
    }
}

fn parse_tags(raw: &str, errors: &mut Vec<FieldError>) -> Vec<String> {
    let mut tags: Vec<String> = raw
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    tags.sort();
    tags.dedup();
    check_tags(&tags, errors);
    tags
}

fn check_tags(tags: &[String], errors: &mut Vec<FieldError>) {
    if tags.len() > MAX_TAGS
        || tags
            .iter()
            .any(|t| t.chars().count() > 64 || t.chars().any(char::is_control))
    {
        errors.push(FieldError {
            field: "tags".into(),
            code: "invalid".into(),
            message: format!("at most {MAX_TAGS} tags of at most 64 characters"),
        });
    }
}

fn check_metadata(m: &serde_json::Map<String, serde_json::Value>, errors: &mut Vec<FieldError>) {
    let size = serde_json::to_vec(m).map(|v| v.len()).unwrap_or(usize::MAX);
    if m.len() > 50 || size > 8192 {
        errors.push(FieldError {
            field: "metadata".into(),
            code: "size".into(),
            message: "at most 50 keys and 8 KiB".into(),
        });
    }
}

/// Whose quota an upload spends: the signed-in uploader's (an API key's owner's), so that a
/// grant to upload into someone's bucket never lets a stranger fill that owner's quota.
/// Anonymous uploads, which a bucket owner chose to allow, fall to the owner.
fn payer(caller: &Caller, t: &Target) -> Uuid {
    caller.user_id.unwrap_or(t.bucket.owner_id)
}

/// What the payer's quota leaves for one upload.
pub async fn limit_for(
    conn: &mut PgConnection,
    state: &StorageState,
    caller: &Caller,
    t: &Target,
) -> Result<Limit, ApiError> {
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

/// Records a stored upload as a new file, or as a new version of `existing`; the bytes are
/// discarded if the rows do not commit.
pub async fn commit_upload(
    platform: &Platform,
    state: &StorageState,
    caller: &Caller,
    t: &Target,
    stored: Stored,
    existing: Option<Uuid>,
    new_file: Option<FileDetails>,
) -> Result<FileResponse, ApiError> {
    let key = stored.key.clone();
    let result = async {
        let mut tx = platform.db.begin().await?;
        let payer = payer(caller, t);
        if !repo::charge(&mut tx, payer, stored.size, state.settings.quota_bytes_per_user).await? {
            return Err(upload::quota_exceeded());
        }
        let version_id = Uuid::now_v7();
        let file_id = existing.unwrap_or_else(Uuid::now_v7);
        let file = match (&existing, new_file) {
            (None, Some(FileDetails { name, tags, metadata, permissions })) => {
                let f = NewFile { id: file_id, bucket_id: t.bucket.id, uploader: caller.user_id, name: &name, version: version_id, tags: &tags, metadata: &metadata, permissions: &permissions };
                Some(repo::insert_file(&mut tx, &f).await?)
            }
            _ => None,
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
        if existing.is_some() {
            repo::set_current(&mut tx, file_id, version_id).await?;
            if !t.bucket.versioning {
                repo::delete_other_versions(&mut tx, file_id, version_id).await?;
            }
        }
        let file = match file {
            Some(f) => f,
            None => repo::file(&mut tx, file_id, false).await?.ok_or_else(no_file)?,
        };
        events::emit(
            &mut tx,
            "storage.file.uploaded",
            file.id.to_string(),
            json!({
                "user_id": t.bucket.owner_id, "uploader_id": caller.user_id, "bucket_id": t.bucket.id, "file_id": file.id,
                "version_id": version.id, "version": version.number, "name": file.name, "size": version.size,
                "content_type": version.content_type, "sha256": version.sha256,
            }),
        )
        .await?;
        tx.commit().await?;
        Ok(shape(file, &version.summary(), Vec::new()))
    }
    .await;
    if result.is_err() {
        state.discard(&key).await;
    }
    result
}

/// Upload a file (multipart: `file`, and optionally `name`, `tags`, `metadata`,
/// `permissions`). The body is streamed to the backend; its type is judged from its bytes.
#[utoipa::path(
    post, path = "/buckets/{bucket}/files", tag = "storage", request_body(content = UploadForm, content_type = "multipart/form-data"),
    security((), ("bearer" = []), ("api_key" = [])),
    params(("bucket" = Uuid, Path)),
    responses(
        (status = 201, body = FileResponse),
        (status = 400, description = "`invalid_multipart`, `empty_file` or `upload_incomplete`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The bucket does not grant create", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Past the bucket's size limit, as soon as that is known (`file_too_large`)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`type_not_allowed`, `extension_not_allowed` or `type_mismatch` (an executable named .png)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad tags, metadata or permissions; `image_too_large`", body = Problem, content_type = "application/problem+json"),
        (status = 507, description = "Past the uploader's quota (`quota_exceeded`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn upload_file(
    req: HttpRequest,
    platform: web::Data<Platform>,
    state: web::Data<StorageState>,
    caller: Caller,
    path: web::Path<String>,
    form: Multipart,
) -> Result<HttpResponse, ApiError> {
    caller.require_scope("storage.write")?;
    let (t, limit) = {
        let mut conn = platform.db.acquire().await?;
        let t = buckets::target(&mut conn, &caller, &path).await?;
        if !t.access.create {
            return Err(ApiError::forbidden("You may not upload to this bucket."));
        }
        let limit = limit_for(&mut conn, &state, &caller, &t).await?;
        (t, limit)
    };
    limit.check_declared(&req)?;
    let (stored, given, fields) = receive(&state, &t, form, limit).await?;
    let parsed = match parse_fields(&fields, &given, caller.user_id) {
        Ok(p) => p,
        Err(e) => {
            state.discard(&stored.key).await;
            return Err(e);
        }
    };
    let file = commit_upload(&platform, &state, &caller, &t, stored, None, Some(parsed)).await?;
    Ok(HttpResponse::Created().json(file))
}

/// List a bucket's files the caller may read, with filters and cursor pagination.
#[utoipa::path(
    get, path = "/buckets/{bucket}/files", tag = "storage", security((), ("bearer" = []), ("api_key" = [])),
    params(("bucket" = Uuid, Path), FileListParams),
    responses(
        (status = 200, body = FileList),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_files(
    platform: web::Data<Platform>,
    caller: Caller,
    path: web::Path<String>,
    params: web::Query<FileListParams>,
) -> Result<HttpResponse, ApiError> {
    caller.require_scope("storage.read")?;
    let p = params.into_inner();
    let limit = page_limit(p.limit)?;
    let descending = match p.order.as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => return Err(ApiError::bad_request("invalid_query", "order: asc or desc")),
    };
    let family = p
        .content_type
        .as_deref()
        .map(|t| t.strip_suffix('*').unwrap_or(t));
    let mut conn = platform.db.acquire().await?;
    let t = buckets::target(&mut conn, &caller, &path).await?;
    let q = repo::FileQuery {
        bucket: t.bucket.id,
        prefix: p.prefix.as_deref(),
        content_type: family,
        tag: p.tag.as_deref(),
        by_name: p.sort == Some(FileSort::Name),
        descending,
        limit: limit + 1,
        after: p.after,
    };
    let mut rows = repo::list_files(&mut conn, &t.access, &caller.roles, &q).await?;
    let next = (rows.len() as i64 > limit).then(|| {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.file.id)
    });
    let versions: Vec<Uuid> = rows.iter().map(|r| r.file.current_version).collect();
    let mut variants = repo::variants_of(&mut conn, &versions).await?;
    let files = rows
        .into_iter()
        .map(|r| {
            let mine = variants
                .iter()
                .filter(|v| v.version_id == r.file.current_version)
                .cloned()
                .collect();
            variants.retain(|v| v.version_id != r.file.current_version);
            shape(r.file, &r.version, mine)
        })
        .collect();
    Ok(HttpResponse::Ok().json(FileList {
        files,
        next: next.flatten(),
    }))
}

/// A file's details: current version, variants made so far, tags and metadata.
#[utoipa::path(
    get, path = "/files/{file}", tag = "storage", security((), ("bearer" = []), ("api_key" = [])),
    params(("file" = Uuid, Path)),
    responses((status = 200, body = FileResponse), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
pub async fn get_file(
    platform: web::Data<Platform>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require_scope("storage.read")?;
    let mut conn = platform.db.acquire().await?;
    let (_, file) = readable(&mut conn, &caller, &path, false).await?;
    Ok(HttpResponse::Ok().json(file_response(&mut conn, file).await?))
}

/// Rename a file, or change its tags, metadata or grants.
#[utoipa::path(
    patch, path = "/files/{file}", tag = "storage", request_body = UpdateFileRequest, security((), ("bearer" = []), ("api_key" = [])),
    params(("file" = Uuid, Path)),
    responses(
        (status = 200, body = FileResponse),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn update_file(
    platform: web::Data<Platform>,
    caller: Caller,
    path: web::Path<String>,
    body: ValidatedJson<UpdateFileRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require_scope("storage.write")?;
    let u = body.into_inner();
    let mut errors = Vec::new();
    if let Some(tags) = &u.tags {
        check_tags(tags, &mut errors);
    }
    if let Some(m) = &u.metadata {
        check_metadata(m, &mut errors);
    }
    if let Some(p) = &u.permissions {
        errors.extend(p.check("permissions."));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let mut tx = platform.db.begin().await?;
    let (_, file) = changeable(&mut tx, &caller, &path, false).await?;
    let name = u
        .name
        .as_deref()
        .map(super::sniff::sanitize_name)
        .unwrap_or_else(|| file.name.clone());
    let permissions = u.permissions.unwrap_or_else(|| file.permissions());
    let tags = u.tags.unwrap_or_else(|| file.tags.clone());
    let metadata = u.metadata.unwrap_or_else(|| file.metadata.0.clone());
    let file = repo::update_file(&mut tx, file.id, &name, &tags, &metadata, &permissions).await?;
    let res = file_response(&mut tx, file).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(res))
}

/// Delete a file with every version and variant; its bytes are removed right after.
#[utoipa::path(
    delete, path = "/files/{file}", tag = "storage", security((), ("bearer" = []), ("api_key" = [])),
    params(("file" = Uuid, Path)),
    responses(
        (status = 204),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete_file(
    platform: web::Data<Platform>,
    state: web::Data<StorageState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require_scope("storage.write")?;
    let mut tx = platform.db.begin().await?;
    let (t, file) = changeable(&mut tx, &caller, &path, true).await?;
    repo::delete_file(&mut tx, file.id).await?;
    events::emit(
        &mut tx,
        "storage.file.deleted",
        file.id.to_string(),
        json!({"user_id": t.bucket.owner_id, "actor_id": caller.user_id, "bucket_id": t.bucket.id, "file_id": file.id, "name": file.name}),
    )
    .await?;
    tx.commit().await?;
    state.collect_soon();
    Ok(HttpResponse::NoContent().finish())
}
