//! Databases, collections and their schemas (attributes and indexes): the owner's API.

use crate::platform::http::{Endpoint, Routes};
use actix_web::{HttpResponse, web};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use super::events;
use super::model::*;
use super::repo::{self, CollectionRow, DatabaseRow, Lock, NewCollection};
use super::schema::{self, Attribute, Index, IndexStatus, IndexType};
use super::{DatabaseState, db_error};
use crate::platform::Platform;
use crate::platform::error::{ApiError, FieldError, Problem};
use crate::platform::grants::Caller;
use crate::platform::http::ValidatedJson;

pub fn configure(routes: &mut Routes) {
    routes
        .add(Endpoint::at("").get(list_databases).post(create_database))
        .add(
            Endpoint::at("/{db}")
                .get(get_database)
                .patch(rename_database)
                .delete(delete_database),
        )
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
        )
        .add(
            Endpoint::at("/{db}/collections/{collection}/attributes")
                .get(list_attributes)
                .post(add_attribute),
        )
        .add(
            Endpoint::at("/{db}/collections/{collection}/attributes/{key}")
                .delete(remove_attribute),
        )
        .add(
            Endpoint::at("/{db}/collections/{collection}/indexes")
                .get(list_indexes)
                .post(add_index),
        )
        .add(Endpoint::at("/{db}/collections/{collection}/indexes/{key}").delete(remove_index));
}

fn database_response(d: DatabaseRow) -> DatabaseResponse {
    DatabaseResponse {
        id: d.id,
        name: d.name,
        owner_id: d.owner_id,
        created_at: d.created_at,
        updated_at: d.updated_at,
    }
}

pub fn collection_response(c: CollectionRow) -> CollectionResponse {
    CollectionResponse {
        id: c.key,
        database_id: c.database_id,
        name: c.name,
        permissions: c.permissions.0,
        document_security: c.document_security,
        attributes: c.attributes.0,
        indexes: c.indexes.0,
        created_at: c.created_at,
        updated_at: c.updated_at,
    }
}

fn no_database() -> ApiError {
    ApiError::not_found("No such database.")
}

fn no_collection() -> ApiError {
    ApiError::not_found("No such collection.")
}

/// Database ids are UUIDs; anything else cannot name one.
pub fn database_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| no_database())
}

/// The caller's own database, or 404.
async fn own_database(
    conn: &mut PgConnection,
    caller: &Caller,
    raw: &str,
    lock: bool,
) -> Result<DatabaseRow, ApiError> {
    let owner = caller.account()?;
    repo::owned_database(conn, database_id(raw)?, owner, lock)
        .await?
        .ok_or_else(no_database)
}

/// The caller's own collection (schema access is the database owner's alone), or 404.
async fn own_collection(
    conn: &mut PgConnection,
    caller: &Caller,
    db: &str,
    key: &str,
    lock: Lock,
) -> Result<CollectionRow, ApiError> {
    let owner = caller.account()?;
    let c = repo::collection(conn, database_id(db)?, key, lock)
        .await?
        .ok_or_else(no_collection)?;
    if c.owner_id != owner {
        return Err(no_collection());
    }
    Ok(c)
}

/// Create a database, owned by the caller.
#[utoipa::path(
    post, path = "", tag = "databases", request_body = DatabaseRequest, security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 201, body = DatabaseResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "An API key without databases.write", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The caller holds the most databases allowed (`limit_reached`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_database(
    platform: web::Data<Platform>,
    state: web::Data<DatabaseState>,
    caller: Caller,
    body: ValidatedJson<DatabaseRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require_scope("databases.write")?;
    let owner = caller.account()?;
    let mut tx = platform.db.begin().await?;
    repo::lock_owner(&mut tx, owner).await?;
    if repo::count_databases(&mut tx, owner).await? >= state.settings.max_databases_per_user {
        return Err(ApiError::conflict(
            "limit_reached",
            format!(
                "You hold {} databases, the most allowed.",
                state.settings.max_databases_per_user
            ),
        ));
    }
    let d = repo::insert_database(&mut tx, owner, body.name.trim()).await?;
    events::emit(
        &mut tx,
        "baas.database.created",
        d.id.to_string(),
        json!({"user_id": owner, "database_id": d.id, "name": d.name}),
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(database_response(d)))
}

/// List the caller's databases.
#[utoipa::path(
    get, path = "", tag = "databases", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, body = DatabaseList), (status = 401, body = Problem, content_type = "application/problem+json"))
)]
pub async fn list_databases(
    platform: web::Data<Platform>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require_scope("databases.read")?;
    let rows = repo::list_databases(&platform.db, caller.account()?).await?;
    Ok(HttpResponse::Ok().json(DatabaseList {
        databases: rows.into_iter().map(database_response).collect(),
    }))
}

/// Get one of the caller's databases.
#[utoipa::path(
    get, path = "/{db}", tag = "databases", security(("bearer" = []), ("api_key" = [])),
    params(("db" = Uuid, Path)),
    responses(
        (status = 200, body = DatabaseResponse),
        (status = 404, description = "No such database, or not the caller's", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_database(
    platform: web::Data<Platform>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require_scope("databases.read")?;
    let mut conn = platform.db.acquire().await?;
    let d = own_database(&mut conn, &caller, &path, false).await?;
    Ok(HttpResponse::Ok().json(database_response(d)))
}

/// Rename a database.
#[utoipa::path(
    patch, path = "/{db}", tag = "databases", request_body = DatabaseRequest, security(("bearer" = []), ("api_key" = [])),
    params(("db" = Uuid, Path)),
    responses(
        (status = 200, body = DatabaseResponse),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn rename_database(
    platform: web::Data<Platform>,
    caller: Caller,
    path: web::Path<String>,
    body: ValidatedJson<DatabaseRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require_scope("databases.write")?;
    let mut tx = platform.db.begin().await?;
    let d = own_database(&mut tx, &caller, &path, true).await?;
    let d = repo::rename_database(&mut tx, d.id, body.name.trim()).await?;
    events::emit(
        &mut tx,
        "baas.database.updated",
        d.id.to_string(),
        json!({"user_id": d.owner_id, "database_id": d.id, "name": d.name}),
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(database_response(d)))
}

/// Delete a database with every collection and document in it.
#[utoipa::path(
    delete, path = "/{db}", tag = "databases", security(("bearer" = []), ("api_key" = [])),
    params(("db" = Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
pub async fn delete_database(
    platform: web::Data<Platform>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require_scope("databases.write")?;
    let mut tx = platform.db.begin().await?;
    let d = own_database(&mut tx, &caller, &path, true).await?;
    repo::delete_database(&mut tx, d.id).await?;
    events::emit(
        &mut tx,
        "baas.database.deleted",
        d.id.to_string(),
        json!({"user_id": d.owner_id, "database_id": d.id}),
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

fn check_schema(
    state: &DatabaseState,
    attributes: &[Attribute],
    indexes: &[Index],
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if attributes.len() > state.settings.max_attributes_per_collection {
        errors.push(FieldError {
            field: "attributes".into(),
            code: "limit_reached".into(),
            message: format!(
                "at most {} attributes",
                state.settings.max_attributes_per_collection
            ),
        });
    }
    if indexes.len() > state.settings.max_indexes_per_collection {
        errors.push(FieldError {
            field: "indexes".into(),
            code: "limit_reached".into(),
            message: format!(
                "at most {} indexes",
                state.settings.max_indexes_per_collection
            ),
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

/// `unique: true` on an attribute is a unique index on it alone, named after it.
fn unique_indexes(attributes: &[Attribute], indexes: &mut Vec<Index>) {
    for a in attributes.iter().filter(|a| a.unique) {
        if !indexes.iter().any(|i| i.key == a.key) {
            indexes.push(Index {
                key: a.key.clone(),
                kind: IndexType::Unique,
                attributes: vec![a.key.clone()],
                orders: Vec::new(),
                pg_name: String::new(),
                status: IndexStatus::Ready,
            });
        }
    }
    // Built in the same transaction, so ready when it commits.
    for i in indexes.iter_mut() {
        i.pg_name = Index::new_pg_name();
        i.status = IndexStatus::Ready;
    }
}

/// Create a collection, optionally with its attributes and indexes.
#[utoipa::path(
    post, path = "/{db}/collections", tag = "databases", request_body = CreateCollectionRequest, security(("bearer" = []), ("api_key" = [])),
    params(("db" = Uuid, Path)),
    responses(
        (status = 201, body = CollectionResponse),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The key is taken (`collection_exists`) or the database is full (`limit_reached`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "One entry per invalid attribute, index or grant", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_collection(
    platform: web::Data<Platform>,
    state: web::Data<DatabaseState>,
    caller: Caller,
    path: web::Path<String>,
    body: ValidatedJson<CreateCollectionRequest>,
) -> Result<HttpResponse, ApiError> {
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
    unique_indexes(&body.attributes, &mut body.indexes);
    errors.extend(check_schema(&state, &body.attributes, &body.indexes));
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let mut tx = platform.db.begin().await?;
    let d = own_database(&mut tx, &caller, &path, true).await?;
    if repo::count_collections(&mut tx, d.id).await? >= state.settings.max_collections_per_database
    {
        return Err(ApiError::conflict(
            "limit_reached",
            format!(
                "This database holds {} collections, the most allowed.",
                state.settings.max_collections_per_database
            ),
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
    if repo::insert_collection(&mut tx, new).await?.is_none() {
        return Err(ApiError::conflict(
            "collection_exists",
            format!("This database already has a collection `{}`.", body.id),
        ));
    }
    let c = repo::collection(&mut tx, d.id, &body.id, Lock::None)
        .await?
        .ok_or_else(no_collection)?;
    emit_collection(&mut tx, "baas.collection.created", &c).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(collection_response(c)))
}

async fn emit_collection(
    conn: &mut PgConnection,
    kind: &str,
    c: &CollectionRow,
) -> Result<(), ApiError> {
    events::emit(
        conn,
        kind,
        c.id.to_string(),
        json!({"user_id": c.owner_id, "database_id": c.database_id, "collection": c.key, "attributes": c.attributes.0, "indexes": c.indexes.0}),
    )
    .await
}

/// List a database's collections.
#[utoipa::path(
    get, path = "/{db}/collections", tag = "databases", security(("bearer" = []), ("api_key" = [])),
    params(("db" = Uuid, Path)),
    responses((status = 200, body = CollectionList), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
pub async fn list_collections(
    platform: web::Data<Platform>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require_scope("databases.read")?;
    let mut conn = platform.db.acquire().await?;
    let d = own_database(&mut conn, &caller, &path, false).await?;
    let rows = repo::list_collections(&platform.db, d.id).await?;
    Ok(HttpResponse::Ok().json(CollectionList {
        collections: rows.into_iter().map(collection_response).collect(),
    }))
}

/// Get a collection with its schema.
#[utoipa::path(
    get, path = "/{db}/collections/{collection}", tag = "databases", security(("bearer" = []), ("api_key" = [])),
    params(("db" = Uuid, Path), ("collection" = String, Path)),
    responses((status = 200, body = CollectionResponse), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
pub async fn get_collection(
    platform: web::Data<Platform>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    caller.require_scope("databases.read")?;
    let mut conn = platform.db.acquire().await?;
    let c = own_collection(&mut conn, &caller, &path.0, &path.1, Lock::None).await?;
    Ok(HttpResponse::Ok().json(collection_response(c)))
}

/// Rename a collection or change its grants.
#[utoipa::path(
    patch, path = "/{db}/collections/{collection}", tag = "databases", request_body = UpdateCollectionRequest,
    security(("bearer" = []), ("api_key" = [])),
    params(("db" = Uuid, Path), ("collection" = String, Path)),
    responses(
        (status = 200, body = CollectionResponse),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn update_collection(
    platform: web::Data<Platform>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: ValidatedJson<UpdateCollectionRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require_scope("databases.write")?;
    let body = body.into_inner();
    if let Some(p) = &body.permissions {
        let errors = p.check("permissions.");
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
    }
    let mut tx = platform.db.begin().await?;
    let c = own_collection(&mut tx, &caller, &path.0, &path.1, Lock::Update).await?;
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
    let c = repo::collection(&mut tx, c.database_id, &c.key, Lock::None)
        .await?
        .ok_or_else(no_collection)?;
    emit_collection(&mut tx, "baas.collection.updated", &c).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(collection_response(c)))
}

/// Delete a collection and its documents.
#[utoipa::path(
    delete, path = "/{db}/collections/{collection}", tag = "databases", security(("bearer" = []), ("api_key" = [])),
    params(("db" = Uuid, Path), ("collection" = String, Path)),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
pub async fn delete_collection(
    platform: web::Data<Platform>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    caller.require_scope("databases.write")?;
    let mut tx = platform.db.begin().await?;
    let c = own_collection(&mut tx, &caller, &path.0, &path.1, Lock::Update).await?;
    repo::delete_collection(&mut tx, c.id).await?;
    emit_collection(&mut tx, "baas.collection.deleted", &c).await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// List a collection's attributes.
#[utoipa::path(
    get, path = "/{db}/collections/{collection}/attributes", tag = "databases", security(("bearer" = []), ("api_key" = [])),
    params(("db" = Uuid, Path), ("collection" = String, Path)),
    responses((status = 200, body = AttributeList), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
pub async fn list_attributes(
    platform: web::Data<Platform>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    caller.require_scope("databases.read")?;
    let mut conn = platform.db.acquire().await?;
    let c = own_collection(&mut conn, &caller, &path.0, &path.1, Lock::None).await?;
    Ok(HttpResponse::Ok().json(AttributeList {
        attributes: c.attributes.0,
    }))
}

/// Add an attribute. Existing documents get its default; a required attribute without a
/// default cannot be added once documents exist.
#[utoipa::path(
    post, path = "/{db}/collections/{collection}/attributes", tag = "databases", request_body = Attribute,
    security(("bearer" = []), ("api_key" = [])),
    params(("db" = Uuid, Path), ("collection" = String, Path)),
    responses(
        (status = 201, body = CollectionResponse),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`attribute_exists`, `limit_reached`, `default_required` or `unique_violation` (existing documents share a value)", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn add_attribute(
    platform: web::Data<Platform>,
    state: web::Data<DatabaseState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: web::Json<Attribute>,
) -> Result<HttpResponse, ApiError> {
    caller.require_scope("databases.write")?;
    let attr = body.into_inner();
    let errors = schema::check_attribute(&attr, "");
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let mut tx = platform.db.begin().await?;
    let c = own_collection(&mut tx, &caller, &path.0, &path.1, Lock::Update).await?;
    let mut attributes = c.attributes.0.clone();
    let mut indexes = c.indexes.0.clone();
    if attributes.iter().any(|a| a.key == attr.key) {
        return Err(ApiError::conflict(
            "attribute_exists",
            format!("`{}` is already an attribute.", attr.key),
        ));
    }
    if attributes.len() >= state.settings.max_attributes_per_collection {
        return Err(ApiError::conflict(
            "limit_reached",
            "This collection has the most attributes allowed.",
        ));
    }
    if attr.required && attr.default.is_none() && repo::has_documents(&mut tx, &c).await? {
        return Err(ApiError::conflict(
            "default_required",
            "The collection has documents: a new required attribute needs a default for them.",
        ));
    }
    if let Some(default) = &attr.default {
        let value = schema::check_value(&attr, default)
            .map_err(|(_, m)| ApiError::bad_request("invalid_default", m))?;
        repo::fill_default(&mut tx, &c, &attr.key, &value).await?;
    }
    attributes.push(attr.clone());
    let before = indexes.len();
    unique_indexes(std::slice::from_ref(&attr), &mut indexes);
    for index in &indexes[before..] {
        repo::create_index(&mut tx, c.id, index, &attributes)
            .await
            .map_err(|e| db_error(e, &c))?;
    }
    // unique_indexes renames every index; keep the existing names.
    for (i, old) in c.indexes.0.iter().enumerate() {
        indexes[i].pg_name = old.pg_name.clone();
        indexes[i].status = old.status;
    }
    repo::save_schema(&mut tx, c.id, &attributes, &indexes).await?;
    finish_schema_change(tx, &c).await
}

async fn finish_schema_change(
    mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
    c: &CollectionRow,
) -> Result<HttpResponse, ApiError> {
    let c = repo::collection(&mut tx, c.database_id, &c.key, Lock::None)
        .await?
        .ok_or_else(no_collection)?;
    emit_collection(&mut tx, "baas.collection.updated", &c).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(collection_response(c)))
}

/// Remove an attribute and its values from every document. Indexes on it must go first.
#[utoipa::path(
    delete, path = "/{db}/collections/{collection}/attributes/{key}", tag = "databases", security(("bearer" = []), ("api_key" = [])),
    params(("db" = Uuid, Path), ("collection" = String, Path), ("key" = String, Path)),
    responses(
        (status = 204),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "An index uses the attribute (`attribute_indexed`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn remove_attribute(
    platform: web::Data<Platform>,
    caller: Caller,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    caller.require_scope("databases.write")?;
    let (db, collection, key) = path.into_inner();
    let mut tx = platform.db.begin().await?;
    let c = own_collection(&mut tx, &caller, &db, &collection, Lock::Update).await?;
    let mut attributes = c.attributes.0.clone();
    let mut indexes = c.indexes.0.clone();
    let Some(pos) = attributes.iter().position(|a| a.key == key) else {
        return Err(ApiError::not_found("No such attribute."));
    };
    // The attribute's own unique index (from `unique: true`) goes with it.
    if let Some(i) = indexes
        .iter()
        .position(|i| i.key == key && i.attributes == [key.clone()] && i.kind == IndexType::Unique)
    {
        repo::drop_index(&mut tx, &indexes[i].pg_name).await?;
        indexes.remove(i);
    }
    if let Some(index) = indexes.iter().find(|i| i.attributes.contains(&key)) {
        return Err(ApiError::conflict(
            "attribute_indexed",
            format!("The index `{}` uses `{key}`: delete it first.", index.key),
        ));
    }
    attributes.remove(pos);
    repo::strip_attribute(&mut tx, &c, &key).await?;
    repo::save_schema(&mut tx, c.id, &attributes, &indexes).await?;
    finish_schema_change(tx, &c).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// List a collection's indexes.
#[utoipa::path(
    get, path = "/{db}/collections/{collection}/indexes", tag = "databases", security(("bearer" = []), ("api_key" = [])),
    params(("db" = Uuid, Path), ("collection" = String, Path)),
    responses((status = 200, body = IndexList), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
pub async fn list_indexes(
    platform: web::Data<Platform>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    caller.require_scope("databases.read")?;
    let mut conn = platform.db.acquire().await?;
    let c = own_collection(&mut conn, &caller, &path.0, &path.1, Lock::None).await?;
    Ok(HttpResponse::Ok().json(IndexList {
        indexes: c.indexes.0,
    }))
}

/// Add an index. It is built before the response, without blocking writes to the collection
/// meanwhile (`status` is `building` until then); existing duplicates refuse a unique one.
#[utoipa::path(
    post, path = "/{db}/collections/{collection}/indexes", tag = "databases", request_body = Index,
    security(("bearer" = []), ("api_key" = [])),
    params(("db" = Uuid, Path), ("collection" = String, Path)),
    responses(
        (status = 201, body = CollectionResponse),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`index_exists`, `limit_reached` or `unique_violation`", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn add_index(
    platform: web::Data<Platform>,
    state: web::Data<DatabaseState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: web::Json<Index>,
) -> Result<HttpResponse, ApiError> {
    caller.require_scope("databases.write")?;
    let mut index = body.into_inner();
    let (db, key) = path.into_inner();
    // Declared first (as building), so that a concurrent request sees it.
    let mut tx = platform.db.begin().await?;
    let c = own_collection(&mut tx, &caller, &db, &key, Lock::Update).await?;
    let errors = schema::check_index(&index, &c.attributes.0, "");
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let mut indexes = c.indexes.0.clone();
    if indexes.iter().any(|i| i.key == index.key) {
        return Err(ApiError::conflict(
            "index_exists",
            format!("`{}` is already an index.", index.key),
        ));
    }
    if indexes.len() >= state.settings.max_indexes_per_collection {
        return Err(ApiError::conflict(
            "limit_reached",
            "This collection has the most indexes allowed.",
        ));
    }
    index.pg_name = Index::new_pg_name();
    index.status = IndexStatus::Building;
    indexes.push(index.clone());
    repo::save_schema(&mut tx, c.id, &c.attributes.0, &indexes).await?;
    tx.commit().await?;

    // Built without blocking the collection's writes; the request waits for it.
    let built = repo::build_index(&platform.db, c.id, &index, &c.attributes.0).await;

    let mut tx = platform.db.begin().await?;
    let c = own_collection(&mut tx, &caller, &db, &key, Lock::Update).await?;
    let mut indexes = c.indexes.0.clone();
    match built {
        Ok(()) => {
            for i in indexes.iter_mut().filter(|i| i.pg_name == index.pg_name) {
                i.status = IndexStatus::Ready;
            }
            repo::save_schema(&mut tx, c.id, &c.attributes.0, &indexes).await?;
            finish_schema_change(tx, &c).await
        }
        Err(e) => {
            indexes.retain(|i| i.pg_name != index.pg_name);
            repo::save_schema(&mut tx, c.id, &c.attributes.0, &indexes).await?;
            tx.commit().await?;
            // What a failed concurrent build leaves is an invalid index: remove it.
            if let Err(drop) = repo::drop_index_concurrently(&platform.db, &index.pg_name).await {
                tracing::warn!(index = %index.pg_name, error = %drop, "could not drop a failed index build");
            }
            Err(db_error(e, &c))
        }
    }
}

/// Remove an index.
#[utoipa::path(
    delete, path = "/{db}/collections/{collection}/indexes/{key}", tag = "databases", security(("bearer" = []), ("api_key" = [])),
    params(("db" = Uuid, Path), ("collection" = String, Path), ("key" = String, Path)),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
pub async fn remove_index(
    platform: web::Data<Platform>,
    caller: Caller,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    caller.require_scope("databases.write")?;
    let (db, collection, key) = path.into_inner();
    let mut tx = platform.db.begin().await?;
    let c = own_collection(&mut tx, &caller, &db, &collection, Lock::Update).await?;
    let mut indexes = c.indexes.0.clone();
    let Some(pos) = indexes.iter().position(|i| i.key == key) else {
        return Err(ApiError::not_found("No such index."));
    };
    repo::drop_index(&mut tx, &indexes[pos].pg_name).await?;
    indexes.remove(pos);
    repo::save_schema(&mut tx, c.id, &c.attributes.0, &indexes).await?;
    finish_schema_change(tx, &c).await?;
    Ok(HttpResponse::NoContent().finish())
}
