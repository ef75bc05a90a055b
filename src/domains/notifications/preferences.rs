//! The signed-in user's choices per category (email, in-app), and the one-click unsubscribe
//! link non-security emails carry (RFC 8058), which needs no sign-in.

use actix_web::{HttpResponse, web};
use utoipa::OpenApi;

use super::error::NotifyError;
use super::model::*;
use super::repo;
use super::state::{NotifyState, unsubscribe_token};
use crate::platform::error::Problem;
use crate::platform::error::responses::{Invalid, NotFound, Unauthorized};
use crate::platform::http::{Endpoint, Routes};
use crate::platform::page::Page;
use crate::platform::{CurrentUser, Platform};

pub fn configure(routes: &mut Routes) {
    routes
        .add(Endpoint::at("/preferences").get(list_preferences))
        .add(Endpoint::at("/preferences/{category}").put(set_preference))
        .add(
            Endpoint::at("/unsubscribe")
                .get(unsubscribe_by_link)
                .post(unsubscribe),
        );
}

/// The signed-in user's choices, one per category.
#[utoipa::path(
    get, path = "/preferences", tag = "notifications", security(("bearer" = [])),
    responses((status = 200, body = Page<Preference>), Unauthorized)
)]
pub async fn list_preferences(
    platform: web::Data<Platform>,
    user: CurrentUser,
) -> Result<HttpResponse, NotifyError> {
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
    // One entry per category: a fixed handful, so always one page.
    Ok(HttpResponse::Ok().json(Page::all(prefs)))
}

/// Choose whether a category arrives by email and in the inbox. Security email cannot be
/// turned off.
#[utoipa::path(
    put, path = "/preferences/{category}", tag = "notifications", request_body = PreferenceRequest,
    params(("category" = String, Path, description = "security, account, orders or vendors")), security(("bearer" = [])),
    responses((status = 204), Unauthorized, NotFound, Invalid)
)]
pub async fn set_preference(
    platform: web::Data<Platform>,
    user: CurrentUser,
    category: web::Path<String>,
    body: web::Json<PreferenceRequest>,
) -> Result<HttpResponse, NotifyError> {
    if !CATEGORIES.contains(&category.as_str()) {
        return Err(NotifyError::UnknownCategory(
            category.into_inner(),
            CATEGORIES.join(", "),
        ));
    }
    if category.as_str() == SECURITY && body.email == Some(false) {
        return Err(NotifyError::invalid_field(
            "email",
            "security",
            "security emails cannot be turned off",
        ));
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
) -> Result<HttpResponse, NotifyError> {
    let expected = unsubscribe_token(&state, q.user, &q.category);
    let genuine = expected.len() == q.token.len()
        && expected
            .bytes()
            .zip(q.token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !genuine || q.category == SECURITY || !CATEGORIES.contains(&q.category.as_str()) {
        return Err(NotifyError::BadUnsubscribeLink);
    }
    repo::set_preference(&platform.db, q.user, &q.category, Some(false), None).await?;
    Ok(HttpResponse::Ok().json(StatusResponse {
        status: "unsubscribed".into(),
    }))
}

/// The same, for the link opened in a browser or by a mail client that follows it (GET).
#[utoipa::path(
    get, path = "/unsubscribe", tag = "notifications", operation_id = "unsubscribe_by_link", params(UnsubscribeQuery),
    responses((status = 200, body = StatusResponse), (status = 403, description = "Tampered link", body = Problem, content_type = "application/problem+json"))
)]
pub async fn unsubscribe_by_link(
    platform: web::Data<Platform>,
    state: web::Data<NotifyState>,
    q: web::Query<UnsubscribeQuery>,
) -> Result<HttpResponse, NotifyError> {
    unsubscribe(platform, state, q).await
}

#[derive(OpenApi)]
#[openapi(paths(list_preferences, set_preference, unsubscribe, unsubscribe_by_link))]
pub struct PreferencesApi;
