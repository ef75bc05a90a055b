//! The cart domain: carts and their line items, priced from the catalog.
//!
//! Schema `cart`; routes under `/api/v1/cart`. Registered in `src/domains/mod.rs`; its
//! endpoints, events and migrations arrive with the domain's own issue.

use crate::platform::Domain;

#[derive(Default)]
pub struct Cart;

impl Domain for Cart {
    fn name(&self) -> &'static str {
        "cart"
    }

    fn schema(&self) -> &'static str {
        "cart"
    }

    fn depends_on(&self) -> &'static [&'static str] {
        &["catalog"]
    }
}
