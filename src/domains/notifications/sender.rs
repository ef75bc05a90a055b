//! The sender: takes due messages from the queue and delivers them, with exponential backoff
//! between attempts (5 s, 10 s, 20 s ... capped at an hour) and `failed` after
//! `notifications.max_attempts`. It runs as a background job, woken as soon as a message is
//! queued and every `notifications.poll_interval_ms` for retries; replicas share the queue
//! (rows are claimed with SKIP LOCKED).

use std::sync::Arc;

use super::repo;
use super::state::NotifyState;

/// Sends everything due now; returns how many were attempted.
pub async fn send_due(state: &Arc<NotifyState>) -> anyhow::Result<usize> {
    let mut total = 0;
    loop {
        let batch = repo::claim_due(&state.db, 20).await?;
        if batch.is_empty() {
            return Ok(total);
        }
        total += batch.len();
        // The batch goes out concurrently (lettre pools SMTP connections); one slow message
        // does not hold up the others.
        let sends = batch.into_iter().map(|message| deliver(state, message));
        for outcome in futures_util::future::join_all(sends).await {
            outcome?;
        }
    }
}

async fn deliver(state: &NotifyState, message: repo::MessageRow) -> anyhow::Result<()> {
    match state.mailer.send(&state.unsealed(&message)).await {
        Ok(()) => {
            repo::mark_sent(&state.db, message.id).await?;
            metrics::counter!("basalt_emails_sent_total").increment(1);
        }
        Err(e) => {
            let attempts = message.attempts + 1;
            let give_up = attempts >= state.settings.max_attempts;
            let base = state.settings.retry_base_ms as f64 / 1000.0;
            let retry = (base * 2f64.powi(attempts - 1)).min(3600.0);
            tracing::warn!(message = %message.id, to = %message.to_address, attempts, give_up, error = %format!("{e:#}"), "email delivery failed");
            metrics::counter!("basalt_email_failures_total").increment(1);
            repo::mark_attempt_failed(&state.db, message.id, &format!("{e:#}"), retry, give_up)
                .await?;
        }
    }
    Ok(())
}
