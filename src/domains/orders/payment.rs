//! Payment with the `manual` provider (bank transfer, cash on delivery): staff with
//! `orders.manage` mark the order paid. The work is `service::settle`, which a provider's
//! webhook calls the same way (the payments issue).

use actix_web::{HttpResponse, web};
use utoipa::OpenApi;

use super::access::MANAGE;
use super::error::OrdersError;
use super::model::*;
use super::service;
use crate::platform::audit::{self, AuditEntry};
use crate::platform::error::responses::{Conflict, Forbidden, NotFound, Unauthorized};
use crate::platform::http::{Endpoint, Routes};
use crate::platform::{CurrentUser, Platform};

#[derive(OpenApi)]
#[openapi(paths(mark_paid))]
pub struct PaymentApi;

pub fn configure(routes: &mut Routes) {
    routes.add(Endpoint::at("/{order}/mark-paid").post(mark_paid));
}

/// Record that a `pending_payment` order's money arrived (`orders.manage`, audited): its
/// stock holds are committed (a lapsed hold is taken again, and if the stock is gone the
/// order becomes `requires_attention` instead of being lost), and `order.paid` is
/// published. A 409 naming the status for an order that is not awaiting payment.
#[utoipa::path(
    post, path = "/{order}/mark-paid", tag = "orders", security(("bearer" = []), ("api_key" = [])),
    params(("order" = Uuid, Path)),
    responses((status = 200, body = OrderResponse), Unauthorized, Forbidden, NotFound, Conflict)
)]
pub async fn mark_paid(
    platform: web::Data<Platform>,
    user: CurrentUser,
    path: web::Path<OrderId>,
) -> Result<HttpResponse, OrdersError> {
    user.require(MANAGE)?;
    let actor = user.actor();
    let mut tx = platform.db.begin().await?;
    let order = service::settle(&mut tx, *path, &actor, Some("manual payment received")).await?;
    let after = serde_json::json!({ "status": order.status, "total": order.total, "currency": order.currency });
    audit::record(
        &mut tx,
        &AuditEntry {
            actor: &actor,
            action: "orders.order.marked_paid",
            object_type: "orders.order",
            object_id: &order.id.to_string(),
            before: None,
            after: Some(&after),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(order))
}
