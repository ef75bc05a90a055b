//! `CatalogError`: every problem the catalog domain answers with, its status and stable
//! `code` in one place (listed in OpenAPI as `CatalogErrorCode`). Unique violations are
//! mapped by constraint name after the write, never checked first.

/// Every slug a live product has had; its primary key is what keeps slugs unique.
pub const SLUG_TAKEN: &str = "product_slugs_pkey";
/// SKUs are unique among live variants.
pub const SKU_TAKEN: &str = "variants_sku_key";
/// Category slugs are unique across the catalogue.
pub const CATEGORY_SLUG_TAKEN: &str = "categories_slug_key";
/// Products name a category that exists; a category with products cannot go.
pub const PRODUCT_CATEGORY: &str = "products_category_id_fkey";
/// A category with children cannot go.
pub const CATEGORY_PARENT: &str = "categories_parent_id_fkey";
/// One review per user per product.
pub const REVIEW_TAKEN: &str = "reviews_product_user_key";
/// One live variant per combination of option values.
pub const OPTIONS_TAKEN: &str = "variants_options_key";

crate::domain_errors! {
    /// Errors of the catalog domain.
    pub enum CatalogError {
        #[problem(NOT_FOUND, "not_found")]
        #[error("No such product, or not yours.")]
        ProductNotFound,
        #[problem(CONFLICT, "slug_taken")]
        #[error("The slug {0} belongs to another product.")]
        SlugTaken(String),
        #[problem(CONFLICT, "invalid_transition")]
        #[error("The product is {from}; it cannot be {action}.")]
        InvalidTransition { from: &'static str, action: &'static str },
        #[problem(FORBIDDEN, "forbidden")]
        #[error("Only staff (catalog.products.manage) may feature products.")]
        FeatureNotAllowed,
        #[problem(NOT_FOUND, "not_found")]
        #[error("No such variant of this product.")]
        VariantNotFound,
        #[problem(CONFLICT, "sku_taken")]
        #[error("A live variant has this SKU already: {0}.")]
        SkuTaken(String),
        #[problem(CONFLICT, "variant_exists")]
        #[error("A live variant of this product has these option values already.")]
        VariantExists,
        #[problem(CONFLICT, "last_variant")]
        #[error("A product keeps at least one variant: delete the product instead.")]
        LastVariant,
        #[problem(CONFLICT, "insufficient_stock")]
        #[error("Not enough stock: {0} available.")]
        InsufficientStock(i32),
        #[problem(NOT_FOUND, "not_found")]
        #[error("No such variant on sale.")]
        VariantNotOnSale,
        #[problem(NOT_FOUND, "not_found")]
        #[error("No such reservation, or it has expired.")]
        ReservationNotFound,
        #[problem(FORBIDDEN, "forbidden")]
        #[error("Selling needs the permission catalog.products.sell (the vendor role) or catalog.products.manage.")]
        NotASeller,
        #[problem(NOT_FOUND, "not_found")]
        #[error("No such category.")]
        CategoryNotFound,
        #[problem(CONFLICT, "slug_taken")]
        #[error("The slug {0} belongs to another category.")]
        CategorySlugTaken(String),
        #[problem(CONFLICT, "category_loop")]
        #[error("A category cannot move under itself or one of its descendants.")]
        CategoryLoop,
        #[problem(CONFLICT, "category_has_products")]
        #[error("The category has products: give move_products_to to move them first.")]
        CategoryHasProducts,
        #[problem(CONFLICT, "category_has_children")]
        #[error("The category has subcategories: move or delete them first.")]
        CategoryHasChildren,
        #[problem(NOT_FOUND, "not_found")]
        #[error("No such review, or not yours.")]
        ReviewNotFound,
        #[problem(BAD_REQUEST, "invalid_query")]
        #[error("{0}")]
        InvalidQuery(String),
        #[problem(BAD_REQUEST, "invalid_cursor")]
        #[error("after: not a cursor of this list with these filters and this sort; pass the `next` of the previous page with the same query.")]
        InvalidCursor,
        #[problem(CONFLICT, "review_exists")]
        #[error("You have reviewed this product already: edit that review instead.")]
        ReviewExists,
        #[problem(FORBIDDEN, "forbidden")]
        #[error("Sellers do not review their own products.")]
        OwnProductReview,
        #[problem(FORBIDDEN, "forbidden")]
        #[error("Authors do not vote on their own reviews.")]
        OwnReviewVote,
    }
}

impl CatalogError {
    /// A failed product write: a taken slug, or a category that does not exist (422 on
    /// `category_id`), by constraint name; anything else as it is.
    pub fn product_write(e: sqlx::Error, slug: &str) -> Self {
        match crate::platform::error::violated_constraint(&e) {
            Some(SLUG_TAKEN) => Self::SlugTaken(slug.to_owned()),
            Some(PRODUCT_CATEGORY) => {
                Self::invalid_field("category_id", "exists", "no such category")
            }
            _ => e.into(),
        }
    }

    /// A failed variant write: a taken SKU or option combination by its constraint's name,
    /// anything else as it is.
    pub fn variant_write(e: sqlx::Error, sku: Option<&str>) -> Self {
        match crate::platform::error::violated_constraint(&e) {
            Some(SKU_TAKEN) => {
                // One variant's SKU is known; a batch's is named by PostgreSQL's detail.
                let detail = e
                    .as_database_error()
                    .and_then(|d| d.try_downcast_ref::<sqlx::postgres::PgDatabaseError>())
                    .and_then(|d| d.detail())
                    .map(str::to_owned);
                Self::SkuTaken(sku.map(str::to_owned).or(detail).unwrap_or_default())
            }
            Some(OPTIONS_TAKEN) => Self::VariantExists,
            _ => e.into(),
        }
    }
}
