//! The Kafka mirror against a real Kafka-protocol broker (tansu), started and stopped by the
//! tests themselves: order per key, and nothing lost while the broker is down.

use std::collections::HashMap;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use basalt::platform::events::{self, Event};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::helpers::*;

struct Broker {
    child: Option<Child>,
    port: u16,
}

fn tansu() -> String {
    if let Ok(bin) = std::env::var("TANSU_BIN") {
        return bin;
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let cargo_bin = format!("{home}/.cargo/bin/tansu");
    if std::path::Path::new(&cargo_bin).exists() {
        cargo_bin
    } else {
        "tansu".into()
    }
}

impl Broker {
    fn start_on(port: u16) -> Self {
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(tansu())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the tansu broker (scripts/test.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "tansu did not start listening on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child: Some(child),
            port,
        }
    }

    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(port)
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Publishes `count` events for `key` numbered from `from`, one transaction each.
async fn publish_sequence(app: &TestApp, key: &str, from: i64, count: i64) {
    for n in from..from + count {
        let mut tx = app.db.begin().await.unwrap();
        let event = Event::new("probe", "probe.tick", key, serde_json::json!({ "n": n }));
        events::publish_envelope(&mut tx, &event).await.unwrap();
        tx.commit().await.unwrap();
    }
}

async fn unmirrored(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM platform.outbox WHERE mirrored_at IS NULL")
        .fetch_one(&app.db)
        .await
        .unwrap()
}

/// Reads every message of `topic` from the beginning until `expected` arrived (or a timeout):
/// returns (key, n, event id header) in partition order.
fn consume(
    brokers: &str,
    topic: &str,
    partitions: i32,
    expected: usize,
) -> Vec<(String, i64, String)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("test-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while out.len() < expected && Instant::now() < deadline {
        let Some(msg) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let msg = msg.unwrap();
        let key = String::from_utf8(msg.key().unwrap().to_vec()).unwrap();
        let event: Event = serde_json::from_slice(msg.payload().unwrap()).unwrap();
        let headers = msg.headers().unwrap();
        let id = headers
            .iter()
            .find(|h| h.key == "event_id")
            .and_then(|h| h.value)
            .unwrap();
        assert_eq!(std::str::from_utf8(id).unwrap(), event.id.to_string());
        assert_eq!(event.aggregate_id, key);
        out.push((
            key,
            event.payload["n"].as_i64().unwrap(),
            event.id.to_string(),
        ));
    }
    out
}

/// Per key, the numbers in the order they were consumed, duplicates (at-least-once) removed.
fn sequences(messages: &[(String, i64, String)]) -> HashMap<String, Vec<i64>> {
    let mut seen = std::collections::HashSet::new();
    let mut by_key: HashMap<String, Vec<i64>> = HashMap::new();
    for (key, n, id) in messages {
        if seen.insert(id.clone()) {
            by_key.entry(key.clone()).or_default().push(*n);
        }
    }
    by_key
}

fn kafka_env(broker: &Broker, prefix: &str) -> Vec<(String, String)> {
    vec![
        ("KAFKA_BROKERS".into(), broker.address()),
        ("BASALT__KAFKA__TOPIC_PREFIX".into(), prefix.into()),
        ("BASALT__KAFKA__MESSAGE_TIMEOUT_MS".into(), "3000".into()),
        ("BASALT__KAFKA__PARTITIONS".into(), "2".into()),
    ]
}

#[tokio::test]
async fn every_event_is_mirrored_to_kafka_in_order_per_key() {
    let broker = Broker::start();
    let env = kafka_env(&broker, "ordered");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let app = spawn_app_with(&env).await;
    for key in ["cart-1", "cart-2", "cart-3"] {
        publish_sequence(&app, key, 0, 15).await;
    }
    assert!(
        eventually(Duration::from_secs(30), || async {
            unmirrored(&app).await == 0
        })
        .await
    );
    let brokers = broker.address();
    let messages = tokio::task::spawn_blocking(move || consume(&brokers, "ordered.probe", 2, 45))
        .await
        .unwrap();
    let by_key = sequences(&messages);
    for key in ["cart-1", "cart-2", "cart-3"] {
        assert_eq!(
            by_key[key],
            (0..15).collect::<Vec<_>>(),
            "{key} in order, complete"
        );
    }
    let body: serde_json::Value = app.get("/health").await.json().await.unwrap();
    let kafka = health_check(&body, "kafka");
    assert_eq!(kafka["status"], "ok", "{kafka}");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("basalt_events_relayed_total{destination=\"kafka\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("basalt_outbox_backlog{queue=\"kafka\"} 0"),
        "{metrics}"
    );
}

#[tokio::test]
async fn events_written_while_the_broker_is_down_arrive_when_it_returns() {
    let mut broker = Broker::start();
    let port = broker.port;
    let env = kafka_env(&broker, "outage");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let app = spawn_app_with(&env).await;
    publish_sequence(&app, "order-7", 0, 5).await;
    assert!(
        eventually(Duration::from_secs(30), || async {
            unmirrored(&app).await == 0
        })
        .await
    );

    broker.stop();
    publish_sequence(&app, "order-7", 5, 10).await;
    publish_sequence(&app, "order-8", 0, 10).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        unmirrored(&app).await,
        20,
        "events wait in the outbox while Kafka is down"
    );
    let body: serde_json::Value = app.get("/health").await.json().await.unwrap();
    assert_eq!(body["status"], "degraded", "{body}");
    // In-process subscribers are not held up by Kafka.
    let pending: i64 =
        sqlx::query_scalar("SELECT count(*) FROM platform.outbox WHERE dispatched_at IS NULL")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(pending, 0);

    // The broker comes back empty (in-memory storage): only what was written during the
    // outage is still owed, and all of it must arrive, in order.
    let broker = Broker::start_on(port);
    assert!(
        eventually(Duration::from_secs(60), || async {
            unmirrored(&app).await == 0
        })
        .await
    );
    let brokers = broker.address();
    let messages = tokio::task::spawn_blocking(move || consume(&brokers, "outage.probe", 2, 20))
        .await
        .unwrap();
    let by_key = sequences(&messages);
    assert_eq!(by_key["order-7"], (5..15).collect::<Vec<_>>());
    assert_eq!(by_key["order-8"], (0..10).collect::<Vec<_>>());
}
