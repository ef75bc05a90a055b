//! Orders as their buyer and staff see them: the list (keyset pages, filters by status and
//! creation date), one order, its history, and cancelling it.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use utoipa::OpenApi;
use uuid::Uuid;

use super::access::{self, MANAGE};
use super::error::OrdersError;
use super::model::*;
use super::repo::{self, ListFilter};
use super::service::{self, Canceller};
use super::settlement;
use super::state::OrdersState;
use crate::platform::error::responses::{
    BadGateway, BadRequest, Conflict, Forbidden, NotFound, Unauthorized, Unavailable,
};
use crate::platform::http::{Endpoint, Routes};
use crate::platform::page::{Page, PageQuery};
use crate::platform::{CurrentUser, Platform};

#[derive(OpenApi)]
#[openapi(
    paths(list_orders, get_order, order_history, cancel_order),
    components(schemas(OrderStatus)),
    tags((name = "orders", description = "Checkout, orders, their per-seller parts, payment and fulfilment"))
)]
pub struct OrdersApi;

pub fn configure(routes: &mut Routes) {
    routes
        .add(Endpoint::at("/{order}").get(get_order))
        .add(Endpoint::at("/{order}/history").get(order_history))
        .add(Endpoint::at("/{order}/cancel").post(cancel_order));
}

/// The caller's orders, newest first; staff (`orders.manage`, `orders.fulfil`) pass
/// `all=true` for every buyer's. Keyset pages.
#[utoipa::path(
    get, path = "", tag = "orders", security(("bearer" = []), ("api_key" = [])),
    params(OrderFilter, PageQuery),
    responses((status = 200, body = Page<OrderResponse>), BadRequest, Unauthorized, Forbidden)
)]
pub async fn list_orders(
    platform: web::Data<Platform>,
    user: CurrentUser,
    filter: web::Query<OrderFilter>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, OrdersError> {
    let (limit, after) = (page.limit()?, page.cursor::<(DateTime<Utc>, Uuid)>()?);
    let user_id = if filter.all {
        if !access::staff(&user) {
            user.require(MANAGE)?;
        }
        None
    } else {
        Some(access::buyer(&user)?)
    };
    let f = ListFilter {
        user_id,
        status: filter.status,
        created_from: filter.created_from,
        created_to: filter.created_to,
    };
    let rows = repo::list(&platform.db, &f, after, page.fetch()?).await?;
    let page = Page::from_rows(rows, limit, |r| (r.created_at, r.id.0), |r| r);
    Ok(HttpResponse::Ok().json(page))
}

/// One order, with its per-seller parts and their lines (its buyer, or staff). One
/// statement.
#[utoipa::path(
    get, path = "/{order}", tag = "orders", security(("bearer" = []), ("api_key" = [])),
    params(("order" = Uuid, Path)),
    responses((status = 200, body = OrderResponse), Unauthorized, Forbidden, NotFound)
)]
pub async fn get_order(
    platform: web::Data<Platform>,
    user: CurrentUser,
    path: web::Path<OrderId>,
) -> Result<HttpResponse, OrdersError> {
    let (viewer, staff) = access::viewer(&user)?;
    let row = repo::order(&platform.db, *path, viewer, staff)
        .await?
        .ok_or(OrdersError::OrderNotFound)?;
    Ok(HttpResponse::Ok().json(row))
}

/// Every transition of the order and of its parts, oldest first, with who made it and when
/// (its buyer, or staff).
#[utoipa::path(
    get, path = "/{order}/history", tag = "orders", security(("bearer" = []), ("api_key" = [])),
    params(("order" = Uuid, Path)),
    responses((status = 200, body = Vec<HistoryResponse>), Unauthorized, NotFound)
)]
pub async fn order_history(
    platform: web::Data<Platform>,
    user: CurrentUser,
    path: web::Path<OrderId>,
) -> Result<HttpResponse, OrdersError> {
    let (viewer, staff) = access::viewer(&user)?;
    let items = repo::history(&platform.db, *path, viewer, staff).await?;
    if items.is_empty() {
        return Err(OrdersError::OrderNotFound);
    }
    Ok(HttpResponse::Ok().json(items))
}

/// Cancel the order: its buyer before any part has shipped, staff (`orders.manage`) until
/// it is completed. Its open payment is cancelled at the provider first (the intent the
/// buyer holds can then take no money; a provider that cannot cancel, Razorpay, leaves it
/// open and a late capture puts the order before staff as `requires_attention`). Held stock
/// is released, sold stock returned; a paid order then owes a refund (`order.cancelled`
/// says `was_paid`). A 409 naming the status when it is too late; 409
/// `payment_in_progress` while its payment is processing or authorized (money may be on its
/// way); 502/503 when the provider refused or could not be reached (nothing changed).
#[utoipa::path(
    post, path = "/{order}/cancel", tag = "orders", security(("bearer" = []), ("api_key" = [])),
    params(("order" = Uuid, Path)),
    responses(
        (status = 200, body = OrderResponse),
        Unauthorized, Forbidden, NotFound, Conflict, BadGateway, Unavailable
    )
)]
pub async fn cancel_order(
    platform: web::Data<Platform>,
    state: web::Data<OrdersState>,
    user: CurrentUser,
    path: web::Path<OrderId>,
) -> Result<HttpResponse, OrdersError> {
    let (viewer, who) = if user.can(MANAGE) {
        (None, Canceller::Staff)
    } else {
        (Some(access::buyer(&user)?), Canceller::Customer)
    };
    let mut tx = platform.db.begin().await?;
    settlement::cancel_open(&mut tx, &state.providers, *path, viewer, who, &user.actor()).await?;
    let order = service::cancel(&mut tx, *path, viewer, who, &user.actor(), None)
        .await?
        .ok_or(OrdersError::OrderNotFound)?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(order))
}
