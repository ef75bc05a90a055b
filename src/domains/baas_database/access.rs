//! What a caller may reach, shared by the resource files: the database or collection they
//! own (schema routes are the owner's alone), a collection as they see it under its grants
//! (document routes), the documents a query finds among those they may read, and the step
//! every schema change ends with. Resource files call this; this calls `repo`, never back.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use super::cache::CollectionCache;
use super::error::DatabaseError;
use super::events::CollectionUpdated;
use super::model::{DatabaseId, DocumentPage, DocumentResponse, QueryRequest};
use super::query::{self, Parser};
use super::repo::{
    self, CollectionRow, Cursor, DatabaseRow, DocumentRow, Fresh, ListQuery, Lock, Visible,
};
use super::settings::DatabaseSettings;
use crate::platform::Platform;
use crate::platform::events;
use crate::platform::grants::{Access, Caller};
use crate::platform::page::{self, Page};

/// A transaction whose every statement gives up after the configured timeout (a 504
/// `query_timeout`): what document reads and writes run in.
pub async fn begin(
    db: &PgPool,
    settings: &DatabaseSettings,
) -> Result<Transaction<'static, Postgres>, DatabaseError> {
    Ok(repo::begin_with_timeout(db, settings.statement_timeout_ms).await?)
}

/// The caller's own database, or 404.
pub async fn own_database(
    conn: &mut PgConnection,
    caller: &Caller,
    id: DatabaseId,
    lock: bool,
) -> Result<DatabaseRow, DatabaseError> {
    let owner = caller.account()?;
    repo::owned_database(conn, id, owner, lock)
        .await?
        .ok_or(DatabaseError::DatabaseNotFound)
}

/// The caller's own collection (schema access is the database owner's alone), or 404.
pub async fn own_collection(
    conn: &mut PgConnection,
    caller: &Caller,
    db: DatabaseId,
    key: &str,
    lock: Lock,
) -> Result<CollectionRow, DatabaseError> {
    let owner = caller.account()?;
    repo::collection(conn, db, key, lock)
        .await?
        .filter(|c| c.owner_id == owner)
        .ok_or(DatabaseError::CollectionNotFound)
}

/// The caller's own collection, read for one of the read-only schema routes (the
/// collection, its attributes, its indexes).
pub async fn read_own_collection(
    db: &PgPool,
    caller: &Caller,
    (database, key): (DatabaseId, String),
) -> Result<CollectionRow, DatabaseError> {
    caller.require_scope("databases.read")?;
    let mut conn = db.acquire().await?;
    own_collection(&mut conn, caller, database, &key, Lock::None).await
}

/// The collection as a change to its schema or grants left it, with its
/// `baas.collection.updated` published in the same transaction.
pub async fn collection_updated(
    conn: &mut PgConnection,
    c: &CollectionRow,
) -> Result<CollectionRow, DatabaseError> {
    let c = repo::collection(conn, c.database_id, &c.key, Lock::None)
        .await?
        .ok_or(DatabaseError::CollectionNotFound)?;
    events::publish(conn, &CollectionUpdated::from(&c)).await?;
    Ok(c)
}

/// A collection as one caller sees it.
pub struct Target {
    pub c: Arc<CollectionRow>,
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

/// The collection with what the caller may do in it; 404 when they may do nothing (not
/// even learn that it exists).
pub async fn target(
    conn: &mut PgConnection,
    caller: &Caller,
    db: DatabaseId,
    key: &str,
    lock: Lock,
) -> Result<Target, DatabaseError> {
    let c = repo::collection(conn, db, key, lock)
        .await?
        .ok_or(DatabaseError::CollectionNotFound)?;
    as_seen_by(caller, Arc::new(c))
}

fn as_seen_by(caller: &Caller, c: Arc<CollectionRow>) -> Result<Target, DatabaseError> {
    let access = Access::new(caller, c.owner_id, &c.permissions.0, c.document_security);
    if !access.visible() {
        return Err(DatabaseError::CollectionNotFound);
    }
    Ok(Target { c, access })
}

/// The collection from the cache (no round trip) or, when `fresh` or not cached, from the
/// database (one, which refills the cache); and whether it came from the cache. Whatever
/// uses a cached copy must check its `version` in its own statement (`repo::Fresh`) and come
/// back with `fresh` when that fails.
async fn cached_collection(
    db: &PgPool,
    cache: &CollectionCache,
    (database, key): (DatabaseId, &str),
    fresh: bool,
) -> Result<(Arc<CollectionRow>, bool), DatabaseError> {
    if fresh {
        cache.forget(database, key);
    } else if let Some(c) = cache.get(database, key) {
        return Ok((c, true));
    }
    let c = repo::collection_now(db, database, key)
        .await?
        .ok_or(DatabaseError::CollectionNotFound)?;
    Ok((cache.put(c), false))
}

/// The tries of one statement against a cached collection: the cached copy first, then,
/// each time the statement finds it stale (a schema change committed in between), the
/// stored one, a few times at most. A refusal decided on a cached copy (not visible, may not
/// create, an attribute it does not know yet) is decided again on the stored one, so a
/// change that has returned is never answered from a copy that predates it, even before its
/// NOTIFY arrives.
#[derive(Default)]
pub struct Attempts {
    tries: u8,
    cached: bool,
}

impl Attempts {
    pub async fn target(
        &mut self,
        db: &PgPool,
        cache: &CollectionCache,
        caller: &Caller,
        collection: (DatabaseId, &str),
    ) -> Result<Target, DatabaseError> {
        if self.tries >= 4 {
            return Err(
                anyhow::anyhow!("the collection kept changing under a document statement").into(),
            );
        }
        self.tries += 1;
        let (c, cached) = cached_collection(db, cache, collection, self.tries > 1).await?;
        self.cached = cached;
        match as_seen_by(caller, c) {
            Err(_) if cached => {
                self.cached = false;
                let (c, _) = cached_collection(db, cache, collection, true).await?;
                as_seen_by(caller, c)
            }
            seen => seen,
        }
    }

    /// What to do with a refusal decided on the last target: `Ok` to go round once more
    /// with the stored collection when that target was a cached copy, else the refusal.
    /// Only refusals (4xx) go round again: a failure of the database would only repeat.
    pub fn refused(&mut self, e: DatabaseError) -> Result<(), DatabaseError> {
        use actix_web::ResponseError;
        if std::mem::take(&mut self.cached) && e.status_code().is_client_error() {
            Ok(())
        } else {
            Err(e)
        }
    }
}

/// One page of the documents a query finds among those the caller may read (the list and
/// the query routes). With the domain's statement timeout equal to the pool's (the default),
/// no transaction: the collection from the cache and the page in one statement (one more when
/// the cursor is a document id rather than a `next`, one more with `total`); with another
/// timeout, a transaction that sets it.
pub async fn find_documents(
    platform: &Platform,
    cache: &CollectionCache,
    settings: &DatabaseSettings,
    caller: &Caller,
    (database, collection): (DatabaseId, &str),
    q: QueryRequest,
) -> Result<DocumentPage, DatabaseError> {
    caller.require_scope("databases.read")?;
    let limit = page::limit(q.limit)?;
    if q.after.is_some() && q.before.is_some() {
        return Err(DatabaseError::InvalidQuery(
            "after and before cannot be used together".into(),
        ));
    }
    let db = &platform.db;
    let (t, (page, total, select)) =
        if settings.statement_timeout_ms == platform.settings.database.statement_timeout_ms {
            let mut attempts = Attempts::default();
            loop {
                let t = attempts
                    .target(db, cache, caller, (database, collection))
                    .await?;
                let mut conn = db.acquire().await?;
                match run_query(&mut conn, settings, caller, &t, &q, limit, true).await {
                    Ok(Fresh::Current(found)) => break (t, found),
                    Ok(Fresh::Stale) => {}
                    Err(e) => attempts.refused(e)?,
                }
            }
        } else {
            let mut tx = begin(db, settings).await?;
            let t = target(&mut tx, caller, database, collection, Lock::None).await?;
            let Fresh::Current(found) =
                run_query(&mut tx, settings, caller, &t, &q, limit, false).await?
            else {
                return Err(DatabaseError::CollectionNotFound);
            };
            tx.commit().await?;
            (t, found)
        };
    let page = page.map(|row| DocumentResponse::new(&t.c, row, select.as_deref()));
    Ok(DocumentPage { page, total })
}

/// A query's page, total (if asked) and selected attributes.
type Found = (Page<DocumentRow>, Option<i64>, Option<Vec<String>>);

/// The page's rows (and the total, if asked), checking the collection's version when
/// `check` (a cached copy).
async fn run_query(
    conn: &mut PgConnection,
    settings: &DatabaseSettings,
    caller: &Caller,
    t: &Target,
    q: &QueryRequest,
    limit: i64,
    check: bool,
) -> Result<Fresh<Found>, DatabaseError> {
    let mut parser = Parser::new(&t.c.attributes.0, &t.c.indexes.0, settings);
    let filter = q.filter.as_ref().map(|f| parser.filter(f)).transpose()?;
    let sort = parser.sort(&q.sort)?;
    let select = if q.select.is_empty() {
        None
    } else {
        Some(parser.select(&q.select)?)
    };
    let signature = query::sort_signature(&sort);
    let before = q.before.is_some();
    let raw = q
        .after
        .as_deref()
        .map(|a| (a, false))
        .or(q.before.as_deref().map(|b| (b, true)));
    let key = raw.and_then(|(raw, _)| page::decode::<DocumentCursor>(raw).ok());
    let cursor = match (raw, &key) {
        (Some((_, dir)), Some(k)) => {
            if k.sort != signature || !repo::fit_sort(&sort, &k.values) {
                return Err(DatabaseError::InvalidCursor);
            }
            Some((Cursor::Key(&k.values, k.seq), dir))
        }
        (Some((id, dir)), None) => Some((Cursor::Id(id), dir)),
        (None, _) => None,
    };
    let list = ListQuery {
        filter: filter.as_ref(),
        sort: &sort,
        fetch: limit + 1,
        cursor,
    };
    let visible = t.visible(caller);
    let checked = check.then_some(t.c.version);
    let rows = match repo::list_documents(conn, &visible, &list, checked)
        .await
        .map_err(|e| DatabaseError::in_collection(e, &t.c))?
    {
        Fresh::Stale => return Ok(Fresh::Stale),
        Fresh::Current(rows) => rows.ok_or(DatabaseError::InvalidCursor)?,
    };
    let total = if q.total {
        Some(
            repo::count_documents(conn, &visible, filter.as_ref())
                .await
                .map_err(|e| DatabaseError::in_collection(e, &t.c))?,
        )
    } else {
        None
    };
    let page = document_page(rows, limit, before, |row| DocumentCursor {
        sort: signature.clone(),
        values: repo::sort_values(&sort, row),
        seq: row.seq,
    });
    Ok(Fresh::Current((page, total, select)))
}

/// Where a page of documents ends: the last row's sort values and seq (opaque to clients),
/// never a document id to look up, so paging goes on even if that document is deleted.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DocumentCursor {
    /// The sort the page was made under: the values mean a position only in that order.
    sort: String,
    values: Vec<Value>,
    seq: i64,
}

/// Keeps `limit` of up to `limit + 1` rows in page order. After a cursor (or from the
/// start) the extra row is the last and proves that more follow; before one it is the
/// first, and the cursor's own document follows the page. Either way `next` is the last
/// document's position, which the list takes as `after`.
fn document_page(
    mut rows: Vec<DocumentRow>,
    limit: i64,
    before: bool,
    key: impl Fn(&DocumentRow) -> DocumentCursor,
) -> Page<DocumentRow> {
    let limit = usize::try_from(limit).unwrap_or(0);
    let more = rows.len() > limit;
    if before {
        rows.drain(..rows.len().saturating_sub(limit));
    } else {
        rows.truncate(limit);
    }
    let next = if more || before {
        rows.last().map(|r| page::encode(&key(r)))
    } else {
        None
    };
    Page { items: rows, next }
}
