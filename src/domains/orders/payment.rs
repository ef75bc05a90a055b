//! An order's payments: start (or resume) one through a configured provider, list them
//! with their ledger, staff's `mark-paid` for the `manual` provider, and staff's refunds.
//! The work is `settlement` (shared with the webhooks' subscriber and the reconciliation
//! job), which ends in `service::settle` once nothing is outstanding.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use utoipa::OpenApi;

use super::access::{self, MANAGE, REFUND};
use super::error::OrdersError;
use super::model::*;
use super::providers::{Outcome, manual, razorpay};
use super::repo;
use super::service;
use super::settlement::{self, Applied};
use super::state::OrdersState;
use crate::platform::audit::{self, AuditEntry};
use crate::platform::error::responses::{
    BadGateway, BadRequest, Conflict, Forbidden, Invalid, NotFound, Unauthorized, Unavailable,
};
use crate::platform::http::{Endpoint, OptionalJson, Routes, ValidatedJson};
use crate::platform::idempotency::{Begun, Idempotency};
use crate::platform::{CurrentUser, Platform};

#[derive(OpenApi)]
#[openapi(
    paths(start_payment, razorpay_callback, list_payments, mark_paid, refund),
    components(schemas(
        PaymentStatus,
        PaymentResponse,
        LedgerEntry,
        StartPaymentRequest,
        RazorpayCallback,
        RefundBody,
        RefundResponse
    ))
)]
pub struct PaymentApi;

pub fn configure(routes: &mut Routes) {
    routes
        .add(Endpoint::at("/{order}/payment").post(start_payment))
        .add(Endpoint::at("/{order}/payment/razorpay").post(razorpay_callback))
        .add(Endpoint::at("/{order}/payments").get(list_payments))
        .add(Endpoint::at("/{order}/mark-paid").post(mark_paid))
        .add(Endpoint::at("/{order}/refunds").post(refund));
}

/// Start the order's payment, or resume the open one (its buyer, or staff): for the
/// outstanding amount (the total less what earlier payments captured), through `provider`
/// (default: the one the order was placed with). Answers with what the client needs to
/// finish it (`client`: Stripe's `client_secret`, Razorpay's `order_id` and key id, manual's
/// instructions). Calling it again returns the same payment (200), never a second intent.
/// A 409 naming the status when the order is not awaiting payment; 409
/// `payment_in_progress` while another provider's payment is open; 404
/// `provider_not_configured` for a provider this deployment does not offer.
#[utoipa::path(
    post, path = "/{order}/payment", tag = "orders", request_body(content = Option<StartPaymentRequest>),
    security(("bearer" = []), ("api_key" = [])),
    params(("order" = Uuid, Path)),
    responses(
        (status = 201, body = PaymentResponse, description = "A payment opened"),
        (status = 200, body = PaymentResponse, description = "The open payment, resumed"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, Invalid, BadGateway, Unavailable
    )
)]
pub async fn start_payment(
    platform: web::Data<Platform>,
    state: web::Data<OrdersState>,
    user: CurrentUser,
    path: web::Path<OrderId>,
    body: OptionalJson<StartPaymentRequest>,
) -> Result<HttpResponse, OrdersError> {
    let (viewer, staff) = access::viewer(&user)?;
    let requested = body.into_inner().provider;
    let mut tx = platform.db.begin().await?;
    let name = match requested {
        Some(name) => name,
        None => {
            let o = repo::lock_payable(&mut tx, *path, Some(viewer), staff)
                .await?
                .ok_or(OrdersError::OrderNotFound)?;
            o.payment_provider
        }
    };
    let provider = state
        .providers
        .get(&name)
        .ok_or(OrdersError::ProviderNotConfigured(name))?;
    let (payment, created) = settlement::start(
        &mut tx,
        &state.providers,
        provider,
        *path,
        (!staff).then_some(viewer),
        &user.actor(),
    )
    .await?;
    tx.commit().await?;
    let res = PaymentResponse::try_from(payment)?;
    Ok(if created {
        HttpResponse::Created().json(res)
    } else {
        HttpResponse::Ok().json(res)
    })
}

/// Razorpay Checkout's success callback, forwarded by the buyer's client (or staff): the
/// ids and signature its `handler` received. The signature is checked against the Razorpay
/// order id Basalt stored for this order's payment (HMAC-SHA256 of `"{order_id}|{payment_id}"`
/// with the key secret), never against an id the callback could choose; then Razorpay is
/// asked what the payment is (the callback proves who paid, not how much), and that is
/// applied as its webhook would be: the order is paid once the capture covers it. Answers the
/// payment. 400 `invalid_signature`; 404 for an order or payment that is not the caller's,
/// or where Razorpay is not configured (`provider_not_configured`).
#[utoipa::path(
    post, path = "/{order}/payment/razorpay", tag = "orders", request_body = RazorpayCallback,
    security(("bearer" = []), ("api_key" = [])),
    params(("order" = Uuid, Path)),
    responses(
        (status = 200, body = PaymentResponse),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, Invalid, BadGateway, Unavailable
    )
)]
pub async fn razorpay_callback(
    platform: web::Data<Platform>,
    state: web::Data<OrdersState>,
    user: CurrentUser,
    path: web::Path<OrderId>,
    body: ValidatedJson<RazorpayCallback>,
) -> Result<HttpResponse, OrdersError> {
    let (viewer, staff) = access::viewer(&user)?;
    let not_configured = || OrdersError::ProviderNotConfigured("razorpay".into());
    let settings = state
        .settings
        .razorpay
        .as_ref()
        .ok_or_else(not_configured)?;
    let provider = state.providers.get("razorpay").ok_or_else(not_configured)?;
    let b = body.into_inner();
    let payment = repo::visible_payment(
        &platform.db,
        *path,
        viewer,
        staff,
        "razorpay",
        &b.razorpay_order_id,
    )
    .await?
    .ok_or(OrdersError::PaymentNotFound)?;
    razorpay::verify_checkout(
        settings,
        &payment.reference,
        &b.razorpay_payment_id,
        &b.razorpay_signature,
    )?;
    let remote = provider.fetch(&payment.reference).await?;
    if remote.reference != payment.reference {
        return Err(OrdersError::Internal(anyhow::anyhow!(
            "Razorpay answered about {} when asked about {}",
            remote.reference,
            payment.reference
        )));
    }
    let outcome = settlement::outcome_of(remote);
    let mut tx = platform.db.begin().await?;
    settlement::apply(&mut tx, payment.id, *path, &outcome, None, &user.actor()).await?;
    let row = repo::lock_payment(&mut tx, payment.id)
        .await?
        .ok_or(OrdersError::PaymentNotFound)?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(PaymentResponse::try_from(row)?))
}

/// The order's payments, oldest first, each with its ledger rows (every amount authorised,
/// captured, refunded, and the provider's fee where known): its buyer, or staff.
#[utoipa::path(
    get, path = "/{order}/payments", tag = "orders", security(("bearer" = []), ("api_key" = [])),
    params(("order" = Uuid, Path)),
    responses((status = 200, body = Vec<PaymentResponse>), Unauthorized, Forbidden, NotFound)
)]
pub async fn list_payments(
    platform: web::Data<Platform>,
    user: CurrentUser,
    path: web::Path<OrderId>,
) -> Result<HttpResponse, OrdersError> {
    let (viewer, staff) = access::viewer(&user)?;
    let items = repo::visible_payments(&platform.db, *path, viewer, staff)
        .await?
        .ok_or(OrdersError::OrderNotFound)?
        .into_iter()
        .map(PaymentResponse::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HttpResponse::Ok().json(items))
}

/// Record that a `pending_payment` order's money arrived outside Basalt (`orders.manage`,
/// audited): a `manual` payment with its `captured` ledger row, through the same path a
/// provider's webhook takes; its stock holds are committed (a lapsed hold is taken again,
/// and if the stock is gone the order becomes `requires_attention` instead of being lost),
/// and `order.paid` is published. A 409 naming the status for an order that is not awaiting
/// payment; 409 `payment_in_progress` while another provider's payment is open.
#[utoipa::path(
    post, path = "/{order}/mark-paid", tag = "orders", security(("bearer" = []), ("api_key" = [])),
    params(("order" = Uuid, Path)),
    responses((status = 200, body = OrderResponse), Unauthorized, Forbidden, NotFound, Conflict)
)]
pub async fn mark_paid(
    platform: web::Data<Platform>,
    state: web::Data<OrdersState>,
    user: CurrentUser,
    path: web::Path<OrderId>,
) -> Result<HttpResponse, OrdersError> {
    user.require(MANAGE)?;
    let actor = user.actor();
    let mut tx = platform.db.begin().await?;
    let o = repo::lock_payable(&mut tx, *path, None, true)
        .await?
        .ok_or(OrdersError::OrderNotFound)?;
    OrderStatus::parse(&o.status)?.apply(Action::Pay)?;
    if o.total - o.captured <= 0 {
        // Nothing to collect (a fully discounted order): paid as it is.
        let order = service::settle(&mut tx, *path, &actor, Some("nothing to pay")).await?;
        tx.commit().await?;
        return Ok(HttpResponse::Ok().json(order));
    }
    let (payment, _) = settlement::start(
        &mut tx,
        &state.providers,
        &manual::Manual,
        *path,
        None,
        &actor,
    )
    .await?;
    let outcome = Outcome::Succeeded {
        amount: o.total - o.captured,
        fee: None,
        capture_reference: None,
    };
    let applied = settlement::apply(&mut tx, payment.id, *path, &outcome, None, &actor).await?;
    if applied != Applied::Applied {
        return Err(OrdersError::Internal(anyhow::anyhow!(
            "order {}: a manual payment's capture did not apply under its lock",
            o.id
        )));
    }
    let order: OrderResponse = repo::order(&mut *tx, *path, uuid::Uuid::nil(), true)
        .await?
        .ok_or(OrdersError::OrderNotFound)?;
    let after = serde_json::json!({ "status": order.status, "total": order.total, "currency": order.currency, "payment_id": payment.id });
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

/// A refund and where the order stands after it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct RefundResponse {
    /// The payment refunded, with its new ledger row.
    pub payment: PaymentResponse,
    /// `refunded` once everything captured is, else `partially_refunded` (or the status
    /// the order had, when it cannot move: a cancelled order stays cancelled; or while the
    /// refund is `pending`).
    pub order_status: OrderStatus,
    /// The provider's id of the refund (Stripe `re_…`, Razorpay `rfnd_…`, manual: ours).
    pub refund_reference: String,
    /// `true` while the provider has not confirmed the refund (Stripe's `pending`): its
    /// amount is held on the payment (its `refund_pending`: no second refund can take it),
    /// but there is no `refunded` ledger row, no `payment.refunded` and no order move until
    /// its webhook says it succeeded; if it fails the amount is refundable again and the
    /// order's history says so.
    pub pending: bool,
}

/// Refund all (no `amount`) or part of what the order's payments captured (`orders.refund`,
/// audited), through the provider that took it (`manual`: recorded; the money goes back
/// outside Basalt). Never more than captured − refunded in total: a 409
/// `refund_exceeds_captured` naming what is left. Appends a `refunded` ledger row, publishes
/// `payment.refunded`, and moves the order to `refunded` or `partially_refunded`. Needs an
/// `Idempotency-Key` header (a double submit must not refund twice): a retry gets the first
/// response again (`Idempotent-Replayed: true`) for 24 hours, and reaches the provider under
/// the same key; the same key with another body is a 422, a retry while the first attempt
/// runs a 409.
#[utoipa::path(
    post, path = "/{order}/refunds", tag = "orders", request_body(content = Option<RefundBody>),
    security(("bearer" = []), ("api_key" = [])),
    params(
        ("order" = Uuid, Path),
        ("Idempotency-Key" = String, Header, description = "A unique value per refund (e.g. a UUID), 1 to 255 characters; retries send the same one")
    ),
    responses(
        (status = 201, body = RefundResponse,
            headers(("Idempotent-Replayed" = bool, description = "`true` on a retry's replay of the first response"))),
        (status = 409, body = crate::platform::error::Problem, content_type = "application/problem+json",
            description = "More than is refundable (`refund_exceeds_captured`), or an attempt with this key still running (`idempotency_key_in_flight`)",
            headers(("Retry-After" = u32, description = "Seconds to wait, when an attempt with this key is still running"))),
        BadRequest, Unauthorized, Forbidden, NotFound, Invalid, BadGateway, Unavailable
    )
)]
pub async fn refund(
    platform: web::Data<Platform>,
    state: web::Data<OrdersState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<OrderId>,
    body: OptionalJson<RefundBody>,
) -> Result<HttpResponse, OrdersError> {
    user.require(REFUND)?;
    let body = body.into_inner();
    let actor = user.actor();
    let idem = Idempotency::of_request(&req, &actor, &body)?;
    let mut tx = platform.db.begin().await?;
    if let Begun::Replay(stored) = idem.begin(&mut tx).await? {
        tx.rollback().await?;
        return Ok(stored.response());
    }
    let done = settlement::refund(
        &mut tx,
        &state.providers,
        *path,
        body.amount,
        &idem.digest(),
        &actor,
    )
    .await?;
    let after = serde_json::json!({ "payment_id": done.payment.id, "refunded": done.payment.refunded,
        "amount": body.amount, "reason": body.reason, "order_status": done.order_status,
        "refund_reference": done.reference, "pending": done.pending });
    audit::record(
        &mut tx,
        &AuditEntry {
            actor: &actor,
            action: "orders.order.refunded",
            object_type: "orders.order",
            object_id: &path.to_string(),
            before: None,
            after: Some(&after),
        },
    )
    .await?;
    let res = RefundResponse {
        payment: done.payment.try_into()?,
        order_status: done.order_status,
        refund_reference: done.reference,
        pending: done.pending,
    };
    if !idem.complete(&mut tx, StatusCode::CREATED, &res).await? {
        // An attempt with this key committed while we worked: ours rolls back (and the
        // provider, asked under the same key, answered with the same refund).
        tx.rollback().await?;
        return Ok(idem.replay(&platform.db).await?);
    }
    tx.commit().await?;
    Ok(HttpResponse::Created().json(res))
}
