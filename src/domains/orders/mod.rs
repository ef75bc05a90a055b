//! The orders domain: checkout from a cart, payments behind a provider trait, order lifecycle.
//!
//! Schema `orders`; routes under `/api/v1/orders`. Registered in `src/domains/mod.rs`; its
//! endpoints, events and migrations arrive with the domain's own issue.

use crate::platform::Domain;

#[derive(Default)]
pub struct Orders;

impl Domain for Orders {
    fn name(&self) -> &'static str {
        "orders"
    }

    fn schema(&self) -> &'static str {
        "orders"
    }

    fn depends_on(&self) -> &'static [&'static str] {
        &["cart", "catalog"]
    }
}
