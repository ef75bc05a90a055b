//! The payment side of the orders domain, shared by the payment routes, the webhooks'
//! subscriber, `mark-paid` and the reconciliation job, each on the caller's transaction:
//! [`start`] (open or resume the order's payment), [`apply`] (what a provider says happened
//! to a payment: its legal transition, its ledger rows, its events, and `service::settle`
//! once nothing is outstanding) and [`refund`].
//!
//! Locks are always taken order first (`repo::lock_payable`), then the payment: a start, a
//! webhook's outcome and a refund of one order take turns, and cannot deadlock.

use uuid::Uuid;

use super::error::OrdersError;
use super::model::{Action, OrderId, OrderStatus, PaymentId, PaymentStatus, Transition};
use super::providers::{
    Outcome, PaymentProvider, ProviderError, RefundRequest, RemotePayment, RemoteStatus,
    StartPayment,
};
use super::repo::{self, Change, NewLedger, NewPayment, PayableOrder, PaymentChange, PaymentRow};
use super::service;
use crate::events::orders::{PaymentFailed, PaymentRefunded, PaymentSucceeded};
use crate::platform::events::envelopes;

impl From<RemoteStatus> for PaymentStatus {
    fn from(s: RemoteStatus) -> Self {
        match s {
            RemoteStatus::RequiresPaymentMethod => Self::RequiresPaymentMethod,
            RemoteStatus::RequiresAction => Self::RequiresAction,
            RemoteStatus::Processing => Self::Processing,
            RemoteStatus::Authorized => Self::Authorized,
            RemoteStatus::Succeeded => Self::Succeeded,
            RemoteStatus::Failed => Self::Failed,
            RemoteStatus::Canceled => Self::Canceled,
        }
    }
}

/// Opens the order's payment with `provider`, or returns the open one (`false`: resumed):
/// never a second intent, however many starts race (they wait on the order's lock and the
/// later ones find the first's). A 409 naming the status unless the order awaits payment;
/// another provider's payment still waiting for the buyer (`requires_payment_method` or
/// `requires_action`: a declined card stays there) is cancelled at its provider first, so a
/// buyer can switch after a decline and staff can take a bank transfer; a 409
/// `payment_in_progress` while that one cannot be cancelled, or is processing or authorised
/// (money may be on its way).
pub async fn start(
    conn: &mut sqlx::PgConnection,
    providers: &super::providers::Providers,
    provider: &dyn PaymentProvider,
    order: OrderId,
    viewer: Option<Uuid>,
    actor: &str,
) -> Result<(PaymentRow, bool), OrdersError> {
    let o = repo::lock_payable(conn, order, viewer, viewer.is_none())
        .await?
        .ok_or(OrdersError::OrderNotFound)?;
    OrderStatus::parse(&o.status)?.apply(Action::Pay)?;
    if let Some(open) = repo::open_payment(conn, order).await? {
        if open.provider == provider.name() {
            return Ok((open, false));
        }
        let waiting = matches!(
            PaymentStatus::parse(&open.status)?,
            PaymentStatus::RequiresPaymentMethod | PaymentStatus::RequiresAction
        );
        let other = providers.get(&open.provider);
        match other {
            Some(other) if waiting => match other.cancel(&open.reference).await {
                Ok(()) => {
                    apply(conn, open.id, order, &Outcome::Canceled, None, actor).await?;
                }
                Err(_) => return Err(OrdersError::PaymentInProgress(open.provider)),
            },
            _ => return Err(OrdersError::PaymentInProgress(open.provider)),
        }
    }
    let outstanding = o.total - o.captured;
    if outstanding <= 0 {
        return Err(OrdersError::NothingOutstanding);
    }
    let seq = repo::next_seq(conn, order).await?;
    // Deterministic: a start retried after a timeout (or a crash between the provider's
    // answer and our commit) gets the provider's first intent back, not a second.
    let key = format!("order:{order}:payment:{seq}");
    let started = provider
        .start(&StartPayment {
            order_id: order.0,
            order_number: &o.number,
            amount: outstanding,
            currency: &o.currency,
            email: o.email.as_deref(),
            idempotency_key: &key,
        })
        .await?;
    let status = match PaymentStatus::from(started.status) {
        // Settled already at the provider: open it as waiting on the provider, and let its
        // webhook (or the reconciliation job) record the money through `apply`.
        s if s.is_open() => s,
        _ => PaymentStatus::Processing,
    };
    let id = PaymentId(Uuid::now_v7());
    repo::insert_payment(
        conn,
        &NewPayment {
            id,
            order_id: order,
            seq,
            provider: provider.name(),
            reference: &started.reference,
            status,
            amount: outstanding,
            currency: &o.currency,
            client: &started.client,
        },
    )
    .await?;
    let row = repo::lock_payment(conn, id)
        .await?
        .ok_or(OrdersError::OrderNotFound)?;
    Ok((row, true))
}

/// Before an order's cancel (by its buyer, staff, or the unpaid-order job): closes its
/// open payment at the provider, so an intent the buyer still holds can no longer take
/// money for a cancelled order. Refused with a 409 `payment_in_progress` while the payment
/// is `processing` or `authorized` (money may be on its way), and first whatever the cancel
/// itself would refuse (nothing is asked of the provider then). The payment becomes
/// `canceled` only when the provider says so; a provider that cannot cancel (`Unsupported`:
/// Razorpay) leaves it open, and a late capture lands the order in `requires_attention`.
/// The job's cancel waits as well when the provider refuses or is unreachable: the order is
/// tried again on the next run.
pub async fn cancel_open(
    conn: &mut sqlx::PgConnection,
    providers: &super::providers::Providers,
    order: OrderId,
    viewer: Option<Uuid>,
    who: service::Canceller,
    actor: &str,
) -> Result<(), OrdersError> {
    let o = repo::lock_payable(conn, order, viewer, viewer.is_none())
        .await?
        .ok_or(OrdersError::OrderNotFound)?;
    let status = OrderStatus::parse(&o.status)?;
    let job = who == service::Canceller::PaymentTimeout;
    if job && status != OrderStatus::PendingPayment {
        // Paid (or cancelled) meanwhile: `service::cancel` leaves it too.
        return Ok(());
    }
    status.apply(who.action())?;
    let Some(p) = repo::open_payment(conn, order).await? else {
        return Ok(());
    };
    if matches!(
        PaymentStatus::parse(&p.status)?,
        PaymentStatus::Processing | PaymentStatus::Authorized
    ) {
        return Err(OrdersError::PaymentInProgress(p.provider));
    }
    // A provider no longer configured cannot be asked: its payment stays open.
    let Some(provider) = providers.get(&p.provider) else {
        return Ok(());
    };
    match provider.cancel(&p.reference).await {
        Ok(()) => {
            apply(conn, p.id, order, &Outcome::Canceled, None, actor).await?;
        }
        Err(ProviderError::Unsupported(_)) => {}
        // The job too leaves the order when the provider refuses or cannot be reached: a
        // refusal may mean the payment is on its way (Stripe will not cancel an intent that
        // is processing, and its webhook may not be here yet), so the order waits for the
        // next run rather than being cancelled under money in flight.
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// What [`apply`] did.
// `Applied::Applied` is the name the provider events' `outcome` column uses.
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The payment moved (and maybe the order).
    Applied,
    /// Nothing to do: a duplicate, an illegal move (a `succeeded` after `refunded`), a kind
    /// of event we do not act on.
    Ignored,
    /// Not yet: a refund reported before the capture it refunds (providers do not promise
    /// to deliver events in order). Nothing was written; the caller must not record the
    /// event as done, so it is applied again later (the subscriber fails it and the relay
    /// retries it with backoff, and a dead letter shows it to staff if it never fits).
    Deferred,
}

impl Applied {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Ignored => "ignored",
            Self::Deferred => "pending",
        }
    }
}

/// Applies what the provider says happened to a payment: the move if it is legal (an
/// illegal one changes nothing), the ledger rows of the money that moved, the `payment.*`
/// event, and `service::settle` when the order's captured amount covers its total. The
/// same outcome twice appends and publishes nothing the second time.
pub async fn apply(
    conn: &mut sqlx::PgConnection,
    payment: PaymentId,
    order: OrderId,
    outcome: &Outcome,
    provider_event_id: Option<&str>,
    actor: &str,
) -> Result<Applied, OrdersError> {
    let o = repo::lock_payable(conn, order, None, true)
        .await?
        .ok_or(OrdersError::OrderNotFound)?;
    let p = repo::lock_payment(conn, payment)
        .await?
        .ok_or(OrdersError::OrderNotFound)?;
    if let Some(done) =
        settle_pending_refund(conn, &o, &p, outcome, provider_event_id, actor).await?
    {
        return Ok(done);
    }
    let status = PaymentStatus::parse(&p.status)?;
    let mut change = PaymentChange {
        status,
        captured: p.captured,
        refunded: p.refunded,
        capture_reference: None,
        failure: None,
        ledger: Vec::new(),
        provider_event_id,
        events: Vec::new(),
    };
    let mut captured_now = 0;
    let mut refund: Option<(&str, i64)> = None;
    let simple = |to: PaymentStatus| status.can_move_to(to).then_some(to);
    match outcome {
        Outcome::Ignored => return Ok(Applied::Ignored),
        // A failure of a refund that is not pending here: nothing was reserved for it. If
        // the ledger has it as done (a provider may fail a refund after reporting it
        // succeeded: the money came back to us), staff must know: a note in the order's
        // history. One never ours is ignored.
        Outcome::RefundFailed {
            refund_reference,
            reason,
        } => {
            let done = p
                .ledger
                .iter()
                .find(|l| l.kind == "refunded" && l.provider_reference == *refund_reference);
            let Some(done) = done else {
                return Ok(Applied::Ignored);
            };
            let note = format!(
                "the refund {refund_reference} of {} {} through {} failed after it succeeded \
                 ({reason}): the money came back; refund the buyer again another way",
                done.amount, p.currency, p.provider
            );
            repo::note(conn, o.id, OrderStatus::parse(&o.status)?, actor, &note).await?;
            return Ok(Applied::Applied);
        }
        Outcome::Processing => change.status = simple(PaymentStatus::Processing).unwrap_or(status),
        Outcome::RequiresAction => {
            change.status = simple(PaymentStatus::RequiresAction).unwrap_or(status)
        }
        Outcome::Canceled => change.status = simple(PaymentStatus::Canceled).unwrap_or(status),
        Outcome::Authorized { amount } => {
            if status.can_move_to(PaymentStatus::Authorized) {
                change.status = PaymentStatus::Authorized;
                change.ledger.push(NewLedger {
                    kind: "authorized",
                    amount: *amount,
                    provider_reference: &p.reference,
                });
            }
        }
        Outcome::Succeeded {
            amount,
            fee,
            capture_reference,
        } => {
            if status.can_move_to(PaymentStatus::Succeeded) {
                let reference = capture_reference.as_deref().unwrap_or(&p.reference);
                change.status = PaymentStatus::Succeeded;
                change.captured = p.captured + amount;
                change.capture_reference = capture_reference.as_deref();
                change.ledger.push(NewLedger {
                    kind: "captured",
                    amount: *amount,
                    provider_reference: reference,
                });
                if let Some(fee) = fee {
                    change.ledger.push(NewLedger {
                        kind: "fee",
                        amount: *fee,
                        provider_reference: reference,
                    });
                }
                captured_now = *amount;
                change.events = envelopes(&[PaymentSucceeded {
                    payment_id: p.id.0,
                    order_id: o.id.0,
                    user_id: o.user_id,
                    number: o.number.clone(),
                    provider: p.provider.clone(),
                    reference: p.reference.clone(),
                    amount: *amount,
                    currency: p.currency.clone(),
                }])?;
            }
        }
        Outcome::Failed { reason } => {
            // A failed attempt is not the end of the payment: the intent stays confirmable
            // at the provider (Stripe puts it back to `requires_payment_method`, Razorpay
            // orders take another payment), so closing it would let a retry open a second
            // intent beside a live one. It stays open, with the reason, and a new start
            // resumes it. The provider event's dedupe makes this once per event.
            if status.is_open() {
                change.status = PaymentStatus::RequiresPaymentMethod;
                change.failure = Some(reason.as_str());
                change.events = envelopes(&[PaymentFailed {
                    payment_id: p.id.0,
                    order_id: o.id.0,
                    user_id: o.user_id,
                    number: o.number.clone(),
                    email: o.email.clone(),
                    provider: p.provider.clone(),
                    reference: p.reference.clone(),
                    amount: p.amount,
                    currency: p.currency.clone(),
                    reason: reason.clone(),
                }])?;
            }
        }
        Outcome::Refunded {
            refund_reference,
            amount,
        } => {
            // A refund made at the provider (its dashboard), or the echo of ours: ours
            // appended its ledger row already, so the echo is a duplicate of it.
            let fits = p.refunded + amount <= p.captured;
            let seen = p
                .ledger
                .iter()
                .any(|l| l.kind == "refunded" && l.provider_reference == *refund_reference);
            if !seen && *amount > 0 {
                if !fits {
                    // Its capture has not been applied yet (events arrive shuffled):
                    // ignoring it would lose the refund for good, as its event is
                    // deduplicated forever once settled.
                    return Ok(Applied::Deferred);
                }
                refund = Some((refund_reference.as_str(), *amount));
            }
        }
    }
    if let Some((reference, amount)) = refund {
        return record_refund(conn, &o, &p, reference, amount, provider_event_id, actor)
            .await
            .map(|_| Applied::Applied);
    }
    if change.status == status && change.ledger.is_empty() && change.failure.is_none() {
        return Ok(Applied::Ignored);
    }
    let appended = repo::change_payment(conn, &p, &change).await?;
    if captured_now > 0 && appended > 0 {
        let pending = OrderStatus::parse(&o.status)? == OrderStatus::PendingPayment;
        if pending && o.captured + captured_now >= o.total {
            let note = format!("paid through {} ({})", p.provider, p.reference);
            service::settle(conn, order, actor, Some(&note)).await?;
        } else if !pending {
            captured_late(conn, &o, &p, captured_now, actor).await?;
        }
    }
    Ok(Applied::Applied)
}

/// Money captured for an order no longer awaiting it: recorded (the ledger has it), and
/// put before staff, never only a log line. A cancelled order moves to
/// `requires_attention` (a buyer paid an intent they still held, or a provider whose
/// payments cannot be cancelled captured after the cancel); any other (paid twice) keeps
/// its status with a note in its history.
async fn captured_late(
    conn: &mut sqlx::PgConnection,
    o: &PayableOrder,
    p: &PaymentRow,
    amount: i64,
    actor: &str,
) -> Result<(), OrdersError> {
    let status = OrderStatus::parse(&o.status)?;
    tracing::warn!(order = %o.id, payment = %p.id, status = %o.status,
        "a payment captured money for an order not awaiting payment");
    let what = format!(
        "{amount} {} captured through {} ({})",
        p.currency, p.provider, p.reference
    );
    match status.apply(Action::CapturedAfterCancel) {
        Ok(order_move) => {
            let note = format!("{what} after cancel: refund it");
            move_locked(conn, o.id, actor, order_move, &note, "late capture").await?;
        }
        Err(_) => {
            let note = format!(
                "{what} while the order was {}: paid twice, refund the excess",
                status.as_str()
            );
            repo::note(conn, o.id, status, actor, &note).await?;
        }
    }
    Ok(())
}

/// The end of a refund the provider accepted as pending (`orders.refunds`), under the
/// order's and the payment's locks: its success is written as any refund (ledger row,
/// `payment.refunded`, the order's move) from the amount already reserved; its failure
/// gives the reserved amount back to the payment and tells staff in the order's history.
/// `None`: the outcome is not about a pending refund of ours (the caller goes on).
async fn settle_pending_refund(
    conn: &mut sqlx::PgConnection,
    o: &PayableOrder,
    p: &PaymentRow,
    outcome: &Outcome,
    provider_event_id: Option<&str>,
    actor: &str,
) -> Result<Option<Applied>, OrdersError> {
    let (reference, failure) = match outcome {
        Outcome::Refunded {
            refund_reference, ..
        } => (refund_reference, None),
        Outcome::RefundFailed {
            refund_reference,
            reason,
        } => (refund_reference, Some(reason.as_str())),
        _ => return Ok(None),
    };
    let Some(pending) = repo::end_pending_refund(conn, p, reference, failure).await? else {
        return Ok(None);
    };
    match failure {
        None => {
            // Reserved when it was asked for: `refunded` already counts it.
            write_refund(
                conn,
                o,
                p,
                reference,
                pending.amount,
                p.refunded,
                provider_event_id,
                actor,
            )
            .await?;
        }
        Some(reason) => {
            let note = format!(
                "the refund {reference} of {} {} through {} failed ({reason}): nothing went \
                 back, and the amount can be refunded again",
                pending.amount, p.currency, p.provider
            );
            repo::note(conn, o.id, OrderStatus::parse(&o.status)?, actor, &note).await?;
        }
    }
    Ok(Some(Applied::Applied))
}

/// Appends a refund that went through (ledger row, the payment's totals and status, the
/// order's move to `refunded`/`partially_refunded` and `payment.refunded`). The caller
/// already took the amount off the payment's refundable amount when it is the refunds
/// route (`reserved`), or checked it fits under the lock when it is a webhook.
async fn record_refund(
    conn: &mut sqlx::PgConnection,
    o: &PayableOrder,
    p: &PaymentRow,
    reference: &str,
    amount: i64,
    provider_event_id: Option<&str>,
    actor: &str,
) -> Result<(i64, OrderStatus), OrdersError> {
    write_refund(
        conn,
        o,
        p,
        reference,
        amount,
        p.refunded + amount,
        provider_event_id,
        actor,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn write_refund(
    conn: &mut sqlx::PgConnection,
    o: &PayableOrder,
    p: &PaymentRow,
    reference: &str,
    amount: i64,
    refunded: i64,
    provider_event_id: Option<&str>,
    actor: &str,
) -> Result<(i64, OrderStatus), OrdersError> {
    // `refunded` (like every payment's column) also holds the refunds still pending at the
    // provider: reserved, not given back. What is confirmed decides the statuses and what
    // `payment.refunded` tells the buyer; this refund is no longer pending when it lands here.
    let (pending_here, pending_order) = repo::pending_refunds(conn, p.id, o.id).await?;
    let confirmed = refunded - pending_here;
    let to = if confirmed >= p.captured {
        PaymentStatus::Refunded
    } else {
        PaymentStatus::PartiallyRefunded
    };
    let status = PaymentStatus::parse(&p.status)?;
    let order_status = OrderStatus::parse(&o.status)?;
    // The order follows: refunded once everything its payments captured is.
    let order_refunded = o.refunded - p.refunded + refunded - pending_order;
    let action = if order_refunded >= o.captured {
        Action::Refund
    } else {
        Action::PartiallyRefund
    };
    // A partial refund of an order still being fulfilled is no move (fulfilment goes on):
    // a note in its history says it (below).
    let order_move = order_status.apply(action).ok();
    let after = order_move.map(|t| t.to()).unwrap_or(order_status);
    let event = PaymentRefunded {
        payment_id: p.id.0,
        order_id: o.id.0,
        user_id: o.user_id,
        number: o.number.clone(),
        provider: p.provider.clone(),
        refund_reference: reference.to_owned(),
        amount,
        refunded: confirmed,
        currency: p.currency.clone(),
        order_status: after.as_str().to_owned(),
    };
    let change = PaymentChange {
        status: if status.can_move_to(to) { to } else { status },
        captured: p.captured,
        refunded,
        capture_reference: None,
        failure: None,
        ledger: vec![NewLedger {
            kind: "refunded",
            amount,
            provider_reference: reference,
        }],
        provider_event_id,
        events: envelopes(&[event])?,
    };
    repo::change_payment(conn, p, &change).await?;
    if order_move.is_none() {
        let note = format!(
            "{amount} {} refunded through {} ({reference})",
            p.currency, p.provider
        );
        repo::note(conn, o.id, order_status, actor, &note).await?;
    }
    if let Some(order_move) = order_move {
        // A partial refund of a partially refunded order is no move: nothing to write.
        if order_move.from() != order_move.to() {
            let note = format!("{amount} refunded through {} ({reference})", p.provider);
            move_locked(conn, o.id, actor, order_move, &note, "refund").await?;
        }
    }
    Ok((refunded, after))
}

/// Refunds `amount` (everything refundable when `None`) of the order's captured money
/// through the provider that took it: never more than captured − refunded in total (one
/// conditional UPDATE, so concurrent refunds that together exceed it cannot all pass: the
/// ones that do not fit are a 409 `refund_exceeds_captured`). The payment refunded is the
/// order's latest captured one with enough left. `request_key` names the caller's request
/// (its `Idempotency-Key`'s digest): the provider's key is derived from it, so a retry of
/// the same request that reaches the provider again gets the first refund back, never a
/// second.
pub async fn refund(
    conn: &mut sqlx::PgConnection,
    providers: &super::providers::Providers,
    order: OrderId,
    amount: Option<i64>,
    request_key: &str,
    actor: &str,
) -> Result<Refund, OrdersError> {
    let o = repo::lock_payable(conn, order, None, true)
        .await?
        .ok_or(OrdersError::OrderNotFound)?;
    let payments = repo::payments(&mut *conn, order).await?;
    let available: i64 = payments.iter().map(|p| p.captured - p.refunded).sum();
    let wanted = amount.unwrap_or(available);
    let Some(p) = payments
        .into_iter()
        .rev()
        .find(|p| p.captured - p.refunded >= wanted && wanted > 0)
    else {
        return Err(OrdersError::RefundExceedsCaptured { available });
    };
    if !repo::reserve_refund(conn, p.id, wanted).await? {
        return Err(OrdersError::RefundExceedsCaptured { available });
    }
    let provider = providers
        .get(&p.provider)
        .ok_or_else(|| OrdersError::ProviderNotConfigured(p.provider.clone()))?;
    let key = format!("payment:{}:refund:{request_key}", p.id);
    let done = provider
        .refund(&RefundRequest {
            reference: &p.reference,
            capture_reference: p.capture_reference.as_deref(),
            amount: wanted,
            currency: &p.currency,
            idempotency_key: &key,
        })
        .await?;
    // What we reserved is what the provider must have refunded; a refund it could not make
    // rolls the reservation back with the transaction.
    if done.status == RemoteStatus::Failed || done.amount != wanted {
        return Err(OrdersError::ProviderRefused(format!(
            "the refund {} came back {:?} for {} of {wanted}",
            done.reference, done.status, done.amount
        )));
    }
    if done.status != RemoteStatus::Succeeded {
        // Pending at the provider: the amount stays reserved on the payment, and the
        // refund is written once its webhook says it succeeded (or released if it fails).
        repo::insert_pending_refund(
            conn,
            &repo::NewRefund {
                payment: &p,
                reference: &done.reference,
                amount: wanted,
                actor,
            },
        )
        .await?;
        let note = format!(
            "{wanted} {} refund {} asked of {}: pending until the provider confirms it",
            p.currency, done.reference, p.provider
        );
        repo::note(conn, o.id, OrderStatus::parse(&o.status)?, actor, &note).await?;
        let row = repo::lock_payment(conn, p.id)
            .await?
            .ok_or(OrdersError::OrderNotFound)?;
        return Ok(Refund {
            payment: row,
            order_status: OrderStatus::parse(&o.status)?,
            reference: done.reference,
            pending: true,
        });
    }
    let (_, after) = write_refund(
        conn,
        &o,
        &p,
        &done.reference,
        wanted,
        p.refunded + wanted,
        None,
        actor,
    )
    .await?;
    let row = repo::lock_payment(conn, p.id)
        .await?
        .ok_or(OrdersError::OrderNotFound)?;
    Ok(Refund {
        payment: row,
        order_status: after,
        reference: done.reference,
        pending: false,
    })
}

/// What [`refund`] did.
pub struct Refund {
    /// The payment, its `refunded` counting a pending refund's reserved amount.
    pub payment: PaymentRow,
    pub order_status: OrderStatus,
    /// The provider's id of the refund.
    pub reference: String,
    /// The provider has not confirmed it yet: no ledger row, no order move, no
    /// `payment.refunded` until it does.
    pub pending: bool,
}

/// The reconciliation job's work: asks the provider about up to `limit` payments stuck in
/// `processing` or `requires_action` for `older_than_secs` (a webhook lost, an endpoint
/// down), and applies what it says as its webhook would have (`apply`, each payment in its
/// own transaction). One that fails is logged and left for the next run. Returns how many
/// moved.
pub async fn reconcile(
    db: &sqlx::PgPool,
    providers: &super::providers::Providers,
    older_than_secs: i64,
    limit: i64,
) -> Result<usize, OrdersError> {
    let stuck = repo::stuck_payments(db, older_than_secs, limit).await?;
    let mut moved = 0;
    for (payment, order, name, reference) in stuck {
        let Some(provider) = providers.get(&name) else {
            continue;
        };
        let remote = match provider.fetch(&reference).await {
            Ok(r) if r.reference == reference => r,
            Ok(r) => {
                tracing::error!(payment = %payment, asked = reference, got = r.reference,
                    "the provider answered about another payment");
                continue;
            }
            Err(e) => {
                tracing::warn!(payment = %payment, provider = name, error = %e,
                    "reconciliation could not ask the provider");
                repo::touch_payment(db, payment).await?;
                continue;
            }
        };
        let outcome = outcome_of(remote);
        let mut tx = db.begin().await?;
        match apply(
            &mut tx,
            payment,
            order,
            &outcome,
            None,
            crate::platform::events::SYSTEM_ACTOR,
        )
        .await
        {
            Ok(Applied::Applied) => {
                tx.commit().await?;
                moved += 1;
            }
            Ok(Applied::Ignored | Applied::Deferred) => {
                drop(tx);
                repo::touch_payment(db, payment).await?;
            }
            Err(e) => {
                tracing::error!(payment = %payment, error = %e, "reconciling a payment failed");
            }
        }
    }
    moved += reconcile_refunds(db, providers, older_than_secs, limit).await?;
    Ok(moved)
}

/// The reconciliation of refunds pending at the provider whose webhook did not come: asks
/// the provider, and applies a refund that succeeded or failed as its webhook would have
/// (`apply`, each in its own transaction). Still pending: looked at again on a later run.
async fn reconcile_refunds(
    db: &sqlx::PgPool,
    providers: &super::providers::Providers,
    older_than_secs: i64,
    limit: i64,
) -> Result<usize, OrdersError> {
    let stuck = repo::stuck_refunds(db, older_than_secs, limit).await?;
    let mut moved = 0;
    for (payment, order, name, reference, currency) in stuck {
        let Some(provider) = providers.get(&name) else {
            continue;
        };
        let outcome = match provider.fetch_refund(&reference, &currency).await {
            Ok(r) if r.reference == reference => match r.status {
                RemoteStatus::Succeeded => Outcome::Refunded {
                    refund_reference: reference.clone(),
                    amount: r.amount,
                },
                RemoteStatus::Failed | RemoteStatus::Canceled => Outcome::RefundFailed {
                    refund_reference: reference.clone(),
                    reason: "failed at the provider".to_owned(),
                },
                _ => {
                    repo::touch_refund(db, &name, &reference).await?;
                    continue;
                }
            },
            Ok(r) => {
                tracing::error!(
                    refund = reference,
                    got = r.reference,
                    "the provider answered about another refund"
                );
                continue;
            }
            Err(e) => {
                tracing::warn!(refund = reference, provider = name, error = %e,
                    "reconciliation could not ask the provider about a refund");
                repo::touch_refund(db, &name, &reference).await?;
                continue;
            }
        };
        let mut tx = db.begin().await?;
        let actor = crate::platform::events::SYSTEM_ACTOR;
        match apply(&mut tx, payment, order, &outcome, None, actor).await {
            Ok(Applied::Applied) => {
                tx.commit().await?;
                moved += 1;
            }
            // Deferred: the refund does not fit what is captured yet; the next sweep asks
            // again.
            Ok(Applied::Ignored | Applied::Deferred) => drop(tx),
            Err(e) => {
                tracing::error!(refund = reference, error = %e, "reconciling a refund failed");
            }
        }
    }
    Ok(moved)
}

/// What a provider's answer about a payment (`PaymentProvider::fetch`) means, in the words
/// its webhook would have used: the reconciliation job and Razorpay's checkout callback
/// apply it through [`apply`] like an event.
pub fn outcome_of(remote: RemotePayment) -> Outcome {
    match remote.status {
        RemoteStatus::Succeeded => Outcome::Succeeded {
            amount: remote.captured,
            fee: remote.fee,
            capture_reference: remote.capture_reference,
        },
        RemoteStatus::Failed => Outcome::Failed {
            reason: remote
                .failure
                .unwrap_or_else(|| "The payment failed.".into()),
        },
        RemoteStatus::Canceled => Outcome::Canceled,
        RemoteStatus::Authorized => Outcome::Authorized {
            amount: remote.captured,
        },
        RemoteStatus::Processing => Outcome::Processing,
        RemoteStatus::RequiresAction => Outcome::RequiresAction,
        RemoteStatus::RequiresPaymentMethod => Outcome::Ignored,
    }
}

/// Moves an order the caller holds locked, with a history note. Anything but one row moved
/// means the lock did not hold: a bug, reported as one, never a client error.
async fn move_locked(
    conn: &mut sqlx::PgConnection,
    order: OrderId,
    actor: &str,
    order_move: Transition,
    note: &str,
    what: &str,
) -> Result<(), OrdersError> {
    let change = Change {
        order_move: Some(order_move),
        note: Some(note),
        ..Change::default()
    };
    if repo::apply(conn, order, actor, &change).await? != 1 {
        return Err(OrdersError::Internal(anyhow::anyhow!(
            "order {order}: its {what} move did not apply under its lock"
        )));
    }
    Ok(())
}
