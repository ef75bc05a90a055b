//! All SQL of the outbox and the inbox.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use utoipa::ToSchema;
use uuid::Uuid;

use super::Event;

#[derive(sqlx::FromRow)]
struct OutboxRow {
    id: Uuid,
    event_type: String,
    source: String,
    aggregate_id: String,
    occurred_at: DateTime<Utc>,
    schema_version: i32,
    actor: String,
    request_id: Option<String>,
    payload: serde_json::Value,
}

impl From<OutboxRow> for Event {
    fn from(r: OutboxRow) -> Self {
        Event {
            id: r.id,
            event_type: r.event_type,
            source: r.source,
            aggregate_id: r.aggregate_id,
            occurred_at: r.occurred_at,
            schema_version: r.schema_version,
            actor: r.actor,
            request_id: r.request_id,
            payload: r.payload,
        }
    }
}

pub async fn insert(conn: &mut PgConnection, e: &Event) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO platform.outbox
            (id, event_type, source, aggregate_id, occurred_at, schema_version, actor,
             request_id, payload)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(e.id)
    .bind(&e.event_type)
    .bind(&e.source)
    .bind(&e.aggregate_id)
    .bind(e.occurred_at)
    .bind(e.schema_version)
    .bind(&e.actor)
    .bind(&e.request_id)
    .bind(&e.payload)
    .execute(conn)
    .await?;
    Ok(())
}

/// The SQL condition that defers the outbox's NOTIFY for the current transaction (true, and
/// sets `basalt.outbox_wake`); put it in the statement's `WHERE` and call
/// [`RelayWaker::wake`](super::RelayWaker::wake) after the commit.
pub const DEFER_WAKE: &str = "set_config('basalt.outbox_wake', 'deferred', true) IS NOT NULL";

/// Pushes `INSERT INTO platform.outbox ... SELECT ... FROM (VALUES ...) e WHERE <when>`: the
/// events as one data-modifying CTE of a domain's statement, so a change and its events are
/// one statement and one round trip (`when` may name the statement's other CTEs, to write
/// the events only if the change happened). At most a few thousand events (bind limit).
pub fn push_insert<'a>(qb: &mut sqlx::QueryBuilder<'a, Postgres>, events: &'a [Event], when: &str) {
    qb.push(
        "INSERT INTO platform.outbox (id, event_type, source, aggregate_id, occurred_at, schema_version, actor, request_id, payload) \
         SELECT * FROM (",
    );
    qb.push_values(events, |mut row, e| {
        row.push_bind(e.id)
            .push_bind(&e.event_type)
            .push_bind(&e.source)
            .push_bind(&e.aggregate_id)
            .push_bind(e.occurred_at)
            .push_bind(e.schema_version)
            .push_bind(&e.actor)
            .push_bind(&e.request_id)
            .push_bind(&e.payload);
    });
    qb.push(") e WHERE ").push(when);
}

/// Inserts many events in as few statements as the bind-parameter limit allows.
pub async fn insert_many(conn: &mut PgConnection, events: &[Event]) -> Result<(), sqlx::Error> {
    for chunk in events.chunks(5000) {
        let mut qb = sqlx::QueryBuilder::<Postgres>::new(
            "INSERT INTO platform.outbox (id, event_type, source, aggregate_id, occurred_at, schema_version, actor, request_id, payload) ",
        );
        qb.push_values(chunk, |mut row, e| {
            row.push_bind(e.id)
                .push_bind(&e.event_type)
                .push_bind(&e.source)
                .push_bind(&e.aggregate_id)
                .push_bind(e.occurred_at)
                .push_bind(e.schema_version)
                .push_bind(&e.actor)
                .push_bind(&e.request_id)
                .push_bind(&e.payload);
        });
        qb.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Locks the next events due for subscribers; rows another relay holds are skipped, so
/// replicas share the work without handing one event out twice at once.
pub async fn lock_undispatched(
    tx: &mut Transaction<'_, Postgres>,
    limit: i64,
) -> Result<Vec<(Event, i32)>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        event: OutboxRow,
        dispatch_attempts: i32,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, event_type, source, aggregate_id, occurred_at, schema_version, actor,
                request_id, payload,
                dispatch_attempts
           FROM platform.outbox
          WHERE dispatched_at IS NULL AND dispatch_after <= now()
          ORDER BY seq
          LIMIT $1
          FOR UPDATE SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.event.into(), r.dispatch_attempts))
        .collect())
}

pub async fn mark_dispatched(
    tx: &mut Transaction<'_, Postgres>,
    ids: &[Uuid],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE platform.outbox SET dispatched_at = now(), last_error = NULL WHERE id = ANY($1)",
    )
    .bind(ids)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records a failed dispatch: retry after `retry_in_ms`, or give up when `give_up`.
pub async fn mark_dispatch_failed(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    error: &str,
    retry_in_ms: i64,
    give_up: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE platform.outbox
            SET dispatch_attempts = dispatch_attempts + 1,
                last_error = $2,
                dispatch_after = now() + make_interval(secs => $3::double precision / 1000),
                dispatch_failed = $4,
                dispatched_at = CASE WHEN $4 THEN now() END
          WHERE id = $1",
    )
    .bind(id)
    .bind(error)
    .bind(retry_in_ms)
    .bind(give_up)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records that `consumer` handles `event_id` in this transaction; false if it already has.
///
/// The transaction then commits without waiting for its WAL flush (`synchronous_commit` off
/// for it alone): the outbox row is marked dispatched by a later, synchronous commit, and WAL
/// is durable in order, so a crash that loses this commit loses that mark too and the event
/// is handled again. Without the flush a subscriber's commit costs no disk wait, which was
/// what held the relay to about one event per fsync.
pub async fn claim_inbox(
    conn: &mut PgConnection,
    consumer: &str,
    event_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO platform.inbox (consumer, event_id)
         SELECT $1, $2 WHERE set_config('synchronous_commit', 'off', true) IS NOT NULL
         ON CONFLICT DO NOTHING",
    )
    .bind(consumer)
    .bind(event_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Takes the Kafka mirror's turn: a transaction-scoped advisory lock, so exactly one relay in
/// the cluster mirrors at a time and per-key order on Kafka follows outbox order.
pub async fn try_mirror_turn(tx: &mut Transaction<'_, Postgres>) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtext('basalt.outbox.mirror'))")
        .fetch_one(&mut **tx)
        .await
}

/// The next events owed to Kafka. No row locks: the advisory lock already makes the mirror
/// exclusive, and locking rows for the length of a produce would make the dispatcher (which
/// skips locked rows) wait on Kafka.
pub async fn next_unmirrored(
    tx: &mut Transaction<'_, Postgres>,
    limit: i64,
) -> Result<Vec<Event>, sqlx::Error> {
    let rows: Vec<OutboxRow> = sqlx::query_as(
        "SELECT id, event_type, source, aggregate_id, occurred_at, schema_version, actor,
                request_id, payload
           FROM platform.outbox
          WHERE mirrored_at IS NULL
          ORDER BY seq
          LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(Event::from).collect())
}

pub async fn mark_mirrored(
    tx: &mut Transaction<'_, Postgres>,
    ids: &[Uuid],
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE platform.outbox SET mirrored_at = now() WHERE id = ANY($1)")
        .bind(ids)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Deletes events every consumer is done with, older than the retention, and their inbox rows.
/// Dead letters stay until they are replayed: dropping them would lose the events.
pub async fn prune(
    pool: &PgPool,
    retention_hours: i64,
    mirror_enabled: bool,
) -> Result<u64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let deleted: Vec<Uuid> = sqlx::query_scalar(
        "DELETE FROM platform.outbox
          WHERE dispatched_at IS NOT NULL AND NOT dispatch_failed
            AND ($2 = false OR mirrored_at IS NOT NULL)
            AND occurred_at < now() - make_interval(hours => $1::int)
          RETURNING id",
    )
    .bind(retention_hours)
    .bind(mirror_enabled)
    .fetch_all(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM platform.inbox WHERE event_id = ANY($1)")
        .bind(&deleted)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(deleted.len() as u64)
}

/// Backlog figures for /metrics and /health.
#[derive(Debug, Default, Clone, Copy, sqlx::FromRow)]
pub struct Backlog {
    pub undispatched: i64,
    pub oldest_undispatched_secs: Option<f64>,
    pub unmirrored: i64,
    pub oldest_unmirrored_secs: Option<f64>,
    /// Events a subscriber kept failing on, given up on and waiting for a replay.
    pub dead_letters: i64,
}

pub async fn backlog(pool: &PgPool) -> Result<Backlog, sqlx::Error> {
    sqlx::query_as(
        "SELECT
           (SELECT count(*) FROM platform.outbox WHERE dispatched_at IS NULL) AS undispatched,
           (SELECT extract(epoch FROM now() - min(occurred_at))::float8
              FROM platform.outbox WHERE dispatched_at IS NULL) AS oldest_undispatched_secs,
           (SELECT count(*) FROM platform.outbox WHERE mirrored_at IS NULL) AS unmirrored,
           (SELECT extract(epoch FROM now() - min(occurred_at))::float8
              FROM platform.outbox WHERE mirrored_at IS NULL) AS oldest_unmirrored_secs,
           (SELECT count(*) FROM platform.outbox WHERE dispatch_failed) AS dead_letters",
    )
    .fetch_one(pool)
    .await
}

/// An event the dispatcher gave up on, as staff list it.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct DeadLetter {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub event_type: String,
    pub source: String,
    pub aggregate_id: String,
    pub occurred_at: DateTime<Utc>,
    /// Dispatch attempts made before giving up.
    pub attempts: i32,
    /// The last failure, naming the subscriber.
    pub last_error: Option<String>,
    pub given_up_at: Option<DateTime<Utc>>,
}

/// Dead letters, oldest first (ids are UUIDv7), after the cursor's id.
pub async fn dead_letters(
    pool: &PgPool,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<DeadLetter>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, event_type, source, aggregate_id, occurred_at,
                dispatch_attempts AS attempts, last_error, dispatched_at AS given_up_at
           FROM platform.outbox
          WHERE dispatch_failed AND ($1::uuid IS NULL OR id > $1)
          ORDER BY id
          LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Puts a dead letter back in the dispatch queue with a fresh budget of attempts and wakes
/// the relays; false if `id` is no dead letter. Subscribers that handled the event before
/// are skipped (their inbox rows), so only the ones that failed run again.
pub async fn replay_dead_letter(pool: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    let replayed: Option<Uuid> = sqlx::query_scalar(
        "WITH replayed AS (
            UPDATE platform.outbox
               SET dispatch_failed = false, dispatched_at = NULL, dispatch_attempts = 0,
                   dispatch_after = now(), last_error = NULL
             WHERE id = $1 AND dispatch_failed
         RETURNING id)
         SELECT r.id FROM replayed r, LATERAL (SELECT pg_notify($2, '')) woken",
    )
    .bind(id)
    .bind(super::relay::CHANNEL)
    .fetch_optional(pool)
    .await?;
    Ok(replayed.is_some())
}
