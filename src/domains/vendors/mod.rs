//! The vendors domain: vendor onboarding, their products and orders, payouts.
//!
//! Schema `vendors`; routes under `/api/v1/vendors`. Registered in `src/domains/mod.rs`; its
//! endpoints, events and migrations arrive with the domain's own issue.

use crate::platform::Domain;

#[derive(Default)]
pub struct Vendors;

impl Domain for Vendors {
    fn name(&self) -> &'static str {
        "vendors"
    }

    fn schema(&self) -> &'static str {
        "vendors"
    }

    fn depends_on(&self) -> &'static [&'static str] {
        &["catalog", "orders"]
    }
}
