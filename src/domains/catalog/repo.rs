//! All SQL of the catalog domain (schema `catalog`).
//!
//! Reads take the viewer and whether they are staff, and put the visibility rule in their
//! WHERE (`status = 'active' OR seller_id = viewer OR staff`), so reading one product is
//! one statement whoever asks. Writes run on the caller's transaction.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use super::model::{
    AttributeValue, Image, ProductId, ProductOption, ProductSort, ProductStatus, ReviewId,
    ReviewStatus, VariantId,
};

// Deserialize too: statements that write a product and a variant at once return both as
// JSON.
#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct ProductRow {
    pub id: ProductId,
    pub seller_id: Uuid,
    pub title: String,
    pub slug: String,
    pub description: String,
    pub status: ProductStatus,
    pub rejection_reason: Option<String>,
    pub category_id: Option<Uuid>,
    pub tags: Vec<String>,
    pub images: Json<Vec<Image>>,
    pub attributes: Json<BTreeMap<String, AttributeValue>>,
    pub seo_title: Option<String>,
    pub seo_description: Option<String>,
    pub featured: bool,
    pub currency: String,
    pub options: Json<Vec<ProductOption>>,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
    /// Published reviews and the sum of their ratings (kept by the review statements).
    pub rating_count: i32,
    pub rating_sum: i64,
}

/// A variant with its stock, as reads return it (built as JSON by the statement).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct VariantRow {
    pub id: VariantId,
    pub product_id: ProductId,
    pub sku: Option<String>,
    pub title: String,
    pub options: BTreeMap<String, String>,
    pub price: i64,
    pub compare_at_price: Option<i64>,
    pub weight_grams: Option<i32>,
    pub track_inventory: bool,
    pub allow_backorder: bool,
    pub on_hand: i32,
    pub reserved: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A variant's fields as they will be stored.
#[derive(Debug, Clone)]
pub struct VariantFields {
    pub sku: Option<String>,
    pub title: String,
    pub options: BTreeMap<String, String>,
    pub price: i64,
    pub compare_at_price: Option<i64>,
    pub weight_grams: Option<i32>,
    pub track_inventory: bool,
    pub allow_backorder: bool,
    /// Stock to start with (creation only).
    pub on_hand: i32,
}

/// One product with its live variants: what reads of one product return.
#[derive(Debug, sqlx::FromRow)]
pub struct ProductDetail {
    #[sqlx(flatten)]
    pub product: ProductRow,
    pub variants: Json<Vec<VariantRow>>,
}

/// A product found by one of its slugs, and whether that slug is its current one.
#[derive(Debug, sqlx::FromRow)]
pub struct SlugHit {
    #[sqlx(flatten)]
    pub detail: ProductDetail,
    pub current: bool,
}

/// Who is reading: their account (none when anonymous) and whether they see every product.
#[derive(Debug, Clone, Copy)]
pub struct Viewer {
    pub id: Option<Uuid>,
    pub staff: bool,
}

/// A product's editable fields, as they will be stored.
pub struct ProductFields<'a> {
    pub title: &'a str,
    pub slug: &'a str,
    pub description: &'a str,
    pub category_id: Option<Uuid>,
    pub tags: &'a [String],
    pub images: &'a [Image],
    pub attributes: &'a BTreeMap<String, AttributeValue>,
    pub seo_title: Option<&'a str>,
    pub seo_description: Option<&'a str>,
    pub featured: bool,
}

/// The columns every product read returns.
const PRODUCT: &str =
    "p.id, p.seller_id, p.title, p.slug, p.description, p.status, p.rejection_reason,
    p.category_id, p.tags, p.images, p.attributes, p.seo_title, p.seo_description, p.featured,
    p.currency, p.options, p.min_price, p.max_price, p.created_at, p.updated_at, p.published_at,
    p.rating_count, p.rating_sum";

/// A variant of `v` with its stock row `s`, as JSON a [`VariantRow`] reads.
const VARIANT_JSON: &str =
    "to_jsonb(v) || jsonb_build_object('on_hand', s.on_hand, 'reserved', s.reserved)";

/// The live variants of product `p`, oldest first, as a JSON array.
fn variants_of_p() -> String {
    format!(
        "(SELECT coalesce(jsonb_agg({VARIANT_JSON} ORDER BY v.id), '[]')
            FROM catalog.variants v JOIN catalog.stock s ON s.variant_id = v.id
           WHERE v.product_id = p.id AND v.deleted_at IS NULL) AS variants"
    )
}

/// Inserts a product and its slug in one statement. With `generated`, a slug some product
/// holds already gets the `-suffix` instead; an explicit one fails on `product_slugs_pkey`.
#[allow(clippy::too_many_arguments)]
pub async fn insert_product(
    conn: &mut PgConnection,
    id: ProductId,
    seller: Uuid,
    currency: &str,
    options: &[ProductOption],
    f: &ProductFields<'_>,
    generated: bool,
    suffix: &str,
) -> Result<ProductRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "WITH pick AS (
             SELECT CASE WHEN $13 AND EXISTS (SELECT 1 FROM catalog.product_slugs WHERE slug = $3)
                         THEN $3 || '-' || $14 ELSE $3 END AS slug
         ), p AS (
             INSERT INTO catalog.products AS p (id, seller_id, title, slug, description, category_id, tags, images,
                                                attributes, seo_title, seo_description, featured, currency, options)
             SELECT $1, $15, $2, pick.slug, $4, $5, $6, $7, $8, $9, $10, $11, $12, $16 FROM pick
             RETURNING {PRODUCT}
         ), s AS (
             INSERT INTO catalog.product_slugs (slug, product_id) SELECT slug, id FROM p
         )
         SELECT * FROM p"
    ))
    .bind(id)
    .bind(f.title)
    .bind(f.slug)
    .bind(f.description)
    .bind(f.category_id)
    .bind(f.tags)
    .bind(Json(f.images))
    .bind(Json(f.attributes))
    .bind(f.seo_title)
    .bind(f.seo_description)
    .bind(f.featured)
    .bind(currency)
    .bind(generated)
    .bind(suffix)
    .bind(seller)
    .bind(Json(options))
    .fetch_one(conn)
    .await
}

/// One product with its variants, if the viewer may see it.
pub async fn product(
    db: &PgPool,
    id: ProductId,
    viewer: Viewer,
) -> Result<Option<ProductDetail>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PRODUCT}, {} FROM catalog.products p
          WHERE p.id = $1 AND p.deleted_at IS NULL
            AND (p.status = 'active' OR p.seller_id = $2 OR $3)",
        variants_of_p()
    ))
    .bind(id)
    .bind(viewer.id)
    .bind(viewer.staff)
    .fetch_optional(db)
    .await
}

/// The product that has (or had) this slug, if the viewer may see it.
pub async fn product_by_slug(
    db: &PgPool,
    slug: &str,
    viewer: Viewer,
) -> Result<Option<SlugHit>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PRODUCT}, {}, p.slug = ps.slug AS current
           FROM catalog.product_slugs ps JOIN catalog.products p ON p.id = ps.product_id
          WHERE ps.slug = $1 AND p.deleted_at IS NULL
            AND (p.status = 'active' OR p.seller_id = $2 OR $3)",
        variants_of_p()
    ))
    .bind(slug)
    .bind(viewer.id)
    .bind(viewer.staff)
    .fetch_optional(db)
    .await
}

/// Locks a product for a change by `actor`: their own, or any with `any` (staff). `None`
/// for a product that does not exist for them.
pub async fn lock_product(
    conn: &mut PgConnection,
    id: ProductId,
    actor: Option<Uuid>,
    any: bool,
) -> Result<Option<ProductRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PRODUCT} FROM catalog.products p
          WHERE p.id = $1 AND p.deleted_at IS NULL AND (p.seller_id = $2 OR $3)
          FOR UPDATE"
    ))
    .bind(id)
    .bind(actor)
    .bind(any)
    .fetch_optional(conn)
    .await
}

/// Stores a locked product's fields and claims its slug in one statement. `None` when the
/// slug belongs to another product (the product is then unchanged). A slug the product had
/// before is simply claimed again.
pub async fn update_product(
    conn: &mut PgConnection,
    id: ProductId,
    f: &ProductFields<'_>,
) -> Result<Option<ProductRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "WITH s AS (
             INSERT INTO catalog.product_slugs AS ps (slug, product_id) VALUES ($3, $1)
             ON CONFLICT (slug) DO UPDATE SET created_at = now()
                WHERE ps.product_id = EXCLUDED.product_id
             RETURNING slug
         )
         UPDATE catalog.products p
            SET title = $2, slug = s.slug, description = $4, category_id = $5, tags = $6, images = $7,
                attributes = $8, seo_title = $9, seo_description = $10, featured = $11, updated_at = now()
           FROM s
          WHERE p.id = $1
         RETURNING {PRODUCT}"
    ))
    .bind(id)
    .bind(f.title)
    .bind(f.slug)
    .bind(f.description)
    .bind(f.category_id)
    .bind(f.tags)
    .bind(Json(f.images))
    .bind(Json(f.attributes))
    .bind(f.seo_title)
    .bind(f.seo_description)
    .bind(f.featured)
    .fetch_optional(conn)
    .await
}

/// Moves a locked product to `status` (the state machine decided it may), with the
/// moderator's reason for a rejection; `published_at` marks the first time it went active.
pub async fn set_status(
    conn: &mut PgConnection,
    id: ProductId,
    status: ProductStatus,
    reason: Option<&str>,
) -> Result<ProductRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE catalog.products p
            SET status = $2, rejection_reason = $3, updated_at = now(),
                published_at = CASE WHEN $2 = 'active' THEN coalesce(published_at, now()) ELSE published_at END
          WHERE p.id = $1
         RETURNING {PRODUCT}"
    ))
    .bind(id)
    .bind(status.as_str())
    .bind(reason)
    .fetch_one(conn)
    .await
}

/// Deletes a locked product: its row stays for history (orders and reviews name it), its
/// slugs are released, and its variants' SKUs.
pub async fn delete_product(conn: &mut PgConnection, id: ProductId) -> Result<(), sqlx::Error> {
    sqlx::query(
        "WITH slugs AS (DELETE FROM catalog.product_slugs WHERE product_id = $1),
              variants AS (UPDATE catalog.variants SET deleted_at = now(), updated_at = now()
                            WHERE product_id = $1 AND deleted_at IS NULL)
         UPDATE catalog.products SET deleted_at = now(), updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// A checked search of products (see `search.rs`), as [`search_products`] runs it.
/// Serialized, it is the fingerprint a page cursor carries.
#[derive(Debug, serde::Serialize)]
pub struct ProductSearch {
    pub q: Option<String>,
    /// Whether the words also match titles by trigram similarity (typos).
    pub fuzzy: bool,
    pub category: Option<String>,
    pub seller_id: Option<Uuid>,
    pub status: Option<ProductStatus>,
    pub featured: Option<bool>,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    pub tags: Vec<String>,
    /// One entry per attribute filter: the objects (`{"size": 42}`, `{"size": "42"}`) any
    /// one of which a product's attributes contain.
    pub attributes: Vec<Vec<serde_json::Value>>,
    /// Average rating at least this many whole stars.
    pub rating_min: Option<i64>,
    pub in_stock: Option<bool>,
    pub sort: ProductSort,
}

/// Where a page starts: the sort key of the last product of the page before.
#[derive(Debug, Clone, Copy)]
pub enum SearchAfter {
    /// Relevance (score in millionths), price, popularity: one integer, then the id.
    Int(i64, ProductId),
    /// Rating: average in thousandths of a star and number of ratings, then the id.
    Rating(i64, i64, ProductId),
    /// Newest: creation time, then the id.
    Time(DateTime<Utc>, ProductId),
}

/// The statement's one row: its products as JSON (a [`ProductRow`] plus its sort key `k1`,
/// `k2`), and for a first page the capped total and the facets.
#[derive(Debug, sqlx::FromRow)]
struct SearchRow {
    items: Json<Vec<serde_json::Value>>,
    total: Option<i64>,
    facets: Option<Json<serde_json::Value>>,
}

/// One product of a search page and its sort key: `k` an integer key (or none for
/// `newest`), `k2` the number of ratings (`rating`), `t` the creation time (`newest`).
pub struct SearchHit {
    pub k: Option<i64>,
    pub k2: Option<i64>,
    pub t: Option<DateTime<Utc>>,
    pub row: ProductRow,
}

/// One page of a search, decoded; for a first page the capped total and the facets.
pub struct SearchPage {
    pub items: Vec<SearchHit>,
    pub total: Option<i64>,
    pub facets: Option<super::model::Facets>,
}

impl SearchRow {
    fn decode(self) -> Result<SearchPage, sqlx::Error> {
        let bad = |e: serde_json::Error| sqlx::Error::Decode(Box::new(e));
        let mut items = Vec::with_capacity(self.items.0.len());
        for mut item in self.items.0 {
            let k1 = item.get_mut("k1").map(serde_json::Value::take);
            let k2 = item.get("k2").and_then(serde_json::Value::as_i64);
            let t = k1.clone().and_then(|t| serde_json::from_value(t).ok());
            let k = k1.as_ref().and_then(serde_json::Value::as_i64);
            let row: ProductRow = serde_json::from_value(item).map_err(bad)?;
            items.push(SearchHit { k, k2, t, row });
        }
        let facets = self
            .facets
            .map(|f| serde_json::from_value(f.0))
            .transpose()
            .map_err(bad)?;
        Ok(SearchPage {
            items,
            total: self.total,
            facets,
        })
    }
}

/// How far a first page counts: a result of more products says "at least 10,000" (and its
/// facets describe the first 10,000 found). Never an exact COUNT over the whole table:
/// counting stops here, so the cost is bounded whatever the filter.
pub const SEARCH_COUNT_CAP: i64 = 10_000;
/// Values per facet (categories, tags, each attribute's values) and attribute keys shown.
const FACET_VALUES: i64 = 10;
const FACET_KEYS: i64 = 20;

/// Price buckets of the facets, in minor units (whatever the product's currency): the
/// lower bounds, which `width_bucket` numbers from 1, and each bucket's number and bounds.
const PRICE_BOUNDS: &str =
    "ARRAY[0, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000]::bigint[]";
const PRICE_BUCKETS: &str =
    "(VALUES (1, 0::bigint, 1000::bigint), (2, 1000, 2500), (3, 2500, 5000), (4, 5000, 10000),
    (5, 10000, 25000), (6, 25000, 50000), (7, 50000, 100000), (8, 100000, 250000),
    (9, 250000, 1000000), (10, 1000000, NULL)) AS b(i, lo, hi)";

/// Products the viewer may see matching `s`, one page of `fetch` after `after`, and with
/// `summary` the capped total (and with `facets` the facets) of the whole result: one
/// statement.
///
/// A first page (`summary`) reads the matches once: their narrow columns (id, sort keys and
/// what the facets count) are materialised up to the cap, counted, faceted and, when all of
/// them are there, sorted for the page, whose full rows are then fetched by id. Only a
/// result past the cap is paged from the matches a second time, in its sort's index order.
/// A later page is one keyset scan. At 1M products, reading the matches twice (once for the
/// page, once for the count) was half of a search's time.
///
/// Browsing a category newest first pages each of its descendant categories through its
/// own index range (`products_category_idx`) and merges them, instead of walking the
/// whole catalogue's newest and dropping the other categories' products (99 in 100 for a
/// leaf category).
///
/// Prepared, like every other statement: planning this one took 1.4 ms of a 2.3 ms
/// category page, and 5-11 ms of a search. A custom plan would gain nothing from the values:
/// the words reach the matching through `qry` (an InitPlan, as unknown to the planner as a
/// generic parameter) and the category through a subquery.
#[allow(clippy::too_many_arguments)]
pub async fn search_products(
    db: &PgPool,
    viewer: Viewer,
    s: &ProductSearch,
    after: Option<SearchAfter>,
    fetch: i64,
    summary: bool,
    facets: bool,
) -> Result<SearchPage, sqlx::Error> {
    let mut qb = QueryBuilder::<Postgres>::new("WITH ");
    if let Some(q) = &s.q {
        // Stable functions of the words, evaluated once. set_config is local to this
        // statement's implicit transaction: pg_trgm's default word similarity (0.6) is too
        // strict for a swapped letter ("iphnoe" is 0.43 of "iphone"). The
        // typo test reads `trgm` first (a one-time filter), so it is set before any index
        // scan reads it.
        qb.push("qry AS MATERIALIZED (SELECT websearch_to_tsquery('english', ")
            .push_bind(q.clone())
            .push(") || websearch_to_tsquery('simple', ")
            .push_bind(q.clone())
            .push(") AS tsq, lower(")
            .push_bind(q.clone())
            .push(
                ") AS raw, set_config('pg_trgm.word_similarity_threshold', '0.4', true) AS trgm), ",
            );
    }
    let (k1, k2, order, cmp) = match s.sort {
        ProductSort::Relevance => (
            "(1000000 * ts_rank(p.search_vector, (SELECT tsq FROM qry)))::bigint",
            "NULL::bigint",
            "k1 DESC, id DESC",
            "<",
        ),
        ProductSort::Newest => ("p.created_at", "NULL::bigint", "k1 DESC, id DESC", "<"),
        ProductSort::PriceAsc => ("coalesce(p.min_price, 0)", "NULL::bigint", "k1, id", ">"),
        ProductSort::PriceDesc => (
            "coalesce(p.min_price, 0)",
            "NULL::bigint",
            "k1 DESC, id DESC",
            "<",
        ),
        ProductSort::Rating => (
            "CASE WHEN p.rating_count = 0 THEN 0 ELSE p.rating_sum * 1000 / p.rating_count END",
            "p.rating_count",
            "k1 DESC, k2 DESC, id DESC",
            "<",
        ),
        ProductSort::Popularity => ("p.sales_count", "NULL::bigint", "k1 DESC, id DESC", "<"),
    };
    let per_category = match (&s.q, &s.category, s.sort) {
        (None, Some(category), ProductSort::Newest) => {
            qb.push("cats AS MATERIALIZED (");
            push_descendants(&mut qb, category);
            qb.push("), ");
            true
        }
        _ => false,
    };
    // A first page keeps only what it counts and sorts; a later one, the whole product.
    let columns = if summary { MATCH_COLUMNS } else { PRODUCT };
    let matching = |qb: &mut QueryBuilder<'_, Postgres>, k1: &str, text: Option<&str>| {
        push_matching(qb, viewer, s, columns, k1, k2, text, Category::Descendants);
    };
    // The matching products: with words, those the full text finds; only when it finds
    // none under these filters, titles by trigram similarity (typos). Always OR-ing the
    // trigram arm in made a common short word ("lamp" is 0.4 similar to "large") match a
    // large part of the catalogue, and the search took seconds at 1M products.
    match (&s.q, s.fuzzy) {
        // A later page of a category browse reads no `m`: its page merges the categories.
        (None, _) if per_category && !summary => {}
        (None, _) => {
            qb.push("m AS NOT MATERIALIZED (");
            matching(&mut qb, k1, None);
            qb.push("), ");
        }
        (Some(_), false) => {
            qb.push("m AS NOT MATERIALIZED (");
            matching(&mut qb, k1, Some(FULL_TEXT));
            qb.push("), ");
        }
        (Some(_), true) => {
            qb.push("exact AS NOT MATERIALIZED (");
            matching(&mut qb, k1, Some(FULL_TEXT));
            qb.push("), close AS NOT MATERIALIZED (");
            let k1 = if s.sort == ProductSort::Relevance {
                "(1000000 * public.word_similarity((SELECT raw FROM qry), lower(p.title)))::bigint"
            } else {
                k1
            };
            matching(&mut qb, k1, Some(TRIGRAM));
            qb.push(
                "), m AS NOT MATERIALIZED (SELECT * FROM exact
                   UNION ALL SELECT * FROM close WHERE NOT EXISTS (SELECT 1 FROM exact)), ",
            );
        }
    }
    if summary {
        // The page from the capped matches when they are all there; past the cap, from
        // all of them (or the categories' ranges) in the sort's order. Each arm's one-time
        // filter leaves the other unrun.
        qb.push(format!(
            "capped AS MATERIALIZED (SELECT * FROM m LIMIT {cap1}),
             keys AS ((SELECT id, k1, k2 FROM capped WHERE (SELECT count(*) FROM capped) <= {SEARCH_COUNT_CAP}
                        ORDER BY {order} LIMIT ",
            cap1 = SEARCH_COUNT_CAP + 1
        ))
        .push_bind(fetch)
        .push(") UNION ALL (");
        if per_category {
            push_per_category(&mut qb, viewer, s, "p.id", k1, k2, None, fetch);
        } else {
            qb.push("SELECT id, k1, k2 FROM m");
        }
        qb.push(format!(
            " WHERE (SELECT count(*) FROM capped) > {SEARCH_COUNT_CAP} ORDER BY {order} LIMIT "
        ))
        .push_bind(fetch)
        .push(format!(
            ")), page AS (SELECT {PRODUCT}, keys.k1, keys.k2
                            FROM keys JOIN catalog.products p ON p.id = keys.id)"
        ));
    } else if per_category {
        qb.push("page AS (");
        push_per_category(&mut qb, viewer, s, PRODUCT, k1, k2, after, fetch);
        qb.push(format!(" ORDER BY {order} LIMIT "))
            .push_bind(fetch)
            .push(")");
    } else {
        qb.push("page AS (SELECT * FROM m");
        if let Some(after) = after {
            qb.push(" WHERE ");
            push_after(&mut qb, after, cmp, "k1", "k2", "id");
        }
        qb.push(format!(" ORDER BY {order} LIMIT "))
            .push_bind(fetch)
            .push(")");
    }
    qb.push(format!(
        " SELECT (SELECT coalesce(jsonb_agg(to_jsonb(page) ORDER BY {order}), '[]') FROM page) AS items, "
    ));
    qb.push(if summary {
        "(SELECT count(*) FROM capped) AS total, "
    } else {
        "NULL::bigint AS total, "
    });
    if summary && facets {
        // Attribute values are counted per distinct attribute object first: products share
        // a few combinations (sizes × colours), so jsonb_each runs on those, not on every
        // match (15 ms → 5 ms for 5,000 matches). Tags are unnested in the select list and
        // prices bucketed by `width_bucket`, both cheaper than a join per row.
        qb.push(format!(
            "(WITH cat AS (SELECT category_id AS id, count(*) AS n FROM capped
                            WHERE category_id IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {FACET_VALUES}),
                   tag AS (SELECT t AS value, count(*) AS n FROM (SELECT unnest(tags) AS t FROM capped) x
                            GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {FACET_VALUES}),
                   attr AS (SELECT e.key, e.value, sum(g.n) AS n,
                                   row_number() OVER (PARTITION BY e.key ORDER BY sum(g.n) DESC, e.value) AS r,
                                   sum(sum(g.n)) OVER (PARTITION BY e.key) AS total
                              FROM (SELECT attributes, count(*) AS n FROM capped GROUP BY 1) g,
                                   jsonb_each(g.attributes) e GROUP BY 1, 2),
                   attr_keys AS (SELECT key, max(total) AS total FROM attr GROUP BY 1
                                  ORDER BY 2 DESC, 1 LIMIT {FACET_KEYS})
              SELECT jsonb_build_object(
                'categories', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                                   'id', c.id, 'slug', c.slug, 'name', c.name, 'count', cat.n)
                                   ORDER BY cat.n DESC, c.slug), '[]')
                                 FROM cat JOIN catalog.categories c ON c.id = cat.id),
                'prices', (SELECT coalesce(jsonb_agg(jsonb_build_object('min', x.lo, 'max', x.hi, 'count', x.n)
                                   ORDER BY x.lo), '[]')
                             FROM (SELECT b.lo, b.hi, w.n FROM {PRICE_BUCKETS}
                                     JOIN (SELECT width_bucket(price, {PRICE_BOUNDS}) AS i, count(*) AS n
                                             FROM capped GROUP BY 1) w ON w.i = b.i) x),
                'tags', (SELECT coalesce(jsonb_agg(jsonb_build_object('value', value, 'count', n)
                                 ORDER BY n DESC, value), '[]') FROM tag),
                'attributes', (SELECT coalesce(jsonb_agg(jsonb_build_object('key', k.key, 'values',
                                   (SELECT jsonb_agg(jsonb_build_object('value', a.value, 'count', a.n)
                                            ORDER BY a.n DESC, a.value)
                                      FROM attr a WHERE a.key = k.key AND a.r <= {FACET_VALUES}))
                                   ORDER BY k.total DESC, k.key), '[]') FROM attr_keys k))
            ) AS facets"
        ));
    } else {
        qb.push("NULL::jsonb AS facets");
    }
    qb.build_query_as::<SearchRow>()
        .fetch_one(db)
        .await?
        .decode()
}

/// What a first page keeps of each match: its id and sort keys, and what the facets count.
const MATCH_COLUMNS: &str =
    "p.id, p.category_id, coalesce(p.min_price, 0) AS price, p.tags, p.attributes";

/// The full-text test of a product against the words.
const FULL_TEXT: &str = "p.search_vector @@ (SELECT tsq FROM qry)";
/// The typo test: a title word similar enough to the words. The threshold is set (by `qry`)
/// before anything reads it: the one-time filter on `trgm` runs first.
const TRIGRAM: &str = "(SELECT trgm FROM qry) IS NOT NULL
    AND (SELECT raw FROM qry) OPERATOR(public.<%) lower(p.title)";

/// How a search's category filter is written.
#[derive(Clone, Copy)]
enum Category {
    /// The category or any of its descendants (`IN` the tree below it).
    Descendants,
    /// The one category `cats.id` of the `cats` CTE, inside a per-category `LATERAL`.
    Each,
}

/// Pushes `SELECT d.id` of the category (by id or slug) and its descendants.
fn push_descendants(qb: &mut QueryBuilder<'_, Postgres>, category: &str) {
    qb.push(
        "SELECT d.id FROM catalog.categories a
           JOIN catalog.categories d ON d.path @> ARRAY[a.id] WHERE ",
    );
    match Uuid::parse_str(category) {
        Ok(id) => qb.push("a.id = ").push_bind(id),
        Err(_) => qb.push("a.slug = ").push_bind(category.to_owned()),
    };
}

/// Pushes the keyset test `(k1[, k2], id) <cmp> (<after>)` over the given column names.
fn push_after(
    qb: &mut QueryBuilder<'_, Postgres>,
    after: SearchAfter,
    cmp: &str,
    k1: &str,
    k2: &str,
    id: &str,
) {
    match after {
        SearchAfter::Int(k, after_id) => {
            qb.push(format!("({k1}, {id}) {cmp} ("))
                .push_bind(k)
                .push(", ")
                .push_bind(after_id)
                .push(")");
        }
        SearchAfter::Rating(k, n, after_id) => {
            qb.push(format!("({k1}, {k2}, {id}) {cmp} ("))
                .push_bind(k)
                .push(", ")
                .push_bind(n)
                .push(", ")
                .push_bind(after_id)
                .push(")");
        }
        SearchAfter::Time(t, after_id) => {
            qb.push(format!("({k1}, {id}) {cmp} ("))
                .push_bind(t)
                .push(", ")
                .push_bind(after_id)
                .push(")");
        }
    }
}

/// Pushes `SELECT x.* FROM cats CROSS JOIN LATERAL (<the newest `fetch` matches of one
/// category after `after`>) x`: a category browse, newest first, as one short index range
/// per descendant category. The caller orders and limits the merge.
#[allow(clippy::too_many_arguments)]
fn push_per_category(
    qb: &mut QueryBuilder<'_, Postgres>,
    viewer: Viewer,
    s: &ProductSearch,
    columns: &str,
    k1: &str,
    k2: &str,
    after: Option<SearchAfter>,
    fetch: i64,
) {
    qb.push("SELECT x.* FROM cats CROSS JOIN LATERAL (");
    push_matching(qb, viewer, s, columns, k1, k2, None, Category::Each);
    if let Some(after) = after {
        qb.push(" AND ");
        push_after(qb, after, "<", "p.created_at", "NULL", "p.id");
    }
    qb.push(" ORDER BY p.created_at DESC, p.id DESC LIMIT ")
        .push_bind(fetch)
        .push(") x");
}

/// Pushes `SELECT <columns>, k1, k2 FROM catalog.products p WHERE <visible> AND <filters>
/// [AND <text>]`: the products of a search that the viewer may see.
#[allow(clippy::too_many_arguments)]
fn push_matching(
    qb: &mut QueryBuilder<'_, Postgres>,
    viewer: Viewer,
    s: &ProductSearch,
    columns: &str,
    k1: &str,
    k2: &str,
    text: Option<&str>,
    category: Category,
) {
    qb.push(format!(
        "SELECT {columns}, {k1} AS k1, {k2} AS k2
           FROM catalog.products p
          WHERE p.deleted_at IS NULL AND (p.status = 'active' OR p.seller_id = "
    ))
    .push_bind(viewer.id)
    .push(" OR ")
    .push_bind(viewer.staff)
    .push(")");
    if let Some(text) = text {
        qb.push(" AND ").push(text);
    }
    if let Some(seller) = s.seller_id {
        qb.push(" AND p.seller_id = ").push_bind(seller);
    }
    if let Some(status) = s.status {
        // As plain text: binding the enum makes sqlx look its type up on every new
        // connection (a second round trip, seen in the statement count).
        qb.push(" AND p.status = ").push_bind(status.as_str());
    }
    if let Some(featured) = s.featured {
        qb.push(" AND p.featured = ").push_bind(featured);
    }
    match (&s.category, category) {
        (None, _) => {}
        (Some(c), Category::Descendants) => {
            qb.push(" AND p.category_id IN (");
            push_descendants(qb, c);
            qb.push(")");
        }
        (Some(_), Category::Each) => {
            qb.push(" AND p.category_id = cats.id");
        }
    }
    if let Some(min) = s.min_price {
        qb.push(" AND coalesce(p.min_price, 0) >= ").push_bind(min);
    }
    if let Some(max) = s.max_price {
        qb.push(" AND coalesce(p.min_price, 0) <= ").push_bind(max);
    }
    if !s.tags.is_empty() {
        qb.push(" AND p.tags @> ").push_bind(s.tags.clone());
    }
    for candidates in &s.attributes {
        qb.push(" AND p.attributes @> ANY(")
            .push_bind(candidates.clone())
            .push("::jsonb[])");
    }
    if let Some(stars) = s.rating_min {
        qb.push(" AND p.rating_count > 0 AND p.rating_sum >= ")
            .push_bind(stars)
            .push("::bigint * p.rating_count");
    }
    if let Some(in_stock) = s.in_stock {
        qb.push(if in_stock { " AND " } else { " AND NOT " }).push(
            "EXISTS (SELECT 1 FROM catalog.variants v JOIN catalog.stock st ON st.variant_id = v.id
                      WHERE v.product_id = p.id AND v.deleted_at IS NULL
                        AND (NOT v.track_inventory OR v.allow_backorder OR st.on_hand - st.reserved > 0))",
        );
    }
}

/// Adds `quantity` units sold to a product's popularity, on the caller's connection.
pub async fn add_sales(
    conn: &mut PgConnection,
    product: ProductId,
    quantity: i64,
) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("UPDATE catalog.products SET sales_count = sales_count + $2 WHERE id = $1")
            .bind(product)
            .bind(quantity)
            .execute(conn)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// Locks a product like [`lock_product`], with how many live variants it has.
pub async fn lock_product_counting(
    conn: &mut PgConnection,
    id: ProductId,
    actor: Option<Uuid>,
    any: bool,
) -> Result<Option<(ProductRow, i64)>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Counted {
        #[sqlx(flatten)]
        product: ProductRow,
        variant_count: i64,
    }
    let row: Option<Counted> = sqlx::query_as(&format!(
        "SELECT {PRODUCT},
                (SELECT count(*) FROM catalog.variants v
                  WHERE v.product_id = p.id AND v.deleted_at IS NULL) AS variant_count
           FROM catalog.products p
          WHERE p.id = $1 AND p.deleted_at IS NULL AND (p.seller_id = $2 OR $3)
          FOR UPDATE OF p"
    ))
    .bind(id)
    .bind(actor)
    .bind(any)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|c| (c.product, c.variant_count)))
}

/// Locks a product (the actor's own, or any with `any`) and reads one of its live variants
/// and how many live variants it has, in one statement.
pub async fn lock_variant(
    conn: &mut PgConnection,
    product: ProductId,
    variant: VariantId,
    actor: Option<Uuid>,
    any: bool,
) -> Result<Option<(ProductRow, VariantRow, i64)>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Locked {
        #[sqlx(flatten)]
        product: ProductRow,
        variant: Json<VariantRow>,
        variant_count: i64,
    }
    let row: Option<Locked> = sqlx::query_as(&format!(
        "SELECT {PRODUCT}, {VARIANT_JSON} AS variant,
                (SELECT count(*) FROM catalog.variants o
                  WHERE o.product_id = p.id AND o.deleted_at IS NULL) AS variant_count
           FROM catalog.products p
           JOIN catalog.variants v ON v.product_id = p.id AND v.id = $2 AND v.deleted_at IS NULL
           JOIN catalog.stock s ON s.variant_id = v.id
          WHERE p.id = $1 AND p.deleted_at IS NULL AND (p.seller_id = $3 OR $4)
          FOR UPDATE OF p"
    ))
    .bind(product)
    .bind(variant)
    .bind(actor)
    .bind(any)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|l| (l.product, l.variant.0, l.variant_count)))
}

/// Inserts a new product's variants and their stock, and sets its price range, in one
/// statement; returns the product with them.
pub async fn insert_variants(
    conn: &mut PgConnection,
    product: ProductId,
    variants: &[VariantFields],
    actor: &str,
) -> Result<ProductDetail, sqlx::Error> {
    let ids: Vec<Uuid> = variants.iter().map(|_| VariantId::new().0).collect();
    sqlx::query_as(&format!(
        "WITH v AS (
             INSERT INTO catalog.variants (id, product_id, sku, title, options, price, compare_at_price,
                                           weight_grams, track_inventory, allow_backorder)
             SELECT x.id, $1, x.sku, x.title, x.options, x.price, x.cap, x.w, x.t, x.b
               FROM UNNEST($2::uuid[], $3::text[], $4::text[], $5::jsonb[], $6::bigint[], $7::bigint[],
                           $8::int[], $9::bool[], $10::bool[]) AS x(id, sku, title, options, price, cap, w, t, b)
             RETURNING *
         ), s AS (
             INSERT INTO catalog.stock (variant_id, on_hand) SELECT * FROM UNNEST($2::uuid[], $11::int[])
             RETURNING *
         ), m AS (
             INSERT INTO catalog.stock_movements (variant_id, kind, on_hand_delta, reason, actor)
             SELECT variant_id, 'adjusted', on_hand, 'opening stock', $12 FROM s WHERE on_hand <> 0
         ), p AS (
             UPDATE catalog.products p
                SET min_price = (SELECT min(price) FROM v), max_price = (SELECT max(price) FROM v)
              WHERE p.id = $1
             RETURNING {PRODUCT}
         )
         SELECT p.*, (SELECT coalesce(jsonb_agg({VARIANT_JSON} ORDER BY v.id), '[]')
                        FROM v JOIN s ON s.variant_id = v.id) AS variants
           FROM p"
    ))
    .bind(product)
    .bind(&ids)
    .bind(variants.iter().map(|v| v.sku.clone()).collect::<Vec<_>>())
    .bind(variants.iter().map(|v| v.title.clone()).collect::<Vec<_>>())
    .bind(
        variants
            .iter()
            .map(|v| serde_json::to_value(&v.options).unwrap_or_default())
            .collect::<Vec<_>>(),
    )
    .bind(variants.iter().map(|v| v.price).collect::<Vec<_>>())
    .bind(variants.iter().map(|v| v.compare_at_price).collect::<Vec<_>>())
    .bind(variants.iter().map(|v| v.weight_grams).collect::<Vec<_>>())
    .bind(variants.iter().map(|v| v.track_inventory).collect::<Vec<_>>())
    .bind(variants.iter().map(|v| v.allow_backorder).collect::<Vec<_>>())
    .bind(variants.iter().map(|v| v.on_hand).collect::<Vec<_>>())
    .bind(actor)
    .fetch_one(conn)
    .await
}

/// Adds a variant with its stock to a locked product and widens the product's price range,
/// in one statement; returns both.
pub async fn insert_variant(
    conn: &mut PgConnection,
    product: ProductId,
    f: &VariantFields,
    actor: &str,
) -> Result<(VariantRow, ProductRow), sqlx::Error> {
    let (v, p): (Json<VariantRow>, Json<ProductRow>) = sqlx::query_as(&format!(
        "WITH v AS (
             INSERT INTO catalog.variants (id, product_id, sku, title, options, price, compare_at_price,
                                           weight_grams, track_inventory, allow_backorder)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             RETURNING *
         ), s AS (
             INSERT INTO catalog.stock (variant_id, on_hand) SELECT id, $11 FROM v RETURNING *
         ), m AS (
             INSERT INTO catalog.stock_movements (variant_id, kind, on_hand_delta, reason, actor)
             SELECT variant_id, 'adjusted', on_hand, 'opening stock', $12 FROM s WHERE on_hand <> 0
         ), p AS (
             UPDATE catalog.products p
                SET min_price = least(p.min_price, v.price), max_price = greatest(p.max_price, v.price),
                    updated_at = now()
               FROM v WHERE p.id = v.product_id
             RETURNING {PRODUCT}
         )
         SELECT {VARIANT_JSON}, to_jsonb(p) FROM v, s, p"
    ))
    .bind(VariantId::new())
    .bind(product)
    .bind(&f.sku)
    .bind(&f.title)
    .bind(Json(&f.options))
    .bind(f.price)
    .bind(f.compare_at_price)
    .bind(f.weight_grams)
    .bind(f.track_inventory)
    .bind(f.allow_backorder)
    .bind(f.on_hand)
    .bind(actor)
    .fetch_one(conn)
    .await?;
    Ok((v.0, p.0))
}

/// The product's price range once variant `variant` has become what `v` (a CTE of zero or
/// one variant row, live or deleted) holds: over the other live variants and `v` if live.
fn range_with(variant_param: &str) -> String {
    format!(
        "(SELECT {{agg}}(x) FROM (
              SELECT o.price AS x FROM catalog.variants o
               WHERE o.product_id = p.id AND o.deleted_at IS NULL AND o.id <> {variant_param}
              UNION ALL SELECT v.price FROM v WHERE v.deleted_at IS NULL) r)"
    )
}

/// Stores a locked product's variant and recomputes the product's price range, in one
/// statement; returns both. Its siblings are not touched.
pub async fn update_variant(
    conn: &mut PgConnection,
    product: ProductId,
    variant: VariantId,
    f: &VariantFields,
) -> Result<(VariantRow, ProductRow), sqlx::Error> {
    let range = range_with("$2");
    let (v, p): (Json<VariantRow>, Json<ProductRow>) = sqlx::query_as(&format!(
        "WITH v AS (
             UPDATE catalog.variants
                SET sku = $3, title = $4, options = $5, price = $6, compare_at_price = $7,
                    weight_grams = $8, track_inventory = $9, allow_backorder = $10, updated_at = now()
              WHERE id = $2 AND product_id = $1
             RETURNING *
         ), p AS (
             UPDATE catalog.products p SET min_price = {}, max_price = {}, updated_at = now()
              WHERE p.id = $1
             RETURNING {PRODUCT}
         )
         SELECT {VARIANT_JSON}, to_jsonb(p) FROM v JOIN catalog.stock s ON s.variant_id = v.id, p",
        range.replace("{agg}", "min"),
        range.replace("{agg}", "max"),
    ))
    .bind(product)
    .bind(variant)
    .bind(&f.sku)
    .bind(&f.title)
    .bind(Json(&f.options))
    .bind(f.price)
    .bind(f.compare_at_price)
    .bind(f.weight_grams)
    .bind(f.track_inventory)
    .bind(f.allow_backorder)
    .fetch_one(conn)
    .await?;
    Ok((v.0, p.0))
}

/// Deletes a locked product's variant (its row stays for orders; its SKU is free again)
/// and narrows the product's price range, in one statement; returns the product.
pub async fn delete_variant(
    conn: &mut PgConnection,
    product: ProductId,
    variant: VariantId,
) -> Result<ProductRow, sqlx::Error> {
    let range = range_with("$2");
    sqlx::query_as(&format!(
        "WITH v AS (
             UPDATE catalog.variants SET deleted_at = now(), updated_at = now()
              WHERE id = $2 AND product_id = $1
             RETURNING *
         )
         UPDATE catalog.products p SET min_price = {}, max_price = {}, updated_at = now()
          WHERE p.id = $1
         RETURNING {PRODUCT}",
        range.replace("{agg}", "min"),
        range.replace("{agg}", "max"),
    ))
    .bind(product)
    .bind(variant)
    .fetch_one(conn)
    .await
}

/// A variant of a list, with its product's seller (who sees its stock counts).
#[derive(Debug, sqlx::FromRow)]
pub struct ListedVariant {
    pub variant: Json<VariantRow>,
    pub seller_id: Uuid,
}

/// Up to `fetch` live variants of a product the viewer may see, oldest first, after `after`.
pub async fn list_variants(
    db: &PgPool,
    product: ProductId,
    viewer: Viewer,
    after: Option<VariantId>,
    fetch: i64,
) -> Result<Vec<ListedVariant>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {VARIANT_JSON} AS variant, p.seller_id
           FROM catalog.products p
           JOIN catalog.variants v ON v.product_id = p.id AND v.deleted_at IS NULL
           JOIN catalog.stock s ON s.variant_id = v.id
          WHERE p.id = $1 AND p.deleted_at IS NULL
            AND (p.status = 'active' OR p.seller_id = $2 OR $3)
            AND ($4::uuid IS NULL OR v.id > $4)
          ORDER BY v.id
          LIMIT $5"
    ))
    .bind(product)
    .bind(viewer.id)
    .bind(viewer.staff)
    .bind(after)
    .bind(fetch)
    .fetch_all(db)
    .await
}

/// A variant's stock after a change, with what a `catalog.stock.low` event and the access
/// rules need.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StockRow {
    pub variant_id: VariantId,
    pub product_id: ProductId,
    pub seller_id: Uuid,
    pub sku: Option<String>,
    pub on_hand: i32,
    pub reserved: i32,
    pub track_inventory: bool,
    pub allow_backorder: bool,
    pub low_stock_threshold: i32,
}

/// A hold, as reservation statements return it with the stock they left.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HoldRow {
    pub id: Uuid,
    pub holder: String,
    pub quantity: i32,
    pub expires_at: DateTime<Utc>,
    #[sqlx(flatten)]
    pub stock: StockRow,
}

/// The stock columns of `st` (catalog.stock), `v` (its variant) and `p` (its product).
const STOCK: &str = "st.variant_id, v.product_id, p.seller_id, v.sku, st.on_hand, st.reserved,
    v.track_inventory, v.allow_backorder, v.low_stock_threshold";

/// A variant's stock, if it is live and the actor's (or any, for staff).
pub async fn stock(
    db: &PgPool,
    variant: VariantId,
    actor: Option<Uuid>,
    any: bool,
) -> Result<Option<StockRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {STOCK}
           FROM catalog.stock st
           JOIN catalog.variants v ON v.id = st.variant_id AND v.deleted_at IS NULL
           JOIN catalog.products p ON p.id = v.product_id AND p.deleted_at IS NULL
          WHERE st.variant_id = $1 AND (p.seller_id = $2 OR $3)"
    ))
    .bind(variant)
    .bind(actor)
    .bind(any)
    .fetch_optional(db)
    .await
}

/// Moves `on_hand` by `delta` and records why, in one statement, unless that would leave
/// it below zero (or past the column's range). `None` when refused or not the actor's.
pub async fn adjust_stock(
    conn: &mut PgConnection,
    variant: VariantId,
    delta: i32,
    reason: &str,
    actor: &str,
    owner: (Option<Uuid>, bool),
) -> Result<Option<StockRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "WITH st AS (
             UPDATE catalog.stock st SET on_hand = st.on_hand + $2, updated_at = now()
               FROM catalog.variants v JOIN catalog.products p ON p.id = v.product_id
              WHERE st.variant_id = $1 AND v.id = st.variant_id AND v.deleted_at IS NULL
                AND p.deleted_at IS NULL AND (p.seller_id = $5 OR $6)
                AND st.on_hand::bigint + $2 BETWEEN 0 AND 2147483647
             RETURNING {STOCK}
         ), m AS (
             INSERT INTO catalog.stock_movements (variant_id, kind, on_hand_delta, reason, actor)
             SELECT variant_id, 'adjusted', $2, $3, $4 FROM st
         )
         SELECT * FROM st"
    ))
    .bind(variant)
    .bind(delta)
    .bind(reason)
    .bind(actor)
    .bind(owner.0)
    .bind(owner.1)
    .fetch_optional(conn)
    .await
}

/// Reserves `quantity` of a variant on sale for `holder` until `ttl_secs` from now: ONE
/// conditional UPDATE (`on_hand - reserved >= quantity` unless untracked or backordered),
/// which PostgreSQL re-checks on the latest row version when concurrent reservations race,
/// with the hold and its movement written by the same statement. `None`: not enough stock
/// (or no such variant on sale).
pub async fn reserve(
    conn: &mut PgConnection,
    variant: Uuid,
    quantity: i32,
    holder: &str,
    ttl_secs: i64,
    actor: &str,
) -> Result<Option<HoldRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "WITH st AS (
             UPDATE catalog.stock st SET reserved = st.reserved + $2, updated_at = now()
               FROM catalog.variants v JOIN catalog.products p ON p.id = v.product_id
              WHERE st.variant_id = $1 AND v.id = st.variant_id AND v.deleted_at IS NULL
                AND p.deleted_at IS NULL AND p.status = 'active'
                AND st.reserved::bigint + $2 <= 2147483647
                AND (NOT v.track_inventory OR v.allow_backorder OR st.on_hand - st.reserved >= $2)
             RETURNING {STOCK}
         ), r AS (
             INSERT INTO catalog.reservations (id, variant_id, holder, quantity, expires_at)
             SELECT $3, variant_id, $4, $2, now() + make_interval(secs => $5) FROM st
             RETURNING *
         ), m AS (
             INSERT INTO catalog.stock_movements (variant_id, kind, reserved_delta, reservation_id, actor)
             SELECT variant_id, 'reserved', quantity, id, $6 FROM r
         )
         SELECT r.id, r.holder, r.quantity, r.expires_at, st.* FROM r, st"
    ))
    .bind(variant)
    .bind(quantity)
    .bind(Uuid::now_v7())
    .bind(holder)
    .bind(ttl_secs as f64)
    .bind(actor)
    .fetch_optional(conn)
    .await
}

/// What a variant on sale has available, when a reservation was refused (`None`: no such
/// variant on sale).
pub async fn available(conn: &mut PgConnection, variant: Uuid) -> Result<Option<i32>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT st.on_hand - st.reserved
           FROM catalog.stock st
           JOIN catalog.variants v ON v.id = st.variant_id AND v.deleted_at IS NULL
           JOIN catalog.products p ON p.id = v.product_id AND p.deleted_at IS NULL AND p.status = 'active'
          WHERE st.variant_id = $1",
    )
    .bind(variant)
    .fetch_optional(conn)
    .await
}

/// Ends an unexpired hold in one statement: `commit` takes it out of `on_hand` too (sold),
/// otherwise it goes back to available. `None` for a hold that is gone or expired.
pub async fn end_hold(
    conn: &mut PgConnection,
    id: Uuid,
    commit: bool,
    actor: &str,
) -> Result<Option<HoldRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "WITH r AS (
             DELETE FROM catalog.reservations WHERE id = $1 AND expires_at > now() RETURNING *
         ), st AS (
             UPDATE catalog.stock st
                SET reserved = st.reserved - r.quantity,
                    on_hand = st.on_hand - CASE WHEN $2 THEN r.quantity ELSE 0 END, updated_at = now()
               FROM r, catalog.variants v JOIN catalog.products p ON p.id = v.product_id
              WHERE st.variant_id = r.variant_id AND v.id = st.variant_id
             RETURNING {STOCK}
         ), m AS (
             INSERT INTO catalog.stock_movements (variant_id, kind, on_hand_delta, reserved_delta, reservation_id, actor)
             SELECT variant_id, CASE WHEN $2 THEN 'committed' ELSE 'released' END,
                    CASE WHEN $2 THEN -quantity ELSE 0 END, -quantity, id, $3
               FROM r
         )
         SELECT r.id, r.holder, r.quantity, r.expires_at, st.* FROM r, st"
    ))
    .bind(id)
    .bind(commit)
    .bind(actor)
    .fetch_optional(conn)
    .await
}

/// Releases up to 1000 expired holds in one statement (skipping holds a commit or release
/// has locked); returns how many.
pub async fn sweep_expired(db: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "WITH r AS (
             DELETE FROM catalog.reservations
              WHERE id IN (SELECT id FROM catalog.reservations WHERE expires_at <= now()
                            ORDER BY expires_at LIMIT 1000 FOR UPDATE SKIP LOCKED)
             RETURNING *
         ), t AS (
             SELECT variant_id, sum(quantity)::integer AS q FROM r GROUP BY variant_id
         ), st AS (
             UPDATE catalog.stock st SET reserved = st.reserved - t.q, updated_at = now()
               FROM t WHERE st.variant_id = t.variant_id
         ), m AS (
             INSERT INTO catalog.stock_movements (variant_id, kind, reserved_delta, reservation_id, actor)
             SELECT variant_id, 'expired', -quantity, id, 'system' FROM r
         )
         SELECT count(*) FROM r",
    )
    .fetch_one(db)
    .await
}

#[derive(Debug, sqlx::FromRow)]
pub struct MovementRow {
    pub id: i64,
    pub kind: String,
    pub on_hand_delta: i32,
    pub reserved_delta: i32,
    pub reason: Option<String>,
    pub reservation_id: Option<Uuid>,
    pub actor: String,
    pub created_at: DateTime<Utc>,
}

/// Up to `fetch` of a variant's stock movements, newest first, before the id given.
pub async fn movements(
    db: &PgPool,
    variant: VariantId,
    before: Option<i64>,
    fetch: i64,
) -> Result<Vec<MovementRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, kind, on_hand_delta, reserved_delta, reason, reservation_id, actor, created_at
           FROM catalog.stock_movements
          WHERE variant_id = $1 AND ($2::bigint IS NULL OR id < $2)
          ORDER BY id DESC LIMIT $3",
    )
    .bind(variant)
    .bind(before)
    .bind(fetch)
    .fetch_all(db)
    .await
}

// ---- Categories ----------------------------------------------------------------------

#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct CategoryRow {
    pub id: Uuid,
    pub parent_id: Option<Uuid>,
    pub name: String,
    pub slug: String,
    pub position: i32,
    pub path: Vec<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const CATEGORY: &str = "id, parent_id, name, slug, position, path, created_at, updated_at";

/// Tree writes that read a path (insert under a parent, move a subtree) hold this lock:
/// shared to insert, exclusive to move, so two moves cannot cross into a loop and no child
/// is inserted with a path a concurrent move is rewriting.
const TREE_LOCK: &str = "SELECT pg_advisory_xact_lock%s(hashtext('catalog.categories'))";

async fn lock_tree(conn: &mut PgConnection, exclusive: bool) -> Result<(), sqlx::Error> {
    let sql = TREE_LOCK.replace("%s", if exclusive { "" } else { "_shared" });
    sqlx::query(&sql).execute(conn).await.map(|_| ())
}

/// One category by id or by slug.
pub async fn category(
    db: &PgPool,
    id: Option<Uuid>,
    slug: &str,
) -> Result<Option<CategoryRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {CATEGORY} FROM catalog.categories WHERE id = $1 OR ($1 IS NULL AND slug = $2)"
    ))
    .bind(id)
    .bind(slug)
    .fetch_optional(db)
    .await
}

/// The children of `parent` (the roots without one), by position then id, after the cursor.
pub async fn list_categories(
    db: &PgPool,
    parent: Option<Uuid>,
    after: Option<(i32, Uuid)>,
    fetch: i64,
) -> Result<Vec<CategoryRow>, sqlx::Error> {
    let (position, id) = after.unzip();
    sqlx::query_as(&format!(
        "SELECT {CATEGORY} FROM catalog.categories
          WHERE parent_id IS NOT DISTINCT FROM $1
            AND ($2::integer IS NULL OR (position, id) > ($2, $3))
          ORDER BY position, id
          LIMIT $4"
    ))
    .bind(parent)
    .bind(position)
    .bind(id)
    .bind(fetch)
    .fetch_all(db)
    .await
}

/// Inserts a category under `parent` (a root without one); `None` when the parent does not
/// exist.
pub async fn insert_category(
    conn: &mut PgConnection,
    id: Uuid,
    parent: Option<Uuid>,
    name: &str,
    slug: &str,
    position: i32,
) -> Result<Option<CategoryRow>, sqlx::Error> {
    lock_tree(conn, false).await?;
    sqlx::query_as(&format!(
        "INSERT INTO catalog.categories (id, parent_id, name, slug, position, path)
         SELECT $1, $2, $3, $4, $5, coalesce(pp.path, '{{}}') || $1
           FROM (SELECT NULL) one
           LEFT JOIN catalog.categories pp ON pp.id = $2
          WHERE $2::uuid IS NULL OR pp.id IS NOT NULL
         RETURNING {CATEGORY}"
    ))
    .bind(id)
    .bind(parent)
    .bind(name)
    .bind(slug)
    .bind(position)
    .fetch_optional(conn)
    .await
}

/// Renames or reorders a category (not a move: see `move_category`); returns it before and
/// after (the old row is locked by the statement, so "before" is what this change replaced).
pub async fn update_category(
    conn: &mut PgConnection,
    id: Uuid,
    name: Option<&str>,
    slug: Option<&str>,
    position: Option<i32>,
) -> Result<Option<(CategoryRow, CategoryRow)>, sqlx::Error> {
    let row: Option<(Json<CategoryRow>, Json<CategoryRow>)> = sqlx::query_as(
        "WITH old AS (SELECT * FROM catalog.categories WHERE id = $1 FOR UPDATE),
              c AS (
                  UPDATE catalog.categories c
                     SET name = coalesce($2, c.name), slug = coalesce($3, c.slug),
                         position = coalesce($4, c.position), updated_at = now()
                    FROM old WHERE c.id = old.id
                  RETURNING c.*)
         SELECT to_jsonb(old), to_jsonb(c) FROM old, c",
    )
    .bind(id)
    .bind(name)
    .bind(slug)
    .bind(position)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(old, new)| (old.0, new.0)))
}

/// A category after a move, with the parent it had.
#[derive(Debug, sqlx::FromRow)]
pub struct MovedCategory {
    #[sqlx(flatten)]
    pub category: CategoryRow,
    pub old_parent_id: Option<Uuid>,
}

/// Moves category `id` and its whole subtree under `parent` (to the roots without one) in
/// one UPDATE of every path that goes through it. `None` when the category or the parent
/// does not exist, or the parent is the category or one of its descendants (a loop):
/// nothing is changed then.
pub async fn move_category(
    conn: &mut PgConnection,
    id: Uuid,
    parent: Option<Uuid>,
    position: Option<i32>,
) -> Result<Option<MovedCategory>, sqlx::Error> {
    lock_tree(conn, true).await?;
    sqlx::query_as(
        "WITH m AS (SELECT id, path, parent_id FROM catalog.categories WHERE id = $1),
              np AS (SELECT coalesce(pp.path, '{}') AS path
                       FROM (SELECT NULL) one
                       LEFT JOIN catalog.categories pp ON pp.id = $2
                      WHERE $2::uuid IS NULL OR pp.id IS NOT NULL),
              moved AS (
                  UPDATE catalog.categories c
                     SET path = np.path || c.path[array_length(m.path, 1):],
                         parent_id = CASE WHEN c.id = m.id THEN $2 ELSE c.parent_id END,
                         position = CASE WHEN c.id = m.id THEN coalesce($3, c.position)
                                         ELSE c.position END,
                         updated_at = now()
                    FROM m, np
                   WHERE c.path @> ARRAY[m.id] AND NOT (m.id = ANY(np.path))
                  RETURNING c.*)
         SELECT moved.*, m.parent_id AS old_parent_id FROM moved, m WHERE moved.id = $1",
    )
    .bind(id)
    .bind(parent)
    .bind(position)
    .fetch_optional(conn)
    .await
}

/// A deleted category, and the live products that moved out of it.
#[derive(Debug, sqlx::FromRow)]
pub struct DeletedCategory {
    #[sqlx(flatten)]
    pub category: CategoryRow,
    pub moved: Json<Vec<ProductRow>>,
}

/// Deletes a leaf category; its products move to `move_to` in the same statement (without
/// it, a category with live products fails on `products_category_id_fkey`; deleted products
/// let go of it). Returns the category and the live products moved. `None` when there is no
/// such category.
pub async fn delete_category(
    conn: &mut PgConnection,
    id: Uuid,
    move_to: Option<Uuid>,
) -> Result<Option<DeletedCategory>, sqlx::Error> {
    sqlx::query_as(&format!(
        "WITH moved AS (
             UPDATE catalog.products p
                SET category_id = CASE WHEN deleted_at IS NULL THEN $2 END,
                    updated_at = CASE WHEN deleted_at IS NULL THEN now() ELSE updated_at END
              WHERE category_id = $1 AND ($2::uuid IS NOT NULL OR deleted_at IS NOT NULL)
             RETURNING {PRODUCT}, p.deleted_at)
         DELETE FROM catalog.categories WHERE id = $1
         RETURNING {CATEGORY},
                   (SELECT coalesce(jsonb_agg(to_jsonb(moved) ORDER BY moved.id), '[]')
                      FROM moved WHERE deleted_at IS NULL) AS moved"
    ))
    .bind(id)
    .bind(move_to)
    .fetch_optional(conn)
    .await
}

// ---- Reviews -------------------------------------------------------------------------
//
// Every statement that changes which published ratings a product has also moves the
// product's `rating_count` and `rating_sum` by the review's own rating, in the same
// statement (a data-modifying CTE): `rating_count = rating_count + 1` is re-evaluated on
// the latest row version when reviews race, so the counters stay exact with no read first.

#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct ReviewRow {
    pub id: ReviewId,
    pub product_id: ProductId,
    pub user_id: Uuid,
    pub rating: i16,
    pub title: String,
    pub body: String,
    pub status: ReviewStatus,
    pub verified_purchase: bool,
    pub helpful_count: i32,
    pub reply_body: Option<String>,
    pub replied_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A new review with the product's seller (for its event).
#[derive(Debug, sqlx::FromRow)]
pub struct CreatedReview {
    #[sqlx(flatten)]
    pub review: ReviewRow,
    pub seller_id: Uuid,
}

/// Inserts `user`'s review of an active product that is not theirs, verified when catalog
/// knows they bought it, and counts a published one in the product's rating, in one
/// statement. `None`: no such active product, or the author sells it. A second review by
/// the same user fails on `reviews_product_user_key`.
pub async fn insert_review(
    conn: &mut PgConnection,
    product: ProductId,
    user: Uuid,
    rating: i16,
    title: &str,
    body: &str,
    status: ReviewStatus,
) -> Result<Option<CreatedReview>, sqlx::Error> {
    sqlx::query_as(
        "WITH r AS (
             INSERT INTO catalog.reviews (id, product_id, user_id, rating, title, body, status, verified_purchase)
             SELECT $1, p.id, $3, $4, $5, $6, $7,
                    EXISTS (SELECT 1 FROM catalog.purchases b WHERE b.user_id = $3 AND b.product_id = p.id)
               FROM catalog.products p
              WHERE p.id = $2 AND p.status = 'active' AND p.deleted_at IS NULL AND p.seller_id <> $3
             RETURNING *
         ), p AS (
             UPDATE catalog.products p
                SET rating_count = p.rating_count + 1, rating_sum = p.rating_sum + r.rating
               FROM r WHERE p.id = r.product_id AND r.status = 'published'
         )
         SELECT r.*, (SELECT seller_id FROM catalog.products WHERE id = $2) AS seller_id FROM r",
    )
    .bind(ReviewId::new())
    .bind(product)
    .bind(user)
    .bind(rating)
    .bind(title)
    .bind(body)
    .bind(status.as_str())
    .fetch_optional(conn)
    .await
}

/// The seller of an active product, when a review was refused (to tell "yours" from "none").
pub async fn seller_of(
    conn: &mut PgConnection,
    product: ProductId,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT seller_id FROM catalog.products
          WHERE id = $1 AND status = 'active' AND deleted_at IS NULL",
    )
    .bind(product)
    .fetch_optional(conn)
    .await
}

/// Changes `user`'s own review of a live product and moves the product's rating by the
/// difference, in one statement: the old row is locked by the statement itself, so the
/// difference is the one this change makes. With `hold`, the review goes (back) to
/// `pending`. `None`: no such review of theirs.
pub async fn update_review(
    conn: &mut PgConnection,
    product: ProductId,
    review: ReviewId,
    user: Uuid,
    fields: (Option<i16>, Option<&str>, Option<&str>),
    hold: bool,
) -> Result<Option<ReviewRow>, sqlx::Error> {
    let (rating, title, body) = fields;
    sqlx::query_as(
        "WITH old AS (
             SELECT r.id, r.rating, r.status FROM catalog.reviews r
              WHERE r.id = $1 AND r.product_id = $2 AND r.user_id = $3
                AND EXISTS (SELECT 1 FROM catalog.products p WHERE p.id = $2 AND p.deleted_at IS NULL)
              FOR UPDATE
         ), r AS (
             UPDATE catalog.reviews r
                SET rating = coalesce($4, r.rating), title = coalesce($5, r.title),
                    body = coalesce($6, r.body),
                    status = CASE WHEN $7 THEN 'pending' ELSE r.status END, updated_at = now()
               FROM old WHERE r.id = old.id
             RETURNING r.*
         ), p AS (
             UPDATE catalog.products p
                SET rating_count = p.rating_count + (r.status = 'published')::int
                                                  - (old.status = 'published')::int,
                    rating_sum = p.rating_sum + CASE WHEN r.status = 'published' THEN r.rating ELSE 0 END
                                              - CASE WHEN old.status = 'published' THEN old.rating ELSE 0 END
               FROM r, old
              WHERE p.id = r.product_id AND (r.status <> old.status OR r.rating <> old.rating)
         )
         SELECT * FROM r",
    )
    .bind(review)
    .bind(product)
    .bind(user)
    .bind(rating)
    .bind(title)
    .bind(body)
    .bind(hold)
    .fetch_optional(conn)
    .await
}

/// Deletes a review (its author's, or any with `any`) and takes a published one out of the
/// product's rating, in one statement. `None`: no such review for this actor.
pub async fn delete_review(
    conn: &mut PgConnection,
    product: ProductId,
    review: ReviewId,
    actor: Option<Uuid>,
    any: bool,
) -> Result<Option<ReviewRow>, sqlx::Error> {
    sqlx::query_as(
        "WITH r AS (
             DELETE FROM catalog.reviews r
              WHERE r.id = $1 AND r.product_id = $2 AND (r.user_id = $3 OR $4)
             RETURNING r.*
         ), p AS (
             UPDATE catalog.products p
                SET rating_count = p.rating_count - 1, rating_sum = p.rating_sum - r.rating
               FROM r WHERE p.id = r.product_id AND r.status = 'published'
         )
         SELECT * FROM r",
    )
    .bind(review)
    .bind(product)
    .bind(actor)
    .bind(any)
    .fetch_optional(conn)
    .await
}

/// Publishes a pending review and counts it in the product's rating, in one statement.
/// `None`: no such pending review.
pub async fn approve_review(
    conn: &mut PgConnection,
    product: ProductId,
    review: ReviewId,
) -> Result<Option<ReviewRow>, sqlx::Error> {
    sqlx::query_as(
        "WITH r AS (
             UPDATE catalog.reviews SET status = 'published', updated_at = now()
              WHERE id = $1 AND product_id = $2 AND status = 'pending'
             RETURNING *
         ), p AS (
             UPDATE catalog.products p
                SET rating_count = p.rating_count + 1, rating_sum = p.rating_sum + r.rating
               FROM r WHERE p.id = r.product_id
         )
         SELECT * FROM r",
    )
    .bind(review)
    .bind(product)
    .fetch_optional(conn)
    .await
}

/// One review as a moderator sees it (any status).
pub async fn review(
    conn: &mut PgConnection,
    product: ProductId,
    review: ReviewId,
) -> Result<Option<ReviewRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM catalog.reviews WHERE id = $1 AND product_id = $2")
        .bind(review)
        .bind(product)
        .fetch_optional(conn)
        .await
}

/// Sets (or with `None` removes) the seller's reply to a published review of their live
/// product. `None`: no such review of a product of `seller`.
pub async fn set_reply(
    conn: &mut PgConnection,
    product: ProductId,
    review: ReviewId,
    seller: Option<Uuid>,
    body: Option<&str>,
) -> Result<Option<ReviewRow>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE catalog.reviews r
            SET reply_body = $4, replied_at = CASE WHEN $4::text IS NULL THEN NULL ELSE now() END
           FROM catalog.products p
          WHERE r.id = $1 AND r.product_id = $2 AND r.status = 'published'
            AND p.id = r.product_id AND p.deleted_at IS NULL AND p.seller_id = $3
         RETURNING r.*",
    )
    .bind(review)
    .bind(product)
    .bind(seller)
    .bind(body)
    .fetch_optional(conn)
    .await
}

/// A review's helpful votes after a vote, and its author (a vote on one's own review is
/// not counted).
#[derive(Debug, sqlx::FromRow)]
pub struct Votes {
    pub author_id: Uuid,
    pub helpful_count: i32,
    pub voted: bool,
}

/// Adds (`up`) or withdraws `user`'s helpful vote on a published review of an active
/// product, and moves its count by what changed, in one statement: the vote's primary key
/// makes a repeat a no-op, so the count stays exact however often or concurrently anyone
/// votes. `None`: no such review on sale.
pub async fn vote(
    conn: &mut PgConnection,
    product: ProductId,
    review: ReviewId,
    user: Uuid,
    up: bool,
) -> Result<Option<Votes>, sqlx::Error> {
    let change = if up {
        "INSERT INTO catalog.review_votes (review_id, user_id)
         SELECT id, $3 FROM t WHERE t.author_id <> $3
         ON CONFLICT DO NOTHING RETURNING review_id"
    } else {
        "DELETE FROM catalog.review_votes WHERE review_id = (SELECT id FROM t) AND user_id = $3
         RETURNING review_id"
    };
    let delta = if up { "+ 1" } else { "- 1" };
    sqlx::query_as(&format!(
        "WITH t AS (
             SELECT r.id, r.user_id AS author_id, r.helpful_count
               FROM catalog.reviews r JOIN catalog.products p ON p.id = r.product_id
              WHERE r.id = $1 AND r.product_id = $2 AND r.status = 'published'
                AND p.status = 'active' AND p.deleted_at IS NULL
         ), v AS ({change}
         ), u AS (
             UPDATE catalog.reviews r SET helpful_count = r.helpful_count {delta}
               FROM v WHERE r.id = v.review_id
             RETURNING r.helpful_count
         )
         SELECT t.author_id, coalesce((SELECT helpful_count FROM u), t.helpful_count) AS helpful_count,
                CASE WHEN $4 THEN EXISTS (SELECT 1 FROM v)
                                  OR EXISTS (SELECT 1 FROM catalog.review_votes
                                              WHERE review_id = $1 AND user_id = $3)
                     ELSE false END AS voted
           FROM t"
    ))
    .bind(review)
    .bind(product)
    .bind(user)
    .bind(up)
    .fetch_optional(conn)
    .await
}

/// A page of a product's reviews, or nothing at all when the viewer may not see the product.
#[derive(Debug, sqlx::FromRow)]
pub struct ListedReview {
    pub review: Option<Json<ReviewRow>>,
}

/// Up to `fetch` reviews of a product the viewer may see, newest first, after the
/// `(created_at, id)` given, in ONE statement: the product's visibility and its reviews
/// together. No rows: no such product for this viewer; one row without a review: no reviews
/// (past the cursor). Everyone sees published reviews; authors their own pending ones;
/// moderators (`moderator`) every review.
pub async fn list_reviews(
    db: &PgPool,
    product: ProductId,
    viewer: Viewer,
    moderator: bool,
    status: Option<ReviewStatus>,
    after: Option<(DateTime<Utc>, ReviewId)>,
    fetch: i64,
) -> Result<Vec<ListedReview>, sqlx::Error> {
    let (created_at, id) = after.unzip();
    sqlx::query_as(
        "SELECT CASE WHEN r.id IS NULL THEN NULL ELSE to_jsonb(r) END AS review
           FROM catalog.products p
           LEFT JOIN LATERAL (
                SELECT r.* FROM catalog.reviews r
                 WHERE r.product_id = p.id
                   AND (r.status = 'published' OR r.user_id = $2 OR $4)
                   AND ($5::text IS NULL OR r.status = $5)
                   AND (r.created_at, r.id) < (coalesce($6, 'infinity'),
                                               coalesce($7, 'ffffffff-ffff-ffff-ffff-ffffffffffff'))
                 ORDER BY r.created_at DESC, r.id DESC
                 LIMIT $8) r ON true
          WHERE p.id = $1 AND p.deleted_at IS NULL
            AND (p.status = 'active' OR p.seller_id = $2 OR $3)
          ORDER BY r.created_at DESC, r.id DESC",
    )
    .bind(product)
    .bind(viewer.id)
    .bind(viewer.staff || moderator)
    .bind(moderator)
    .bind(status.map(ReviewStatus::as_str))
    .bind(created_at)
    .bind(id)
    .bind(fetch)
    .fetch_all(db)
    .await
}

/// Records that `user` bought `products` and marks their reviews of them verified, in one
/// statement; returns how many purchases were new.
pub async fn record_purchases(
    conn: &mut PgConnection,
    user: Uuid,
    products: &[Uuid],
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "WITH b AS (
             INSERT INTO catalog.purchases (user_id, product_id)
             SELECT $1, x FROM UNNEST($2::uuid[]) AS x
             ON CONFLICT DO NOTHING RETURNING product_id
         ), r AS (
             UPDATE catalog.reviews SET verified_purchase = true
              WHERE user_id = $1 AND product_id = ANY($2) AND NOT verified_purchase
         )
         SELECT count(*) FROM b",
    )
    .bind(user)
    .bind(products)
    .fetch_one(conn)
    .await
}

// ---- Options -------------------------------------------------------------------------

/// A locked product's live variants with their stock, oldest first.
pub async fn live_variants(
    conn: &mut PgConnection,
    product: ProductId,
) -> Result<Vec<VariantRow>, sqlx::Error> {
    let rows: Vec<(Json<VariantRow>,)> = sqlx::query_as(&format!(
        "SELECT {VARIANT_JSON} FROM catalog.variants v JOIN catalog.stock s ON s.variant_id = v.id
          WHERE v.product_id = $1 AND v.deleted_at IS NULL
          ORDER BY v.id"
    ))
    .bind(product)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.0.0).collect())
}

/// Stores a locked product's options and the option values and titles of the variants a
/// rename changed, in one statement; returns the product.
pub async fn set_options(
    conn: &mut PgConnection,
    product: ProductId,
    options: &[ProductOption],
    changed: &[(VariantId, BTreeMap<String, String>, String)],
) -> Result<ProductRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "WITH v AS (
             UPDATE catalog.variants v SET options = x.options, title = x.title, updated_at = now()
               FROM UNNEST($3::uuid[], $4::jsonb[], $5::text[]) AS x(id, options, title)
              WHERE v.id = x.id AND v.product_id = $1
         )
         UPDATE catalog.products p SET options = $2, updated_at = now()
          WHERE p.id = $1
         RETURNING {PRODUCT}"
    ))
    .bind(product)
    .bind(Json(options))
    .bind(changed.iter().map(|c| c.0.0).collect::<Vec<_>>())
    .bind(
        changed
            .iter()
            .map(|c| serde_json::to_value(&c.1).unwrap_or_default())
            .collect::<Vec<_>>(),
    )
    .bind(changed.iter().map(|c| c.2.clone()).collect::<Vec<_>>())
    .fetch_one(conn)
    .await
}

/// Erases what a deleted account wrote (its reviews, helpful votes and purchase records), in
/// one statement: the products' rating counters and the reviews' helpful counts lose exactly
/// what the deleted rows added, as the statements that wrote them added it. Votes are only
/// ever on others' reviews, so no review is both updated and deleted here.
pub async fn forget_user(conn: &mut PgConnection, user: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "WITH votes AS (
             DELETE FROM catalog.review_votes WHERE user_id = $1 RETURNING review_id
         ), helpful AS (
             UPDATE catalog.reviews r SET helpful_count = r.helpful_count - v.n
               FROM (SELECT review_id, count(*)::int AS n FROM votes GROUP BY review_id) v
              WHERE r.id = v.review_id
         ), gone AS (
             DELETE FROM catalog.reviews WHERE user_id = $1 RETURNING product_id, rating, status
         ), rated AS (
             UPDATE catalog.products p
                SET rating_count = p.rating_count - g.n, rating_sum = p.rating_sum - g.total
               FROM (SELECT product_id, count(*)::int AS n, sum(rating)::bigint AS total
                       FROM gone WHERE status = 'published' GROUP BY product_id) g
              WHERE p.id = g.product_id
         )
         DELETE FROM catalog.purchases WHERE user_id = $1",
    )
    .bind(user)
    .execute(conn)
    .await?;
    Ok(())
}

/// A variant as cart and orders price it (`api::variants_for_sale`).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SaleRow {
    pub variant_id: Uuid,
    pub product_id: Uuid,
    pub seller_id: Uuid,
    pub product_title: String,
    pub variant_title: String,
    pub sku: Option<String>,
    pub price: i64,
    pub currency: String,
    pub category_id: Option<Uuid>,
    /// The category and its ancestors, root first (empty without a category).
    pub category_path: Vec<Uuid>,
    pub on_sale: bool,
    pub available: Option<i32>,
}

/// The current sale data of `ids` (deleted and unsold variants included, marked
/// `on_sale = false`; unknown ids absent), in one statement.
pub async fn variants_for_sale(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<Vec<SaleRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT v.id AS variant_id, p.id AS product_id, p.seller_id, p.title AS product_title,
                v.title AS variant_title, v.sku, v.price, p.currency, p.category_id,
                coalesce(c.path, '{}') AS category_path,
                (p.status = 'active' AND p.deleted_at IS NULL AND v.deleted_at IS NULL) AS on_sale,
                CASE WHEN v.track_inventory AND NOT v.allow_backorder
                     THEN greatest(coalesce(st.on_hand - st.reserved, 0), 0) END AS available
           FROM catalog.variants v
           JOIN catalog.products p ON p.id = v.product_id
           LEFT JOIN catalog.stock st ON st.variant_id = v.id
           LEFT JOIN catalog.categories c ON c.id = p.category_id
          WHERE v.id = ANY($1)",
    )
    .bind(ids)
    .fetch_all(conn)
    .await
}
