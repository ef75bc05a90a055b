//! What the notifications domain does with other domains' events. Each event is handled in
//! the relay's transaction with its inbox row, so a redelivered event queues nothing twice;
//! the unique (event, template) constraint on messages guards the same thing in the table.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::model::SECURITY;
use super::repo::{self, MessageRow};
use super::{NotifyState, unsubscribe_url};
use crate::platform::events::{Event, Subscriber, subscriber_fn};

/// The auth domain's events. Adding a commerce event is a template and an arm here.
pub fn auth_events(state: Arc<NotifyState>) -> Arc<dyn Subscriber> {
    subscriber_fn(
        "notifications.auth",
        &[
            "user.verification_requested",
            "user.password_reset_requested",
            "user.password_changed",
            "user.email_verified",
            "user.deleted",
        ],
        move |event, conn| {
            let state = state.clone();
            Box::pin(async move { handle(&state, event, conn).await })
        },
    )
}

fn text(event: &Event, field: &str) -> anyhow::Result<String> {
    event.payload[field]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("{} has no {field}", event.event_type))
}

async fn handle(state: &NotifyState, event: &Event, conn: &mut PgConnection) -> anyhow::Result<()> {
    let user: Uuid = text(event, "user_id")?.parse()?;
    if event.event_type == "user.deleted" {
        repo::forget_user(conn, user).await?;
        return Ok(());
    }
    let first_name = text(event, "first_name")?;
    let links = &state.links_base;
    let secret = || -> anyhow::Result<(String, String)> {
        let token = event.payload["secret"]["token"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("{} carries no token", event.event_type))?;
        let expires: DateTime<Utc> =
            serde_json::from_value(event.payload["secret"]["expires_at"].clone())?;
        Ok((
            token.to_owned(),
            expires.format("%Y-%m-%d %H:%M UTC").to_string(),
        ))
    };
    match event.event_type.as_str() {
        "user.verification_requested" => {
            let (token, expires_at) = secret()?;
            let link = format!("{links}/verify-email?token={token}");
            let ctx = minijinja::context! { first_name, link, expires_at };
            email(state, conn, event, user, "verify-email", SECURITY, ctx).await
        }
        "user.password_reset_requested" => {
            let (token, expires_at) = secret()?;
            let link = format!("{links}/reset-password?token={token}");
            let ctx = minijinja::context! { first_name, link, expires_at };
            email(state, conn, event, user, "reset-password", SECURITY, ctx).await
        }
        "user.password_changed" => {
            let via = text(event, "via")?;
            let reset_link = format!("{links}/forgot-password");
            let ctx = minijinja::context! { first_name, via, reset_link };
            email(state, conn, event, user, "password-changed", SECURITY, ctx).await?;
            in_app(
                conn,
                event,
                user,
                SECURITY,
                "Your password was changed",
                "If this was not you, reset it now.",
            )
            .await
        }
        "user.email_verified" => {
            let ctx = minijinja::context! { first_name };
            email(state, conn, event, user, "welcome", "account", ctx).await?;
            in_app(
                conn,
                event,
                user,
                "account",
                "Welcome!",
                "Your email address is confirmed.",
            )
            .await
        }
        _ => Ok(()),
    }
}

/// Renders and queues one email, unless the user turned this (non-security) category off.
#[allow(clippy::too_many_arguments)]
async fn email(
    state: &NotifyState,
    conn: &mut PgConnection,
    event: &Event,
    user: Uuid,
    template: &str,
    category: &str,
    ctx: minijinja::Value,
) -> anyhow::Result<()> {
    let (wants_email, _) = repo::preference(conn, user, category).await?;
    if category != SECURITY && !wants_email {
        return Ok(());
    }
    let unsubscribe = (category != SECURITY).then(|| unsubscribe_url(state, user, category));
    let ctx = minijinja::context! { app_name => state.settings.app_name.clone(), unsubscribe_url => unsubscribe.clone(), ..ctx };
    let rendered = state.templates.render(template, ctx)?;
    let message = MessageRow {
        id: Uuid::now_v7(),
        event_id: Some(event.id),
        user_id: Some(user),
        category: category.to_owned(),
        template: template.to_owned(),
        to_address: text(event, "email")?,
        subject: rendered.subject,
        text_body: rendered.text,
        html_body: rendered.html,
        unsubscribe_url: unsubscribe,
        status: "queued".into(),
        attempts: 0,
        last_error: None,
        sent_at: None,
        created_at: Utc::now(),
    };
    repo::queue_message(conn, &message).await?;
    Ok(())
}

async fn in_app(
    conn: &mut PgConnection,
    event: &Event,
    user: Uuid,
    category: &str,
    title: &str,
    body: &str,
) -> anyhow::Result<()> {
    let (_, wants_in_app) = repo::preference(conn, user, category).await?;
    if wants_in_app {
        repo::add_to_inbox(conn, user, Some(event.id), category, title, body, None).await?;
    }
    Ok(())
}
