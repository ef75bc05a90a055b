//! The domain's events, published in the transaction that makes the change. Payloads name
//! the database owner as `user_id`, so the owner's webhooks receive them.
//!
//! A collection's events are keyed (the envelope's aggregate id, the Kafka key) by the
//! collection's server-side id and a document's by `<collection id>:<document id>`; neither
//! is part of the payload, so each payload carries its key in a field that is not
//! serialised (empty when an event is decoded: read the envelope's `aggregate_id`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::model::{DatabaseId, DocumentResponse};
use super::repo::{CollectionRow, DatabaseRow};
use super::schema::{Attribute, Index};
use crate::platform::grants::Caller;

/// `baas.database.created`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DatabaseCreated {
    /// The owner.
    pub user_id: Uuid,
    pub database_id: DatabaseId,
    pub name: String,
}

/// `baas.database.updated` (renamed).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DatabaseUpdated {
    /// The owner.
    pub user_id: Uuid,
    pub database_id: DatabaseId,
    pub name: String,
}

/// `baas.database.deleted`, with every collection and document in it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DatabaseDeleted {
    /// The owner.
    pub user_id: Uuid,
    pub database_id: DatabaseId,
}

impl From<&DatabaseRow> for DatabaseCreated {
    fn from(d: &DatabaseRow) -> Self {
        Self {
            user_id: d.owner_id,
            database_id: d.id,
            name: d.name.clone(),
        }
    }
}

impl From<&DatabaseRow> for DatabaseUpdated {
    fn from(d: &DatabaseRow) -> Self {
        Self {
            user_id: d.owner_id,
            database_id: d.id,
            name: d.name.clone(),
        }
    }
}

/// The three collection events carry the collection's schema as it is after the change.
macro_rules! collection_events {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Debug, Serialize, Deserialize, ToSchema)]
        pub struct $name {
            /// The database's owner.
            pub user_id: Uuid,
            pub database_id: DatabaseId,
            /// The collection's key.
            pub collection: String,
            pub attributes: Vec<Attribute>,
            pub indexes: Vec<Index>,
            /// The collection's server-side id: the event's key, not part of the payload.
            #[serde(skip)]
            pub aggregate: String,
        }

        impl From<&CollectionRow> for $name {
            fn from(c: &CollectionRow) -> Self {
                Self {
                    user_id: c.owner_id,
                    database_id: c.database_id,
                    collection: c.key.clone(),
                    attributes: c.attributes.0.clone(),
                    indexes: c.indexes.0.clone(),
                    aggregate: c.id.to_string(),
                }
            }
        }
    )*};
}

collection_events! {
    /// `baas.collection.created`.
    CollectionCreated,
    /// `baas.collection.updated`: renamed, new grants, or an attribute or index added or
    /// removed.
    CollectionUpdated,
    /// `baas.collection.deleted`, with its documents.
    CollectionDeleted,
}

/// The events of a document written, carrying the document as it now is.
macro_rules! document_events {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Debug, Serialize, Deserialize, ToSchema)]
        pub struct $name {
            /// The database's owner.
            pub user_id: Uuid,
            /// Who wrote it (null for an anonymous caller).
            pub actor_id: Option<Uuid>,
            pub database_id: DatabaseId,
            /// The collection's key.
            pub collection: String,
            pub document_id: String,
            pub document: DocumentResponse,
            /// `<collection id>:<document id>`: the event's key, not part of the payload.
            #[serde(skip)]
            pub aggregate: String,
        }

        impl $name {
            pub fn new(caller: &Caller, c: &CollectionRow, document: DocumentResponse) -> Self {
                Self {
                    user_id: c.owner_id,
                    actor_id: caller.user_id,
                    database_id: c.database_id,
                    collection: c.key.clone(),
                    document_id: document.id.clone(),
                    aggregate: format!("{}:{}", c.id, document.id),
                    document,
                }
            }
        }
    )*};
}

document_events! {
    /// `baas.document.created` (one per document of a bulk create).
    DocumentCreated,
    /// `baas.document.updated` (replaced or changed).
    DocumentUpdated,
}

/// `baas.document.deleted`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DocumentDeleted {
    /// The database's owner.
    pub user_id: Uuid,
    /// Who deleted it (null for an anonymous caller).
    pub actor_id: Option<Uuid>,
    pub database_id: DatabaseId,
    /// The collection's key.
    pub collection: String,
    pub document_id: String,
    /// `<collection id>:<document id>`: the event's key, not part of the payload.
    #[serde(skip)]
    pub aggregate: String,
}

impl DocumentDeleted {
    pub fn new(caller: &Caller, c: &CollectionRow, document_id: &str) -> Self {
        Self {
            user_id: c.owner_id,
            actor_id: caller.user_id,
            database_id: c.database_id,
            collection: c.key.clone(),
            document_id: document_id.to_owned(),
            aggregate: format!("{}:{document_id}", c.id),
        }
    }
}

crate::declare_events! {
    source = "baas-database";
    DatabaseCreated = "baas.database.created" by database_id,
    DatabaseUpdated = "baas.database.updated" by database_id,
    DatabaseDeleted = "baas.database.deleted" by database_id,
    CollectionCreated = "baas.collection.created" by aggregate,
    CollectionUpdated = "baas.collection.updated" by aggregate,
    CollectionDeleted = "baas.collection.deleted" by aggregate,
    DocumentCreated = "baas.document.created" by aggregate,
    DocumentUpdated = "baas.document.updated" by aggregate,
    DocumentDeleted = "baas.document.deleted" by aggregate,
}
