//! All SQL of the database domain (schema `baas`).
//!
//! Each collection's documents live in `baas.d_<collection id as hex>`: the document's
//! attributes in one JSONB column, its grants in text arrays (GIN-indexed for `&&`), and a
//! `seq` that orders ties and backs cursors. Identifiers in SQL text are only ever that table
//! name (hex digits), index names the server made, and attribute keys from the collection's
//! stored schema (held to `[A-Za-z][A-Za-z0-9_]*` when declared); every value a client sends
//! is a bind parameter.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder, Row};
use uuid::Uuid;

use super::model::{CollectionId, DatabaseId};
use super::query::{Field, Filter, Op, Scalar, Sort};
use super::schema::{Attribute, AttributeType, Index, IndexType, SortOrder};
use crate::platform::db::like_escape;
use crate::platform::grants::{Access, ContainerPermissions, ItemGrants, ItemPermissions};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DatabaseRow {
    pub id: DatabaseId,
    pub owner_id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub async fn count_databases(conn: &mut PgConnection, owner: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM baas.databases WHERE owner_id = $1")
        .bind(owner)
        .fetch_one(conn)
        .await
}

/// Serialises database creation per owner, so the cap holds under concurrent requests.
pub async fn lock_owner(conn: &mut PgConnection, owner: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))")
        .bind(owner)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn insert_database(
    conn: &mut PgConnection,
    owner: Uuid,
    name: &str,
) -> Result<DatabaseRow, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO baas.databases (id, owner_id, name) VALUES ($1, $2, $3) RETURNING *",
    )
    .bind(DatabaseId::new())
    .bind(owner)
    .bind(name)
    .fetch_one(conn)
    .await
}

/// Where a list of databases resumes: the last one's creation time and id.
pub type DatabaseKey = (DateTime<Utc>, DatabaseId);

/// Up to `fetch` of the owner's databases after `after`, oldest first (served by the
/// `databases_owner` index).
pub async fn list_databases(
    db: &PgPool,
    owner: Uuid,
    after: Option<DatabaseKey>,
    fetch: i64,
) -> Result<Vec<DatabaseRow>, sqlx::Error> {
    let (at, id) = after.unzip();
    sqlx::query_as(
        "SELECT * FROM baas.databases
          WHERE owner_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3))
          ORDER BY created_at, id LIMIT $4",
    )
    .bind(owner)
    .bind(at)
    .bind(id)
    .bind(fetch)
    .fetch_all(db)
    .await
}

/// The database, if `owner` owns it (others get nothing: 404, not 403).
pub async fn owned_database(
    conn: &mut PgConnection,
    id: DatabaseId,
    owner: Uuid,
    lock: bool,
) -> Result<Option<DatabaseRow>, sqlx::Error> {
    let sql = if lock {
        "SELECT * FROM baas.databases WHERE id = $1 AND owner_id = $2 FOR UPDATE"
    } else {
        "SELECT * FROM baas.databases WHERE id = $1 AND owner_id = $2"
    };
    sqlx::query_as(sql)
        .bind(id)
        .bind(owner)
        .fetch_optional(conn)
        .await
}

pub async fn rename_database(
    conn: &mut PgConnection,
    id: DatabaseId,
    name: &str,
) -> Result<DatabaseRow, sqlx::Error> {
    sqlx::query_as(
        "UPDATE baas.databases SET name = $2, updated_at = now() WHERE id = $1 RETURNING *",
    )
    .bind(id)
    .bind(name)
    .fetch_one(conn)
    .await
}

/// Deletes the database, its collections and their document tables.
pub async fn delete_database(conn: &mut PgConnection, id: DatabaseId) -> Result<(), sqlx::Error> {
    let collections: Vec<CollectionId> =
        sqlx::query_scalar("SELECT id FROM baas.collections WHERE database_id = $1 FOR UPDATE")
            .bind(id)
            .fetch_all(&mut *conn)
            .await?;
    for collection in collections {
        sqlx::query(&format!("DROP TABLE IF EXISTS {}", table(collection)))
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query("DELETE FROM baas.databases WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CollectionRow {
    pub id: CollectionId,
    pub database_id: DatabaseId,
    pub key: String,
    pub name: String,
    pub permissions: Json<ContainerPermissions>,
    pub document_security: bool,
    pub attributes: Json<Vec<Attribute>>,
    pub indexes: Json<Vec<Index>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Grows with every change of the row (a trigger): what cached copies are checked by.
    pub version: i64,
    /// The database's owner.
    pub owner_id: Uuid,
}

impl CollectionRow {
    pub fn table(&self) -> String {
        table(self.id)
    }

    /// The unique constraint on its documents' ids (PostgreSQL's name for `id ... UNIQUE`
    /// in the table's `CREATE TABLE`).
    pub fn id_constraint(&self) -> String {
        format!("d_{}_id_key", self.id.0.simple())
    }
}

/// The document table of a collection; hex digits only, so safe in SQL text.
fn table(collection: CollectionId) -> String {
    format!("baas.\"d_{}\"", collection.0.simple())
}

/// How a collection row is read: plainly, shared against schema changes (document
/// writes), or exclusively (schema changes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    None,
    Share,
    Update,
}

pub async fn collection(
    conn: &mut PgConnection,
    database: DatabaseId,
    key: &str,
    lock: Lock,
) -> Result<Option<CollectionRow>, sqlx::Error> {
    let suffix = match lock {
        Lock::None => "",
        Lock::Share => " FOR KEY SHARE OF c",
        Lock::Update => " FOR UPDATE OF c",
    };
    let row: Option<CollectionRow> = sqlx::query_as(&format!(
        "SELECT c.*, d.owner_id FROM baas.collections c JOIN baas.databases d ON d.id = c.database_id
          WHERE c.database_id = $1 AND c.key = $2{suffix}"
    ))
    .bind(database)
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    if let (Lock::Update, Some(c)) = (lock, &row) {
        // Document writes do not lock the collection row (they check its version in their
        // own statement, see `create_documents`). A schema change instead waits here for the
        // writes in flight on the collection's table and holds new ones until it commits;
        // those then see the new version, fail their check and are validated again against
        // the new schema. So no document written under the old schema slips past a change
        // that rewrites or checks the stored documents. Schema changes may rewrite the whole
        // table: no statement timeout for the rest of the transaction.
        sqlx::query(&format!(
            "LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE",
            c.table()
        ))
        .execute(&mut *conn)
        .await?;
        sqlx::query("SET LOCAL statement_timeout = 0")
            .execute(&mut *conn)
            .await?;
    }
    Ok(row)
}

/// A collection read outside any transaction (to fill the cache).
pub async fn collection_now(
    db: &PgPool,
    database: DatabaseId,
    key: &str,
) -> Result<Option<CollectionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT c.*, d.owner_id FROM baas.collections c JOIN baas.databases d ON d.id = c.database_id
          WHERE c.database_id = $1 AND c.key = $2",
    )
    .bind(database)
    .bind(key)
    .fetch_optional(db)
    .await
}

/// Where a list of collections resumes: the last one's creation time and key.
pub type CollectionKey = (DateTime<Utc>, String);

/// Up to `fetch` of a database's collections after `after`, oldest first.
pub async fn list_collections(
    conn: &mut PgConnection,
    database: DatabaseId,
    after: Option<CollectionKey>,
    fetch: i64,
) -> Result<Vec<CollectionRow>, sqlx::Error> {
    let (at, key) = after.unzip();
    sqlx::query_as(
        "SELECT c.*, d.owner_id FROM baas.collections c JOIN baas.databases d ON d.id = c.database_id
          WHERE c.database_id = $1 AND ($2::timestamptz IS NULL OR (c.created_at, c.key) > ($2, $3))
          ORDER BY c.created_at, c.key LIMIT $4",
    )
    .bind(database)
    .bind(at)
    .bind(key)
    .bind(fetch)
    .fetch_all(conn)
    .await
}

pub async fn count_collections(
    conn: &mut PgConnection,
    database: DatabaseId,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM baas.collections WHERE database_id = $1")
        .bind(database)
        .fetch_one(conn)
        .await
}

pub struct NewCollection<'a> {
    pub database: DatabaseId,
    pub key: &'a str,
    pub name: &'a str,
    pub permissions: &'a ContainerPermissions,
    pub document_security: bool,
    pub attributes: &'a [Attribute],
    pub indexes: &'a [Index],
}

/// The unique constraint on a collection's key within its database.
pub const COLLECTION_KEY_TAKEN: &str = "collections_database_id_key_key";

/// Inserts the collection and creates its document table; a taken key violates
/// [`COLLECTION_KEY_TAKEN`].
pub async fn insert_collection(
    conn: &mut PgConnection,
    c: NewCollection<'_>,
) -> Result<CollectionId, sqlx::Error> {
    let id = CollectionId::new();
    sqlx::query(
        "INSERT INTO baas.collections (id, database_id, key, name, permissions, document_security, attributes, indexes)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(c.database)
    .bind(c.key)
    .bind(c.name)
    .bind(Json(c.permissions))
    .bind(c.document_security)
    .bind(Json(c.attributes))
    .bind(Json(c.indexes))
    .execute(&mut *conn)
    .await?;
    let t = table(id);
    sqlx::query(&format!(
        "CREATE TABLE {t} (
            seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id          text        NOT NULL UNIQUE,
            data        jsonb       NOT NULL,
            owner_id    uuid,
            perm_read   text[]      NOT NULL,
            perm_update text[]      NOT NULL,
            perm_delete text[]      NOT NULL,
            version     bigint      NOT NULL DEFAULT 1,
            created_at  timestamptz NOT NULL DEFAULT now(),
            updated_at  timestamptz NOT NULL DEFAULT now()
        )"
    ))
    .execute(&mut *conn)
    .await?;
    sqlx::query(&format!("CREATE INDEX ON {t} USING gin (perm_read)"))
        .execute(&mut *conn)
        .await?;
    sqlx::query(&format!("CREATE INDEX ON {t} (created_at, seq)"))
        .execute(&mut *conn)
        .await?;
    for index in c.indexes {
        create_index(conn, id, index, c.attributes).await?;
    }
    Ok(id)
}

pub async fn update_collection(
    conn: &mut PgConnection,
    id: CollectionId,
    name: &str,
    permissions: &ContainerPermissions,
    document_security: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE baas.collections SET name = $2, permissions = $3, document_security = $4, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(name)
        .bind(Json(permissions))
        .bind(document_security)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn save_schema(
    conn: &mut PgConnection,
    id: CollectionId,
    attributes: &[Attribute],
    indexes: &[Index],
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE baas.collections SET attributes = $2, indexes = $3, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(Json(attributes))
        .bind(Json(indexes))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn delete_collection(
    conn: &mut PgConnection,
    id: CollectionId,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!("DROP TABLE IF EXISTS {}", table(id)))
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM baas.collections WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The SQL expression of an attribute, typed so comparisons and sorting follow the type.
/// Index definitions use the very same text, which is what lets the planner match them.
fn attr_expr(a: &Attribute) -> String {
    let key = &a.key;
    if a.array || a.kind == AttributeType::Json {
        return format!("(data->'{key}')");
    }
    match a.kind {
        AttributeType::Integer => format!("((data->>'{key}')::bigint)"),
        AttributeType::Float => format!("((data->>'{key}')::float8)"),
        AttributeType::Boolean => format!("((data->>'{key}')::boolean)"),
        _ => format!("(data->>'{key}')"),
    }
}

fn field_expr(f: &Field) -> String {
    match f {
        Field::Id => "id".into(),
        Field::CreatedAt => "created_at".into(),
        Field::UpdatedAt => "updated_at".into(),
        Field::Attr(a) => attr_expr(a),
    }
}

fn fulltext_expr(a: &Attribute) -> String {
    format!("to_tsvector('simple', coalesce(data->>'{}', ''))", a.key)
}

/// The DDL of an index; `CONCURRENTLY` for tables that may already hold documents.
fn index_sql(
    collection: CollectionId,
    index: &Index,
    attributes: &[Attribute],
    concurrently: bool,
) -> String {
    let t = table(collection);
    let attrs: Vec<&Attribute> = index
        .attributes
        .iter()
        .filter_map(|k| attributes.iter().find(|a| &a.key == k))
        .collect();
    let name = &index.pg_name;
    let how = if concurrently { " CONCURRENTLY" } else { "" };
    match index.kind {
        IndexType::Fulltext => format!(
            "CREATE INDEX{how} {name} ON {t} USING gin ({})",
            fulltext_expr(attrs[0])
        ),
        IndexType::Key if attrs.len() == 1 && attrs[0].array => {
            format!(
                "CREATE INDEX{how} {name} ON {t} USING gin ({} jsonb_path_ops)",
                attr_expr(attrs[0])
            )
        }
        kind => {
            let order = |i: usize| match index.orders.get(i) {
                Some(SortOrder::Desc) => " DESC",
                _ => "",
            };
            let mut columns: Vec<String> = attrs
                .iter()
                .enumerate()
                .map(|(i, a)| format!("{}{}", attr_expr(a), order(i)))
                .collect();
            let unique = kind == IndexType::Unique;
            if !unique {
                // Ties sort by seq, so a trailing seq lets one index serve filter, order and limit.
                columns.push(format!("seq{}", order(attrs.len().saturating_sub(1))));
            }
            let keyword = if unique { "UNIQUE INDEX" } else { "INDEX" };
            format!(
                "CREATE {keyword}{how} {name} ON {t} ({})",
                columns.join(", ")
            )
        }
    }
}

/// Creates an index inside the caller's transaction (a new collection's empty table, or a
/// unique attribute added in the same change).
pub async fn create_index(
    conn: &mut PgConnection,
    collection: CollectionId,
    index: &Index,
    attributes: &[Attribute],
) -> Result<(), sqlx::Error> {
    sqlx::query(&index_sql(collection, index, attributes, false))
        .execute(conn)
        .await?;
    Ok(())
}

/// Builds an index while writes go on (`CREATE INDEX CONCURRENTLY`, which must run outside
/// any transaction). A failed build leaves an invalid index behind: the caller drops it.
pub async fn build_index(
    db: &PgPool,
    collection: CollectionId,
    index: &Index,
    attributes: &[Attribute],
) -> Result<(), sqlx::Error> {
    unbounded(db, &index_sql(collection, index, attributes, true)).await
}

pub async fn drop_index_concurrently(db: &PgPool, pg_name: &str) -> Result<(), sqlx::Error> {
    unbounded(
        db,
        &format!("DROP INDEX CONCURRENTLY IF EXISTS baas.{pg_name}"),
    )
    .await
}

/// Runs `sql` outside a transaction without the pool's statement timeout (an index build
/// over a large collection takes as long as it takes), then gives the connection its
/// timeout back.
async fn unbounded(db: &PgPool, sql: &str) -> Result<(), sqlx::Error> {
    let mut conn = db.acquire().await?;
    sqlx::raw_sql("SET statement_timeout = 0")
        .execute(&mut *conn)
        .await?;
    let done = sqlx::raw_sql(sql).execute(&mut *conn).await;
    if sqlx::raw_sql("RESET statement_timeout")
        .execute(&mut *conn)
        .await
        .is_err()
    {
        // Never hand a connection without its timeout back to the pool.
        conn.close_on_drop();
    }
    done.map(|_| ())
}

pub async fn drop_index(conn: &mut PgConnection, pg_name: &str) -> Result<(), sqlx::Error> {
    sqlx::query(&format!("DROP INDEX IF EXISTS baas.{pg_name}"))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn has_documents(
    conn: &mut PgConnection,
    collection: &CollectionRow,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(&format!(
        "SELECT EXISTS (SELECT 1 FROM {})",
        collection.table()
    ))
    .fetch_one(conn)
    .await
}

/// Gives documents that lack the attribute its default.
pub async fn fill_default(
    conn: &mut PgConnection,
    collection: &CollectionRow,
    key: &str,
    value: &Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "UPDATE {} SET data = data || jsonb_build_object($1::text, $2::jsonb) WHERE NOT data ? $1",
        collection.table()
    ))
    .bind(key)
    .bind(Json(value))
    .execute(conn)
    .await?;
    Ok(())
}

/// Removes an attribute's values from every document.
pub async fn strip_attribute(
    conn: &mut PgConnection,
    collection: &CollectionRow,
    key: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "UPDATE {} SET data = data - $1::text WHERE data ? $1",
        collection.table()
    ))
    .bind(key)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DocumentRow {
    pub seq: i64,
    pub id: String,
    pub data: Json<serde_json::Map<String, Value>>,
    pub owner_id: Option<Uuid>,
    pub perm_read: Vec<String>,
    pub perm_update: Vec<String>,
    pub perm_delete: Vec<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl DocumentRow {
    pub fn grants(&self) -> ItemGrants<'_> {
        ItemGrants {
            read: &self.perm_read,
            update: &self.perm_update,
            delete: &self.perm_delete,
        }
    }

    pub fn permissions(&self) -> ItemPermissions {
        ItemPermissions {
            read: self.perm_read.clone(),
            update: self.perm_update.clone(),
            delete: self.perm_delete.clone(),
        }
    }
}

/// A transaction whose every statement gives up after `ms` (a runaway query cannot hold a
/// connection), begun in the same round trip as its `BEGIN`.
pub async fn begin_with_timeout(
    db: &PgPool,
    ms: u64,
) -> Result<sqlx::Transaction<'static, Postgres>, sqlx::Error> {
    db.begin_with(format!("BEGIN; SET LOCAL statement_timeout = {ms}"))
        .await
}

pub struct NewDocument {
    pub id: String,
    pub data: serde_json::Map<String, Value>,
    pub owner: Option<Uuid>,
    pub permissions: ItemPermissions,
}

/// Inserts documents in one statement, returning them in order.
pub async fn insert_documents(
    conn: &mut PgConnection,
    collection: &CollectionRow,
    docs: &[NewDocument],
) -> Result<Vec<DocumentRow>, sqlx::Error> {
    let mut qb = QueryBuilder::<Postgres>::new(format!(
        "INSERT INTO {} (id, data, owner_id, perm_read, perm_update, perm_delete) ",
        collection.table()
    ));
    qb.push_values(docs, |mut row, d| {
        row.push_bind(&d.id)
            .push_bind(Json(&d.data))
            .push_bind(d.owner)
            .push_bind(&d.permissions.read)
            .push_bind(&d.permissions.update)
            .push_bind(&d.permissions.delete);
    });
    qb.push(" RETURNING *");
    let mut rows: Vec<DocumentRow> = qb.build_query_as().fetch_all(conn).await?;
    // RETURNING follows VALUES order in practice; seq (assigned in that order) makes it certain.
    rows.sort_by_key(|r| r.seq);
    Ok(rows)
}

/// What a document statement found, having checked in its own `WHERE` that the cached
/// collection it was built from is still the stored one.
pub enum Fresh<T> {
    Current(T),
    /// The collection changed (or is gone) since it was cached: fetch it and try again.
    Stale,
}

/// The table was dropped (its collection deleted) under a cached copy.
fn undefined_table(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().as_deref() == Some("42P01"))
}

/// The condition on `d.perm_read` for what the caller may read.
fn readable(access: &Access) -> &'static str {
    if access.read_all {
        "true"
    } else if access.item_security {
        "d.perm_read && $3"
    } else {
        "false"
    }
}

/// One document the caller may read: one statement, no transaction, the grant check in its
/// `WHERE`, and the cached collection checked against the stored one in the same statement.
pub async fn readable_document(
    db: &PgPool,
    v: &Visible<'_>,
    id: &str,
) -> Result<Fresh<Option<DocumentRow>>, sqlx::Error> {
    let sql = format!(
        "SELECT c.version AS collection_version, d.* FROM baas.collections c
           LEFT JOIN {} d ON d.id = $2 AND {}
          WHERE c.id = $1",
        v.collection.table(),
        readable(v.access)
    );
    let mut q = sqlx::query(&sql).bind(v.collection.id).bind(id);
    if !v.access.read_all && v.access.item_security {
        q = q.bind(v.roles);
    }
    let row = match q.fetch_optional(db).await {
        Err(e) if undefined_table(&e) => return Ok(Fresh::Stale),
        other => other?,
    };
    let Some(row) = row else {
        return Ok(Fresh::Stale);
    };
    if row.try_get::<i64, _>("collection_version")? != v.collection.version {
        return Ok(Fresh::Stale);
    }
    if row.try_get::<Option<i64>, _>("seq")?.is_none() {
        return Ok(Fresh::Current(None));
    }
    Ok(Fresh::Current(Some(<DocumentRow as sqlx::FromRow<
        PgRow,
    >>::from_row(&row)?)))
}

/// Inserts documents and their events in one statement, if the cached collection is still
/// the stored one (else nothing, and `Stale`). Returns each document's seq, in `docs` order.
///
/// Why a version check and no lock on the collection row: taking `FOR KEY SHARE` on the one
/// collection row from every concurrent write serialises them on a multixact; instead a
/// schema change locks the document table (`collection` with `Lock::Update`), which waits
/// for this statement's transaction and holds later ones, and bumps the version, which
/// later ones then see (their snapshot is taken after their table lock is granted).
pub async fn create_documents(
    db: &PgPool,
    collection: &CollectionRow,
    docs: &[DocumentRow],
    events: &[crate::platform::events::Event],
) -> Result<Fresh<Vec<i64>>, sqlx::Error> {
    let mut qb =
        QueryBuilder::<Postgres>::new("WITH fresh AS (SELECT 1 FROM baas.collections WHERE id = ");
    qb.push_bind(collection.id)
        .push(" AND version = ")
        .push_bind(collection.version)
        // The relays are woken after the commit (`RelayWaker`), not by the outbox trigger's
        // NOTIFY, which would serialise concurrent creates' commits.
        .push(" AND ")
        .push(crate::platform::events::DEFER_WAKE)
        .push(format!(
            "), doc AS (INSERT INTO {} (id, data, owner_id, perm_read, perm_update, perm_delete, created_at, updated_at) SELECT * FROM (",
            collection.table()
        ));
    qb.push_values(docs, |mut row, d| {
        row.push_bind(&d.id)
            .push_bind(&d.data)
            .push_bind(d.owner_id)
            .push_bind(&d.perm_read)
            .push_bind(&d.perm_update)
            .push_bind(&d.perm_delete)
            .push_bind(d.created_at)
            .push_bind(d.updated_at);
    });
    qb.push(") v WHERE EXISTS (SELECT 1 FROM fresh) RETURNING id, seq), ev AS (");
    crate::platform::events::push_insert(&mut qb, events, "EXISTS (SELECT 1 FROM fresh)");
    qb.push(") SELECT id, seq FROM doc");
    let rows: Vec<(String, i64)> = match qb.build_query_as().fetch_all(db).await {
        Err(e) if undefined_table(&e) => return Ok(Fresh::Stale),
        other => other?,
    };
    if rows.is_empty() {
        return Ok(Fresh::Stale);
    }
    let seqs: std::collections::HashMap<String, i64> = rows.into_iter().collect();
    Ok(Fresh::Current(
        docs.iter()
            .map(|d| seqs.get(&d.id).copied().unwrap_or(0))
            .collect(),
    ))
}

pub async fn document(
    conn: &mut PgConnection,
    collection: &CollectionRow,
    id: &str,
    for_update: bool,
) -> Result<Option<DocumentRow>, sqlx::Error> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    sqlx::query_as(&format!(
        "SELECT * FROM {} WHERE id = $1{lock}",
        collection.table()
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

pub async fn update_document(
    conn: &mut PgConnection,
    collection: &CollectionRow,
    seq: i64,
    data: &serde_json::Map<String, Value>,
    permissions: &ItemPermissions,
) -> Result<DocumentRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE {} SET data = $2, perm_read = $3, perm_update = $4, perm_delete = $5, version = version + 1, updated_at = now()
          WHERE seq = $1 RETURNING *",
        collection.table()
    ))
    .bind(seq)
    .bind(Json(data))
    .bind(&permissions.read)
    .bind(&permissions.update)
    .bind(&permissions.delete)
    .fetch_one(conn)
    .await
}

pub async fn delete_document(
    conn: &mut PgConnection,
    collection: &CollectionRow,
    seq: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "DELETE FROM {} WHERE seq = $1",
        collection.table()
    ))
    .bind(seq)
    .execute(conn)
    .await?;
    Ok(())
}

/// The documents of a collection one caller may read.
pub struct Visible<'a> {
    pub collection: &'a CollectionRow,
    pub access: &'a Access,
    pub roles: &'a [String],
}

/// A validated list query.
pub struct ListQuery<'a> {
    pub filter: Option<&'a Filter>,
    pub sort: &'a [Sort],
    /// Rows to fetch: one more than the page holds, to know whether another follows.
    pub fetch: i64,
    /// (where the page starts, documents before it rather than after)
    pub cursor: Option<(Cursor<'a>, bool)>,
}

/// Where a page starts.
pub enum Cursor<'a> {
    /// The sort key's values and seq of the row a page ended with (a `next`): a position in
    /// the order, which holds even after that row is gone.
    Key(&'a [Value], i64),
    /// A document by id, looked up among those the caller may read.
    Id(&'a str),
}

/// `WHERE` for what the caller may read, then the filter.
fn push_where(
    qb: &mut QueryBuilder<'_, Postgres>,
    access: &Access,
    roles: &[String],
    filter: Option<&Filter>,
) {
    qb.push(" WHERE ");
    if access.read_all {
        qb.push("true");
    } else if access.item_security {
        qb.push("perm_read && ").push_bind(roles.to_vec());
    } else {
        qb.push("false");
    }
    if let Some(filter) = filter {
        qb.push(" AND ");
        push_filter(qb, filter);
    }
}

fn push_scalar(qb: &mut QueryBuilder<'_, Postgres>, value: &Scalar) {
    match value {
        Scalar::Text(s) => qb.push_bind(s.clone()),
        Scalar::Int(n) => qb.push_bind(*n),
        Scalar::Float(f) => qb.push_bind(*f),
        Scalar::Bool(b) => qb.push_bind(*b),
        Scalar::Time(t) => qb.push_bind(*t),
    };
}

fn push_filter(qb: &mut QueryBuilder<'_, Postgres>, filter: &Filter) {
    match filter {
        Filter::And(items) | Filter::Or(items) => {
            let joiner = if matches!(filter, Filter::And(_)) {
                " AND "
            } else {
                " OR "
            };
            qb.push("(");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    qb.push(joiner);
                }
                push_filter(qb, item);
            }
            qb.push(")");
        }
        Filter::Cond { field, op, values } => {
            let expr = field_expr(field);
            let cmp = |qb: &mut QueryBuilder<'_, Postgres>, sql: &str, v: &Scalar| {
                qb.push(format!("{expr} {sql} "));
                push_scalar(qb, v);
            };
            match op {
                Op::Equal => cmp(qb, "=", &values[0]),
                Op::NotEqual => {
                    // Documents without the value count as "not equal" too.
                    qb.push(format!("({expr} IS NULL OR {expr} <> "));
                    push_scalar(qb, &values[0]);
                    qb.push(")");
                }
                Op::LessThan => cmp(qb, "<", &values[0]),
                Op::LessThanEqual => cmp(qb, "<=", &values[0]),
                Op::GreaterThan => cmp(qb, ">", &values[0]),
                Op::GreaterThanEqual => cmp(qb, ">=", &values[0]),
                Op::Between => {
                    cmp(qb, "BETWEEN", &values[0]);
                    qb.push(" AND ");
                    push_scalar(qb, &values[1]);
                }
                Op::In => {
                    qb.push(format!("{expr} IN ("));
                    let mut sep = qb.separated(", ");
                    for v in values {
                        match v {
                            Scalar::Text(s) => sep.push_bind(s.clone()),
                            Scalar::Int(n) => sep.push_bind(*n),
                            Scalar::Float(f) => sep.push_bind(*f),
                            Scalar::Bool(b) => sep.push_bind(*b),
                            Scalar::Time(t) => sep.push_bind(*t),
                        };
                    }
                    qb.push(")");
                }
                Op::Contains if matches!(field, Field::Attr(a) if a.array) => {
                    qb.push(format!("{expr} @> "));
                    qb.push_bind(Json(Value::Array(vec![values[0].to_json()])));
                }
                Op::Contains | Op::StartsWith | Op::EndsWith => {
                    let Scalar::Text(s) = &values[0] else { return };
                    let pattern = match op {
                        Op::Contains => format!("%{}%", like_escape(s)),
                        Op::StartsWith => format!("{}%", like_escape(s)),
                        _ => format!("%{}", like_escape(s)),
                    };
                    qb.push(format!("{expr} LIKE "));
                    qb.push_bind(pattern);
                }
                Op::IsNull => {
                    qb.push(format!("{} IS NULL", null_expr(field)));
                }
                Op::IsNotNull => {
                    qb.push(format!("{} IS NOT NULL", null_expr(field)));
                }
                Op::Search => {
                    let (Field::Attr(a), Scalar::Text(s)) = (field, &values[0]) else {
                        return;
                    };
                    qb.push(format!(
                        "{} @@ websearch_to_tsquery('simple', ",
                        fulltext_expr(a)
                    ));
                    qb.push_bind(s.clone());
                    qb.push(")");
                }
            }
        }
    }
}

/// JSON null and a missing key both count as null.
fn null_expr(field: &Field) -> String {
    match field {
        Field::Attr(a) => format!("nullif(data->'{}', 'null'::jsonb)", a.key),
        other => field_expr(other),
    }
}

/// The direction of the tie-break on seq: the last sort key's, so an index ending in seq
/// serves the whole ORDER BY.
fn tie_descending(sort: &[Sort]) -> bool {
    sort.last().is_some_and(|s| s.descending)
}

fn push_order(qb: &mut QueryBuilder<'_, Postgres>, sort: &[Sort], reverse: bool) {
    qb.push(" ORDER BY ");
    for s in sort {
        let desc = s.descending != reverse;
        qb.push(format!(
            "{} {}, ",
            field_expr(&s.field),
            if desc { "DESC" } else { "ASC" }
        ));
    }
    let desc = tie_descending(sort) != reverse;
    qb.push(if desc { "seq DESC" } else { "seq ASC" });
}

/// A row's sort values as [`cursor_values`] reads them from the table (`to_jsonb` of each
/// sort expression), for the `next` cursor of a page it ends.
pub fn sort_values(sort: &[Sort], row: &DocumentRow) -> Vec<Value> {
    sort.iter()
        .map(|s| match &s.field {
            Field::Id => Value::String(row.id.clone()),
            Field::CreatedAt => serde_json::to_value(row.created_at).unwrap_or(Value::Null),
            Field::UpdatedAt => serde_json::to_value(row.updated_at).unwrap_or(Value::Null),
            Field::Attr(a) => row.data.0.get(&a.key).cloned().unwrap_or(Value::Null),
        })
        .collect()
}

/// Whether `values` could be the sort values of a row under `sort` (a cursor made up or
/// made under another sort is not).
pub fn fit_sort(sort: &[Sort], values: &[Value]) -> bool {
    sort.len() == values.len()
        && sort.iter().zip(values).all(|(s, v)| {
            v.is_null()
                || match &s.field {
                    Field::Id => v.is_string(),
                    Field::CreatedAt | Field::UpdatedAt => v
                        .as_str()
                        .is_some_and(|t| DateTime::parse_from_rfc3339(t).is_ok()),
                    Field::Attr(a) if a.array || a.kind == AttributeType::Json => true,
                    Field::Attr(a) => match a.kind {
                        AttributeType::Integer => v.is_i64(),
                        AttributeType::Float => v.is_number(),
                        AttributeType::Boolean => v.is_boolean(),
                        _ => v.as_str().is_some_and(|t| !t.contains('\0')),
                    },
                }
        })
}

/// The cursor document's sort values (as JSON) and seq, if the caller may see it.
async fn cursor_values(
    conn: &mut PgConnection,
    v: &Visible<'_>,
    sort: &[Sort],
    id: &str,
) -> Result<Option<(Vec<Value>, i64)>, sqlx::Error> {
    let exprs: Vec<String> = sort
        .iter()
        .map(|s| format!("to_jsonb({})", field_expr(&s.field)))
        .collect();
    let select = if exprs.is_empty() {
        "'[]'::jsonb".to_owned()
    } else {
        format!("jsonb_build_array({})", exprs.join(", "))
    };
    let mut qb = QueryBuilder::<Postgres>::new(format!(
        "SELECT {select}, seq FROM {}",
        v.collection.table()
    ));
    push_where(&mut qb, v.access, v.roles, None);
    qb.push(" AND id = ").push_bind(id.to_owned());
    let row = qb.build().fetch_optional(conn).await?;
    Ok(match row {
        Some(row) => {
            let values: Json<Vec<Value>> = row.try_get(0)?;
            Some((values.0, row.try_get(1)?))
        }
        None => None,
    })
}

fn push_json_scalar(qb: &mut QueryBuilder<'_, Postgres>, field: &Field, v: &Value) {
    match field {
        Field::CreatedAt | Field::UpdatedAt => {
            let t = v
                .as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.with_timezone(&Utc));
            qb.push_bind(t);
        }
        Field::Attr(a) if a.kind == AttributeType::Integer => {
            qb.push_bind(v.as_i64());
        }
        Field::Attr(a) if a.kind == AttributeType::Float => {
            qb.push_bind(v.as_f64());
        }
        Field::Attr(a) if a.kind == AttributeType::Boolean => {
            qb.push_bind(v.as_bool());
        }
        _ => {
            qb.push_bind(v.as_str().map(str::to_owned));
        }
    }
}

/// Keyset condition: rows strictly after the cursor in the (possibly reversed) order.
/// ASC puts nulls last and DESC first (PostgreSQL's defaults, which indexes follow), so a
/// null sorts as the largest value.
fn push_keyset(
    qb: &mut QueryBuilder<'_, Postgres>,
    sort: &[Sort],
    values: &[Value],
    seq: i64,
    reverse: bool,
) {
    let tie_desc = tie_descending(sort) != reverse;
    let uniform = sort.iter().all(|s| (s.descending != reverse) == tie_desc);
    let never_null = |f: &Field| match f {
        Field::Attr(a) => a.required,
        _ => true,
    };
    // One direction and no nulls to step over: a row comparison, which an index on the sort
    // keys (ending in seq) serves directly.
    if uniform
        && values.iter().all(|v| !v.is_null())
        && (tie_desc || sort.iter().all(|s| never_null(&s.field)))
    {
        qb.push(" AND (");
        for s in sort {
            qb.push(format!("{}, ", field_expr(&s.field)));
        }
        qb.push(if tie_desc { "seq) < (" } else { "seq) > (" });
        for (s, v) in sort.iter().zip(values) {
            push_json_scalar(qb, &s.field, v);
            qb.push(", ");
        }
        qb.push_bind(seq).push(")");
        return;
    }
    qb.push(" AND (");
    for i in 0..=sort.len() {
        if i > 0 {
            qb.push(" OR ");
        }
        qb.push("(");
        for (s, v) in sort.iter().zip(values).take(i) {
            let expr = field_expr(&s.field);
            if v.is_null() {
                qb.push(format!("{expr} IS NULL AND "));
            } else {
                qb.push(format!("{expr} = "));
                push_json_scalar(qb, &s.field, v);
                qb.push(" AND ");
            }
        }
        if i == sort.len() {
            let desc = tie_descending(sort) != reverse;
            qb.push(if desc { "seq < " } else { "seq > " })
                .push_bind(seq);
        } else {
            let s = &sort[i];
            let v = &values[i];
            let expr = field_expr(&s.field);
            match (s.descending != reverse, v.is_null()) {
                (false, true) => {
                    qb.push("false");
                }
                (false, false) => {
                    qb.push(format!("({expr} IS NULL OR {expr} > "));
                    push_json_scalar(qb, &s.field, v);
                    qb.push(")");
                }
                (true, true) => {
                    qb.push(format!("{expr} IS NOT NULL"));
                }
                (true, false) => {
                    qb.push(format!("{expr} < "));
                    push_json_scalar(qb, &s.field, v);
                }
            }
        }
        qb.push(")");
    }
    qb.push(")");
}

/// Up to `fetch` documents the query asks for, in page order (with `before`, the rows
/// nearest the cursor come last); `None` when the cursor is not a document the caller can
/// see. With `version`, the statement also reads the collection's version, and `Stale` says
/// the cached copy the query was built from is out of date (an empty page or a missing
/// cursor costs a second statement to tell).
pub async fn list_documents(
    conn: &mut PgConnection,
    v: &Visible<'_>,
    q: &ListQuery<'_>,
    version: Option<i64>,
) -> Result<Fresh<Option<Vec<DocumentRow>>>, sqlx::Error> {
    let outcome = list_checked(conn, v, q, version).await;
    let (rows, seen) = match outcome {
        Err(e) if version.is_some() && undefined_table(&e) => return Ok(Fresh::Stale),
        other => other?,
    };
    let Some(expected) = version else {
        return Ok(Fresh::Current(rows));
    };
    let current = match seen {
        Some(seen) => Some(seen),
        None => {
            sqlx::query_scalar("SELECT version FROM baas.collections WHERE id = $1")
                .bind(v.collection.id)
                .fetch_optional(&mut *conn)
                .await?
        }
    };
    Ok(if current == Some(expected) {
        Fresh::Current(rows)
    } else {
        Fresh::Stale
    })
}

/// The rows, and the collection's version when a row carried it.
async fn list_checked(
    conn: &mut PgConnection,
    v: &Visible<'_>,
    q: &ListQuery<'_>,
    version: Option<i64>,
) -> Result<(Option<Vec<DocumentRow>>, Option<i64>), sqlx::Error> {
    let reverse = q.cursor.as_ref().is_some_and(|(_, before)| *before);
    let cursor = match &q.cursor {
        Some((Cursor::Key(values, seq), _)) => Some((values.to_vec(), *seq)),
        Some((Cursor::Id(id), _)) => match cursor_values(conn, v, q.sort, id).await? {
            Some(c) => Some(c),
            None => return Ok((None, None)),
        },
        None => None,
    };
    let checked = if version.is_some() {
        ", (SELECT version FROM baas.collections WHERE id = "
    } else {
        ""
    };
    let mut qb = QueryBuilder::<Postgres>::new(format!("SELECT *{checked}"));
    if version.is_some() {
        qb.push_bind(v.collection.id)
            .push(") AS collection_version");
    }
    qb.push(format!(" FROM {}", v.collection.table()));
    push_where(&mut qb, v.access, v.roles, q.filter);
    if let Some((values, seq)) = &cursor {
        push_keyset(&mut qb, q.sort, values, *seq, reverse);
    }
    push_order(&mut qb, q.sort, reverse);
    qb.push(" LIMIT ").push_bind(q.fetch);
    let found: Vec<PgRow> = qb.build().fetch_all(&mut *conn).await?;
    let seen = match found.first() {
        Some(row) if version.is_some() => Some(row.try_get::<i64, _>("collection_version")?),
        _ => None,
    };
    let mut rows = found
        .iter()
        .map(<DocumentRow as sqlx::FromRow<PgRow>>::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    if reverse {
        rows.reverse();
    }
    Ok((Some(rows), seen))
}

pub async fn count_documents(
    conn: &mut PgConnection,
    v: &Visible<'_>,
    filter: Option<&Filter>,
) -> Result<i64, sqlx::Error> {
    let mut qb =
        QueryBuilder::<Postgres>::new(format!("SELECT count(*) FROM {}", v.collection.table()));
    push_where(&mut qb, v.access, v.roles, filter);
    qb.build_query_scalar().fetch_one(conn).await
}

/// One aggregate to compute: (SQL function, field; `None` for count).
pub struct Aggregate {
    pub function: &'static str,
    pub field: Option<Field>,
}

/// Groups (ordered by key) with one JSON value per aggregate.
pub async fn aggregate(
    conn: &mut PgConnection,
    v: &Visible<'_>,
    filter: Option<&Filter>,
    group_by: Option<&Field>,
    aggregates: &[Aggregate],
    max_groups: i64,
) -> Result<Vec<(Option<Value>, Vec<Value>)>, sqlx::Error> {
    let values: Vec<String> = aggregates
        .iter()
        .map(|a| match &a.field {
            None => "count(*)".to_owned(),
            Some(f) => format!("{}({})", a.function, field_expr(f)),
        })
        .collect();
    let group = group_by.map(|f| format!("to_jsonb({})", field_expr(f)));
    let mut qb = QueryBuilder::<Postgres>::new(format!(
        "SELECT {}, jsonb_build_array({}) FROM {}",
        group.as_deref().unwrap_or("NULL::jsonb"),
        values.join(", "),
        v.collection.table()
    ));
    push_where(&mut qb, v.access, v.roles, filter);
    if let Some(g) = &group_by {
        let expr = field_expr(g);
        qb.push(format!(" GROUP BY {expr} ORDER BY {expr}"));
        qb.push(" LIMIT ").push_bind(max_groups + 1);
    }
    let rows: Vec<PgRow> = qb.build().fetch_all(conn).await?;
    rows.into_iter()
        .map(|row| {
            let key: Option<Json<Value>> = row.try_get(0)?;
            let values: Json<Vec<Value>> = row.try_get(1)?;
            Ok((key.map(|k| k.0), values.0))
        })
        .collect()
}
