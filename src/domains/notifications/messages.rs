//! The email delivery log, for staff: list (permission `notifications.messages.read`) and
//! retry a failed message (`notifications.messages.manage`).

use actix_web::{HttpResponse, web};
use utoipa::OpenApi;
use uuid::Uuid;

use super::error::NotifyError;
use super::model::{MessageQuery, MessageResponse, StatusResponse};
use super::repo;
use crate::platform::error::responses::{BadRequest, Conflict, Forbidden, NotFound};
use crate::platform::http::{Endpoint, Routes};
use crate::platform::page::{Page, PageQuery};
use crate::platform::{CurrentUser, Platform};

pub fn configure(routes: &mut Routes) {
    routes
        .add(Endpoint::at("/messages").get(list_messages))
        .add(Endpoint::at("/messages/{id}/retry").post(retry_message));
}

/// The delivery log (permission `notifications.messages.read`).
#[utoipa::path(
    get, path = "/messages", tag = "notifications", params(MessageQuery), security(("bearer" = [])),
    responses((status = 200, body = Page<MessageResponse>), BadRequest, Forbidden)
)]
pub async fn list_messages(
    platform: web::Data<Platform>,
    user: CurrentUser,
    q: web::Query<MessageQuery>,
) -> Result<HttpResponse, NotifyError> {
    user.require("notifications.messages.read")?;
    let page = PageQuery {
        limit: q.limit,
        after: q.after.clone(),
    };
    let limit = page.limit()?;
    let rows = repo::messages(&platform.db, q.status.as_deref(), page.cursor()?, limit + 1).await?;
    let out = Page::from_rows(
        rows,
        limit,
        |m| (m.created_at, m.id),
        |m| MessageResponse {
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
        },
    );
    Ok(HttpResponse::Ok().json(out))
}

/// Queue a failed message again (permission `notifications.messages.manage`).
#[utoipa::path(
    post, path = "/messages/{id}/retry", tag = "notifications", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 202, body = StatusResponse), Forbidden, NotFound, Conflict)
)]
pub async fn retry_message(
    platform: web::Data<Platform>,
    user: CurrentUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, NotifyError> {
    user.require("notifications.messages.manage")?;
    if repo::retry_message(&platform.db, *id).await?.is_some() {
        return Ok(HttpResponse::Accepted().json(StatusResponse {
            status: "queued".into(),
        }));
    }
    match repo::message_status(&platform.db, *id).await? {
        None => Err(NotifyError::MessageNotFound),
        Some(status) => Err(NotifyError::NotFailed(status)),
    }
}

#[derive(OpenApi)]
#[openapi(paths(list_messages, retry_message))]
pub struct MessagesApi;
