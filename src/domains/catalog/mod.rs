//! The catalog domain: products (slugs with redirects, a moderated status machine, typed
//! attributes, images) with options and variants priced in integer minor units of an ISO
//! 4217 currency, sold by their seller and managed by staff.
//!
//! Stock per variant (`on_hand`, `reserved`) is reserved, committed and released through
//! `api`, which cart and orders call in-process on their own transaction; a job releases
//! expired holds. Categories form a tree of materialised paths (moving a subtree is one
//! UPDATE); listing products by category includes its descendants. Reviews (one per user
//! per product) keep the product's `rating_count` and `rating_sum` exact in the statement
//! that writes them; sellers answer them, shoppers vote them helpful. Search and browse
//! (`search`): full text with typo tolerance, filters, sorts, facets and keyset pages in one
//! statement; `api::record_sales` keeps the popularity orders report.
//!
//! Schema `catalog`; routes under `/api/v1/catalog`. Publishes `catalog.product.created`,
//! `.updated`, `.submitted`, `.published`, `.rejected`, `.archived`, `.deleted`,
//! `catalog.stock.low`, `catalog.review.created` and `catalog.category.created`,
//! `.updated`, `.moved`, `.deleted`
//! (declared in `crate::events::catalog`, since cart, orders and the read models of other
//! domains consume them); consumes `user.deleted` (a deleted account's reviews, votes and
//! purchase records go, `subscribers`); calls no other domain (orders calls
//! `api::record_purchases` to verify reviews; cart and orders price from
//! `api::variants_for_sale`). Permissions:
//! `catalog.products.sell` (the `vendor` role), `catalog.products.manage` and
//! `catalog.products.moderate`, `catalog.categories.manage`, `catalog.stock.manage`, `catalog.reviews.moderate` (staff) and `catalog.stock.reserve`
//! (integrations), registered with auth's permission catalogue by its `catalog_*`
//! migrations.
//!
//! Resource files (`products`, `moderation`, `options`, `variants`, `inventory`,
//! `categories`, `reviews`) carry their handlers, routes and OpenAPI
//! paths; they share `access` (who may see and change what), which sits on `state` and
//! `repo`. Imports go that way only.

mod access;
pub mod api;
mod categories;
mod error;
mod inventory;
mod model;
mod moderation;
mod options;
mod products;
mod repo;
mod reviews;
mod search;
mod settings;
mod state;
mod subscribers;
mod variants;

use std::time::Duration;

use sqlx::migrate::Migrator;
use utoipa::OpenApi;

use crate::platform::domain::DomainState;
use crate::platform::http::Routes;
use crate::platform::jobs::Job;
use crate::platform::{Domain, Platform};

pub use error::CatalogError;
pub use settings::CatalogSettings;
use state::CatalogState;

static MIGRATIONS: Migrator = sqlx::migrate!("migrations/catalog");

#[derive(Default)]
pub struct Catalog {
    state: DomainState<CatalogState>,
}

impl Domain for Catalog {
    fn name(&self) -> &'static str {
        "catalog"
    }

    fn schema(&self) -> &'static str {
        "catalog"
    }

    fn events(&self) -> &'static [&'static str] {
        crate::events::catalog::TYPES
    }

    fn init(&self, platform: &Platform) -> anyhow::Result<()> {
        self.state.set(CatalogState::build(platform)?);
        Ok(())
    }

    fn migrations(&self) -> Option<&'static Migrator> {
        Some(&MIGRATIONS)
    }

    fn routes(&self, routes: &mut Routes) {
        self.state.register(routes);
        products::configure(routes);
        moderation::configure(routes);
        options::configure(routes);
        variants::configure(routes);
        inventory::configure(routes);
        categories::configure(routes);
        reviews::configure(routes);
    }

    fn error_codes(&self) -> &'static [(&'static str, actix_web::http::StatusCode)] {
        error::CatalogError::CODES
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        let mut doc = products::ProductsApi::openapi();
        doc.merge(moderation::ModerationApi::openapi());
        doc.merge(options::OptionsApi::openapi());
        doc.merge(variants::VariantsApi::openapi());
        doc.merge(inventory::InventoryApi::openapi());
        doc.merge(categories::CategoriesApi::openapi());
        doc.merge(reviews::ReviewsApi::openapi());
        doc.merge(crate::events::catalog::EventsApi::openapi());
        doc
    }

    fn subscribers(
        &self,
        _platform: &Platform,
    ) -> Vec<std::sync::Arc<dyn crate::platform::events::Subscriber>> {
        vec![subscribers::accounts()]
    }

    fn jobs(&self, platform: &Platform) -> Vec<Job> {
        let Some(state) = self.state.get() else {
            return Vec::new();
        };
        let db = platform.db.clone();
        vec![Job::new(
            "catalog.release_expired_reservations",
            Duration::from_millis(state.settings.reservation_sweep_ms),
            move || {
                let db = db.clone();
                Box::pin(async move {
                    // Up to 1000 a statement; go on while whole batches come back.
                    while repo::sweep_expired(&db).await? == 1000 {}
                    Ok(())
                })
            },
        )]
    }
}
