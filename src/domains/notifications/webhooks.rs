//! Outbound webhooks, signed the Standard Webhooks way: `webhook-id` (the event id, stable
//! across retries so receivers can dedupe), `webhook-timestamp` (seconds) and
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">` under the endpoint's
//! `whsec_` secret (two signatures while a rotated-out secret is still valid).
//!
//! This file is the endpoints' API (create, list, rotate, enable, the delivery log and
//! replays); `delivery` queues, signs and sends. Deliveries are replayable one by one or by
//! time range. URLs that resolve to loopback, private or link-local addresses are refused
//! (see `ssrf`) unless `notifications.allow_private_webhooks` is on.

use actix_web::{HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use super::delivery::matches;
use super::error::NotifyError;
use super::repo::{self, EndpointRow};
use super::ssrf::check_url;
use super::state::NotifyState;
use crate::platform::error::FieldError;
use crate::platform::error::responses::{BadRequest, Forbidden, Invalid, NotFound, Unauthorized};
use crate::platform::http::{Endpoint, Routes, ValidatedJson};
use crate::platform::page::{Page, PageQuery};
use crate::platform::{CurrentUser, Platform};

/// Holders receive every matching event, not only their own.
pub(super) const MANAGE: &str = "notifications.webhooks.manage";

#[derive(Debug, Deserialize, validator::Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://hooks.example.com/basalt", "event_types": ["user.*"], "description": "CRM sync"}))]
pub struct CreateEndpointRequest {
    #[validate(length(min = 1, max = 2048))]
    pub url: String,
    /// Exact types (`user.registered`), families (`user.*`) or `*`.
    #[validate(length(min = 1, max = 50))]
    pub event_types: Vec<String>,
    #[validate(length(max = 500))]
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointResponse {
    pub id: Uuid,
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// Whether it receives every event (created by an administrator) or only the owner's.
    pub sees_all: bool,
    /// Failed attempts in a row; at `notifications.webhook_disable_after` it is disabled.
    pub consecutive_failures: i32,
    pub created_at: DateTime<Utc>,
    /// `whsec_...`: only in the responses that create or rotate it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryResponse {
    pub id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    /// pending, sending, succeeded or dead.
    pub status: String,
    pub attempts: i32,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    /// pending, sending, succeeded or dead.
    pub status: Option<String>,
    /// 1 to 100, default 25.
    pub limit: Option<i64>,
    /// The `next` cursor of the previous page.
    pub after: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    pub since: DateTime<Utc>,
    pub until: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayResponse {
    pub queued: u64,
}

pub fn configure(routes: &mut Routes) {
    routes
        .add(
            Endpoint::at("/webhooks")
                .get(list_endpoints)
                .post(create_endpoint),
        )
        .add(
            Endpoint::at("/webhooks/{id}")
                .get(get_endpoint)
                .delete(delete_endpoint),
        )
        .add(Endpoint::at("/webhooks/{id}/rotate-secret").post(rotate_secret))
        .add(Endpoint::at("/webhooks/{id}/enable").post(enable_endpoint))
        .add(Endpoint::at("/webhooks/{id}/deliveries").get(list_deliveries))
        .add(Endpoint::at("/webhooks/{id}/deliveries/{delivery}/replay").post(replay_one))
        .add(Endpoint::at("/webhooks/{id}/replay").post(replay_range));
}

fn response(e: EndpointRow, secret: Option<String>) -> EndpointResponse {
    EndpointResponse {
        id: e.id,
        url: e.url,
        description: e.description,
        event_types: e.event_types,
        enabled: e.enabled,
        disabled_reason: e.disabled_reason,
        sees_all: e.sees_all,
        consecutive_failures: e.failure_streak,
        created_at: e.created_at,
        secret,
    }
}

fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("whsec_{}", B64.encode(bytes))
}

/// Create an endpoint
///
/// The secret is in this response only. Holders of `notifications.webhooks.manage` receive
/// every matching event; anyone else only events about themselves. 403
/// `email_not_verified` before the account's email address is verified; a password reset
/// or the first verification disables the endpoints made before it.
#[utoipa::path(
    post, path = "/webhooks", tag = "webhooks", request_body = CreateEndpointRequest, security(("bearer" = [])),
    responses(
        (status = 201, body = EndpointResponse),
        Unauthorized,
        Forbidden,
        Invalid,
    )
)]
pub async fn create_endpoint(
    platform: web::Data<Platform>,
    state: web::Data<NotifyState>,
    user: CurrentUser,
    body: ValidatedJson<CreateEndpointRequest>,
) -> Result<HttpResponse, NotifyError> {
    // An endpoint outlives sessions: only the proven owner of the address may make one.
    user.require_verified_email()?;
    let body = body.into_inner();
    let mut errors = Vec::new();
    if let Err(why) = check_url(&body.url, state.settings.allow_private_webhooks).await {
        errors.push(FieldError {
            field: "url".into(),
            code: "url".into(),
            message: why,
        });
    }
    for t in &body.event_types {
        if !platform.event_types.iter().any(|known| matches(t, known)) {
            errors.push(FieldError {
                field: "event_types".into(),
                code: "unknown_event_type".into(),
                message: format!("{t} matches no event this deployment publishes"),
            });
        }
    }
    if !errors.is_empty() {
        return Err(NotifyError::invalid(errors));
    }
    let row = EndpointRow {
        id: Uuid::now_v7(),
        owner_id: user.uuid()?,
        sees_all: user.can(MANAGE),
        url: body.url,
        description: body.description,
        event_types: body.event_types,
        secret: new_secret(),
        previous_secret: None,
        previous_expires_at: None,
        enabled: true,
        disabled_reason: None,
        failure_streak: 0,
        created_at: Utc::now(),
    };
    repo::insert_endpoint(&platform.db, &row).await?;
    let secret = Some(row.secret.clone());
    Ok(HttpResponse::Created().json(response(row, secret)))
}

/// The signed-in user's endpoints, oldest first.
#[utoipa::path(
    get, path = "/webhooks", tag = "webhooks", params(PageQuery), security(("bearer" = [])),
    responses((status = 200, body = Page<EndpointResponse>), BadRequest, Unauthorized)
)]
pub async fn list_endpoints(
    platform: web::Data<Platform>,
    user: CurrentUser,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, NotifyError> {
    let limit = q.limit()?;
    let rows = repo::endpoints_of(&platform.db, user.uuid()?, q.cursor()?, limit + 1).await?;
    let page = Page::from_rows(rows, limit, |e| e.id, |e| response(e, None));
    Ok(HttpResponse::Ok().json(page))
}

async fn own_endpoint(
    platform: &Platform,
    user: &CurrentUser,
    id: Uuid,
) -> Result<EndpointRow, NotifyError> {
    repo::endpoint(&platform.db, user.uuid()?, id)
        .await?
        .ok_or(NotifyError::EndpointNotFound)
}

/// One endpoint (404 for anyone else's).
#[utoipa::path(
    get, path = "/webhooks/{id}", tag = "webhooks", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = EndpointResponse), NotFound)
)]
pub async fn get_endpoint(
    platform: web::Data<Platform>,
    user: CurrentUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, NotifyError> {
    Ok(HttpResponse::Ok().json(response(own_endpoint(&platform, &user, *id).await?, None)))
}

/// Delete an endpoint and its delivery log.
#[utoipa::path(
    delete, path = "/webhooks/{id}", tag = "webhooks", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 204), NotFound)
)]
pub async fn delete_endpoint(
    platform: web::Data<Platform>,
    user: CurrentUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, NotifyError> {
    if !repo::delete_endpoint(&platform.db, user.uuid()?, *id).await? {
        return Err(NotifyError::EndpointNotFound);
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Issue a new secret (shown once); the old one keeps signing alongside it for a while
/// (`notifications.webhook_rotation_overlap_hours`), so receivers can switch without a gap.
#[utoipa::path(
    post, path = "/webhooks/{id}/rotate-secret", tag = "webhooks", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = EndpointResponse), NotFound)
)]
pub async fn rotate_secret(
    platform: web::Data<Platform>,
    state: web::Data<NotifyState>,
    user: CurrentUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, NotifyError> {
    let secret = new_secret();
    let owner_id = user.uuid()?;
    if !repo::rotate_secret(
        &platform.db,
        owner_id,
        *id,
        &secret,
        state.settings.webhook_rotation_overlap_hours,
    )
    .await?
    {
        return Err(NotifyError::EndpointNotFound);
    }
    let row = own_endpoint(&platform, &user, *id).await?;
    Ok(HttpResponse::Ok().json(response(row, Some(secret))))
}

/// Enable an endpoint again (after it was disabled for failing).
#[utoipa::path(
    post, path = "/webhooks/{id}/enable", tag = "webhooks", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 204), NotFound)
)]
pub async fn enable_endpoint(
    platform: web::Data<Platform>,
    user: CurrentUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, NotifyError> {
    if !repo::enable_endpoint(&platform.db, user.uuid()?, *id).await? {
        return Err(NotifyError::EndpointNotFound);
    }
    Ok(HttpResponse::NoContent().finish())
}

/// An endpoint's delivery log, newest first.
#[utoipa::path(
    get, path = "/webhooks/{id}/deliveries", tag = "webhooks", params(("id" = Uuid, Path), DeliveryQuery), security(("bearer" = [])),
    responses((status = 200, body = Page<DeliveryResponse>), BadRequest, NotFound)
)]
pub async fn list_deliveries(
    platform: web::Data<Platform>,
    user: CurrentUser,
    id: web::Path<Uuid>,
    q: web::Query<DeliveryQuery>,
) -> Result<HttpResponse, NotifyError> {
    let endpoint = own_endpoint(&platform, &user, *id).await?;
    let page = PageQuery {
        limit: q.limit,
        after: q.after.clone(),
    };
    let limit = page.limit()?;
    let rows = repo::deliveries(
        &platform.db,
        endpoint.id,
        q.status.as_deref(),
        page.cursor()?,
        limit + 1,
    )
    .await?;
    let out = Page::from_rows(
        rows,
        limit,
        |d| (d.created_at, d.id),
        |d| DeliveryResponse {
            id: d.id,
            event_id: d.event_id,
            event_type: d.event_type,
            status: d.status,
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error,
            delivered_at: d.delivered_at,
            created_at: d.created_at,
        },
    );
    Ok(HttpResponse::Ok().json(out))
}

/// Send one delivery again (same id and body).
#[utoipa::path(
    post, path = "/webhooks/{id}/deliveries/{delivery}/replay", tag = "webhooks",
    params(("id" = Uuid, Path), ("delivery" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 202, body = ReplayResponse), NotFound)
)]
pub async fn replay_one(
    platform: web::Data<Platform>,
    user: CurrentUser,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, NotifyError> {
    let (id, delivery) = path.into_inner();
    let endpoint = own_endpoint(&platform, &user, id).await?;
    let queued = repo::replay(&platform.db, endpoint.id, Some(delivery), None, None).await?;
    if queued == 0 {
        return Err(NotifyError::DeliveryNotFound);
    }
    Ok(HttpResponse::Accepted().json(ReplayResponse { queued }))
}

/// Send again every delivery created in a time range.
#[utoipa::path(
    post, path = "/webhooks/{id}/replay", tag = "webhooks", request_body = ReplayRequest,
    params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 202, body = ReplayResponse), NotFound, Invalid)
)]
pub async fn replay_range(
    platform: web::Data<Platform>,
    user: CurrentUser,
    id: web::Path<Uuid>,
    body: web::Json<ReplayRequest>,
) -> Result<HttpResponse, NotifyError> {
    let endpoint = own_endpoint(&platform, &user, *id).await?;
    if body.until.is_some_and(|u| u <= body.since) {
        return Err(NotifyError::invalid_field(
            "until",
            "range",
            "must be after since",
        ));
    }
    let queued = repo::replay(
        &platform.db,
        endpoint.id,
        None,
        Some(body.since),
        body.until,
    )
    .await?;
    Ok(HttpResponse::Accepted().json(ReplayResponse { queued }))
}

#[derive(OpenApi)]
#[openapi(
    paths(
        create_endpoint,
        list_endpoints,
        get_endpoint,
        delete_endpoint,
        rotate_secret,
        enable_endpoint,
        list_deliveries,
        replay_one,
        replay_range,
    ),
    tags((name = "webhooks", description = "Signed outbound webhooks (Standard Webhooks) with retries and replay"))
)]
pub struct WebhooksApi;
