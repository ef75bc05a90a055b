//! The BaaS database domain: databases owned by users, collections with declared schemas and
//! real PostgreSQL indexes, documents with per-document grants, queries, aggregations and
//! atomic batches.
//!
//! Schema `baas`; routes under `/api/v1/databases`. Publishes `baas.database.*`,
//! `baas.collection.*` and `baas.document.created/updated/deleted` (source `baas-database`,
//! declared in `events`); consumes none; calls no other domain.
//!
//! Resource files (`databases`, `collections`, `attributes`, `indexes`, `documents`,
//! `queries`) carry their routes, handlers and OpenAPI paths; what they share (the database
//! or collection a caller may reach, the documents a query finds) is in `access`; every SQL
//! statement is in `repo`. Imports go that way only.

mod access;
mod attributes;
mod cache;
mod collections;
mod databases;
mod documents;
mod error;
mod events;
mod indexes;
mod model;
mod queries;
mod query;
mod repo;
mod schema;
mod settings;

use std::time::Duration;

use actix_web::http::StatusCode;
use sqlx::migrate::Migrator;
use utoipa::OpenApi;

use crate::platform::domain::DomainState;
use crate::platform::http::Routes;
use crate::platform::jobs::Job;
use crate::platform::{Domain, Platform};

pub use settings::DatabaseSettings;

static MIGRATIONS: Migrator = sqlx::migrate!("migrations/baas");

#[derive(Default)]
pub struct BaasDatabase {
    settings: DomainState<DatabaseSettings>,
    collections: DomainState<cache::CollectionCache>,
    relays: DomainState<crate::platform::events::RelayWaker>,
}

impl Domain for BaasDatabase {
    fn name(&self) -> &'static str {
        "baas-database"
    }

    fn path(&self) -> &'static str {
        "databases"
    }

    fn schema(&self) -> &'static str {
        "baas"
    }

    fn events(&self) -> &'static [&'static str] {
        events::TYPES
    }

    fn init(&self, platform: &Platform) -> anyhow::Result<()> {
        let settings: DatabaseSettings = platform.settings.domain_section("baas-database")?;
        settings.validate()?;
        self.settings.set(settings);
        self.collections.set(cache::CollectionCache::default());
        self.relays.set(crate::platform::events::RelayWaker::spawn(
            platform.db.clone(),
        ));
        Ok(())
    }

    fn migrations(&self) -> Option<&'static Migrator> {
        Some(&MIGRATIONS)
    }

    fn routes(&self, routes: &mut Routes) {
        self.settings.register(routes);
        self.collections.register(routes);
        self.relays.register(routes);
        // The router tries routes in this order, one regex each, so the hot ones (documents)
        // go first; no two groups' patterns can match the same path, so the order changes
        // nothing else. A document's `{id}` leaves `query` and `aggregate` to `queries`.
        documents::configure(routes);
        queries::configure(routes);
        databases::configure(routes);
        collections::configure(routes);
        attributes::configure(routes);
        indexes::configure(routes);
    }

    /// Drops a cached collection when a NOTIFY says it changed (from the changing
    /// transaction's commit), everything when NOTIFYs may have been missed and, should the
    /// listener be down, every 30 seconds.
    fn jobs(&self, _platform: &Platform) -> Vec<Job> {
        let Some(collections) = self.collections.get() else {
            return Vec::new();
        };
        let notified = collections.clone();
        vec![
            Job::new(
                "baas.collection_cache",
                Duration::from_secs(30),
                move || {
                    collections.clear();
                    Box::pin(async { Ok(()) })
                },
            )
            .on_message(
                cache::CHANNEL,
                std::sync::Arc::new(move |payload| notified.on_notify(payload)),
            ),
        ]
    }

    fn error_codes(&self) -> &'static [(&'static str, StatusCode)] {
        error::DatabaseError::CODES
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        let mut doc = databases::DatabasesApi::openapi();
        doc.merge(collections::CollectionsApi::openapi());
        doc.merge(attributes::AttributesApi::openapi());
        doc.merge(indexes::IndexesApi::openapi());
        doc.merge(documents::DocumentsApi::openapi());
        doc.merge(queries::QueriesApi::openapi());
        doc.merge(events::EventsApi::openapi());
        doc
    }
}
