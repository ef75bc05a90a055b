//! The Kafka mirror (feature `kafka`): every outbox event is also produced to Kafka.
//!
//! Topic: `kafka.topics`' mapping of the event's type or domain, else
//! `<kafka.topic_prefix>.<source domain>` (e.g. `basalt.auth`); created on first use
//! with `kafka.partitions` partitions. Key: the aggregate id, so one entity's events land in
//! one partition in order. Value: the JSON envelope. Headers: `event_id`, `event_type`,
//! `source`, `schema_version`, so consumers can route and dedupe without parsing the value.
//! The producer is idempotent with `acks=all`, so librdkafka's own retries neither duplicate
//! nor reorder messages within a partition.

use std::time::{Duration, Instant};

use super::Event;
use super::outage::OutageLog;
use crate::config::{KafkaSettings, TopicRoute};

pub use imp::KafkaMirror;

/// What leaves the process: the event without `payload.secret`, where domains put single-use
/// tokens meant only for in-process subscribers (the verification link's token, say).
pub fn without_secrets(event: &Event) -> Event {
    let mut public = event.clone();
    if let Some(fields) = public.payload.as_object_mut() {
        fields.remove("secret");
    }
    public
}

/// The `[[kafka.topics]]` entry that applies to an event: an exact event type first, then
/// the longest matching family (`user.*`), then its source domain (`auth`).
pub fn route_for<'a>(
    settings: &'a KafkaSettings,
    event_type: &str,
    source: &str,
) -> Option<&'a TopicRoute> {
    let routes = &settings.topics;
    let named = |name: &str| routes.iter().find(|r| r.matches == name);
    named(event_type)
        .or_else(|| {
            routes
                .iter()
                .filter_map(|r| {
                    let prefix = r.matches.strip_suffix(".*")?;
                    let rest = event_type.strip_prefix(prefix)?;
                    rest.starts_with('.').then_some((prefix.len(), r))
                })
                .max_by_key(|(len, _)| *len)
                .map(|(_, r)| r)
        })
        .or_else(|| named(source))
}

/// The topic an event goes to: its route's, or `<topic_prefix>.<source domain>`.
pub fn topic_for(settings: &KafkaSettings, event_type: &str, source: &str) -> String {
    route_for(settings, event_type, source)
        .map(|r| r.topic.clone())
        .unwrap_or_else(|| format!("{}.{source}", settings.topic_prefix))
}

/// What leaves the process and where: the envelope without secrets, under the type name its
/// route gives consumers that expect another (the seeds' `user.logged-in`), and its topic.
pub fn outgoing(settings: &KafkaSettings, event: &Event) -> (String, Event) {
    let route = route_for(settings, &event.event_type, &event.source);
    let mut public = without_secrets(event);
    // A rename applies to the one type its route names exactly; on a family or a domain it
    // would give every event there the same name, so it is ignored (and refused at start-up).
    if let Some(alias) = route
        .filter(|r| r.matches == event.event_type)
        .and_then(|r| r.event_type.clone())
    {
        public.event_type = alias;
    }
    (
        topic_for(settings, &event.event_type, &event.source),
        public,
    )
}

/// How often an ongoing outage is summarised in the log.
#[cfg_attr(not(feature = "kafka"), allow(dead_code))]
const OUTAGE_SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// Logs a mirror or client failure through the outage log.
#[cfg_attr(not(feature = "kafka"), allow(dead_code))]
fn outage_failed(outage: &OutageLog, error: String) {
    if let Some(line) = outage.failed(error, Instant::now()) {
        OutageLog::log("Kafka", line);
    }
}

#[cfg(feature = "kafka")]
mod imp {
    use std::collections::HashSet;
    use std::sync::{Arc, Mutex, RwLock};

    use rdkafka::ClientConfig;
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::ClientContext;
    use rdkafka::config::RDKafkaLogLevel;
    use rdkafka::error::{KafkaError, RDKafkaErrorCode};
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

    use super::*;

    /// The clients' context: librdkafka's errors and warnings (a broker it cannot reach,
    /// again on every reconnect) go through the outage log instead of one line each.
    #[derive(Clone)]
    pub struct Quiet {
        outage: Arc<OutageLog>,
    }

    impl ClientContext for Quiet {
        fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
            match level {
                RDKafkaLogLevel::Emerg
                | RDKafkaLogLevel::Alert
                | RDKafkaLogLevel::Critical
                | RDKafkaLogLevel::Error
                | RDKafkaLogLevel::Warning => {
                    outage_failed(&self.outage, format!("librdkafka {fac}: {message}"))
                }
                RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                    tracing::debug!(target: "librdkafka", "{fac}: {message}")
                }
                RDKafkaLogLevel::Debug => tracing::trace!(target: "librdkafka", "{fac}: {message}"),
            }
        }

        fn error(&self, error: KafkaError, reason: &str) {
            outage_failed(&self.outage, format!("librdkafka: {error}: {reason}"));
        }
    }

    pub struct KafkaMirror {
        settings: KafkaSettings,
        config: ClientConfig,
        context: Quiet,
        /// Replaced after a failed batch (see `reset`).
        producer: RwLock<FutureProducer<Quiet>>,
        admin: AdminClient<Quiet>,
        /// Topics known to exist; cleared after any failure, since a broker that came back
        /// empty has lost them.
        known_topics: Mutex<HashSet<String>>,
    }

    impl KafkaMirror {
        pub fn new(settings: &KafkaSettings) -> anyhow::Result<Option<Self>> {
            let Some(brokers) = settings.brokers() else {
                return Ok(None);
            };
            let mut config = ClientConfig::new();
            config
                .set("bootstrap.servers", brokers)
                .set("client.id", &settings.client_id)
                .set("enable.idempotence", "true")
                .set("acks", "all")
                .set(
                    "message.timeout.ms",
                    settings.message_timeout_ms.to_string(),
                )
                .set("linger.ms", "5")
                .set("socket.timeout.ms", "5000")
                .set("reconnect.backoff.max.ms", "2000");
            let context = Quiet {
                outage: Arc::new(OutageLog::new(OUTAGE_SUMMARY_EVERY)),
            };
            let producer: FutureProducer<Quiet> = config
                .create_with_context(context.clone())
                .map_err(|e| anyhow::anyhow!("kafka.brokers: cannot create a producer: {e}"))?;
            let admin: AdminClient<Quiet> =
                config.create_with_context(context.clone()).map_err(|e| {
                    anyhow::anyhow!("kafka.brokers: cannot create an admin client: {e}")
                })?;
            Ok(Some(Self {
                settings: settings.clone(),
                config,
                context,
                producer: RwLock::new(producer),
                admin,
                known_topics: Mutex::new(HashSet::new()),
            }))
        }

        /// A failed mirror batch: logged as part of the outage, not line by line.
        pub fn failed(&self, error: &anyhow::Error) {
            outage_failed(&self.context.outage, format!("{error:#}"));
        }

        /// The broker acknowledged a batch: ends an outage, if one was going on.
        fn succeeded(&self) {
            if let Some(line) = self.context.outage.succeeded(Instant::now()) {
                OutageLog::log("Kafka", line);
            }
        }

        fn producer(&self) -> FutureProducer<Quiet> {
            self.producer
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
        }

        /// After a failed batch, start over with a fresh producer and re-check topics. A
        /// broker that restarted without its state no longer knows the idempotent producer's
        /// id (librdkafka then retries until the message times out, every time), nor its
        /// topics. Every message of the failed batch has its final outcome by now, so nothing
        /// of the old producer's can arrive after what the new one sends.
        fn reset(&self) {
            self.known_topics
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
            match self
                .config
                .create_with_context::<_, FutureProducer<Quiet>>(self.context.clone())
            {
                Ok(fresh) => *self.producer.write().unwrap_or_else(|p| p.into_inner()) = fresh,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot create a new Kafka producer; keeping the old one")
                }
            }
        }

        async fn ensure_topics(&self, events: &[Event]) -> anyhow::Result<()> {
            let wanted: HashSet<String> = events
                .iter()
                .map(|e| topic_for(&self.settings, &e.event_type, &e.source))
                .collect();
            let missing: Vec<String> = {
                let known = self.known_topics.lock().unwrap_or_else(|p| p.into_inner());
                wanted.into_iter().filter(|t| !known.contains(t)).collect()
            };
            if missing.is_empty() {
                return Ok(());
            }
            let topics: Vec<NewTopic> = missing
                .iter()
                .map(|t| {
                    NewTopic::new(
                        t,
                        self.settings.partitions,
                        TopicReplication::Fixed(self.settings.replication_factor),
                    )
                })
                .collect();
            let opts = AdminOptions::new()
                .operation_timeout(Some(Duration::from_secs(5)))
                .request_timeout(Some(Duration::from_secs(5)));
            let results = self.admin.create_topics(&topics, &opts).await?;
            let mut known = self.known_topics.lock().unwrap_or_else(|p| p.into_inner());
            for result in results {
                match result {
                    Ok(topic) | Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => {
                        known.insert(topic);
                    }
                    Err((topic, code)) => anyhow::bail!("cannot create topic {topic}: {code}"),
                }
            }
            Ok(())
        }

        /// Produces `events` in order; returns how many from the start were acknowledged and
        /// the first failure, if any. Only that prefix may be marked mirrored.
        pub async fn send(&self, events: &[Event]) -> (usize, Option<anyhow::Error>) {
            if let Err(e) = self.ensure_topics(events).await {
                return (0, Some(e));
            }
            let producer = self.producer();
            let mut pending = Vec::with_capacity(events.len());
            let mut failure: Option<anyhow::Error> = None;
            for event in events {
                let (topic, event) = outgoing(&self.settings, event);
                let event = &event;
                let payload = match serde_json::to_vec(event) {
                    Ok(p) => p,
                    Err(e) => {
                        failure = Some(e.into());
                        break;
                    }
                };
                let id = event.id.to_string();
                let version = event.schema_version.to_string();
                let headers = OwnedHeaders::new()
                    .insert(Header {
                        key: "event_id",
                        value: Some(&id),
                    })
                    .insert(Header {
                        key: "event_type",
                        value: Some(&event.event_type),
                    })
                    .insert(Header {
                        key: "source",
                        value: Some(&event.source),
                    })
                    .insert(Header {
                        key: "schema_version",
                        value: Some(&version),
                    });
                let record = FutureRecord::to(&topic)
                    .key(&event.aggregate_id)
                    .payload(&payload)
                    .headers(headers);
                match producer.send_result(record) {
                    Ok(delivery) => pending.push(delivery),
                    Err((e, _)) => {
                        failure = Some(anyhow::anyhow!("cannot queue event {}: {e}", event.id));
                        break;
                    }
                }
            }
            let mut acknowledged = 0;
            for delivery in pending {
                match delivery.await {
                    Ok(Ok(_)) if failure.is_none() => acknowledged += 1,
                    Ok(Ok(_)) => {}
                    Ok(Err((e, _))) => {
                        failure.get_or_insert_with(|| {
                            anyhow::anyhow!("Kafka did not acknowledge: {e}")
                        });
                    }
                    Err(_) => {
                        failure.get_or_insert_with(|| {
                            anyhow::anyhow!("the producer dropped a delivery")
                        });
                    }
                }
            }
            if failure.is_some() {
                self.reset();
            } else if acknowledged > 0 {
                self.succeeded();
            }
            (acknowledged, failure)
        }

        /// Asks the cluster for its metadata: proves a broker is reachable.
        pub async fn ping(&self) -> anyhow::Result<()> {
            let producer = self.producer();
            tokio::task::spawn_blocking(move || {
                producer
                    .client()
                    .fetch_metadata(None, Duration::from_secs(2))
                    .map(|m| m.brokers().len())
            })
            .await?
            .map_err(|e| anyhow::anyhow!("{e}"))
            .and_then(|n| {
                if n > 0 {
                    Ok(())
                } else {
                    Err(anyhow::anyhow!("no brokers in metadata"))
                }
            })
        }

        /// Waits for queued messages to be delivered (shutdown).
        pub fn flush(&self, timeout: Duration) {
            if let Err(e) = self.producer().flush(timeout) {
                tracing::warn!(error = %e, "Kafka producer flush did not finish");
            }
        }
    }
}

#[cfg(not(feature = "kafka"))]
mod imp {
    use super::*;

    /// Built without the `kafka` feature: `new` never returns a mirror, so these methods
    /// are never reached; they exist so callers need no `cfg` of their own.
    pub struct KafkaMirror {
        _private: (),
    }

    impl KafkaMirror {
        pub fn new(settings: &KafkaSettings) -> anyhow::Result<Option<Self>> {
            if settings.brokers().is_some() {
                tracing::warn!(
                    "kafka.brokers is set, but this binary was built without the `kafka` feature; ignoring it"
                );
            }
            Ok(None)
        }

        pub async fn send(&self, _events: &[Event]) -> (usize, Option<anyhow::Error>) {
            (
                0,
                Some(anyhow::anyhow!("built without the `kafka` feature")),
            )
        }

        pub async fn ping(&self) -> anyhow::Result<()> {
            anyhow::bail!("built without the `kafka` feature")
        }

        pub fn flush(&self, _timeout: Duration) {}

        pub fn failed(&self, _error: &anyhow::Error) {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(topics: &[(&str, &str)]) -> KafkaSettings {
        KafkaSettings {
            brokers: String::new(),
            topic_prefix: "basalt".into(),
            topics: topics
                .iter()
                .map(|(m, t)| TopicRoute {
                    matches: (*m).to_owned(),
                    topic: (*t).to_owned(),
                    event_type: None,
                })
                .collect(),
            client_id: "basalt".into(),
            message_timeout_ms: 1000,
            partitions: 1,
            replication_factor: 1,
        }
    }

    #[test]
    fn exact_types_win_over_families_over_domains_over_the_prefix() {
        let s = settings(&[
            ("user.logged_in", "auth-events"),
            ("user.*", "user-events"),
            ("auth", "auth-events"),
            ("baas.document.*", "documents"),
            ("baas.*", "baas-all"),
        ]);
        assert_eq!(topic_for(&s, "user.logged_in", "auth"), "auth-events");
        assert_eq!(topic_for(&s, "user.registered", "auth"), "user-events");
        assert_eq!(topic_for(&s, "session.revoked", "auth"), "auth-events");
        assert_eq!(
            topic_for(&s, "baas.document.created", "baas-database"),
            "documents"
        );
        assert_eq!(
            topic_for(&s, "baas.database.created", "baas-database"),
            "baas-all"
        );
        assert_eq!(
            topic_for(&s, "storage.file.uploaded", "storage"),
            "basalt.storage"
        );
        // `user.*` is a family: `users.x` is not in it.
        assert_eq!(topic_for(&s, "users.x", "users"), "basalt.users");
    }

    #[test]
    fn a_route_can_rename_the_type_for_consumers_that_expect_another() {
        let mut s = settings(&[("user.logged_in", "user-events")]);
        s.topics[0].event_type = Some("user.logged-in".into());
        let event = Event::new(
            "auth",
            "user.logged_in",
            "u1",
            serde_json::json!({"user_id": "u1", "secret": {"token": "t"}}),
        );
        let (topic, public) = outgoing(&s, &event);
        assert_eq!(topic, "user-events");
        assert_eq!(public.event_type, "user.logged-in");
        assert!(public.payload.get("secret").is_none());
        assert_eq!(
            event.event_type, "user.logged_in",
            "in-process subscribers keep the name"
        );
    }
}
