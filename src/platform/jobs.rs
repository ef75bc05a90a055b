//! Periodic background jobs: each runs on its own interval until shutdown, and sooner when a
//! NOTIFY on its channel says work was queued. A failing run is logged and the job carries on
//! at its next tick.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::wakeup::{OnMessage, Wakeups};

type JobFn = dyn Fn() -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync;

#[derive(Clone)]
pub struct Job {
    pub name: String,
    pub every: Duration,
    run: Arc<JobFn>,
    woken_by: Option<&'static str>,
    messages: Option<(&'static str, OnMessage)>,
}

impl Job {
    pub fn new<F>(name: impl Into<String>, every: Duration, run: F) -> Self
    where
        F: Fn() -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync + 'static,
    {
        Self {
            name: name.into(),
            every,
            run: Arc::new(run),
            woken_by: None,
            messages: None,
        }
    }

    /// Also runs as soon as `pg_notify(channel)` commits, so queued work does not wait for the
    /// next tick; the interval stays as the fallback and for retries that fall due.
    pub fn woken_by(mut self, channel: &'static str) -> Self {
        self.woken_by = Some(channel);
        self
    }

    /// Gives `f` each payload NOTIFYed on `channel` (`None` when some may have been missed),
    /// in the listener's task: for work finer than a whole run, such as evicting the one
    /// cache entry a payload names.
    pub fn on_message(mut self, channel: &'static str, f: OnMessage) -> Self {
        self.messages = Some((channel, f));
        self
    }

    pub fn spawn(self, shutdown: CancellationToken, wakeups: &Wakeups) -> JoinHandle<()> {
        if let Some((channel, f)) = &self.messages {
            wakeups.on_message(channel, f.clone());
        }
        let wake = match self.woken_by {
            Some(channel) => wakeups.on(channel),
            None => Arc::new(Notify::new()),
        };
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(self.every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = ticks.tick() => {}
                    _ = wake.notified() => ticks.reset(),
                }
                if let Err(e) = (self.run)().await {
                    tracing::warn!(job = %self.name, error = %format!("{e:#}"), "background job failed");
                }
            }
        })
    }
}
