//! Staff routes over the events the relay gave up on (dead letters): list them, and replay
//! one once its subscriber is fixed. Kernel routes, so they exist whichever domains are
//! enabled; they need `platform.events.manage` (held by the `admin` role).

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::platform::error::ApiError;
use crate::platform::error::responses::{BadRequest, Forbidden, NotFound, Unauthorized};
use crate::platform::events::{self, DeadLetter};
use crate::platform::page::{Page, PageQuery};
use crate::platform::{CurrentUser, Platform};

/// The permission staff need for these routes.
pub const MANAGE: &str = "platform.events.manage";

#[derive(Debug, Serialize, ToSchema)]
pub struct Replayed {
    pub id: Uuid,
    /// Always `queued`: the relay dispatches it again shortly.
    pub status: &'static str,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/v1/events/dead-letters").route(web::get().to(list)))
        .service(
            web::resource("/api/v1/events/dead-letters/{id}/replay").route(web::post().to(replay)),
        );
}

/// Events a subscriber kept failing on, oldest first.
///
/// After `events.max_attempts` failed dispatches an event stops being retried and waits
/// here, counted by `/health` and `basalt_outbox_dead_letters`, until it is replayed.
#[utoipa::path(
    get, path = "/api/v1/events/dead-letters", tag = "system", params(PageQuery),
    security(("bearer" = [])),
    responses((status = 200, body = Page<DeadLetter>), BadRequest, Unauthorized, Forbidden)
)]
pub async fn list(
    platform: web::Data<Platform>,
    user: CurrentUser,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    user.require(MANAGE)?;
    let limit = q.limit()?;
    let rows = events::dead_letters(&platform.db, q.cursor()?, limit + 1).await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(rows, limit, |d| d.id, |d| d)))
}

/// Dispatch a dead letter again, with a fresh budget of attempts.
///
/// Subscribers that handled the event before are not run again; only the ones that failed.
#[utoipa::path(
    post, path = "/api/v1/events/dead-letters/{id}/replay", tag = "system",
    params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 202, body = Replayed), Unauthorized, Forbidden, NotFound)
)]
pub async fn replay(
    platform: web::Data<Platform>,
    user: CurrentUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    user.require(MANAGE)?;
    let id = id.into_inner();
    if !events::replay_dead_letter(&platform.db, id).await? {
        return Err(ApiError::not_found("No dead letter with this id."));
    }
    Ok(HttpResponse::Accepted().json(Replayed {
        id,
        status: "queued",
    }))
}
