//! Search and browse, the query behind `GET /products` (words, filters, sorts, facets) and
//! the `/products/featured` and `/products/popular` shelves, whose handlers are in
//! `products`: parsing and checking the parameters, and the cursor. A page and, on the first
//! page, its capped total and facets are one SQL statement (`repo::search_products`).
//!
//! Each sort pages with its own keyset. The cursor carries the sort and a fingerprint of the
//! filters, so a cursor replayed with another sort or other filters is a 400
//! `invalid_cursor` rather than a page that silently skips or repeats products.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::access;
use super::error::CatalogError;
use super::model::{
    MAX_TAGS, ProductFilter, ProductId, ProductResponse, ProductSearchResponse, ProductSort,
    ProductStatus, SearchTotal,
};
use super::repo::{self, ProductSearch, SEARCH_COUNT_CAP, SearchAfter, Viewer};
use crate::platform::Platform;
use crate::platform::identity::MaybeUser;
use crate::platform::page::{self, Page, PageQuery};

/// The longest `q`, in characters.
const MAX_QUERY: usize = 200;
/// The most `key:value` pairs in `attributes`.
const MAX_ATTRIBUTE_FILTERS: usize = 10;

/// What a search page's cursor holds: the sort and filters it belongs to, and the sort key
/// of the last product shown.
#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    s: ProductSort,
    /// Fingerprint of the filters.
    f: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    k: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    k2: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    t: Option<DateTime<Utc>>,
    id: ProductId,
}

fn invalid(detail: impl Into<String>) -> CatalogError {
    CatalogError::InvalidQuery(detail.into())
}

fn invalid_cursor() -> CatalogError {
    CatalogError::InvalidCursor
}

/// Checks the query parameters of a search: every bad value is a 400 naming it.
pub fn parse(f: &ProductFilter) -> Result<ProductSearch, CatalogError> {
    // websearch_to_tsquery takes any text (operators are words to it, never syntax
    // errors); only U+0000, which PostgreSQL text cannot hold, has to go.
    let q =
        f.q.as_deref()
            .map(|q| q.replace('\0', "").trim().to_owned())
            .filter(|q| !q.is_empty());
    if q.as_ref().is_some_and(|q| q.chars().count() > MAX_QUERY) {
        return Err(invalid(format!("q: at most {MAX_QUERY} characters")));
    }
    // Trigram matches of one to three letters would match half the catalogue. Nor does a
    // query that excludes words (`desk -lamp`) fall back: similarity has no "without", so
    // the fallback returned exactly what was excluded (a review found it).
    let fuzzy = q.as_ref().is_some_and(|q| {
        q.chars().filter(|c| c.is_alphanumeric()).count() >= 4
            && !q
                .split_whitespace()
                .any(|w| w.len() > 1 && w.starts_with('-'))
    });
    let sort = match (f.sort, &q) {
        (Some(ProductSort::Relevance), None) => {
            return Err(invalid("sort: relevance needs the words of q"));
        }
        (Some(sort), _) => sort,
        (None, Some(_)) => ProductSort::Relevance,
        (None, None) => ProductSort::Newest,
    };
    if let Some(c) = &f.category
        && (c.contains('\0') || c.chars().count() > 120)
    {
        return Err(invalid("category: not a category id or slug"));
    }
    for (name, price) in [("min_price", f.min_price), ("max_price", f.max_price)] {
        if price.is_some_and(|p| p < 0) {
            return Err(invalid(format!("{name}: must not be negative")));
        }
    }
    if let (Some(min), Some(max)) = (f.min_price, f.max_price)
        && min > max
    {
        return Err(invalid("min_price: must not be above max_price"));
    }
    let mut tags: Vec<String> = Vec::new();
    for t in f.tags.as_deref().unwrap_or_default().split(',') {
        let t = t.trim().to_lowercase();
        if t.is_empty() || tags.contains(&t) {
            continue;
        }
        if t.chars().count() > 40 || t.contains('\0') {
            return Err(invalid("tags: each tag is 1 to 40 characters"));
        }
        tags.push(t);
    }
    if tags.len() > MAX_TAGS {
        return Err(invalid(format!("tags: at most {MAX_TAGS}")));
    }
    let mut attributes = Vec::new();
    for pair in f.attributes.as_deref().unwrap_or_default().split(',') {
        if pair.trim().is_empty() {
            continue;
        }
        let Some((key, value)) = pair.split_once(':') else {
            return Err(invalid("attributes: each is key:value"));
        };
        let (key, value) = (key.trim(), value.trim());
        let mut chars = key.chars();
        let key_ok = matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
            && key.len() <= 40
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !key_ok || value.is_empty() || value.chars().count() > 200 || value.contains('\0') {
            return Err(invalid(
                "attributes: keys are lower-case letters, digits and _; values 1 to 200 characters",
            ));
        }
        // Typed values: `42` matches the number 42 and the text "42", `true` the yes/no
        // and the text.
        let mut candidates = vec![serde_json::json!({ key: value })];
        if let Ok(n) = value.parse::<i64>() {
            candidates.push(serde_json::json!({ key: n }));
        }
        if let Ok(b) = value.parse::<bool>() {
            candidates.push(serde_json::json!({ key: b }));
        }
        attributes.push(candidates);
    }
    if attributes.len() > MAX_ATTRIBUTE_FILTERS {
        return Err(invalid(format!(
            "attributes: at most {MAX_ATTRIBUTE_FILTERS}"
        )));
    }
    if f.rating_min.is_some_and(|r| !(1..=5).contains(&r)) {
        return Err(invalid("rating_min: 1 to 5 stars"));
    }
    Ok(ProductSearch {
        q,
        fuzzy,
        category: f.category.clone(),
        seller_id: f.seller_id,
        status: f.status,
        featured: f.featured,
        min_price: f.min_price,
        max_price: f.max_price,
        tags,
        attributes,
        rating_min: f.rating_min,
        in_stock: f.in_stock,
        sort,
    })
}

/// The fingerprint of a search's filters and sort, which its cursors carry.
fn fingerprint(s: &ProductSearch) -> String {
    let bytes = serde_json::to_vec(s).unwrap_or_default();
    hex::encode(&Sha256::digest(&bytes)[..8])
}

/// The keyset position a cursor names, if it was made for this search.
fn position(s: &ProductSearch, after: &str) -> Result<SearchAfter, CatalogError> {
    let c: Cursor = page::decode(after)?;
    if c.s != s.sort || c.f != fingerprint(s) {
        return Err(invalid_cursor());
    }
    let pos = match (s.sort, c.k, c.k2, c.t) {
        (ProductSort::Newest, None, None, Some(t)) => SearchAfter::Time(t, c.id),
        (ProductSort::Rating, Some(k), Some(n), None) => SearchAfter::Rating(k, n, c.id),
        (ProductSort::Rating | ProductSort::Newest, ..) => return Err(invalid_cursor()),
        (_, Some(k), None, None) => SearchAfter::Int(k, c.id),
        _ => return Err(invalid_cursor()),
    };
    Ok(pos)
}

/// One page of a search, and on the first page its total and (unless refused) facets.
pub async fn run(
    platform: &Platform,
    viewer: Viewer,
    search: &ProductSearch,
    page: &PageQuery,
    facets: bool,
) -> Result<ProductSearchResponse, CatalogError> {
    let limit = page.limit()?;
    let after = page
        .after
        .as_deref()
        .map(|a| position(search, a))
        .transpose()?;
    let first = after.is_none();
    let found = repo::search_products(
        &platform.db,
        viewer,
        search,
        after,
        page.fetch()?,
        first,
        facets,
    )
    .await?;
    let fingerprint = fingerprint(search);
    let page = Page::from_rows(
        found.items,
        limit,
        |hit| Cursor {
            s: search.sort,
            f: fingerprint.clone(),
            k: hit.k,
            k2: hit.k2,
            t: hit.t,
            id: hit.row.id,
        },
        |hit| ProductResponse::from(hit.row),
    );
    let total = found.total.map(|n| SearchTotal {
        value: n.min(SEARCH_COUNT_CAP),
        relation: if n > SEARCH_COUNT_CAP { "gte" } else { "eq" },
    });
    Ok(ProductSearchResponse {
        items: page.items,
        next: page.next,
        total,
        facets: found.facets,
    })
}

/// A storefront shelf: active products only, whoever asks, one keyset page.
pub async fn shelf(
    platform: &Platform,
    page: &PageQuery,
    featured: Option<bool>,
    sort: ProductSort,
) -> Result<Page<ProductResponse>, CatalogError> {
    let search = ProductSearch {
        q: None,
        fuzzy: false,
        category: None,
        seller_id: None,
        status: Some(ProductStatus::Active),
        featured,
        min_price: None,
        max_price: None,
        tags: Vec::new(),
        attributes: Vec::new(),
        rating_min: None,
        in_stock: None,
        sort,
    };
    let anyone = Viewer {
        id: None,
        staff: false,
    };
    let found = run(platform, anyone, &search, page, false).await?;
    Ok(Page {
        items: found.items,
        next: found.next,
    })
}

/// `GET /products` for the products' handler.
pub async fn search(
    platform: &Platform,
    user: &MaybeUser,
    filter: &ProductFilter,
    page: &PageQuery,
) -> Result<ProductSearchResponse, CatalogError> {
    let search = parse(filter)?;
    run(
        platform,
        access::viewer(user),
        &search,
        page,
        filter.facets.unwrap_or(true),
    )
    .await
}
