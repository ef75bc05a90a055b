//! Periodic background jobs: each runs on its own interval until shutdown. A failing run is
//! logged and the job carries on at its next tick.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

type JobFn = dyn Fn() -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync;

#[derive(Clone)]
pub struct Job {
    pub name: String,
    pub every: Duration,
    run: Arc<JobFn>,
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
        }
    }

    pub fn spawn(self, shutdown: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(self.every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = ticks.tick() => {}
                }
                if let Err(e) = (self.run)().await {
                    tracing::warn!(job = %self.name, error = %format!("{e:#}"), "background job failed");
                }
            }
        })
    }
}
