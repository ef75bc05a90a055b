//! The `[baas_database]` configuration section (`BASALT__BAAS_DATABASE__...`): the caps that
//! keep one tenant from exhausting the server.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    pub max_databases_per_user: i64,
    pub max_collections_per_database: i64,
    /// At most 100: a collection's attributes are listed on one page.
    pub max_attributes_per_collection: usize,
    /// At most 100: a collection's indexes are listed on one page.
    pub max_indexes_per_collection: usize,
    /// The largest document, as its JSON text.
    pub max_document_bytes: usize,
    /// Nesting of and/or groups in one filter.
    pub max_filter_depth: usize,
    /// Conditions in one filter, counting every leaf.
    pub max_filter_conditions: usize,
    /// Values in one `in` list.
    pub max_filter_values: usize,
    pub max_sort_attributes: usize,
    /// Documents in one bulk create; operations in one batch.
    pub max_bulk_documents: usize,
    pub max_batch_operations: usize,
    /// Groups one aggregation may return.
    pub max_groups: i64,
    /// Every document query and write runs with this statement timeout.
    pub statement_timeout_ms: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            max_databases_per_user: 100,
            max_collections_per_database: 200,
            max_attributes_per_collection: 100,
            max_indexes_per_collection: 32,
            max_document_bytes: 256 * 1024,
            max_filter_depth: 5,
            max_filter_conditions: 50,
            max_filter_values: 100,
            max_sort_attributes: 5,
            max_bulk_documents: 1000,
            max_batch_operations: 100,
            max_groups: 1000,
            statement_timeout_ms: 5000,
        }
    }
}

impl DatabaseSettings {
    pub fn validate(&self) -> anyhow::Result<()> {
        let positive = [
            ("max_filter_depth", self.max_filter_depth),
            ("max_filter_conditions", self.max_filter_conditions),
            ("max_bulk_documents", self.max_bulk_documents),
            ("max_batch_operations", self.max_batch_operations),
            ("max_document_bytes", self.max_document_bytes),
        ];
        if let Some((key, _)) = positive.iter().find(|(_, v)| *v == 0) {
            anyhow::bail!("baas_database.{key}: must be above zero");
        }
        // Attributes and indexes are listed whole, on one page (`Page::all`): their caps
        // must stay within one.
        let one_page = crate::platform::page::MAX_LIMIT as usize;
        for (key, cap) in [
            (
                "max_attributes_per_collection",
                self.max_attributes_per_collection,
            ),
            (
                "max_indexes_per_collection",
                self.max_indexes_per_collection,
            ),
        ] {
            if cap > one_page {
                anyhow::bail!("baas_database.{key}: at most {one_page} (one page of a list)");
            }
        }
        if self.statement_timeout_ms == 0 {
            anyhow::bail!("baas_database.statement_timeout_ms: must be above zero");
        }
        Ok(())
    }
}
