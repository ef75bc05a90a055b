//! Reading many documents: lists and queries (filters, sorts, `select`, keyset cursors and
//! totals) and aggregations, each over only the documents the caller may read.

use actix_web::{HttpResponse, web};
use serde_json::Value;

use super::documents::{response, target};
use super::model::*;
use super::query::{Field, Parser, split_list};
use super::repo::{self, ListQuery, Lock};
use super::schema::{self, AttributeType};
use super::{DatabaseState, begin, db_error};
use crate::platform::Platform;
use crate::platform::error::{ApiError, Problem};
use crate::platform::grants::Caller;

const MAX_AGGREGATIONS: usize = 10;

async fn run_query(
    platform: &Platform,
    state: &DatabaseState,
    caller: &Caller,
    db: &str,
    collection: &str,
    q: QueryRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require_scope("databases.read")?;
    let limit = crate::platform::page::limit(q.limit)?;
    if q.after.is_some() && q.before.is_some() {
        return Err(ApiError::bad_request(
            "invalid_query",
            "after and before cannot be used together",
        ));
    }
    let mut tx = begin(platform, state).await?;
    let t = target(&mut tx, caller, db, collection, Lock::None).await?;
    let mut parser = Parser::new(&t.c.attributes.0, &t.c.indexes.0, &state.settings);
    let filter = q.filter.as_ref().map(|f| parser.filter(f)).transpose()?;
    let sort = parser.sort(&q.sort)?;
    let select = if q.select.is_empty() {
        None
    } else {
        Some(parser.select(&q.select)?)
    };
    let cursor = q
        .after
        .as_deref()
        .map(|a| (a, false))
        .or(q.before.as_deref().map(|b| (b, true)));
    let list = ListQuery {
        filter: filter.as_ref(),
        sort: &sort,
        limit,
        cursor,
    };
    let visible = t.visible(caller);
    let rows = repo::list_documents(&mut tx, &visible, &list)
        .await
        .map_err(|e| db_error(e, &t.c))?
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_cursor",
                "The cursor is not a document of this collection you can see.",
            )
        })?;
    let total = if q.total {
        Some(
            repo::count_documents(&mut tx, &visible, filter.as_ref())
                .await
                .map_err(|e| db_error(e, &t.c))?,
        )
    } else {
        None
    };
    tx.commit().await?;
    let documents = rows
        .into_iter()
        .map(|r| response(&t.c, r, select.as_deref()))
        .collect();
    Ok(HttpResponse::Ok().json(DocumentList { documents, total }))
}

/// List documents: filter, sort, select, paginate by cursor.
#[utoipa::path(
    get, path = "/{db}/collections/{collection}/documents", tag = "documents",
    security((), ("bearer" = []), ("api_key" = [])),
    params(("db" = Uuid, Path), ("collection" = String, Path), ListParams),
    responses(
        (status = 200, body = DocumentList),
        (status = 400, description = "`invalid_query`, `unknown_attribute` (naming it), `query_too_complex`, `fulltext_index_required` or `invalid_cursor`", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The query ran past the statement timeout (`query_timeout`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_documents(
    platform: web::Data<Platform>,
    state: web::Data<DatabaseState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let p = params.into_inner();
    let filter = p
        .filter
        .as_deref()
        .map(serde_json::from_str::<Value>)
        .transpose()
        .map_err(|e| ApiError::bad_request("invalid_query", format!("filter: not JSON ({e})")))?;
    let q = QueryRequest {
        filter,
        sort: split_list(p.sort.as_deref()),
        select: split_list(p.select.as_deref()),
        limit: p.limit,
        after: p.after,
        before: p.before,
        total: p.total.unwrap_or(false),
    };
    run_query(&platform, &state, &caller, &path.0, &path.1, q).await
}

/// The same as the list, with the query in the body (for filters too long for a URL).
#[utoipa::path(
    post, path = "/{db}/collections/{collection}/documents/query", tag = "documents", request_body = QueryRequest,
    security((), ("bearer" = []), ("api_key" = [])),
    params(("db" = Uuid, Path), ("collection" = String, Path)),
    responses(
        (status = 200, body = DocumentList),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 504, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn query_documents(
    platform: web::Data<Platform>,
    state: web::Data<DatabaseState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: web::Json<QueryRequest>,
) -> Result<HttpResponse, ApiError> {
    run_query(
        &platform,
        &state,
        &caller,
        &path.0,
        &path.1,
        body.into_inner(),
    )
    .await
}

/// Count, sum, average, minimum and maximum over the documents a filter matches (and the
/// caller may read), optionally grouped by one attribute.
#[utoipa::path(
    post, path = "/{db}/collections/{collection}/documents/aggregate", tag = "documents", request_body = AggregateRequest,
    security((), ("bearer" = []), ("api_key" = [])),
    params(("db" = Uuid, Path), ("collection" = String, Path)),
    responses(
        (status = 200, body = AggregateResponse),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 504, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn aggregate(
    platform: web::Data<Platform>,
    state: web::Data<DatabaseState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: web::Json<AggregateRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require_scope("databases.read")?;
    let body = body.into_inner();
    if body.aggregations.is_empty() || body.aggregations.len() > MAX_AGGREGATIONS {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("aggregations: between 1 and {MAX_AGGREGATIONS}"),
        ));
    }
    let mut tx = begin(&platform, &state).await?;
    let t = target(&mut tx, &caller, &path.0, &path.1, Lock::None).await?;
    let mut parser = Parser::new(&t.c.attributes.0, &t.c.indexes.0, &state.settings);
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
                return Err(ApiError::bad_request(
                    "invalid_query",
                    format!("{path}: needs an attribute"),
                ));
            }
            (op, Some(name)) => {
                let field = parser.attribute(name, &format!("{path}.attribute"))?;
                let numeric = matches!(&field, Field::Attr(x) if matches!(x.kind, AttributeType::Integer | AttributeType::Float));
                let boolean = matches!(&field, Field::Attr(x) if x.kind == AttributeType::Boolean);
                if (matches!(op, AggregateOp::Sum | AggregateOp::Avg) && !numeric) || boolean {
                    return Err(ApiError::bad_request(
                        "invalid_query",
                        format!("{path}: cannot apply to `{name}`"),
                    ));
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
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("{path}.as: `{name}` must be a unique name of letters, digits and _"),
            ));
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
        state.settings.max_groups,
    )
    .await
    .map_err(|e| db_error(e, &t.c))?;
    tx.commit().await?;
    if rows.len() as i64 > state.settings.max_groups {
        return Err(ApiError::bad_request(
            "query_too_complex",
            format!(
                "More than {} groups: narrow the filter or group by something coarser.",
                state.settings.max_groups
            ),
        ));
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
