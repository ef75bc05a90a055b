//! The catalog API's ids, the product state machine, request and response bodies, and how
//! rows become responses.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use validator::Validate;

use super::error::CatalogError;
use super::repo::{
    CategoryRow, MovementRow, ProductRow, ReviewRow, StockRow, VariantFields, VariantRow,
};
use crate::events::catalog::ProductSnapshot;
use crate::platform::error::FieldError;

crate::id_type!(
    /// A product.
    ProductId
);

crate::id_type!(
    /// One variant of a product (a size, a colour): what carts hold and stock counts.
    VariantId
);

crate::id_type!(
    /// A hold on a variant's stock.
    ReservationId
);

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"delta": 24, "reason": "Received a delivery"}))]
pub struct AdjustStockRequest {
    /// Added to `on_hand` (negative to remove); it may not go below zero.
    #[validate(range(min = -1_000_000_000, max = 1_000_000_000))]
    pub delta: i32,
    /// Why, for the stock ledger.
    #[validate(length(min = 1, max = 500))]
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"holder": "cart:0193a5f6-7d2c-7b9e-9f10-3c4d5e6f7a8b", "quantity": 2, "ttl_secs": 900}))]
pub struct ReserveRequest {
    /// Who holds it (`cart:<id>`, `order:<id>`): 1 to 200 characters.
    pub holder: String,
    /// 1 to 1,000,000.
    pub quantity: i32,
    /// How long it holds, 1 s to a week; default 15 minutes.
    #[serde(default = "default_ttl")]
    pub ttl_secs: i64,
}

fn default_ttl() -> i64 {
    900
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InventoryResponse {
    pub variant_id: VariantId,
    pub product_id: ProductId,
    pub sku: Option<String>,
    pub on_hand: i32,
    pub reserved: i32,
    /// `on_hand - reserved`.
    pub available: i32,
    pub track_inventory: bool,
    pub allow_backorder: bool,
    /// `catalog.stock.low` is published when `available` falls to this or below.
    pub low_stock_threshold: i32,
}

impl From<StockRow> for InventoryResponse {
    fn from(s: StockRow) -> Self {
        Self {
            variant_id: s.variant_id,
            product_id: s.product_id,
            sku: s.sku,
            on_hand: s.on_hand,
            reserved: s.reserved,
            available: s.on_hand.saturating_sub(s.reserved),
            track_inventory: s.track_inventory,
            allow_backorder: s.allow_backorder,
            low_stock_threshold: s.low_stock_threshold,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReservationResponse {
    pub id: ReservationId,
    pub variant_id: VariantId,
    pub holder: String,
    pub quantity: i32,
    pub expires_at: DateTime<Utc>,
    /// The variant's counters after this call.
    pub on_hand: i32,
    pub reserved: i32,
}

impl From<super::api::Reservation> for ReservationResponse {
    fn from(r: super::api::Reservation) -> Self {
        Self {
            id: ReservationId(r.id),
            variant_id: VariantId(r.variant_id),
            holder: r.holder,
            quantity: r.quantity,
            expires_at: r.expires_at,
            on_hand: r.on_hand,
            reserved: r.reserved,
        }
    }
}

/// One change of a variant's stock.
#[derive(Debug, Serialize, ToSchema)]
pub struct MovementResponse {
    pub id: i64,
    /// `adjusted`, `reserved`, `released`, `expired` or `committed`.
    pub kind: String,
    pub on_hand_delta: i32,
    pub reserved_delta: i32,
    pub reason: Option<String>,
    pub reservation_id: Option<Uuid>,
    /// `user:<id>`, `api_key:<id>` or `system`.
    pub actor: String,
    pub created_at: DateTime<Utc>,
}

impl From<MovementRow> for MovementResponse {
    fn from(m: MovementRow) -> Self {
        Self {
            id: m.id,
            kind: m.kind,
            on_hand_delta: m.on_hand_delta,
            reserved_delta: m.reserved_delta,
            reason: m.reason,
            reservation_id: m.reservation_id,
            actor: m.actor,
            created_at: m.created_at,
        }
    }
}

/// The largest price the API takes, in minor units: 10^15 (ten trillion dollars, a
/// quadrillion yen), so that quantities times prices, summed by carts and orders, stay far
/// inside `i64`.
pub const MAX_PRICE: i64 = 1_000_000_000_000_000;

/// A price in minor units of the product's currency (1999 is 19.99 USD, 1999 JPY, 1.999
/// KWD). Read as any JSON number so that a negative, fractional or oversized one is a 422
/// naming the field, not a parse error.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = i64, example = 1999)]
pub struct Amount(serde_json::Number);

impl Amount {
    /// The amount, or why it is refused.
    pub fn minor_units(&self) -> Result<i64, &'static str> {
        match (self.0.as_i64(), self.0.as_u64(), self.0.as_f64()) {
            (Some(n), _, _) if n < 0 => Err("must not be negative"),
            (Some(n), _, _) if n <= MAX_PRICE => Ok(n),
            (Some(_), _, _) | (None, Some(_), _) => Err("is larger than 10^15 minor units"),
            (None, None, Some(f)) if f.fract() != 0.0 => {
                Err("must be a whole number of minor units (cents, not dollars)")
            }
            (None, None, Some(f)) if f < 0.0 => Err("must not be negative"),
            _ => Err("is larger than 10^15 minor units"),
        }
    }
}

/// An option of a product and the values its variants choose from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Size", "values": ["S", "M", "L"]}))]
pub struct ProductOption {
    pub name: String,
    pub values: Vec<String>,
}

pub const MAX_OPTIONS: usize = 5;
pub const MAX_OPTION_VALUES: usize = 100;

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "sku": "BEANIE-GRY-M", "options": {"Size": "M", "Colour": "Grey"}, "price": 2499,
    "compare_at_price": 2999, "weight_grams": 120, "on_hand": 40
}))]
pub struct CreateVariantRequest {
    #[validate(length(min = 1, max = 64))]
    pub sku: Option<String>,
    /// Made from the option values when absent ("M / Grey").
    #[validate(length(min = 1, max = 200))]
    pub title: Option<String>,
    /// One value of each of the product's options; `{}` for a product without options.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    pub price: Amount,
    pub compare_at_price: Option<Amount>,
    #[validate(range(min = 0, max = 1_000_000_000))]
    pub weight_grams: Option<i32>,
    /// Whether stock is counted (default true); untracked variants never run out.
    #[serde(default = "yes")]
    pub track_inventory: bool,
    /// Whether it sells past zero (default false).
    #[serde(default)]
    pub allow_backorder: bool,
    /// Stock to start with (default 0).
    #[serde(default)]
    #[validate(range(min = 0, max = 1_000_000_000))]
    pub on_hand: i32,
}

fn yes() -> bool {
    true
}

/// Fields to change; absent ones stay. Stock changes through adjustments, not here.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateVariantRequest {
    #[validate(length(min = 1, max = 64))]
    pub sku: Option<String>,
    #[validate(length(min = 1, max = 200))]
    pub title: Option<String>,
    pub options: Option<BTreeMap<String, String>>,
    pub price: Option<Amount>,
    pub compare_at_price: Option<Amount>,
    #[validate(range(min = 0, max = 1_000_000_000))]
    pub weight_grams: Option<i32>,
    pub track_inventory: Option<bool>,
    pub allow_backorder: Option<bool>,
}

/// A variant's stock, shown to its seller and staff.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Inventory {
    pub on_hand: i32,
    pub reserved: i32,
    /// `on_hand - reserved`: what may still be reserved.
    pub available: i32,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VariantResponse {
    pub id: VariantId,
    pub product_id: ProductId,
    pub sku: Option<String>,
    pub title: String,
    pub options: BTreeMap<String, String>,
    /// Minor units of the product's currency.
    pub price: i64,
    pub compare_at_price: Option<i64>,
    pub weight_grams: Option<i32>,
    pub track_inventory: bool,
    pub allow_backorder: bool,
    /// Whether one more can be reserved now.
    pub in_stock: bool,
    /// Counts, for the seller and staff only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inventory: Option<Inventory>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl VariantResponse {
    /// The variant as `insider` (its seller, or staff) or anyone else sees it.
    pub fn of(v: VariantRow, insider: bool) -> Self {
        let available = v.on_hand.saturating_sub(v.reserved);
        Self {
            in_stock: !v.track_inventory || v.allow_backorder || available > 0,
            inventory: insider.then_some(Inventory {
                on_hand: v.on_hand,
                reserved: v.reserved,
                available,
            }),
            id: v.id,
            product_id: v.product_id,
            sku: v.sku,
            title: v.title,
            options: v.options,
            price: v.price,
            compare_at_price: v.compare_at_price,
            weight_grams: v.weight_grams,
            track_inventory: v.track_inventory,
            allow_backorder: v.allow_backorder,
            created_at: v.created_at,
            updated_at: v.updated_at,
        }
    }
}

/// The lowest and highest live variant price, in minor units.
#[derive(Debug, Serialize, ToSchema)]
pub struct PriceRange {
    pub min: i64,
    pub max: i64,
}

/// Where a product is in its life. Only [`ProductStatus::after`] moves it, so an illegal
/// move is a 409 naming the state it is in, whoever asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum ProductStatus {
    /// Being written by its seller; only the seller and staff see it.
    Draft,
    /// Submitted, waiting for a moderator.
    Pending,
    /// On sale: everyone sees it.
    Active,
    /// Refused by a moderator (`rejection_reason` says why); the seller may fix and resubmit.
    Rejected,
    /// Off sale, kept for its history; restoring makes it a draft again.
    Archived,
}

/// What may be done to a product's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Submit,
    Approve,
    Reject,
    Archive,
    Restore,
}

impl Transition {
    fn verb(self) -> &'static str {
        match self {
            Transition::Submit => "submitted",
            Transition::Approve => "approved",
            Transition::Reject => "rejected",
            Transition::Archive => "archived",
            Transition::Restore => "restored",
        }
    }
}

impl ProductStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ProductStatus::Draft => "draft",
            ProductStatus::Pending => "pending",
            ProductStatus::Active => "active",
            ProductStatus::Rejected => "rejected",
            ProductStatus::Archived => "archived",
        }
    }

    /// The status `t` leads to from this one: `draft`/`rejected` are submitted (straight to
    /// `active` when `auto_approve` is on), `pending` is approved or rejected, anything but
    /// `archived` is archived, and `archived` is restored to `draft`.
    pub fn after(self, t: Transition, auto_approve: bool) -> Result<ProductStatus, CatalogError> {
        use ProductStatus::*;
        let next = match (self, t) {
            (Draft | Rejected, Transition::Submit) if auto_approve => Active,
            (Draft | Rejected, Transition::Submit) => Pending,
            (Pending, Transition::Approve) => Active,
            (Pending, Transition::Reject) => Rejected,
            (Draft | Pending | Active | Rejected, Transition::Archive) => Archived,
            (Archived, Transition::Restore) => Draft,
            (from, t) => {
                return Err(CatalogError::InvalidTransition {
                    from: from.as_str(),
                    action: t.verb(),
                });
            }
        };
        Ok(next)
    }
}

/// A typed attribute value: text, a whole number or a yes/no. (Decimals go as text: the
/// API carries no floating-point numbers.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum AttributeValue {
    Bool(bool),
    Integer(i64),
    Text(String),
}

/// A product image: a file of the storage domain (`file_id`) or an `http(s)` URL.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Image {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt: Option<String>,
}

pub const MAX_TAGS: usize = 20;
pub const MAX_IMAGES: usize = 20;
pub const MAX_ATTRIBUTES: usize = 50;
/// Generated slugs are cut here, leaving room for a `-xxxxxx` suffix within the 120 allowed.
const SLUG_BASE_LEN: usize = 100;

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "title": "Merino wool beanie", "currency": "EUR",
    "description": "Soft, warm, **machine washable**.", "tags": ["winter", "wool"],
    "attributes": {"material": "merino", "gsm": 250, "vegan": false},
    "images": [{"url": "https://cdn.example.com/beanie.jpg", "alt": "A grey beanie"}]
}))]
pub struct CreateProductRequest {
    #[validate(length(min = 1, max = 200))]
    pub title: String,
    /// Lower-case letters, digits and single dashes; generated from the title when absent.
    pub slug: Option<String>,
    /// Markdown.
    #[serde(default)]
    #[validate(length(max = 20000))]
    pub description: String,
    /// ISO 4217 code (`USD`, `JPY`, `KWD`); every variant's price is in it, in minor units.
    pub currency: String,
    pub category_id: Option<Uuid>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub images: Vec<Image>,
    #[serde(default)]
    pub attributes: BTreeMap<String, AttributeValue>,
    #[validate(length(max = 200))]
    pub seo_title: Option<String>,
    #[validate(length(max = 500))]
    pub seo_description: Option<String>,
    /// Staff only (`catalog.products.manage`).
    #[serde(default)]
    pub featured: bool,
    /// Options its variants choose from (at most 5, each with at most 100 values); set
    /// when the product is created.
    #[serde(default)]
    pub options: Vec<ProductOption>,
    /// The variants, one per combination of option values in use. Without options and
    /// without variants the product gets one default variant priced `price`.
    #[serde(default)]
    #[validate(nested)]
    pub variants: Vec<CreateVariantRequest>,
    /// The default variant's price (minor units; 0 when absent), for a product without
    /// options.
    pub price: Option<Amount>,
    /// The default variant's SKU.
    #[validate(length(min = 1, max = 64))]
    pub sku: Option<String>,
}

/// Fields to change; absent ones stay as they are, and `null` clears a field that may be
/// empty (`description`, `category_id`, `seo_title`, `seo_description`). `status` changes
/// through the submit/approve/reject/archive/restore actions, `currency` never (prices are
/// in it), options through `PATCH /products/{id}/options`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProductRequest {
    #[serde(default, deserialize_with = "not_null")]
    #[schema(nullable = false)]
    #[validate(length(min = 1, max = 200))]
    pub title: Option<String>,
    /// The old slug keeps answering, with a redirect to the new one.
    #[serde(default, deserialize_with = "not_null")]
    #[schema(nullable = false)]
    pub slug: Option<String>,
    /// `null` empties it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, nullable)]
    #[validate(length(max = 20000))]
    pub description: Option<Option<String>>,
    /// `null` takes the product out of its category.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>, nullable)]
    pub category_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "not_null")]
    #[schema(nullable = false)]
    pub tags: Option<Vec<String>>,
    #[serde(default, deserialize_with = "not_null")]
    #[schema(nullable = false)]
    pub images: Option<Vec<Image>>,
    #[serde(default, deserialize_with = "not_null")]
    #[schema(nullable = false)]
    pub attributes: Option<BTreeMap<String, AttributeValue>>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, nullable)]
    #[validate(length(max = 200))]
    pub seo_title: Option<Option<String>>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, nullable)]
    #[validate(length(max = 500))]
    pub seo_description: Option<Option<String>>,
    /// Staff only (`catalog.products.manage`).
    #[serde(default, deserialize_with = "not_null")]
    #[schema(nullable = false)]
    pub featured: Option<bool>,
}

/// For a PATCH field that cannot be cleared: absent stays `None`, and `null` is refused
/// rather than read as absent, so a client that meant to clear it is told (a review found
/// `{"title": null}` answered 200, changing nothing).
fn not_null<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d)?.map(Some).ok_or_else(|| {
        serde::de::Error::custom("may not be null (it cannot be cleared): leave it out to keep it")
    })
}

/// For a PATCH field that `null` clears: absent stays `None` (with `#[serde(default)]`),
/// `null` is `Some(None)`, a value `Some(Some(v))`. (Plain `Option` reads `null` as absent.)
fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A change to one of a product's options: rename it, add values, rename values. Variants
/// that use a renamed value follow it (and their generated titles with it).
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"option": "Size", "add_values": ["XL"], "rename_values": {"M": "Medium"}}))]
pub struct UpdateOptionRequest {
    /// The option's current name.
    pub option: String,
    /// Its new name.
    pub name: Option<String>,
    /// Values to add (at the end).
    #[serde(default)]
    pub add_values: Vec<String>,
    /// Old value → new value.
    #[serde(default)]
    pub rename_values: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "The photos show another product."}))]
pub struct RejectRequest {
    #[validate(length(min = 1, max = 2000))]
    pub reason: String,
}

/// Search and filters of `GET /products`. Everyone sees `active` products; sellers see
/// their own in any status, staff every product. Every filter narrows (they combine with
/// AND); `search.rs` checks them.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProductFilter {
    /// Words to find in titles, SKUs, tags and descriptions (web-search syntax: `"a
    /// phrase"`, `-without`, `or`); when they find nothing, words of four letters or more
    /// match titles with a typo instead ("iphnoe" finds "iPhone"). Up to 200 characters.
    pub q: Option<String>,
    /// One seller's products.
    pub seller_id: Option<Uuid>,
    /// One status (`?status=pending` is the moderation queue for staff).
    pub status: Option<ProductStatus>,
    pub featured: Option<bool>,
    /// A category by id or slug: its products and those of all its descendants.
    pub category: Option<String>,
    /// Lowest variant price at least this (minor units of the product's currency).
    #[param(minimum = 0)]
    pub min_price: Option<i64>,
    /// Lowest variant price at most this (minor units).
    #[param(minimum = 0)]
    pub max_price: Option<i64>,
    /// Comma-separated tags, all of which a product has (`tags=red,cotton`).
    pub tags: Option<String>,
    /// Comma-separated `key:value` attributes, all of which a product has
    /// (`attributes=colour:red,waterproof:true,size:42`); a value matches text, a whole
    /// number or a yes/no alike.
    pub attributes: Option<String>,
    /// Average rating at least this many stars (1 to 5).
    #[param(minimum = 1, maximum = 5)]
    pub rating_min: Option<i64>,
    /// Only products with a variant that can be bought now (stock available, untracked, or
    /// on backorder), or with none.
    pub in_stock: Option<bool>,
    /// `relevance` (the default with `q`, only with it), `newest` (the default without),
    /// `price_asc`, `price_desc`, `rating`, `popularity`.
    pub sort: Option<ProductSort>,
    /// Facets (counts per category, price bucket, tag and attribute value) with the first
    /// page; `false` leaves them out. Later pages never carry them.
    pub facets: Option<bool>,
}

/// The orders `GET /products` can list in; each pages with its own keyset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProductSort {
    Relevance,
    Newest,
    PriceAsc,
    PriceDesc,
    Rating,
    Popularity,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductResponse {
    pub id: ProductId,
    pub seller_id: Uuid,
    pub title: String,
    pub slug: String,
    pub description: String,
    pub status: ProductStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejection_reason: Option<String>,
    pub category_id: Option<Uuid>,
    pub tags: Vec<String>,
    pub images: Vec<Image>,
    pub attributes: BTreeMap<String, AttributeValue>,
    pub seo_title: Option<String>,
    pub seo_description: Option<String>,
    pub featured: bool,
    /// ISO 4217 code of every price of the product.
    pub currency: String,
    /// Digits after the decimal point in `currency` (JPY 0, USD 2, KWD 3): a price of 1999
    /// in USD is 19.99.
    pub currency_exponent: u16,
    pub options: Vec<ProductOption>,
    /// The lowest and highest live variant price; absent without variants.
    pub price_range: Option<PriceRange>,
    /// How many published reviews rate it.
    pub rating_count: i32,
    /// Their average in hundredths (433 is 4.33 stars), computed from integer counts;
    /// absent without ratings.
    pub rating_average_hundredths: Option<i64>,
    /// Its live variants, oldest first (reads of one product; lists leave them out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variants: Option<Vec<VariantResponse>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
}

impl ProductResponse {
    /// The product with its variants, as `insider` (its seller, or staff) or anyone else
    /// sees them.
    pub fn with_variants(r: ProductRow, variants: Vec<VariantRow>, insider: bool) -> Self {
        let mut p = Self::from(r);
        p.variants = Some(
            variants
                .into_iter()
                .map(|v| VariantResponse::of(v, insider))
                .collect(),
        );
        p
    }
}

impl From<ProductRow> for ProductResponse {
    fn from(r: ProductRow) -> Self {
        Self {
            currency_exponent: currency_exponent(&r.currency).unwrap_or(2),
            options: r.options.0,
            price_range: r
                .min_price
                .zip(r.max_price)
                .map(|(min, max)| PriceRange { min, max }),
            variants: None,
            rating_count: r.rating_count,
            rating_average_hundredths: average_hundredths(r.rating_sum, r.rating_count),
            id: r.id,
            seller_id: r.seller_id,
            title: r.title,
            slug: r.slug,
            description: r.description,
            status: r.status,
            rejection_reason: r.rejection_reason,
            category_id: r.category_id,
            tags: r.tags,
            images: r.images.0,
            attributes: r.attributes.0,
            seo_title: r.seo_title,
            seo_description: r.seo_description,
            featured: r.featured,
            currency: r.currency,
            created_at: r.created_at,
            updated_at: r.updated_at,
            published_at: r.published_at,
        }
    }
}

/// What events carry about a product.
pub fn snapshot(r: &ProductRow) -> ProductSnapshot {
    ProductSnapshot {
        product_id: r.id.0,
        user_id: r.seller_id,
        title: r.title.clone(),
        slug: r.slug.clone(),
        status: r.status.as_str().to_owned(),
        currency: r.currency.clone(),
        min_price: r.min_price,
        max_price: r.max_price,
        category_id: r.category_id,
        featured: r.featured,
        updated_at: r.updated_at,
    }
}

/// The exponent of an active ISO 4217 currency; `None` for anything else (`XXX`, `usd`,
/// withdrawn codes).
pub fn currency_exponent(code: &str) -> Option<u16> {
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    iso_currency::Currency::from_code(code).and_then(|c| c.exponent())
}

/// The slug a title gives: ASCII letters and digits joined by single dashes, or `product`
/// when nothing is left.
pub fn slug_of(title: &str) -> String {
    let mut s = slug::slugify(title);
    if s.len() > SLUG_BASE_LEN {
        s.truncate(SLUG_BASE_LEN);
        s = s.trim_end_matches('-').to_owned();
    }
    if s.is_empty() { "product".into() } else { s }
}

pub fn valid_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 120
        && s.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// Tags as stored: trimmed and lower-cased, duplicates dropped, in the order given.
pub fn normalise_tags(tags: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for t in tags {
        let t = t.trim().to_lowercase();
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// A variant's title from its option values, in the product's option order ("M / Grey"),
/// or `Default` without options.
pub fn variant_title(chosen: &BTreeMap<String, String>, options: &[ProductOption]) -> String {
    let parts: Vec<&str> = options
        .iter()
        .filter_map(|o| chosen.get(o.name.trim()).map(String::as_str))
        .collect();
    if parts.is_empty() {
        "Default".into()
    } else {
        parts.join(" / ")
    }
}

/// The checks `validator` cannot say: slugs, currency, tags, images and attributes.
#[derive(Default)]
pub struct Checks(pub Vec<FieldError>);

impl Checks {
    pub fn fail(&mut self, field: impl Into<String>, code: &str, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        });
    }

    pub fn slug(&mut self, slug: Option<&str>) {
        if let Some(s) = slug
            && !valid_slug(s)
        {
            self.fail(
                "slug",
                "slug",
                "must be 1 to 120 lower-case letters and digits, in words joined by single dashes",
            );
        }
    }

    pub fn currency(&mut self, code: &str) {
        if currency_exponent(code).is_none() {
            self.fail(
                "currency",
                "currency",
                "must be an active ISO 4217 code in capitals, such as USD, JPY or KWD",
            );
        }
    }

    pub fn tags(&mut self, tags: &[String]) {
        if tags.len() > MAX_TAGS {
            self.fail("tags", "length", format!("at most {MAX_TAGS} tags"));
        }
        for (i, t) in tags.iter().enumerate() {
            let n = t.trim().chars().count();
            if n == 0 || n > 40 {
                self.fail(format!("tags[{i}]"), "length", "must be 1 to 40 characters");
            }
        }
    }

    pub fn images(&mut self, images: &[Image]) {
        if images.len() > MAX_IMAGES {
            self.fail("images", "length", format!("at most {MAX_IMAGES} images"));
        }
        for (i, img) in images.iter().enumerate() {
            match (&img.url, &img.file_id) {
                (Some(url), None) => {
                    let ok = url.len() <= 2048
                        && (url.starts_with("https://") || url.starts_with("http://"))
                        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
                    if !ok {
                        self.fail(
                            format!("images[{i}].url"),
                            "url",
                            "must be an http(s) URL of at most 2048 characters",
                        );
                    }
                }
                (None, Some(_)) => {}
                _ => self.fail(
                    format!("images[{i}]"),
                    "image",
                    "give exactly one of url and file_id",
                ),
            }
            if img.alt.as_ref().is_some_and(|a| a.chars().count() > 300) {
                self.fail(
                    format!("images[{i}].alt"),
                    "length",
                    "at most 300 characters",
                );
            }
        }
    }

    pub fn attributes(&mut self, attributes: &BTreeMap<String, AttributeValue>) {
        if attributes.len() > MAX_ATTRIBUTES {
            self.fail(
                "attributes",
                "length",
                format!("at most {MAX_ATTRIBUTES} attributes"),
            );
        }
        for (key, value) in attributes {
            let mut chars = key.chars();
            let key_ok = matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
                && key.len() <= 40
                && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !key_ok {
                self.fail(
                    format!("attributes.{key}"),
                    "key",
                    "keys are 1 to 40 lower-case letters, digits and _, starting with a letter",
                );
            }
            if let AttributeValue::Text(t) = value
                && t.chars().count() > 200
            {
                self.fail(
                    format!("attributes.{key}"),
                    "length",
                    "text values are at most 200 characters",
                );
            }
        }
    }

    pub fn options(&mut self, options: &[ProductOption]) {
        if options.len() > MAX_OPTIONS {
            self.fail(
                "options",
                "length",
                format!("at most {MAX_OPTIONS} options"),
            );
        }
        for (i, o) in options.iter().enumerate() {
            let n = o.name.trim().chars().count();
            if n == 0 || n > 50 {
                self.fail(
                    format!("options[{i}].name"),
                    "length",
                    "must be 1 to 50 characters",
                );
            } else if options[..i].iter().any(|p| p.name.trim() == o.name.trim()) {
                self.fail(
                    format!("options[{i}].name"),
                    "unique",
                    "names an option twice",
                );
            }
            if o.values.is_empty() || o.values.len() > MAX_OPTION_VALUES {
                self.fail(
                    format!("options[{i}].values"),
                    "length",
                    format!("must hold 1 to {MAX_OPTION_VALUES} values"),
                );
            }
            for (j, v) in o.values.iter().enumerate() {
                let n = v.trim().chars().count();
                if n == 0 || n > 100 || o.values[..j].iter().any(|w| w.trim() == v.trim()) {
                    self.fail(
                        format!("options[{i}].values[{j}]"),
                        "value",
                        "values are 1 to 100 characters, each once",
                    );
                }
            }
        }
    }

    /// The amount in minor units, or a failure naming `field` (and 0, never stored).
    pub fn amount(&mut self, field: &str, amount: &Amount) -> i64 {
        match amount.minor_units() {
            Ok(n) => n,
            Err(why) => {
                self.fail(field, "amount", why);
                0
            }
        }
    }

    pub fn sku(&mut self, field: &str, sku: Option<&str>) {
        if let Some(s) = sku
            && (s.trim() != s || s.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            self.fail(field, "sku", "SKUs hold no spaces or control characters");
        }
    }

    /// A variant's option values: exactly one of each of the product's options, each one of
    /// that option's values.
    pub fn choice(
        &mut self,
        field: &str,
        chosen: &BTreeMap<String, String>,
        options: &[ProductOption],
    ) {
        let names_match = chosen.len() == options.len()
            && options.iter().all(|o| chosen.contains_key(o.name.trim()));
        if !names_match {
            let names: Vec<&str> = options.iter().map(|o| o.name.trim()).collect();
            self.fail(
                field,
                "options",
                if names.is_empty() {
                    "the product has no options: give {}".to_owned()
                } else {
                    format!("give one value of each option: {}", names.join(", "))
                },
            );
            return;
        }
        for o in options {
            let value = &chosen[o.name.trim()];
            if !o.values.iter().any(|v| v.trim() == value) {
                self.fail(
                    format!("{field}.{}", o.name.trim()),
                    "value",
                    format!("must be one of: {}", o.values.join(", ")),
                );
            }
        }
    }

    /// A new variant's fields as they will be stored; failures under `prefix`.
    pub fn new_variant(
        &mut self,
        prefix: &str,
        v: &CreateVariantRequest,
        options: &[ProductOption],
    ) -> VariantFields {
        self.sku(&format!("{prefix}sku"), v.sku.as_deref());
        self.choice(&format!("{prefix}options"), &v.options, options);
        let price = self.amount(&format!("{prefix}price"), &v.price);
        let compare_at_price = v
            .compare_at_price
            .as_ref()
            .map(|a| self.amount(&format!("{prefix}compare_at_price"), a));
        VariantFields {
            sku: v.sku.clone(),
            title: v
                .title
                .as_deref()
                .map(|t| t.trim().to_owned())
                .unwrap_or_else(|| variant_title(&v.options, options)),
            options: v.options.clone(),
            price,
            compare_at_price,
            weight_grams: v.weight_grams,
            track_inventory: v.track_inventory,
            allow_backorder: v.allow_backorder,
            on_hand: v.on_hand,
        }
    }

    pub fn done(self) -> Result<(), CatalogError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(CatalogError::invalid(self.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currencies_have_their_exponents() {
        assert_eq!(currency_exponent("JPY"), Some(0));
        assert_eq!(currency_exponent("USD"), Some(2));
        assert_eq!(currency_exponent("KWD"), Some(3));
        assert_eq!(currency_exponent("usd"), None);
        assert_eq!(currency_exponent("ABC"), None);
    }

    #[test]
    fn amounts_are_whole_non_negative_and_bounded() {
        let amount = |json: &str| serde_json::from_str::<Amount>(json).unwrap().minor_units();
        assert_eq!(amount("1999"), Ok(1999));
        assert_eq!(amount("0"), Ok(0));
        assert_eq!(amount("1000000000000000"), Ok(MAX_PRICE));
        for bad in [
            "-1",
            "12.5",
            "1e20",
            "9223372036854775808",
            "1000000000000001",
            "-0.5",
        ] {
            assert!(amount(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn slugs_come_from_titles() {
        assert_eq!(slug_of("Crème Brûlée — 2 Pack!"), "creme-brulee-2-pack");
        assert_eq!(slug_of("!!!"), "product");
        assert!(valid_slug(&slug_of(&"long title ".repeat(40))));
        assert!(!valid_slug("a--b") && !valid_slug("-a") && !valid_slug("A"));
    }

    #[test]
    fn rating_averages_are_integer_hundredths_rounded_half_up() {
        assert_eq!(average_hundredths(0, 0), None);
        assert_eq!(average_hundredths(13, 3), Some(433));
        assert_eq!(average_hundredths(14, 3), Some(467));
        assert_eq!(average_hundredths(9, 2), Some(450));
        assert_eq!(average_hundredths(1, 8), Some(13)); // 0.125 -> 0.13
        assert_eq!(average_hundredths(150, 30), Some(500));
    }

    #[test]
    fn the_status_machine_refuses_what_it_does_not_list() {
        use ProductStatus::*;
        assert_eq!(Draft.after(Transition::Submit, false).unwrap(), Pending);
        assert_eq!(Draft.after(Transition::Submit, true).unwrap(), Active);
        assert_eq!(Pending.after(Transition::Approve, false).unwrap(), Active);
        assert!(Draft.after(Transition::Approve, false).is_err());
        assert!(Active.after(Transition::Submit, false).is_err());
        assert_eq!(Archived.after(Transition::Restore, false).unwrap(), Draft);
        assert!(Archived.after(Transition::Archive, false).is_err());
    }
}

// ---- Categories ----------------------------------------------------------------------

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Shoes", "slug": "shoes", "parent_id": null, "position": 0}))]
pub struct CreateCategoryRequest {
    #[validate(length(min = 1, max = 200))]
    pub name: String,
    /// Unique across the catalogue; made from the name when absent.
    pub slug: Option<String>,
    /// The parent; a root without one.
    pub parent_id: Option<Uuid>,
    /// Order among siblings (ties by id).
    #[serde(default)]
    pub position: i32,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCategoryRequest {
    #[validate(length(min = 1, max = 200))]
    pub name: Option<String>,
    pub slug: Option<String>,
    pub position: Option<i32>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveCategoryRequest {
    /// The new parent; `null` makes the category a root. Never the category itself or one
    /// of its descendants (409 `category_loop`). Required, `null` included: read as absent,
    /// a move meant only to reorder made a subcategory a root (a review found it).
    #[serde(deserialize_with = "Option::deserialize")]
    #[schema(required = true)]
    pub parent_id: Option<Uuid>,
    /// Its order among its new siblings; kept when absent.
    pub position: Option<i32>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CategoryListQuery {
    /// List this category's children (the roots without it).
    pub parent: Option<Uuid>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteCategoryQuery {
    /// Move the category's products to this category first.
    pub move_products_to: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryResponse {
    pub id: Uuid,
    pub parent_id: Option<Uuid>,
    pub name: String,
    pub slug: String,
    pub position: i32,
    /// The ids of its ancestors, root first, then its own.
    pub path: Vec<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<CategoryRow> for CategoryResponse {
    fn from(r: CategoryRow) -> Self {
        Self {
            id: r.id,
            parent_id: r.parent_id,
            name: r.name,
            slug: r.slug,
            position: r.position,
            path: r.path,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

// ---- Reviews -------------------------------------------------------------------------

crate::id_type!(
    /// A review of a product.
    ReviewId
);

/// Whether a review is public. Only `published` reviews count in the product's rating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum ReviewStatus {
    /// Held for a moderator (`catalog.reviews_require_approval`): seen by its author and
    /// moderators only, not in the rating.
    Pending,
    /// Public, and in the product's rating.
    Published,
}

impl ReviewStatus {
    /// As stored. Bound as plain text: binding the enum itself makes sqlx look its type up
    /// by name (a `regtype` query) on each new connection, a second round trip on reads.
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewStatus::Pending => "pending",
            ReviewStatus::Published => "published",
        }
    }
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"rating": 5, "title": "Warm and soft", "body": "Wore it all winter."}))]
pub struct CreateReviewRequest {
    /// A whole number from 1 to 5.
    #[validate(range(min = 1, max = 5))]
    pub rating: i16,
    #[validate(length(min = 1, max = 200))]
    pub title: String,
    #[serde(default)]
    #[validate(length(max = 5000))]
    pub body: String,
}

/// Fields to change; absent ones stay.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateReviewRequest {
    #[validate(range(min = 1, max = 5))]
    pub rating: Option<i16>,
    #[validate(length(min = 1, max = 200))]
    pub title: Option<String>,
    #[validate(length(max = 5000))]
    pub body: Option<String>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"body": "Thank you! The scarf to match is coming in March."}))]
pub struct ReplyRequest {
    #[validate(length(min = 1, max = 5000))]
    pub body: String,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReviewFilter {
    /// One status: moderators list `pending` reviews (the queue); others see published
    /// reviews and their own.
    pub status: Option<ReviewStatus>,
}

/// The seller's answer to a review.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewReply {
    pub body: String,
    pub replied_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewResponse {
    pub id: ReviewId,
    pub product_id: ProductId,
    /// The author.
    pub user_id: Uuid,
    /// 1 to 5.
    pub rating: i16,
    pub title: String,
    pub body: String,
    pub status: ReviewStatus,
    /// The author bought the product.
    pub verified_purchase: bool,
    pub helpful_count: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<ReviewReply>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<ReviewRow> for ReviewResponse {
    fn from(r: ReviewRow) -> Self {
        Self {
            reply: r
                .reply_body
                .zip(r.replied_at)
                .map(|(body, replied_at)| ReviewReply { body, replied_at }),
            id: r.id,
            product_id: r.product_id,
            user_id: r.user_id,
            rating: r.rating,
            title: r.title,
            body: r.body,
            status: r.status,
            verified_purchase: r.verified_purchase,
            helpful_count: r.helpful_count,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A review's helpful votes after a vote or its withdrawal.
#[derive(Debug, Serialize, ToSchema)]
pub struct HelpfulResponse {
    pub helpful_count: i32,
    /// Whether the caller's vote is counted now.
    pub voted: bool,
}

/// The average of `count` ratings summing to `sum`, in hundredths (433 is 4.33), rounded
/// half up, from integers only; `None` without ratings.
pub fn average_hundredths(sum: i64, count: i32) -> Option<i64> {
    let count = i64::from(count);
    (count > 0).then(|| (sum * 200 + count) / (2 * count))
}

// --- Search and browse (`search`) -----------------------------------------------------------

/// A page of `GET /products`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductSearchResponse {
    pub items: Vec<ProductResponse>,
    /// Pass as `after` (with the same filters and sort) for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// How many products match (first page only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<SearchTotal>,
    /// Counts for narrowing the search further (first page only, unless `facets=false`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub facets: Option<Facets>,
}

/// The size of the whole result, counted up to 10,000: `eq` when it is exact, `gte` when
/// there are at least that many (counting stops there, so it costs the same at 1M).
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchTotal {
    pub value: i64,
    /// `eq` or `gte`.
    pub relation: &'static str,
}

/// Counts over the products matching the current filters (over the first 10,000 found
/// when `total.relation` is `gte`). Each list holds its top 10 values by count.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Facets {
    /// Products per category they are directly in.
    pub categories: Vec<CategoryFacet>,
    /// Products per bucket of their lowest price (minor units; `max` exclusive, absent on
    /// the last bucket). Empty buckets are left out.
    pub prices: Vec<PriceFacet>,
    pub tags: Vec<TagFacet>,
    /// Per attribute key (the 20 most used), its most common values.
    pub attributes: Vec<AttributeFacet>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CategoryFacet {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub count: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PriceFacet {
    pub min: i64,
    pub max: Option<i64>,
    pub count: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TagFacet {
    pub value: String,
    pub count: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AttributeFacet {
    pub key: String,
    pub values: Vec<AttributeCount>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AttributeCount {
    pub value: AttributeValue,
    pub count: i64,
}
