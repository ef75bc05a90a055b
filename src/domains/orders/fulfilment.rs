//! Fulfilment by staff (`orders.manage` or `orders.fulfil`): the order goes to
//! `processing`, each seller's part (sub-order) ships with its tracking and is delivered on
//! its own, the order following once every part has (`shipped`, then `delivered`), and
//! staff close it (`completed`). Each move is one locked read and one conditional write.

use actix_web::{HttpResponse, web};
use utoipa::OpenApi;

use super::access;
use super::error::OrdersError;
use super::model::*;
use super::repo::{self, Change, LockedOrder};
use super::service;
use crate::events::orders::{OrderCompleted, OrderDelivered, OrderShipped, Tracking};
use crate::platform::error::responses::{Conflict, Forbidden, Invalid, NotFound, Unauthorized};
use crate::platform::events::envelopes;
use crate::platform::http::{Endpoint, Routes, ValidatedJson};
use crate::platform::{CurrentUser, Platform};

#[derive(OpenApi)]
#[openapi(paths(start_processing, ship_sub_order, deliver_sub_order, complete_order))]
pub struct FulfilmentApi;

pub fn configure(routes: &mut Routes) {
    routes
        .add(Endpoint::at("/{order}/process").post(start_processing))
        .add(Endpoint::at("/{order}/sub-orders/{sub_order}/ship").post(ship_sub_order))
        .add(Endpoint::at("/{order}/sub-orders/{sub_order}/deliver").post(deliver_sub_order))
        .add(Endpoint::at("/{order}/complete").post(complete_order));
}

/// Locks the order for a fulfilment move by staff.
async fn locked(
    tx: &mut sqlx::PgConnection,
    user: &CurrentUser,
    id: OrderId,
) -> Result<(LockedOrder, OrderStatus), OrdersError> {
    access::require_fulfil(user)?;
    let locked = repo::lock(tx, id, None, true)
        .await?
        .ok_or(OrdersError::OrderNotFound)?;
    let status = locked.order.status;
    Ok((locked, status))
}

/// Start work on a paid order (or one staff resolved from `requires_attention`): the order
/// and its parts go to `processing`. From `requires_attention` the units that were missing
/// are taken off `on_hand` now: a 409 `insufficient_stock` while they are still not there;
/// an order paid after its cancel (its stock given back) is a 409 `paid_after_cancel`: refund it.
#[utoipa::path(
    post, path = "/{order}/process", tag = "orders", security(("bearer" = []), ("api_key" = [])),
    params(("order" = Uuid, Path)),
    responses((status = 200, body = OrderResponse), Unauthorized, Forbidden, NotFound, Conflict)
)]
pub async fn start_processing(
    platform: web::Data<Platform>,
    user: CurrentUser,
    path: web::Path<OrderId>,
) -> Result<HttpResponse, OrdersError> {
    let mut tx = platform.db.begin().await?;
    let (locked, status) = locked(&mut tx, &user, *path).await?;
    // An order whose money came after it was cancelled (`requires_attention` with its stock
    // already given back and its parts cancelled) is not work to start: it is a refund.
    if status == OrderStatus::RequiresAttention
        && locked
            .holds
            .iter()
            .any(|h| matches!(h.stock.as_str(), "released" | "restocked"))
    {
        return Err(OrdersError::PaidAfterCancel);
    }
    let order_move = status.apply(Action::Process)?;
    // An order paid without its stock ships nothing it does not have: the missing units are
    // taken now (a 409 while they are still not there).
    let line_stock = if status == OrderStatus::RequiresAttention {
        service::take_missing(&mut tx, &locked, &user.actor()).await?
    } else {
        Vec::new()
    };
    let change = Change {
        order_move: Some(order_move),
        sub_moves: service::follow(&locked, Action::Process)?,
        line_stock,
        ..Change::default()
    };
    let order = service::finish(&mut tx, *path, &user.actor(), &locked, &change).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(order))
}

/// One seller's part shipped, with its tracking: `order.shipped` for it, and the order
/// becomes `shipped` once every part has.
#[utoipa::path(
    post, path = "/{order}/sub-orders/{sub_order}/ship", tag = "orders", request_body = ShipRequest,
    security(("bearer" = []), ("api_key" = [])),
    params(("order" = Uuid, Path), ("sub_order" = Uuid, Path)),
    responses((status = 200, body = OrderResponse), Unauthorized, Forbidden, NotFound, Conflict, Invalid)
)]
pub async fn ship_sub_order(
    platform: web::Data<Platform>,
    user: CurrentUser,
    path: web::Path<(OrderId, SubOrderId)>,
    body: ValidatedJson<ShipRequest>,
) -> Result<HttpResponse, OrdersError> {
    let (id, sub) = path.into_inner();
    let b = body.into_inner();
    let tracking = Tracking {
        carrier: b.carrier.trim().to_owned(),
        number: b.number.trim().to_owned(),
        url: b.url.map(|u| u.trim().to_owned()),
    };
    let mut tx = platform.db.begin().await?;
    let (locked, status) = locked(&mut tx, &user, id).await?;
    let part = part_move(&locked, sub, Action::Ship)?;
    // The order follows when this was the last part to ship (the others shipped or
    // delivered already); the row lock makes two sellers shipping at once take turns.
    let order_move = if rest_reached(
        &locked,
        sub,
        &[OrderStatus::Shipped, OrderStatus::Delivered],
    ) {
        Some(status.apply(Action::Ship)?)
    } else {
        None
    };
    let o = &locked.order;
    let seller_id = seller_of(&locked, sub);
    let event = OrderShipped {
        order_id: id.0,
        user_id: o.user_id,
        number: o.number.clone(),
        sub_order_id: sub.0,
        seller_id,
        tracking: tracking.clone(),
        order_status: order_move.map_or(status, |t| t.to()).as_str().to_owned(),
    };
    let change = Change {
        order_move,
        sub_moves: vec![(sub, part)],
        sub_history: true,
        tracking: Some((sub, &tracking)),
        events: envelopes(&[event])?,
        ..Change::default()
    };
    let order = service::finish(&mut tx, id, &user.actor(), &locked, &change).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(order))
}

/// One seller's part was delivered: `order.delivered` for it, and the order becomes
/// `delivered` once every part has been.
#[utoipa::path(
    post, path = "/{order}/sub-orders/{sub_order}/deliver", tag = "orders",
    security(("bearer" = []), ("api_key" = [])),
    params(("order" = Uuid, Path), ("sub_order" = Uuid, Path)),
    responses((status = 200, body = OrderResponse), Unauthorized, Forbidden, NotFound, Conflict)
)]
pub async fn deliver_sub_order(
    platform: web::Data<Platform>,
    user: CurrentUser,
    path: web::Path<(OrderId, SubOrderId)>,
) -> Result<HttpResponse, OrdersError> {
    let (id, sub) = path.into_inner();
    let mut tx = platform.db.begin().await?;
    let (locked, status) = locked(&mut tx, &user, id).await?;
    let part = part_move(&locked, sub, Action::Deliver)?;
    let order_move = if rest_reached(&locked, sub, &[OrderStatus::Delivered]) {
        Some(status.apply(Action::Deliver)?)
    } else {
        None
    };
    let o = &locked.order;
    let event = OrderDelivered {
        order_id: id.0,
        user_id: o.user_id,
        number: o.number.clone(),
        sub_order_id: sub.0,
        seller_id: seller_of(&locked, sub),
        order_status: order_move.map_or(status, |t| t.to()).as_str().to_owned(),
    };
    let change = Change {
        order_move,
        sub_moves: vec![(sub, part)],
        sub_history: true,
        events: envelopes(&[event])?,
        ..Change::default()
    };
    let order = service::finish(&mut tx, id, &user.actor(), &locked, &change).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(order))
}

/// Close a delivered order (`completed`, `order.completed`): vendors' payouts may count it.
#[utoipa::path(
    post, path = "/{order}/complete", tag = "orders", security(("bearer" = []), ("api_key" = [])),
    params(("order" = Uuid, Path)),
    responses((status = 200, body = OrderResponse), Unauthorized, Forbidden, NotFound, Conflict)
)]
pub async fn complete_order(
    platform: web::Data<Platform>,
    user: CurrentUser,
    path: web::Path<OrderId>,
) -> Result<HttpResponse, OrdersError> {
    let mut tx = platform.db.begin().await?;
    let (locked, status) = locked(&mut tx, &user, *path).await?;
    let o = &locked.order;
    let event = OrderCompleted {
        order_id: path.0,
        user_id: o.user_id,
        number: o.number.clone(),
        currency: o.currency.clone(),
        sub_orders: service::snapshots(o),
    };
    let change = Change {
        order_move: Some(status.apply(Action::Complete)?),
        sub_moves: service::follow(&locked, Action::Complete)?,
        events: envelopes(&[event])?,
        ..Change::default()
    };
    let order = service::finish(&mut tx, *path, &user.actor(), &locked, &change).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(order))
}

/// The move of one part, refused (409) as the state machine says; 404 for a part of
/// another order.
fn part_move(
    locked: &LockedOrder,
    sub: SubOrderId,
    action: Action,
) -> Result<Transition, OrdersError> {
    let part = locked
        .order
        .sub_orders
        .iter()
        .find(|s| s.id == sub)
        .ok_or(OrdersError::SubOrderNotFound)?;
    part.status.apply(action)
}

/// Whether every part but `sub` has reached one of `statuses`.
fn rest_reached(locked: &LockedOrder, sub: SubOrderId, statuses: &[OrderStatus]) -> bool {
    locked
        .order
        .sub_orders
        .iter()
        .filter(|s| s.id != sub && s.status != OrderStatus::Cancelled)
        .all(|s| statuses.contains(&s.status))
}

fn seller_of(locked: &LockedOrder, sub: SubOrderId) -> uuid::Uuid {
    locked
        .order
        .sub_orders
        .iter()
        .find(|s| s.id == sub)
        .map(|s| s.seller_id)
        .unwrap_or_default()
}
