//! The cart domain: one active cart per signed-in user, guest carts named by an opaque
//! token (`X-Cart-Token`, only its SHA-256 stored), lines holding catalog variants with a
//! price snapshot, discount codes, addresses, and totals priced against the catalog's
//! current data on every read (`pricing` writes the rules down: re-validation, per-line
//! rounding half away from zero, the discount spread, tax inclusive or exclusive per
//! currency, flat shipping per country).
//!
//! Merge at sign-in (`service` has the details): a signed-in request carrying the token of
//! an active guest cart folds it into the user's cart first; quantities add, capped by
//! stock and `cart.max_line_quantity`; guest lines it cannot take are reported once as
//! `not_merged` changes (with a reason) on that request's response; the user's cart takes
//! the guest's email, addresses (as a pair) and discount code where it has none; the guest
//! cart becomes `merged`; one transaction, the guest cart's row lock taken first so two
//! requests with one token merge it once. A signed-in request ignores a token that names no
//! active guest cart.
//!
//! Every write is priced before it commits (`carts::finish`): one that takes the cart's
//! amounts past the i64 range is refused (422 `total_too_large`) and rolled back; a cart
//! already past it (prices rose, a merge) stays readable with `totals` null.
//!
//! Schema `cart`; routes under `/api/v1/cart`. Publishes `cart.abandoned` (declared in
//! `crate::events::cart`); consumes nothing. Calls `catalog::api::variants_for_sale` on its
//! own connection to price; the orders domain calls `api` (lock and price for checkout,
//! consume a discount use, complete the cart) inside its checkout transaction. Permission:
//! `cart.discounts.manage` (staff managing discount codes), registered with auth's
//! permission catalogue by its `cart_permissions` migration. Runtime settings (`state`):
//! `cart.tax_rates`, `cart.tax_inclusive_currencies`, `cart.shipping_rates`,
//! `cart.max_line_quantity`, `cart.guest_cart_days`, `cart.user_cart_days`,
//! `cart.abandoned_after_minutes`, `cart.purge_after_days`. Jobs: expiry of idle carts,
//! their purge (merged and expired carts, after `cart.purge_after_days`) and
//! `cart.abandoned`.
//!
//! Resource files (`carts`, `discounts`) carry their handlers, routes and OpenAPI paths;
//! they share `service`, which sits on `state`, `pricing` and `repo`. Imports go that way
//! only.

pub mod api;
mod carts;
mod discounts;
mod error;
mod model;
mod pricing;
mod repo;
mod service;
mod settings;
mod state;

use std::time::Duration;

use sqlx::migrate::Migrator;
use utoipa::OpenApi;

use crate::events::cart::CartAbandoned;
use crate::platform::domain::DomainState;
use crate::platform::events::publish_all;
use crate::platform::http::Routes;
use crate::platform::jobs::Job;
use crate::platform::{Domain, Platform};

pub use error::CartError;
pub use settings::CartSettings;
use state::CartState;

static MIGRATIONS: Migrator = sqlx::migrate!("migrations/cart");

#[derive(Default)]
pub struct Cart {
    state: DomainState<CartState>,
}

impl Domain for Cart {
    fn name(&self) -> &'static str {
        "cart"
    }

    fn schema(&self) -> &'static str {
        "cart"
    }

    fn depends_on(&self) -> &'static [&'static str] {
        &["catalog"]
    }

    fn events(&self) -> &'static [&'static str] {
        crate::events::cart::TYPES
    }

    fn init(&self, platform: &Platform) -> anyhow::Result<()> {
        self.state.set(CartState::build(platform)?);
        Ok(())
    }

    fn migrations(&self) -> Option<&'static Migrator> {
        Some(&MIGRATIONS)
    }

    fn routes(&self, routes: &mut Routes) {
        self.state.register(routes);
        carts::configure(routes);
        discounts::configure(routes);
    }

    fn error_codes(&self) -> &'static [(&'static str, actix_web::http::StatusCode)] {
        error::CartError::CODES
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        let mut doc = carts::CartsApi::openapi();
        doc.merge(discounts::DiscountsApi::openapi());
        doc.merge(crate::events::cart::EventsApi::openapi());
        doc
    }

    fn jobs(&self, platform: &Platform) -> Vec<Job> {
        let Some(state) = self.state.get() else {
            return Vec::new();
        };
        let every = Duration::from_millis(state.settings.sweep_ms);
        let (db, expiry) = (platform.db.clone(), state.clone());
        let (db2, abandon) = (platform.db.clone(), state.clone());
        vec![
            Job::new("cart.expire_idle_carts", every, move || {
                let (db, s) = (db.clone(), expiry.clone());
                Box::pin(async move {
                    let (guest, user) = (*s.guest_cart_days.get(), *s.user_cart_days.get());
                    // Up to 1000 a statement; go on while whole batches come back.
                    while repo::sweep_expired(&db, guest, user).await? == 1000 {}
                    // Closed carts are kept a while (support, analytics), then deleted so
                    // the table does not grow with every guest who left.
                    let purge = *s.purge_after_days.get();
                    while repo::purge_closed(&db, purge).await? == 1000 {}
                    Ok(())
                })
            }),
            Job::new("cart.publish_abandoned", every, move || {
                let (db, s) = (db2.clone(), abandon.clone());
                Box::pin(async move {
                    let idle = *s.abandoned_after_minutes.get();
                    loop {
                        // Marking and publishing in one transaction: an event for each
                        // cart marked, none for a mark that rolled back.
                        let mut tx = db.begin().await?;
                        let rows = repo::mark_abandoned(&mut tx, idle).await?;
                        let events: Vec<CartAbandoned> = rows
                            .iter()
                            .map(|r| CartAbandoned {
                                cart_id: r.id,
                                user_id: r.user_id,
                                email: r.email.clone(),
                                currency: r.currency.clone(),
                                items: r.items,
                                last_activity_at: r.updated_at,
                            })
                            .collect();
                        publish_all(&mut tx, &events).await?;
                        tx.commit().await?;
                        if rows.len() < 500 {
                            break;
                        }
                    }
                    Ok(())
                })
            }),
        ]
    }
}
