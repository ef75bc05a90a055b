//! In-process subscribers. A subscriber handles an event on the connection of a transaction
//! that also records (consumer, event id) in `platform.inbox`, so its effects and the record
//! that it ran commit or roll back together: a redelivered event is skipped.

use std::sync::Arc;

use async_trait::async_trait;
use futures_util::future::BoxFuture;
use sqlx::PgConnection;

use super::Event;

#[async_trait]
pub trait Subscriber: Send + Sync + 'static {
    /// Unique and stable: it keys the inbox. Renaming it redelivers every retained event.
    fn name(&self) -> &str;
    /// Event types handled: exact (`user.registered`), a prefix (`user.*`) or `*`.
    fn event_types(&self) -> &[&str];
    /// Handles one event. An error rolls back the handler's writes and retries later.
    async fn handle(&self, event: &Event, conn: &mut PgConnection) -> anyhow::Result<()>;

    fn wants(&self, event_type: &str) -> bool {
        self.event_types().iter().any(|pattern| {
            *pattern == "*"
                || *pattern == event_type
                || pattern.strip_suffix(".*").is_some_and(|prefix| {
                    event_type
                        .strip_prefix(prefix)
                        .is_some_and(|rest| rest.starts_with('.'))
                })
        })
    }
}

type HandlerFn = dyn for<'c> Fn(&'c Event, &'c mut PgConnection) -> BoxFuture<'c, anyhow::Result<()>>
    + Send
    + Sync;

struct FnSubscriber {
    name: String,
    types: Vec<&'static str>,
    handler: Box<HandlerFn>,
}

#[async_trait]
impl Subscriber for FnSubscriber {
    fn name(&self) -> &str {
        &self.name
    }
    fn event_types(&self) -> &[&str] {
        &self.types
    }
    async fn handle(&self, event: &Event, conn: &mut PgConnection) -> anyhow::Result<()> {
        (self.handler)(event, conn).await
    }
}

/// A subscriber from a closure, for handlers that need no state of their own:
/// `subscriber_fn("notifications.welcome", &["user.registered"], |e, conn| Box::pin(async move { .. }))`.
pub fn subscriber_fn<F>(
    name: impl Into<String>,
    types: &[&'static str],
    handler: F,
) -> Arc<dyn Subscriber>
where
    F: for<'c> Fn(&'c Event, &'c mut PgConnection) -> BoxFuture<'c, anyhow::Result<()>>
        + Send
        + Sync
        + 'static,
{
    Arc::new(FnSubscriber {
        name: name.into(),
        types: types.to_vec(),
        handler: Box::new(handler),
    })
}
