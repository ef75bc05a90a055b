//! Inventory: each variant's `on_hand` and `reserved`, adjusted by its seller or staff with a
//! reason, every change in the stock ledger; and reservations over HTTP for integrations
//! (`catalog.stock.reserve`), the same `api` calls cart and orders make in-process.

use actix_web::{HttpResponse, web};
use utoipa::OpenApi;

use super::access::{self, MANAGE, STOCK_MANAGE, STOCK_RESERVE};
use super::api;
use super::error::CatalogError;
use super::model::*;
use super::repo;
use crate::platform::audit::{self, AuditEntry};
use crate::platform::error::responses::{
    BadRequest, Conflict, Forbidden, Invalid, NotFound, Unauthorized,
};
use crate::platform::http::{Endpoint, Routes, ValidatedJson};
use crate::platform::page::{Page, PageQuery};
use crate::platform::{CurrentUser, Platform};

#[derive(OpenApi)]
#[openapi(paths(
    get_inventory,
    adjust_stock,
    list_movements,
    reserve_stock,
    commit_reservation,
    release_reservation
))]
pub struct InventoryApi;

pub fn configure(routes: &mut Routes) {
    routes
        .add(Endpoint::at("/inventory/{variant}").get(get_inventory))
        .add(Endpoint::at("/inventory/{variant}/adjustments").post(adjust_stock))
        .add(Endpoint::at("/inventory/{variant}/movements").get(list_movements))
        .add(Endpoint::at("/inventory/{variant}/reservations").post(reserve_stock))
        .add(Endpoint::at("/reservations/{reservation}/commit").post(commit_reservation))
        .add(Endpoint::at("/reservations/{reservation}/release").post(release_reservation));
}

/// Staff who see every variant's stock.
fn stock_staff(user: &CurrentUser) -> bool {
    user.can(STOCK_MANAGE) || user.can(MANAGE)
}

/// A variant's stock (its seller, or staff with `catalog.stock.manage`).
#[utoipa::path(
    get, path = "/inventory/{variant}", tag = "catalog", security(("bearer" = []), ("api_key" = [])),
    params(("variant" = Uuid, Path)),
    responses((status = 200, body = InventoryResponse), Unauthorized, NotFound)
)]
pub async fn get_inventory(
    platform: web::Data<Platform>,
    user: CurrentUser,
    path: web::Path<VariantId>,
) -> Result<HttpResponse, CatalogError> {
    let stock = repo::stock(
        &platform.db,
        *path,
        access::actor_id(&user),
        stock_staff(&user),
    )
    .await?
    .ok_or(CatalogError::VariantNotFound)?;
    Ok(HttpResponse::Ok().json(InventoryResponse::from(stock)))
}

/// Add to or take from `on_hand`, with a reason (its seller, or staff with
/// `catalog.stock.manage`, whose adjustments are audited). It may not go below zero (409).
#[utoipa::path(
    post, path = "/inventory/{variant}/adjustments", tag = "catalog", request_body = AdjustStockRequest,
    security(("bearer" = []), ("api_key" = [])),
    params(("variant" = Uuid, Path)),
    responses((status = 200, body = InventoryResponse), Unauthorized, NotFound, Conflict, Invalid)
)]
pub async fn adjust_stock(
    platform: web::Data<Platform>,
    user: CurrentUser,
    path: web::Path<VariantId>,
    body: ValidatedJson<AdjustStockRequest>,
) -> Result<HttpResponse, CatalogError> {
    let a = body.into_inner();
    if a.delta == 0 {
        return Err(CatalogError::invalid_field(
            "delta",
            "range",
            "must not be zero",
        ));
    }
    let owner = (access::actor_id(&user), stock_staff(&user));
    let actor = user.actor();
    let mut tx = platform.db.begin().await?;
    let Some(stock) =
        repo::adjust_stock(&mut tx, *path, a.delta, a.reason.trim(), &actor, owner).await?
    else {
        // Refused: tell "not yours / no such variant" from "not that many".
        let stock = repo::stock(&platform.db, *path, owner.0, owner.1)
            .await?
            .ok_or(CatalogError::VariantNotFound)?;
        return Err(CatalogError::InsufficientStock(stock.on_hand.max(0)));
    };
    api::warn_if_low(&mut tx, &stock, -a.delta).await?;
    if owner.0 != Some(stock.seller_id) {
        let after =
            serde_json::json!({ "delta": a.delta, "reason": a.reason, "on_hand": stock.on_hand });
        audit::record(
            &mut tx,
            &AuditEntry {
                actor: &actor,
                action: "catalog.stock.adjusted",
                object_type: "catalog.variant",
                object_id: &stock.variant_id.to_string(),
                before: None,
                after: Some(&after),
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(InventoryResponse::from(stock)))
}

/// A variant's stock ledger, newest first (its seller, or staff with `catalog.stock.manage`).
#[utoipa::path(
    get, path = "/inventory/{variant}/movements", tag = "catalog", security(("bearer" = []), ("api_key" = [])),
    params(("variant" = Uuid, Path), PageQuery),
    responses((status = 200, body = Page<MovementResponse>), BadRequest, Unauthorized, NotFound)
)]
pub async fn list_movements(
    platform: web::Data<Platform>,
    user: CurrentUser,
    path: web::Path<VariantId>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, CatalogError> {
    let (limit, before) = (page.limit()?, page.cursor::<i64>()?);
    // The ledger is as private as the stock: look the variant up the same way first.
    repo::stock(
        &platform.db,
        *path,
        access::actor_id(&user),
        stock_staff(&user),
    )
    .await?
    .ok_or(CatalogError::VariantNotFound)?;
    let rows = repo::movements(&platform.db, *path, before, page.fetch()?).await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(
        rows,
        limit,
        |m| m.id,
        MovementResponse::from,
    )))
}

/// Hold stock of a variant on sale for a holder until it expires (`catalog.stock.reserve`).
/// Never oversells: past what is available it is a 409 `insufficient_stock`.
#[utoipa::path(
    post, path = "/inventory/{variant}/reservations", tag = "catalog", request_body = ReserveRequest,
    security(("bearer" = []), ("api_key" = [])),
    params(("variant" = Uuid, Path)),
    responses((status = 201, body = ReservationResponse), Unauthorized, Forbidden, NotFound, Conflict, Invalid)
)]
pub async fn reserve_stock(
    platform: web::Data<Platform>,
    user: CurrentUser,
    path: web::Path<VariantId>,
    body: web::Json<ReserveRequest>,
) -> Result<HttpResponse, CatalogError> {
    user.require(STOCK_RESERVE)?;
    let r = body.into_inner();
    let mut tx = platform.db.begin().await?;
    let held = api::reserve(
        &mut tx,
        path.0,
        r.quantity,
        r.holder.trim(),
        r.ttl_secs,
        &user.actor(),
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(ReservationResponse::from(held)))
}

/// Commit a hold: the stock is sold (`catalog.stock.reserve`).
#[utoipa::path(
    post, path = "/reservations/{reservation}/commit", tag = "catalog", security(("bearer" = []), ("api_key" = [])),
    params(("reservation" = Uuid, Path)),
    responses((status = 200, body = ReservationResponse), Unauthorized, Forbidden, NotFound)
)]
pub async fn commit_reservation(
    platform: web::Data<Platform>,
    user: CurrentUser,
    path: web::Path<ReservationId>,
) -> Result<HttpResponse, CatalogError> {
    user.require(STOCK_RESERVE)?;
    let mut conn = platform.db.acquire().await?;
    let done = api::commit(&mut conn, path.0, &user.actor()).await?;
    Ok(HttpResponse::Ok().json(ReservationResponse::from(done)))
}

/// Release a hold: its quantity is available again (`catalog.stock.reserve`).
#[utoipa::path(
    post, path = "/reservations/{reservation}/release", tag = "catalog", security(("bearer" = []), ("api_key" = [])),
    params(("reservation" = Uuid, Path)),
    responses((status = 200, body = ReservationResponse), Unauthorized, Forbidden, NotFound)
)]
pub async fn release_reservation(
    platform: web::Data<Platform>,
    user: CurrentUser,
    path: web::Path<ReservationId>,
) -> Result<HttpResponse, CatalogError> {
    user.require(STOCK_RESERVE)?;
    let mut conn = platform.db.acquire().await?;
    let done = api::release(&mut conn, path.0, &user.actor()).await?;
    Ok(HttpResponse::Ok().json(ReservationResponse::from(done)))
}
