//! The BaaS database domain: databases, collections with schemas, documents, queries, permissions.
//!
//! Schema `baas`; routes under `/api/v1/baas-database`. Registered in `src/domains/mod.rs`; its
//! endpoints, events and migrations arrive with the domain's own issue.

use crate::platform::Domain;

#[derive(Default)]
pub struct BaasDatabase;

impl Domain for BaasDatabase {
    fn name(&self) -> &'static str {
        "baas-database"
    }

    fn schema(&self) -> &'static str {
        "baas"
    }
}
