//! What the notifications domain does with other domains' events. Each event is handled in
//! the relay's transaction with its inbox row, so a redelivered event queues nothing twice;
//! the unique (event, template) constraint on messages guards the same thing in the table.

use std::sync::Arc;

use chrono::Utc;
use sqlx::PgConnection;
use uuid::Uuid;

use super::model::SECURITY;
use super::repo::{self, MessageRow};
use super::state::{NotifyState, SEALED, unsubscribe_url};
use crate::events::auth::{
    CredentialsRevoked, EmailVerified, PasswordChanged, PasswordResetRequested, Secret,
    UserDeleted, UserLoggedIn, UserRegistered, VerificationRequested,
};
use crate::events::orders::{OrderCreated, OrderPaid, PaymentFailed};
use crate::platform::events::{DomainEvent, Event, Subscriber, subscriber_fn};

/// The auth domain's events: the security and account mails, and the read model of account
/// addresses (`recipients`) that order mails fall back to. Adding a commerce event is a
/// template and an arm here.
pub fn auth_events(state: Arc<NotifyState>) -> Arc<dyn Subscriber> {
    subscriber_fn(
        "notifications.auth",
        &[
            UserRegistered::TYPE,
            UserLoggedIn::TYPE,
            VerificationRequested::TYPE,
            PasswordResetRequested::TYPE,
            PasswordChanged::TYPE,
            EmailVerified::TYPE,
            UserDeleted::TYPE,
            CredentialsRevoked::TYPE,
        ],
        move |event, conn| {
            let state = state.clone();
            Box::pin(async move { handle(&state, event, conn).await })
        },
    )
}

/// The orders domain's events: the order confirmation when an order is placed, again (as
/// the payment receipt) when it is paid, and the payment-failed mail, to the email the cart
/// gave, or else to the buyer's account address (the `recipients` read model).
pub fn order_events(state: Arc<NotifyState>) -> Arc<dyn Subscriber> {
    subscriber_fn(
        "notifications.orders",
        &[OrderCreated::TYPE, OrderPaid::TYPE, PaymentFailed::TYPE],
        move |event, conn| {
            let state = state.clone();
            Box::pin(async move { handle_order(&state, event, conn).await })
        },
    )
}

async fn handle_order(
    state: &NotifyState,
    event: &Event,
    conn: &mut PgConnection,
) -> anyhow::Result<()> {
    if event.is::<PaymentFailed>() {
        return payment_failed(state, event, conn).await;
    }
    let (order_id, user, number, email, total, currency, paid) = if event.is::<OrderPaid>() {
        let e = event.decode::<OrderPaid>()?;
        (
            e.order_id, e.user_id, e.number, e.email, e.total, e.currency, true,
        )
    } else {
        let e = event.decode::<OrderCreated>()?;
        (
            e.order_id, e.user_id, e.number, e.email, e.total, e.currency, false,
        )
    };
    // A signed-in buyer need not give the cart an email: the account's address then (the
    // order names no email, and tokens carry none). Neither: the buyer reads the order in
    // the app instead.
    let email = match email {
        Some(email) => email,
        None => match repo::recipient(conn, user).await? {
            Some(email) => email,
            None => return Ok(()),
        },
    };
    // Only a page that exists: the storefront's, when one is configured.
    let order_url = &state.settings.order_url;
    let link = (!order_url.is_empty()).then(|| order_url.replace("{id}", &order_id.to_string()));
    let ctx = minijinja::context! {
        first_name => "there",
        order_number => number,
        total => money(total, &currency),
        link,
        paid,
    };
    let to = Recipient {
        user,
        email: &email,
    };
    send_email(state, conn, event, to, "order-confirmation", "orders", ctx).await
}

/// The buyer's payment did not go through: why (the provider's words), and where to try
/// again (the order's page, when the storefront's is configured).
async fn payment_failed(
    state: &NotifyState,
    event: &Event,
    conn: &mut PgConnection,
) -> anyhow::Result<()> {
    let e = event.decode::<PaymentFailed>()?;
    // As for the order's own mails: the cart's email, else the account's address.
    let email = match e.email {
        Some(email) => email,
        None => match repo::recipient(conn, e.user_id).await? {
            Some(email) => email,
            None => return Ok(()),
        },
    };
    let order_url = &state.settings.order_url;
    let link = (!order_url.is_empty()).then(|| order_url.replace("{id}", &e.order_id.to_string()));
    let ctx = minijinja::context! {
        first_name => "there",
        order_number => e.number,
        total => money(e.amount, &e.currency),
        reason => e.reason,
        link,
    };
    let to = Recipient {
        user: e.user_id,
        email: &email,
    };
    send_email(state, conn, event, to, "payment-failed", "orders", ctx).await
}

/// `12.50 USD` from minor units, with ISO 4217's exponent for the currency (2 for a code
/// the table does not know, the common case).
fn money(minor: i64, currency: &str) -> String {
    let exponent = iso_currency::Currency::from_code(currency)
        .and_then(|c| c.exponent())
        .unwrap_or(2);
    if exponent == 0 {
        return format!("{minor} {currency}");
    }
    let unit = 10_u64.pow(u32::from(exponent));
    let sign = if minor < 0 { "-" } else { "" };
    let (whole, frac) = (minor.unsigned_abs() / unit, minor.unsigned_abs() % unit);
    format!(
        "{sign}{whole}.{frac:0width$} {currency}",
        width = usize::from(exponent)
    )
}

/// The mail a single-use link needs: the link and when it stops working. The stored message
/// holds the token sealed (its nonce); the sender derives the token as it sends.
fn link(base: &str, page: &str, secret: &Secret) -> (String, String) {
    (
        format!("{base}/{page}?token={SEALED}{}", secret.nonce),
        secret.expires_at.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

async fn handle(state: &NotifyState, event: &Event, conn: &mut PgConnection) -> anyhow::Result<()> {
    let links = &state.links_base;
    // Where the event stands in time: an address from an older event never overwrites one
    // from a newer, whatever order redelivery brings them in.
    let at = (event.occurred_at, event.id);
    if event.is::<UserRegistered>() {
        let e = event.decode::<UserRegistered>()?;
        repo::learn_recipient(conn, e.user_id, &e.email, at).await?;
    } else if event.is::<UserLoggedIn>() {
        // Accounts older than the read model are learned here: checkout needs a sign-in.
        let e = event.decode::<UserLoggedIn>()?;
        repo::learn_recipient(conn, e.user_id, &e.email, at).await?;
    } else if event.is::<CredentialsRevoked>() {
        // A password reset or a first verification: endpoints made before it may be a
        // squatter's (account pre-hijacking).
        let e = event.decode::<CredentialsRevoked>()?;
        let why = format!("disabled at {}", e.reason.replace('_', " "));
        repo::disable_endpoints_before(conn, e.user_id, e.before, &why).await?;
    } else if event.is::<UserDeleted>() {
        let e = event.decode::<UserDeleted>()?;
        repo::forget_user(conn, e.user_id, at).await?;
    } else if event.is::<VerificationRequested>() {
        let e = event.decode::<VerificationRequested>()?;
        let (link, expires_at) = link(links, "verify-email", &e.secret);
        let ctx = minijinja::context! { first_name => e.first_name, link, expires_at };
        let to = Recipient {
            user: e.user_id,
            email: &e.email,
        };
        send_email(state, conn, event, to, "verify-email", SECURITY, ctx).await?;
    } else if event.is::<PasswordResetRequested>() {
        let e = event.decode::<PasswordResetRequested>()?;
        let (link, expires_at) = link(links, "reset-password", &e.secret);
        let ctx = minijinja::context! { first_name => e.first_name, link, expires_at };
        let to = Recipient {
            user: e.user_id,
            email: &e.email,
        };
        send_email(state, conn, event, to, "reset-password", SECURITY, ctx).await?;
    } else if event.is::<PasswordChanged>() {
        let e = event.decode::<PasswordChanged>()?;
        let reset_link = format!("{links}/forgot-password");
        let ctx = minijinja::context! { first_name => e.first_name, via => e.via, reset_link };
        let to = Recipient {
            user: e.user_id,
            email: &e.email,
        };
        send_email(state, conn, event, to, "password-changed", SECURITY, ctx).await?;
        let note = (
            "Your password was changed",
            "If this was not you, reset it now.",
        );
        in_app(conn, event, e.user_id, SECURITY, note).await?;
    } else if event.is::<EmailVerified>() {
        let e = event.decode::<EmailVerified>()?;
        repo::learn_recipient(conn, e.user_id, &e.email, at).await?;
        let ctx = minijinja::context! { first_name => e.first_name };
        let to = Recipient {
            user: e.user_id,
            email: &e.email,
        };
        send_email(state, conn, event, to, "welcome", "account", ctx).await?;
        let note = ("Welcome!", "Your email address is confirmed.");
        in_app(conn, event, e.user_id, "account", note).await?;
    }
    Ok(())
}

/// Who a message goes to.
struct Recipient<'a> {
    user: Uuid,
    email: &'a str,
}

/// Renders and queues one email, unless the user turned this (non-security) category off.
async fn send_email(
    state: &NotifyState,
    conn: &mut PgConnection,
    event: &Event,
    to: Recipient<'_>,
    template: &str,
    category: &str,
    ctx: minijinja::Value,
) -> anyhow::Result<()> {
    let user = to.user;
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
        to_address: to.email.to_owned(),
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
    (title, body): (&str, &str),
) -> anyhow::Result<()> {
    let (_, wants_in_app) = repo::preference(conn, user, category).await?;
    if wants_in_app {
        repo::add_to_inbox(conn, user, Some(event.id), category, title, body, None).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn money_uses_the_currency_exponent() {
        assert_eq!(super::money(2750, "USD"), "27.50 USD");
        assert_eq!(super::money(5, "EUR"), "0.05 EUR");
        assert_eq!(super::money(1500, "JPY"), "1500 JPY");
        assert_eq!(super::money(1234, "KWD"), "1.234 KWD");
        // ISO 4217's own table, not a hand-written one: four decimals, and negatives.
        assert_eq!(super::money(12345, "CLF"), "1.2345 CLF");
        assert_eq!(super::money(-5, "USD"), "-0.05 USD");
    }
}
