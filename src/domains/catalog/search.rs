//! Search and browse: `GET /products` (words, filters, sorts, facets), `/products/featured`
//! and `/products/popular`. A page and, on the first page, its capped total and facets are
//! one SQL statement (`repo::search_products`).
//!
//! Each sort pages with its own keyset. The cursor carries the sort and a fingerprint of the
//! filters, so a cursor replayed with another sort or other filters is a 400
//! `invalid_cursor` rather than a page that silently skips or repeats products.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use super::access;
use super::error::CatalogError;
use super::model::{
    AttributeValue, MAX_TAGS, ProductFilter, ProductId, ProductResponse, ProductSort, ProductStatus,
};
use super::repo::{self, ProductRow, ProductSearch, SEARCH_COUNT_CAP, SearchAfter, Viewer};
use crate::platform::Platform;
use crate::platform::error::ApiError;
use crate::platform::error::responses::BadRequest;
use crate::platform::http::{Endpoint, Routes};
use crate::platform::identity::MaybeUser;
use crate::platform::page::{self, Page, PageQuery};

#[derive(OpenApi)]
#[openapi(
    paths(featured_products, popular_products),
    components(schemas(ProductSearchResponse, SearchTotal, Facets, ProductSort))
)]
pub struct SearchApi;

/// Registered before the products' routes: `/products/featured` is not a product id.
pub fn configure(routes: &mut Routes) {
    routes
        .add(Endpoint::at("/products/featured").get(featured_products))
        .add(Endpoint::at("/products/popular").get(popular_products));
}

/// The longest `q`, in characters.
const MAX_QUERY: usize = 200;
/// The most `key:value` pairs in `attributes`.
const MAX_ATTRIBUTE_FILTERS: usize = 10;

/// A page of `GET /products`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductSearchResponse {
    pub items: Vec<ProductResponse>,
    /// Pass as `after` (with the same filters and sort) for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// How many products match (first page only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<SearchTotal>,
    /// Counts for narrowing the search further (first page only, unless `facets=false`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub facets: Option<Facets>,
}

/// The size of the whole result, counted up to 10,000: `eq` when it is exact, `gte` when
/// there are at least that many (counting stops there, so it costs the same at 1M).
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchTotal {
    pub value: i64,
    /// `eq` or `gte`.
    pub relation: &'static str,
}

/// Counts over the products matching the current filters (over the first 10,000 found
/// when `total.relation` is `gte`). Each list holds its top 10 values by count.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Facets {
    /// Products per category they are directly in.
    pub categories: Vec<CategoryFacet>,
    /// Products per bucket of their lowest price (minor units; `max` exclusive, absent on
    /// the last bucket). Empty buckets are left out.
    pub prices: Vec<PriceFacet>,
    pub tags: Vec<TagFacet>,
    /// Per attribute key (the 20 most used), its most common values.
    pub attributes: Vec<AttributeFacet>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CategoryFacet {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub count: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PriceFacet {
    pub min: i64,
    pub max: Option<i64>,
    pub count: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TagFacet {
    pub value: String,
    pub count: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AttributeFacet {
    pub key: String,
    pub values: Vec<AttributeCount>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AttributeCount {
    pub value: AttributeValue,
    pub count: i64,
}

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

fn invalid(detail: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_query", detail)
}

fn invalid_cursor() -> ApiError {
    ApiError::bad_request(
        "invalid_cursor",
        "after: not a cursor of this list with these filters and this sort; pass the `next` of the previous page with the same query.",
    )
}

/// Checks the query parameters of a search: every bad value is a 400 naming it.
pub fn parse(f: &ProductFilter) -> Result<ProductSearch, ApiError> {
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
fn position(s: &ProductSearch, after: &str) -> Result<SearchAfter, ApiError> {
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
    // Each item is a product row plus its sort key: k1 (an integer, or the creation time
    // for `newest`) and k2 (the number of ratings for `rating`).
    let mut rows = Vec::with_capacity(found.items.0.len());
    for mut item in found.items.0 {
        let k1 = item.get_mut("k1").map(serde_json::Value::take);
        let k2 = item.get("k2").and_then(serde_json::Value::as_i64);
        let t = k1.clone().and_then(|t| serde_json::from_value(t).ok());
        let k = k1.as_ref().and_then(serde_json::Value::as_i64);
        let row: ProductRow =
            serde_json::from_value(item).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        rows.push((k, k2, t, row));
    }
    let page = Page::from_rows(
        rows,
        limit,
        |(k, k2, t, row)| Cursor {
            s: search.sort,
            f: fingerprint.clone(),
            k: *k,
            k2: *k2,
            t: *t,
            id: row.id,
        },
        |(.., row)| ProductResponse::from(row),
    );
    let total = found.total.map(|n| SearchTotal {
        value: n.min(SEARCH_COUNT_CAP),
        relation: if n > SEARCH_COUNT_CAP { "gte" } else { "eq" },
    });
    let facets = found
        .facets
        .map(|f| serde_json::from_value(f.0))
        .transpose()
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    Ok(ProductSearchResponse {
        items: page.items,
        next: page.next,
        total,
        facets,
    })
}

/// A storefront shelf: active products only, whoever asks, one keyset page.
async fn shelf(
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

/// Featured products (staff set `featured`), newest first. Public; active products only.
#[utoipa::path(
    get, path = "/products/featured", tag = "catalog", security((), ("bearer" = []), ("api_key" = [])),
    params(PageQuery),
    responses((status = 200, body = Page<ProductResponse>), BadRequest)
)]
pub async fn featured_products(
    platform: web::Data<Platform>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, CatalogError> {
    let page = shelf(&platform, &page, Some(true), ProductSort::Newest).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// The best-selling products first (units sold, kept by orders). Public; active products
/// only.
#[utoipa::path(
    get, path = "/products/popular", tag = "catalog", security((), ("bearer" = []), ("api_key" = [])),
    params(PageQuery),
    responses((status = 200, body = Page<ProductResponse>), BadRequest)
)]
pub async fn popular_products(
    platform: web::Data<Platform>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, CatalogError> {
    let page = shelf(&platform, &page, None, ProductSort::Popularity).await?;
    Ok(HttpResponse::Ok().json(page))
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
