//! Collections cached in memory, so a document read or write is one statement. Each such
//! statement also compares the cached `version` with the row's (`repo::Fresh`): a stale
//! entry makes the handler fetch the collection again and retry, it never serves a wrong
//! answer. A trigger NOTIFYs `baas_collections` with `<id> <version>` from every
//! transaction that changes or deletes a collection (see the `collection_notify_version`
//! migration); every replica then drops its copy of that collection if it is older. Only
//! older: a NOTIFY that arrives after a request already cached the new version (a loaded
//! replica hears it late) must not throw the fresh copy away. When NOTIFYs may have been
//! missed, and every 30 seconds in case the listener is down, the whole cache goes.

use std::sync::Arc;

use dashmap::DashMap;

use super::model::{CollectionId, DatabaseId};
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

    /// Drops the copy of collection `id` if it is older than `version`.
    pub fn forget_older(&self, id: CollectionId, version: i64) {
        self.map
            .retain(|_, row| row.id != id || row.version >= version);
    }

    /// Applies a `baas_collections` NOTIFY: `<id> <version>` drops that collection's older
    /// copy; anything else (or `None`, when NOTIFYs may have been missed) everything.
    pub fn on_notify(&self, payload: Option<&str>) {
        let change = payload.and_then(|p| {
            let (id, version) = p.split_once(' ')?;
            Some((id.parse().ok()?, version.parse().ok()?))
        });
        match change {
            Some((id, version)) => self.forget_older(CollectionId(id), version),
            None => self.clear(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notify_drops_only_older_copies_of_its_collection() {
        let cache = CollectionCache::default();
        let db = DatabaseId::new();
        let row = |key: &str, id: uuid::Uuid, version: i64| CollectionRow {
            id: CollectionId(id),
            database_id: db,
            key: key.into(),
            name: key.into(),
            permissions: sqlx::types::Json(Default::default()),
            document_security: false,
            attributes: sqlx::types::Json(Vec::new()),
            indexes: sqlx::types::Json(Vec::new()),
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            version,
            owner_id: uuid::Uuid::now_v7(),
        };
        let (a, b) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        cache.put(row("a", a, 3));
        cache.put(row("b", b, 1));
        // Late news of version 3 (or older) leaves the copy of version 3.
        cache.on_notify(Some(&format!("{a} 3")));
        cache.on_notify(Some(&format!("{a} 2")));
        assert!(cache.get(db, "a").is_some());
        // Version 4 replaces it; the other collection stays.
        cache.on_notify(Some(&format!("{a} 4")));
        assert!(cache.get(db, "a").is_none());
        assert!(cache.get(db, "b").is_some());
        // A payload it cannot read, or missed NOTIFYs: everything goes.
        cache.on_notify(Some("nonsense"));
        assert!(cache.get(db, "b").is_none());
        cache.put(row("b", b, 1));
        cache.on_notify(None);
        assert!(cache.get(db, "b").is_none());
    }
}
