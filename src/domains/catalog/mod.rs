//! The catalog domain: products, variants, categories, prices in minor units, stock.
//!
//! Schema `catalog`; routes under `/api/v1/catalog`. Registered in `src/domains/mod.rs`; its
//! endpoints, events and migrations arrive with the domain's own issue.

use crate::platform::Domain;

#[derive(Default)]
pub struct Catalog;

impl Domain for Catalog {
    fn name(&self) -> &'static str {
        "catalog"
    }

    fn schema(&self) -> &'static str {
        "catalog"
    }
}
