//! The cart API's ids, request and response bodies, their checks, and how rows become
//! responses. The priced shapes (`PricedLine`, `Totals`, ...) are `api`'s, shared with the
//! orders domain, and serialised as they are.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::api::{AppliedDiscount, DiscountProblem, LineChange, PricedLine, Totals};
use super::repo::DiscountFields;
use crate::platform::error::FieldError;

crate::id_type!(
    /// A cart.
    CartId
);

crate::id_type!(
    /// One line of a cart (a variant and its quantity).
    LineId
);

crate::id_type!(
    /// A discount code.
    DiscountId
);

/// A postal address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Ada Lovelace", "line1": "12 St James's Square", "city": "London",
    "postal_code": "SW1Y 4JH", "country": "GB"}))]
pub struct Address {
    /// 1 to 200 characters.
    pub name: String,
    /// 1 to 200 characters.
    pub line1: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    /// 1 to 100 characters.
    pub city: String,
    /// State, province or county: the ISO 3166-2 subdivision code without the country
    /// (`CA` for California) where tax rates name regions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2, upper case (`US`, `DE`).
    pub country: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// Field checks that `validator` cannot say, collected into one 422.
#[derive(Default)]
pub struct Checks(pub Vec<FieldError>);

impl Checks {
    pub fn fail(&mut self, field: impl Into<String>, code: &str, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        });
    }

    /// Text of `min..=max` characters without control characters.
    pub fn text(&mut self, field: &str, value: &str, min: usize, max: usize) {
        let n = value.trim().chars().count();
        if n < min || n > max || value.chars().any(char::is_control) {
            self.fail(
                field,
                "length",
                format!("must be {min} to {max} characters, without control characters"),
            );
        }
    }

    pub fn address(&mut self, at: &str, a: &Address) {
        self.text(&format!("{at}.name"), &a.name, 1, 200);
        self.text(&format!("{at}.line1"), &a.line1, 1, 200);
        if let Some(l) = &a.line2 {
            self.text(&format!("{at}.line2"), l, 0, 200);
        }
        self.text(&format!("{at}.city"), &a.city, 1, 100);
        if let Some(r) = &a.region
            && (r.is_empty()
                || r.len() > 3
                || !r
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()))
        {
            self.fail(
                format!("{at}.region"),
                "region",
                "must be an ISO 3166-2 subdivision code without the country: 1 to 3 capitals or digits",
            );
        }
        if let Some(p) = &a.postal_code {
            self.text(&format!("{at}.postal_code"), p, 1, 20);
        }
        // An assigned code, not just two capitals: the country picks tax and shipping
        // rates, and `XX` would silently fall to the `*` shipping rate and no tax.
        if a.country.len() != 2
            || !a.country.bytes().all(|b| b.is_ascii_uppercase())
            || a.country.parse::<iso_country::Country>().is_err()
        {
            self.fail(
                format!("{at}.country"),
                "country",
                "must be an ISO 3166-1 alpha-2 code in capitals, such as US or DE",
            );
        }
        if let Some(p) = &a.phone
            && (p.is_empty()
                || p.len() > 32
                || !p
                    .chars()
                    .all(|c| c.is_ascii_digit() || " +-().".contains(c)))
        {
            self.fail(
                format!("{at}.phone"),
                "phone",
                "must be up to 32 digits, spaces and + - ( ) .",
            );
        }
    }

    pub fn done(self) -> Result<(), super::error::CartError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(super::error::CartError::invalid(self.0))
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"variant_id": "0193a5f6-7d2c-7b9e-9f10-3c4d5e6f7a8b", "quantity": 2}))]
pub struct AddItemRequest {
    /// A catalog variant on sale.
    pub variant_id: Uuid,
    /// Added to the line's quantity when the cart holds the variant already; the line
    /// stays within 1 and `cart.max_line_quantity` (default 100) and the stock available.
    pub quantity: i32,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"quantity": 3}))]
pub struct UpdateItemRequest {
    /// The line's new quantity: 1 to `cart.max_line_quantity`, within the stock available
    /// (DELETE the line to remove it).
    pub quantity: i32,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"code": "SUMMER10"}))]
pub struct ApplyDiscountRequest {
    /// Case-insensitive.
    pub code: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "ada@example.com", "shipping_address": {"name": "Ada Lovelace",
    "line1": "12 St James's Square", "city": "London", "postal_code": "SW1Y 4JH", "country": "GB"}}))]
pub struct AddressesRequest {
    /// Contact email for the order (guests); absent clears it.
    #[serde(default)]
    pub email: Option<String>,
    /// Where to ship: its country and region choose the tax rate and shipping rate. Absent
    /// clears it.
    #[serde(default)]
    pub shipping_address: Option<Address>,
    /// Absent: the same as the shipping address, as far as orders are concerned.
    #[serde(default)]
    pub billing_address: Option<Address>,
}

impl AddressesRequest {
    pub fn check(&self) -> Result<(), super::error::CartError> {
        let mut c = Checks::default();
        if let Some(e) = &self.email {
            let ok = e.len() <= 254
                && e.split_once('@').is_some_and(|(local, domain)| {
                    !local.is_empty() && domain.contains('.') && !domain.starts_with('.')
                })
                && !e.chars().any(|c| c.is_whitespace() || c.is_control());
            if !ok {
                c.fail("email", "email", "must be an email address");
            }
        }
        if let Some(a) = &self.shipping_address {
            c.address("shipping_address", a);
        }
        if let Some(a) = &self.billing_address {
            c.address("billing_address", a);
        }
        c.done()
    }
}

/// Why a cart has no totals.
#[derive(Debug, Serialize, ToSchema)]
pub struct TotalsProblem {
    /// `total_too_large`.
    pub code: String,
    pub detail: String,
}

/// A cart, priced now.
#[derive(Debug, Serialize, ToSchema)]
pub struct CartResponse {
    pub id: CartId,
    /// Whose: absent for a guest cart (named by its `X-Cart-Token`).
    pub user_id: Option<Uuid>,
    /// Returned once, when a guest cart is created (also in the `X-Cart-Token` header):
    /// send it back as `X-Cart-Token` on every cart request. Only its hash is stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// ISO 4217; absent while the cart is empty (the first line sets it).
    pub currency: Option<String>,
    pub email: Option<String>,
    /// Lines that can be sold, priced at the catalog's current prices, oldest first.
    pub lines: Vec<PricedLine>,
    /// Absent (null) when the cart's amounts do not fit the money range (then
    /// `totals_problem` says so): the cart stays readable so the shopper can remove lines;
    /// writes that would get a cart there are refused with 422 `total_too_large`.
    pub totals: Option<Totals>,
    /// Why `totals` is absent (`total_too_large`).
    pub totals_problem: Option<TotalsProblem>,
    /// The discount applied, when it applies now.
    pub discount: Option<AppliedDiscount>,
    /// The discount code on the cart that does not apply now, and why.
    pub discount_problem: Option<DiscountProblem>,
    pub shipping_address: Option<Address>,
    pub billing_address: Option<Address>,
    /// What changed since the shopper set each line: `price_changed`, `quantity_reduced`,
    /// `unavailable` (left out of `lines` and totals). Reports stay until the line is set
    /// again (PUT) or removed.
    pub changes: Vec<LineChange>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A discount code (staff).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"code": "SUMMER10", "kind": "percentage", "value": 1000, "min_subtotal": 5000,
    "usage_limit": 100, "per_customer_limit": 1, "ends_at": "2027-09-01T00:00:00Z"}))]
pub struct DiscountRequest {
    /// 2 to 40 letters, digits, `-` and `_`; stored upper-case (codes are case-insensitive).
    pub code: String,
    pub kind: DiscountKind,
    /// `percentage`: basis points, 1 to 10000 (1000 = 10 %); `fixed`: minor units of
    /// `currency`, 1 to 10^15.
    pub value: i64,
    /// ISO 4217; required for `fixed` (it applies to carts in that currency only).
    #[serde(default)]
    pub currency: Option<String>,
    /// The cart's subtotal must reach this (minor units of the cart's currency).
    #[serde(default)]
    pub min_subtotal: i64,
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
    /// Uses in all (checkouts), absent for unlimited.
    #[serde(default)]
    pub usage_limit: Option<i32>,
    /// Uses per customer, absent for unlimited (a limited code needs a signed-in cart).
    #[serde(default)]
    pub per_customer_limit: Option<i32>,
    /// Only these products' lines (with `category_ids`: or those categories'); both empty:
    /// the whole order. At most 100 each.
    #[serde(default)]
    pub product_ids: Vec<Uuid>,
    /// Products in these categories or their subcategories.
    #[serde(default)]
    pub category_ids: Vec<Uuid>,
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum DiscountKind {
    Percentage,
    Fixed,
}

impl DiscountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Percentage => "percentage",
            Self::Fixed => "fixed",
        }
    }
}

/// A code as stored: upper case, trimmed.
pub fn normalise_code(code: &str) -> String {
    code.trim().to_uppercase()
}

pub fn valid_code(code: &str) -> bool {
    (2..=40).contains(&code.len())
        && code.bytes().enumerate().all(|(i, b)| {
            b.is_ascii_uppercase() || b.is_ascii_digit() || (i > 0 && (b == b'-' || b == b'_'))
        })
}

impl DiscountRequest {
    /// The fields to store, or a 422 naming every field at fault.
    pub fn fields(self) -> Result<DiscountFields, super::error::CartError> {
        let mut c = Checks::default();
        let code = normalise_code(&self.code);
        if !valid_code(&code) {
            c.fail(
                "code",
                "code",
                "must be 2 to 40 letters, digits, - and _, starting with a letter or digit",
            );
        }
        match self.kind {
            DiscountKind::Percentage => {
                if !(1..=10_000).contains(&self.value) {
                    c.fail("value", "range", "basis points from 1 to 10000");
                }
                // Refused rather than dropped: the sender may think it limits the code to
                // that currency, and a percentage applies to carts in any.
                if self.currency.is_some() {
                    c.fail(
                        "currency",
                        "not_allowed",
                        "a percentage discount applies in every currency: leave currency out",
                    );
                }
            }
            DiscountKind::Fixed => {
                if !(1..=1_000_000_000_000_000).contains(&self.value) {
                    c.fail("value", "range", "minor units from 1 to 10^15");
                }
                if self.currency.is_none() {
                    c.fail(
                        "currency",
                        "required",
                        "a fixed discount names its currency",
                    );
                }
            }
        }
        if let Some(cur) = &self.currency
            && crate::domains::catalog::api::currency_exponent(cur).is_none()
        {
            c.fail(
                "currency",
                "currency",
                "must be an active ISO 4217 code in capitals, such as USD",
            );
        }
        if !(0..=1_000_000_000_000_000).contains(&self.min_subtotal) {
            c.fail("min_subtotal", "range", "minor units from 0 to 10^15");
        }
        if let (Some(s), Some(e)) = (self.starts_at, self.ends_at)
            && e <= s
        {
            c.fail("ends_at", "range", "must be after starts_at");
        }
        if self.usage_limit.is_some_and(|l| l < 1) {
            c.fail(
                "usage_limit",
                "range",
                "at least 1 (leave it out for unlimited)",
            );
        }
        if self.per_customer_limit.is_some_and(|l| l < 1) {
            c.fail(
                "per_customer_limit",
                "range",
                "at least 1 (leave it out for unlimited)",
            );
        }
        if self.product_ids.len() > 100 {
            c.fail("product_ids", "length", "at most 100");
        }
        if self.category_ids.len() > 100 {
            c.fail("category_ids", "length", "at most 100");
        }
        c.done()?;
        Ok(DiscountFields {
            code,
            kind: self.kind.as_str().to_owned(),
            value: self.value,
            currency: if self.kind == DiscountKind::Fixed {
                self.currency
            } else {
                None
            },
            min_subtotal: self.min_subtotal,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            usage_limit: self.usage_limit,
            per_customer_limit: self.per_customer_limit,
            product_ids: dedup(self.product_ids),
            category_ids: dedup(self.category_ids),
            active: self.active,
        })
    }
}

fn dedup(mut ids: Vec<Uuid>) -> Vec<Uuid> {
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// A discount code: the row as it is stored (read by `FromRow`, or from the JSON a cart's
/// read aggregates) and the body staff get, one struct since the two are the same fields.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
pub struct DiscountResponse {
    pub id: DiscountId,
    pub code: String,
    pub kind: DiscountKind,
    pub value: i64,
    pub currency: Option<String>,
    pub min_subtotal: i64,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub usage_limit: Option<i32>,
    pub per_customer_limit: Option<i32>,
    /// Uses so far (checkouts that consumed it).
    pub used_count: i32,
    pub product_ids: Vec<Uuid>,
    pub category_ids: Vec<Uuid>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set when staff retired it: such a code is never returned, so it is not in the body
    /// (a cart holding it reads it, and reports it unusable).
    #[serde(skip_serializing)]
    pub deleted_at: Option<DateTime<Utc>>,
}
