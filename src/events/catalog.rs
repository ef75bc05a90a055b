//! The catalog domain's events (source `catalog`), declared here rather than in the domain
//! because cart, orders, vendors and the admin read models consume them, and decode them
//! whether or not `catalog` is compiled into the same binary. Ids are plain UUIDs for the
//! same reason (the domain's id newtypes live behind its feature).
//!
//! Payloads name the product's seller as `user_id`, so the seller's webhooks receive them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// A product as the events describe it: what read models keep (titles, prices, statuses).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProductSnapshot {
    pub product_id: Uuid,
    /// The seller.
    pub user_id: Uuid,
    pub title: String,
    pub slug: String,
    /// `draft`, `pending`, `active`, `rejected` or `archived`.
    pub status: String,
    pub currency: String,
    /// The lowest and highest live variant price, in minor units; absent without variants.
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    pub category_id: Option<Uuid>,
    pub featured: bool,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProductCreated {
    pub product_id: Uuid,
    pub user_id: Uuid,
    pub product: ProductSnapshot,
}

/// Anything about the product changed (fields, variants, prices, stock policy).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProductUpdated {
    pub product_id: Uuid,
    pub user_id: Uuid,
    pub product: ProductSnapshot,
}

/// The seller submitted the product for review (`draft`/`rejected` -> `pending`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProductSubmitted {
    pub product_id: Uuid,
    pub user_id: Uuid,
}

/// The product became `active` (approved, or submitted while auto-approval is on): buyers
/// see it from now on.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProductPublished {
    pub product_id: Uuid,
    pub user_id: Uuid,
    pub product: ProductSnapshot,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProductRejected {
    pub product_id: Uuid,
    pub user_id: Uuid,
    pub reason: String,
}

/// The product left sale without being deleted.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProductArchived {
    pub product_id: Uuid,
    pub user_id: Uuid,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProductDeleted {
    pub product_id: Uuid,
    pub user_id: Uuid,
}

/// A tracked variant's available stock (`on_hand - reserved`) fell to or below its
/// threshold (published once per crossing, by the change that crossed it).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StockLow {
    pub variant_id: Uuid,
    pub product_id: Uuid,
    /// The seller.
    pub user_id: Uuid,
    pub sku: Option<String>,
    pub available: i32,
    pub threshold: i32,
}

/// A review was written. `status` is `published` (it counts in the product's rating at
/// once) or `pending` (held for a moderator by `catalog.reviews_require_approval`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReviewCreated {
    pub review_id: Uuid,
    pub product_id: Uuid,
    /// The product's seller.
    pub user_id: Uuid,
    /// Who wrote it.
    pub author_id: Uuid,
    /// 1 to 5.
    pub rating: i16,
    pub status: String,
    pub verified_purchase: bool,
}

/// A category as the events describe it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CategorySnapshot {
    pub category_id: Uuid,
    pub parent_id: Option<Uuid>,
    pub name: String,
    pub slug: String,
    pub position: i32,
    /// Ancestor ids, root first, then its own.
    pub path: Vec<Uuid>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CategoryCreated {
    pub category_id: Uuid,
    pub category: CategorySnapshot,
}

/// Renamed or reordered (a move is `catalog.category.moved`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CategoryUpdated {
    pub category_id: Uuid,
    pub category: CategorySnapshot,
}

/// The category moved, with its whole subtree, under another parent. Descendants' paths
/// changed with it; `category.path` is its new path.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CategoryMoved {
    pub category_id: Uuid,
    pub old_parent_id: Option<Uuid>,
    pub category: CategorySnapshot,
}

/// The category is gone. Products it held moved to `moved_products_to` (each moved product
/// also gets its own `catalog.product.updated`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CategoryDeleted {
    pub category_id: Uuid,
    pub moved_products_to: Option<Uuid>,
    pub moved_products: i64,
}

crate::declare_events! {
    source = "catalog";
    ProductCreated = "catalog.product.created" by product_id,
    ProductUpdated = "catalog.product.updated" by product_id,
    ProductSubmitted = "catalog.product.submitted" by product_id,
    ProductPublished = "catalog.product.published" by product_id,
    ProductRejected = "catalog.product.rejected" by product_id,
    ProductArchived = "catalog.product.archived" by product_id,
    ProductDeleted = "catalog.product.deleted" by product_id,
    StockLow = "catalog.stock.low" by variant_id,
    ReviewCreated = "catalog.review.created" by review_id,
    CategoryCreated = "catalog.category.created" by category_id,
    CategoryUpdated = "catalog.category.updated" by category_id,
    CategoryMoved = "catalog.category.moved" by category_id,
    CategoryDeleted = "catalog.category.deleted" by category_id,
}
