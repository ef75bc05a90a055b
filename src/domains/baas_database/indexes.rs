//! A collection's indexes: real PostgreSQL indexes on its document table, listed, built
//! without blocking writes, and dropped. The database owner's alone.

use actix_web::{HttpResponse, web};
use utoipa::OpenApi;

use super::access;
use super::error::DatabaseError;
use super::model::{CollectionResponse, DatabaseId};
use super::repo::{self, Lock};
use super::schema::{self, Index, IndexStatus};
use super::settings::DatabaseSettings;
use crate::platform::Platform;
use crate::platform::error::responses::{Conflict, Forbidden, Invalid, NotFound, Unauthorized};
use crate::platform::grants::Caller;
use crate::platform::http::{Endpoint, Routes};
use crate::platform::page::Page;

#[derive(OpenApi)]
#[openapi(paths(list_indexes, add_index, remove_index))]
pub struct IndexesApi;

pub fn configure(routes: &mut Routes) {
    routes
        .add(
            Endpoint::at("/{db}/collections/{collection}/indexes")
                .get(list_indexes)
                .post(add_index),
        )
        .add(Endpoint::at("/{db}/collections/{collection}/indexes/{key}").delete(remove_index));
}

/// List a collection's indexes, on one page: a collection holds at most
/// `max_indexes_per_collection` (32 by default), which the settings keep within one page
/// (100).
#[utoipa::path(
    get, path = "/{db}/collections/{collection}/indexes", tag = "databases", security(("bearer" = []), ("api_key" = [])),
    params(("db" = DatabaseId, Path), ("collection" = String, Path)),
    responses((status = 200, body = Page<Index>), Unauthorized, NotFound)
)]
pub async fn list_indexes(
    platform: web::Data<Platform>,
    caller: Caller,
    path: web::Path<(DatabaseId, String)>,
) -> Result<HttpResponse, DatabaseError> {
    let c = access::read_own_collection(&platform.db, &caller, path.into_inner()).await?;
    // Hard-capped below one page (see above): the whole list, without a cursor.
    Ok(HttpResponse::Ok().json(Page::all(c.indexes.0)))
}

/// Add an index. It is built before the response, without blocking writes to the collection
/// meanwhile (`status` is `building` until then). 409 `index_exists`, `limit_reached`, or
/// `unique_violation` when existing documents share values of a unique one.
#[utoipa::path(
    post, path = "/{db}/collections/{collection}/indexes", tag = "databases", request_body = Index,
    security(("bearer" = []), ("api_key" = [])),
    params(("db" = DatabaseId, Path), ("collection" = String, Path)),
    responses((status = 201, body = CollectionResponse), Unauthorized, Forbidden, NotFound, Conflict, Invalid)
)]
pub async fn add_index(
    platform: web::Data<Platform>,
    settings: web::Data<DatabaseSettings>,
    caller: Caller,
    path: web::Path<(DatabaseId, String)>,
    body: web::Json<Index>,
) -> Result<HttpResponse, DatabaseError> {
    caller.require_scope("databases.write")?;
    let mut index = body.into_inner();
    let (db, key) = path.into_inner();
    // Declared first (as building), so that a concurrent request sees it.
    let mut tx = platform.db.begin().await?;
    let c = access::own_collection(&mut tx, &caller, db, &key, Lock::Update).await?;
    DatabaseError::check(schema::check_index(&index, &c.attributes.0, ""))?;
    let mut indexes = c.indexes.0.clone();
    if indexes.iter().any(|i| i.key == index.key) {
        return Err(DatabaseError::IndexExists(index.key));
    }
    if indexes.len() >= settings.max_indexes_per_collection {
        return Err(DatabaseError::TooManyIndexes);
    }
    index.pg_name = Index::new_pg_name();
    index.status = IndexStatus::Building;
    indexes.push(index.clone());
    repo::save_schema(&mut tx, c.id, &c.attributes.0, &indexes).await?;
    tx.commit().await?;

    // Built without blocking the collection's writes; the request waits for it.
    let built = repo::build_index(&platform.db, c.id, &index, &c.attributes.0).await;

    let mut tx = platform.db.begin().await?;
    let c = access::own_collection(&mut tx, &caller, db, &key, Lock::Update).await?;
    let mut indexes = c.indexes.0.clone();
    match built {
        Ok(()) => {
            for i in indexes.iter_mut().filter(|i| i.pg_name == index.pg_name) {
                i.status = IndexStatus::Ready;
            }
            repo::save_schema(&mut tx, c.id, &c.attributes.0, &indexes).await?;
            let c = access::collection_updated(&mut tx, &c).await?;
            tx.commit().await?;
            Ok(HttpResponse::Created().json(CollectionResponse::from(c)))
        }
        Err(e) => {
            indexes.retain(|i| i.pg_name != index.pg_name);
            repo::save_schema(&mut tx, c.id, &c.attributes.0, &indexes).await?;
            tx.commit().await?;
            // What a failed concurrent build leaves is an invalid index: remove it.
            if let Err(drop) = repo::drop_index_concurrently(&platform.db, &index.pg_name).await {
                tracing::warn!(index = %index.pg_name, error = %drop, "could not drop a failed index build");
            }
            Err(DatabaseError::in_collection(e, &c))
        }
    }
}

/// Remove an index.
#[utoipa::path(
    delete, path = "/{db}/collections/{collection}/indexes/{key}", tag = "databases", security(("bearer" = []), ("api_key" = [])),
    params(("db" = DatabaseId, Path), ("collection" = String, Path), ("key" = String, Path)),
    responses((status = 204), Unauthorized, NotFound)
)]
pub async fn remove_index(
    platform: web::Data<Platform>,
    caller: Caller,
    path: web::Path<(DatabaseId, String, String)>,
) -> Result<HttpResponse, DatabaseError> {
    caller.require_scope("databases.write")?;
    let (db, collection, key) = path.into_inner();
    let mut tx = platform.db.begin().await?;
    let c = access::own_collection(&mut tx, &caller, db, &collection, Lock::Update).await?;
    let mut indexes = c.indexes.0.clone();
    let Some(pos) = indexes.iter().position(|i| i.key == key) else {
        return Err(DatabaseError::IndexNotFound);
    };
    repo::drop_index(&mut tx, &indexes[pos].pg_name).await?;
    indexes.remove(pos);
    repo::save_schema(&mut tx, c.id, &c.attributes.0, &indexes).await?;
    access::collection_updated(&mut tx, &c).await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}
