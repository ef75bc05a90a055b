//! What the cart's handlers and `api` share: who the shopper is (a signed-in user and/or a
//! guest token), finding or starting their cart under its row lock, the merge of a guest
//! cart at sign-in, and pricing a cart row against the catalog.
//!
//! The merge rule: a request that is signed in AND carries the `X-Cart-Token` of an active
//! guest cart folds that guest cart into the user's active cart (started if there is none)
//! before doing anything else, in the request's transaction. Quantities of the same variant
//! add up; every merged line is capped by the stock available and `cart.max_line_quantity`,
//! lines past `cart.max_lines` and lines in another currency than the user's cart (or not on
//! sale any more) are dropped, each reported (`not_merged` with its reason) in `changes` of
//! the response to the request that merged; merged lines take the current price as their
//! snapshot. The user's cart keeps its own email, addresses and discount code, and takes the
//! guest's where it has none (the addresses as a pair: both when it has neither). The
//! guest cart is then `merged` (its token now names nothing for guests). The guest cart's
//! row lock is taken first, so two requests carrying the same token merge it once: the
//! second finds it merged and goes on. A token of a cart already merged into this user's
//! cart, like any other token that names no active guest cart (merged, expired, deleted,
//! never issued), is ignored for a signed-in request: the user's own cart is used. For a
//! guest, such a token is a 404 (a client must not silently lose its cart): after DELETE
//! /cart or a 404 the client drops its token, and its next add without one starts a new
//! cart with a new token.

use std::collections::HashMap;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use base64::Engine;
use futures_util::future::LocalBoxFuture;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use super::api::{ChangeKind, LineChange};
use super::error::CartError;
use super::pricing::{self, DiscountInput, Priced, Rules};
use super::repo::{self, CartKey, CartRow};
use super::state::CartRules;
use crate::domains::catalog::api::{self as catalog, VariantForSale};
use crate::platform::error::ApiError;
use crate::platform::identity::MaybeUser;

/// The request header naming a guest cart.
pub const TOKEN_HEADER: &str = "X-Cart-Token";

/// Who is shopping: a signed-in user (a local account), a guest token, or both (the merge).
#[derive(Debug, Clone)]
pub struct Shopper {
    pub user: Option<Uuid>,
    pub token: Option<String>,
}

impl FromRequest for Shopper {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let user = MaybeUser::from_request(req, payload);
        // An empty header is no token; one that is not text names no cart (its hash matches
        // nothing stored: a 404).
        let token = req
            .headers()
            .get(TOKEN_HEADER)
            .map(|v| v.to_str().unwrap_or("\u{0}").trim().to_owned())
            .filter(|t| !t.is_empty());
        Box::pin(async move {
            let user = match user.await?.0 {
                Some(u) => Some(u.uuid()?),
                None => None,
            };
            Ok(Shopper { user, token })
        })
    }
}

/// A new guest token: 32 random bytes, base64url. Only its hash is stored.
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!(
        "ct_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// What the database keeps of a token: looking a cart up by the hash needs no
/// constant-time comparison, and a leaked table gives no usable tokens.
pub fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// The cart a write works on, locked.
pub struct Found {
    pub cart: CartRow,
    /// A new guest cart's token (handed out once).
    pub token: Option<String>,
    /// Whether this request started the cart (a first add, or a merge into a user without
    /// one).
    pub created: bool,
}

/// The shopper's active cart, locked for this transaction; started when `create` (a guest
/// without a token gets a new one, returned). A guest token that names no active guest
/// cart is a 404, even when `create`: a client must not silently lose its cart.
pub async fn cart_for_write(
    conn: &mut PgConnection,
    shopper: &Shopper,
    rules: &CartRules,
    max_lines: usize,
    create: bool,
) -> Result<Found, CartError> {
    if let Some(user) = shopper.user {
        let mut created = false;
        let mut not_merged = Vec::new();
        if let Some(token) = &shopper.token {
            (created, not_merged) = merge_guest(conn, user, token, rules, max_lines).await?;
        }
        if let Some(mut cart) = repo::read(conn, CartKey::User(user), true).await? {
            cart.not_merged = not_merged;
            return Ok(Found {
                cart,
                token: None,
                created,
            });
        }
        if !create {
            return Err(CartError::CartNotFound);
        }
        // A concurrent first add may win the one-active-cart index: read theirs then.
        let created = repo::create(conn, Some(user), None).await?.is_some();
        let cart = repo::read(conn, CartKey::User(user), true)
            .await?
            .ok_or(CartError::CartNotFound)?;
        return Ok(Found {
            cart,
            token: None,
            created,
        });
    }
    if let Some(token) = &shopper.token {
        let hash = hash_token(token);
        let cart = repo::read(conn, CartKey::Token(&hash), true)
            .await?
            .ok_or(CartError::CartNotFound)?;
        return Ok(Found {
            cart,
            token: None,
            created: false,
        });
    }
    if !create {
        return Err(CartError::CartNotFound);
    }
    let token = new_token();
    let hash = hash_token(&token);
    repo::create(conn, None, Some(&hash)).await?;
    let cart = repo::read(conn, CartKey::Token(&hash), true)
        .await?
        .ok_or(CartError::CartNotFound)?;
    Ok(Found {
        cart,
        token: Some(token),
        created: true,
    })
}

/// The shopper's active cart for a read, without a lock: one statement (a signed-in
/// request with a token goes through `cart_for_write` instead, for the merge).
pub async fn cart_for_read(
    conn: &mut PgConnection,
    shopper: &Shopper,
) -> Result<CartRow, CartError> {
    let hash;
    let key = match (shopper.user, &shopper.token) {
        (Some(user), _) => CartKey::User(user),
        (None, Some(token)) => {
            hash = hash_token(token);
            CartKey::Token(&hash)
        }
        (None, None) => return Err(CartError::CartNotFound),
    };
    repo::read(conn, key, false)
        .await?
        .ok_or(CartError::CartNotFound)
}

/// Folds the guest cart named by `token` into `user`'s cart (see the module's merge rule):
/// whether that started the user's cart, and the guest lines left out (`not_merged`).
async fn merge_guest(
    conn: &mut PgConnection,
    user: Uuid,
    token: &str,
    rules: &CartRules,
    max_lines: usize,
) -> Result<(bool, Vec<LineChange>), CartError> {
    let hash = hash_token(token);
    // The guest cart's lock first: a second request with the same token waits here and
    // then finds it merged. A token naming no active guest cart (merged, expired, deleted,
    // or never issued) is ignored: clients keep sending stale tokens, and the signed-in
    // user's own cart must not become unreachable because of one.
    let Some(guest) = repo::read(conn, CartKey::Token(&hash), true).await? else {
        return Ok((false, Vec::new()));
    };
    let mut created = false;
    let target = match repo::read(conn, CartKey::User(user), true).await? {
        Some(t) => t,
        None => {
            created = repo::create(conn, Some(user), None).await?.is_some();
            repo::read(conn, CartKey::User(user), true)
                .await?
                .ok_or(CartError::CartNotFound)?
        }
    };
    let ids: Vec<Uuid> = guest
        .lines
        .iter()
        .chain(target.lines.iter())
        .map(|l| l.variant_id)
        .collect();
    let sale = by_id(
        catalog::variants_for_sale(conn, &ids)
            .await
            .map_err(catalog_error)?,
    );
    let mut currency = target.currency.clone().filter(|_| !target.lines.is_empty());
    let mut line_count = target.lines.len();
    let mut merged = Vec::new();
    let mut dropped = Vec::new();
    for line in guest.lines.iter() {
        let not_merged = |reason: &str, v: Option<&VariantForSale>| LineChange {
            kind: ChangeKind::NotMerged,
            line_id: line.id,
            variant_id: line.variant_id,
            previous_unit_price: line.unit_price,
            unit_price: v.map(|v| v.price),
            requested_quantity: line.quantity,
            quantity: Some(0),
            reason: Some(reason.to_owned()),
        };
        let Some(v) = sale.get(&line.variant_id).filter(|v| v.on_sale) else {
            dropped.push(not_merged("variant_not_on_sale", None));
            continue;
        };
        if currency.get_or_insert_with(|| v.currency.clone()) != &v.currency {
            dropped.push(not_merged("currency_mismatch", Some(v)));
            continue;
        }
        let existing = target
            .lines
            .iter()
            .find(|t| t.variant_id == line.variant_id)
            .map(|t| t.quantity);
        if existing.is_none() {
            if line_count >= max_lines {
                dropped.push(not_merged("too_many_lines", Some(v)));
                continue;
            }
            line_count += 1;
        }
        let cap = v.available.unwrap_or(i32::MAX).min(rules.max_line_quantity);
        let have = existing.unwrap_or(0);
        let quantity = have.saturating_add(line.quantity).min(cap);
        if quantity > have {
            merged.push((line.variant_id, quantity, v.price));
        }
    }
    repo::merge(conn, guest.id, target.id, currency.as_deref(), &merged).await?;
    Ok((created, dropped))
}

/// The catalog's current data for the cart's variants (and `extra`), by variant id: one
/// statement on the caller's connection.
pub async fn catalog_for(
    conn: &mut PgConnection,
    cart: &CartRow,
    extra: Option<Uuid>,
) -> Result<HashMap<Uuid, VariantForSale>, CartError> {
    let ids: Vec<Uuid> = cart
        .lines
        .iter()
        .map(|l| l.variant_id)
        .chain(extra)
        .collect();
    Ok(by_id(
        catalog::variants_for_sale(conn, &ids)
            .await
            .map_err(catalog_error)?,
    ))
}

fn by_id(rows: Vec<VariantForSale>) -> HashMap<Uuid, VariantForSale> {
    rows.into_iter().map(|v| (v.variant_id, v)).collect()
}

/// A catalog failure inside a cart request: its problem, as it is.
pub fn catalog_error(e: crate::domains::catalog::CatalogError) -> CartError {
    CartError::Platform(e.into())
}

/// Prices a cart row (see `pricing` for the rules).
pub fn price_cart(
    cart: &CartRow,
    catalog: &HashMap<Uuid, VariantForSale>,
    rules: &CartRules,
) -> Result<Priced, CartError> {
    let currency = cart.currency.clone().unwrap_or_default();
    let discount = cart.discount.as_ref().map(|d| DiscountInput {
        row: &d.0,
        customer_uses: cart.customer_uses,
        signed_in: cart.user_id.is_some(),
    });
    pricing::price(
        &currency,
        &cart.lines,
        catalog,
        discount,
        cart.shipping_address.as_ref().map(|a| &a.0),
        &Rules {
            tax_rates: &rules.tax_rates,
            tax_inclusive: &rules.tax_inclusive,
            shipping_rates: &rules.shipping_rates,
            max_line_quantity: rules.max_line_quantity,
            now: chrono::Utc::now(),
        },
    )
}
