//! A bucket's files: streamed multipart uploads, listing with filters and cursor pages, a
//! file's details, and changing or deleting one.

use std::collections::HashMap;

use actix_multipart::Multipart;
use actix_web::{HttpRequest, HttpResponse, web};
use utoipa::OpenApi;
use uuid::Uuid;

use super::access;
use super::error::StorageError;
use super::events::FileDeleted;
use super::model::*;
use super::repo::{self, VariantRow};
use super::sniff;
use super::state::StorageState;
use super::upload::{FileDetails, FormFields, Record, commit_upload, limit_for, receive};
use crate::platform::Platform;
use crate::platform::error::responses::{BadRequest, Forbidden, Invalid, NotFound};
use crate::platform::error::{FieldError, Problem};
use crate::platform::events::publish;
use crate::platform::grants::{Caller, ItemPermissions};
use crate::platform::http::{Endpoint, Routes, ValidatedJson};
use crate::platform::page::{Page, PageQuery};

#[derive(OpenApi)]
#[openapi(
    paths(upload_file, list_files, get_file, update_file, delete_file),
    // Types only query parameters name are not collected from the paths.
    components(schemas(FileSort, SortOrder))
)]
pub struct FilesApi;

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
        );
}

const MAX_TAGS: usize = 32;

fn parse_fields(
    fields: &FormFields,
    default_name: &str,
    creator: Option<Uuid>,
) -> Result<FileDetails, StorageError> {
    let mut errors = Vec::new();
    let name = sniff::sanitize_name(fields.name.as_deref().unwrap_or(default_name));
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
        Err(StorageError::invalid(errors))
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
        NotFound,
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
    path: web::Path<BucketId>,
    form: Multipart,
) -> Result<HttpResponse, StorageError> {
    caller.require_scope("storage.write")?;
    let (t, limit) = {
        let mut conn = platform.db.acquire().await?;
        let t = access::bucket(&mut conn, &caller, *path).await?;
        if !t.access.create {
            return Err(StorageError::UploadNotAllowed);
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
    let file = commit_upload(
        &platform,
        &state,
        &caller,
        &t,
        stored,
        Record::File(parsed),
        None,
    )
    .await?;
    Ok(HttpResponse::Created().json(file))
}

/// List a bucket's files the caller may read, with filters, sorted, one page at a time.
#[utoipa::path(
    get, path = "/buckets/{bucket}/files", tag = "storage", security((), ("bearer" = []), ("api_key" = [])),
    params(("bucket" = Uuid, Path), FileListParams),
    responses((status = 200, body = Page<FileResponse>), BadRequest, NotFound)
)]
pub async fn list_files(
    platform: web::Data<Platform>,
    caller: Caller,
    path: web::Path<BucketId>,
    params: web::Query<FileListParams>,
) -> Result<HttpResponse, StorageError> {
    caller.require_scope("storage.read")?;
    let p = params.into_inner();
    let sort = p.sort.unwrap_or_default();
    let page = PageQuery {
        limit: p.limit,
        after: p.after,
    };
    let limit = page.limit()?;
    let after = FileCursor::decode(sort, &page)?;
    let family = p
        .content_type
        .as_deref()
        .map(|t| t.strip_suffix('*').unwrap_or(t));
    let mut conn = platform.db.acquire().await?;
    let t = access::bucket(&mut conn, &caller, *path).await?;
    let q = repo::FileQuery {
        bucket: t.bucket.id,
        prefix: p.prefix.as_deref(),
        content_type: family,
        tag: p.tag.as_deref(),
        sort,
        descending: p.order == Some(SortOrder::Desc),
        fetch: page.fetch()?,
        after,
    };
    let rows = repo::list_files(&mut conn, &t.access, &caller.roles, &q).await?;
    let page = Page::from_rows(rows, limit, |r| FileCursor::of(sort, &r.file), |r| r);
    let versions: Vec<VersionId> = page.items.iter().map(|r| r.file.current_version).collect();
    let mut variants: HashMap<VersionId, Vec<VariantRow>> = HashMap::new();
    for v in repo::variants_of(&mut conn, &versions).await? {
        variants.entry(v.version_id).or_default().push(v);
    }
    Ok(HttpResponse::Ok().json(page.map(|r| {
        let made = variants.remove(&r.file.current_version).unwrap_or_default();
        FileResponse::new(r.file, &r.version, made)
    })))
}

/// A file's details: current version, variants made so far, tags and metadata.
#[utoipa::path(
    get, path = "/files/{file}", tag = "storage", security((), ("bearer" = []), ("api_key" = [])),
    params(("file" = Uuid, Path)),
    responses((status = 200, body = FileResponse), NotFound)
)]
pub async fn get_file(
    platform: web::Data<Platform>,
    caller: Caller,
    path: web::Path<FileId>,
) -> Result<HttpResponse, StorageError> {
    caller.require_scope("storage.read")?;
    Ok(HttpResponse::Ok().json(access::file_view(&platform.db, &caller, *path).await?))
}

/// Rename a file, or change its tags, metadata or grants. Changing the grants needs the
/// bucket's owner or the file's uploader (403 otherwise); a caller who may change the file
/// but not read it gets 204 and sees nothing of it.
#[utoipa::path(
    patch, path = "/files/{file}", tag = "storage", request_body = UpdateFileRequest, security((), ("bearer" = []), ("api_key" = [])),
    params(("file" = Uuid, Path)),
    responses(
        (status = 200, body = FileResponse),
        (status = 204, description = "Changed, but the caller may not read the file, so it is not shown"),
        Forbidden, NotFound, Invalid,
    )
)]
pub async fn update_file(
    platform: web::Data<Platform>,
    caller: Caller,
    path: web::Path<FileId>,
    body: ValidatedJson<UpdateFileRequest>,
) -> Result<HttpResponse, StorageError> {
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
        return Err(StorageError::invalid(errors));
    }
    let mut tx = platform.db.begin().await?;
    let (t, file) = access::changeable(&mut tx, &caller, *path, false).await?;
    if let Some(p) = &u.permissions
        && !p.same_as(&file.permissions())
        && !t.access.may_regrant(&caller, file.uploader_id)
    {
        return Err(StorageError::MayNotRegrant);
    }
    let name = u
        .name
        .as_deref()
        .map(sniff::sanitize_name)
        .unwrap_or_else(|| file.name.clone());
    let permissions = u.permissions.unwrap_or_else(|| file.permissions());
    let tags = u.tags.unwrap_or_else(|| file.tags.clone());
    let metadata = u.metadata.unwrap_or_else(|| file.metadata.0.clone());
    let file = repo::update_file(&mut tx, file.id, &name, &tags, &metadata, &permissions).await?;
    if !t.reads(&caller, &file) {
        // A grant to change a file is not one to read it: nothing of it is shown.
        tx.commit().await?;
        return Ok(HttpResponse::NoContent().finish());
    }
    let res = access::file_response(&mut tx, file).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(res))
}

/// Delete a file with every version and variant; its bytes are removed right after.
#[utoipa::path(
    delete, path = "/files/{file}", tag = "storage", security((), ("bearer" = []), ("api_key" = [])),
    params(("file" = Uuid, Path)),
    responses((status = 204), Forbidden, NotFound)
)]
pub async fn delete_file(
    platform: web::Data<Platform>,
    state: web::Data<StorageState>,
    caller: Caller,
    path: web::Path<FileId>,
) -> Result<HttpResponse, StorageError> {
    caller.require_scope("storage.write")?;
    let mut tx = platform.db.begin().await?;
    let (t, file) = access::changeable(&mut tx, &caller, *path, true).await?;
    repo::delete_file(&mut tx, file.id).await?;
    let deleted = FileDeleted {
        user_id: t.bucket.owner_id,
        actor_id: caller.user_id,
        bucket_id: t.bucket.id,
        file_id: file.id,
        name: file.name,
    };
    publish(&mut tx, &deleted).await?;
    tx.commit().await?;
    state.collect_soon();
    Ok(HttpResponse::NoContent().finish())
}
