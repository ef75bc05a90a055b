//! Queries with the filter in the body, and aggregations: each over only the documents the
//! caller may read.

use actix_web::{HttpResponse, web};
use serde_json::Value;
use utoipa::OpenApi;

use super::access;
use super::cache::CollectionCache;
use super::error::DatabaseError;
use super::model::*;
use super::query::{Field, Parser};
use super::repo::{self, Lock};
use super::schema::{self, AttributeType};
use super::settings::DatabaseSettings;
use crate::platform::Platform;
use crate::platform::error::responses::{BadRequest, NotFound, QueryTimeout, Unauthorized};
use crate::platform::grants::Caller;
use crate::platform::http::{Endpoint, Routes};

#[derive(OpenApi)]
#[openapi(paths(query_documents, aggregate))]
pub struct QueriesApi;

/// Mounted before `documents`, so that `query` and `aggregate` win over a document's `{id}`.
pub fn configure(routes: &mut Routes) {
    routes
        .add(Endpoint::at("/{db}/collections/{collection}/documents/query").post(query_documents))
        .add(Endpoint::at("/{db}/collections/{collection}/documents/aggregate").post(aggregate));
}

const MAX_AGGREGATIONS: usize = 10;

/// The same as the list, with the query in the body (for filters too long for a URL).
#[utoipa::path(
    post, path = "/{db}/collections/{collection}/documents/query", tag = "documents", request_body = QueryRequest,
    security((), ("bearer" = []), ("api_key" = [])),
    params(("db" = DatabaseId, Path), ("collection" = String, Path)),
    responses(
        (status = 200, body = DocumentPage),
        BadRequest, Unauthorized, NotFound,
        QueryTimeout,
    )
)]
pub async fn query_documents(
    platform: web::Data<Platform>,
    settings: web::Data<DatabaseSettings>,
    cache: web::Data<CollectionCache>,
    caller: Caller,
    path: web::Path<(DatabaseId, String)>,
    body: web::Json<QueryRequest>,
) -> Result<HttpResponse, DatabaseError> {
    let (db, collection) = path.into_inner();
    let page = access::find_documents(
        &platform,
        &cache,
        &settings,
        &caller,
        (db, &collection),
        body.into_inner(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// Count, sum, average, minimum and maximum over the documents a filter matches (and the
/// caller may read), optionally grouped by one attribute.
#[utoipa::path(
    post, path = "/{db}/collections/{collection}/documents/aggregate", tag = "documents", request_body = AggregateRequest,
    security((), ("bearer" = []), ("api_key" = [])),
    params(("db" = DatabaseId, Path), ("collection" = String, Path)),
    responses(
        (status = 200, body = AggregateResponse),
        BadRequest, Unauthorized, NotFound,
        QueryTimeout,
    )
)]
pub async fn aggregate(
    platform: web::Data<Platform>,
    settings: web::Data<DatabaseSettings>,
    caller: Caller,
    path: web::Path<(DatabaseId, String)>,
    body: web::Json<AggregateRequest>,
) -> Result<HttpResponse, DatabaseError> {
    caller.require_scope("databases.read")?;
    let body = body.into_inner();
    if body.aggregations.is_empty() || body.aggregations.len() > MAX_AGGREGATIONS {
        return Err(DatabaseError::InvalidQuery(format!(
            "aggregations: between 1 and {MAX_AGGREGATIONS}"
        )));
    }
    let (db, collection) = path.into_inner();
    let mut tx = access::begin(&platform.db, &settings).await?;
    let t = access::target(&mut tx, &caller, db, &collection, Lock::None).await?;
    let mut parser = Parser::new(&t.c.attributes.0, &t.c.indexes.0, &settings);
    let filter = body.filter.as_ref().map(|f| parser.filter(f)).transpose()?;
    let group = body
        .group_by
        .as_deref()
        .map(|g| parser.attribute(g, "group_by"))
        .transpose()?;
    let mut names = Vec::new();
    let mut aggregates = Vec::new();
    for (i, a) in body.aggregations.iter().enumerate() {
        let path = format!("aggregations[{i}]");
        let field = match (a.op, &a.attribute) {
            (AggregateOp::Count, _) => None,
            (_, None) => {
                return Err(DatabaseError::InvalidQuery(format!(
                    "{path}: needs an attribute"
                )));
            }
            (op, Some(name)) => {
                let field = parser.attribute(name, &format!("{path}.attribute"))?;
                let numeric = matches!(&field, Field::Attr(x) if matches!(x.kind, AttributeType::Integer | AttributeType::Float));
                let boolean = matches!(&field, Field::Attr(x) if x.kind == AttributeType::Boolean);
                if (matches!(op, AggregateOp::Sum | AggregateOp::Avg) && !numeric) || boolean {
                    return Err(DatabaseError::InvalidQuery(format!(
                        "{path}: cannot apply to `{name}`"
                    )));
                }
                Some(field)
            }
        };
        let op = serde_json::to_value(a.op)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let name = a.alias.clone().unwrap_or_else(|| match &a.attribute {
            Some(attr) if a.op != AggregateOp::Count => format!("{op}_{attr}"),
            _ => op.clone(),
        });
        if !schema::valid_key(&name) || names.contains(&name) {
            return Err(DatabaseError::InvalidQuery(format!(
                "{path}.as: `{name}` must be a unique name of letters, digits and _"
            )));
        }
        names.push(name);
        let function = match a.op {
            AggregateOp::Count => "count",
            AggregateOp::Sum => "sum",
            AggregateOp::Avg => "avg",
            AggregateOp::Min => "min",
            AggregateOp::Max => "max",
        };
        aggregates.push(repo::Aggregate { function, field });
    }
    let rows = repo::aggregate(
        &mut tx,
        &t.visible(&caller),
        filter.as_ref(),
        group.as_ref(),
        &aggregates,
        settings.max_groups,
    )
    .await
    .map_err(|e| DatabaseError::in_collection(e, &t.c))?;
    tx.commit().await?;
    if rows.len() as i64 > settings.max_groups {
        return Err(DatabaseError::QueryTooComplex(format!(
            "More than {} groups: narrow the filter or group by something coarser.",
            settings.max_groups
        )));
    }
    let groups = rows
        .into_iter()
        .map(|(key, values)| AggregateGroup {
            key: group.as_ref().map(|_| key.unwrap_or(Value::Null)),
            values: names.iter().cloned().zip(values).collect(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(AggregateResponse { groups }))
}
