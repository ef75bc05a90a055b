//! Buckets: created, listed, changed and deleted by their owner, and the owner's usage.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use utoipa::OpenApi;

use super::access;
use super::error::StorageError;
use super::events::{BucketCreated, BucketDeleted, BucketUpdated};
use super::model::*;
use super::repo::{self, BucketFields};
use super::state::StorageState;
use crate::platform::Platform;
use crate::platform::error::FieldError;
use crate::platform::error::responses::{BadRequest, Invalid, NotFound, Unauthorized};
use crate::platform::events::publish;
use crate::platform::grants::Caller;
use crate::platform::http::{Endpoint, Routes, ValidatedJson};
use crate::platform::page::{Page, PageQuery};

#[derive(OpenApi)]
#[openapi(
    paths(
        create_bucket,
        list_buckets,
        get_bucket,
        update_bucket,
        delete_bucket,
        usage
    ),
    tags((name = "storage", description = "Buckets, files, versions, variants, signed URLs and resumable uploads"))
)]
pub struct BucketsApi;

pub fn configure(routes: &mut Routes) {
    routes
        .add(
            Endpoint::at("/buckets")
                .get(list_buckets)
                .post(create_bucket),
        )
        .add(
            Endpoint::at("/buckets/{bucket}")
                .get(get_bucket)
                .patch(update_bucket)
                .delete(delete_bucket),
        )
        .add(Endpoint::at("/usage").get(usage));
}

/// Create a bucket, owned by the caller.
#[utoipa::path(
    post, path = "/buckets", tag = "storage", request_body = CreateBucketRequest, security(("bearer" = []), ("api_key" = [])),
    responses((status = 201, body = BucketResponse), Unauthorized, Invalid)
)]
pub async fn create_bucket(
    platform: web::Data<Platform>,
    state: web::Data<StorageState>,
    caller: Caller,
    body: ValidatedJson<CreateBucketRequest>,
) -> Result<HttpResponse, StorageError> {
    caller.require_scope("storage.write")?;
    let owner = caller.account()?;
    let b = body.into_inner();
    let max = b.max_file_bytes.unwrap_or(state.settings.max_file_bytes);
    let fields = BucketFields {
        name: b.name.trim(),
        max_file_bytes: i64::try_from(max).unwrap_or(i64::MAX),
        allowed_types: &b.allowed_types,
        allowed_extensions: &b.allowed_extensions,
        public: b.public,
        versioning: b.versioning,
        variants: &b.variants,
        permissions: &b.permissions,
        file_security: b.file_security,
    };
    check(&state, &fields)?;
    let mut tx = platform.db.begin().await?;
    let row = repo::insert_bucket(&mut tx, owner, &fields).await?;
    let created = BucketCreated {
        user_id: owner,
        bucket_id: row.id,
        name: row.name.clone(),
    };
    publish(&mut tx, &created).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(BucketResponse::from(row)))
}

/// The caller's buckets, oldest first, one page at a time.
#[utoipa::path(
    get, path = "/buckets", tag = "storage", security(("bearer" = []), ("api_key" = [])),
    params(PageQuery),
    responses((status = 200, body = Page<BucketResponse>), BadRequest, Unauthorized)
)]
pub async fn list_buckets(
    platform: web::Data<Platform>,
    caller: Caller,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, StorageError> {
    caller.require_scope("storage.read")?;
    let owner = caller.account()?;
    let (limit, after) = (page.limit()?, page.cursor::<(DateTime<Utc>, BucketId)>()?);
    let rows = repo::list_buckets(&platform.db, owner, after, page.fetch()?).await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(
        rows,
        limit,
        |b| (b.created_at, b.id),
        BucketResponse::from,
    )))
}

/// Get one of the caller's buckets.
#[utoipa::path(
    get, path = "/buckets/{bucket}", tag = "storage", security(("bearer" = []), ("api_key" = [])),
    params(("bucket" = Uuid, Path)),
    responses((status = 200, body = BucketResponse), Unauthorized, NotFound)
)]
pub async fn get_bucket(
    platform: web::Data<Platform>,
    caller: Caller,
    path: web::Path<BucketId>,
) -> Result<HttpResponse, StorageError> {
    caller.require_scope("storage.read")?;
    let mut conn = platform.db.acquire().await?;
    let bucket = access::own_bucket(&mut conn, &caller, *path).await?;
    Ok(HttpResponse::Ok().json(BucketResponse::from(bucket)))
}

/// Change a bucket's settings (they apply to uploads from now on).
#[utoipa::path(
    patch, path = "/buckets/{bucket}", tag = "storage", request_body = UpdateBucketRequest, security(("bearer" = []), ("api_key" = [])),
    params(("bucket" = Uuid, Path)),
    responses((status = 200, body = BucketResponse), Unauthorized, NotFound, Invalid)
)]
pub async fn update_bucket(
    platform: web::Data<Platform>,
    state: web::Data<StorageState>,
    caller: Caller,
    path: web::Path<BucketId>,
    body: ValidatedJson<UpdateBucketRequest>,
) -> Result<HttpResponse, StorageError> {
    caller.require_scope("storage.write")?;
    let u = body.into_inner();
    let mut tx = platform.db.begin().await?;
    let b = access::own_bucket(&mut tx, &caller, *path).await?;
    let fields = BucketFields {
        name: u.name.as_deref().map(str::trim).unwrap_or(&b.name),
        max_file_bytes: u
            .max_file_bytes
            .map(|m| i64::try_from(m).unwrap_or(i64::MAX))
            .unwrap_or(b.max_file_bytes),
        allowed_types: u.allowed_types.as_deref().unwrap_or(&b.allowed_types),
        allowed_extensions: u
            .allowed_extensions
            .as_deref()
            .unwrap_or(&b.allowed_extensions),
        public: u.public.unwrap_or(b.public),
        versioning: u.versioning.unwrap_or(b.versioning),
        variants: u.variants.as_deref().unwrap_or(&b.variants.0),
        permissions: u.permissions.as_ref().unwrap_or(&b.permissions.0),
        file_security: u.file_security.unwrap_or(b.file_security),
    };
    check(&state, &fields)?;
    let row = repo::update_bucket(&mut tx, b.id, &fields).await?;
    let updated = BucketUpdated {
        user_id: row.owner_id,
        bucket_id: row.id,
    };
    publish(&mut tx, &updated).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(BucketResponse::from(row)))
}

/// Delete a bucket and every file in it (their bytes are removed shortly after).
#[utoipa::path(
    delete, path = "/buckets/{bucket}", tag = "storage", security(("bearer" = []), ("api_key" = [])),
    params(("bucket" = Uuid, Path)),
    responses((status = 204), Unauthorized, NotFound)
)]
pub async fn delete_bucket(
    platform: web::Data<Platform>,
    caller: Caller,
    path: web::Path<BucketId>,
) -> Result<HttpResponse, StorageError> {
    caller.require_scope("storage.write")?;
    let mut tx = platform.db.begin().await?;
    let b = access::own_bucket(&mut tx, &caller, *path).await?;
    repo::delete_bucket(&mut tx, b.id).await?;
    let deleted = BucketDeleted {
        user_id: b.owner_id,
        bucket_id: b.id,
    };
    publish(&mut tx, &deleted).await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The bytes the caller has stored (every version of what they uploaded), and their quota.
#[utoipa::path(
    get, path = "/usage", tag = "storage", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, body = UsageResponse), Unauthorized)
)]
pub async fn usage(
    platform: web::Data<Platform>,
    state: web::Data<StorageState>,
    caller: Caller,
) -> Result<HttpResponse, StorageError> {
    caller.require_scope("storage.read")?;
    let mut conn = platform.db.acquire().await?;
    let bytes = repo::usage(&mut conn, caller.account()?).await?;
    let quota = state.settings.quota_bytes_per_user;
    Ok(HttpResponse::Ok().json(UsageResponse {
        bytes,
        quota_bytes: (quota > 0).then_some(quota),
    }))
}

fn check(state: &StorageState, b: &BucketFields<'_>) -> Result<(), StorageError> {
    let mut errors = b.permissions.check("permissions.");
    let mut fail = |field: String, code: &str, message: String| {
        errors.push(FieldError {
            field,
            code: code.into(),
            message,
        })
    };
    let ceiling = state.settings.max_file_bytes;
    if b.max_file_bytes <= 0 || b.max_file_bytes as u64 > ceiling {
        fail(
            "max_file_bytes".into(),
            "range",
            format!("must be between 1 and {ceiling}"),
        );
    }
    for (i, t) in b.allowed_types.iter().enumerate() {
        let valid = t.split_once('/').is_some_and(|(a, b)| {
            !a.is_empty() && !b.is_empty() && t.len() <= 127 && !t.contains(char::is_whitespace)
        });
        if !valid {
            fail(
                format!("allowed_types[{i}]"),
                "mime",
                "must be a MIME type such as image/png or image/*".into(),
            );
        }
    }
    for (i, e) in b.allowed_extensions.iter().enumerate() {
        let e = e.trim_start_matches('.');
        if e.is_empty() || e.len() > 16 || !e.chars().all(|c| c.is_ascii_alphanumeric()) {
            fail(
                format!("allowed_extensions[{i}]"),
                "extension",
                "must be letters and digits, such as png".into(),
            );
        }
    }
    if b.variants.len() > 10 {
        fail("variants".into(), "length", "at most 10 variants".into());
    }
    let max = state.settings.max_preview_dimension;
    for (i, v) in b.variants.iter().enumerate() {
        let name_ok = !v.name.is_empty()
            && v.name.len() <= 32
            && v.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !name_ok || b.variants[..i].iter().any(|o| o.name == v.name) {
            fail(
                format!("variants[{i}].name"),
                "name",
                "must be a unique name of letters, digits, _ and -".into(),
            );
        }
        if !(1..=max).contains(&v.width) || !(1..=max).contains(&v.height) {
            fail(
                format!("variants[{i}].width"),
                "range",
                format!("width and height must be between 1 and {max}"),
            );
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(StorageError::invalid(errors))
    }
}
