//! The orders domain: checkout from a cart into an order, the order's typed state machine
//! (`model::OrderStatus`), its per-seller parts (sub-orders) and their fulfilment, and its
//! payments through providers (`providers`: `manual` always, Stripe when configured) with
//! an append-only ledger, webhooks and refunds.
//!
//! Checkout (`checkout`) runs under a required `Idempotency-Key` in one transaction over
//! the cart, catalog and orders schemas: `cart::api::lock_for_checkout`, a timed stock hold
//! per line (`catalog::api::reserve`), `cart::api::consume_discount`, the order written in
//! one statement, `cart::api::complete`. An order stays `pending_payment` after its holds
//! lapse (the catalog's sweeper returns the stock to sale); a payment then re-reserves, or
//! lands in `requires_attention`; a job cancels orders still unpaid
//! `orders.unpaid_cancel_after_secs` after their hold lapsed (`payment_timeout`).
//!
//! Payments (`payment`, `webhooks`, on `settlement`): a start opens (or resumes) the
//! order's one open payment through its provider; what the provider reports (its webhook,
//! recorded once in `provider_events` and applied by this domain's own subscriber through
//! the outbox, or the reconciliation job asking it) moves the payment through
//! `model::PaymentStatus`, appends ledger rows, and ends in `service::settle` once nothing
//! is outstanding. Refunds never exceed what was captured (one conditional UPDATE).
//!
//! Schema `orders`; routes under `/api/v1/orders`. Publishes `order.created`, `.paid`,
//! `.cancelled`, `.shipped`, `.delivered`, `.completed`, `payment.succeeded`, `.failed`,
//! `.refunded` (declared in `crate::events::orders`, since notifications and vendors
//! consume them) and `payment_provider.event_received`, which it consumes itself. Calls
//! `cart::api` and `catalog::api` (`reserve`, `commit`, `release`, `restock`,
//! `record_purchases`, `record_sales`). Permissions `orders.manage`, `orders.fulfil` and
//! `orders.refund` (staff), registered with auth's permission catalogue by its
//! `orders_permissions` and `orders_refund_permission` migrations.
//!
//! Resource files (`checkout`, `order`, `payment`, `webhooks`, `fulfilment`) carry their
//! handlers and OpenAPI paths; they share `access`, `service` (the changes several callers
//! make) and `settlement` (the payment side of it), which sit on `repo`. Imports go that
//! way only.

mod access;
mod checkout;
mod error;
mod fulfilment;
mod model;
mod order;
mod payment;
mod providers;
mod repo;
pub mod service;
mod settings;
mod settlement;
mod state;
mod subscribers;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::Migrator;
use utoipa::OpenApi;

use crate::platform::domain::DomainState;
use crate::platform::events::{SYSTEM_ACTOR, Subscriber};
use crate::platform::http::{Endpoint, Routes};
use crate::platform::jobs::Job;
use crate::platform::{Domain, Platform};

pub use error::OrdersError;
pub use settings::OrdersSettings;
use state::OrdersState;

static MIGRATIONS: Migrator = sqlx::migrate!("migrations/orders");

#[derive(Default)]
pub struct Orders {
    state: DomainState<OrdersState>,
}

impl Domain for Orders {
    fn name(&self) -> &'static str {
        "orders"
    }

    fn schema(&self) -> &'static str {
        "orders"
    }

    fn depends_on(&self) -> &'static [&'static str] {
        &["cart", "catalog"]
    }

    fn events(&self) -> &'static [&'static str] {
        crate::events::orders::TYPES
    }

    fn init(&self, platform: &Platform) -> anyhow::Result<()> {
        self.state.set(OrdersState::build(platform)?);
        Ok(())
    }

    fn migrations(&self) -> Option<&'static Migrator> {
        Some(&MIGRATIONS)
    }

    fn routes(&self, routes: &mut Routes) {
        self.state.register(routes);
        // One resource answers both methods of `/orders` (actix does not fall through from
        // one resource to another on a method mismatch), so it is mounted here.
        routes.add(
            Endpoint::at("")
                .get(order::list_orders)
                .post(checkout::checkout),
        );
        // Before `/{order}/…`: `webhooks` is no order id.
        webhooks::configure(routes);
        order::configure(routes);
        payment::configure(routes);
        fulfilment::configure(routes);
    }

    fn error_codes(&self) -> &'static [(&'static str, actix_web::http::StatusCode)] {
        error::OrdersError::CODES
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        let mut doc = checkout::CheckoutApi::openapi();
        doc.merge(order::OrdersApi::openapi());
        doc.merge(payment::PaymentApi::openapi());
        doc.merge(webhooks::WebhooksApi::openapi());
        doc.merge(fulfilment::FulfilmentApi::openapi());
        doc.merge(crate::events::orders::EventsApi::openapi());
        doc
    }

    fn subscribers(&self, _platform: &Platform) -> Vec<Arc<dyn Subscriber>> {
        self.state
            .get()
            .map(|s| vec![subscribers::provider_events(s)])
            .unwrap_or_default()
    }

    fn offers(&self) -> Option<serde_json::Value> {
        // Only the configured providers: a client offers the buyer what will work.
        let state = self.state.get()?;
        Some(serde_json::json!({ "payment_providers": state.providers.names() }))
    }

    fn jobs(&self, platform: &Platform) -> Vec<Job> {
        let Some(state) = self.state.get() else {
            return Vec::new();
        };
        let db = platform.db.clone();
        let grace = state.settings.unpaid_cancel_after_secs;
        let cancel_unpaid = Job::new(
            "orders.cancel_unpaid",
            Duration::from_millis(state.settings.unpaid_sweep_ms),
            {
                let state = state.clone();
                move || {
                    let (db, state) = (db.clone(), state.clone());
                    Box::pin(async move {
                        // 100 orders a pick, one transaction each; go on while whole batches
                        // are cancelled (one that failed ends the run: the next tick retries).
                        while service::cancel_unpaid(
                            &db,
                            &state.providers,
                            grace,
                            100,
                            SYSTEM_ACTOR,
                        )
                        .await?
                            == 100
                        {}
                        Ok(())
                    })
                }
            },
        );
        let db = platform.db.clone();
        let after = state.settings.reconcile_after_secs;
        let reconcile = Job::new(
            "orders.reconcile_payments",
            Duration::from_millis(state.settings.reconcile_sweep_ms),
            move || {
                let (db, state) = (db.clone(), state.clone());
                Box::pin(async move {
                    settlement::reconcile(&db, &state.providers, after, 100).await?;
                    Ok(())
                })
            },
        );
        vec![cancel_unpaid, reconcile]
    }
}
