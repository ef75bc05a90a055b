//! What auth does with its own events: without the notifications domain nobody mails the
//! verification and reset links, so they are logged for a developer to follow (PocketBase
//! and Supabase do the same in development).

use std::sync::Arc;

use super::events::{PasswordResetRequested, VerificationRequested};
use crate::config::IdentitySettings;
use crate::platform::events::{DomainEvent, Subscriber, subscriber_fn};

/// `auth.log_links`: logs the link each verification or reset request would have mailed.
pub fn log_links(public_base_url: &str, identity: IdentitySettings) -> Arc<dyn Subscriber> {
    let base = public_base_url.trim_end_matches('/').to_owned();
    subscriber_fn(
        "auth.log_links",
        &[VerificationRequested::TYPE, PasswordResetRequested::TYPE],
        move |event, _conn| {
            let link = if event.is::<VerificationRequested>() {
                event.decode::<VerificationRequested>().map(|e| {
                    (
                        e.email,
                        format!("{base}/verify-email?token={}", e.secret.token(&identity)),
                    )
                })
            } else {
                event.decode::<PasswordResetRequested>().map(|e| {
                    (
                        e.email,
                        format!("{base}/reset-password?token={}", e.secret.token(&identity)),
                    )
                })
            };
            Box::pin(async move {
                let (email, link) = link?;
                tracing::info!(%email, %link, "no notifications domain: this link would have been emailed");
                Ok(())
            })
        },
    )
}
