//! A product's status moves: its seller submits it for review, archives and restores it;
//! moderators (`catalog.products.moderate`) approve or reject it, each decision recorded in
//! the audit trail. [`ProductStatus::after`] decides every move; an illegal one is a 409
//! naming the status the product is in.

use actix_web::{HttpResponse, web};
use utoipa::OpenApi;

use super::access::audit_staff;
use super::access::{self, MANAGE, MODERATE};
use super::error::CatalogError;
use super::model::*;
use super::repo;
use super::state::CatalogState;
use crate::events::catalog::{
    ProductArchived, ProductPublished, ProductRejected, ProductSubmitted, ProductUpdated,
};
use crate::platform::error::responses::{Conflict, Forbidden, Invalid, NotFound, Unauthorized};
use crate::platform::events::publish;
use crate::platform::http::{Endpoint, Routes, ValidatedJson};
use crate::platform::{CurrentUser, Platform};

#[derive(OpenApi)]
#[openapi(paths(
    submit_product,
    approve_product,
    reject_product,
    archive_product,
    restore_product
))]
pub struct ModerationApi;

pub fn configure(routes: &mut Routes) {
    routes
        .add(Endpoint::at("/products/{product}/submit").post(submit_product))
        .add(Endpoint::at("/products/{product}/approve").post(approve_product))
        .add(Endpoint::at("/products/{product}/reject").post(reject_product))
        .add(Endpoint::at("/products/{product}/archive").post(archive_product))
        .add(Endpoint::at("/products/{product}/restore").post(restore_product));
}

/// Submit a `draft` or `rejected` product for review: it becomes `pending`, or `active` at
/// once while the runtime setting `catalog.auto_approve` is on.
#[utoipa::path(
    post, path = "/products/{product}/submit", tag = "catalog", security(("bearer" = []), ("api_key" = [])),
    params(("product" = Uuid, Path)),
    responses((status = 200, body = ProductResponse), Unauthorized, NotFound, Conflict)
)]
pub async fn submit_product(
    platform: web::Data<Platform>,
    state: web::Data<CatalogState>,
    user: CurrentUser,
    path: web::Path<ProductId>,
) -> Result<HttpResponse, CatalogError> {
    let auto = *state.auto_approve.get();
    move_product(&platform, &user, *path, Transition::Submit, auto, None).await
}

/// Approve a `pending` product (`catalog.products.moderate`): it goes on sale.
#[utoipa::path(
    post, path = "/products/{product}/approve", tag = "catalog", security(("bearer" = []), ("api_key" = [])),
    params(("product" = Uuid, Path)),
    responses((status = 200, body = ProductResponse), Unauthorized, Forbidden, NotFound, Conflict)
)]
pub async fn approve_product(
    platform: web::Data<Platform>,
    user: CurrentUser,
    path: web::Path<ProductId>,
) -> Result<HttpResponse, CatalogError> {
    user.require(MODERATE)?;
    move_product(&platform, &user, *path, Transition::Approve, false, None).await
}

/// Reject a `pending` product with a reason the seller sees (`catalog.products.moderate`).
#[utoipa::path(
    post, path = "/products/{product}/reject", tag = "catalog", request_body = RejectRequest,
    security(("bearer" = []), ("api_key" = [])),
    params(("product" = Uuid, Path)),
    responses((status = 200, body = ProductResponse), Unauthorized, Forbidden, NotFound, Conflict, Invalid)
)]
pub async fn reject_product(
    platform: web::Data<Platform>,
    user: CurrentUser,
    path: web::Path<ProductId>,
    body: ValidatedJson<RejectRequest>,
) -> Result<HttpResponse, CatalogError> {
    user.require(MODERATE)?;
    let reason = body.into_inner().reason;
    move_product(
        &platform,
        &user,
        *path,
        Transition::Reject,
        false,
        Some(reason.trim()),
    )
    .await
}

/// Take a product off sale (or out of review) without deleting it.
#[utoipa::path(
    post, path = "/products/{product}/archive", tag = "catalog", security(("bearer" = []), ("api_key" = [])),
    params(("product" = Uuid, Path)),
    responses((status = 200, body = ProductResponse), Unauthorized, NotFound, Conflict)
)]
pub async fn archive_product(
    platform: web::Data<Platform>,
    user: CurrentUser,
    path: web::Path<ProductId>,
) -> Result<HttpResponse, CatalogError> {
    move_product(&platform, &user, *path, Transition::Archive, false, None).await
}

/// Bring an `archived` product back as a `draft`, to be submitted again.
#[utoipa::path(
    post, path = "/products/{product}/restore", tag = "catalog", security(("bearer" = []), ("api_key" = [])),
    params(("product" = Uuid, Path)),
    responses((status = 200, body = ProductResponse), Unauthorized, NotFound, Conflict)
)]
pub async fn restore_product(
    platform: web::Data<Platform>,
    user: CurrentUser,
    path: web::Path<ProductId>,
) -> Result<HttpResponse, CatalogError> {
    move_product(&platform, &user, *path, Transition::Restore, false, None).await
}

/// Locks the product (the seller's own, or any for staff; moderators reach every product),
/// asks the state machine where `t` leads, stores it with its events and, for staff, its
/// audit record, in one transaction.
async fn move_product(
    platform: &Platform,
    user: &CurrentUser,
    id: ProductId,
    t: Transition,
    auto_approve: bool,
    reason: Option<&str>,
) -> Result<HttpResponse, CatalogError> {
    let moderating = matches!(t, Transition::Approve | Transition::Reject);
    let any = moderating || user.can(MANAGE);
    let mut tx = platform.db.begin().await?;
    let p = repo::lock_product(&mut tx, id, access::actor_id(user), any)
        .await?
        .ok_or(CatalogError::ProductNotFound)?;
    let next = p.status.after(t, auto_approve)?;
    let row = repo::set_status(&mut tx, p.id, next, reason).await?;
    let (product_id, user_id) = (row.id.0, row.seller_id);
    match t {
        Transition::Submit => {
            publish(
                &mut tx,
                &ProductSubmitted {
                    product_id,
                    user_id,
                },
            )
            .await?;
        }
        Transition::Reject => {
            let reason = reason.unwrap_or_default().to_owned();
            publish(
                &mut tx,
                &ProductRejected {
                    product_id,
                    user_id,
                    reason,
                },
            )
            .await?;
        }
        Transition::Archive => {
            publish(
                &mut tx,
                &ProductArchived {
                    product_id,
                    user_id,
                },
            )
            .await?;
        }
        Transition::Restore | Transition::Approve => {}
    }
    if next == ProductStatus::Active {
        let product = snapshot(&row);
        publish(
            &mut tx,
            &ProductPublished {
                product_id,
                user_id,
                product,
            },
        )
        .await?;
    } else if t == Transition::Restore {
        let product = snapshot(&row);
        publish(
            &mut tx,
            &ProductUpdated {
                product_id,
                user_id,
                product,
            },
        )
        .await?;
    }
    let action = match t {
        Transition::Submit => "catalog.product.submitted",
        Transition::Approve => "catalog.product.approved",
        Transition::Reject => "catalog.product.rejected",
        Transition::Archive => "catalog.product.archived",
        Transition::Restore => "catalog.product.restored",
    };
    if moderating {
        // Every moderation decision is a staff action, even on a moderator's own product.
        record_decision(&mut tx, user, &p, action, &row, reason).await?;
    } else {
        audit_staff(&mut tx, user, &p, action, Some(&row)).await?;
    }
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(ProductResponse::from(row)))
}

async fn record_decision(
    conn: &mut sqlx::PgConnection,
    user: &CurrentUser,
    before: &repo::ProductRow,
    action: &str,
    after: &repo::ProductRow,
    reason: Option<&str>,
) -> Result<(), sqlx::Error> {
    let was = serde_json::json!({ "status": before.status });
    let now = serde_json::json!({ "status": after.status, "reason": reason });
    crate::platform::audit::record(
        conn,
        &crate::platform::audit::AuditEntry {
            actor: &user.actor(),
            action,
            object_type: "catalog.product",
            object_id: &after.id.to_string(),
            before: Some(&was),
            after: Some(&now),
        },
    )
    .await
}
