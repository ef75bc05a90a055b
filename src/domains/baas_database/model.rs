//! Ids, and the request and response bodies of the database API.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use validator::Validate;

use super::repo::{CollectionRow, DatabaseRow, DocumentRow};
use super::schema::{Attribute, Index};
use crate::platform::grants::{ContainerPermissions, ItemPermissions};
use crate::platform::page::Page;

crate::id_type!(
    /// A database.
    DatabaseId
);

crate::id_type!(
    /// A collection, as the server names it (its document table's name); clients name a
    /// collection by its key within the database.
    CollectionId
);

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "blog"}))]
pub struct DatabaseRequest {
    #[validate(length(min = 1, max = 128))]
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DatabaseResponse {
    pub id: DatabaseId,
    pub name: String,
    pub owner_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<DatabaseRow> for DatabaseResponse {
    fn from(d: DatabaseRow) -> Self {
        Self {
            id: d.id,
            name: d.name,
            owner_id: d.owner_id,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "id": "posts", "name": "Posts",
    "permissions": {"create": ["users"], "read": ["any"]},
    "attributes": [
        {"key": "title", "type": "string", "size": 200, "required": true},
        {"key": "views", "type": "integer", "min": 0, "default": 0},
        {"key": "tags", "type": "string", "array": true}
    ],
    "indexes": [{"key": "by_views", "type": "key", "attributes": ["views"], "orders": ["desc"]}]
}))]
pub struct CreateCollectionRequest {
    /// The collection's key in URLs: letters, digits and `_`, starting with a letter.
    pub id: String,
    #[validate(length(min = 1, max = 128))]
    pub name: String,
    #[serde(default)]
    pub permissions: ContainerPermissions,
    /// Whether each document's own grants apply (default true).
    #[serde(default = "yes")]
    pub document_security: bool,
    #[serde(default)]
    pub attributes: Vec<Attribute>,
    #[serde(default)]
    pub indexes: Vec<Index>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCollectionRequest {
    #[validate(length(min = 1, max = 128))]
    pub name: Option<String>,
    pub permissions: Option<ContainerPermissions>,
    pub document_security: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CollectionResponse {
    pub id: String,
    pub database_id: DatabaseId,
    pub name: String,
    pub permissions: ContainerPermissions,
    pub document_security: bool,
    pub attributes: Vec<Attribute>,
    pub indexes: Vec<Index>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<CollectionRow> for CollectionResponse {
    fn from(c: CollectionRow) -> Self {
        Self {
            id: c.key,
            database_id: c.database_id,
            name: c.name,
            permissions: c.permissions.0,
            document_security: c.document_security,
            attributes: c.attributes.0,
            indexes: c.indexes.0,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// A new document.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"id": "hello-world", "data": {"title": "Hello", "tags": ["intro"]}, "permissions": {"read": ["any"]}}))]
pub struct CreateDocumentRequest {
    /// Letters, digits, `.`, `_` and `-` (at most 128); generated (UUIDv7) when left out.
    pub id: Option<String>,
    #[schema(value_type = Object)]
    pub data: Value,
    /// Default: read, update and delete for the creator only.
    pub permissions: Option<ItemPermissions>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkCreateRequest {
    pub documents: Vec<CreateDocumentRequest>,
}

/// A full replacement (`PUT`) or a partial update (`PATCH`) of a document.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"data": {"title": "Hello again"}}))]
pub struct UpdateDocumentRequest {
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
    pub permissions: Option<ItemPermissions>,
}

/// A document: its attributes plus the `$`-prefixed system fields.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "$id": "hello-world", "$collection": "posts", "$database": "0193a5f6-7d2c-7b9e-9f10-3c4d5e6f7a8b",
    "$createdAt": "2026-11-22T10:00:00Z", "$updatedAt": "2026-11-22T10:00:00Z", "$version": 1,
    "$owner": "0193a5f6-7d2c-7b9e-9f10-3c4d5e6f7a8c",
    "$permissions": {"read": ["any"], "update": [], "delete": []},
    "title": "Hello", "tags": ["intro"]
}))]
pub struct DocumentResponse {
    #[serde(rename = "$id")]
    pub id: String,
    #[serde(rename = "$collection")]
    pub collection: String,
    #[serde(rename = "$database")]
    pub database: DatabaseId,
    #[serde(rename = "$createdAt")]
    pub created_at: DateTime<Utc>,
    #[serde(rename = "$updatedAt")]
    pub updated_at: DateTime<Utc>,
    /// Starts at 1, grows by one per change; send it back in `If-Match`.
    #[serde(rename = "$version")]
    pub version: i64,
    #[serde(rename = "$owner")]
    pub owner: Option<Uuid>,
    #[serde(rename = "$permissions")]
    pub permissions: ItemPermissions,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub data: serde_json::Map<String, Value>,
}

impl DocumentResponse {
    /// The document as the API shows it, with only the `select`ed attributes if asked.
    pub fn new(c: &CollectionRow, row: DocumentRow, select: Option<&[String]>) -> Self {
        let permissions = row.permissions();
        let mut data = row.data.0;
        if let Some(keys) = select {
            data.retain(|k, _| keys.contains(k));
        }
        Self {
            id: row.id,
            collection: c.key.clone(),
            database: c.database_id,
            created_at: row.created_at,
            updated_at: row.updated_at,
            version: row.version,
            owner: row.owner_id,
            permissions,
            data,
        }
    }
}

/// A page of documents. `next` is an opaque cursor of where the page ends (its last
/// document's place in the order, which holds even if that document is then deleted): pass
/// it as `after` for the documents that follow in the same order.
#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentPage {
    #[serde(flatten)]
    pub page: Page<DocumentResponse>,
    /// Matching documents in all, when `total=true` was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkCreateResponse {
    pub documents: Vec<DocumentResponse>,
}

/// `GET .../documents` parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// A JSON filter. A condition is `{"attribute": "views", "op": "greaterThan", "value": 10}`
    /// with `op` one of equal, notEqual, lessThan, lessThanEqual, greaterThan,
    /// greaterThanEqual, between (`[low, high]`), in (`[a, b, ...]`), contains (strings and
    /// arrays), startsWith, endsWith, isNull, isNotNull, search (needs a fulltext index).
    /// Group with `{"and": [...]}` or `{"or": [...]}`; a list means and. `$id`, `$createdAt`
    /// and `$updatedAt` may be filtered too.
    #[param(
        example = r#"{"or":[{"attribute":"views","op":"greaterThan","value":10},{"attribute":"tags","op":"contains","value":"intro"}]}"#
    )]
    pub filter: Option<String>,
    /// Comma-separated attributes; `-` sorts descending: `-views,title`. Ties break by
    /// creation order, newest first when the last key is descending (so one index serves
    /// the whole order).
    #[param(example = "-views,title")]
    pub sort: Option<String>,
    /// Comma-separated attributes to return (system fields always come back).
    pub select: Option<String>,
    /// Documents per page: 1 to 100, default 25.
    #[param(minimum = 1, maximum = 100, default = 25)]
    pub limit: Option<i64>,
    /// The `next` of the previous page, or any document id: the documents after it, in
    /// this order.
    pub after: Option<String>,
    /// A `next` cursor or a document id: the documents just before it, in this order.
    pub before: Option<String>,
    /// Also count every matching document.
    pub total: Option<bool>,
}

/// The body of `POST .../documents/query`: the same as the list's parameters, with the
/// filter as JSON rather than a string.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
#[schema(example = json!({
    "filter": {"and": [{"attribute": "views", "op": "between", "value": [10, 100]}, {"attribute": "title", "op": "startsWith", "value": "Hello"}]},
    "sort": ["-views"], "limit": 25, "total": true
}))]
pub struct QueryRequest {
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Value>,
    pub sort: Vec<String>,
    pub select: Vec<String>,
    /// Documents per page: 1 to 100, default 25.
    #[schema(minimum = 1, maximum = 100, default = 25)]
    pub limit: Option<i64>,
    /// The `next` of the previous page, or any document id.
    pub after: Option<String>,
    /// A `next` cursor or a document id: the documents just before it.
    pub before: Option<String>,
    pub total: bool,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AggregateOp {
    Count,
    Sum,
    Avg,
    Min,
    Max,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Aggregation {
    pub op: AggregateOp,
    /// Required for all but count.
    pub attribute: Option<String>,
    /// The result's name (default `count`, or `<op>_<attribute>`).
    #[serde(rename = "as")]
    pub alias: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "filter": {"attribute": "status", "op": "equal", "value": "published"},
    "group_by": "author",
    "aggregations": [{"op": "count"}, {"op": "sum", "attribute": "views"}, {"op": "avg", "attribute": "views"}]
}))]
pub struct AggregateRequest {
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Value>,
    pub group_by: Option<String>,
    pub aggregations: Vec<Aggregation>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AggregateGroup {
    /// The group's value of `group_by` (absent without grouping).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub key: Option<Value>,
    #[schema(value_type = Object)]
    pub values: serde_json::Map<String, Value>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"groups": [{"key": "ada", "values": {"count": 2, "sum_views": 130, "avg_views": 65.0}}]}))]
pub struct AggregateResponse {
    pub groups: Vec<AggregateGroup>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BatchAction {
    Create,
    Replace,
    Update,
    Delete,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchOperation {
    pub action: BatchAction,
    /// The collection's key.
    pub collection: String,
    /// Required except for create.
    pub id: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
    pub permissions: Option<ItemPermissions>,
    /// The version the document must still have.
    pub if_match: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"operations": [
    {"action": "create", "collection": "posts", "id": "a", "data": {"title": "A"}},
    {"action": "update", "collection": "posts", "id": "b", "data": {"views": 3}, "if_match": 2},
    {"action": "delete", "collection": "posts", "id": "c"}
]}))]
pub struct BatchRequest {
    pub operations: Vec<BatchOperation>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResult {
    pub index: usize,
    /// The status the operation alone would have answered.
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<DocumentResponse>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResponse {
    pub results: Vec<BatchResult>,
}
