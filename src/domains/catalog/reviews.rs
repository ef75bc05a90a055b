//! Reviews and ratings: one review per signed-in user per active product (rated 1 to 5),
//! edited and deleted by its author; moderators (`catalog.reviews.moderate`) approve reviews
//! held by `catalog.reviews_require_approval` and delete any review; the product's seller
//! answers each review once (a new answer replaces it); anyone signed in marks a review
//! helpful once.
//!
//! The product's `rating_count` and `rating_sum` move in the statement that changes a
//! published review (see `repo`), so the average on the product is exact however many
//! reviews race. `verified_purchase` comes from the orders domain through
//! `api::record_purchases`.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use utoipa::OpenApi;

use super::access::{self, REVIEWS_MODERATE};
use super::error::{CatalogError, REVIEW_TAKEN};
use super::model::*;
use super::repo::{self, ReviewRow};
use super::state::CatalogState;
use crate::events::catalog::ReviewCreated;
use crate::platform::error::responses::{
    BadRequest, Conflict, Forbidden, Invalid, NotFound, Unauthorized,
};
use crate::platform::error::violated_constraint;
use crate::platform::events::publish;
use crate::platform::http::{Endpoint, Routes, ValidatedJson};
use crate::platform::identity::MaybeUser;
use crate::platform::page::{Page, PageQuery};
use crate::platform::{CurrentUser, Platform};

#[derive(OpenApi)]
#[openapi(paths(
    list_reviews,
    create_review,
    update_review,
    delete_review,
    approve_review,
    reply_to_review,
    delete_reply,
    vote_helpful,
    withdraw_helpful
))]
pub struct ReviewsApi;

pub fn configure(routes: &mut Routes) {
    routes
        .add(
            Endpoint::at("/products/{product}/reviews")
                .get(list_reviews)
                .post(create_review),
        )
        .add(
            Endpoint::at("/products/{product}/reviews/{review}")
                .patch(update_review)
                .delete(delete_review),
        )
        .add(Endpoint::at("/products/{product}/reviews/{review}/approve").post(approve_review))
        .add(
            Endpoint::at("/products/{product}/reviews/{review}/reply")
                .put(reply_to_review)
                .delete(delete_reply),
        )
        .add(
            Endpoint::at("/products/{product}/reviews/{review}/helpful")
                .put(vote_helpful)
                .delete(withdraw_helpful),
        );
}

fn not_blank(field: &str, value: Option<&str>) -> Result<(), CatalogError> {
    if value.is_some_and(|v| v.trim().is_empty()) {
        return Err(CatalogError::invalid_field(
            field,
            "length",
            "must not be blank",
        ));
    }
    Ok(())
}

/// A product's reviews, newest first: published ones for everyone who may see the product,
/// plus the caller's own pending one; moderators (`catalog.reviews.moderate`) see every
/// review and list the queue with `?status=pending`. One statement.
#[utoipa::path(
    get, path = "/products/{product}/reviews", tag = "catalog", security((), ("bearer" = []), ("api_key" = [])),
    params(("product" = Uuid, Path), PageQuery, ReviewFilter),
    responses((status = 200, body = Page<ReviewResponse>), BadRequest, Unauthorized, NotFound)
)]
pub async fn list_reviews(
    platform: web::Data<Platform>,
    user: MaybeUser,
    path: web::Path<ProductId>,
    page: web::Query<PageQuery>,
    filter: web::Query<ReviewFilter>,
) -> Result<HttpResponse, CatalogError> {
    let (limit, after) = (page.limit()?, page.cursor::<(DateTime<Utc>, ReviewId)>()?);
    let rows = repo::list_reviews(
        &platform.db,
        *path,
        access::viewer(&user),
        user.can(REVIEWS_MODERATE),
        filter.status,
        after,
        page.fetch()?,
    )
    .await?;
    if rows.is_empty() {
        return Err(CatalogError::ProductNotFound);
    }
    let reviews: Vec<ReviewRow> = rows
        .into_iter()
        .filter_map(|r| r.review)
        .map(|j| j.0)
        .collect();
    Ok(HttpResponse::Ok().json(Page::from_rows(
        reviews,
        limit,
        |r| (r.created_at, r.id),
        ReviewResponse::from,
    )))
}

/// Review an active product (any signed-in account but its seller). One review per user
/// per product: a second is 409 `review_exists` (edit the first). While
/// `catalog.reviews_require_approval` is on, the review is `pending` until a moderator
/// approves it. Publishes `catalog.review.created`.
#[utoipa::path(
    post, path = "/products/{product}/reviews", tag = "catalog", request_body = CreateReviewRequest,
    security(("bearer" = []), ("api_key" = [])),
    params(("product" = Uuid, Path)),
    responses((status = 201, body = ReviewResponse), Unauthorized, Forbidden, NotFound, Conflict, Invalid)
)]
pub async fn create_review(
    platform: web::Data<Platform>,
    state: web::Data<CatalogState>,
    user: CurrentUser,
    path: web::Path<ProductId>,
    body: ValidatedJson<CreateReviewRequest>,
) -> Result<HttpResponse, CatalogError> {
    let author = user.uuid()?;
    let b = body.into_inner();
    not_blank("title", Some(&b.title))?;
    let status = if *state.reviews_require_approval.get() {
        ReviewStatus::Pending
    } else {
        ReviewStatus::Published
    };
    let mut tx = platform.db.begin().await?;
    let created = repo::insert_review(
        &mut tx,
        *path,
        author,
        b.rating,
        b.title.trim(),
        b.body.trim(),
        status,
    )
    .await
    .map_err(|e| match violated_constraint(&e) {
        Some(REVIEW_TAKEN) => CatalogError::ReviewExists,
        _ => e.into(),
    })?;
    let Some(c) = created else {
        return Err(match repo::seller_of(&mut tx, *path).await? {
            Some(seller) if seller == author => CatalogError::OwnProductReview,
            _ => CatalogError::ProductNotFound,
        });
    };
    let r = c.review;
    publish(
        &mut tx,
        &ReviewCreated {
            review_id: r.id.0,
            product_id: r.product_id.0,
            user_id: c.seller_id,
            author_id: r.user_id,
            rating: r.rating,
            status: r.status.as_str().into(),
            verified_purchase: r.verified_purchase,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(ReviewResponse::from(r)))
}

/// Edit one's own review (anyone else's is 404). The product's rating follows a changed
/// rating at once; while `catalog.reviews_require_approval` is on, the edit waits for a
/// moderator again.
#[utoipa::path(
    patch, path = "/products/{product}/reviews/{review}", tag = "catalog", request_body = UpdateReviewRequest,
    security(("bearer" = []), ("api_key" = [])),
    params(("product" = Uuid, Path), ("review" = Uuid, Path)),
    responses((status = 200, body = ReviewResponse), Unauthorized, NotFound, Invalid)
)]
pub async fn update_review(
    platform: web::Data<Platform>,
    state: web::Data<CatalogState>,
    user: CurrentUser,
    path: web::Path<(ProductId, ReviewId)>,
    body: ValidatedJson<UpdateReviewRequest>,
) -> Result<HttpResponse, CatalogError> {
    let (product, review) = path.into_inner();
    let author = user.uuid()?;
    let u = body.into_inner();
    not_blank("title", u.title.as_deref())?;
    let hold = *state.reviews_require_approval.get();
    let mut conn = platform.db.acquire().await?;
    let row = repo::update_review(
        &mut conn,
        product,
        review,
        author,
        (
            u.rating,
            u.title.as_deref().map(str::trim),
            u.body.as_deref().map(str::trim),
        ),
        hold,
    )
    .await?
    .ok_or(CatalogError::ReviewNotFound)?;
    Ok(HttpResponse::Ok().json(ReviewResponse::from(row)))
}

/// Delete a review: one's own, or any with `catalog.reviews.moderate` (recorded in the
/// audit trail). It leaves the product's rating at once.
#[utoipa::path(
    delete, path = "/products/{product}/reviews/{review}", tag = "catalog",
    security(("bearer" = []), ("api_key" = [])),
    params(("product" = Uuid, Path), ("review" = Uuid, Path)),
    responses((status = 204), Unauthorized, NotFound)
)]
pub async fn delete_review(
    platform: web::Data<Platform>,
    user: CurrentUser,
    path: web::Path<(ProductId, ReviewId)>,
) -> Result<HttpResponse, CatalogError> {
    let (product, review) = path.into_inner();
    let actor = access::actor_id(&user);
    let mut tx = platform.db.begin().await?;
    let row = repo::delete_review(&mut tx, product, review, actor, user.can(REVIEWS_MODERATE))
        .await?
        .ok_or(CatalogError::ReviewNotFound)?;
    if actor != Some(row.user_id) {
        audit(
            &mut tx,
            &user,
            "catalog.review.deleted",
            &row,
            row.status,
            None,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Publish a review held for moderation (`catalog.reviews.moderate`): it becomes public and
/// counts in the product's rating. Approving a published review changes nothing.
#[utoipa::path(
    post, path = "/products/{product}/reviews/{review}/approve", tag = "catalog",
    security(("bearer" = []), ("api_key" = [])),
    params(("product" = Uuid, Path), ("review" = Uuid, Path)),
    responses((status = 200, body = ReviewResponse), Unauthorized, Forbidden, NotFound)
)]
pub async fn approve_review(
    platform: web::Data<Platform>,
    user: CurrentUser,
    path: web::Path<(ProductId, ReviewId)>,
) -> Result<HttpResponse, CatalogError> {
    user.require(REVIEWS_MODERATE)?;
    let (product, review) = path.into_inner();
    let mut tx = platform.db.begin().await?;
    let row = match repo::approve_review(&mut tx, product, review).await? {
        Some(row) => {
            audit(
                &mut tx,
                &user,
                "catalog.review.approved",
                &row,
                ReviewStatus::Pending,
                Some(row.status),
            )
            .await?;
            row
        }
        None => repo::review(&mut tx, product, review)
            .await?
            .ok_or(CatalogError::ReviewNotFound)?,
    };
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(ReviewResponse::from(row)))
}

/// Answer a published review of one's own product (its seller only; anyone else gets 404).
/// A review has one answer: a new one replaces it.
#[utoipa::path(
    put, path = "/products/{product}/reviews/{review}/reply", tag = "catalog", request_body = ReplyRequest,
    security(("bearer" = []), ("api_key" = [])),
    params(("product" = Uuid, Path), ("review" = Uuid, Path)),
    responses((status = 200, body = ReviewResponse), Unauthorized, NotFound, Invalid)
)]
pub async fn reply_to_review(
    platform: web::Data<Platform>,
    user: CurrentUser,
    path: web::Path<(ProductId, ReviewId)>,
    body: ValidatedJson<ReplyRequest>,
) -> Result<HttpResponse, CatalogError> {
    let (product, review) = path.into_inner();
    let b = body.into_inner();
    not_blank("body", Some(&b.body))?;
    let mut conn = platform.db.acquire().await?;
    let row = repo::set_reply(
        &mut conn,
        product,
        review,
        access::actor_id(&user),
        Some(b.body.trim()),
    )
    .await?
    .ok_or(CatalogError::ReviewNotFound)?;
    Ok(HttpResponse::Ok().json(ReviewResponse::from(row)))
}

/// Remove the seller's answer (the product's seller only).
#[utoipa::path(
    delete, path = "/products/{product}/reviews/{review}/reply", tag = "catalog",
    security(("bearer" = []), ("api_key" = [])),
    params(("product" = Uuid, Path), ("review" = Uuid, Path)),
    responses((status = 200, body = ReviewResponse), Unauthorized, NotFound)
)]
pub async fn delete_reply(
    platform: web::Data<Platform>,
    user: CurrentUser,
    path: web::Path<(ProductId, ReviewId)>,
) -> Result<HttpResponse, CatalogError> {
    let (product, review) = path.into_inner();
    let mut conn = platform.db.acquire().await?;
    let row = repo::set_reply(&mut conn, product, review, access::actor_id(&user), None)
        .await?
        .ok_or(CatalogError::ReviewNotFound)?;
    Ok(HttpResponse::Ok().json(ReviewResponse::from(row)))
}

/// Mark a published review helpful. Once per user: repeating it changes nothing, and the
/// count stays exact under concurrent votes. Not on one's own review (403).
#[utoipa::path(
    put, path = "/products/{product}/reviews/{review}/helpful", tag = "catalog",
    security(("bearer" = []), ("api_key" = [])),
    params(("product" = Uuid, Path), ("review" = Uuid, Path)),
    responses((status = 200, body = HelpfulResponse), Unauthorized, Forbidden, NotFound)
)]
pub async fn vote_helpful(
    platform: web::Data<Platform>,
    user: CurrentUser,
    path: web::Path<(ProductId, ReviewId)>,
) -> Result<HttpResponse, CatalogError> {
    vote(&platform, &user, path.into_inner(), true).await
}

/// Withdraw one's helpful vote (nothing to withdraw changes nothing).
#[utoipa::path(
    delete, path = "/products/{product}/reviews/{review}/helpful", tag = "catalog",
    security(("bearer" = []), ("api_key" = [])),
    params(("product" = Uuid, Path), ("review" = Uuid, Path)),
    responses((status = 200, body = HelpfulResponse), Unauthorized, NotFound)
)]
pub async fn withdraw_helpful(
    platform: web::Data<Platform>,
    user: CurrentUser,
    path: web::Path<(ProductId, ReviewId)>,
) -> Result<HttpResponse, CatalogError> {
    vote(&platform, &user, path.into_inner(), false).await
}

async fn vote(
    platform: &Platform,
    user: &CurrentUser,
    (product, review): (ProductId, ReviewId),
    up: bool,
) -> Result<HttpResponse, CatalogError> {
    let voter = user.uuid()?;
    let mut conn = platform.db.acquire().await?;
    let votes = repo::vote(&mut conn, product, review, voter, up)
        .await?
        .ok_or(CatalogError::ReviewNotFound)?;
    if up && votes.author_id == voter {
        return Err(CatalogError::OwnReviewVote);
    }
    Ok(HttpResponse::Ok().json(HelpfulResponse {
        helpful_count: votes.helpful_count,
        voted: votes.voted,
    }))
}

/// Records a moderator's action on someone's review in the audit trail: the review, and
/// its status before and after (`None` once deleted).
async fn audit(
    conn: &mut sqlx::PgConnection,
    user: &CurrentUser,
    action: &str,
    review: &ReviewRow,
    before: ReviewStatus,
    after: Option<ReviewStatus>,
) -> Result<(), sqlx::Error> {
    let was = serde_json::json!({
        "product_id": review.product_id, "user_id": review.user_id, "rating": review.rating,
        "title": review.title, "status": before,
    });
    let now = after.map(|status| serde_json::json!({ "status": status }));
    crate::platform::audit::record(
        conn,
        &crate::platform::audit::AuditEntry {
            actor: &user.actor(),
            action,
            object_type: "catalog.review",
            object_id: &review.id.to_string(),
            before: Some(&was),
            after: now.as_ref(),
        },
    )
    .await
}
