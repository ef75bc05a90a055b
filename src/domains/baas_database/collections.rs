//! Collections: created with their schema (attributes and indexes) and grants, listed,
//! renamed or re-granted, and deleted with their documents. The database owner's alone.

use actix_web::{HttpResponse, web};
use utoipa::OpenApi;

use super::access;
use super::error::DatabaseError;
use super::events::{CollectionCreated, CollectionDeleted};
use super::model::{
    CollectionResponse, CreateCollectionRequest, DatabaseId, UpdateCollectionRequest,
};
use super::repo::{self, Lock, NewCollection};
use super::schema::{self, Attribute, Index};
use super::settings::DatabaseSettings;
use crate::platform::Platform;
use crate::platform::error::responses::{
    BadRequest, Conflict, Forbidden, Invalid, NotFound, Unauthorized,
};
use crate::platform::error::{FieldError, OnConstraint};
use crate::platform::events;
use crate::platform::grants::Caller;
use crate::platform::http::{Endpoint, Routes, ValidatedJson};
use crate::platform::page::{Page, PageQuery};

#[derive(OpenApi)]
#[openapi(paths(
    create_collection,
    list_collections,
    get_collection,
    update_collection,
    delete_collection
))]
pub struct CollectionsApi;

pub fn configure(routes: &mut Routes) {
    routes
        .add(
            Endpoint::at("/{db}/collections")
                .get(list_collections)
                .post(create_collection),
        )
        .add(
            Endpoint::at("/{db}/collections/{collection}")
                .get(get_collection)
                .patch(update_collection)
                .delete(delete_collection),
        );
}

/// Every problem of a new collection's schema, each named by its path.
fn check_schema(
    settings: &DatabaseSettings,
    attributes: &[Attribute],
    indexes: &[Index],
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if attributes.len() > settings.max_attributes_per_collection {
        errors.push(FieldError {
            field: "attributes".into(),
            code: "limit_reached".into(),
            message: format!(
                "at most {} attributes",
                settings.max_attributes_per_collection
            ),
        });
    }
    if indexes.len() > settings.max_indexes_per_collection {
        errors.push(FieldError {
            field: "indexes".into(),
            code: "limit_reached".into(),
            message: format!("at most {} indexes", settings.max_indexes_per_collection),
        });
    }
    for (i, a) in attributes.iter().enumerate() {
        errors.extend(schema::check_attribute(a, &format!("attributes[{i}].")));
        if attributes[..i].iter().any(|b| b.key == a.key) {
            errors.push(FieldError {
                field: format!("attributes[{i}].key"),
                code: "duplicate".into(),
                message: "is declared twice".into(),
            });
        }
    }
    for (i, index) in indexes.iter().enumerate() {
        errors.extend(schema::check_index(
            index,
            attributes,
            &format!("indexes[{i}]."),
        ));
        if indexes[..i].iter().any(|b| b.key == index.key) {
            errors.push(FieldError {
                field: format!("indexes[{i}].key"),
                code: "duplicate".into(),
                message: "is declared twice".into(),
            });
        }
    }
    errors
}

/// Create a collection, optionally with its attributes and indexes. 409 `collection_exists`
/// when the key is taken, `limit_reached` when the database is full; 422 with one entry per
/// invalid attribute, index or grant.
#[utoipa::path(
    post, path = "/{db}/collections", tag = "databases", request_body = CreateCollectionRequest, security(("bearer" = []), ("api_key" = [])),
    params(("db" = DatabaseId, Path)),
    responses((status = 201, body = CollectionResponse), Unauthorized, Forbidden, NotFound, Conflict, Invalid)
)]
pub async fn create_collection(
    platform: web::Data<Platform>,
    settings: web::Data<DatabaseSettings>,
    caller: Caller,
    path: web::Path<DatabaseId>,
    body: ValidatedJson<CreateCollectionRequest>,
) -> Result<HttpResponse, DatabaseError> {
    caller.require_scope("databases.write")?;
    let mut body = body.into_inner();
    let mut errors = Vec::new();
    if !schema::valid_key(&body.id) {
        errors.push(FieldError {
            field: "id".into(),
            code: "key".into(),
            message: "must start with a letter and hold only letters, digits and _ (at most 64)"
                .into(),
        });
    }
    errors.extend(body.permissions.check("permissions."));
    schema::unique_indexes(&body.attributes, &mut body.indexes);
    errors.extend(check_schema(&settings, &body.attributes, &body.indexes));
    DatabaseError::check(errors)?;
    let mut tx = platform.db.begin().await?;
    let d = access::own_database(&mut tx, &caller, *path, true).await?;
    if repo::count_collections(&mut tx, d.id).await? >= settings.max_collections_per_database {
        return Err(DatabaseError::TooManyCollections(
            settings.max_collections_per_database,
        ));
    }
    let new = NewCollection {
        database: d.id,
        key: &body.id,
        name: body.name.trim(),
        permissions: &body.permissions,
        document_security: body.document_security,
        attributes: &body.attributes,
        indexes: &body.indexes,
    };
    repo::insert_collection(&mut tx, new)
        .await
        .on_constraint(repo::COLLECTION_KEY_TAKEN, || {
            DatabaseError::CollectionExists(body.id.clone())
        })?;
    let c = repo::collection(&mut tx, d.id, &body.id, Lock::None)
        .await?
        .ok_or(DatabaseError::CollectionNotFound)?;
    events::publish(&mut tx, &CollectionCreated::from(&c)).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(CollectionResponse::from(c)))
}

/// List a database's collections, oldest first.
#[utoipa::path(
    get, path = "/{db}/collections", tag = "databases", security(("bearer" = []), ("api_key" = [])),
    params(("db" = DatabaseId, Path), PageQuery),
    responses((status = 200, body = Page<CollectionResponse>), BadRequest, Unauthorized, NotFound)
)]
pub async fn list_collections(
    platform: web::Data<Platform>,
    caller: Caller,
    path: web::Path<DatabaseId>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, DatabaseError> {
    caller.require_scope("databases.read")?;
    let mut conn = platform.db.acquire().await?;
    let d = access::own_database(&mut conn, &caller, *path, false).await?;
    let rows = repo::list_collections(&mut conn, d.id, query.cursor()?, query.fetch()?).await?;
    let page = Page::from_rows(
        rows,
        query.limit()?,
        |c| (c.created_at, c.key.clone()),
        CollectionResponse::from,
    );
    Ok(HttpResponse::Ok().json(page))
}

/// Get a collection with its schema.
#[utoipa::path(
    get, path = "/{db}/collections/{collection}", tag = "databases", security(("bearer" = []), ("api_key" = [])),
    params(("db" = DatabaseId, Path), ("collection" = String, Path)),
    responses((status = 200, body = CollectionResponse), Unauthorized, NotFound)
)]
pub async fn get_collection(
    platform: web::Data<Platform>,
    caller: Caller,
    path: web::Path<(DatabaseId, String)>,
) -> Result<HttpResponse, DatabaseError> {
    let c = access::read_own_collection(&platform.db, &caller, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(CollectionResponse::from(c)))
}

/// Rename a collection or change its grants.
#[utoipa::path(
    patch, path = "/{db}/collections/{collection}", tag = "databases", request_body = UpdateCollectionRequest,
    security(("bearer" = []), ("api_key" = [])),
    params(("db" = DatabaseId, Path), ("collection" = String, Path)),
    responses((status = 200, body = CollectionResponse), Unauthorized, NotFound, Invalid)
)]
pub async fn update_collection(
    platform: web::Data<Platform>,
    caller: Caller,
    path: web::Path<(DatabaseId, String)>,
    body: ValidatedJson<UpdateCollectionRequest>,
) -> Result<HttpResponse, DatabaseError> {
    caller.require_scope("databases.write")?;
    let (db, key) = path.into_inner();
    let body = body.into_inner();
    if let Some(p) = &body.permissions {
        DatabaseError::check(p.check("permissions."))?;
    }
    let mut tx = platform.db.begin().await?;
    let c = access::own_collection(&mut tx, &caller, db, &key, Lock::Update).await?;
    let name = body.name.as_deref().map(str::trim).unwrap_or(&c.name);
    let permissions = body.permissions.as_ref().unwrap_or(&c.permissions.0);
    repo::update_collection(
        &mut tx,
        c.id,
        name,
        permissions,
        body.document_security.unwrap_or(c.document_security),
    )
    .await?;
    let c = access::collection_updated(&mut tx, &c).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(CollectionResponse::from(c)))
}

/// Delete a collection and its documents.
#[utoipa::path(
    delete, path = "/{db}/collections/{collection}", tag = "databases", security(("bearer" = []), ("api_key" = [])),
    params(("db" = DatabaseId, Path), ("collection" = String, Path)),
    responses((status = 204), Unauthorized, NotFound)
)]
pub async fn delete_collection(
    platform: web::Data<Platform>,
    caller: Caller,
    path: web::Path<(DatabaseId, String)>,
) -> Result<HttpResponse, DatabaseError> {
    caller.require_scope("databases.write")?;
    let (db, key) = path.into_inner();
    let mut tx = platform.db.begin().await?;
    let c = access::own_collection(&mut tx, &caller, db, &key, Lock::Update).await?;
    repo::delete_collection(&mut tx, c.id).await?;
    events::publish(&mut tx, &CollectionDeleted::from(&c)).await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}
