//! All SQL of the notifications domain (schema `notifications`).

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::platform::wakeup;

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

/// The NOTIFY channels that wake the sender and the webhook jobs when work is queued.
pub const MESSAGES_CHANNEL: &str = "notifications_messages";
pub const DELIVERIES_CHANNEL: &str = "notifications_deliveries";

/// Queues a message and wakes the sender; a second one for the same event and template is
/// ignored.
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
    .execute(&mut *conn)
    .await?;
    let queued = done.rows_affected() == 1;
    if queued {
        wakeup::notify(conn, MESSAGES_CHANNEL).await?;
    }
    Ok(queued)
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
pub async fn mark_attempt_failed(
    pool: &PgPool,
    id: Uuid,
    error: &str,
    retry_in_secs: f64,
    give_up: bool,
) -> Result<(), sqlx::Error> {
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

/// Newest first, after the cursor's (created_at, id).
pub async fn messages(
    pool: &PgPool,
    status: Option<&str>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<MessageRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM notifications.messages
          WHERE ($1::text IS NULL OR status = $1)
            AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
          ORDER BY created_at DESC, id DESC LIMIT $4"
    ))
    .bind(status)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Puts a failed message back in the queue with a fresh budget of attempts.
pub async fn retry_message(pool: &PgPool, id: Uuid) -> Result<Option<String>, sqlx::Error> {
    let status = sqlx::query_scalar(
        "UPDATE notifications.messages SET status = 'queued', attempts = 0, next_attempt_at = now()
          WHERE id = $1 AND status = 'failed' RETURNING status",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    if status.is_some() {
        wakeup::notify(pool, MESSAGES_CHANNEL).await?;
    }
    Ok(status)
}

pub async fn message_status(pool: &PgPool, id: Uuid) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT status FROM notifications.messages WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
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

/// Unread first, then newest first, after the cursor's (read, created_at, id).
pub async fn inbox(
    pool: &PgPool,
    user: Uuid,
    after: Option<(bool, DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<(Vec<InboxRow>, i64), sqlx::Error> {
    // One statement: the page (as one JSON array, in page order) beside the unread count.
    let (rows, unread): (sqlx::types::Json<Vec<InboxRow>>, i64) = sqlx::query_as(
        "SELECT COALESCE((SELECT jsonb_agg(to_jsonb(p) ORDER BY (p.read_at IS NOT NULL), p.created_at DESC, p.id DESC)
                            FROM (SELECT id, category, title, body, link, read_at, created_at FROM notifications.inbox
                                   WHERE user_id = $1
                                     AND ($2::boolean IS NULL
                                          OR (read_at IS NOT NULL) > $2
                                          OR ((read_at IS NOT NULL) = $2 AND (created_at, id) < ($3, $4)))
                                   ORDER BY (read_at IS NOT NULL), created_at DESC, id DESC LIMIT $5) p), '[]'::jsonb),
                (SELECT count(*) FROM notifications.inbox WHERE user_id = $1 AND read_at IS NULL)",
    )
    .bind(user)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(after.map(|a| a.2))
    .bind(limit)
    .fetch_one(pool)
    .await?;
    let rows = rows.0;
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
pub async fn preference(
    conn: &mut PgConnection,
    user: Uuid,
    category: &str,
) -> Result<(bool, bool), sqlx::Error> {
    let row: Option<(bool, bool)> = sqlx::query_as(
        "SELECT email, in_app FROM notifications.preferences WHERE user_id = $1 AND category = $2",
    )
    .bind(user)
    .bind(category)
    .fetch_optional(conn)
    .await?;
    Ok(row.unwrap_or((true, true)))
}

pub async fn preferences(
    pool: &PgPool,
    user: Uuid,
) -> Result<Vec<(String, bool, bool)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT category, email, in_app FROM notifications.preferences WHERE user_id = $1",
    )
    .bind(user)
    .fetch_all(pool)
    .await
}

pub async fn set_preference(
    pool: &PgPool,
    user: Uuid,
    category: &str,
    email: Option<bool>,
    in_app: Option<bool>,
) -> Result<(), sqlx::Error> {
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

/// Forgets everything about a deleted account: its inbox, its preferences, its webhook
/// endpoints (their delivery logs go with them) and its address. The address's row stays
/// as a tombstone without it (`at`: the deletion event), so that an older event delivered
/// late cannot teach the address again: an account is never undeleted.
pub async fn forget_user(
    conn: &mut PgConnection,
    user: Uuid,
    at: (DateTime<Utc>, Uuid),
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "WITH inbox AS (DELETE FROM notifications.inbox WHERE user_id = $1),
              preferences AS (DELETE FROM notifications.preferences WHERE user_id = $1),
              recipient AS (
                  INSERT INTO notifications.recipients (user_id, email, as_of, event_id)
                  VALUES ($1, NULL, $2, $3)
                  ON CONFLICT (user_id) DO UPDATE
                     SET email = NULL, as_of = EXCLUDED.as_of, event_id = EXCLUDED.event_id
              )
         DELETE FROM notifications.webhook_endpoints WHERE owner_id = $1",
    )
    .bind(user)
    .bind(at.0)
    .bind(at.1)
    .execute(conn)
    .await?;
    Ok(())
}

/// Learns an account's address from an auth event that carries it, `at` (occurred_at,
/// event id). One statement, effectively-once whatever the delivery order: the row changes
/// only for an event newer than the one it holds, and never once the account is deleted
/// (the tombstone's email is NULL).
pub async fn learn_recipient(
    conn: &mut PgConnection,
    user: Uuid,
    email: &str,
    at: (DateTime<Utc>, Uuid),
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO notifications.recipients AS r (user_id, email, as_of, event_id)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id) DO UPDATE
            SET email = EXCLUDED.email, as_of = EXCLUDED.as_of, event_id = EXCLUDED.event_id
          WHERE r.email IS NOT NULL AND (r.as_of, r.event_id) < (EXCLUDED.as_of, EXCLUDED.event_id)",
    )
    .bind(user)
    .bind(email)
    .bind(at.0)
    .bind(at.1)
    .execute(conn)
    .await?;
    Ok(())
}

/// The account's address, as the auth events last told it (`None`: never learned, or the
/// account is deleted).
pub async fn recipient(conn: &mut PgConnection, user: Uuid) -> Result<Option<String>, sqlx::Error> {
    let email: Option<Option<String>> =
        sqlx::query_scalar("SELECT email FROM notifications.recipients WHERE user_id = $1")
            .bind(user)
            .fetch_optional(conn)
            .await?;
    Ok(email.flatten())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EndpointRow {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub sees_all: bool,
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_expires_at: Option<DateTime<Utc>>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub failure_streak: i32,
    pub created_at: DateTime<Utc>,
}

const ENDPOINT_COLUMNS: &str = "id, owner_id, sees_all, url, description, event_types, secret, previous_secret, \
     previous_expires_at, enabled, disabled_reason, failure_streak, created_at";

pub async fn insert_endpoint(pool: &PgPool, e: &EndpointRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO notifications.webhook_endpoints (id, owner_id, sees_all, url, description, event_types, secret)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(e.id)
    .bind(e.owner_id)
    .bind(e.sees_all)
    .bind(&e.url)
    .bind(&e.description)
    .bind(&e.event_types)
    .bind(&e.secret)
    .execute(pool)
    .await?;
    Ok(())
}

/// The owner's endpoint, or `None` (also for anyone else's).
pub async fn endpoint(
    pool: &PgPool,
    owner: Uuid,
    id: Uuid,
) -> Result<Option<EndpointRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM notifications.webhook_endpoints WHERE id = $1 AND owner_id = $2"
    ))
    .bind(id)
    .bind(owner)
    .fetch_optional(pool)
    .await
}

/// An owner's endpoints, oldest first (ids are UUIDv7, so id order is creation order).
pub async fn endpoints_of(
    pool: &PgPool,
    owner: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<EndpointRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM notifications.webhook_endpoints
          WHERE owner_id = $1 AND ($2::uuid IS NULL OR id > $2)
          ORDER BY id LIMIT $3"
    ))
    .bind(owner)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub async fn delete_endpoint(pool: &PgPool, owner: Uuid, id: Uuid) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("DELETE FROM notifications.webhook_endpoints WHERE id = $1 AND owner_id = $2")
            .bind(id)
            .bind(owner)
            .execute(pool)
            .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn rotate_secret(
    pool: &PgPool,
    owner: Uuid,
    id: Uuid,
    secret: &str,
    overlap_hours: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE notifications.webhook_endpoints
            SET previous_secret = secret, previous_expires_at = now() + make_interval(hours => $4::int), secret = $3
          WHERE id = $1 AND owner_id = $2",
    )
    .bind(id)
    .bind(owner)
    .bind(secret)
    .bind(overlap_hours)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Disables the owner's endpoints created before `before` (credentials revoked).
pub async fn disable_endpoints_before(
    conn: &mut PgConnection,
    owner: Uuid,
    before: DateTime<Utc>,
    reason: &str,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE notifications.webhook_endpoints SET enabled = false, disabled_reason = $3
          WHERE owner_id = $1 AND created_at <= $2 AND enabled",
    )
    .bind(owner)
    .bind(before)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

pub async fn enable_endpoint(pool: &PgPool, owner: Uuid, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE notifications.webhook_endpoints SET enabled = true, disabled_reason = NULL, failure_streak = 0
          WHERE id = $1 AND owner_id = $2",
    )
    .bind(id)
    .bind(owner)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Enabled endpoints that may receive an event of this type about `subject` (the payload's
/// user, if any).
pub async fn endpoints_for(
    conn: &mut PgConnection,
    subject: Option<Uuid>,
) -> Result<Vec<EndpointRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM notifications.webhook_endpoints
          WHERE enabled AND (sees_all OR owner_id = $1)"
    ))
    .bind(subject)
    .fetch_all(conn)
    .await
}

pub async fn queue_delivery(
    conn: &mut PgConnection,
    endpoint: Uuid,
    event: Uuid,
    event_type: &str,
    body: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO notifications.webhook_deliveries (id, endpoint_id, event_id, event_type, body)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT ON CONSTRAINT webhook_deliveries_once DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(endpoint)
    .bind(event)
    .bind(event_type)
    .bind(body)
    .execute(&mut *conn)
    .await?;
    wakeup::notify(conn, DELIVERIES_CHANNEL).await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub body: String,
    pub status: String,
    pub attempts: i32,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

const DELIVERY_COLUMNS: &str = "id, endpoint_id, event_id, event_type, body, status, attempts, last_status, last_error, delivered_at, created_at";

/// Claims due deliveries of enabled endpoints (and ones a dead sender left `sending`).
pub async fn claim_deliveries(pool: &PgPool, limit: i64) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE notifications.webhook_deliveries SET status = 'sending', next_attempt_at = now()
          WHERE id IN (
            SELECT d.id FROM notifications.webhook_deliveries d
              JOIN notifications.webhook_endpoints e ON e.id = d.endpoint_id AND e.enabled
             WHERE (d.status = 'pending' AND d.next_attempt_at <= now())
                OR (d.status = 'sending' AND d.next_attempt_at < now() - interval '5 minutes')
             ORDER BY d.next_attempt_at LIMIT $1 FOR UPDATE OF d SKIP LOCKED)
          RETURNING {DELIVERY_COLUMNS}"
    ))
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub async fn endpoint_by_id(pool: &PgPool, id: Uuid) -> Result<Option<EndpointRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM notifications.webhook_endpoints WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Drops a delivery the endpoint's owner may no longer see, and stops the endpoint from
/// seeing every event, so nothing more is queued for it that it would only drop.
pub async fn withhold_delivery(
    pool: &PgPool,
    delivery: Uuid,
    endpoint: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "WITH gone AS (DELETE FROM notifications.webhook_deliveries WHERE id = $1)
         UPDATE notifications.webhook_endpoints SET sees_all = false WHERE id = $2",
    )
    .bind(delivery)
    .bind(endpoint)
    .execute(pool)
    .await?;
    Ok(())
}

/// Records one attempt's outcome and keeps the endpoint's failure streak; disables the
/// endpoint when the streak reaches `disable_after`.
#[allow(clippy::too_many_arguments)]
pub async fn record_attempt(
    pool: &PgPool,
    delivery: Uuid,
    endpoint: Uuid,
    ok: bool,
    status_code: Option<i32>,
    error: Option<&str>,
    retry_in_secs: f64,
    dead: bool,
    disable_after: i32,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "UPDATE notifications.webhook_deliveries
            SET attempts = attempts + 1, last_status = $2, last_error = $3,
                status = CASE WHEN $4 THEN 'succeeded' WHEN $6 THEN 'dead' ELSE 'pending' END,
                delivered_at = CASE WHEN $4 THEN now() END,
                next_attempt_at = now() + make_interval(secs => $5)
          WHERE id = $1",
    )
    .bind(delivery)
    .bind(status_code)
    .bind(error)
    .bind(ok)
    .bind(retry_in_secs)
    .bind(dead)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE notifications.webhook_endpoints
            SET failure_streak = CASE WHEN $2 THEN 0 ELSE failure_streak + 1 END,
                enabled = CASE WHEN NOT $2 AND failure_streak + 1 >= $3 THEN false ELSE enabled END,
                disabled_reason = CASE WHEN NOT $2 AND failure_streak + 1 >= $3
                                       THEN 'disabled after ' || $3 || ' failed attempts in a row' ELSE disabled_reason END
          WHERE id = $1",
    )
    .bind(endpoint)
    .bind(ok)
    .bind(disable_after)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

pub async fn deliveries(
    pool: &PgPool,
    endpoint: Uuid,
    status: Option<&str>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM notifications.webhook_deliveries
          WHERE endpoint_id = $1 AND ($2::text IS NULL OR status = $2)
            AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4))
          ORDER BY created_at DESC, id DESC LIMIT $5"
    ))
    .bind(endpoint)
    .bind(status)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Queues deliveries again: one (`Some(id)`), or every one created in [since, until).
pub async fn replay(
    pool: &PgPool,
    endpoint: Uuid,
    id: Option<Uuid>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE notifications.webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = now()
          WHERE endpoint_id = $1 AND status <> 'sending'
            AND ($2::uuid IS NULL OR id = $2)
            AND ($3::timestamptz IS NULL OR created_at >= $3)
            AND ($4::timestamptz IS NULL OR created_at < $4)",
    )
    .bind(endpoint)
    .bind(id)
    .bind(since)
    .bind(until)
    .execute(pool)
    .await?;
    if done.rows_affected() > 0 {
        wakeup::notify(pool, DELIVERIES_CHANNEL).await?;
    }
    Ok(done.rows_affected())
}
