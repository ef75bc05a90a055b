//! Databases: each owned by the account that made it, and seen by no one else.

use actix_web::{HttpResponse, web};
use utoipa::OpenApi;

use super::access;
use super::error::DatabaseError;
use super::events::{DatabaseCreated, DatabaseDeleted, DatabaseUpdated};
use super::model::{DatabaseId, DatabaseRequest, DatabaseResponse};
use super::repo;
use super::settings::DatabaseSettings;
use crate::platform::Platform;
use crate::platform::error::responses::{
    BadRequest, Conflict, Forbidden, Invalid, NotFound, Unauthorized,
};
use crate::platform::events;
use crate::platform::grants::Caller;
use crate::platform::http::{Endpoint, Routes, ValidatedJson};
use crate::platform::page::{Page, PageQuery};

#[derive(OpenApi)]
#[openapi(
    paths(
        create_database,
        list_databases,
        get_database,
        rename_database,
        delete_database
    ),
    tags((name = "databases", description = "Databases, collections, attributes and indexes (the owner's)"))
)]
pub struct DatabasesApi;

pub fn configure(routes: &mut Routes) {
    routes
        .add(Endpoint::at("").get(list_databases).post(create_database))
        .add(
            Endpoint::at("/{db}")
                .get(get_database)
                .patch(rename_database)
                .delete(delete_database),
        );
}

/// Create a database, owned by the caller. An account holds at most
/// `max_databases_per_user` (409 `limit_reached`); an API key needs `databases.write`.
#[utoipa::path(
    post, path = "", tag = "databases", request_body = DatabaseRequest, security(("bearer" = []), ("api_key" = [])),
    responses((status = 201, body = DatabaseResponse), Unauthorized, Forbidden, Conflict, Invalid)
)]
pub async fn create_database(
    platform: web::Data<Platform>,
    settings: web::Data<DatabaseSettings>,
    caller: Caller,
    body: ValidatedJson<DatabaseRequest>,
) -> Result<HttpResponse, DatabaseError> {
    caller.require_scope("databases.write")?;
    let owner = caller.account()?;
    let mut tx = platform.db.begin().await?;
    repo::lock_owner(&mut tx, owner).await?;
    if repo::count_databases(&mut tx, owner).await? >= settings.max_databases_per_user {
        return Err(DatabaseError::TooManyDatabases(
            settings.max_databases_per_user,
        ));
    }
    let d = repo::insert_database(&mut tx, owner, body.name.trim()).await?;
    events::publish(&mut tx, &DatabaseCreated::from(&d)).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(DatabaseResponse::from(d)))
}

/// List the caller's databases, oldest first.
#[utoipa::path(
    get, path = "", tag = "databases", security(("bearer" = []), ("api_key" = [])),
    params(PageQuery),
    responses((status = 200, body = Page<DatabaseResponse>), BadRequest, Unauthorized)
)]
pub async fn list_databases(
    platform: web::Data<Platform>,
    caller: Caller,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, DatabaseError> {
    caller.require_scope("databases.read")?;
    let owner = caller.account()?;
    let rows = repo::list_databases(&platform.db, owner, query.cursor()?, query.fetch()?).await?;
    let page = Page::from_rows(
        rows,
        query.limit()?,
        |d| (d.created_at, d.id),
        DatabaseResponse::from,
    );
    Ok(HttpResponse::Ok().json(page))
}

/// Get one of the caller's databases (404 for anyone else's).
#[utoipa::path(
    get, path = "/{db}", tag = "databases", security(("bearer" = []), ("api_key" = [])),
    params(("db" = DatabaseId, Path)),
    responses((status = 200, body = DatabaseResponse), Unauthorized, NotFound)
)]
pub async fn get_database(
    platform: web::Data<Platform>,
    caller: Caller,
    path: web::Path<DatabaseId>,
) -> Result<HttpResponse, DatabaseError> {
    caller.require_scope("databases.read")?;
    let mut conn = platform.db.acquire().await?;
    let d = access::own_database(&mut conn, &caller, *path, false).await?;
    Ok(HttpResponse::Ok().json(DatabaseResponse::from(d)))
}

/// Rename a database.
#[utoipa::path(
    patch, path = "/{db}", tag = "databases", request_body = DatabaseRequest, security(("bearer" = []), ("api_key" = [])),
    params(("db" = DatabaseId, Path)),
    responses((status = 200, body = DatabaseResponse), Unauthorized, NotFound, Invalid)
)]
pub async fn rename_database(
    platform: web::Data<Platform>,
    caller: Caller,
    path: web::Path<DatabaseId>,
    body: ValidatedJson<DatabaseRequest>,
) -> Result<HttpResponse, DatabaseError> {
    caller.require_scope("databases.write")?;
    let mut tx = platform.db.begin().await?;
    let d = access::own_database(&mut tx, &caller, *path, true).await?;
    let d = repo::rename_database(&mut tx, d.id, body.name.trim()).await?;
    events::publish(&mut tx, &DatabaseUpdated::from(&d)).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(DatabaseResponse::from(d)))
}

/// Delete a database with every collection and document in it.
#[utoipa::path(
    delete, path = "/{db}", tag = "databases", security(("bearer" = []), ("api_key" = [])),
    params(("db" = DatabaseId, Path)),
    responses((status = 204), Unauthorized, NotFound)
)]
pub async fn delete_database(
    platform: web::Data<Platform>,
    caller: Caller,
    path: web::Path<DatabaseId>,
) -> Result<HttpResponse, DatabaseError> {
    caller.require_scope("databases.write")?;
    let mut tx = platform.db.begin().await?;
    let d = access::own_database(&mut tx, &caller, *path, true).await?;
    repo::delete_database(&mut tx, d.id).await?;
    let deleted = DatabaseDeleted {
        user_id: d.owner_id,
        database_id: d.id,
    };
    events::publish(&mut tx, &deleted).await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}
