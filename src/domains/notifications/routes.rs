//! The notifications API: the signed-in user's inbox and preferences, one-click unsubscribe,
//! and the delivery log for administrators.

use crate::platform::http::{Endpoint, Routes};
use actix_web::{HttpResponse, web};
use uuid::Uuid;

use super::model::*;
use super::{NotifyState, repo, unsubscribe_token};
use crate::platform::error::{ApiError, FieldError, Problem};
use crate::platform::{CurrentUser, Platform};

pub fn configure(routes: &mut Routes) {
    routes
        .add(Endpoint::at("/inbox").get(list_inbox))
        .add(Endpoint::at("/inbox/read-all").post(read_all))
        .add(Endpoint::at("/inbox/{id}/read").post(read_one))
        .add(Endpoint::at("/inbox/{id}").delete(delete_one))
        .add(Endpoint::at("/preferences").get(list_preferences))
        .add(Endpoint::at("/preferences/{category}").put(set_preference))
        .add(
            Endpoint::at("/unsubscribe")
                .get(unsubscribe)
                .post(unsubscribe),
        )
        .add(Endpoint::at("/messages").get(list_messages))
        .add(Endpoint::at("/messages/{id}/retry").post(retry_message));
}

pub(super) fn page(limit: Option<i64>, offset: Option<i64>) -> Result<(i64, i64), ApiError> {
    let limit = crate::platform::page::limit(limit)?;
    let offset = offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::bad_request(
            "invalid_query",
            "offset: must be at least 0",
        ));
    }
    Ok((limit, offset))
}

/// The signed-in user's notifications, unread first.
#[utoipa::path(
    get, path = "/inbox", tag = "notifications", params(PageQuery), security(("bearer" = [])),
    responses((status = 200, body = InboxPage), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 401, body = Problem, content_type = "application/problem+json"))
)]
pub async fn list_inbox(
    platform: web::Data<Platform>,
    user: CurrentUser,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (limit, offset) = page(q.limit, q.offset)?;
    let (rows, unread) = repo::inbox(&platform.db, user.uuid()?, limit, offset).await?;
    let items = rows
        .into_iter()
        .map(|r| InboxItem {
            id: r.id,
            category: r.category,
            title: r.title,
            body: r.body,
            link: r.link,
            read: r.read_at.is_some(),
            created_at: r.created_at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(InboxPage { items, unread }))
}

/// Mark one notification read.
#[utoipa::path(
    post, path = "/inbox/{id}/read", tag = "notifications", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
pub async fn read_one(
    platform: web::Data<Platform>,
    user: CurrentUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    if repo::mark_read(&platform.db, user.uuid()?, Some(*id)).await? == 0 {
        return Err(ApiError::not_found("No such notification."));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Mark every notification read.
#[utoipa::path(
    post, path = "/inbox/read-all", tag = "notifications", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = Problem, content_type = "application/problem+json"))
)]
pub async fn read_all(
    platform: web::Data<Platform>,
    user: CurrentUser,
) -> Result<HttpResponse, ApiError> {
    repo::mark_read(&platform.db, user.uuid()?, None).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Delete one notification.
#[utoipa::path(
    delete, path = "/inbox/{id}", tag = "notifications", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
pub async fn delete_one(
    platform: web::Data<Platform>,
    user: CurrentUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    if !repo::delete_from_inbox(&platform.db, user.uuid()?, *id).await? {
        return Err(ApiError::not_found("No such notification."));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// The signed-in user's choices, one per category.
#[utoipa::path(
    get, path = "/preferences", tag = "notifications", security(("bearer" = [])),
    responses((status = 200, body = Vec<Preference>), (status = 401, body = Problem, content_type = "application/problem+json"))
)]
pub async fn list_preferences(
    platform: web::Data<Platform>,
    user: CurrentUser,
) -> Result<HttpResponse, ApiError> {
    let stored = repo::preferences(&platform.db, user.uuid()?).await?;
    let prefs: Vec<Preference> = CATEGORIES
        .iter()
        .map(|c| {
            let (email, in_app) = stored
                .iter()
                .find(|(cat, ..)| cat == c)
                .map(|(_, e, i)| (*e, *i))
                .unwrap_or((true, true));
            Preference {
                category: (*c).into(),
                email: email || *c == SECURITY,
                in_app,
                can_disable_email: *c != SECURITY,
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(prefs))
}

/// Choose whether a category arrives by email and in the inbox. Security email cannot be
/// turned off.
#[utoipa::path(
    put, path = "/preferences/{category}", tag = "notifications", request_body = PreferenceRequest,
    params(("category" = String, Path, description = "security, account, orders or vendors")), security(("bearer" = [])),
    responses((status = 204), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json"))
)]
pub async fn set_preference(
    platform: web::Data<Platform>,
    user: CurrentUser,
    category: web::Path<String>,
    body: web::Json<PreferenceRequest>,
) -> Result<HttpResponse, ApiError> {
    if !CATEGORIES.contains(&category.as_str()) {
        return Err(ApiError::not_found(format!(
            "No category {category}; known: {}.",
            CATEGORIES.join(", ")
        )));
    }
    if category.as_str() == SECURITY && body.email == Some(false) {
        return Err(ApiError::validation(vec![FieldError {
            field: "email".into(),
            code: "security".into(),
            message: "security emails cannot be turned off".into(),
        }]));
    }
    repo::set_preference(
        &platform.db,
        user.uuid()?,
        &category,
        body.email,
        body.in_app,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// One-click unsubscribe (RFC 8058) from the link in a non-security email; no sign-in needed.
#[utoipa::path(
    post, path = "/unsubscribe", tag = "notifications", params(UnsubscribeQuery),
    responses((status = 200, body = StatusResponse), (status = 403, description = "Tampered link", body = Problem, content_type = "application/problem+json"))
)]
pub async fn unsubscribe(
    platform: web::Data<Platform>,
    state: web::Data<NotifyState>,
    q: web::Query<UnsubscribeQuery>,
) -> Result<HttpResponse, ApiError> {
    let expected = unsubscribe_token(&state, q.user, &q.category);
    let genuine = expected.len() == q.token.len()
        && expected
            .bytes()
            .zip(q.token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !genuine || q.category == SECURITY || !CATEGORIES.contains(&q.category.as_str()) {
        return Err(ApiError::forbidden("This unsubscribe link is not valid."));
    }
    repo::set_preference(&platform.db, q.user, &q.category, Some(false), None).await?;
    Ok(HttpResponse::Ok().json(StatusResponse {
        status: "unsubscribed".into(),
    }))
}

/// The delivery log (permission `notifications.messages.read`).
#[utoipa::path(
    get, path = "/messages", tag = "notifications", params(MessageQuery), security(("bearer" = [])),
    responses((status = 200, body = Vec<MessageResponse>), (status = 403, body = Problem, content_type = "application/problem+json"))
)]
pub async fn list_messages(
    platform: web::Data<Platform>,
    user: CurrentUser,
    q: web::Query<MessageQuery>,
) -> Result<HttpResponse, ApiError> {
    user.require("notifications.messages.read")?;
    let (limit, offset) = page(q.limit, q.offset)?;
    let rows = repo::messages(&platform.db, q.status.as_deref(), limit, offset).await?;
    let out: Vec<MessageResponse> = rows
        .into_iter()
        .map(|m| MessageResponse {
            id: m.id,
            event_id: m.event_id,
            template: m.template,
            category: m.category,
            to: m.to_address,
            subject: m.subject,
            status: m.status,
            attempts: m.attempts,
            last_error: m.last_error,
            sent_at: m.sent_at,
            created_at: m.created_at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(out))
}

/// Queue a failed message again (permission `notifications.messages.manage`).
#[utoipa::path(
    post, path = "/messages/{id}/retry", tag = "notifications", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 202, body = StatusResponse), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 409, description = "Not failed", body = Problem, content_type = "application/problem+json"))
)]
pub async fn retry_message(
    platform: web::Data<Platform>,
    user: CurrentUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    user.require("notifications.messages.manage")?;
    if repo::retry_message(&platform.db, *id).await?.is_some() {
        return Ok(HttpResponse::Accepted().json(StatusResponse {
            status: "queued".into(),
        }));
    }
    match repo::message_status(&platform.db, *id).await? {
        None => Err(ApiError::not_found("No such message.")),
        Some(status) => Err(ApiError::conflict(
            "not_failed",
            format!("The message is {status}; only failed messages are retried."),
        )),
    }
}
