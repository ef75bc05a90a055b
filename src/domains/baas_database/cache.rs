//! Collections cached in memory, so a document read or write is one statement. Each such
//! statement also compares the cached `version` with the row's (`repo::Fresh`): a stale
//! entry makes the handler fetch the collection again and retry, it never serves a wrong
//! answer. Every replica drops its whole cache when a `baas_collections` NOTIFY arrives
//! (a trigger sends it from every transaction that changes a collection; see the
//! `collection_version` migration) and, should the listener be down, every 30 seconds.

use std::sync::Arc;

use dashmap::DashMap;

use super::model::DatabaseId;
use super::repo::CollectionRow;

/// The NOTIFY channel of collection changes.
pub const CHANNEL: &str = "baas_collections";

/// Entries kept at most; past it the cache starts over (collections are few per tenant).
const MAX_ENTRIES: usize = 10_000;

#[derive(Default)]
pub struct CollectionCache {
    map: DashMap<(DatabaseId, String), Arc<CollectionRow>>,
}

impl CollectionCache {
    pub fn get(&self, database: DatabaseId, key: &str) -> Option<Arc<CollectionRow>> {
        self.map
            .get(&(database, key.to_owned()))
            .map(|e| e.value().clone())
    }

    pub fn put(&self, row: CollectionRow) -> Arc<CollectionRow> {
        if self.map.len() >= MAX_ENTRIES {
            self.map.clear();
        }
        let row = Arc::new(row);
        self.map
            .insert((row.database_id, row.key.clone()), row.clone());
        row
    }

    pub fn forget(&self, database: DatabaseId, key: &str) {
        self.map.remove(&(database, key.to_owned()));
    }

    pub fn clear(&self) {
        self.map.clear();
    }
}
