//! Wake-ups through PostgreSQL LISTEN/NOTIFY. Work queued in a transaction sends
//! `pg_notify(channel)`, which PostgreSQL delivers only when that transaction commits, so a
//! loop woken by it always finds the work visible; every replica listening is woken.
//!
//! One listener serves every channel: a listener holds a pooled connection for good, and one
//! per loop would eat into the pool the requests share.
//!
//! A channel's payloads reach the functions given to [`Wakeups::on_message`], called in the
//! listener's task (so they must be quick: an in-memory cache eviction, no I/O), and with
//! `None` whenever a NOTIFY may have been missed (at start and after a reconnection).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Called with each NOTIFY's payload on a channel, or `None` when some may have been missed.
pub type OnMessage = Arc<dyn Fn(Option<&str>) + Send + Sync>;

/// Who hears a channel: loops to wake, functions to give its payloads to.
#[derive(Default)]
struct Listeners {
    wakes: Vec<Arc<Notify>>,
    handlers: Vec<OnMessage>,
}

impl Listeners {
    fn deliver(&self, payload: Option<&str>) {
        self.wakes.iter().for_each(|w| w.notify_one());
        self.handlers.iter().for_each(|f| f(payload));
    }
}

type Channels = HashMap<&'static str, Listeners>;

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
            .wakes
            .push(wake.clone());
        wake
    }

    /// Gives `f` the payload of each NOTIFY on `channel`, and `None` whenever some may have
    /// been missed (at start and after the listener reconnects).
    pub fn on_message(&self, channel: &'static str, f: OnMessage) {
        self.channels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(channel)
            .or_default()
            .handlers
            .push(f);
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
    let wake_all = || channels.values().for_each(|l| l.deliver(None));
    let wake = |channel: &str, payload: &str| {
        if let Some(l) = channels.get(channel) {
            l.deliver(Some(payload));
        }
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
                    Ok(Some(n)) => wake(n.channel(), n.payload()),
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
