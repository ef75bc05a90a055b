//! Categories: a tree read by everyone and shaped by staff with `catalog.categories.manage`.
//! Moving a subtree is one UPDATE of its materialised paths; a move under the category's own
//! descendant is refused (409 `category_loop`) and changes nothing; a category with products
//! goes only with `?move_products_to=`.
//!
//! Every change publishes `catalog.category.created|updated|moved|deleted` and, being a
//! staff action, is recorded in the audit trail, in the transaction that makes it.

use actix_web::{HttpResponse, web};
use utoipa::OpenApi;
use uuid::Uuid;

use super::access::CATEGORIES_MANAGE;
use super::error::{CATEGORY_PARENT, CATEGORY_SLUG_TAKEN, CatalogError, PRODUCT_CATEGORY};
use super::model::*;
use super::repo::{self, CategoryRow};
use crate::events::catalog::{
    CategoryCreated, CategoryDeleted, CategoryMoved, CategorySnapshot, CategoryUpdated,
    ProductUpdated,
};
use crate::platform::error::responses::{
    BadRequest, Conflict, Forbidden, Invalid, NotFound, Unauthorized,
};
use crate::platform::error::violated_constraint;
use crate::platform::events::{publish, publish_all};
use crate::platform::http::{Endpoint, Routes, ValidatedJson};
use crate::platform::page::{Page, PageQuery};
use crate::platform::{CurrentUser, Platform};

#[derive(OpenApi)]
#[openapi(paths(
    list_categories,
    get_category,
    create_category,
    update_category,
    move_category,
    delete_category
))]
pub struct CategoriesApi;

pub fn configure(routes: &mut Routes) {
    routes
        .add(
            Endpoint::at("/categories")
                .get(list_categories)
                .post(create_category),
        )
        .add(
            Endpoint::at("/categories/{category}")
                .get(get_category)
                .patch(update_category)
                .delete(delete_category),
        )
        .add(Endpoint::at("/categories/{category}/move").post(move_category));
}

/// A failed category write, by the constraint it violated.
fn write_error(e: sqlx::Error, slug: &str) -> CatalogError {
    match violated_constraint(&e) {
        Some(CATEGORY_SLUG_TAKEN) => CatalogError::CategorySlugTaken(slug.to_owned()),
        // The parent went between our look and our write.
        Some(CATEGORY_PARENT) => {
            CatalogError::invalid_field("parent_id", "exists", "no such category")
        }
        _ => e.into(),
    }
}

fn check_slug(slug: Option<&str>) -> Result<(), CatalogError> {
    let mut checks = Checks::default();
    checks.slug(slug);
    checks.done()
}

/// The children of `?parent=` (the roots without it), by position; anyone may read.
#[utoipa::path(
    get, path = "/categories", tag = "catalog", security((), ("bearer" = []), ("api_key" = [])),
    params(PageQuery, CategoryListQuery),
    responses((status = 200, body = Page<CategoryResponse>), BadRequest)
)]
pub async fn list_categories(
    platform: web::Data<Platform>,
    page: web::Query<PageQuery>,
    query: web::Query<CategoryListQuery>,
) -> Result<HttpResponse, CatalogError> {
    let (limit, after) = (page.limit()?, page.cursor::<(i32, Uuid)>()?);
    let rows = repo::list_categories(&platform.db, query.parent, after, page.fetch()?).await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(
        rows,
        limit,
        |c| (c.position, c.id),
        CategoryResponse::from,
    )))
}

/// One category, by id or by slug; anyone may read. Its `path` lists its ancestors.
#[utoipa::path(
    get, path = "/categories/{category}", tag = "catalog", security((), ("bearer" = []), ("api_key" = [])),
    params(("category" = String, Path, description = "Id or slug")),
    responses((status = 200, body = CategoryResponse), NotFound)
)]
pub async fn get_category(
    platform: web::Data<Platform>,
    path: web::Path<String>,
) -> Result<HttpResponse, CatalogError> {
    let id = Uuid::parse_str(&path).ok();
    let row = repo::category(&platform.db, id, &path)
        .await?
        .ok_or(CatalogError::CategoryNotFound)?;
    Ok(HttpResponse::Ok().json(CategoryResponse::from(row)))
}

/// Create a category under `parent_id` (a root without one); staff with
/// `catalog.categories.manage`. Slugs are unique across the catalogue (409 `slug_taken`).
#[utoipa::path(
    post, path = "/categories", tag = "catalog", request_body = CreateCategoryRequest,
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 201, body = CategoryResponse), Unauthorized, Forbidden, Conflict, Invalid)
)]
pub async fn create_category(
    platform: web::Data<Platform>,
    user: CurrentUser,
    body: ValidatedJson<CreateCategoryRequest>,
) -> Result<HttpResponse, CatalogError> {
    user.require(CATEGORIES_MANAGE)?;
    let b = body.into_inner();
    check_slug(b.slug.as_deref())?;
    let name = b.name.trim();
    if name.is_empty() {
        return Err(CatalogError::invalid_field(
            "name",
            "length",
            "must not be blank",
        ));
    }
    let slug = b.slug.clone().unwrap_or_else(|| slug_of(name));
    let mut tx = platform.db.begin().await?;
    let row = repo::insert_category(
        &mut tx,
        Uuid::now_v7(),
        b.parent_id,
        name,
        &slug,
        b.position,
    )
    .await
    .map_err(|e| write_error(e, &slug))?
    .ok_or_else(|| CatalogError::invalid_field("parent_id", "exists", "no such category"))?;
    publish(
        &mut tx,
        &CategoryCreated {
            category_id: row.id,
            category: snapshot(&row),
        },
    )
    .await?;
    audit(
        &mut tx,
        &user,
        "catalog.category.created",
        &row.id,
        None,
        Some(&row),
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(CategoryResponse::from(row)))
}

/// Rename or reorder a category (staff with `catalog.categories.manage`); moving it is
/// `POST /categories/{id}/move`.
#[utoipa::path(
    patch, path = "/categories/{category}", tag = "catalog", request_body = UpdateCategoryRequest,
    security(("bearer" = []), ("api_key" = [])),
    params(("category" = Uuid, Path)),
    responses((status = 200, body = CategoryResponse), Unauthorized, Forbidden, NotFound, Conflict, Invalid)
)]
pub async fn update_category(
    platform: web::Data<Platform>,
    user: CurrentUser,
    path: web::Path<Uuid>,
    body: ValidatedJson<UpdateCategoryRequest>,
) -> Result<HttpResponse, CatalogError> {
    user.require(CATEGORIES_MANAGE)?;
    let u = body.into_inner();
    check_slug(u.slug.as_deref())?;
    let name = u.name.as_deref().map(str::trim);
    if name == Some("") {
        return Err(CatalogError::invalid_field(
            "name",
            "length",
            "must not be blank",
        ));
    }
    let slug = u.slug.as_deref();
    let mut tx = platform.db.begin().await?;
    let (before, row) = repo::update_category(&mut tx, *path, name, slug, u.position)
        .await
        .map_err(|e| write_error(e, slug.unwrap_or_default()))?
        .ok_or(CatalogError::CategoryNotFound)?;
    publish(
        &mut tx,
        &CategoryUpdated {
            category_id: row.id,
            category: snapshot(&row),
        },
    )
    .await?;
    let action = "catalog.category.updated";
    audit(&mut tx, &user, action, &row.id, Some(&before), Some(&row)).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(CategoryResponse::from(row)))
}

/// Move a category with its whole subtree under another parent (`null`: to the roots), in
/// one statement (staff with `catalog.categories.manage`). Under itself or one of its
/// descendants is a loop: 409 `category_loop`, and nothing changes.
#[utoipa::path(
    post, path = "/categories/{category}/move", tag = "catalog", request_body = MoveCategoryRequest,
    security(("bearer" = []), ("api_key" = [])),
    params(("category" = Uuid, Path)),
    responses((status = 200, body = CategoryResponse), Unauthorized, Forbidden, NotFound, Conflict, Invalid)
)]
pub async fn move_category(
    platform: web::Data<Platform>,
    user: CurrentUser,
    path: web::Path<Uuid>,
    body: web::Json<MoveCategoryRequest>,
) -> Result<HttpResponse, CatalogError> {
    user.require(CATEGORIES_MANAGE)?;
    let m = body.into_inner();
    let mut tx = platform.db.begin().await?;
    let moved = repo::move_category(&mut tx, *path, m.parent_id, m.position).await?;
    let Some(moved) = moved else {
        // Nothing moved: say why (the lock still holds, so the answer is the one the move saw).
        let id = *path;
        let me = repo::category(&platform.db, Some(id), "").await?;
        if me.is_none() {
            return Err(CatalogError::CategoryNotFound);
        }
        let Some(parent) = m.parent_id else {
            return Err(CatalogError::CategoryNotFound);
        };
        return match repo::category(&platform.db, Some(parent), "").await? {
            None => Err(CatalogError::invalid_field(
                "parent_id",
                "exists",
                "no such category",
            )),
            Some(p) if p.path.contains(&id) => Err(CatalogError::CategoryLoop),
            Some(_) => Err(CatalogError::CategoryNotFound),
        };
    };
    let row = moved.category;
    if moved.old_parent_id == row.parent_id && m.position.is_none() {
        // Moved where it was: nothing happened, so nothing is published or audited.
        tx.commit().await?;
        return Ok(HttpResponse::Ok().json(CategoryResponse::from(row)));
    }
    publish(
        &mut tx,
        &CategoryMoved {
            category_id: row.id,
            old_parent_id: moved.old_parent_id,
            category: snapshot(&row),
        },
    )
    .await?;
    let was = serde_json::json!({ "parent_id": moved.old_parent_id });
    crate::platform::audit::record(
        &mut tx,
        &crate::platform::audit::AuditEntry {
            actor: &user.actor(),
            action: "catalog.category.moved",
            object_type: "catalog.category",
            object_id: &row.id.to_string(),
            before: Some(&was),
            after: serde_json::to_value(snapshot(&row)).ok().as_ref(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(CategoryResponse::from(row)))
}

/// Delete a category without subcategories (staff with `catalog.categories.manage`). One
/// with products is refused (409 `category_has_products`) unless `?move_products_to=` names
/// the category they move to, in the same statement.
#[utoipa::path(
    delete, path = "/categories/{category}", tag = "catalog", security(("bearer" = []), ("api_key" = [])),
    params(("category" = Uuid, Path), DeleteCategoryQuery),
    responses((status = 204), BadRequest, Unauthorized, Forbidden, NotFound, Conflict, Invalid)
)]
pub async fn delete_category(
    platform: web::Data<Platform>,
    user: CurrentUser,
    path: web::Path<Uuid>,
    query: web::Query<DeleteCategoryQuery>,
) -> Result<HttpResponse, CatalogError> {
    user.require(CATEGORIES_MANAGE)?;
    let move_to = query.move_products_to;
    if move_to == Some(*path) {
        return Err(CatalogError::invalid_field(
            "move_products_to",
            "exists",
            "must be another category",
        ));
    }
    let mut tx = platform.db.begin().await?;
    let deleted = repo::delete_category(&mut tx, *path, move_to)
        .await
        .map_err(|e| match violated_constraint(&e) {
            Some(CATEGORY_PARENT) => CatalogError::CategoryHasChildren,
            // With a target every product moved, so the target is what is missing.
            Some(PRODUCT_CATEGORY) if move_to.is_some() => {
                CatalogError::invalid_field("move_products_to", "exists", "no such category")
            }
            Some(PRODUCT_CATEGORY) => CatalogError::CategoryHasProducts,
            _ => e.into(),
        })?
        .ok_or(CatalogError::CategoryNotFound)?;
    let moved = deleted.moved.0;
    let row = deleted.category;
    publish(
        &mut tx,
        &CategoryDeleted {
            category_id: row.id,
            moved_products_to: move_to,
            moved_products: moved.len() as i64,
        },
    )
    .await?;
    // One `catalog.product.updated` per moved product (all in one INSERT), rather than one
    // batch event: every consumer (search, carts, read models) already keeps its copy of a
    // product from that event, so a moved product needs nothing new from any of them.
    let updates: Vec<ProductUpdated> = moved
        .iter()
        .map(|p| ProductUpdated {
            product_id: p.id.0,
            user_id: p.seller_id,
            product: super::model::snapshot(p),
        })
        .collect();
    if !updates.is_empty() {
        publish_all(&mut tx, &updates).await?;
    }
    audit(
        &mut tx,
        &user,
        "catalog.category.deleted",
        &row.id,
        Some(&row),
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// What events carry about a category.
fn snapshot(r: &CategoryRow) -> CategorySnapshot {
    CategorySnapshot {
        category_id: r.id,
        parent_id: r.parent_id,
        name: r.name.clone(),
        slug: r.slug.clone(),
        position: r.position,
        path: r.path.clone(),
    }
}

/// Records a category change (always a staff action: it needs `catalog.categories.manage`).
async fn audit(
    conn: &mut sqlx::PgConnection,
    user: &CurrentUser,
    action: &str,
    id: &Uuid,
    before: Option<&CategoryRow>,
    after: Option<&CategoryRow>,
) -> Result<(), sqlx::Error> {
    let json = |r: &CategoryRow| serde_json::to_value(snapshot(r)).ok();
    let before = before.and_then(json);
    let after = after.and_then(json);
    crate::platform::audit::record(
        conn,
        &crate::platform::audit::AuditEntry {
            actor: &user.actor(),
            action,
            object_type: "catalog.category",
            object_id: &id.to_string(),
            before: before.as_ref(),
            after: after.as_ref(),
        },
    )
    .await
}
