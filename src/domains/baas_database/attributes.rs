//! A collection's attributes: listed, added (existing documents get the default) and
//! removed (with their values). The database owner's alone.

use actix_web::{HttpResponse, web};
use utoipa::OpenApi;

use super::access;
use super::error::DatabaseError;
use super::model::{CollectionResponse, DatabaseId};
use super::repo::{self, Lock};
use super::schema::{self, Attribute, IndexType};
use super::settings::DatabaseSettings;
use crate::platform::Platform;
use crate::platform::error::responses::{
    BadRequest, Conflict, Forbidden, Invalid, NotFound, Unauthorized,
};
use crate::platform::grants::Caller;
use crate::platform::http::{Endpoint, Routes};
use crate::platform::page::Page;

#[derive(OpenApi)]
#[openapi(paths(list_attributes, add_attribute, remove_attribute))]
pub struct AttributesApi;

pub fn configure(routes: &mut Routes) {
    routes
        .add(
            Endpoint::at("/{db}/collections/{collection}/attributes")
                .get(list_attributes)
                .post(add_attribute),
        )
        .add(
            Endpoint::at("/{db}/collections/{collection}/attributes/{key}")
                .delete(remove_attribute),
        );
}

/// List a collection's attributes, on one page: a collection holds at most
/// `max_attributes_per_collection`, which the settings keep within one page (100).
#[utoipa::path(
    get, path = "/{db}/collections/{collection}/attributes", tag = "databases", security(("bearer" = []), ("api_key" = [])),
    params(("db" = DatabaseId, Path), ("collection" = String, Path)),
    responses((status = 200, body = Page<Attribute>), Unauthorized, NotFound)
)]
pub async fn list_attributes(
    platform: web::Data<Platform>,
    caller: Caller,
    path: web::Path<(DatabaseId, String)>,
) -> Result<HttpResponse, DatabaseError> {
    let c = access::read_own_collection(&platform.db, &caller, path.into_inner()).await?;
    // Hard-capped below one page (see above): the whole list, without a cursor.
    Ok(HttpResponse::Ok().json(Page::all(c.attributes.0)))
}

/// Add an attribute. Existing documents get its default; a required attribute without a
/// default cannot be added once documents exist (409 `default_required`), nor a unique one
/// while existing documents share a value (409 `unique_violation`); 409 `attribute_exists`
/// or `limit_reached` otherwise.
#[utoipa::path(
    post, path = "/{db}/collections/{collection}/attributes", tag = "databases", request_body = Attribute,
    security(("bearer" = []), ("api_key" = [])),
    params(("db" = DatabaseId, Path), ("collection" = String, Path)),
    responses((status = 201, body = CollectionResponse), BadRequest, Unauthorized, Forbidden, NotFound, Conflict, Invalid)
)]
pub async fn add_attribute(
    platform: web::Data<Platform>,
    settings: web::Data<DatabaseSettings>,
    caller: Caller,
    path: web::Path<(DatabaseId, String)>,
    body: web::Json<Attribute>,
) -> Result<HttpResponse, DatabaseError> {
    caller.require_scope("databases.write")?;
    let (db, key) = path.into_inner();
    let attr = body.into_inner();
    DatabaseError::check(schema::check_attribute(&attr, ""))?;
    let mut tx = platform.db.begin().await?;
    let c = access::own_collection(&mut tx, &caller, db, &key, Lock::Update).await?;
    let mut attributes = c.attributes.0.clone();
    let mut indexes = c.indexes.0.clone();
    if attributes.iter().any(|a| a.key == attr.key) {
        return Err(DatabaseError::AttributeExists(attr.key));
    }
    if attributes.len() >= settings.max_attributes_per_collection {
        return Err(DatabaseError::TooManyAttributes);
    }
    if attr.required && attr.default.is_none() && repo::has_documents(&mut tx, &c).await? {
        return Err(DatabaseError::DefaultRequired);
    }
    if let Some(default) = &attr.default {
        let value = schema::check_value(&attr, default)
            .map_err(|(_, m)| DatabaseError::InvalidDefault(m))?;
        repo::fill_default(&mut tx, &c, &attr.key, &value).await?;
    }
    attributes.push(attr.clone());
    let before = indexes.len();
    schema::unique_indexes(std::slice::from_ref(&attr), &mut indexes);
    for index in &indexes[before..] {
        repo::create_index(&mut tx, c.id, index, &attributes)
            .await
            .map_err(|e| DatabaseError::in_collection(e, &c))?;
    }
    // unique_indexes renames every index; keep the existing names.
    for (i, old) in c.indexes.0.iter().enumerate() {
        indexes[i].pg_name = old.pg_name.clone();
        indexes[i].status = old.status;
    }
    repo::save_schema(&mut tx, c.id, &attributes, &indexes).await?;
    let c = access::collection_updated(&mut tx, &c).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(CollectionResponse::from(c)))
}

/// Remove an attribute and its values from every document. Indexes on it must go first
/// (409 `attribute_indexed`), except its own unique index, which goes with it.
#[utoipa::path(
    delete, path = "/{db}/collections/{collection}/attributes/{key}", tag = "databases", security(("bearer" = []), ("api_key" = [])),
    params(("db" = DatabaseId, Path), ("collection" = String, Path), ("key" = String, Path)),
    responses((status = 204), Unauthorized, NotFound, Conflict)
)]
pub async fn remove_attribute(
    platform: web::Data<Platform>,
    caller: Caller,
    path: web::Path<(DatabaseId, String, String)>,
) -> Result<HttpResponse, DatabaseError> {
    caller.require_scope("databases.write")?;
    let (db, collection, key) = path.into_inner();
    let mut tx = platform.db.begin().await?;
    let c = access::own_collection(&mut tx, &caller, db, &collection, Lock::Update).await?;
    let mut attributes = c.attributes.0.clone();
    let mut indexes = c.indexes.0.clone();
    let Some(pos) = attributes.iter().position(|a| a.key == key) else {
        return Err(DatabaseError::AttributeNotFound);
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
        return Err(DatabaseError::AttributeIndexed {
            index: index.key.clone(),
            attribute: key,
        });
    }
    attributes.remove(pos);
    repo::strip_attribute(&mut tx, &c, &key).await?;
    repo::save_schema(&mut tx, c.id, &attributes, &indexes).await?;
    access::collection_updated(&mut tx, &c).await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}
