//! All SQL of the catalog domain (schema `catalog`).
//!
//! Reads take the viewer and whether they are staff, and put the visibility rule in their
//! WHERE (`status = 'active' OR seller_id = viewer OR staff`), so reading one product is
//! one statement whoever asks. Writes run on the caller's transaction.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::model::{AttributeValue, Image, ProductFilter, ProductId, ProductStatus};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProductRow {
    pub id: ProductId,
    pub seller_id: Uuid,
    pub title: String,
    pub slug: String,
    pub description: String,
    pub status: ProductStatus,
    pub rejection_reason: Option<String>,
    pub category_id: Option<Uuid>,
    pub tags: Vec<String>,
    pub images: Json<Vec<Image>>,
    pub attributes: Json<BTreeMap<String, AttributeValue>>,
    pub seo_title: Option<String>,
    pub seo_description: Option<String>,
    pub featured: bool,
    pub currency: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
}

/// A product found by one of its slugs, and whether that slug is its current one.
#[derive(Debug, sqlx::FromRow)]
pub struct SlugHit {
    #[sqlx(flatten)]
    pub product: ProductRow,
    pub current: bool,
}

/// Who is reading: their account (none when anonymous) and whether they see every product.
#[derive(Debug, Clone, Copy)]
pub struct Viewer {
    pub id: Option<Uuid>,
    pub staff: bool,
}

/// A product's editable fields, as they will be stored.
pub struct ProductFields<'a> {
    pub title: &'a str,
    pub slug: &'a str,
    pub description: &'a str,
    pub category_id: Option<Uuid>,
    pub tags: &'a [String],
    pub images: &'a [Image],
    pub attributes: &'a BTreeMap<String, AttributeValue>,
    pub seo_title: Option<&'a str>,
    pub seo_description: Option<&'a str>,
    pub featured: bool,
}

/// The columns every product read returns.
const PRODUCT: &str =
    "p.id, p.seller_id, p.title, p.slug, p.description, p.status, p.rejection_reason,
    p.category_id, p.tags, p.images, p.attributes, p.seo_title, p.seo_description, p.featured,
    p.currency, p.created_at, p.updated_at, p.published_at";

/// Inserts a product and its slug in one statement. With `generated`, a slug some product
/// holds already gets the `-suffix` instead; an explicit one fails on `product_slugs_pkey`.
pub async fn insert_product(
    conn: &mut PgConnection,
    id: ProductId,
    seller: Uuid,
    currency: &str,
    f: &ProductFields<'_>,
    generated: bool,
    suffix: &str,
) -> Result<ProductRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "WITH pick AS (
             SELECT CASE WHEN $13 AND EXISTS (SELECT 1 FROM catalog.product_slugs WHERE slug = $3)
                         THEN $3 || '-' || $14 ELSE $3 END AS slug
         ), p AS (
             INSERT INTO catalog.products AS p (id, seller_id, title, slug, description, category_id, tags, images,
                                                attributes, seo_title, seo_description, featured, currency)
             SELECT $1, $15, $2, pick.slug, $4, $5, $6, $7, $8, $9, $10, $11, $12 FROM pick
             RETURNING {PRODUCT}
         ), s AS (
             INSERT INTO catalog.product_slugs (slug, product_id) SELECT slug, id FROM p
         )
         SELECT * FROM p"
    ))
    .bind(id)
    .bind(f.title)
    .bind(f.slug)
    .bind(f.description)
    .bind(f.category_id)
    .bind(f.tags)
    .bind(Json(f.images))
    .bind(Json(f.attributes))
    .bind(f.seo_title)
    .bind(f.seo_description)
    .bind(f.featured)
    .bind(currency)
    .bind(generated)
    .bind(suffix)
    .bind(seller)
    .fetch_one(conn)
    .await
}

/// One product, if the viewer may see it.
pub async fn product(
    db: &PgPool,
    id: ProductId,
    viewer: Viewer,
) -> Result<Option<ProductRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PRODUCT} FROM catalog.products p
          WHERE p.id = $1 AND p.deleted_at IS NULL
            AND (p.status = 'active' OR p.seller_id = $2 OR $3)"
    ))
    .bind(id)
    .bind(viewer.id)
    .bind(viewer.staff)
    .fetch_optional(db)
    .await
}

/// The product that has (or had) this slug, if the viewer may see it.
pub async fn product_by_slug(
    db: &PgPool,
    slug: &str,
    viewer: Viewer,
) -> Result<Option<SlugHit>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PRODUCT}, p.slug = s.slug AS current
           FROM catalog.product_slugs s JOIN catalog.products p ON p.id = s.product_id
          WHERE s.slug = $1 AND p.deleted_at IS NULL
            AND (p.status = 'active' OR p.seller_id = $2 OR $3)"
    ))
    .bind(slug)
    .bind(viewer.id)
    .bind(viewer.staff)
    .fetch_optional(db)
    .await
}

/// Locks a product for a change by `actor`: their own, or any with `any` (staff). `None`
/// for a product that does not exist for them.
pub async fn lock_product(
    conn: &mut PgConnection,
    id: ProductId,
    actor: Option<Uuid>,
    any: bool,
) -> Result<Option<ProductRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PRODUCT} FROM catalog.products p
          WHERE p.id = $1 AND p.deleted_at IS NULL AND (p.seller_id = $2 OR $3)
          FOR UPDATE"
    ))
    .bind(id)
    .bind(actor)
    .bind(any)
    .fetch_optional(conn)
    .await
}

/// Stores a locked product's fields and claims its slug in one statement. `None` when the
/// slug belongs to another product (the product is then unchanged). A slug the product had
/// before is simply claimed again.
pub async fn update_product(
    conn: &mut PgConnection,
    id: ProductId,
    f: &ProductFields<'_>,
) -> Result<Option<ProductRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "WITH s AS (
             INSERT INTO catalog.product_slugs AS ps (slug, product_id) VALUES ($3, $1)
             ON CONFLICT (slug) DO UPDATE SET created_at = now()
                WHERE ps.product_id = EXCLUDED.product_id
             RETURNING slug
         )
         UPDATE catalog.products p
            SET title = $2, slug = s.slug, description = $4, category_id = $5, tags = $6, images = $7,
                attributes = $8, seo_title = $9, seo_description = $10, featured = $11, updated_at = now()
           FROM s
          WHERE p.id = $1
         RETURNING {PRODUCT}"
    ))
    .bind(id)
    .bind(f.title)
    .bind(f.slug)
    .bind(f.description)
    .bind(f.category_id)
    .bind(f.tags)
    .bind(Json(f.images))
    .bind(Json(f.attributes))
    .bind(f.seo_title)
    .bind(f.seo_description)
    .bind(f.featured)
    .fetch_optional(conn)
    .await
}

/// Moves a locked product to `status` (the state machine decided it may), with the
/// moderator's reason for a rejection; `published_at` marks the first time it went active.
pub async fn set_status(
    conn: &mut PgConnection,
    id: ProductId,
    status: ProductStatus,
    reason: Option<&str>,
) -> Result<ProductRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE catalog.products p
            SET status = $2, rejection_reason = $3, updated_at = now(),
                published_at = CASE WHEN $2 = 'active' THEN coalesce(published_at, now()) ELSE published_at END
          WHERE p.id = $1
         RETURNING {PRODUCT}"
    ))
    .bind(id)
    .bind(status)
    .bind(reason)
    .fetch_one(conn)
    .await
}

/// Deletes a locked product: its row stays for history (orders and reviews name it), its
/// slugs are released.
pub async fn delete_product(conn: &mut PgConnection, id: ProductId) -> Result<(), sqlx::Error> {
    sqlx::query(
        "WITH slugs AS (DELETE FROM catalog.product_slugs WHERE product_id = $1)
         UPDATE catalog.products SET deleted_at = now(), updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Up to `fetch` products the viewer may see, newest first, after the `(created_at, id)`
/// given, narrowed by `filter`.
pub async fn list_products(
    db: &PgPool,
    viewer: Viewer,
    filter: &ProductFilter,
    after: Option<(DateTime<Utc>, ProductId)>,
    fetch: i64,
) -> Result<Vec<ProductRow>, sqlx::Error> {
    let (created_at, id) = after.unzip();
    sqlx::query_as(&format!(
        "SELECT {PRODUCT} FROM catalog.products p
          WHERE p.deleted_at IS NULL
            AND (p.status = 'active' OR p.seller_id = $1 OR $2)
            AND ($3::uuid IS NULL OR p.seller_id = $3)
            AND ($4::text IS NULL OR p.status = $4)
            AND ($5::boolean IS NULL OR p.featured = $5)
            AND (p.created_at, p.id) < (coalesce($6, 'infinity'), coalesce($7, 'ffffffff-ffff-ffff-ffff-ffffffffffff'))
          ORDER BY p.created_at DESC, p.id DESC
          LIMIT $8"
    ))
    .bind(viewer.id)
    .bind(viewer.staff)
    .bind(filter.seller_id)
    .bind(filter.status)
    .bind(filter.featured)
    .bind(created_at)
    .bind(id)
    .bind(fetch)
    .fetch_all(db)
    .await
}
