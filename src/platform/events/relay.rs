//! The relay: moves committed events from `platform.outbox` to in-process subscribers and,
//! when configured, to Kafka.
//!
//! Two loops share one wake-up source (LISTEN/NOTIFY on `basalt_outbox`, with polling as the
//! fallback if the listener connection drops):
//! - the dispatcher locks due events with `FOR UPDATE SKIP LOCKED`, so any number of replicas
//!   share the work, and runs each interested subscriber in its own transaction with an
//!   inbox row; a failing subscriber is retried with exponential backoff, then given up on:
//!   the event stays in the outbox as a dead letter (shown on /health and /metrics) until
//!   staff replay it;
//! - the Kafka mirror runs in one replica at a time (an advisory lock), in outbox order, and
//!   marks only the prefix of a batch the broker acknowledged, so a broker outage leaves the
//!   rest waiting in the outbox and nothing is skipped or reordered.
//!
//! On shutdown both loops finish their current batch, drain what is due, and the producer is
//! flushed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{Event, KafkaMirror, Subscriber, repo};
use crate::config::EventsSettings;
use crate::platform::wakeup::Wakeups;

pub const CHANNEL: &str = "basalt_outbox";
const MAX_BACKOFF: Duration = Duration::from_secs(30);

pub struct Relay {
    pool: PgPool,
    subscribers: Vec<Arc<dyn Subscriber>>,
    mirror: Option<Arc<KafkaMirror>>,
    settings: EventsSettings,
}

/// Stops the relay: cancel, wait for the loops' final drain, flush the producer.
pub struct RelayHandle {
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    mirror: Option<Arc<KafkaMirror>>,
}

impl RelayHandle {
    pub async fn shutdown(self, deadline: Duration) {
        self.shutdown.cancel();
        let tasks = futures_util::future::join_all(self.tasks);
        if tokio::time::timeout(deadline, tasks).await.is_err() {
            tracing::warn!(
                "event relay did not drain within {deadline:?}; undelivered events stay in the outbox"
            );
        }
        if let Some(mirror) = self.mirror {
            let _ = tokio::task::spawn_blocking(move || mirror.flush(Duration::from_secs(5))).await;
        }
    }
}

enum Progress {
    /// The batch was full: more may be waiting.
    More,
    Idle,
}

impl Relay {
    pub fn new(
        pool: PgPool,
        subscribers: Vec<Arc<dyn Subscriber>>,
        mirror: Option<Arc<KafkaMirror>>,
        settings: EventsSettings,
    ) -> Self {
        Self {
            pool,
            subscribers,
            mirror,
            settings,
        }
    }

    /// Starts the loops; they are woken through `wakeups` once that starts listening.
    pub fn spawn(self, wakeups: &Wakeups) -> RelayHandle {
        let this = Arc::new(self);
        let shutdown = CancellationToken::new();
        let dispatch_wake = wakeups.on(CHANNEL);
        let mirror_wake = wakeups.on(CHANNEL);
        let mut tasks = vec![tokio::spawn(
            this.clone().dispatch_loop(dispatch_wake, shutdown.clone()),
        )];
        if let Some(mirror) = this.mirror.clone() {
            tasks.push(tokio::spawn(this.clone().mirror_loop(
                mirror,
                mirror_wake,
                shutdown.clone(),
            )));
        }
        RelayHandle {
            shutdown,
            tasks,
            mirror: this.mirror.clone(),
        }
    }

    fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.settings.poll_interval_ms)
    }

    async fn dispatch_loop(self: Arc<Self>, wake: Arc<Notify>, shutdown: CancellationToken) {
        loop {
            self.dispatch_due().await;
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = wake.notified() => {}
                _ = tokio::time::sleep(self.poll_interval()) => {}
            }
        }
        self.dispatch_due().await;
    }

    async fn dispatch_due(&self) {
        loop {
            match self.dispatch_batch().await {
                Ok(Progress::More) => continue,
                Ok(Progress::Idle) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "event dispatch failed; retrying on the next wake-up");
                    break;
                }
            }
        }
    }

    async fn dispatch_batch(&self) -> anyhow::Result<Progress> {
        let mut tx = self.pool.begin().await?;
        let batch = repo::lock_undispatched(&mut tx, self.settings.batch_size).await?;
        let full = batch.len() as i64 == self.settings.batch_size;
        let mut done: Vec<Uuid> = Vec::with_capacity(batch.len());
        for (event, attempts) in &batch {
            match self.deliver(event).await {
                Ok(()) => {
                    done.push(event.id);
                    let lag = (chrono::Utc::now() - event.occurred_at)
                        .num_microseconds()
                        .unwrap_or(0);
                    metrics::histogram!("basalt_event_dispatch_lag_seconds")
                        .record(lag as f64 / 1e6);
                }
                Err(e) => {
                    let attempts = attempts + 1;
                    let give_up = attempts >= self.settings.max_attempts;
                    let retry_ms = 1000_i64
                        .saturating_mul(1 << attempts.min(12))
                        .min(3_600_000);
                    if give_up {
                        tracing::error!(event_id = %event.id, event_type = %event.event_type, attempts, error = %format!("{e:#}"), "giving up on an event a subscriber keeps failing: it waits as a dead letter for a replay (POST /api/v1/events/dead-letters/{{id}}/replay)");
                    } else {
                        tracing::warn!(event_id = %event.id, event_type = %event.event_type, attempts, retry_ms, error = %format!("{e:#}"), "subscriber failed; will retry");
                    }
                    metrics::counter!("basalt_event_dispatch_failures_total").increment(1);
                    repo::mark_dispatch_failed(
                        &mut tx,
                        event.id,
                        &format!("{e:#}"),
                        retry_ms,
                        give_up,
                    )
                    .await?;
                }
            }
        }
        repo::mark_dispatched(&mut tx, &done).await?;
        tx.commit().await?;
        metrics::counter!("basalt_events_dispatched_total").increment(done.len() as u64);
        Ok(if full { Progress::More } else { Progress::Idle })
    }

    /// Runs every interested subscriber that has not yet handled `event`. Each runs in its own
    /// transaction with its inbox row, so one failing subscriber does not redo the others.
    async fn deliver(&self, event: &Event) -> anyhow::Result<()> {
        let mut first_error = None;
        for sub in self
            .subscribers
            .iter()
            .filter(|s| s.wants(&event.event_type))
        {
            let outcome = async {
                let mut tx = self.pool.begin().await?;
                if repo::claim_inbox(&mut tx, sub.name(), event.id).await? {
                    sub.handle(event, &mut tx).await?;
                    tx.commit().await?;
                }
                anyhow::Ok(())
            }
            .await;
            if let Err(e) = outcome {
                first_error.get_or_insert(e.context(format!("subscriber {}", sub.name())));
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn mirror_loop(
        self: Arc<Self>,
        mirror: Arc<KafkaMirror>,
        wake: Arc<Notify>,
        shutdown: CancellationToken,
    ) {
        let mut backoff = Duration::from_millis(250);
        loop {
            match self.mirror_due(&mirror).await {
                Ok(()) => backoff = Duration::from_millis(250),
                Err(e) => {
                    // Once per outage and then a summary a minute, not once per retry.
                    mirror.failed(&e);
                    metrics::counter!("basalt_events_relay_failures_total", "destination" => "kafka").increment(1);
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = wake.notified() => {}
                _ = tokio::time::sleep(self.poll_interval()) => {}
            }
        }
        if let Err(e) = self.mirror_due(&mirror).await {
            tracing::warn!(error = %format!("{e:#}"), "final Kafka mirror pass failed; events stay in the outbox");
        }
    }

    async fn mirror_due(&self, mirror: &KafkaMirror) -> anyhow::Result<()> {
        while let Progress::More = self.mirror_batch(mirror).await? {}
        Ok(())
    }

    async fn mirror_batch(&self, mirror: &KafkaMirror) -> anyhow::Result<Progress> {
        let mut tx = self.pool.begin().await?;
        if !repo::try_mirror_turn(&mut tx).await? {
            return Ok(Progress::Idle);
        }
        let events = repo::next_unmirrored(&mut tx, self.settings.batch_size).await?;
        if events.is_empty() {
            return Ok(Progress::Idle);
        }
        let started = Instant::now();
        let (acknowledged, failure) = mirror.send(&events).await;
        let ids: Vec<Uuid> = events[..acknowledged].iter().map(|e| e.id).collect();
        repo::mark_mirrored(&mut tx, &ids).await?;
        tx.commit().await?;
        metrics::counter!("basalt_events_relayed_total", "destination" => "kafka")
            .increment(ids.len() as u64);
        metrics::histogram!("basalt_event_relay_batch_seconds", "destination" => "kafka")
            .record(started.elapsed().as_secs_f64());
        if let Some(e) = failure {
            return Err(e);
        }
        Ok(if events.len() as i64 == self.settings.batch_size {
            Progress::More
        } else {
            Progress::Idle
        })
    }
}
