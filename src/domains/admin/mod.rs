//! The admin domain: moderation, reports and platform administration.
//!
//! Schema `admin`; routes under `/api/v1/admin`. Registered in `src/domains/mod.rs`; its
//! endpoints, events and migrations arrive with the domain's own issue.

use crate::platform::Domain;

#[derive(Default)]
pub struct Admin;

impl Domain for Admin {
    fn name(&self) -> &'static str {
        "admin"
    }

    fn schema(&self) -> &'static str {
        "admin"
    }
}
