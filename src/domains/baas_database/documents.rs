//! Documents: listed, created (one or many), read, replaced, updated, deleted, and batches
//! of writes applied all or none (queries and aggregations are in `queries`). Every route
//! here is open to any caller the collection's or the document's grants admit, not only
//! the database owner.

use std::collections::HashMap;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value};
use sqlx::PgConnection;
use utoipa::OpenApi;

use super::access::{self, Target};
use super::cache::CollectionCache;
use super::error::DatabaseError;
use super::events::{DocumentCreated, DocumentDeleted, DocumentUpdated};
use super::model::*;
use super::query::split_list;
use super::repo::{self, DocumentRow, Lock, NewDocument};
use super::schema::{self, Mode};
use super::settings::DatabaseSettings;
use crate::platform::Platform;
use crate::platform::error::FieldError;
use crate::platform::error::responses::{
    BadRequest, Conflict, Forbidden, Invalid, NotFound, PreconditionFailed, QueryTimeout, TooLarge,
    Unauthorized,
};
use crate::platform::events::{self, RelayWaker};
use crate::platform::grants::{Caller, Denied, ItemPermissions};
use crate::platform::http::{Endpoint, Routes};

#[derive(OpenApi)]
#[openapi(
    paths(
        list_documents,
        create_document,
        bulk_create,
        get_document,
        replace_document,
        update_document,
        delete_document,
        batch,
    ),
    tags((name = "documents", description = "Documents, queries, aggregations and batches, under the collections' and documents' grants"))
)]
pub struct DocumentsApi;

/// A collection's documents, the hottest first: a document by id (which leaves `bulk`,
/// `query` and `aggregate` to the routes after it), then the list; the domain mounts these
/// before everything else.
pub fn configure(routes: &mut Routes) {
    routes
        .add(
            Endpoint::at(&format!("{DOCUMENTS}/{{id}}"))
                .unless_last_segment_is(RESERVED_IDS)
                .get(get_document)
                .put(replace_document)
                .patch(update_document)
                .delete(delete_document),
        )
        .add(
            Endpoint::at(DOCUMENTS)
                .get(list_documents)
                .post(create_document),
        )
        .add(Endpoint::at(&format!("{DOCUMENTS}/bulk")).post(bulk_create))
        .add(Endpoint::at("/{db}/batch").post(batch));
}

/// The path of a collection's documents.
const DOCUMENTS: &str = "/{db}/collections/{collection}/documents";

/// Document ids that would read as the literal segments of the routes above.
const RESERVED_IDS: &[&str] = &["bulk", "query", "aggregate"];

fn etag(row: &DocumentRow) -> String {
    format!("\"{}.{}\"", row.seq, row.version)
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

fn check_size(settings: &DatabaseSettings, data: &Map<String, Value>) -> Result<(), DatabaseError> {
    let size = serde_json::to_vec(data)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    let max = settings.max_document_bytes;
    if size > max {
        Err(DatabaseError::DocumentTooLarge { size, max })
    } else {
        Ok(())
    }
}

/// Checks a new document and shapes it for insertion; field paths start with `prefix`.
fn prepare_new(
    settings: &DatabaseSettings,
    caller: &Caller,
    t: &Target,
    req: CreateDocumentRequest,
    prefix: &str,
) -> Result<NewDocument, DatabaseError> {
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
        Ok(data) => data,
        Err(e) => {
            errors.extend(e);
            Map::new()
        }
    };
    DatabaseError::check(errors)?;
    check_size(settings, &data)?;
    Ok(NewDocument {
        id,
        data,
        owner: caller.user_id,
        permissions,
    })
}

fn may_create(t: &Target) -> Result<(), DatabaseError> {
    if t.access.create {
        Ok(())
    } else {
        Err(DatabaseError::MayNotCreate)
    }
}

/// Inserts the documents with their `baas.document.created` events, in one statement each.
async fn insert(
    conn: &mut PgConnection,
    caller: &Caller,
    t: &Target,
    docs: &[NewDocument],
) -> Result<Vec<DocumentRow>, DatabaseError> {
    let rows = repo::insert_documents(conn, &t.c, docs)
        .await
        .map_err(|e| DatabaseError::in_collection(e, &t.c))?;
    let created: Vec<_> = rows
        .iter()
        .map(|row| {
            DocumentCreated::new(caller, &t.c, DocumentResponse::new(&t.c, row.clone(), None))
        })
        .collect();
    events::publish_all(conn, &created).await?;
    Ok(rows)
}

/// List documents: filter, sort, select, and page after (or before) a document.
#[utoipa::path(
    get, path = "/{db}/collections/{collection}/documents", tag = "documents",
    security((), ("bearer" = []), ("api_key" = [])),
    params(("db" = DatabaseId, Path), ("collection" = String, Path), ListParams),
    responses(
        (status = 200, body = DocumentPage),
        BadRequest, Unauthorized, NotFound,
        QueryTimeout,
    )
)]
pub async fn list_documents(
    platform: web::Data<Platform>,
    settings: web::Data<DatabaseSettings>,
    cache: web::Data<CollectionCache>,
    caller: Caller,
    path: web::Path<(DatabaseId, String)>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, DatabaseError> {
    let p = params.into_inner();
    let filter = p
        .filter
        .as_deref()
        .map(serde_json::from_str::<Value>)
        .transpose()
        .map_err(|e| DatabaseError::InvalidQuery(format!("filter: not JSON ({e})")))?;
    let q = QueryRequest {
        filter,
        sort: split_list(p.sort.as_deref()),
        select: split_list(p.select.as_deref()),
        limit: p.limit,
        after: p.after,
        before: p.before,
        total: p.total.unwrap_or(false),
    };
    let (db, collection) = path.into_inner();
    let page =
        access::find_documents(&platform, &cache, &settings, &caller, (db, &collection), q).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// Create a document. Without `permissions` only its creator (and the database owner) may
/// read, change or delete it. 403 when the collection does not grant create to the caller;
/// 409 `document_exists` (the id is taken) or `unique_violation`; 413 over the size limit;
/// 422 with one entry per attribute that breaks the schema.
#[utoipa::path(
    post, path = "/{db}/collections/{collection}/documents", tag = "documents", request_body = CreateDocumentRequest,
    security((), ("bearer" = []), ("api_key" = [])),
    params(("db" = DatabaseId, Path), ("collection" = String, Path)),
    responses(
        (status = 201, body = DocumentResponse, headers(("ETag" = String))),
        Unauthorized, Forbidden, NotFound, Conflict, TooLarge, Invalid,
    )
)]
pub async fn create_document(
    platform: web::Data<Platform>,
    settings: web::Data<DatabaseSettings>,
    cache: web::Data<CollectionCache>,
    relays: web::Data<RelayWaker>,
    caller: Caller,
    path: web::Path<(DatabaseId, String)>,
    body: web::Json<CreateDocumentRequest>,
) -> Result<HttpResponse, DatabaseError> {
    caller.require_scope("databases.write")?;
    let (db, collection) = path.into_inner();
    let body = body.into_inner();
    let mut attempts = access::Attempts::default();
    let (t, rows) = loop {
        let t = attempts
            .target(&platform.db, &cache, &caller, (db, &collection))
            .await?;
        // Checked against the cached schema, which the insert's statement confirms is
        // current (else this runs again against the stored one); a refusal is checked
        // against the stored one before it is answered.
        let doc = match may_create(&t)
            .and_then(|()| prepare_new(&settings, &caller, &t, body.clone(), ""))
        {
            Ok(doc) => doc,
            Err(e) => {
                attempts.refused(e)?;
                continue;
            }
        };
        if let repo::Fresh::Current(rows) =
            create_all(&platform.db, &relays, &caller, &t, vec![doc]).await?
        {
            break (t, rows);
        }
    };
    created(&t, rows)
}

/// Inserts the documents with their `baas.document.created` events in one statement (one
/// round trip, no transaction), if the cached collection `t` is still current.
async fn create_all(
    db: &sqlx::PgPool,
    relays: &RelayWaker,
    caller: &Caller,
    t: &Target,
    docs: Vec<NewDocument>,
) -> Result<repo::Fresh<Vec<DocumentRow>>, DatabaseError> {
    // What PostgreSQL stores (microseconds), so the response and the event say the same.
    let at = chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6);
    let rows: Vec<DocumentRow> = docs
        .into_iter()
        .map(|d| DocumentRow {
            seq: 0,
            id: d.id,
            data: sqlx::types::Json(d.data),
            owner_id: d.owner,
            perm_read: d.permissions.read,
            perm_update: d.permissions.update,
            perm_delete: d.permissions.delete,
            version: 1,
            created_at: at,
            updated_at: at,
        })
        .collect();
    let created: Vec<_> = rows
        .iter()
        .map(|row| {
            DocumentCreated::new(caller, &t.c, DocumentResponse::new(&t.c, row.clone(), None))
        })
        .collect();
    let events = events::envelopes(&created)?;
    let seqs = match repo::create_documents(db, &t.c, &rows, &events)
        .await
        .map_err(|e| DatabaseError::in_collection(e, &t.c))?
    {
        repo::Fresh::Current(seqs) => seqs,
        repo::Fresh::Stale => return Ok(repo::Fresh::Stale),
    };
    relays.wake();
    Ok(repo::Fresh::Current(
        rows.into_iter()
            .zip(seqs)
            .map(|(row, seq)| DocumentRow { seq, ..row })
            .collect(),
    ))
}

/// The one document a create made, with its ETag.
fn created(t: &Target, rows: Vec<DocumentRow>) -> Result<HttpResponse, DatabaseError> {
    let row = rows
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("an insert returned no row"))?;
    let tag = etag(&row);
    Ok(with_etag(
        HttpResponse::Created().json(DocumentResponse::new(&t.c, row, None)),
        &tag,
    ))
}

/// Create many documents at once, all or none. 422 entries name the document:
/// `documents[3].data.title`.
#[utoipa::path(
    post, path = "/{db}/collections/{collection}/documents/bulk", tag = "documents", request_body = BulkCreateRequest,
    security((), ("bearer" = []), ("api_key" = [])),
    params(("db" = DatabaseId, Path), ("collection" = String, Path)),
    responses(
        (status = 201, body = BulkCreateResponse),
        Unauthorized, Forbidden, NotFound, Conflict, TooLarge, Invalid,
    )
)]
pub async fn bulk_create(
    platform: web::Data<Platform>,
    settings: web::Data<DatabaseSettings>,
    cache: web::Data<CollectionCache>,
    relays: web::Data<RelayWaker>,
    caller: Caller,
    path: web::Path<(DatabaseId, String)>,
    body: web::Json<BulkCreateRequest>,
) -> Result<HttpResponse, DatabaseError> {
    caller.require_scope("databases.write")?;
    let docs = body.into_inner().documents;
    if docs.is_empty() || docs.len() > settings.max_bulk_documents {
        DatabaseError::check(vec![FieldError {
            field: "documents".into(),
            code: "length".into(),
            message: format!(
                "must hold between 1 and {} documents",
                settings.max_bulk_documents
            ),
        }])?;
    }
    let (db, collection) = path.into_inner();
    let mut attempts = access::Attempts::default();
    let (t, rows) = loop {
        let t = attempts
            .target(&platform.db, &cache, &caller, (db, &collection))
            .await?;
        let prepared = match prepare_bulk(&settings, &caller, &t, &docs) {
            Ok(prepared) => prepared,
            Err(e) => {
                attempts.refused(e)?;
                continue;
            }
        };
        if let repo::Fresh::Current(rows) =
            create_all(&platform.db, &relays, &caller, &t, prepared).await?
        {
            break (t, rows);
        }
    };
    Ok(HttpResponse::Created().json(BulkCreateResponse {
        documents: rows
            .into_iter()
            .map(|r| DocumentResponse::new(&t.c, r, None))
            .collect(),
    }))
}

/// The documents of a bulk create checked against the collection; 422 entries name the
/// document.
fn prepare_bulk(
    settings: &DatabaseSettings,
    caller: &Caller,
    t: &Target,
    docs: &[CreateDocumentRequest],
) -> Result<Vec<NewDocument>, DatabaseError> {
    may_create(t)?;
    let mut prepared = Vec::with_capacity(docs.len());
    let mut errors = Vec::new();
    for (i, req) in docs.iter().enumerate() {
        match prepare_new(
            settings,
            caller,
            t,
            req.clone(),
            &format!("documents[{i}]."),
        ) {
            Ok(doc) => prepared.push(doc),
            // prepare_new names the fields `documents[i]....` already.
            Err(DatabaseError::Platform(e)) if e.status().as_u16() == 422 => {
                errors.extend(e.problem().errors)
            }
            Err(e) => return Err(e.within(&format!("documents[{i}]"))),
        }
    }
    DatabaseError::check(errors)?;
    Ok(prepared)
}

/// Get a document; 404 also for one the caller may not read.
#[utoipa::path(
    get, path = "/{db}/collections/{collection}/documents/{id}", tag = "documents",
    security((), ("bearer" = []), ("api_key" = [])),
    params(("db" = DatabaseId, Path), ("collection" = String, Path), ("id" = String, Path),
        ("If-None-Match" = Option<String>, Header, description = "The document's ETag from before: 304 while it is unchanged")),
    responses(
        (status = 200, body = DocumentResponse, headers(("ETag" = String))),
        (status = 304, description = "If-None-Match matched the current version"),
        Unauthorized, NotFound,
    )
)]
pub async fn get_document(
    req: HttpRequest,
    platform: web::Data<Platform>,
    cache: web::Data<CollectionCache>,
    caller: Caller,
    path: web::Path<(DatabaseId, String, String)>,
) -> Result<HttpResponse, DatabaseError> {
    caller.require_scope("databases.read")?;
    let (db, collection, id) = path.into_inner();
    // One statement: the collection comes from the cache, checked in the statement's WHERE
    // along with the caller's grants (the pool's connections carry the statement timeout).
    let mut attempts = access::Attempts::default();
    let (t, row) = loop {
        let t = attempts
            .target(&platform.db, &cache, &caller, (db, &collection))
            .await?;
        let found = repo::readable_document(&platform.db, &t.visible(&caller), &id).await?;
        if let repo::Fresh::Current(row) = found {
            break (t, row);
        }
    };
    let row = row.ok_or(DatabaseError::DocumentNotFound)?;
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
        HttpResponse::Ok().json(DocumentResponse::new(&t.c, row, None)),
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

fn precondition(req: &HttpRequest) -> Result<Option<Precondition>, DatabaseError> {
    let Some(raw) = req.headers().get(header::IF_MATCH) else {
        return Ok(None);
    };
    let raw = raw
        .to_str()
        .map_err(|_| DatabaseError::InvalidIfMatch)?
        .trim();
    if raw == "*" {
        return Ok(Some(Precondition::Any));
    }
    let tag = raw.trim_start_matches("W/").trim_matches('"');
    let number = |s: &str| s.parse::<i64>().map_err(|_| DatabaseError::InvalidIfMatch);
    Ok(Some(match tag.split_once('.') {
        Some((seq, version)) => Precondition::Exact(number(seq)?, number(version)?),
        None => Precondition::Version(number(tag)?),
    }))
}

fn check_precondition(row: &DocumentRow, p: Option<Precondition>) -> Result<(), DatabaseError> {
    let holds = match p {
        None | Some(Precondition::Any) => true,
        Some(Precondition::Version(v)) => v == row.version,
        Some(Precondition::Exact(seq, v)) => seq == row.seq && v == row.version,
    };
    if holds {
        Ok(())
    } else {
        Err(DatabaseError::VersionMismatch(row.version))
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
) -> Result<DocumentRow, DatabaseError> {
    let row = repo::document(conn, &t.c, id, true)
        .await?
        .ok_or(DatabaseError::DocumentNotFound)?;
    t.access
        .may_change(caller, row.grants(), delete)
        .map_err(|denied| match denied {
            Denied::Hidden => DatabaseError::DocumentNotFound,
            Denied::Forbidden => DatabaseError::MayNot(if delete { "delete" } else { "change" }),
        })?;
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
    settings: &DatabaseSettings,
    caller: &Caller,
    t: &Target,
    ch: Change<'_>,
) -> Result<DocumentRow, DatabaseError> {
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
    if let Some(p) = &body.permissions
        && !p.same_as(&row.permissions())
        && !t.access.may_regrant(caller, row.owner_id)
    {
        return Err(DatabaseError::MayNotRegrant);
    }
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
    DatabaseError::check(errors)?;
    check_size(settings, &data)?;
    let row = repo::update_document(conn, &t.c, row.seq, &data, &permissions)
        .await
        .map_err(|e| DatabaseError::in_collection(e, &t.c))?;
    let updated =
        DocumentUpdated::new(caller, &t.c, DocumentResponse::new(&t.c, row.clone(), None));
    events::publish(conn, &updated).await?;
    Ok(row)
}

async fn remove(
    conn: &mut PgConnection,
    caller: &Caller,
    t: &Target,
    id: &str,
    pre: Option<Precondition>,
) -> Result<(), DatabaseError> {
    let row = lock_for(conn, caller, t, id, true).await?;
    check_precondition(&row, pre)?;
    repo::delete_document(conn, &t.c, row.seq).await?;
    events::publish(conn, &DocumentDeleted::new(caller, &t.c, &row.id)).await?;
    Ok(())
}

async fn write(
    req: HttpRequest,
    platform: web::Data<Platform>,
    settings: web::Data<DatabaseSettings>,
    caller: Caller,
    path: web::Path<(DatabaseId, String, String)>,
    body: web::Json<UpdateDocumentRequest>,
    partial: bool,
) -> Result<HttpResponse, DatabaseError> {
    caller.require_scope("databases.write")?;
    let pre = precondition(&req)?;
    let (db, collection, id) = path.into_inner();
    let mut tx = access::begin(&platform.db, &settings).await?;
    let t = access::target(&mut tx, &caller, db, &collection, Lock::Share).await?;
    let row = change(
        &mut tx,
        &settings,
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
    if !readable(&t, &caller, &row) {
        return Ok(HttpResponse::NoContent().finish());
    }
    let tag = etag(&row);
    Ok(with_etag(
        HttpResponse::Ok().json(DocumentResponse::new(&t.c, row, None)),
        &tag,
    ))
}

/// Whether the caller may read the document a write left: only then does the write answer
/// with it (a grant to update is not one to read). Otherwise the write answers 204 and
/// shows nothing, as PostgREST does for a row the caller may change but not select.
fn readable(t: &Target, caller: &Caller, row: &DocumentRow) -> bool {
    t.access.allows(t.access.read_all, caller, &row.perm_read)
}

/// Replace a document's attributes (and, if given, its grants). 412 when the document
/// changed since the `If-Match` version. Changing the grants needs the collection's owner or
/// the document's creator (403 otherwise); the answer shows the document only to a caller
/// who may read it (else 204).
#[utoipa::path(
    put, path = "/{db}/collections/{collection}/documents/{id}", tag = "documents", request_body = UpdateDocumentRequest,
    security((), ("bearer" = []), ("api_key" = [])),
    params(("db" = DatabaseId, Path), ("collection" = String, Path), ("id" = String, Path),
        ("If-Match" = Option<String>, Header, description = "The ETag or `$version` the document must still have")),
    responses(
        (status = 200, body = DocumentResponse, headers(("ETag" = String))),
        (status = 204, description = "Changed, but the caller may not read the document, so it is not shown"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, TooLarge, Invalid,
    )
)]
pub async fn replace_document(
    req: HttpRequest,
    platform: web::Data<Platform>,
    settings: web::Data<DatabaseSettings>,
    caller: Caller,
    path: web::Path<(DatabaseId, String, String)>,
    body: web::Json<UpdateDocumentRequest>,
) -> Result<HttpResponse, DatabaseError> {
    write(req, platform, settings, caller, path, body, false).await
}

/// Change some attributes of a document; the result must still fit the schema. Grants as
/// for a replace: changing them needs the collection's owner or the document's creator, and
/// the answer is a 204 without the document for a caller who may not read it.
#[utoipa::path(
    patch, path = "/{db}/collections/{collection}/documents/{id}", tag = "documents", request_body = UpdateDocumentRequest,
    security((), ("bearer" = []), ("api_key" = [])),
    params(("db" = DatabaseId, Path), ("collection" = String, Path), ("id" = String, Path),
        ("If-Match" = Option<String>, Header, description = "The ETag or `$version` the document must still have")),
    responses(
        (status = 200, body = DocumentResponse, headers(("ETag" = String))),
        (status = 204, description = "Changed, but the caller may not read the document, so it is not shown"),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, TooLarge, Invalid,
    )
)]
pub async fn update_document(
    req: HttpRequest,
    platform: web::Data<Platform>,
    settings: web::Data<DatabaseSettings>,
    caller: Caller,
    path: web::Path<(DatabaseId, String, String)>,
    body: web::Json<UpdateDocumentRequest>,
) -> Result<HttpResponse, DatabaseError> {
    write(req, platform, settings, caller, path, body, true).await
}

/// Delete a document.
#[utoipa::path(
    delete, path = "/{db}/collections/{collection}/documents/{id}", tag = "documents",
    security((), ("bearer" = []), ("api_key" = [])),
    params(("db" = DatabaseId, Path), ("collection" = String, Path), ("id" = String, Path),
        ("If-Match" = Option<String>, Header, description = "The ETag or `$version` the document must still have")),
    responses((status = 204), BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed)
)]
pub async fn delete_document(
    req: HttpRequest,
    platform: web::Data<Platform>,
    settings: web::Data<DatabaseSettings>,
    caller: Caller,
    path: web::Path<(DatabaseId, String, String)>,
) -> Result<HttpResponse, DatabaseError> {
    caller.require_scope("databases.write")?;
    let pre = precondition(&req)?;
    let (db, collection, id) = path.into_inner();
    let mut tx = access::begin(&platform.db, &settings).await?;
    let t = access::target(&mut tx, &caller, db, &collection, Lock::Share).await?;
    remove(&mut tx, &caller, &t, &id, pre).await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Apply up to `max_batch_operations` writes across the database's collections in one
/// transaction: all of them or, if one fails, none. 400 `invalid_batch` for too many or no
/// operations; a failed operation's problem names it, e.g. `operations[2].data.title`.
#[utoipa::path(
    post, path = "/{db}/batch", tag = "documents", request_body = BatchRequest,
    security((), ("bearer" = []), ("api_key" = [])),
    params(("db" = DatabaseId, Path)),
    responses(
        (status = 200, description = "Every operation applied", body = BatchResponse),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, TooLarge, Invalid,
    )
)]
pub async fn batch(
    platform: web::Data<Platform>,
    settings: web::Data<DatabaseSettings>,
    caller: Caller,
    path: web::Path<DatabaseId>,
    body: web::Json<BatchRequest>,
) -> Result<HttpResponse, DatabaseError> {
    caller.require_scope("databases.write")?;
    let ops = body.into_inner().operations;
    if ops.is_empty() || ops.len() > settings.max_batch_operations {
        return Err(DatabaseError::InvalidBatch(format!(
            "operations: between 1 and {} per batch",
            settings.max_batch_operations
        )));
    }
    let db = path.into_inner();
    let mut tx = access::begin(&platform.db, &settings).await?;
    let mut targets: HashMap<String, Target> = HashMap::new();
    let mut results = Vec::with_capacity(ops.len());
    for (index, op) in ops.into_iter().enumerate() {
        let (status, document) = run_operation(&mut tx, &settings, &caller, db, &mut targets, op)
            .await
            .map_err(|e| e.within(&format!("operations[{index}]")))?;
        results.push(BatchResult {
            index,
            status,
            document,
        });
    }
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(BatchResponse { results }))
}

async fn run_operation(
    conn: &mut PgConnection,
    settings: &DatabaseSettings,
    caller: &Caller,
    db: DatabaseId,
    targets: &mut HashMap<String, Target>,
    op: BatchOperation,
) -> Result<(u16, Option<DocumentResponse>), DatabaseError> {
    if !targets.contains_key(&op.collection) {
        let t = access::target(conn, caller, db, &op.collection, Lock::Share).await?;
        targets.insert(op.collection.clone(), t);
    }
    let t = &targets[&op.collection];
    let pre = op.if_match.map(Precondition::Version);
    let id = || {
        op.id
            .clone()
            .ok_or_else(|| DatabaseError::InvalidBatch("id is required for this action".into()))
    };
    Ok(match op.action {
        BatchAction::Create => {
            may_create(t)?;
            let req = CreateDocumentRequest {
                id: op.id.clone(),
                data: op.data.clone().unwrap_or(Value::Null),
                permissions: op.permissions.clone(),
            };
            let doc = prepare_new(settings, caller, t, req, "")?;
            let rows = insert(conn, caller, t, &[doc]).await?;
            let document = rows.into_iter().next();
            (201, document.map(|r| DocumentResponse::new(&t.c, r, None)))
        }
        BatchAction::Replace | BatchAction::Update => {
            let body = UpdateDocumentRequest {
                data: op.data.clone(),
                permissions: op.permissions.clone(),
            };
            let id = id()?;
            let row = change(
                conn,
                settings,
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
            if readable(t, caller, &row) {
                (200, Some(DocumentResponse::new(&t.c, row, None)))
            } else {
                (204, None)
            }
        }
        BatchAction::Delete => {
            remove(conn, caller, t, &id()?, pre).await?;
            (204, None)
        }
    })
}
