//! Buckets: the owner's API, and the access every file route starts from.

use crate::platform::http::{Endpoint, Routes};
use actix_web::{HttpResponse, web};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use super::model::*;
use super::repo::{self, BucketFields, BucketRow};
use super::{StorageState, events};
use crate::platform::Platform;
use crate::platform::error::{ApiError, FieldError, Problem};
use crate::platform::grants::{Access, Caller};
use crate::platform::http::ValidatedJson;

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

/// A bucket as one caller sees it.
pub struct Target {
    pub bucket: BucketRow,
    pub access: Access,
}

pub fn access(caller: &Caller, b: &BucketRow) -> Access {
    let mut access = Access::new(caller, b.owner_id, &b.permissions.0, b.file_security);
    // A public bucket's files are readable by anyone, token or not.
    access.read_all |= b.public;
    access
}

pub fn no_bucket() -> ApiError {
    ApiError::not_found("No such bucket.")
}

/// The bucket, if the caller may know it exists.
pub async fn target(
    conn: &mut PgConnection,
    caller: &Caller,
    raw: &str,
) -> Result<Target, ApiError> {
    let id = Uuid::parse_str(raw).map_err(|_| no_bucket())?;
    let bucket = repo::bucket(conn, id).await?.ok_or_else(no_bucket)?;
    let access = access(caller, &bucket);
    if !access.visible() {
        return Err(no_bucket());
    }
    Ok(Target { bucket, access })
}

/// The caller's own bucket, or 404.
async fn own(conn: &mut PgConnection, caller: &Caller, raw: &str) -> Result<BucketRow, ApiError> {
    let owner = caller.account()?;
    let t = target(conn, caller, raw).await?;
    if t.bucket.owner_id != owner {
        return Err(no_bucket());
    }
    Ok(t.bucket)
}

pub fn response(b: BucketRow) -> BucketResponse {
    BucketResponse {
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

fn check(state: &StorageState, b: &BucketFields<'_>) -> Result<(), ApiError> {
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
        Err(ApiError::validation(errors))
    }
}

/// Create a bucket, owned by the caller.
#[utoipa::path(
    post, path = "/buckets", tag = "storage", request_body = CreateBucketRequest, security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 201, body = BucketResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_bucket(
    platform: web::Data<Platform>,
    state: web::Data<StorageState>,
    caller: Caller,
    body: ValidatedJson<CreateBucketRequest>,
) -> Result<HttpResponse, ApiError> {
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
    events::emit(
        &mut tx,
        "storage.bucket.created",
        row.id.to_string(),
        json!({"user_id": owner, "bucket_id": row.id, "name": row.name}),
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(response(row)))
}

/// List the caller's buckets.
#[utoipa::path(
    get, path = "/buckets", tag = "storage", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, body = BucketList), (status = 401, body = Problem, content_type = "application/problem+json"))
)]
pub async fn list_buckets(
    platform: web::Data<Platform>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require_scope("storage.read")?;
    let rows = repo::list_buckets(&platform.db, caller.account()?).await?;
    Ok(HttpResponse::Ok().json(BucketList {
        buckets: rows.into_iter().map(response).collect(),
    }))
}

/// Get one of the caller's buckets.
#[utoipa::path(
    get, path = "/buckets/{bucket}", tag = "storage", security(("bearer" = []), ("api_key" = [])),
    params(("bucket" = Uuid, Path)),
    responses((status = 200, body = BucketResponse), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
pub async fn get_bucket(
    platform: web::Data<Platform>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require_scope("storage.read")?;
    let mut conn = platform.db.acquire().await?;
    Ok(HttpResponse::Ok().json(response(own(&mut conn, &caller, &path).await?)))
}

/// Change a bucket's settings (they apply to uploads from now on).
#[utoipa::path(
    patch, path = "/buckets/{bucket}", tag = "storage", request_body = UpdateBucketRequest, security(("bearer" = []), ("api_key" = [])),
    params(("bucket" = Uuid, Path)),
    responses(
        (status = 200, body = BucketResponse),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn update_bucket(
    platform: web::Data<Platform>,
    state: web::Data<StorageState>,
    caller: Caller,
    path: web::Path<String>,
    body: ValidatedJson<UpdateBucketRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require_scope("storage.write")?;
    let u = body.into_inner();
    let mut tx = platform.db.begin().await?;
    let b = own(&mut tx, &caller, &path).await?;
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
    events::emit(
        &mut tx,
        "storage.bucket.updated",
        row.id.to_string(),
        json!({"user_id": row.owner_id, "bucket_id": row.id}),
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(response(row)))
}

/// Delete a bucket and every file in it (their bytes are removed shortly after).
#[utoipa::path(
    delete, path = "/buckets/{bucket}", tag = "storage", security(("bearer" = []), ("api_key" = [])),
    params(("bucket" = Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
pub async fn delete_bucket(
    platform: web::Data<Platform>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require_scope("storage.write")?;
    let mut tx = platform.db.begin().await?;
    let b = own(&mut tx, &caller, &path).await?;
    repo::delete_bucket(&mut tx, b.id).await?;
    events::emit(
        &mut tx,
        "storage.bucket.deleted",
        b.id.to_string(),
        json!({"user_id": b.owner_id, "bucket_id": b.id}),
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The bytes the caller has stored (every version of what they uploaded), and their quota.
#[utoipa::path(
    get, path = "/usage", tag = "storage", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, body = UsageResponse), (status = 401, body = Problem, content_type = "application/problem+json"))
)]
pub async fn usage(
    platform: web::Data<Platform>,
    state: web::Data<StorageState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require_scope("storage.read")?;
    let mut conn = platform.db.acquire().await?;
    let bytes = repo::usage(&mut conn, caller.account()?).await?;
    let quota = state.settings.quota_bytes_per_user;
    Ok(HttpResponse::Ok().json(UsageResponse {
        bytes,
        quota_bytes: (quota > 0).then_some(quota),
    }))
}
