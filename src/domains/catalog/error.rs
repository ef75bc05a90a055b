//! `CatalogError`: every problem the catalog domain answers with, its status and stable
//! `code` in one place (listed in OpenAPI as `CatalogErrorCode`). Unique violations are
//! mapped by constraint name after the write, never checked first.

/// Every slug a live product has had; its primary key is what keeps slugs unique.
pub const SLUG_TAKEN: &str = "product_slugs_pkey";

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
        #[problem(FORBIDDEN, "forbidden")]
        #[error("Selling needs the permission catalog.products.sell (the vendor role) or catalog.products.manage.")]
        NotASeller,
    }
}
