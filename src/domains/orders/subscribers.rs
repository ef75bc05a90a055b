//! What the orders domain consumes: its own `payment_provider.event_received`, which a
//! provider's webhook records (`webhooks::receive`) so the webhook can answer at once.

use std::sync::Arc;

use super::providers::Outcome;
use super::repo;
use super::settlement::{self, Applied};
use super::state::OrdersState;
use crate::events::orders::ProviderEventReceived;
use crate::platform::events::{DomainEvent, Event, SYSTEM_ACTOR, Subscriber, subscriber_fn};

/// The orders domain's subscriber to its own `payment_provider.event_received`: applies a recorded
/// provider event to its payment (found by the provider's reference, never by the order id
/// in the event's metadata, which a client could have set), and records the outcome.
pub fn provider_events(_state: Arc<OrdersState>) -> Arc<dyn Subscriber> {
    subscriber_fn(
        "orders.provider_events",
        &[ProviderEventReceived::TYPE],
        |event, conn| Box::pin(async move { apply_event(event, conn).await }),
    )
}

async fn apply_event(event: &Event, conn: &mut sqlx::PgConnection) -> anyhow::Result<()> {
    let e: ProviderEventReceived = serde_json::from_value(event.payload.clone())?;
    let outcome: Outcome = serde_json::from_value(e.outcome.clone())?;
    let found = match &e.reference {
        Some(reference) => repo::payment_by_reference(&mut *conn, &e.provider, reference).await?,
        None => None,
    };
    let result = match found {
        None if outcome == Outcome::Ignored => "ignored",
        None => "orphan",
        Some((payment, order)) => match settlement::apply(
            conn,
            payment,
            order,
            &outcome,
            Some(&e.event_id),
            SYSTEM_ACTOR,
        )
        .await?
        {
            // Failing leaves the event `pending` and its delivery to the relay's retries
            // (with backoff, then a dead letter staff can replay): a refund reported before
            // its capture is applied once the capture is.
            Applied::Deferred => anyhow::bail!(
                "{} event {}: its payment has not captured what it refunds yet; retried",
                e.provider,
                e.event_id
            ),
            applied => applied.as_str(),
        },
    };
    repo::settle_provider_event(conn, &e.provider, &e.event_id, result).await?;
    Ok(())
}
