//! The catalog API's ids, the product state machine, request and response bodies, and how
//! rows become responses.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use validator::Validate;

use super::error::CatalogError;
use super::repo::ProductRow;
use crate::events::catalog::ProductSnapshot;
use crate::platform::error::FieldError;

crate::id_type!(
    /// A product.
    ProductId
);

/// Where a product is in its life. Only [`ProductStatus::after`] moves it, so an illegal
/// move is a 409 naming the state it is in, whoever asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum ProductStatus {
    /// Being written by its seller; only the seller and staff see it.
    Draft,
    /// Submitted, waiting for a moderator.
    Pending,
    /// On sale: everyone sees it.
    Active,
    /// Refused by a moderator (`rejection_reason` says why); the seller may fix and resubmit.
    Rejected,
    /// Off sale, kept for its history; restoring makes it a draft again.
    Archived,
}

/// What may be done to a product's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Submit,
    Approve,
    Reject,
    Archive,
    Restore,
}

impl Transition {
    fn verb(self) -> &'static str {
        match self {
            Transition::Submit => "submitted",
            Transition::Approve => "approved",
            Transition::Reject => "rejected",
            Transition::Archive => "archived",
            Transition::Restore => "restored",
        }
    }
}

impl ProductStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ProductStatus::Draft => "draft",
            ProductStatus::Pending => "pending",
            ProductStatus::Active => "active",
            ProductStatus::Rejected => "rejected",
            ProductStatus::Archived => "archived",
        }
    }

    /// The status `t` leads to from this one: `draft`/`rejected` are submitted (straight to
    /// `active` when `auto_approve` is on), `pending` is approved or rejected, anything but
    /// `archived` is archived, and `archived` is restored to `draft`.
    pub fn after(self, t: Transition, auto_approve: bool) -> Result<ProductStatus, CatalogError> {
        use ProductStatus::*;
        let next = match (self, t) {
            (Draft | Rejected, Transition::Submit) if auto_approve => Active,
            (Draft | Rejected, Transition::Submit) => Pending,
            (Pending, Transition::Approve) => Active,
            (Pending, Transition::Reject) => Rejected,
            (Draft | Pending | Active | Rejected, Transition::Archive) => Archived,
            (Archived, Transition::Restore) => Draft,
            (from, t) => {
                return Err(CatalogError::InvalidTransition {
                    from: from.as_str(),
                    action: t.verb(),
                });
            }
        };
        Ok(next)
    }
}

/// A typed attribute value: text, a whole number or a yes/no. (Decimals go as text: the
/// API carries no floating-point numbers.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum AttributeValue {
    Bool(bool),
    Integer(i64),
    Text(String),
}

/// A product image: a file of the storage domain (`file_id`) or an `http(s)` URL.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Image {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt: Option<String>,
}

pub const MAX_TAGS: usize = 20;
pub const MAX_IMAGES: usize = 20;
pub const MAX_ATTRIBUTES: usize = 50;
/// Generated slugs are cut here, leaving room for a `-xxxxxx` suffix within the 120 allowed.
const SLUG_BASE_LEN: usize = 100;

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "title": "Merino wool beanie", "currency": "EUR",
    "description": "Soft, warm, **machine washable**.", "tags": ["winter", "wool"],
    "attributes": {"material": "merino", "gsm": 250, "vegan": false},
    "images": [{"url": "https://cdn.example.com/beanie.jpg", "alt": "A grey beanie"}]
}))]
pub struct CreateProductRequest {
    #[validate(length(min = 1, max = 200))]
    pub title: String,
    /// Lower-case letters, digits and single dashes; generated from the title when absent.
    pub slug: Option<String>,
    /// Markdown.
    #[serde(default)]
    #[validate(length(max = 20000))]
    pub description: String,
    /// ISO 4217 code (`USD`, `JPY`, `KWD`); every variant's price is in it, in minor units.
    pub currency: String,
    pub category_id: Option<Uuid>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub images: Vec<Image>,
    #[serde(default)]
    pub attributes: BTreeMap<String, AttributeValue>,
    #[validate(length(max = 200))]
    pub seo_title: Option<String>,
    #[validate(length(max = 500))]
    pub seo_description: Option<String>,
    /// Staff only (`catalog.products.manage`).
    #[serde(default)]
    pub featured: bool,
}

/// Fields to change; absent ones stay as they are. `status` changes through the
/// submit/approve/reject/archive/restore actions, `currency` never (prices are in it).
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProductRequest {
    #[validate(length(min = 1, max = 200))]
    pub title: Option<String>,
    /// The old slug keeps answering, with a redirect to the new one.
    pub slug: Option<String>,
    #[validate(length(max = 20000))]
    pub description: Option<String>,
    pub category_id: Option<Uuid>,
    pub tags: Option<Vec<String>>,
    pub images: Option<Vec<Image>>,
    pub attributes: Option<BTreeMap<String, AttributeValue>>,
    #[validate(length(max = 200))]
    pub seo_title: Option<String>,
    #[validate(length(max = 500))]
    pub seo_description: Option<String>,
    /// Staff only (`catalog.products.manage`).
    pub featured: Option<bool>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "The photos show another product."}))]
pub struct RejectRequest {
    #[validate(length(min = 1, max = 2000))]
    pub reason: String,
}

/// Filters of `GET /products`. Everyone sees `active` products; sellers see their own in
/// any status, staff every product.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProductFilter {
    /// One seller's products.
    pub seller_id: Option<Uuid>,
    /// One status (`?status=pending` is the moderation queue for staff).
    pub status: Option<ProductStatus>,
    pub featured: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductResponse {
    pub id: ProductId,
    pub seller_id: Uuid,
    pub title: String,
    pub slug: String,
    pub description: String,
    pub status: ProductStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejection_reason: Option<String>,
    pub category_id: Option<Uuid>,
    pub tags: Vec<String>,
    pub images: Vec<Image>,
    pub attributes: BTreeMap<String, AttributeValue>,
    pub seo_title: Option<String>,
    pub seo_description: Option<String>,
    pub featured: bool,
    /// ISO 4217 code of every price of the product.
    pub currency: String,
    /// Digits after the decimal point in `currency` (JPY 0, USD 2, KWD 3): a price of 1999
    /// in USD is 19.99.
    pub currency_exponent: u16,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
}

impl From<ProductRow> for ProductResponse {
    fn from(r: ProductRow) -> Self {
        Self {
            currency_exponent: currency_exponent(&r.currency).unwrap_or(2),
            id: r.id,
            seller_id: r.seller_id,
            title: r.title,
            slug: r.slug,
            description: r.description,
            status: r.status,
            rejection_reason: r.rejection_reason,
            category_id: r.category_id,
            tags: r.tags,
            images: r.images.0,
            attributes: r.attributes.0,
            seo_title: r.seo_title,
            seo_description: r.seo_description,
            featured: r.featured,
            currency: r.currency,
            created_at: r.created_at,
            updated_at: r.updated_at,
            published_at: r.published_at,
        }
    }
}

/// What events carry about a product.
pub fn snapshot(r: &ProductRow) -> ProductSnapshot {
    ProductSnapshot {
        product_id: r.id.0,
        user_id: r.seller_id,
        title: r.title.clone(),
        slug: r.slug.clone(),
        status: r.status.as_str().to_owned(),
        currency: r.currency.clone(),
        min_price: None,
        max_price: None,
        category_id: r.category_id,
        featured: r.featured,
        updated_at: r.updated_at,
    }
}

/// The exponent of an active ISO 4217 currency; `None` for anything else (`XXX`, `usd`,
/// withdrawn codes).
pub fn currency_exponent(code: &str) -> Option<u16> {
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    iso_currency::Currency::from_code(code).and_then(|c| c.exponent())
}

/// The slug a title gives: ASCII letters and digits joined by single dashes, or `product`
/// when nothing is left.
pub fn slug_of(title: &str) -> String {
    let mut s = slug::slugify(title);
    if s.len() > SLUG_BASE_LEN {
        s.truncate(SLUG_BASE_LEN);
        s = s.trim_end_matches('-').to_owned();
    }
    if s.is_empty() { "product".into() } else { s }
}

pub fn valid_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 120
        && s.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// Tags as stored: trimmed and lower-cased, duplicates dropped, in the order given.
pub fn normalise_tags(tags: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for t in tags {
        let t = t.trim().to_lowercase();
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// The checks `validator` cannot say: slugs, currency, tags, images and attributes.
#[derive(Default)]
pub struct Checks(pub Vec<FieldError>);

impl Checks {
    fn fail(&mut self, field: impl Into<String>, code: &str, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        });
    }

    pub fn slug(&mut self, slug: Option<&str>) {
        if let Some(s) = slug
            && !valid_slug(s)
        {
            self.fail(
                "slug",
                "slug",
                "must be 1 to 120 lower-case letters and digits, in words joined by single dashes",
            );
        }
    }

    pub fn currency(&mut self, code: &str) {
        if currency_exponent(code).is_none() {
            self.fail(
                "currency",
                "currency",
                "must be an active ISO 4217 code in capitals, such as USD, JPY or KWD",
            );
        }
    }

    pub fn tags(&mut self, tags: &[String]) {
        if tags.len() > MAX_TAGS {
            self.fail("tags", "length", format!("at most {MAX_TAGS} tags"));
        }
        for (i, t) in tags.iter().enumerate() {
            let n = t.trim().chars().count();
            if n == 0 || n > 40 {
                self.fail(format!("tags[{i}]"), "length", "must be 1 to 40 characters");
            }
        }
    }

    pub fn images(&mut self, images: &[Image]) {
        if images.len() > MAX_IMAGES {
            self.fail("images", "length", format!("at most {MAX_IMAGES} images"));
        }
        for (i, img) in images.iter().enumerate() {
            match (&img.url, &img.file_id) {
                (Some(url), None) => {
                    let ok = url.len() <= 2048
                        && (url.starts_with("https://") || url.starts_with("http://"))
                        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
                    if !ok {
                        self.fail(
                            format!("images[{i}].url"),
                            "url",
                            "must be an http(s) URL of at most 2048 characters",
                        );
                    }
                }
                (None, Some(_)) => {}
                _ => self.fail(
                    format!("images[{i}]"),
                    "image",
                    "give exactly one of url and file_id",
                ),
            }
            if img.alt.as_ref().is_some_and(|a| a.chars().count() > 300) {
                self.fail(
                    format!("images[{i}].alt"),
                    "length",
                    "at most 300 characters",
                );
            }
        }
    }

    pub fn attributes(&mut self, attributes: &BTreeMap<String, AttributeValue>) {
        if attributes.len() > MAX_ATTRIBUTES {
            self.fail(
                "attributes",
                "length",
                format!("at most {MAX_ATTRIBUTES} attributes"),
            );
        }
        for (key, value) in attributes {
            let mut chars = key.chars();
            let key_ok = matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
                && key.len() <= 40
                && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !key_ok {
                self.fail(
                    format!("attributes.{key}"),
                    "key",
                    "keys are 1 to 40 lower-case letters, digits and _, starting with a letter",
                );
            }
            if let AttributeValue::Text(t) = value
                && t.chars().count() > 200
            {
                self.fail(
                    format!("attributes.{key}"),
                    "length",
                    "text values are at most 200 characters",
                );
            }
        }
    }

    pub fn done(self) -> Result<(), CatalogError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(CatalogError::invalid(self.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currencies_have_their_exponents() {
        assert_eq!(currency_exponent("JPY"), Some(0));
        assert_eq!(currency_exponent("USD"), Some(2));
        assert_eq!(currency_exponent("KWD"), Some(3));
        assert_eq!(currency_exponent("usd"), None);
        assert_eq!(currency_exponent("ABC"), None);
    }

    #[test]
    fn slugs_come_from_titles() {
        assert_eq!(slug_of("Crème Brûlée — 2 Pack!"), "creme-brulee-2-pack");
        assert_eq!(slug_of("!!!"), "product");
        assert!(valid_slug(&slug_of(&"long title ".repeat(40))));
        assert!(!valid_slug("a--b") && !valid_slug("-a") && !valid_slug("A"));
    }

    #[test]
    fn the_status_machine_refuses_what_it_does_not_list() {
        use ProductStatus::*;
        assert_eq!(Draft.after(Transition::Submit, false).unwrap(), Pending);
        assert_eq!(Draft.after(Transition::Submit, true).unwrap(), Active);
        assert_eq!(Pending.after(Transition::Approve, false).unwrap(), Active);
        assert!(Draft.after(Transition::Approve, false).is_err());
        assert!(Active.after(Transition::Submit, false).is_err());
        assert_eq!(Archived.after(Transition::Restore, false).unwrap(), Draft);
        assert!(Archived.after(Transition::Archive, false).is_err());
    }
}
