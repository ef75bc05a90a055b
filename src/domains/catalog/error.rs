//! `CatalogError`: every problem the catalog domain answers with, its status and stable
//! `code` in one place (listed in OpenAPI as `CatalogErrorCode`). Unique violations are
//! mapped by constraint name after the write, never checked first.

/// Every slug a live product has had; its primary key is what keeps slugs unique.
pub const SLUG_TAKEN: &str = "product_slugs_pkey";
/// SKUs are unique among live variants.
pub const SKU_TAKEN: &str = "variants_sku_key";
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
    }
}

impl CatalogError {
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
