//! The shopper's cart: read it priced, add, change and remove lines, apply discount codes,
//! set the addresses, throw it away. Signed-in shoppers have one active cart; guests name
//! theirs by `X-Cart-Token` (returned when the first add starts it). Every response is the
//! cart priced now, with what changed since the shopper set each line.

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpResponse, web};
use utoipa::OpenApi;

use super::api::PricedLine;
use super::error::CartError;
use super::model::*;
use super::pricing::Priced;
use super::repo::{self, CartRow, LineRow};
use super::service::{self, Shopper};
use super::state::{CartRules, CartState};
use actix_web::http::StatusCode;

/// The catalog's current data for a cart's variants.
type Catalog = std::collections::HashMap<uuid::Uuid, crate::domains::catalog::api::VariantForSale>;
use crate::platform::Platform;
use crate::platform::error::ApiError;
use crate::platform::error::responses::{Conflict, Forbidden, Invalid, NotFound, Unauthorized};
use crate::platform::http::{Endpoint, Routes};

#[derive(OpenApi)]
#[openapi(
    paths(
        get_cart,
        delete_cart,
        add_item,
        update_item,
        remove_item,
        apply_discount,
        remove_discount,
        set_addresses
    ),
    components(schemas(PricedLine))
)]
pub struct CartsApi;

pub fn configure(routes: &mut Routes) {
    routes
        .add(Endpoint::at("").get(get_cart).delete(delete_cart))
        .add(Endpoint::at("/items").post(add_item))
        .add(
            Endpoint::at("/items/{line}")
                .put(update_item)
                .delete(remove_item),
        )
        .add(Endpoint::at("/discount-codes").post(apply_discount))
        .add(Endpoint::at("/discount-codes/{code}").delete(remove_discount))
        .add(Endpoint::at("/addresses").put(set_addresses));
}

/// The response for a cart priced now (with the guest token, once, when it was created).
fn respond(
    status: actix_web::http::StatusCode,
    cart: &CartRow,
    priced: Priced,
    token: Option<String>,
) -> HttpResponse {
    let mut res = HttpResponse::build(status);
    if let Some(t) = &token
        && let Ok(v) = HeaderValue::from_str(t)
    {
        res.insert_header((HeaderName::from_static("x-cart-token"), v));
    }
    res.json(CartResponse {
        id: CartId(cart.id),
        user_id: cart.user_id,
        token,
        currency: cart.currency.clone().filter(|_| !cart.lines.is_empty()),
        email: cart.email.clone(),
        lines: priced.lines,
        totals_problem: priced.totals.is_none().then(|| TotalsProblem {
            code: "total_too_large".into(),
            detail: CartError::TotalTooLarge.to_string(),
        }),
        totals: priced.totals,
        discount: priced.discount,
        discount_problem: priced.discount_problem,
        shipping_address: cart.shipping_address.as_ref().map(|a| a.0.clone()),
        billing_address: cart.billing_address.as_ref().map(|a| a.0.clone()),
        // The guest lines a merge in this request left out come first: they are not in
        // the cart, and this is the only response that can tell.
        changes: cart
            .not_merged
            .iter()
            .cloned()
            .chain(priced.changes)
            .collect(),
        created_at: cart.created_at,
        updated_at: cart.updated_at,
    })
}

/// Whether a write may leave the cart with totals that do not fit (see `finish`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Overflow {
    /// The write adds to the cart: refused (422 `total_too_large`) if the total no longer
    /// fits.
    Refuse,
    /// The write takes something away (or only reads): always kept, so a cart over the
    /// limit can be brought back under it; the response shows totals as unavailable.
    Accept,
}

/// The end every cart write shares: price the changed cart (fetching the catalog's data
/// when the handler has not), and only then commit; a refusal returns before the commit,
/// so dropping the transaction rolls the write back and nothing is stored.
async fn finish(
    mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
    cart: &CartRow,
    catalog: Option<Catalog>,
    rules: &CartRules,
    overflow: Overflow,
    status: StatusCode,
    token: Option<String>,
) -> Result<HttpResponse, CartError> {
    let catalog = match catalog {
        Some(c) => c,
        None => service::catalog_for(&mut tx, cart, None).await?,
    };
    let priced = service::price_cart(cart, &catalog, rules)?;
    if overflow == Overflow::Refuse && priced.totals.is_none() {
        return Err(CartError::TotalTooLarge);
    }
    tx.commit().await?;
    Ok(respond(status, cart, priced, token))
}

/// An open write to an existing cart: the transaction, the shopper's cart under its row
/// lock (merging a guest's first, when a signed-in request carries its token), and the
/// rules it is priced with. Every cart write but `add_item` (which may start the cart)
/// opens with [`Write::open`] and ends with [`Write::finish`].
struct Write {
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
    cart: CartRow,
    rules: CartRules,
}

impl Write {
    async fn open(
        platform: &Platform,
        state: &CartState,
        shopper: &Shopper,
    ) -> Result<Self, CartError> {
        let rules = state.rules();
        let mut tx = platform.db.begin().await?;
        let cart =
            service::cart_for_write(&mut tx, shopper, &rules, state.settings.max_lines, false)
                .await?
                .cart;
        Ok(Self { tx, cart, rules })
    }

    /// The catalog's current data for the cart's variants.
    async fn catalog(&mut self) -> Result<Catalog, CartError> {
        service::catalog_for(&mut self.tx, &self.cart, None).await
    }

    /// Prices the changed cart and commits it (200): see [`finish`].
    async fn finish(
        self,
        catalog: Option<Catalog>,
        overflow: Overflow,
    ) -> Result<HttpResponse, CartError> {
        let ok = StatusCode::OK;
        finish(
            self.tx,
            &self.cart,
            catalog,
            &self.rules,
            overflow,
            ok,
            None,
        )
        .await
    }
}

fn check_quantity(quantity: i32, cap: i32) -> Result<(), CartError> {
    if (1..=cap).contains(&quantity) {
        Ok(())
    } else {
        Err(CartError::invalid_field(
            "quantity",
            "range",
            format!("must be between 1 and {cap} (cart.max_line_quantity)"),
        ))
    }
}

/// The shopper's cart, priced now. Re-validates every line against the catalog (price,
/// status, stock) and reports what changed; two statements (the cart with its lines and
/// discount, then the catalog's current data). A signed-in request carrying a guest's
/// `X-Cart-Token` merges that cart first (see the merge rule in the README).
#[utoipa::path(
    get, path = "", tag = "cart",
    security((), ("bearer" = []), ("api_key" = [])),
    params(("X-Cart-Token" = Option<String>, Header, description = "A guest cart's token")),
    responses((status = 200, body = CartResponse), Unauthorized, Forbidden, NotFound)
)]
#[tracing::instrument(skip_all)]
pub async fn get_cart(
    platform: web::Data<Platform>,
    state: web::Data<CartState>,
    shopper: Shopper,
) -> Result<HttpResponse, CartError> {
    if shopper.user.is_some() && shopper.token.is_some() {
        let write = Write::open(&platform, &state, &shopper).await?;
        return write.finish(None, Overflow::Accept).await;
    }
    let rules = state.rules();
    let mut conn = platform.db.acquire().await?;
    let cart = service::cart_for_read(&mut conn, &shopper).await?;
    let catalog = service::catalog_for(&mut conn, &cart, None).await?;
    let priced = service::price_cart(&cart, &catalog, &rules)?;
    Ok(respond(StatusCode::OK, &cart, priced, None))
}

/// Throw the cart away (its lines, discount and addresses). The next add starts a new one
/// (a guest gets a new token).
#[utoipa::path(
    delete, path = "", tag = "cart",
    security((), ("bearer" = []), ("api_key" = [])),
    params(("X-Cart-Token" = Option<String>, Header, description = "A guest cart's token")),
    responses((status = 204, description = "Deleted"), Unauthorized, Forbidden, NotFound)
)]
#[tracing::instrument(skip_all)]
pub async fn delete_cart(
    platform: web::Data<Platform>,
    state: web::Data<CartState>,
    shopper: Shopper,
) -> Result<HttpResponse, CartError> {
    let mut write = Write::open(&platform, &state, &shopper).await?;
    repo::delete_cart(&mut write.tx, write.cart.id).await?;
    write.tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Add a variant on sale (to the line of that variant, if the cart has one). Without a cart
/// this starts one: 201, and a guest's new token in the body and the `X-Cart-Token` header.
/// The quantity is 1 to `cart.max_line_quantity` in all, within the stock available (409
/// `insufficient_stock`); a variant that is not on sale is a 422 `variant_not_on_sale`, one
/// in another currency than the cart's a 422 `currency_mismatch`.
#[utoipa::path(
    post, path = "/items", tag = "cart", request_body = AddItemRequest,
    security((), ("bearer" = []), ("api_key" = [])),
    params(("X-Cart-Token" = Option<String>, Header, description = "A guest cart's token")),
    responses(
        (status = 200, body = CartResponse, description = "Added to the cart"),
        (status = 201, body = CartResponse, description = "Added to a new cart",
            headers(("X-Cart-Token" = String, description = "A new guest cart's token"))),
        Unauthorized, Forbidden, NotFound, Conflict, Invalid
    )
)]
#[tracing::instrument(skip_all)]
pub async fn add_item(
    platform: web::Data<Platform>,
    state: web::Data<CartState>,
    shopper: Shopper,
    body: web::Json<AddItemRequest>,
) -> Result<HttpResponse, CartError> {
    let req = body.into_inner();
    let rules = state.rules();
    check_quantity(req.quantity, rules.max_line_quantity)?;
    let mut tx = platform.db.begin().await?;
    let service::Found {
        mut cart,
        token,
        created,
    } = service::cart_for_write(&mut tx, &shopper, &rules, state.settings.max_lines, true).await?;
    let catalog = service::catalog_for(&mut tx, &cart, Some(req.variant_id)).await?;
    let v = catalog
        .get(&req.variant_id)
        .filter(|v| v.on_sale)
        .ok_or(CartError::VariantNotOnSale(req.variant_id))?;
    if let Some(c) = cart.currency.as_ref().filter(|_| !cart.lines.is_empty())
        && *c != v.currency
    {
        return Err(CartError::CurrencyMismatch {
            cart: c.clone(),
            variant: v.currency.clone(),
        });
    }
    let existing = cart
        .lines
        .iter()
        .position(|l| l.variant_id == req.variant_id);
    if existing.is_none() && cart.lines.len() >= state.settings.max_lines {
        return Err(CartError::TooManyLines(state.settings.max_lines));
    }
    let quantity = existing
        .map(|i| cart.lines[i].quantity)
        .unwrap_or(0)
        .saturating_add(req.quantity);
    check_quantity(quantity, rules.max_line_quantity)?;
    if let Some(available) = v.available
        && quantity > available
    {
        return Err(CartError::InsufficientStock(available));
    }
    let line = repo::set_line(
        &mut tx,
        cart.id,
        req.variant_id,
        quantity,
        v.price,
        &v.currency,
    )
    .await?;
    cart.currency = Some(v.currency.clone());
    put_line(&mut cart, line);
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    finish(
        tx,
        &cart,
        Some(catalog),
        &rules,
        Overflow::Refuse,
        status,
        token,
    )
    .await
}

fn put_line(cart: &mut CartRow, line: LineRow) {
    match cart.lines.iter_mut().find(|l| l.id == line.id) {
        Some(l) => *l = line,
        None => cart.lines.0.push(line),
    }
}

/// Set a line's quantity (1 to `cart.max_line_quantity`, within the stock available). The
/// line's price snapshot becomes the current price: this is how a shopper accepts a
/// `price_changed` or `quantity_reduced` report.
#[utoipa::path(
    put, path = "/items/{line}", tag = "cart", request_body = UpdateItemRequest,
    security((), ("bearer" = []), ("api_key" = [])),
    params(("line" = Uuid, Path), ("X-Cart-Token" = Option<String>, Header, description = "A guest cart's token")),
    responses((status = 200, body = CartResponse), Unauthorized, Forbidden, NotFound, Conflict, Invalid)
)]
#[tracing::instrument(skip_all)]
pub async fn update_item(
    platform: web::Data<Platform>,
    state: web::Data<CartState>,
    shopper: Shopper,
    path: web::Path<LineId>,
    body: web::Json<UpdateItemRequest>,
) -> Result<HttpResponse, CartError> {
    let quantity = body.quantity;
    check_quantity(quantity, state.rules().max_line_quantity)?;
    let mut write = Write::open(&platform, &state, &shopper).await?;
    let (variant, before) = write
        .cart
        .lines
        .iter()
        .find(|l| l.id == path.0)
        .map(|l| (l.variant_id, l.quantity))
        .ok_or(CartError::LineNotFound)?;
    let catalog = write.catalog().await?;
    let v = catalog
        .get(&variant)
        .filter(|v| v.on_sale && Some(&v.currency) == write.cart.currency.as_ref())
        .ok_or(CartError::VariantNotOnSale(variant))?;
    if let Some(available) = v.available
        && quantity > available
    {
        return Err(CartError::InsufficientStock(available));
    }
    let cart = write.cart.id;
    let line = repo::set_line(&mut write.tx, cart, variant, quantity, v.price, &v.currency).await?;
    put_line(&mut write.cart, line);
    // Lowering a quantity is how a cart over the limit gets back under it: never refused.
    let overflow = if quantity > before {
        Overflow::Refuse
    } else {
        Overflow::Accept
    };
    write.finish(Some(catalog), overflow).await
}

/// Remove a line.
#[utoipa::path(
    delete, path = "/items/{line}", tag = "cart",
    security((), ("bearer" = []), ("api_key" = [])),
    params(("line" = Uuid, Path), ("X-Cart-Token" = Option<String>, Header, description = "A guest cart's token")),
    responses((status = 200, body = CartResponse), Unauthorized, Forbidden, NotFound)
)]
#[tracing::instrument(skip_all)]
pub async fn remove_item(
    platform: web::Data<Platform>,
    state: web::Data<CartState>,
    shopper: Shopper,
    path: web::Path<LineId>,
) -> Result<HttpResponse, CartError> {
    let mut write = Write::open(&platform, &state, &shopper).await?;
    if !repo::delete_line(&mut write.tx, write.cart.id, path.0).await? {
        return Err(CartError::LineNotFound);
    }
    write.cart.lines.0.retain(|l| l.id != path.0);
    write.finish(None, Overflow::Accept).await
}

/// Apply a discount code (case-insensitive; one per cart, replacing any other). Refused
/// with a distinct code each: `discount_unknown`, `discount_not_started`,
/// `discount_expired` (422), `discount_used_up`, `discount_customer_limit` (409),
/// `discount_minimum_not_met`, `discount_not_applicable`, `discount_needs_account` (422).
/// The use is consumed at checkout, not here.
#[utoipa::path(
    post, path = "/discount-codes", tag = "cart", request_body = ApplyDiscountRequest,
    security((), ("bearer" = []), ("api_key" = [])),
    params(("X-Cart-Token" = Option<String>, Header, description = "A guest cart's token")),
    responses((status = 200, body = CartResponse), Unauthorized, Forbidden, NotFound, Conflict, Invalid)
)]
#[tracing::instrument(skip_all)]
pub async fn apply_discount(
    platform: web::Data<Platform>,
    state: web::Data<CartState>,
    shopper: Shopper,
    body: web::Json<ApplyDiscountRequest>,
) -> Result<HttpResponse, CartError> {
    // An empty or overlong code is a validation error, not an unknown code: the problem
    // would otherwise echo whatever the client sent (codes are at most 40 characters).
    if body.code.trim().is_empty() || body.code.chars().count() > 64 {
        return Err(CartError::invalid_field(
            "code",
            "length",
            "must be 1 to 64 characters",
        ));
    }
    let code = normalise_code(&body.code);
    if !valid_code(&code) {
        return Err(CartError::DiscountUnknown(code));
    }
    let mut write = Write::open(&platform, &state, &shopper).await?;
    let found = repo::discount_by_code(&mut write.tx, &code, write.cart.user_id)
        .await?
        .ok_or_else(|| CartError::DiscountUnknown(code.clone()))?;
    let catalog = write.catalog().await?;
    let cart = &mut write.cart;
    cart.discount_id = Some(found.discount.id.0);
    cart.discount = Some(sqlx::types::Json(found.discount));
    cart.customer_uses = found.customer_uses;
    let priced = service::price_cart(cart, &catalog, &write.rules)?;
    if let Some(p) = &priced.discount_problem {
        let status = CartError::CODES
            .iter()
            .find(|(c, _)| *c == p.reason)
            .map(|(_, s)| *s)
            .unwrap_or(actix_web::http::StatusCode::UNPROCESSABLE_ENTITY);
        return Err(CartError::Platform(
            ApiError::new(status, p.reason.clone()).detail(p.detail.clone()),
        ));
    }
    repo::set_discount(&mut write.tx, write.cart.id, write.cart.discount_id).await?;
    write.finish(Some(catalog), Overflow::Refuse).await
}

/// Take a discount code off the cart (404 when the cart does not hold it).
#[utoipa::path(
    delete, path = "/discount-codes/{code}", tag = "cart",
    security((), ("bearer" = []), ("api_key" = [])),
    params(("code" = String, Path), ("X-Cart-Token" = Option<String>, Header, description = "A guest cart's token")),
    responses((status = 200, body = CartResponse), Unauthorized, Forbidden, NotFound)
)]
#[tracing::instrument(skip_all)]
pub async fn remove_discount(
    platform: web::Data<Platform>,
    state: web::Data<CartState>,
    shopper: Shopper,
    path: web::Path<String>,
) -> Result<HttpResponse, CartError> {
    let code = normalise_code(&path);
    let mut write = Write::open(&platform, &state, &shopper).await?;
    if write.cart.discount.as_ref().map(|d| d.0.code.as_str()) != Some(code.as_str()) {
        return Err(CartError::DiscountNotFound);
    }
    repo::set_discount(&mut write.tx, write.cart.id, None).await?;
    write.cart.discount_id = None;
    write.cart.discount = None;
    write.finish(None, Overflow::Accept).await
}

/// Set the contact email and the shipping and billing addresses (each absent clears it).
/// The shipping address's country and region choose the tax rate and the shipping rate.
#[utoipa::path(
    put, path = "/addresses", tag = "cart", request_body = AddressesRequest,
    security((), ("bearer" = []), ("api_key" = [])),
    params(("X-Cart-Token" = Option<String>, Header, description = "A guest cart's token")),
    responses((status = 200, body = CartResponse), Unauthorized, Forbidden, NotFound, Invalid)
)]
#[tracing::instrument(skip_all)]
pub async fn set_addresses(
    platform: web::Data<Platform>,
    state: web::Data<CartState>,
    shopper: Shopper,
    body: web::Json<serde_json::Map<String, serde_json::Value>>,
) -> Result<HttpResponse, CartError> {
    // Read as an object first: serde would take a JSON array as the struct's fields in
    // order, so `[]` was every field absent, a silent clear of everything.
    let req: AddressesRequest =
        serde_json::from_value(serde_json::Value::Object(body.into_inner())).map_err(|e| {
            CartError::Platform(ApiError::bad_request(
                "invalid_body",
                format!("The JSON does not match the expected shape: {e}"),
            ))
        })?;
    req.check()?;
    let mut write = Write::open(&platform, &state, &shopper).await?;
    repo::set_addresses(
        &mut write.tx,
        write.cart.id,
        req.email.as_deref(),
        req.shipping_address.as_ref(),
        req.billing_address.as_ref(),
    )
    .await?;
    let cart = &mut write.cart;
    cart.email = req.email;
    cart.shipping_address = req.shipping_address.map(sqlx::types::Json);
    cart.billing_address = req.billing_address.map(sqlx::types::Json);
    // A shipping rate can push a cart over the limit: refused like an add.
    write.finish(None, Overflow::Refuse).await
}
