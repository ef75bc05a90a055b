//! All SQL of the auth domain (schema `auth`).

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: Uuid,
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

pub async fn grant_role(conn: &mut PgConnection, user: Uuid, role: &str) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO auth.user_roles (user_id, role) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(user)
        .bind(role)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn user_by_email(pool: &PgPool, email: &str) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM auth.users WHERE email = $1"))
        .bind(email)
        .fetch_optional(pool)
        .await
}

pub async fn user_by_id(conn: &mut PgConnection, id: Uuid) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM auth.users WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// The user's roles and the permissions they grant, each sorted.
pub async fn grants(conn: &mut PgConnection, user: Uuid) -> Result<(Vec<String>, Vec<String>), sqlx::Error> {
    let roles: Vec<String> =
        sqlx::query_scalar("SELECT role FROM auth.user_roles WHERE user_id = $1 ORDER BY role")
            .bind(user)
            .fetch_all(&mut *conn)
            .await?;
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
    user: Uuid,
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

pub async fn set_password(conn: &mut PgConnection, user: Uuid, hash: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE auth.users SET password_hash = $2, updated_at = now() WHERE id = $1")
        .bind(user)
        .bind(hash)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn mark_verified(conn: &mut PgConnection, user: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE auth.users SET email_verified_at = coalesce(email_verified_at, now()), updated_at = now()
          WHERE id = $1",
    )
    .bind(user)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn delete_user(conn: &mut PgConnection, user: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM auth.users WHERE id = $1").bind(user).execute(conn).await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub generation: i32,
    pub rotated_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub revoked_at: Option<DateTime<Utc>>,
}

const SESSION_COLUMNS: &str =
    "id, user_id, generation, rotated_at, created_at, last_used_at, expires_at, user_agent, ip, revoked_at";

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
pub async fn lock_session(conn: &mut PgConnection, id: Uuid) -> Result<Option<SessionRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {SESSION_COLUMNS} FROM auth.sessions WHERE id = $1 FOR UPDATE"))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Moves the session to its next generation; returns the new row.
pub async fn rotate_session(conn: &mut PgConnection, id: Uuid) -> Result<SessionRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE auth.sessions SET generation = generation + 1, rotated_at = now(), last_used_at = now()
          WHERE id = $1 RETURNING {SESSION_COLUMNS}"
    ))
    .bind(id)
    .fetch_one(conn)
    .await
}

pub async fn revoke_session(conn: &mut PgConnection, id: Uuid, reason: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE auth.sessions SET revoked_at = now(), revoked_reason = $2 WHERE id = $1 AND revoked_at IS NULL",
    )
    .bind(id)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(())
}

/// Revokes every live session of `user` except `keep`; returns the ids revoked.
pub async fn revoke_sessions(
    conn: &mut PgConnection,
    user: Uuid,
    keep: Option<Uuid>,
    reason: &str,
) -> Result<Vec<Uuid>, sqlx::Error> {
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

pub async fn live_sessions(pool: &PgPool, user: Uuid) -> Result<Vec<SessionRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SESSION_COLUMNS} FROM auth.sessions
          WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now()
          ORDER BY last_used_at DESC"
    ))
    .bind(user)
    .fetch_all(pool)
    .await
}

pub async fn insert_one_time(
    conn: &mut PgConnection,
    hash: &[u8],
    user: Uuid,
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
pub async fn consume_one_time(conn: &mut PgConnection, hash: &[u8], purpose: &str) -> Result<Option<Uuid>, sqlx::Error> {
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
