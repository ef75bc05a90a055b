//! The storage domain: buckets, streamed uploads and downloads on disk or S3, image variants, signed URLs.
//!
//! Schema `storage`; routes under `/api/v1/storage`. Registered in `src/domains/mod.rs`; its
//! endpoints, events and migrations arrive with the domain's own issue.

use crate::platform::Domain;

#[derive(Default)]
pub struct Storage;

impl Domain for Storage {
    fn name(&self) -> &'static str {
        "storage"
    }

    fn schema(&self) -> &'static str {
        "storage"
    }
}
