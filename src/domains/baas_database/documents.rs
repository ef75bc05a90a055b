//! Documents: create (one or many), read, replace, update, delete, and batches of writes
//! applied all or none (lists, queries and aggregations are in `listing`). Every route here
//! is open to any caller the collection's or the document's grants admit, not only the
//! database owner.

use std::collections::HashMap;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value, json};
use sqlx::PgConnection;

use super::model::*;
use super::repo::{self, CollectionRow, DocumentRow, Lock, NewDocument, Visible};
use super::routes::database_id;
use super::schema::{self, Mode};
use super::{DatabaseState, begin, db_error, events, listing};
use crate::platform::Platform;
use crate::platform::error::{ApiError, FieldError, Problem};
use crate::platform::grants::{Access, Caller, ItemPermissions};
use crate::platform::http::{Endpoint, Routes};

pub fn configure(routes: &mut Routes) {
    const BASE: &str = "/{db}/collections/{collection}/documents";
    routes
        .add(
            Endpoint::at(BASE)
                .get(listing::list_documents)
                .post(create_document),
        )
        .add(Endpoint::at(&format!("{BASE}/bulk")).post(bulk_create))
        .add(Endpoint::at(&format!("{BASE}/query")).post(listing::query_documents))
        .add(Endpoint::at(&format!("{BASE}/aggregate")).post(listing::aggregate))
        .add(
            Endpoint::at(&format!("{BASE}/{{id}}"))
                .get(get_document)
                .put(replace_document)
                .patch(update_document)
                .delete(delete_document),
        )
        .add(Endpoint::at("/{db}/batch").post(batch));
}

const RESERVED_IDS: &[&str] = &["bulk", "query", "aggregate"];

/// A collection as one caller sees it.
pub struct Target {
    pub c: CollectionRow,
    pub access: Access,
}

impl Target {
    pub fn visible<'a>(&'a self, caller: &'a Caller) -> Visible<'a> {
        Visible {
            collection: &self.c,
            access: &self.access,
            roles: &caller.roles,
        }
    }
}

fn not_found() -> ApiError {
    ApiError::not_found("No such document.")
}

pub async fn target(
    conn: &mut PgConnection,
    caller: &Caller,
    db: &str,
    key: &str,
    lock: Lock,
) -> Result<Target, ApiError> {
    let c = repo::collection(conn, database_id(db)?, key, lock)
        .await?
        .ok_or_else(|| ApiError::not_found("No such collection."))?;
    let access = Access::new(caller, c.owner_id, &c.permissions.0, c.document_security);
    if !access.visible() {
        return Err(ApiError::not_found("No such collection."));
    }
    Ok(Target { c, access })
}

fn etag(row: &DocumentRow) -> String {
    format!("\"{}.{}\"", row.seq, row.version)
}

pub fn response(
    c: &CollectionRow,
    row: DocumentRow,
    select: Option<&[String]>,
) -> DocumentResponse {
    let permissions = row.permissions();
    let mut data = row.data.0;
    if let Some(keys) = select {
        data.retain(|k, _| keys.contains(k));
    }
    DocumentResponse {
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

fn with_etag(mut res: HttpResponse, row_etag: &str) -> HttpResponse {
    if let Ok(v) = HeaderValue::from_str(row_etag) {
        res.headers_mut().insert(header::ETAG, v);
    }
    res
}

fn valid_document_id(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && id.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !RESERVED_IDS.contains(&id)
}

fn too_large(state: &DatabaseState, data: &Map<String, Value>) -> Option<ApiError> {
    let size = serde_json::to_vec(data)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    (size > state.settings.max_document_bytes).then(|| {
        ApiError::new(
            actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
            "document_too_large",
        )
        .detail(format!(
            "The document is {size} bytes; the most allowed is {}.",
            state.settings.max_document_bytes
        ))
    })
}

/// Checks a new document and shapes it for insertion; field paths start with `prefix`.
fn prepare_new(
    state: &DatabaseState,
    caller: &Caller,
    t: &Target,
    req: CreateDocumentRequest,
    prefix: &str,
) -> Result<NewDocument, ApiError> {
    let mut errors: Vec<FieldError> = Vec::new();
    let id = req.id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    if !valid_document_id(&id) {
        errors.push(FieldError {
            field: format!("{prefix}id"),
            code: "id".into(),
            message: "must be 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit (and not bulk, query or aggregate)".into(),
        });
    }
    let permissions = req
        .permissions
        .unwrap_or_else(|| ItemPermissions::owner(caller.user_id));
    errors.extend(permissions.check(&format!("{prefix}permissions.")));
    let data = match schema::check_document(
        &t.c.attributes.0,
        &req.data,
        Mode::Whole,
        &format!("{prefix}data."),
    ) {
        Ok(data) => Some(data),
        Err(e) => {
            errors.extend(e);
            None
        }
    };
    match data {
        Some(data) if errors.is_empty() => match too_large(state, &data) {
            Some(e) => Err(e),
            None => Ok(NewDocument {
                id,
                data,
                owner: caller.user_id,
                permissions,
            }),
        },
        _ => Err(ApiError::validation(errors)),
    }
}

fn may_create(t: &Target) -> Result<(), ApiError> {
    if t.access.create {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "You may not create documents in this collection.",
        ))
    }
}

fn document_event(
    kind: &str,
    caller: &Caller,
    c: &CollectionRow,
    doc: &DocumentResponse,
) -> (String, String, Value) {
    let mut payload = json!({
        "user_id": c.owner_id,
        "actor_id": caller.user_id,
        "database_id": c.database_id,
        "collection": c.key,
        "document_id": doc.id,
    });
    if kind != "baas.document.deleted" {
        payload["document"] = serde_json::to_value(doc).unwrap_or(Value::Null);
    }
    (kind.to_owned(), format!("{}:{}", c.id, doc.id), payload)
}

async fn emit_document(
    conn: &mut PgConnection,
    kind: &str,
    caller: &Caller,
    c: &CollectionRow,
    doc: &DocumentResponse,
) -> Result<(), ApiError> {
    let (kind, id, payload) = document_event(kind, caller, c, doc);
    events::emit(conn, &kind, id, payload).await
}

async fn insert(
    conn: &mut PgConnection,
    caller: &Caller,
    t: &Target,
    docs: &[NewDocument],
) -> Result<Vec<DocumentRow>, ApiError> {
    let rows = repo::insert_documents(conn, &t.c, docs)
        .await
        .map_err(|e| db_error(e, &t.c))?;
    let events: Vec<_> = rows
        .iter()
        .map(|row| {
            document_event(
                "baas.document.created",
                caller,
                &t.c,
                &response(&t.c, row.clone(), None),
            )
        })
        .collect();
    events::emit_all(conn, &events).await?;
    Ok(rows)
}

/// Create a document. Without `permissions` only its creator (and the database owner) may
/// read, change or delete it.
#[utoipa::path(
    post, path = "/{db}/collections/{collection}/documents", tag = "documents", request_body = CreateDocumentRequest,
    security((), ("bearer" = []), ("api_key" = [])),
    params(("db" = Uuid, Path), ("collection" = String, Path)),
    responses(
        (status = 201, body = DocumentResponse, headers(("ETag" = String))),
        (status = 403, description = "The collection does not grant create to the caller", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`document_exists` (the id is taken) or `unique_violation`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The document is over the size limit", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "One entry per attribute that breaks the schema", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_document(
    platform: web::Data<Platform>,
    state: web::Data<DatabaseState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: web::Json<CreateDocumentRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require_scope("databases.write")?;
    let mut tx = begin(&platform, &state).await?;
    let t = target(&mut tx, &caller, &path.0, &path.1, Lock::Share).await?;
    may_create(&t)?;
    let doc = prepare_new(&state, &caller, &t, body.into_inner(), "")?;
    let row = insert(&mut tx, &caller, &t, &[doc]).await?.remove(0);
    tx.commit().await?;
    let tag = etag(&row);
    Ok(with_etag(
        HttpResponse::Created().json(response(&t.c, row, None)),
        &tag,
    ))
}

/// Create many documents at once, all or none.
#[utoipa::path(
    post, path = "/{db}/collections/{collection}/documents/bulk", tag = "documents", request_body = BulkCreateRequest,
    security((), ("bearer" = []), ("api_key" = [])),
    params(("db" = Uuid, Path), ("collection" = String, Path)),
    responses(
        (status = 201, body = BulkCreateResponse),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Entries name the document: `documents[3].data.title`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn bulk_create(
    platform: web::Data<Platform>,
    state: web::Data<DatabaseState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: web::Json<BulkCreateRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require_scope("databases.write")?;
    let docs = body.into_inner().documents;
    if docs.is_empty() || docs.len() > state.settings.max_bulk_documents {
        return Err(ApiError::validation(vec![FieldError {
            field: "documents".into(),
            code: "length".into(),
            message: format!(
                "must hold between 1 and {} documents",
                state.settings.max_bulk_documents
            ),
        }]));
    }
    let mut tx = begin(&platform, &state).await?;
    let t = target(&mut tx, &caller, &path.0, &path.1, Lock::Share).await?;
    may_create(&t)?;
    let mut prepared = Vec::with_capacity(docs.len());
    let mut errors = Vec::new();
    for (i, req) in docs.into_iter().enumerate() {
        match prepare_new(&state, &caller, &t, req, &format!("documents[{i}].")) {
            Ok(doc) => prepared.push(doc),
            // prepare_new names the fields `documents[i]....` already.
            Err(e) if e.status().as_u16() == 422 => errors.extend(e.problem().errors),
            Err(e) => return Err(e.within(&format!("documents[{i}]"))),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let rows = insert(&mut tx, &caller, &t, &prepared).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(BulkCreateResponse {
        documents: rows.into_iter().map(|r| response(&t.c, r, None)).collect(),
    }))
}

/// Get a document.
#[utoipa::path(
    get, path = "/{db}/collections/{collection}/documents/{id}", tag = "documents",
    security((), ("bearer" = []), ("api_key" = [])),
    params(("db" = Uuid, Path), ("collection" = String, Path), ("id" = String, Path),
        ("If-None-Match" = Option<String>, Header, description = "The document's ETag from before: 304 while it is unchanged")),
    responses(
        (status = 200, body = DocumentResponse, headers(("ETag" = String))),
        (status = 304, description = "If-None-Match matched the current version"),
        (status = 404, description = "No such document, or one the caller may not read", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_document(
    req: HttpRequest,
    platform: web::Data<Platform>,
    state: web::Data<DatabaseState>,
    caller: Caller,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    caller.require_scope("databases.read")?;
    let (db, collection, id) = path.into_inner();
    let mut tx = begin(&platform, &state).await?;
    let t = target(&mut tx, &caller, &db, &collection, Lock::None).await?;
    let row = repo::document(&mut tx, &t.c, &id, false)
        .await?
        .ok_or_else(not_found)?;
    if !t.access.allows(t.access.read_all, &caller, &row.perm_read) {
        return Err(not_found());
    }
    tx.commit().await?;
    let tag = etag(&row);
    if req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim() == tag))
    {
        return Ok(with_etag(HttpResponse::NotModified().finish(), &tag));
    }
    Ok(with_etag(
        HttpResponse::Ok().json(response(&t.c, row, None)),
        &tag,
    ))
}

/// What `If-Match` asks for: a version, an exact ETag, or any existing document.
#[derive(Debug, Clone, Copy)]
enum Precondition {
    Any,
    Version(i64),
    Exact(i64, i64),
}

fn precondition(req: &HttpRequest) -> Result<Option<Precondition>, ApiError> {
    let Some(raw) = req.headers().get(header::IF_MATCH) else {
        return Ok(None);
    };
    let bad = || {
        ApiError::bad_request(
            "invalid_if_match",
            "If-Match takes the document's ETag or its $version.",
        )
    };
    let raw = raw.to_str().map_err(|_| bad())?.trim();
    if raw == "*" {
        return Ok(Some(Precondition::Any));
    }
    let tag = raw.trim_start_matches("W/").trim_matches('"');
    Ok(Some(match tag.split_once('.') {
        Some((seq, version)) => Precondition::Exact(
            seq.parse().map_err(|_| bad())?,
            version.parse().map_err(|_| bad())?,
        ),
        None => Precondition::Version(tag.parse().map_err(|_| bad())?),
    }))
}

fn check_precondition(row: &DocumentRow, p: Option<Precondition>) -> Result<(), ApiError> {
    let holds = match p {
        None | Some(Precondition::Any) => true,
        Some(Precondition::Version(v)) => v == row.version,
        Some(Precondition::Exact(seq, v)) => seq == row.seq && v == row.version,
    };
    if holds {
        Ok(())
    } else {
        Err(ApiError::new(
            actix_web::http::StatusCode::PRECONDITION_FAILED,
            "version_mismatch",
        )
        .detail(format!(
            "The document is at version {}; read it again and reapply the change.",
            row.version
        )))
    }
}

/// The document locked for a change the caller may make (404 when they may not even read
/// it, 403 when they may read but not make this change).
async fn lock_for(
    conn: &mut PgConnection,
    caller: &Caller,
    t: &Target,
    id: &str,
    delete: bool,
) -> Result<DocumentRow, ApiError> {
    let row = repo::document(conn, &t.c, id, true)
        .await?
        .ok_or_else(not_found)?;
    t.access
        .may_change(caller, row.grants(), delete)
        .map_err(|d| d.into_error(not_found(), "document", delete))?;
    Ok(row)
}

/// A replace (`partial: false`) or an update of one document.
struct Change<'a> {
    id: &'a str,
    body: UpdateDocumentRequest,
    partial: bool,
    pre: Option<Precondition>,
}

async fn change(
    conn: &mut PgConnection,
    state: &DatabaseState,
    caller: &Caller,
    t: &Target,
    ch: Change<'_>,
) -> Result<DocumentRow, ApiError> {
    let Change {
        id,
        body,
        partial,
        pre,
    } = ch;
    let row = lock_for(conn, caller, t, id, false).await?;
    check_precondition(&row, pre)?;
    let data = match (body.data, partial) {
        (Some(Value::Object(patch)), true) => {
            let mut merged = row.data.0.clone();
            merged.extend(patch);
            Value::Object(merged)
        }
        (Some(other), _) => other,
        (None, true) => Value::Object(row.data.0.clone()),
        (None, false) => Value::Object(Map::new()),
    };
    let mut errors = Vec::new();
    let permissions = body.permissions.unwrap_or_else(|| row.permissions());
    errors.extend(permissions.check("permissions."));
    let data = match schema::check_document(&t.c.attributes.0, &data, Mode::Whole, "data.") {
        Ok(d) => d,
        Err(e) => {
            errors.extend(e);
            Map::new()
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    if let Some(e) = too_large(state, &data) {
        return Err(e);
    }
    let row = repo::update_document(conn, &t.c, row.seq, &data, &permissions)
        .await
        .map_err(|e| db_error(e, &t.c))?;
    emit_document(
        conn,
        "baas.document.updated",
        caller,
        &t.c,
        &response(&t.c, row.clone(), None),
    )
    .await?;
    Ok(row)
}

async fn remove(
    conn: &mut PgConnection,
    caller: &Caller,
    t: &Target,
    id: &str,
    pre: Option<Precondition>,
) -> Result<DocumentRow, ApiError> {
    let row = lock_for(conn, caller, t, id, true).await?;
    check_precondition(&row, pre)?;
    repo::delete_document(conn, &t.c, row.seq).await?;
    emit_document(
        conn,
        "baas.document.deleted",
        caller,
        &t.c,
        &response(&t.c, row.clone(), None),
    )
    .await?;
    Ok(row)
}

async fn write(
    req: HttpRequest,
    platform: web::Data<Platform>,
    state: web::Data<DatabaseState>,
    caller: Caller,
    path: web::Path<(String, String, String)>,
    body: web::Json<UpdateDocumentRequest>,
    partial: bool,
) -> Result<HttpResponse, ApiError> {
    caller.require_scope("databases.write")?;
    let pre = precondition(&req)?;
    let (db, collection, id) = path.into_inner();
    let mut tx = begin(&platform, &state).await?;
    let t = target(&mut tx, &caller, &db, &collection, Lock::Share).await?;
    let row = change(
        &mut tx,
        &state,
        &caller,
        &t,
        Change {
            id: &id,
            body: body.into_inner(),
            partial,
            pre,
        },
    )
    .await?;
    tx.commit().await?;
    let tag = etag(&row);
    Ok(with_etag(
        HttpResponse::Ok().json(response(&t.c, row, None)),
        &tag,
    ))
}

/// Replace a document's attributes (and, if given, its grants).
#[utoipa::path(
    put, path = "/{db}/collections/{collection}/documents/{id}", tag = "documents", request_body = UpdateDocumentRequest,
    security((), ("bearer" = []), ("api_key" = [])),
    params(("db" = Uuid, Path), ("collection" = String, Path), ("id" = String, Path),
        ("If-Match" = Option<String>, Header, description = "The ETag or `$version` the document must still have")),
    responses(
        (status = 200, body = DocumentResponse, headers(("ETag" = String))),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The document changed since that version", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn replace_document(
    req: HttpRequest,
    platform: web::Data<Platform>,
    state: web::Data<DatabaseState>,
    caller: Caller,
    path: web::Path<(String, String, String)>,
    body: web::Json<UpdateDocumentRequest>,
) -> Result<HttpResponse, ApiError> {
    write(req, platform, state, caller, path, body, false).await
}

/// Change some attributes of a document; the result must still fit the schema.
#[utoipa::path(
    patch, path = "/{db}/collections/{collection}/documents/{id}", tag = "documents", request_body = UpdateDocumentRequest,
    security((), ("bearer" = []), ("api_key" = [])),
    params(("db" = Uuid, Path), ("collection" = String, Path), ("id" = String, Path),
        ("If-Match" = Option<String>, Header, description = "The ETag or `$version` the document must still have")),
    responses(
        (status = 200, body = DocumentResponse, headers(("ETag" = String))),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn update_document(
    req: HttpRequest,
    platform: web::Data<Platform>,
    state: web::Data<DatabaseState>,
    caller: Caller,
    path: web::Path<(String, String, String)>,
    body: web::Json<UpdateDocumentRequest>,
) -> Result<HttpResponse, ApiError> {
    write(req, platform, state, caller, path, body, true).await
}

/// Delete a document.
#[utoipa::path(
    delete, path = "/{db}/collections/{collection}/documents/{id}", tag = "documents",
    security((), ("bearer" = []), ("api_key" = [])),
    params(("db" = Uuid, Path), ("collection" = String, Path), ("id" = String, Path),
        ("If-Match" = Option<String>, Header, description = "The ETag or `$version` the document must still have")),
    responses(
        (status = 204),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete_document(
    req: HttpRequest,
    platform: web::Data<Platform>,
    state: web::Data<DatabaseState>,
    caller: Caller,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    caller.require_scope("databases.write")?;
    let pre = precondition(&req)?;
    let (db, collection, id) = path.into_inner();
    let mut tx = begin(&platform, &state).await?;
    let t = target(&mut tx, &caller, &db, &collection, Lock::Share).await?;
    remove(&mut tx, &caller, &t, &id, pre).await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Apply up to `max_batch_operations` writes across the database's collections in one
/// transaction: all of them or, if one fails, none.
#[utoipa::path(
    post, path = "/{db}/batch", tag = "documents", request_body = BatchRequest,
    security((), ("bearer" = []), ("api_key" = [])),
    params(("db" = Uuid, Path)),
    responses(
        (status = 200, description = "Every operation applied", body = BatchResponse),
        (status = 400, description = "Too many or no operations", body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Nothing applied; entries name the operation, e.g. `operations[2].data.title`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn batch(
    platform: web::Data<Platform>,
    state: web::Data<DatabaseState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<BatchRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require_scope("databases.write")?;
    let ops = body.into_inner().operations;
    if ops.is_empty() || ops.len() > state.settings.max_batch_operations {
        return Err(ApiError::bad_request(
            "invalid_batch",
            format!(
                "operations: between 1 and {} per batch",
                state.settings.max_batch_operations
            ),
        ));
    }
    let mut tx = begin(&platform, &state).await?;
    let mut targets: HashMap<String, Target> = HashMap::new();
    let mut results = Vec::with_capacity(ops.len());
    for (index, op) in ops.into_iter().enumerate() {
        let prefix = format!("operations[{index}]");
        let result = run_operation(&mut tx, &state, &caller, &path, &mut targets, op)
            .await
            .map_err(|e| e.within(&prefix))?;
        results.push(BatchResult {
            index,
            status: result.0,
            document: result.1,
        });
    }
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(BatchResponse { results }))
}

async fn run_operation(
    conn: &mut PgConnection,
    state: &DatabaseState,
    caller: &Caller,
    db: &str,
    targets: &mut HashMap<String, Target>,
    op: BatchOperation,
) -> Result<(u16, Option<DocumentResponse>), ApiError> {
    if !targets.contains_key(&op.collection) {
        let t = target(conn, caller, db, &op.collection, Lock::Share).await?;
        targets.insert(op.collection.clone(), t);
    }
    let t = &targets[&op.collection];
    let pre = op.if_match.map(Precondition::Version);
    let id = || {
        op.id
            .clone()
            .ok_or_else(|| ApiError::bad_request("invalid_batch", "id is required for this action"))
    };
    Ok(match op.action {
        BatchAction::Create => {
            may_create(t)?;
            let req = CreateDocumentRequest {
                id: op.id.clone(),
                data: op.data.clone().unwrap_or(Value::Null),
                permissions: op.permissions.clone(),
            };
            let doc = prepare_new(state, caller, t, req, "")?;
            let row = insert(conn, caller, t, &[doc]).await?.remove(0);
            (201, Some(response(&t.c, row, None)))
        }
        BatchAction::Replace | BatchAction::Update => {
            let body = UpdateDocumentRequest {
                data: op.data.clone(),
                permissions: op.permissions.clone(),
            };
            let id = id()?;
            let row = change(
                conn,
                state,
                caller,
                t,
                Change {
                    id: &id,
                    body,
                    partial: op.action == BatchAction::Update,
                    pre,
                },
            )
            .await?;
            (200, Some(response(&t.c, row, None)))
        }
        BatchAction::Delete => {
            remove(conn, caller, t, &id()?, pre).await?;
            (204, None)
        }
    })
}
