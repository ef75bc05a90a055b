//! Discount codes, managed by staff holding `cart.discounts.manage`: percentage or fixed,
//! a minimum subtotal, a validity window, total and per-customer usage limits, and what
//! they apply to (the whole order, or certain products or categories). Every change is
//! audited. Shoppers apply codes to their cart (`carts`); a use is consumed at checkout.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use utoipa::OpenApi;
use uuid::Uuid;

use super::error::CartError;
use super::model::*;
use super::repo;
use crate::platform::audit::{self, AuditEntry};
use crate::platform::error::responses::{
    BadRequest, Conflict, Forbidden, Invalid, NotFound, Unauthorized,
};
use crate::platform::http::{Endpoint, Routes};
use crate::platform::page::{Page, PageQuery};
use crate::platform::{CurrentUser, Platform};

/// Staff: create, change and delete discount codes.
pub const MANAGE: &str = "cart.discounts.manage";

#[derive(OpenApi)]
#[openapi(paths(
    list_discounts,
    create_discount,
    get_discount,
    update_discount,
    delete_discount
))]
pub struct DiscountsApi;

pub fn configure(routes: &mut Routes) {
    routes
        .add(
            Endpoint::at("/discounts")
                .get(list_discounts)
                .post(create_discount),
        )
        .add(
            Endpoint::at("/discounts/{discount}")
                .get(get_discount)
                .put(update_discount)
                .delete(delete_discount),
        );
}

async fn record(
    conn: &mut sqlx::PgConnection,
    user: &CurrentUser,
    action: &str,
    id: Uuid,
    before: Option<&DiscountResponse>,
    after: Option<&DiscountResponse>,
) -> Result<(), sqlx::Error> {
    let before = before.and_then(|b| serde_json::to_value(b).ok());
    let after = after.and_then(|a| serde_json::to_value(a).ok());
    audit::record(
        conn,
        &AuditEntry {
            actor: &user.actor(),
            action,
            object_type: "cart.discount",
            object_id: &id.to_string(),
            before: before.as_ref(),
            after: after.as_ref(),
        },
    )
    .await
}

/// Live discount codes, newest first, keyset paged (`cart.discounts.manage`).
#[utoipa::path(
    get, path = "/discounts", tag = "cart", security(("bearer" = []), ("api_key" = [])),
    params(PageQuery),
    responses((status = 200, body = Page<DiscountResponse>), BadRequest, Unauthorized, Forbidden)
)]
#[tracing::instrument(skip_all)]
pub async fn list_discounts(
    platform: web::Data<Platform>,
    user: CurrentUser,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, CartError> {
    user.require(MANAGE)?;
    let (limit, before) = (page.limit()?, page.cursor::<(DateTime<Utc>, Uuid)>()?);
    let rows = repo::discounts(&platform.db, before, page.fetch()?).await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(
        rows,
        limit,
        |d| (d.created_at, d.id.0),
        std::convert::identity,
    )))
}

/// Create a discount code (`cart.discounts.manage`); a live code is unique (409
/// `code_taken`).
#[utoipa::path(
    post, path = "/discounts", tag = "cart", request_body = DiscountRequest,
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 201, body = DiscountResponse), Unauthorized, Forbidden, Conflict, Invalid)
)]
#[tracing::instrument(skip_all)]
pub async fn create_discount(
    platform: web::Data<Platform>,
    user: CurrentUser,
    body: web::Json<DiscountRequest>,
) -> Result<HttpResponse, CartError> {
    user.require(MANAGE)?;
    let fields = body.into_inner().fields()?;
    let mut tx = platform.db.begin().await?;
    let out = repo::insert_discount(&mut tx, &fields)
        .await
        .map_err(|e| CartError::discount_write(e, &fields.code))?;
    record(
        &mut tx,
        &user,
        "cart.discount.created",
        out.id.0,
        None,
        Some(&out),
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(out))
}

/// One discount code (`cart.discounts.manage`).
#[utoipa::path(
    get, path = "/discounts/{discount}", tag = "cart", security(("bearer" = []), ("api_key" = [])),
    params(("discount" = Uuid, Path)),
    responses((status = 200, body = DiscountResponse), Unauthorized, Forbidden, NotFound)
)]
#[tracing::instrument(skip_all)]
pub async fn get_discount(
    platform: web::Data<Platform>,
    user: CurrentUser,
    path: web::Path<DiscountId>,
) -> Result<HttpResponse, CartError> {
    user.require(MANAGE)?;
    let discount = repo::discount(&platform.db, path.0)
        .await?
        .ok_or(CartError::DiscountNotFound)?;
    Ok(HttpResponse::Ok().json(discount))
}

/// Replace a discount code's settings (`cart.discounts.manage`); its uses so far stay.
/// Carts holding it are priced by the new settings from their next read.
#[utoipa::path(
    put, path = "/discounts/{discount}", tag = "cart", request_body = DiscountRequest,
    security(("bearer" = []), ("api_key" = [])),
    params(("discount" = Uuid, Path)),
    responses((status = 200, body = DiscountResponse), Unauthorized, Forbidden, NotFound, Conflict, Invalid)
)]
#[tracing::instrument(skip_all)]
pub async fn update_discount(
    platform: web::Data<Platform>,
    user: CurrentUser,
    path: web::Path<DiscountId>,
    body: web::Json<DiscountRequest>,
) -> Result<HttpResponse, CartError> {
    user.require(MANAGE)?;
    let fields = body.into_inner().fields()?;
    let mut tx = platform.db.begin().await?;
    let out = repo::update_discount(&mut tx, path.0, &fields)
        .await
        .map_err(|e| CartError::discount_write(e, &fields.code))?
        .ok_or(CartError::DiscountNotFound)?;
    record(
        &mut tx,
        &user,
        "cart.discount.updated",
        out.id.0,
        None,
        Some(&out),
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(out))
}

/// Retire a discount code (`cart.discounts.manage`): it stops applying at once (carts
/// holding it report `discount_unknown`); orders that used it keep naming it.
#[utoipa::path(
    delete, path = "/discounts/{discount}", tag = "cart", security(("bearer" = []), ("api_key" = [])),
    params(("discount" = Uuid, Path)),
    responses((status = 204, description = "Deleted"), Unauthorized, Forbidden, NotFound)
)]
#[tracing::instrument(skip_all)]
pub async fn delete_discount(
    platform: web::Data<Platform>,
    user: CurrentUser,
    path: web::Path<DiscountId>,
) -> Result<HttpResponse, CartError> {
    user.require(MANAGE)?;
    let mut tx = platform.db.begin().await?;
    if !repo::delete_discount(&mut tx, path.0).await? {
        return Err(CartError::DiscountNotFound);
    }
    record(&mut tx, &user, "cart.discount.deleted", path.0, None, None).await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}
