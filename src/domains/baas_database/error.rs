//! The domain's one error enum: every problem its routes answer with besides the kernel's
//! (authentication, scopes, paging, body validation), each with its status and stable code.

use super::repo::CollectionRow;
use crate::platform::error::{ApiError, FieldError, violated_constraint};

crate::domain_errors! {
    pub enum DatabaseError {
        #[problem(NOT_FOUND, "not_found")]
        #[error("No such database.")]
        DatabaseNotFound,
        /// Also what a caller who may not see the collection is told.
        #[problem(NOT_FOUND, "not_found")]
        #[error("No such collection.")]
        CollectionNotFound,
        /// Also what a caller who may not read the document is told.
        #[problem(NOT_FOUND, "not_found")]
        #[error("No such document.")]
        DocumentNotFound,
        #[problem(NOT_FOUND, "not_found")]
        #[error("No such attribute.")]
        AttributeNotFound,
        #[problem(NOT_FOUND, "not_found")]
        #[error("No such index.")]
        IndexNotFound,

        #[problem(CONFLICT, "limit_reached")]
        #[error("You hold {0} databases, the most allowed.")]
        TooManyDatabases(i64),
        #[problem(CONFLICT, "limit_reached")]
        #[error("This database holds {0} collections, the most allowed.")]
        TooManyCollections(i64),
        #[problem(CONFLICT, "limit_reached")]
        #[error("This collection has the most attributes allowed.")]
        TooManyAttributes,
        #[problem(CONFLICT, "limit_reached")]
        #[error("This collection has the most indexes allowed.")]
        TooManyIndexes,
        #[problem(CONFLICT, "collection_exists")]
        #[error("This database already has a collection `{0}`.")]
        CollectionExists(String),
        #[problem(CONFLICT, "attribute_exists")]
        #[error("`{0}` is already an attribute.")]
        AttributeExists(String),
        #[problem(CONFLICT, "index_exists")]
        #[error("`{0}` is already an index.")]
        IndexExists(String),
        #[problem(CONFLICT, "default_required")]
        #[error("The collection has documents: a new required attribute needs a default for them.")]
        DefaultRequired,
        #[problem(CONFLICT, "attribute_indexed")]
        #[error("The index `{index}` uses `{attribute}`: delete it first.")]
        AttributeIndexed { index: String, attribute: String },
        #[problem(BAD_REQUEST, "invalid_default")]
        #[error("{0}")]
        InvalidDefault(String),

        #[problem(CONFLICT, "document_exists")]
        #[error("A document with this id already exists.")]
        DocumentExists,
        #[problem(CONFLICT, "unique_violation")]
        #[error("Another document has the same {attributes} (unique index `{index}`).")]
        UniqueViolation { attributes: String, index: String },
        /// A unique index cannot be built over the documents there are.
        #[problem(CONFLICT, "unique_violation")]
        #[error("Existing documents share values, so this cannot be unique.")]
        NotUnique,
        #[problem(PAYLOAD_TOO_LARGE, "document_too_large")]
        #[error("The document is {size} bytes; the most allowed is {max}.")]
        DocumentTooLarge { size: usize, max: usize },
        #[problem(FORBIDDEN, "forbidden")]
        #[error("You may not create documents in this collection.")]
        MayNotCreate,
        /// The caller may read the document but not `change` or `delete` it.
        #[problem(FORBIDDEN, "forbidden")]
        #[error("You may not {0} this document.")]
        MayNot(&'static str),
        /// A grant to update is not one to change grants (issue #11).
        #[problem(FORBIDDEN, "forbidden")]
        #[error("Only the collection's owner or the document's creator may change its grants.")]
        MayNotRegrant,
        #[problem(BAD_REQUEST, "invalid_if_match")]
        #[error("If-Match takes the document's ETag or its $version.")]
        InvalidIfMatch,
        #[problem(PRECONDITION_FAILED, "version_mismatch")]
        #[error("The document is at version {0}; read it again and reapply the change.")]
        VersionMismatch(i64),
        #[problem(BAD_REQUEST, "invalid_batch")]
        #[error("{0}")]
        InvalidBatch(String),

        #[problem(BAD_REQUEST, "invalid_query")]
        #[error("{0}")]
        InvalidQuery(String),
        #[problem(BAD_REQUEST, "unknown_attribute")]
        #[error("{0}")]
        UnknownAttribute(String),
        #[problem(BAD_REQUEST, "query_too_complex")]
        #[error("{0}")]
        QueryTooComplex(String),
        #[problem(BAD_REQUEST, "fulltext_index_required")]
        #[error("{0}")]
        FulltextIndexRequired(String),
        /// The `after` or `before` of a document list names no document the caller can see.
        #[problem(BAD_REQUEST, "invalid_cursor")]
        #[error("The cursor is neither a `next` this list handed out under this sort nor a document of this collection you can see.")]
        InvalidCursor,
    }
}

impl DatabaseError {
    /// A 422 with one entry per invalid field, unless there are none.
    pub fn check(errors: Vec<FieldError>) -> Result<(), Self> {
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Self::invalid(errors))
        }
    }

    /// The same problem as part `prefix` of a larger request (`documents[3]` of a bulk
    /// create, `operations[2]` of a batch): see [`ApiError::within`].
    pub fn within(self, prefix: &str) -> Self {
        ApiError::from(self).within(prefix).into()
    }

    /// A failed statement on a collection's documents or indexes, named by the constraint it
    /// violated (the document id's, or one of the collection's unique indexes), or by what
    /// PostgreSQL refused. The statement timeout's 504 `query_timeout` is the kernel's.
    pub fn in_collection(e: sqlx::Error, c: &CollectionRow) -> Self {
        if let Some(name) = violated_constraint(&e) {
            if name == c.id_constraint() {
                return Self::DocumentExists;
            }
            if let Some(index) = c.indexes.0.iter().find(|i| i.pg_name == name) {
                return Self::UniqueViolation {
                    attributes: index.attributes.join(", "),
                    index: index.key.clone(),
                };
            }
        }
        let code = match &e {
            sqlx::Error::Database(d) => d.code().map(|c| c.into_owned()),
            _ => None,
        };
        match code.as_deref() {
            // A unique index being built, not yet part of the collection's schema.
            Some("23505") => Self::NotUnique,
            // Too deep or too large for the planner (stack depth, statement too complex).
            Some("54000" | "54001") => {
                Self::QueryTooComplex("The query is too complex for the server.".into())
            }
            _ => Self::Database(e),
        }
    }
}
