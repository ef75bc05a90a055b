//! Events: the envelope, the outbox writer, in-process subscribers and the relay that hands
//! committed events to subscribers and, with the `kafka` feature, mirrors them to Kafka.
//!
//! A domain declares its payload structs once with `declare_events!` and publishes with
//! `events::publish(&mut tx, &payload)` inside the transaction that
//! makes the change, so an event is never sent for a change that rolled back and never lost
//! for one that committed. Delivery is at-least-once; the inbox makes subscribers
//! effectively-once.

mod kafka;
pub mod outage;
mod relay;
mod repo;
mod subscriber;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::platform::http::request_id;

pub use kafka::{KafkaMirror, outgoing, route_for, topic_for, without_secrets};
pub use relay::{Relay, RelayHandle};
pub use repo::{
    Backlog, DEFER_WAKE, DeadLetter, backlog, dead_letters, prune, push_insert, replay_dead_letter,
};
pub use subscriber::{Subscriber, subscriber_fn};

/// The envelope every event travels in, in the outbox, to subscribers and on Kafka.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct Event {
    /// UUIDv7: unique, and roughly ordered by time.
    pub id: Uuid,
    /// Dotted and past tense: `user.registered`, `order.placed`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The domain that published it.
    pub source: String,
    /// The entity it is about; the Kafka key, so one entity's events stay in order.
    pub aggregate_id: String,
    pub occurred_at: DateTime<Utc>,
    pub schema_version: i32,
    /// Who caused it: `user:<id>`, `api_key:<id>`, or `system` for work no request caused
    /// (jobs, subscribers, an anonymous caller).
    #[serde(default = "system_actor")]
    pub actor: String,
    /// The request that caused it, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    pub payload: serde_json::Value,
}

fn system_actor() -> String {
    SYSTEM_ACTOR.to_owned()
}

/// The actor of events no signed-in caller caused.
pub const SYSTEM_ACTOR: &str = "system";

/// A typed event owned by the domain that publishes it: a payload struct declared once with
/// [`declare_events!`](crate::declare_events), which gives it its type name and aggregate.
pub trait DomainEvent: Serialize + DeserializeOwned {
    /// Dotted event type, e.g. `user.registered`.
    const TYPE: &'static str;
    /// The publishing domain's name.
    const SOURCE: &'static str;
    /// Bumped when the payload changes incompatibly.
    const VERSION: i32 = 1;
    fn aggregate_id(&self) -> String;
}

impl Event {
    /// An envelope for an untyped payload (tests, and events relayed from elsewhere); the
    /// actor and request id come from the request being served, if any.
    pub fn new(
        source: &str,
        event_type: &str,
        aggregate_id: impl Into<String>,
        payload: serde_json::Value,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            event_type: event_type.to_owned(),
            source: source.to_owned(),
            aggregate_id: aggregate_id.into(),
            occurred_at: Utc::now(),
            schema_version: 1,
            actor: request_id::actor().unwrap_or_else(system_actor),
            request_id: request_id::current(),
            payload,
        }
    }

    /// The envelope of a typed event.
    pub fn of<E: DomainEvent>(event: &E) -> Result<Self, serde_json::Error> {
        let mut e = Self::new(
            E::SOURCE,
            E::TYPE,
            event.aggregate_id(),
            serde_json::to_value(event)?,
        );
        e.schema_version = E::VERSION;
        Ok(e)
    }

    /// Whether this is an `E`.
    pub fn is<E: DomainEvent>(&self) -> bool {
        self.event_type == E::TYPE
    }

    /// The payload as an `E`; an error if the event is of another type or the payload does
    /// not fit (the subscriber's retry and dead-letter handling then apply).
    pub fn decode<E: DomainEvent>(&self) -> anyhow::Result<E> {
        anyhow::ensure!(
            self.is::<E>(),
            "event {} is a {}, not a {}",
            self.id,
            self.event_type,
            E::TYPE
        );
        serde_json::from_value(self.payload.clone())
            .map_err(|e| anyhow::anyhow!("event {} ({}): {e}", self.id, self.event_type))
    }
}

/// Declares a domain's events once: each payload struct's type name and the field that is
/// its aggregate id. Generates the [`DomainEvent`] impls, `TYPES` (what `Domain::events`
/// returns) and `EventsApi` (the payload schemas, for the domain's OpenAPI document).
///
/// ```ignore
/// crate::declare_events! {
///     source = "storage";
///     BucketCreated = "storage.bucket.created" by bucket_id,
///     FileUploaded = "storage.file.uploaded" by file_id,
/// }
/// ```
#[macro_export]
macro_rules! declare_events {
    (source = $source:literal; $($ty:ident = $name:literal by $field:ident),* $(,)?) => {
        $(impl $crate::platform::events::DomainEvent for $ty {
            const TYPE: &'static str = $name;
            const SOURCE: &'static str = $source;
            fn aggregate_id(&self) -> String {
                self.$field.to_string()
            }
        })*

        /// Every event type this domain publishes.
        pub const TYPES: &[&str] = &[$($name),*];

        /// The payload schemas, merged into the domain's OpenAPI document.
        pub struct EventsApi;

        impl utoipa::OpenApi for EventsApi {
            fn openapi() -> utoipa::openapi::OpenApi {
                // The types the payloads name (ids, nested structs), so no `$ref` dangles.
                let mut named = Vec::new();
                $(<$ty as utoipa::ToSchema>::schemas(&mut named);)*
                utoipa::openapi::OpenApiBuilder::new()
                    .components(Some(
                        utoipa::openapi::ComponentsBuilder::new()
                            $(.schema_from::<$ty>())*
                            .schemas_from_iter(named)
                            .build(),
                    ))
                    .build()
            }
        }
    };
}

/// Writes a typed event to the outbox on the caller's connection, which should be inside
/// the transaction that makes the change the event describes; returns the event's id.
pub async fn publish<E: DomainEvent>(
    conn: &mut PgConnection,
    event: &E,
) -> Result<Uuid, sqlx::Error> {
    let event = Event::of(event).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    repo::insert(conn, &event).await?;
    Ok(event.id)
}

/// Writes several typed events in one statement (a bulk write's events); see [`publish`].
pub async fn publish_all<E: DomainEvent>(
    conn: &mut PgConnection,
    events: &[E],
) -> Result<(), sqlx::Error> {
    let events = events
        .iter()
        .map(Event::of)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    repo::insert_many(conn, &events).await
}

/// Wakes every replica's relay for events committed without the outbox trigger's NOTIFY
/// (a write that set `basalt.outbox_wake = deferred`, see the `outbox_deferred_wake`
/// migration): one `pg_notify` at a time from a background task, however many writes asked
/// since the last, so the writes' own commits are not serialised on PostgreSQL's NOTIFY lock.
#[derive(Clone)]
pub struct RelayWaker {
    wake: std::sync::Arc<tokio::sync::Notify>,
}

impl RelayWaker {
    /// Starts the task (on the current runtime); it ends with the runtime.
    pub fn spawn(db: sqlx::PgPool) -> Self {
        let wake = std::sync::Arc::new(tokio::sync::Notify::new());
        let waiting = wake.clone();
        tokio::spawn(async move {
            loop {
                waiting.notified().await;
                if let Err(e) = crate::platform::wakeup::notify(&db, relay::CHANNEL).await {
                    // The relay's poll picks the events up anyway.
                    tracing::warn!(error = %e, "could not wake the relays");
                }
            }
        });
        Self { wake }
    }

    /// Call after the commit of a write that deferred its wake-up.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// The envelopes of typed events, for a domain statement that writes them itself beside its
/// change (see [`push_insert`]): the change and its events in one round trip.
pub fn envelopes<E: DomainEvent>(events: &[E]) -> Result<Vec<Event>, sqlx::Error> {
    events
        .iter()
        .map(Event::of)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

/// Writes an envelope as it is (an event relayed from elsewhere, or a test's); domains
/// publish typed events with [`publish`].
pub async fn publish_envelope(conn: &mut PgConnection, event: &Event) -> Result<(), sqlx::Error> {
    repo::insert(conn, event).await
}
