//! The BaaS database domain: databases owned by users, collections with declared schemas and
//! real PostgreSQL indexes, documents with per-document grants, queries, aggregations and
//! atomic batches.
//!
//! Schema `baas`; routes under `/api/v1/databases`. Publishes `baas.database.*`,
//! `baas.collection.*` and `baas.document.created/updated/deleted` (source `baas-database`).

mod documents;
mod events;
mod listing;
mod model;
mod query;
mod repo;
mod routes;
mod schema;
mod settings;

use actix_web::http::StatusCode;
use sqlx::migrate::Migrator;
use sqlx::{Postgres, Transaction};
use utoipa::OpenApi;

use crate::platform::domain::DomainState;
use crate::platform::error::ApiError;
use crate::platform::http::Routes;
use crate::platform::{Domain, Platform};

pub use settings::DatabaseSettings;

static MIGRATIONS: Migrator = sqlx::migrate!("migrations/baas");

pub struct DatabaseState {
    pub settings: DatabaseSettings,
}

#[derive(Default)]
pub struct BaasDatabase {
    state: DomainState<DatabaseState>,
}

#[derive(OpenApi)]
#[openapi(
    paths(
        routes::create_database,
        routes::list_databases,
        routes::get_database,
        routes::rename_database,
        routes::delete_database,
        routes::create_collection,
        routes::list_collections,
        routes::get_collection,
        routes::update_collection,
        routes::delete_collection,
        routes::list_attributes,
        routes::add_attribute,
        routes::remove_attribute,
        routes::list_indexes,
        routes::add_index,
        routes::remove_index,
        documents::create_document,
        documents::bulk_create,
        listing::list_documents,
        listing::query_documents,
        listing::aggregate,
        documents::get_document,
        documents::replace_document,
        documents::update_document,
        documents::delete_document,
        documents::batch,
    ),
    tags(
        (name = "databases", description = "Databases, collections, attributes and indexes (the owner's)"),
        (name = "documents", description = "Documents, queries, aggregations and batches, under the collections' and documents' grants")
    )
)]
struct DatabaseApi;

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
        self.state.set(DatabaseState { settings });
        Ok(())
    }

    fn migrations(&self) -> Option<&'static Migrator> {
        Some(&MIGRATIONS)
    }

    fn routes(&self, routes: &mut Routes) {
        self.state.register(routes);
        // Documents first: their literal segments (`bulk`, `query`) must win over `{id}`.
        documents::configure(routes);
        routes::configure(routes);
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        DatabaseApi::openapi()
    }
}

/// A transaction whose statements give up after the configured timeout.
async fn begin(
    platform: &Platform,
    state: &DatabaseState,
) -> Result<Transaction<'static, Postgres>, ApiError> {
    Ok(repo::begin_with_timeout(&platform.db, state.settings.statement_timeout_ms).await?)
}

/// The database errors a client's request can cause, as the problems they are.
fn db_error(e: sqlx::Error, c: &repo::CollectionRow) -> ApiError {
    if let sqlx::Error::Database(d) = &e {
        match d.code().as_deref() {
            Some("23505") => {
                let constraint = d.constraint().unwrap_or_default();
                if let Some(index) = c.indexes.0.iter().find(|i| i.pg_name == constraint) {
                    return ApiError::conflict(
                        "unique_violation",
                        format!(
                            "Another document has the same {} (unique index `{}`).",
                            index.attributes.join(", "),
                            index.key
                        ),
                    );
                }
                if d.message().contains("could not create unique index") {
                    return ApiError::conflict(
                        "unique_violation",
                        "Existing documents share values, so this cannot be unique.",
                    );
                }
                return ApiError::conflict(
                    "document_exists",
                    "A document with this id already exists.",
                );
            }
            Some("57014") => {
                return ApiError::new(StatusCode::GATEWAY_TIMEOUT, "query_timeout")
                    .detail("The query ran past the statement timeout: add an index for it or narrow the filter.");
            }
            Some("54000") | Some("54001") => {
                return ApiError::bad_request(
                    "query_too_complex",
                    "The query is too complex for the server.",
                );
            }
            _ => {}
        }
    }
    ApiError::from(e)
}
