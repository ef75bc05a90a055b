//! All SQL of the auth domain (schema `auth`).

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::model::{ApiKeyId, SessionId, UserId};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: UserId,
    pub email: String,
    pub password_hash: String,
    pub first_name: String,
    pub last_name: String,
    pub email_verified_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

const USER_COLUMNS: &str =
    "id, email, password_hash, first_name, last_name, email_verified_at, created_at";

pub async fn insert_user(conn: &mut PgConnection, u: &UserRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO auth.users (id, email, password_hash, first_name, last_name, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(u.id)
    .bind(&u.email)
    .bind(&u.password_hash)
    .bind(&u.first_name)
    .bind(&u.last_name)
    .bind(u.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Grants a role; false when the account held it already (nothing changed).
pub async fn grant_role(
    conn: &mut PgConnection,
    user: UserId,
    role: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO auth.user_roles (user_id, role) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(user)
    .bind(role)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn user_by_email(pool: &PgPool, email: &str) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM auth.users WHERE email = $1"
    ))
    .bind(email)
    .fetch_optional(pool)
    .await
}

pub async fn user_by_id(
    conn: &mut PgConnection,
    id: UserId,
) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM auth.users WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// The user with their roles (sorted), in one statement: what `GET /me` answers.
pub async fn user_with_roles(
    db: &PgPool,
    id: UserId,
) -> Result<Option<(UserRow, Vec<String>)>, sqlx::Error> {
    let row: Option<sqlx::postgres::PgRow> = sqlx::query(&format!(
        "SELECT {USER_COLUMNS},
                ARRAY(SELECT role FROM auth.user_roles r WHERE r.user_id = u.id ORDER BY role) AS user_roles
           FROM auth.users u WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await?;
    row.map(|row| {
        use sqlx::{FromRow, Row};
        Ok((UserRow::from_row(&row)?, row.try_get("user_roles")?))
    })
    .transpose()
}

/// The user's roles, sorted.
pub async fn roles_of(conn: &mut PgConnection, user: UserId) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT role FROM auth.user_roles WHERE user_id = $1 ORDER BY role")
        .bind(user)
        .fetch_all(conn)
        .await
}

/// The user's roles and the permissions they grant, each sorted.
pub async fn grants(
    conn: &mut PgConnection,
    user: UserId,
) -> Result<(Vec<String>, Vec<String>), sqlx::Error> {
    let roles = roles_of(&mut *conn, user).await?;
    let permissions: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT rp.permission FROM auth.user_roles ur
           JOIN auth.role_permissions rp ON rp.role = ur.role
          WHERE ur.user_id = $1 ORDER BY 1",
    )
    .bind(user)
    .fetch_all(conn)
    .await?;
    Ok((roles, permissions))
}

pub async fn update_names(
    conn: &mut PgConnection,
    user: UserId,
    first: Option<&str>,
    last: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE auth.users SET first_name = coalesce($2, first_name), last_name = coalesce($3, last_name),
                updated_at = now() WHERE id = $1",
    )
    .bind(user)
    .bind(first)
    .bind(last)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn set_password(
    conn: &mut PgConnection,
    user: UserId,
    hash: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE auth.users SET password_hash = $2, updated_at = now() WHERE id = $1")
        .bind(user)
        .bind(hash)
        .execute(conn)
        .await?;
    Ok(())
}

/// Marks the email verified; true only for the first time (one statement, so of two
/// concurrent verifications exactly one is the first).
pub async fn mark_verified(conn: &mut PgConnection, user: UserId) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE auth.users SET email_verified_at = now(), updated_at = now()
          WHERE id = $1 AND email_verified_at IS NULL",
    )
    .bind(user)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn is_verified(conn: &mut PgConnection, user: UserId) -> Result<bool, sqlx::Error> {
    let verified: Option<bool> =
        sqlx::query_scalar("SELECT email_verified_at IS NOT NULL FROM auth.users WHERE id = $1")
            .bind(user)
            .fetch_optional(conn)
            .await?;
    Ok(verified.unwrap_or(false))
}

pub async fn delete_user(conn: &mut PgConnection, user: UserId) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM auth.users WHERE id = $1")
        .bind(user)
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub id: SessionId,
    pub user_id: UserId,
    pub generation: i32,
    pub rotated_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub revoked_at: Option<DateTime<Utc>>,
}

const SESSION_COLUMNS: &str = "id, user_id, generation, rotated_at, created_at, last_used_at, expires_at, user_agent, ip, revoked_at";

pub async fn create_session(conn: &mut PgConnection, s: &SessionRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO auth.sessions (id, user_id, generation, rotated_at, created_at, last_used_at,
                                    expires_at, user_agent, ip)
         VALUES ($1, $2, 0, $3, $3, $3, $4, $5, $6)",
    )
    .bind(s.id)
    .bind(s.user_id)
    .bind(s.rotated_at)
    .bind(s.expires_at)
    .bind(&s.user_agent)
    .bind(&s.ip)
    .execute(conn)
    .await?;
    Ok(())
}

/// Locks the session row: concurrent refreshes of one session take turns.
pub async fn lock_session(
    conn: &mut PgConnection,
    id: SessionId,
) -> Result<Option<SessionRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SESSION_COLUMNS} FROM auth.sessions WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Moves the session to its next generation; returns the new row.
pub async fn rotate_session(
    conn: &mut PgConnection,
    id: SessionId,
) -> Result<SessionRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE auth.sessions SET generation = generation + 1, rotated_at = now(), last_used_at = now()
          WHERE id = $1 RETURNING {SESSION_COLUMNS}"
    ))
    .bind(id)
    .fetch_one(conn)
    .await
}

/// Revokes a live session; its owner, or `None` when it was revoked already.
pub async fn revoke_session(
    conn: &mut PgConnection,
    id: SessionId,
    reason: &str,
) -> Result<Option<UserId>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE auth.sessions SET revoked_at = now(), revoked_reason = $2
          WHERE id = $1 AND revoked_at IS NULL RETURNING user_id",
    )
    .bind(id)
    .bind(reason)
    .fetch_optional(conn)
    .await
}

/// Revokes every live session of `user` except `keep`; returns the ids revoked.
pub async fn revoke_sessions(
    conn: &mut PgConnection,
    user: UserId,
    keep: Option<SessionId>,
    reason: &str,
) -> Result<Vec<SessionId>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE auth.sessions SET revoked_at = now(), revoked_reason = $3
          WHERE user_id = $1 AND revoked_at IS NULL AND ($2::uuid IS NULL OR id <> $2)
          RETURNING id",
    )
    .bind(user)
    .bind(keep)
    .bind(reason)
    .fetch_all(conn)
    .await
}

/// A page of the user's live sessions, newest first; `after` is the (created_at, id) of the
/// previous page's last one. Not by last use: that moves at every refresh, and a session
/// refreshed while a client pages would be skipped or listed twice.
pub async fn live_sessions(
    pool: &PgPool,
    user: UserId,
    after: Option<(DateTime<Utc>, SessionId)>,
    limit: i64,
) -> Result<Vec<SessionRow>, sqlx::Error> {
    let (at, id) = after.unzip();
    sqlx::query_as(&format!(
        "SELECT {SESSION_COLUMNS} FROM auth.sessions
          WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now()
            AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::uuid))
          ORDER BY created_at DESC, id DESC LIMIT $4"
    ))
    .bind(user)
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub async fn insert_one_time(
    conn: &mut PgConnection,
    hash: &[u8],
    user: UserId,
    purpose: &str,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO auth.one_time_tokens (token_hash, user_id, purpose, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(hash)
    .bind(user)
    .bind(purpose)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Uses a single-use token in one statement, so two concurrent uses cannot both succeed.
pub async fn consume_one_time(
    conn: &mut PgConnection,
    hash: &[u8],
    purpose: &str,
) -> Result<Option<UserId>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE auth.one_time_tokens SET used_at = now()
          WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > now()
          RETURNING user_id",
    )
    .bind(hash)
    .bind(purpose)
    .fetch_optional(conn)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKeyRow {
    pub id: ApiKeyId,
    pub user_id: UserId,
    pub name: String,
    pub secret_hash: Vec<u8>,
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

const KEY_COLUMNS: &str =
    "id, user_id, name, secret_hash, scopes, expires_at, last_used_at, created_at, revoked_at";

pub async fn insert_api_key(conn: &mut PgConnection, k: &ApiKeyRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO auth.api_keys (id, user_id, name, secret_hash, scopes, expires_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(k.id)
    .bind(k.user_id)
    .bind(&k.name)
    .bind(&k.secret_hash)
    .bind(&k.scopes)
    .bind(k.expires_at)
    .bind(k.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn api_key(pool: &PgPool, id: ApiKeyId) -> Result<Option<ApiKeyRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {KEY_COLUMNS} FROM auth.api_keys WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// A page of the user's live keys, oldest first; `after` is the (created_at, id) of the
/// previous page's last one.
pub async fn api_keys_of(
    pool: &PgPool,
    user: UserId,
    after: Option<(DateTime<Utc>, ApiKeyId)>,
    limit: i64,
) -> Result<Vec<ApiKeyRow>, sqlx::Error> {
    let (at, id) = after.unzip();
    sqlx::query_as(&format!(
        "SELECT {KEY_COLUMNS} FROM auth.api_keys
          WHERE user_id = $1 AND revoked_at IS NULL
            AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3::uuid))
          ORDER BY created_at, id LIMIT $4"
    ))
    .bind(user)
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Records use at most once a minute, so a busy key does not write on every request.
pub async fn touch_api_key(pool: &PgPool, id: ApiKeyId) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE auth.api_keys SET last_used_at = now()
          WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
    )
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Revokes the owner's key; false when there is no such live key of theirs.
pub async fn revoke_api_key(
    pool: &PgPool,
    user: UserId,
    id: ApiKeyId,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE auth.api_keys SET revoked_at = now() WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
    )
    .bind(id)
    .bind(user)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Revokes every live key of `user`; how many.
pub async fn revoke_api_keys_of(conn: &mut PgConnection, user: UserId) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE auth.api_keys SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(user)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RoleRow {
    pub name: String,
    pub description: String,
    pub builtin: bool,
    pub permissions: Vec<String>,
}

/// A role with its permissions (sorted), as a subquery per row so that one role can be
/// locked (`FOR UPDATE OF r`), which an aggregate over a join cannot be.
const ROLE_SELECT: &str = "SELECT r.name, r.description, r.builtin,
        coalesce((SELECT array_agg(rp.permission ORDER BY rp.permission)
                    FROM auth.role_permissions rp WHERE rp.role = r.name), '{}') AS permissions
   FROM auth.roles r";

/// A page of roles by name; `after` is the previous page's last name.
pub async fn roles(
    pool: &PgPool,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<RoleRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{ROLE_SELECT} WHERE $1::text IS NULL OR r.name > $1 ORDER BY r.name LIMIT $2"
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// One role, locked until the transaction ends (concurrent changes to it take turns).
pub async fn lock_role(
    conn: &mut PgConnection,
    name: &str,
) -> Result<Option<RoleRow>, sqlx::Error> {
    sqlx::query_as(&format!("{ROLE_SELECT} WHERE r.name = $1 FOR UPDATE OF r"))
        .bind(name)
        .fetch_optional(conn)
        .await
}

pub async fn insert_role(
    conn: &mut PgConnection,
    name: &str,
    description: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO auth.roles (name, description) VALUES ($1, $2)")
        .bind(name)
        .bind(description)
        .execute(conn)
        .await?;
    Ok(())
}

/// Replaces a role's permissions, creating permission names not seen before.
pub async fn set_role_permissions(
    conn: &mut PgConnection,
    role: &str,
    permissions: &[String],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO auth.permissions (name) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING",
    )
    .bind(permissions)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM auth.role_permissions WHERE role = $1")
        .bind(role)
        .execute(&mut *conn)
        .await?;
    // A name given twice is granted once (it answered 500 before).
    sqlx::query(
        "INSERT INTO auth.role_permissions (role, permission) SELECT $1, unnest($2::text[])
         ON CONFLICT DO NOTHING",
    )
    .bind(role)
    .bind(permissions)
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes a custom role and returns the accounts that held it (their grants go with it,
/// so the audit entry names them).
pub async fn delete_role(conn: &mut PgConnection, role: &str) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "WITH held AS (
             DELETE FROM auth.user_roles WHERE role = $1
                AND EXISTS (SELECT 1 FROM auth.roles WHERE name = $1 AND NOT builtin)
             RETURNING user_id
         ), gone AS (
             DELETE FROM auth.roles WHERE name = $1 AND NOT builtin
         )
         SELECT user_id FROM held ORDER BY user_id",
    )
    .bind(role)
    .fetch_all(conn)
    .await
}

/// The account's roles (sorted), its row locked against concurrent grants until the
/// transaction ends, so the before and after an audit entry records are exact; `None` when
/// there is no such account. Two statements on purpose: in READ COMMITTED a statement that
/// waited for a row lock still returns what its snapshot saw before the wait, so roles read
/// in the locking statement could predate the grant it waited for. The read after the lock
/// takes a fresh snapshot. (`NO KEY UPDATE`: role inserts, which take a key-share lock on the
/// account through the foreign key, still go ahead.)
pub async fn lock_roles_of(
    conn: &mut PgConnection,
    user: UserId,
) -> Result<Option<Vec<String>>, sqlx::Error> {
    let exists: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM auth.users WHERE id = $1 FOR NO KEY UPDATE")
            .bind(user)
            .fetch_optional(&mut *conn)
            .await?;
    match exists {
        Some(_) => Ok(Some(roles_of(conn, user).await?)),
        None => Ok(None),
    }
}

pub async fn revoke_role(
    conn: &mut PgConnection,
    user: UserId,
    role: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM auth.user_roles WHERE user_id = $1 AND role = $2")
        .bind(user)
        .bind(role)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserWithRoles {
    #[sqlx(flatten)]
    pub user: UserRow,
    pub roles: Vec<String>,
}

/// A page of accounts, newest first (ids are UUIDv7); `after` is the last id of the
/// previous page.
pub async fn list_users(
    pool: &PgPool,
    after: Option<UserId>,
    limit: i64,
) -> Result<Vec<UserWithRoles>, sqlx::Error> {
    sqlx::query_as(
        "SELECT u.id, u.email, u.password_hash, u.first_name, u.last_name, u.email_verified_at, u.created_at,
                coalesce(array_agg(ur.role ORDER BY ur.role) FILTER (WHERE ur.role IS NOT NULL), '{}') AS roles
           FROM auth.users u LEFT JOIN auth.user_roles ur ON ur.user_id = u.id
          WHERE $1::uuid IS NULL OR u.id < $1
          GROUP BY u.id ORDER BY u.id DESC LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// An account's roles and permissions now, in one statement; `None` if it no longer exists.
pub async fn current_grants(
    pool: &PgPool,
    user: UserId,
) -> Result<Option<(Vec<String>, Vec<String>, bool)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT coalesce(array_agg(DISTINCT ur.role ORDER BY ur.role) FILTER (WHERE ur.role IS NOT NULL), '{}'),
                coalesce(array_agg(DISTINCT rp.permission ORDER BY rp.permission)
                         FILTER (WHERE rp.permission IS NOT NULL), '{}'),
                u.email_verified_at IS NOT NULL
           FROM auth.users u
           LEFT JOIN auth.user_roles ur ON ur.user_id = u.id
           LEFT JOIN auth.role_permissions rp ON rp.role = ur.role
          WHERE u.id = $1
          GROUP BY u.id",
    )
    .bind(user)
    .fetch_optional(pool)
    .await
}
