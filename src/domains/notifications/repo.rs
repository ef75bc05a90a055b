//! All SQL of the notifications domain (schema `notifications`).

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MessageRow {
    pub id: Uuid,
    pub event_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    pub category: String,
    pub template: String,
    pub to_address: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub unsubscribe_url: Option<String>,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

const MESSAGE_COLUMNS: &str = "id, event_id, user_id, category, template, to_address, subject, text_body, html_body, \
     unsubscribe_url, status, attempts, last_error, sent_at, created_at";

/// Queues a message; a second one for the same event and template is ignored.
pub async fn queue_message(conn: &mut PgConnection, m: &MessageRow) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO notifications.messages
            (id, event_id, user_id, category, template, to_address, subject, text_body, html_body, unsubscribe_url)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT ON CONSTRAINT messages_event_template DO NOTHING",
    )
    .bind(m.id)
    .bind(m.event_id)
    .bind(m.user_id)
    .bind(&m.category)
    .bind(&m.template)
    .bind(&m.to_address)
    .bind(&m.subject)
    .bind(&m.text_body)
    .bind(&m.html_body)
    .bind(&m.unsubscribe_url)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Claims due messages for this sender: queued ones whose time has come, and ones another
/// sender claimed but did not finish within five minutes (it died mid-send).
pub async fn claim_due(pool: &PgPool, limit: i64) -> Result<Vec<MessageRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE notifications.messages SET status = 'sending', next_attempt_at = now()
          WHERE id IN (
            SELECT id FROM notifications.messages
             WHERE (status = 'queued' AND next_attempt_at <= now())
                OR (status = 'sending' AND next_attempt_at < now() - interval '5 minutes')
             ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
          RETURNING {MESSAGE_COLUMNS}"
    ))
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub async fn mark_sent(pool: &PgPool, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE notifications.messages SET status = 'sent', attempts = attempts + 1, sent_at = now(), last_error = NULL
          WHERE id = $1",
    )
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Records a failed attempt: back to the queue after `retry_in_secs`, or failed for good.
pub async fn mark_attempt_failed(pool: &PgPool, id: Uuid, error: &str, retry_in_secs: f64, give_up: bool) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE notifications.messages
            SET attempts = attempts + 1, last_error = $2,
                status = CASE WHEN $4 THEN 'failed' ELSE 'queued' END,
                next_attempt_at = now() + make_interval(secs => $3)
          WHERE id = $1",
    )
    .bind(id)
    .bind(error)
    .bind(retry_in_secs)
    .bind(give_up)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn messages(pool: &PgPool, status: Option<&str>, limit: i64, offset: i64) -> Result<Vec<MessageRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM notifications.messages
          WHERE $1::text IS NULL OR status = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
    ))
    .bind(status)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await
}

/// Puts a failed message back in the queue with a fresh budget of attempts.
pub async fn retry_message(pool: &PgPool, id: Uuid) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE notifications.messages SET status = 'queued', attempts = 0, next_attempt_at = now()
          WHERE id = $1 AND status = 'failed' RETURNING status",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
}

pub async fn message_status(pool: &PgPool, id: Uuid) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT status FROM notifications.messages WHERE id = $1").bind(id).fetch_optional(pool).await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InboxRow {
    pub id: Uuid,
    pub category: String,
    pub title: String,
    pub body: String,
    pub link: Option<String>,
    pub read_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[allow(clippy::too_many_arguments)]
pub async fn add_to_inbox(
    conn: &mut PgConnection,
    user: Uuid,
    event: Option<Uuid>,
    category: &str,
    title: &str,
    body: &str,
    link: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO notifications.inbox (id, user_id, event_id, category, title, body, link)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT ON CONSTRAINT inbox_event DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(user)
    .bind(event)
    .bind(category)
    .bind(title)
    .bind(body)
    .bind(link)
    .execute(conn)
    .await?;
    Ok(())
}

/// Unread first, then newest first.
pub async fn inbox(pool: &PgPool, user: Uuid, limit: i64, offset: i64) -> Result<(Vec<InboxRow>, i64), sqlx::Error> {
    let rows = sqlx::query_as(
        "SELECT id, category, title, body, link, read_at, created_at FROM notifications.inbox
          WHERE user_id = $1 ORDER BY (read_at IS NOT NULL), created_at DESC, id DESC LIMIT $2 OFFSET $3",
    )
    .bind(user)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let unread = sqlx::query_scalar("SELECT count(*) FROM notifications.inbox WHERE user_id = $1 AND read_at IS NULL")
        .bind(user)
        .fetch_one(pool)
        .await?;
    Ok((rows, unread))
}

/// Marks one (`Some(id)`) or every notification of `user` read; returns how many matched.
pub async fn mark_read(pool: &PgPool, user: Uuid, id: Option<Uuid>) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE notifications.inbox SET read_at = coalesce(read_at, now())
          WHERE user_id = $1 AND ($2::uuid IS NULL OR id = $2)",
    )
    .bind(user)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

pub async fn delete_from_inbox(pool: &PgPool, user: Uuid, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM notifications.inbox WHERE user_id = $1 AND id = $2")
        .bind(user)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// (email, in_app) for a user and category; both on unless the user said otherwise.
pub async fn preference(conn: &mut PgConnection, user: Uuid, category: &str) -> Result<(bool, bool), sqlx::Error> {
    let row: Option<(bool, bool)> =
        sqlx::query_as("SELECT email, in_app FROM notifications.preferences WHERE user_id = $1 AND category = $2")
            .bind(user)
            .bind(category)
            .fetch_optional(conn)
            .await?;
    Ok(row.unwrap_or((true, true)))
}

pub async fn preferences(pool: &PgPool, user: Uuid) -> Result<Vec<(String, bool, bool)>, sqlx::Error> {
    sqlx::query_as("SELECT category, email, in_app FROM notifications.preferences WHERE user_id = $1")
        .bind(user)
        .fetch_all(pool)
        .await
}

pub async fn set_preference(pool: &PgPool, user: Uuid, category: &str, email: Option<bool>, in_app: Option<bool>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO notifications.preferences (user_id, category, email, in_app)
         VALUES ($1, $2, coalesce($3, true), coalesce($4, true))
         ON CONFLICT (user_id, category) DO UPDATE
            SET email = coalesce($3, preferences.email), in_app = coalesce($4, preferences.in_app)",
    )
    .bind(user)
    .bind(category)
    .bind(email)
    .bind(in_app)
    .execute(pool)
    .await?;
    Ok(())
}

/// Forgets everything about a deleted account.
pub async fn forget_user(conn: &mut PgConnection, user: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM notifications.inbox WHERE user_id = $1").bind(user).execute(&mut *conn).await?;
    sqlx::query("DELETE FROM notifications.preferences WHERE user_id = $1").bind(user).execute(conn).await?;
    Ok(())
}
