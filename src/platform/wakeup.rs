//! Wake-ups through PostgreSQL LISTEN/NOTIFY. Work queued in a transaction sends
//! `pg_notify(channel)`, which PostgreSQL delivers only when that transaction commits, so a
//! loop woken by it always finds the work visible; every replica listening is woken.
//!
//! One listener serves every channel: a listener holds a pooled connection for good, and one
//! per loop would eat into the pool the requests share.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

type Channels = HashMap<&'static str, Vec<Arc<Notify>>>;

/// The channels loops want to be woken by, gathered before the listener starts.
pub struct Wakeups {
    pool: PgPool,
    channels: Mutex<Channels>,
}

impl Wakeups {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            channels: Mutex::new(HashMap::new()),
        }
    }

    /// A handle notified on each NOTIFY on `channel`, and whenever one may have been missed
    /// (at start and after the listener reconnects).
    pub fn on(&self, channel: &'static str) -> Arc<Notify> {
        let wake = Arc::new(Notify::new());
        self.channels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(channel)
            .or_default()
            .push(wake.clone());
        wake
    }

    /// Listens on every channel asked for so far, until shutdown; nothing when none was.
    pub fn spawn(self, shutdown: CancellationToken) -> Option<JoinHandle<()>> {
        let channels = self
            .channels
            .into_inner()
            .unwrap_or_else(|e| e.into_inner());
        (!channels.is_empty()).then(|| tokio::spawn(forward(self.pool, channels, shutdown)))
    }
}

/// Forwards NOTIFYs to the loops, reconnecting after errors. While the listener is down the
/// loops still poll, so work is late, never lost.
async fn forward(pool: PgPool, channels: Channels, shutdown: CancellationToken) {
    let names: Vec<&str> = channels.keys().copied().collect();
    let wake_all = || channels.values().flatten().for_each(|w| w.notify_one());
    let wake = |channel: &str| {
        channels
            .get(channel)
            .into_iter()
            .flatten()
            .for_each(|w| w.notify_one())
    };
    while !shutdown.is_cancelled() {
        let listening = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen_all(names.iter().copied()).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = match listening.await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "LISTEN failed; polling only for now");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(5)) => continue,
                }
            }
        };
        // Whatever was committed while nobody listened is picked up by this wake-up.
        wake_all();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                n = listener.try_recv() => match n {
                    Ok(Some(n)) => wake(n.channel()),
                    // The connection dropped and reconnected: a NOTIFY may have been missed.
                    Ok(None) => wake_all(),
                    Err(e) => {
                        tracing::warn!(error = %e, "listener failed; reconnecting");
                        break;
                    }
                }
            }
        }
    }
}

/// Wakes the loops listening on `channel` once the caller's transaction commits (at once
/// outside one).
pub async fn notify<'c>(db: impl sqlx::PgExecutor<'c>, channel: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(channel)
        .execute(db)
        .await?;
    Ok(())
}
