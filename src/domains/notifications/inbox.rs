//! The signed-in user's in-app notifications: list (unread first), mark read, delete.

use actix_web::{HttpResponse, web};
use utoipa::OpenApi;
use uuid::Uuid;

use super::error::NotifyError;
use super::model::{InboxItem, InboxPage};
use super::repo;
use crate::platform::error::responses::{BadRequest, NotFound, Unauthorized};
use crate::platform::http::{Endpoint, Routes};
use crate::platform::page::{Page, PageQuery};
use crate::platform::{CurrentUser, Platform};

pub fn configure(routes: &mut Routes) {
    routes
        .add(Endpoint::at("/inbox").get(list_inbox))
        .add(Endpoint::at("/inbox/read-all").post(read_all))
        .add(Endpoint::at("/inbox/{id}/read").post(read_one))
        .add(Endpoint::at("/inbox/{id}").delete(delete_one));
}

/// The signed-in user's notifications, unread first.
#[utoipa::path(
    get, path = "/inbox", tag = "notifications", params(PageQuery), security(("bearer" = [])),
    responses((status = 200, body = InboxPage), BadRequest, Unauthorized)
)]
pub async fn list_inbox(
    platform: web::Data<Platform>,
    user: CurrentUser,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, NotifyError> {
    let limit = q.limit()?;
    let (rows, unread) = repo::inbox(&platform.db, user.uuid()?, q.cursor()?, limit + 1).await?;
    // Unread first, then newest: the cursor is the whole sort key.
    let page = Page::from_rows(
        rows,
        limit,
        |r| (r.read_at.is_some(), r.created_at, r.id),
        |r| InboxItem {
            id: r.id,
            category: r.category,
            title: r.title,
            body: r.body,
            link: r.link,
            read: r.read_at.is_some(),
            created_at: r.created_at,
        },
    );
    Ok(HttpResponse::Ok().json(InboxPage { page, unread }))
}

/// Mark one notification read.
#[utoipa::path(
    post, path = "/inbox/{id}/read", tag = "notifications", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 204), Unauthorized, NotFound)
)]
pub async fn read_one(
    platform: web::Data<Platform>,
    user: CurrentUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, NotifyError> {
    if repo::mark_read(&platform.db, user.uuid()?, Some(*id)).await? == 0 {
        return Err(NotifyError::NotificationNotFound);
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Mark every notification read.
#[utoipa::path(
    post, path = "/inbox/read-all", tag = "notifications", security(("bearer" = [])),
    responses((status = 204), Unauthorized)
)]
pub async fn read_all(
    platform: web::Data<Platform>,
    user: CurrentUser,
) -> Result<HttpResponse, NotifyError> {
    repo::mark_read(&platform.db, user.uuid()?, None).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Delete one notification.
#[utoipa::path(
    delete, path = "/inbox/{id}", tag = "notifications", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 204), Unauthorized, NotFound)
)]
pub async fn delete_one(
    platform: web::Data<Platform>,
    user: CurrentUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, NotifyError> {
    if !repo::delete_from_inbox(&platform.db, user.uuid()?, *id).await? {
        return Err(NotifyError::NotificationNotFound);
    }
    Ok(HttpResponse::NoContent().finish())
}

#[derive(OpenApi)]
#[openapi(
    paths(list_inbox, read_one, read_all, delete_one),
    tags((name = "notifications", description = "Inbox, preferences, unsubscribe and the email delivery log"))
)]
pub struct InboxApi;
