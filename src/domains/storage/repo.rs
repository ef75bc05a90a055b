//! All SQL of the storage domain (schema `storage`).

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use super::images::VariantSpec;
use super::model::{BucketId, FileCursor, FileId, FileSort, UploadId, VersionId};
use crate::platform::grants::{Access, ContainerPermissions, ItemGrants, ItemPermissions};
use crate::platform::wakeup;

#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct BucketRow {
    pub id: BucketId,
    pub owner_id: Uuid,
    pub name: String,
    pub max_file_bytes: i64,
    pub allowed_types: Vec<String>,
    pub allowed_extensions: Vec<String>,
    pub public: bool,
    pub versioning: bool,
    pub variants: Json<Vec<VariantSpec>>,
    pub permissions: Json<ContainerPermissions>,
    pub file_security: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub struct BucketFields<'a> {
    pub name: &'a str,
    pub max_file_bytes: i64,
    pub allowed_types: &'a [String],
    pub allowed_extensions: &'a [String],
    pub public: bool,
    pub versioning: bool,
    pub variants: &'a [VariantSpec],
    pub permissions: &'a ContainerPermissions,
    pub file_security: bool,
}

type BucketQuery<'q> = sqlx::query::QueryAs<'q, Postgres, BucketRow, sqlx::postgres::PgArguments>;

/// `sql` with a bucket's id as $1 and its settings as $2 to $10, in `BucketFields` order.
fn bucket_query<'q>(sql: &'q str, id: BucketId, b: &BucketFields<'q>) -> BucketQuery<'q> {
    sqlx::query_as(sql)
        .bind(id)
        .bind(b.name)
        .bind(b.max_file_bytes)
        .bind(b.allowed_types)
        .bind(b.allowed_extensions)
        .bind(b.public)
        .bind(b.versioning)
        .bind(Json(b.variants))
        .bind(Json(b.permissions))
        .bind(b.file_security)
}

pub async fn insert_bucket(
    conn: &mut PgConnection,
    owner: Uuid,
    b: &BucketFields<'_>,
) -> Result<BucketRow, sqlx::Error> {
    bucket_query(
        "INSERT INTO storage.buckets (id, name, max_file_bytes, allowed_types, allowed_extensions, public, versioning,
                                      variants, permissions, file_security, owner_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING *",
        BucketId::new(),
        b,
    )
    .bind(owner)
    .fetch_one(conn)
    .await
}

pub async fn update_bucket(
    conn: &mut PgConnection,
    id: BucketId,
    b: &BucketFields<'_>,
) -> Result<BucketRow, sqlx::Error> {
    bucket_query(
        "UPDATE storage.buckets SET name = $2, max_file_bytes = $3, allowed_types = $4, allowed_extensions = $5, public = $6,
                versioning = $7, variants = $8, permissions = $9, file_security = $10, updated_at = now()
          WHERE id = $1 RETURNING *",
        id,
        b,
    )
    .fetch_one(conn)
    .await
}

pub async fn bucket(
    conn: &mut PgConnection,
    id: BucketId,
) -> Result<Option<BucketRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM storage.buckets WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Up to `fetch` of the owner's buckets, oldest first, after the `(created_at, id)` given.
pub async fn list_buckets(
    db: &PgPool,
    owner: Uuid,
    after: Option<(DateTime<Utc>, BucketId)>,
    fetch: i64,
) -> Result<Vec<BucketRow>, sqlx::Error> {
    let (created_at, id) = after.unzip();
    // Without a cursor, from before the first bucket: one statement, one index range.
    sqlx::query_as(
        "SELECT * FROM storage.buckets
          WHERE owner_id = $1 AND (created_at, id) > (coalesce($2, '-infinity'), coalesce($3, '00000000-0000-0000-0000-000000000000'))
          ORDER BY created_at, id LIMIT $4",
    )
    .bind(owner)
    .bind(created_at)
    .bind(id)
    .bind(fetch)
    .fetch_all(db)
    .await
}

/// Deletes the bucket; cascades and triggers queue every byte it held for removal.
pub async fn delete_bucket(conn: &mut PgConnection, id: BucketId) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM storage.buckets WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct FileRow {
    pub id: FileId,
    pub bucket_id: BucketId,
    pub uploader_id: Option<Uuid>,
    pub name: String,
    pub current_version: VersionId,
    pub tags: Vec<String>,
    pub metadata: Json<serde_json::Map<String, serde_json::Value>>,
    pub perm_read: Vec<String>,
    pub perm_update: Vec<String>,
    pub perm_delete: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl FileRow {
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

#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct VersionRow {
    pub id: VersionId,
    pub file_id: FileId,
    pub number: i32,
    pub size: i64,
    pub content_type: String,
    pub sha256: String,
    pub object_key: String,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub created_at: DateTime<Utc>,
}

/// What a file's response shows of its current version.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VersionSummary {
    pub number: i32,
    pub size: i64,
    pub content_type: String,
    pub sha256: String,
    pub width: Option<i32>,
    pub height: Option<i32>,
}

impl VersionRow {
    pub fn summary(&self) -> VersionSummary {
        VersionSummary {
            number: self.number,
            size: self.size,
            content_type: self.content_type.clone(),
            sha256: self.sha256.clone(),
            width: self.width,
            height: self.height,
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct VariantRow {
    pub version_id: VersionId,
    pub name: String,
    pub width: i32,
    pub height: i32,
    pub size: i64,
    pub content_type: String,
    pub object_key: String,
}

/// Adds `bytes` to the owner's usage if that stays within `quota` (0: no quota); false when
/// it would not.
pub async fn charge(
    conn: &mut PgConnection,
    owner: Uuid,
    bytes: i64,
    quota: u64,
) -> Result<bool, sqlx::Error> {
    let quota = if quota == 0 {
        i64::MAX
    } else {
        i64::try_from(quota).unwrap_or(i64::MAX)
    };
    let row: Option<i64> = sqlx::query_scalar(
        "INSERT INTO storage.usage AS u (owner_id, bytes) SELECT $1, $2 WHERE $2 <= $3
         ON CONFLICT (owner_id) DO UPDATE SET bytes = u.bytes + EXCLUDED.bytes WHERE u.bytes + EXCLUDED.bytes <= $3
         RETURNING bytes",
    )
    .bind(owner)
    .bind(bytes)
    .bind(quota)
    .fetch_optional(conn)
    .await?;
    Ok(row.is_some())
}

pub async fn usage(conn: &mut PgConnection, owner: Uuid) -> Result<i64, sqlx::Error> {
    let bytes: Option<i64> =
        sqlx::query_scalar("SELECT bytes FROM storage.usage WHERE owner_id = $1")
            .bind(owner)
            .fetch_optional(conn)
            .await?;
    Ok(bytes.unwrap_or(0))
}

pub struct NewVersion<'a> {
    pub id: VersionId,
    pub file_id: FileId,
    pub size: i64,
    pub content_type: &'a str,
    pub sha256: &'a str,
    pub object_key: &'a str,
    pub dimensions: Option<(u32, u32)>,
    pub quota_owner: Uuid,
}

pub async fn insert_version(
    conn: &mut PgConnection,
    v: &NewVersion<'_>,
) -> Result<VersionRow, sqlx::Error> {
    let (w, h) = v
        .dimensions
        .map(|(w, h)| (Some(w as i32), Some(h as i32)))
        .unwrap_or((None, None));
    sqlx::query_as(
        "INSERT INTO storage.versions (id, file_id, number, size, content_type, sha256, object_key, width, height, quota_owner)
         VALUES ($1, $2, (SELECT coalesce(max(number), 0) + 1 FROM storage.versions WHERE file_id = $2), $3, $4, $5, $6, $7, $8, $9)
         RETURNING *",
    )
    .bind(v.id)
    .bind(v.file_id)
    .bind(v.size)
    .bind(v.content_type)
    .bind(v.sha256)
    .bind(v.object_key)
    .bind(w)
    .bind(h)
    .bind(v.quota_owner)
    .fetch_one(conn)
    .await
}

pub struct NewFile<'a> {
    pub id: FileId,
    pub bucket_id: BucketId,
    pub uploader: Option<Uuid>,
    pub name: &'a str,
    pub version: VersionId,
    pub tags: &'a [String],
    pub metadata: &'a serde_json::Map<String, serde_json::Value>,
    pub permissions: &'a ItemPermissions,
}

pub async fn insert_file(conn: &mut PgConnection, f: &NewFile<'_>) -> Result<FileRow, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO storage.files (id, bucket_id, uploader_id, name, current_version, tags, metadata, perm_read, perm_update, perm_delete)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING *",
    )
    .bind(f.id)
    .bind(f.bucket_id)
    .bind(f.uploader)
    .bind(f.name)
    .bind(f.version)
    .bind(f.tags)
    .bind(Json(f.metadata))
    .bind(&f.permissions.read)
    .bind(&f.permissions.update)
    .bind(&f.permissions.delete)
    .fetch_one(conn)
    .await
}

pub async fn file(
    conn: &mut PgConnection,
    id: FileId,
    for_update: bool,
) -> Result<Option<FileRow>, sqlx::Error> {
    let sql = if for_update {
        "SELECT * FROM storage.files WHERE id = $1 FOR UPDATE"
    } else {
        "SELECT * FROM storage.files WHERE id = $1"
    };
    sqlx::query_as(sql).bind(id).fetch_optional(conn).await
}

/// A file with its bucket and current version, in one round trip (the download path).
pub async fn file_bundle(
    conn: &mut PgConnection,
    id: FileId,
) -> Result<Option<(FileRow, BucketRow, VersionRow)>, sqlx::Error> {
    let row: Option<(Json<FileRow>, Json<BucketRow>, Json<VersionRow>)> = sqlx::query_as(
        "SELECT to_jsonb(f), to_jsonb(b), to_jsonb(v) FROM storage.files f
           JOIN storage.buckets b ON b.id = f.bucket_id JOIN storage.versions v ON v.id = f.current_version
          WHERE f.id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(f, b, v)| (f.0, b.0, v.0)))
}

/// What a file's metadata shows, in one statement: the file, its bucket (for the grants),
/// its current version and that version's variants.
pub async fn file_view(
    db: &PgPool,
    id: FileId,
) -> Result<Option<(FileRow, BucketRow, VersionRow, Vec<VariantRow>)>, sqlx::Error> {
    type Row = (
        Json<FileRow>,
        Json<BucketRow>,
        Json<VersionRow>,
        Json<Vec<VariantRow>>,
    );
    let row: Option<Row> = sqlx::query_as(
        "SELECT to_jsonb(f), to_jsonb(b), to_jsonb(v),
                COALESCE((SELECT jsonb_agg(to_jsonb(x) ORDER BY x.name) FROM storage.variants x
                           WHERE x.version_id = v.id), '[]'::jsonb)
           FROM storage.files f
           JOIN storage.buckets b ON b.id = f.bucket_id JOIN storage.versions v ON v.id = f.current_version
          WHERE f.id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(f, b, v, x)| (f.0, b.0, v.0, x.0)))
}

/// Makes `version` the file's current one; returns the file as it now is.
pub async fn set_current(
    conn: &mut PgConnection,
    file: FileId,
    version: VersionId,
) -> Result<FileRow, sqlx::Error> {
    sqlx::query_as(
        "UPDATE storage.files SET current_version = $2, updated_at = now() WHERE id = $1 RETURNING *",
    )
    .bind(file)
    .bind(version)
    .fetch_one(conn)
    .await
}

pub async fn update_file(
    conn: &mut PgConnection,
    id: FileId,
    name: &str,
    tags: &[String],
    metadata: &serde_json::Map<String, serde_json::Value>,
    permissions: &ItemPermissions,
) -> Result<FileRow, sqlx::Error> {
    sqlx::query_as(
        "UPDATE storage.files SET name = $2, tags = $3, metadata = $4, perm_read = $5, perm_update = $6, perm_delete = $7, updated_at = now()
          WHERE id = $1 RETURNING *",
    )
    .bind(id)
    .bind(name)
    .bind(tags)
    .bind(Json(metadata))
    .bind(&permissions.read)
    .bind(&permissions.update)
    .bind(&permissions.delete)
    .fetch_one(conn)
    .await
}

pub async fn delete_file(conn: &mut PgConnection, id: FileId) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM storage.files WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn version(
    conn: &mut PgConnection,
    id: VersionId,
) -> Result<Option<VersionRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM storage.versions WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
}

pub async fn version_by_number(
    conn: &mut PgConnection,
    file: FileId,
    number: i32,
) -> Result<Option<VersionRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM storage.versions WHERE file_id = $1 AND number = $2")
        .bind(file)
        .bind(number)
        .fetch_optional(conn)
        .await
}

/// Up to `fetch` of a file's versions, oldest first, after version number `after`.
pub async fn versions(
    conn: &mut PgConnection,
    file: FileId,
    after: Option<i32>,
    fetch: i64,
) -> Result<Vec<VersionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM storage.versions WHERE file_id = $1 AND number > coalesce($2, 0) ORDER BY number LIMIT $3",
    )
    .bind(file)
    .bind(after)
    .bind(fetch)
    .fetch_all(conn)
    .await
}

/// Deletes every version but `keep` (an unversioned bucket's replace).
pub async fn delete_other_versions(
    conn: &mut PgConnection,
    file: FileId,
    keep: VersionId,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM storage.versions WHERE file_id = $1 AND id <> $2")
        .bind(file)
        .bind(keep)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn delete_version(conn: &mut PgConnection, id: VersionId) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM storage.versions WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn variants(
    conn: &mut PgConnection,
    version: VersionId,
) -> Result<Vec<VariantRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM storage.variants WHERE version_id = $1 ORDER BY name")
        .bind(version)
        .fetch_all(conn)
        .await
}

pub async fn variants_of(
    conn: &mut PgConnection,
    versions: &[VersionId],
) -> Result<Vec<VariantRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM storage.variants WHERE version_id = ANY($1) ORDER BY name")
        .bind(versions)
        .fetch_all(conn)
        .await
}

pub async fn variant(
    conn: &mut PgConnection,
    version: VersionId,
    name: &str,
) -> Result<Option<VariantRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM storage.variants WHERE version_id = $1 AND name = $2")
        .bind(version)
        .bind(name)
        .fetch_optional(conn)
        .await
}

/// Records a variant; false when the version went away meanwhile (or it exists already).
pub async fn insert_variant(conn: &mut PgConnection, v: &VariantRow) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO storage.variants (version_id, name, width, height, size, content_type, object_key)
         SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS (SELECT 1 FROM storage.versions WHERE id = $1)
         ON CONFLICT DO NOTHING",
    )
    .bind(v.version_id)
    .bind(&v.name)
    .bind(v.width)
    .bind(v.height)
    .bind(v.size)
    .bind(&v.content_type)
    .bind(&v.object_key)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn preview(
    conn: &mut PgConnection,
    version: VersionId,
    params: &str,
) -> Result<Option<(String, String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT object_key, content_type, size FROM storage.previews WHERE version_id = $1 AND params = $2")
        .bind(version)
        .bind(params)
        .fetch_optional(conn)
        .await
}

/// A stored preview, and who pays for it.
pub struct NewPreview<'a> {
    pub version: VersionId,
    pub params: &'a str,
    pub key: &'a str,
    pub content_type: &'a str,
    pub size: i64,
    /// The bucket's owner, whose quota the preview's bytes count against.
    pub quota_owner: Uuid,
}

/// Records a preview of a version that still exists (false if it does not, or if the same
/// preview is already recorded). Call it after [`charge`] in one transaction.
pub async fn insert_preview(
    conn: &mut PgConnection,
    p: &NewPreview<'_>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO storage.previews (version_id, params, object_key, content_type, size, quota_owner)
         SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM storage.versions WHERE id = $1)
         ON CONFLICT DO NOTHING",
    )
    .bind(p.version)
    .bind(p.params)
    .bind(p.key)
    .bind(p.content_type)
    .bind(p.size)
    .bind(p.quota_owner)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A file with its current version, as listed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ListedFile {
    #[sqlx(flatten)]
    pub file: FileRow,
    #[sqlx(flatten)]
    pub version: VersionSummary,
}

pub struct FileQuery<'a> {
    pub bucket: BucketId,
    pub prefix: Option<&'a str>,
    /// (exact type) or (family, with a trailing `/`)
    pub content_type: Option<&'a str>,
    pub tag: Option<&'a str>,
    pub sort: FileSort,
    pub descending: bool,
    /// Rows to fetch (a page and one more).
    pub fetch: i64,
    /// The sort key's values of the previous page's last file.
    pub after: Option<FileCursor>,
}

pub async fn list_files(
    conn: &mut PgConnection,
    access: &Access,
    roles: &[String],
    q: &FileQuery<'_>,
) -> Result<Vec<ListedFile>, sqlx::Error> {
    let mut qb = QueryBuilder::<Postgres>::new(
        "SELECT f.*, v.size, v.content_type, v.sha256, v.number, v.width, v.height
           FROM storage.files f JOIN storage.versions v ON v.id = f.current_version WHERE f.bucket_id = ",
    );
    qb.push_bind(q.bucket);
    if !access.read_all {
        if access.item_security {
            qb.push(" AND f.perm_read && ").push_bind(roles.to_vec());
        } else {
            qb.push(" AND false");
        }
    }
    if let Some(prefix) = q.prefix {
        qb.push(" AND f.name LIKE ")
            .push_bind(format!("{}%", crate::platform::db::like_escape(prefix)));
    }
    match q.content_type {
        Some(t) if t.ends_with('/') => {
            qb.push(" AND starts_with(v.content_type, ")
                .push_bind(t.to_owned())
                .push(")");
        }
        Some(t) => {
            qb.push(" AND v.content_type = ").push_bind(t.to_owned());
        }
        None => {}
    }
    if let Some(tag) = q.tag {
        qb.push(" AND f.tags @> ").push_bind(vec![tag.to_owned()]);
    }
    let column = match q.sort {
        FileSort::Name => "f.name",
        FileSort::CreatedAt => "f.created_at",
    };
    let (cmp, dir) = if q.descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    if let Some(after) = &q.after {
        qb.push(format!(" AND ({column}, f.id) {cmp} ("));
        match after {
            FileCursor::Name(c) => qb.push_bind(c.name.clone()).push(", ").push_bind(c.id),
            FileCursor::CreatedAt(c) => qb.push_bind(c.created_at).push(", ").push_bind(c.id),
        };
        qb.push(")");
    }
    qb.push(format!(" ORDER BY {column} {dir}, f.id {dir} LIMIT "))
        .push_bind(q.fetch);
    qb.build_query_as().fetch_all(conn).await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UploadRow {
    pub id: UploadId,
    pub bucket_id: BucketId,
    pub uploader_id: Option<Uuid>,
    pub file_id: Option<FileId>,
    pub name: String,
    pub length: i64,
    pub received: i64,
    pub options: Json<serde_json::Value>,
    pub expires_at: DateTime<Utc>,
    /// Bytes of the payer's quota held until the upload finishes or goes.
    pub reserved: i64,
    /// SHA-256 (hex) of an anonymous upload's secret.
    pub token_hash: Option<String>,
}

pub struct NewUpload<'a> {
    pub bucket: BucketId,
    pub uploader: Option<Uuid>,
    pub file: Option<FileId>,
    pub name: &'a str,
    pub length: i64,
    pub options: serde_json::Value,
    pub expires_at: DateTime<Utc>,
    /// Whose quota `length` was reserved from (by [`charge`], in the same transaction).
    pub quota_owner: Uuid,
    pub token_hash: Option<String>,
    /// The most open uploads one payer may have (signed-in uploads only).
    pub max_open: i64,
    /// For an anonymous upload: the creator's address, and the most open anonymous uploads
    /// its bucket, and that address within the bucket, may have.
    pub client_ip: Option<&'a str>,
    pub max_anonymous_per_bucket: i64,
    pub max_anonymous_per_ip: i64,
    pub max_anonymous_reserved: i64,
}

/// Why [`insert_upload`] recorded nothing.
#[derive(Debug, PartialEq, Eq)]
pub enum UploadCap {
    /// The payer's own cap (signed-in uploads).
    Payer,
    /// The bucket's, or the address's, cap on anonymous uploads.
    Anonymous,
}

const UPLOAD_COLUMNS: &str = "id, bucket_id, uploader_id, file_id, name, length, received, options, expires_at, reserved, token_hash";

/// Records an upload holding `length` bytes of its payer's quota, unless a cap is reached:
/// a signed-in payer's `max_open` open uploads, or for an anonymous upload (which its bucket's
/// owner pays for) the bucket's and the address's anonymous caps, which are counted apart so
/// anonymous callers never use up the owner's own. Run it after [`charge`] in the same
/// transaction: the charge locks the payer's usage row, so concurrent creations for one payer
/// (anonymous ones included, as the owner pays) count each other's uploads here.
pub async fn insert_upload(
    conn: &mut PgConnection,
    u: &NewUpload<'_>,
) -> Result<Result<UploadRow, UploadCap>, sqlx::Error> {
    let row: Option<UploadRow> = sqlx::query_as(&format!(
        "INSERT INTO storage.uploads (id, bucket_id, uploader_id, file_id, name, length, options, expires_at, quota_owner, reserved, token_hash, client_ip)
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $6, $10, $12
          WHERE CASE WHEN $3::uuid IS NOT NULL
                THEN (SELECT count(*) FROM storage.uploads
                       WHERE quota_owner = $9 AND uploader_id IS NOT NULL AND expires_at > now()) < $11
                ELSE (SELECT count(*) < $13
                             AND count(*) FILTER (WHERE client_ip IS NOT DISTINCT FROM $12) < $14
                             AND coalesce(sum(reserved), 0) + $6 <= $15
                        FROM storage.uploads
                       WHERE bucket_id = $2 AND uploader_id IS NULL AND expires_at > now())
                END
         RETURNING {UPLOAD_COLUMNS}"
    ))
    .bind(UploadId::new())
    .bind(u.bucket)
    .bind(u.uploader)
    .bind(u.file)
    .bind(u.name)
    .bind(u.length)
    .bind(Json(&u.options))
    .bind(u.expires_at)
    .bind(u.quota_owner)
    .bind(&u.token_hash)
    .bind(u.max_open)
    .bind(u.client_ip)
    .bind(u.max_anonymous_per_bucket)
    .bind(u.max_anonymous_per_ip)
    .bind(u.max_anonymous_reserved)
    .fetch_optional(conn)
    .await?;
    Ok(row.ok_or(if u.uploader.is_some() {
        UploadCap::Payer
    } else {
        UploadCap::Anonymous
    }))
}

pub async fn upload(
    conn: &mut PgConnection,
    id: UploadId,
    for_update: bool,
) -> Result<Option<UploadRow>, sqlx::Error> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    sqlx::query_as(&format!(
        "SELECT {UPLOAD_COLUMNS} FROM storage.uploads WHERE id = $1 AND expires_at > now(){lock}"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Records a received part; the first one also moves the upload's expiry from the short one
/// of an upload never started to `expiry_hours` after its creation.
pub async fn add_part(
    conn: &mut PgConnection,
    upload: UploadId,
    start: i64,
    length: i64,
    key: &str,
    expiry_hours: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO storage.upload_parts (upload_id, start, length, object_key) VALUES ($1, $2, $3, $4)")
        .bind(upload)
        .bind(start)
        .bind(length)
        .bind(key)
        .execute(&mut *conn)
        .await?;
    // The first bytes turn the short expiry of an upload never started into the full one.
    sqlx::query(
        "UPDATE storage.uploads
            SET received = received + $2,
                expires_at = CASE WHEN received = 0
                                  THEN greatest(expires_at, created_at + make_interval(hours => $3))
                                  ELSE expires_at END
          WHERE id = $1",
    )
    .bind(upload)
    .bind(length)
    .bind(expiry_hours)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn parts(conn: &mut PgConnection, upload: UploadId) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT object_key FROM storage.upload_parts WHERE upload_id = $1 ORDER BY start",
    )
    .bind(upload)
    .fetch_all(conn)
    .await
}

/// Deletes the upload; its parts' bytes are queued for removal.
pub async fn delete_upload(conn: &mut PgConnection, id: UploadId) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM storage.uploads WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn expire_uploads(db: &PgPool) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM storage.uploads WHERE expires_at <= now()")
            .execute(db)
            .await?
            .rows_affected(),
    )
}

/// Records bytes about to be written before any row owns them.
pub async fn track_pending(db: &PgPool, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO storage.pending_objects (object_key) VALUES ($1) ON CONFLICT DO NOTHING",
    )
    .bind(key)
    .execute(db)
    .await?;
    Ok(())
}

/// A row now owns the bytes (call it in that row's transaction).
pub async fn forget_pending(conn: &mut PgConnection, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM storage.pending_objects WHERE object_key = $1")
        .bind(key)
        .execute(conn)
        .await?;
    Ok(())
}

/// Queues bytes whose writer never recorded an owning row (it died mid-way).
pub async fn sweep_pending(db: &PgPool, older_than_secs: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "WITH gone AS (DELETE FROM storage.pending_objects WHERE created_at < now() - make_interval(secs => $1) RETURNING object_key)
         INSERT INTO storage.garbage (object_key) SELECT object_key FROM gone ON CONFLICT DO NOTHING",
    )
    .bind(older_than_secs as f64)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// Queues bytes that no row refers to (a write whose rows did not commit).
pub async fn queue_garbage<'c>(
    db: impl sqlx::PgExecutor<'c>,
    key: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO storage.garbage (object_key) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(key)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn garbage(db: &PgPool, limit: i64) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT object_key FROM storage.garbage ORDER BY queued_at LIMIT $1")
        .bind(limit)
        .fetch_all(db)
        .await
}

pub async fn forget_garbage(db: &PgPool, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM storage.garbage WHERE object_key = $1")
        .bind(key)
        .execute(db)
        .await?;
    Ok(())
}

/// The NOTIFY channel that wakes the variants job when work is queued.
pub const VARIANTS_CHANNEL: &str = "storage_variants";

/// Queues variant work for a version (once; a version already gone queues nothing) and, when
/// it did, wakes the variants job as the transaction commits.
pub async fn queue_variants(
    conn: &mut PgConnection,
    version: VersionId,
) -> Result<(), sqlx::Error> {
    let queued = sqlx::query(
        "INSERT INTO storage.variant_jobs (version_id) SELECT $1 WHERE EXISTS (SELECT 1 FROM storage.versions WHERE id = $1)
         ON CONFLICT DO NOTHING",
    )
    .bind(version)
    .execute(&mut *conn)
    .await?;
    if queued.rows_affected() > 0 {
        wakeup::notify(conn, VARIANTS_CHANNEL).await?;
    }
    Ok(())
}

/// Claims due variant jobs for this process: each is leased for five minutes (if the
/// process dies mid-work, another takes it up then). Returns (version, attempts so far).
pub async fn claim_variant_jobs(
    db: &PgPool,
    limit: i64,
) -> Result<Vec<(VersionId, i32)>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE storage.variant_jobs SET attempts = attempts + 1, next_attempt_at = now() + interval '5 minutes'
          WHERE version_id IN (SELECT version_id FROM storage.variant_jobs WHERE next_attempt_at <= now()
                                ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED)
          RETURNING version_id, attempts",
    )
    .bind(limit)
    .fetch_all(db)
    .await
}

pub async fn finish_variant_job(db: &PgPool, version: VersionId) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM storage.variant_jobs WHERE version_id = $1")
        .bind(version)
        .execute(db)
        .await?;
    Ok(())
}

/// Retries later, waiting longer each time; after `max_attempts` the job is dropped.
pub async fn fail_variant_job(
    db: &PgPool,
    version: VersionId,
    attempts: i32,
    max_attempts: i32,
    error: &str,
) -> Result<(), sqlx::Error> {
    if attempts >= max_attempts {
        return finish_variant_job(db, version).await;
    }
    sqlx::query(
        "UPDATE storage.variant_jobs SET last_error = $2, next_attempt_at = now() + make_interval(secs => $3) WHERE version_id = $1",
    )
    .bind(version)
    .bind(error)
    .bind(f64::from(2i32.saturating_pow(attempts as u32).min(3600)))
    .execute(db)
    .await?;
    Ok(())
}
