//! Events: the envelope, the outbox writer, in-process subscribers and the relay that hands
//! committed events to subscribers and, with the `kafka` feature, mirrors them to Kafka.
//!
//! A domain publishes with `events::publish(&mut tx, &event)` inside the transaction that
//! makes the change, so an event is never sent for a change that rolled back and never lost
//! for one that committed. Delivery is at-least-once; the inbox makes subscribers
//! effectively-once.

mod kafka;
mod relay;
mod repo;
mod subscriber;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

pub use kafka::{KafkaMirror, topic_for, without_secrets};
pub use relay::{Relay, RelayHandle};
pub use repo::{Backlog, backlog, prune};
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
    pub payload: serde_json::Value,
}

/// A typed event owned by the domain that publishes it.
pub trait DomainEvent: Serialize {
    /// Dotted event type, e.g. `user.registered`.
    const TYPE: &'static str;
    /// The publishing domain's name.
    const SOURCE: &'static str;
    /// Bumped when the payload changes incompatibly.
    const VERSION: i32 = 1;
    fn aggregate_id(&self) -> String;
}

impl Event {
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
            payload,
        }
    }

    pub fn from_domain<E: DomainEvent>(event: &E) -> Result<Self, serde_json::Error> {
        let mut e = Self::new(
            E::SOURCE,
            E::TYPE,
            event.aggregate_id(),
            serde_json::to_value(event)?,
        );
        e.schema_version = E::VERSION;
        Ok(e)
    }
}

/// Writes `event` to the outbox on the caller's connection, which should be inside the
/// transaction that makes the change the event describes.
pub async fn publish(conn: &mut PgConnection, event: &Event) -> Result<(), sqlx::Error> {
    repo::insert(conn, event).await
}

/// Writes several events to the outbox in one statement (a bulk write's events); see
/// [`publish`].
pub async fn publish_all(conn: &mut PgConnection, events: &[Event]) -> Result<(), sqlx::Error> {
    repo::insert_many(conn, events).await
}

/// Publishes a typed event; see [`publish`].
pub async fn publish_domain<E: DomainEvent>(
    conn: &mut PgConnection,
    event: &E,
) -> anyhow::Result<()> {
    publish(conn, &Event::from_domain(event)?).await?;
    Ok(())
}
