//! The content domain: pages, posts and media references for storefronts.
//!
//! Schema `content`; routes under `/api/v1/content`. Registered in `src/domains/mod.rs`; its
//! endpoints, events and migrations arrive with the domain's own issue.

use crate::platform::Domain;

#[derive(Default)]
pub struct Content;

impl Domain for Content {
    fn name(&self) -> &'static str {
        "content"
    }

    fn schema(&self) -> &'static str {
        "content"
    }
}
