//! Products: created by sellers, read by everyone while active (by id or by slug, old slugs
//! redirecting), changed and deleted by their seller or by staff.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use utoipa::OpenApi;

use super::access::{self, MANAGE, SELL, audit_staff};
use super::error::CatalogError;
use super::model::*;
use super::repo::{self, ProductFields, VariantFields};
use super::search;
use super::state::CatalogState;
use crate::events::catalog::{ProductCreated, ProductDeleted, ProductUpdated};
use crate::platform::error::responses::{
    BadRequest, Conflict, Forbidden, Invalid, NotFound, Unauthorized,
};
use crate::platform::events::publish;
use crate::platform::http::{Endpoint, Routes, ValidatedJson};
use crate::platform::identity::MaybeUser;
use crate::platform::page::{Page, PageQuery};
use crate::platform::{CurrentUser, Platform};

#[derive(OpenApi)]
#[openapi(
    paths(create_product, list_products, featured_products, popular_products, get_product, get_product_by_slug, update_product, delete_product),
    components(schemas(ProductSearchResponse, SearchTotal, Facets, ProductSort)),
    tags((name = "catalog", description = "Products, variants, stock, categories, reviews and search"))
)]
pub struct ProductsApi;

pub fn configure(routes: &mut Routes) {
    routes
        .add(
            Endpoint::at("/products")
                .get(list_products)
                .post(create_product),
        )
        // Before `{product}`: `featured` and `popular` are not product ids.
        .add(Endpoint::at("/products/featured").get(featured_products))
        .add(Endpoint::at("/products/popular").get(popular_products))
        .add(Endpoint::at("/products/by-slug/{slug}").get(get_product_by_slug))
        .add(
            Endpoint::at("/products/{product}")
                .get(get_product)
                .patch(update_product)
                .delete(delete_product),
        );
}

/// Create a product, owned by the caller, as a `draft`. Needs `catalog.products.sell` (the
/// `vendor` role) or `catalog.products.manage`.
#[utoipa::path(
    post, path = "/products", tag = "catalog", request_body = CreateProductRequest,
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 201, body = ProductResponse), Unauthorized, Forbidden, Conflict, Invalid)
)]
pub async fn create_product(
    platform: web::Data<Platform>,
    state: web::Data<CatalogState>,
    user: CurrentUser,
    body: ValidatedJson<CreateProductRequest>,
) -> Result<HttpResponse, CatalogError> {
    if !(user.can(SELL) || user.can(MANAGE)) {
        return Err(CatalogError::NotASeller);
    }
    let seller = user.uuid()?;
    let b = body.into_inner();
    if b.featured && !user.can(MANAGE) {
        return Err(CatalogError::FeatureNotAllowed);
    }
    let mut checks = Checks::default();
    checks.slug(b.slug.as_deref());
    checks.currency(&b.currency);
    checks.tags(&b.tags);
    checks.images(&b.images);
    checks.attributes(&b.attributes);
    let options: Vec<ProductOption> = b
        .options
        .iter()
        .map(|o| ProductOption {
            name: o.name.trim().to_owned(),
            values: o.values.iter().map(|v| v.trim().to_owned()).collect(),
        })
        .collect();
    checks.options(&options);
    let variants = new_variants(&mut checks, &b, &options, &state);
    checks.done()?;

    let id = ProductId::new();
    let tags = normalise_tags(&b.tags);
    let explicit = b.slug.is_some();
    let mut slug = b.slug.clone().unwrap_or_else(|| slug_of(&b.title));
    // The last bytes of a v7 id are random: a short suffix that rarely collides.
    let suffix = hex::encode(&id.0.as_bytes()[13..]);
    let mut attempt = 0;
    let row = loop {
        let fields = ProductFields {
            title: b.title.trim(),
            slug: &slug,
            description: &b.description,
            category_id: b.category_id,
            tags: &tags,
            images: &b.images,
            attributes: &b.attributes,
            seo_title: b.seo_title.as_deref(),
            seo_description: b.seo_description.as_deref(),
            featured: b.featured,
        };
        let mut tx = platform.db.begin().await?;
        let inserted = repo::insert_product(
            &mut tx,
            id,
            seller,
            &b.currency,
            &options,
            &fields,
            !explicit,
            &suffix,
        )
        .await
        .map_err(|e| CatalogError::product_write(e, &slug));
        let inserted = match inserted {
            Ok(_) => repo::insert_variants(&mut tx, id, &variants, &user.actor())
                .await
                .map_err(|e| CatalogError::variant_write(e, None)),
            Err(e) => Err(e),
        };
        match inserted {
            Ok(detail) => {
                let row = &detail.product;
                publish(
                    &mut tx,
                    &ProductCreated {
                        product_id: row.id.0,
                        user_id: row.seller_id,
                        product: snapshot(row),
                    },
                )
                .await?;
                tx.commit().await?;
                break detail;
            }
            // Another product took the generated slug between our look and our insert:
            // once more, with the suffix.
            Err(CatalogError::SlugTaken(_)) if !explicit && attempt == 0 => {
                attempt += 1;
                slug = format!("{slug}-{suffix}");
            }
            Err(e) => return Err(e),
        }
    };
    Ok(HttpResponse::Created().json(ProductResponse::with_variants(
        row.product,
        row.variants.0,
        true,
    )))
}

/// The variants a new product is created with: those given, or its one default variant.
fn new_variants(
    checks: &mut Checks,
    b: &CreateProductRequest,
    options: &[ProductOption],
    state: &CatalogState,
) -> Vec<VariantFields> {
    let cap = state.settings.max_variants_per_product;
    if b.variants.len() > cap {
        checks.fail(
            "variants",
            "cap",
            format!("a product has at most {cap} variants (catalog.max_variants_per_product)"),
        );
        return Vec::new();
    }
    if b.variants.is_empty() {
        if !options.is_empty() {
            checks.fail(
                "variants",
                "required",
                "a product with options needs its variants",
            );
        }
        let price = b.price.as_ref().map_or(0, |p| checks.amount("price", p));
        checks.sku("sku", b.sku.as_deref());
        return vec![VariantFields {
            sku: b.sku.clone(),
            title: "Default".into(),
            options: Default::default(),
            price,
            compare_at_price: None,
            weight_grams: None,
            track_inventory: true,
            allow_backorder: false,
            on_hand: 0,
        }];
    }
    if b.price.is_some() || b.sku.is_some() {
        checks.fail(
            "price",
            "variants",
            "price and sku are for the default variant: give each variant its own",
        );
    }
    b.variants
        .iter()
        .enumerate()
        .map(|(i, v)| checks.new_variant(&format!("variants[{i}]."), v, options))
        .collect()
}

/// Search and browse the products the caller may see: active ones for everyone, the
/// caller's own in any status, every product for staff (`?status=pending` is the
/// moderation queue). Words (`q`, full text plus typo tolerance), filters, sorts, keyset
/// pages; the first page also carries the total (counted up to 10,000) and facets.
#[utoipa::path(
    get, path = "/products", tag = "catalog", security((), ("bearer" = []), ("api_key" = [])),
    params(PageQuery, ProductFilter),
    responses((status = 200, body = ProductSearchResponse), BadRequest, Unauthorized)
)]
pub async fn list_products(
    platform: web::Data<Platform>,
    user: MaybeUser,
    page: web::Query<PageQuery>,
    filter: web::Query<ProductFilter>,
) -> Result<HttpResponse, CatalogError> {
    let found = search::search(&platform, &user, &filter, &page).await?;
    Ok(HttpResponse::Ok().json(found))
}

/// One product: anyone while it is active, its seller and staff in any status.
#[utoipa::path(
    get, path = "/products/{product}", tag = "catalog", security((), ("bearer" = []), ("api_key" = [])),
    params(("product" = Uuid, Path)),
    responses((status = 200, body = ProductResponse), Unauthorized, NotFound)
)]
pub async fn get_product(
    platform: web::Data<Platform>,
    user: MaybeUser,
    path: web::Path<ProductId>,
) -> Result<HttpResponse, CatalogError> {
    let viewer = access::viewer(&user);
    let d = repo::product(&platform.db, *path, viewer)
        .await?
        .ok_or(CatalogError::ProductNotFound)?;
    let insider = access::insider(viewer, &d.product);
    Ok(HttpResponse::Ok().json(ProductResponse::with_variants(
        d.product,
        d.variants.0,
        insider,
    )))
}

/// One product by its slug. A slug the product had before answers 301 with `Location` at
/// its current slug, so old links keep working.
#[utoipa::path(
    get, path = "/products/by-slug/{slug}", tag = "catalog", security((), ("bearer" = []), ("api_key" = [])),
    params(("slug" = String, Path)),
    responses(
        (status = 200, body = ProductResponse),
        (status = 301, description = "An old slug: `Location` names the current one"),
        Unauthorized, NotFound
    )
)]
pub async fn get_product_by_slug(
    platform: web::Data<Platform>,
    user: MaybeUser,
    path: web::Path<String>,
) -> Result<HttpResponse, CatalogError> {
    if !valid_slug(&path) {
        return Err(CatalogError::ProductNotFound);
    }
    let viewer = access::viewer(&user);
    let hit = repo::product_by_slug(&platform.db, &path, viewer)
        .await?
        .ok_or(CatalogError::ProductNotFound)?;
    let d = hit.detail;
    if !hit.current {
        return Ok(HttpResponse::MovedPermanently()
            .insert_header((
                header::LOCATION,
                format!("/api/v1/catalog/products/by-slug/{}", d.product.slug),
            ))
            .finish());
    }
    let insider = access::insider(viewer, &d.product);
    Ok(HttpResponse::Ok().json(ProductResponse::with_variants(
        d.product,
        d.variants.0,
        insider,
    )))
}

/// Change a product's fields (its seller, or staff with `catalog.products.manage`). A new
/// slug keeps the old one answering with a redirect.
#[utoipa::path(
    patch, path = "/products/{product}", tag = "catalog", request_body = UpdateProductRequest,
    security(("bearer" = []), ("api_key" = [])),
    params(("product" = Uuid, Path)),
    responses((status = 200, body = ProductResponse), Unauthorized, Forbidden, NotFound, Conflict, Invalid)
)]
pub async fn update_product(
    platform: web::Data<Platform>,
    user: CurrentUser,
    path: web::Path<ProductId>,
    body: ValidatedJson<UpdateProductRequest>,
) -> Result<HttpResponse, CatalogError> {
    let u = body.into_inner();
    let mut checks = Checks::default();
    checks.slug(u.slug.as_deref());
    if let Some(tags) = &u.tags {
        checks.tags(tags);
    }
    if let Some(images) = &u.images {
        checks.images(images);
    }
    if let Some(attributes) = &u.attributes {
        checks.attributes(attributes);
    }
    checks.done()?;

    let mut tx = platform.db.begin().await?;
    let p = repo::lock_product(&mut tx, *path, access::actor_id(&user), user.can(MANAGE))
        .await?
        .ok_or(CatalogError::ProductNotFound)?;
    if u.featured.is_some_and(|f| f != p.featured) && !user.can(MANAGE) {
        return Err(CatalogError::FeatureNotAllowed);
    }
    let tags = u.tags.as_deref().map(normalise_tags);
    let slug = u.slug.as_deref().unwrap_or(&p.slug);
    let fields = ProductFields {
        title: u.title.as_deref().map(str::trim).unwrap_or(&p.title),
        slug,
        description: match &u.description {
            None => &p.description,
            Some(d) => d.as_deref().unwrap_or_default(),
        },
        category_id: u.category_id.unwrap_or(p.category_id),
        tags: tags.as_deref().unwrap_or(&p.tags),
        images: u.images.as_deref().unwrap_or(&p.images.0),
        attributes: u.attributes.as_ref().unwrap_or(&p.attributes.0),
        seo_title: match &u.seo_title {
            None => p.seo_title.as_deref(),
            Some(t) => t.as_deref(),
        },
        seo_description: match &u.seo_description {
            None => p.seo_description.as_deref(),
            Some(d) => d.as_deref(),
        },
        featured: u.featured.unwrap_or(p.featured),
    };
    let row = repo::update_product(&mut tx, p.id, &fields)
        .await
        .map_err(|e| CatalogError::product_write(e, slug))?
        .ok_or_else(|| CatalogError::SlugTaken(slug.to_owned()))?;
    publish(
        &mut tx,
        &ProductUpdated {
            product_id: row.id.0,
            user_id: row.seller_id,
            product: snapshot(&row),
        },
    )
    .await?;
    audit_staff(&mut tx, &user, &p, "catalog.product.updated", Some(&row)).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(ProductResponse::from(row)))
}

/// Delete a product (its seller, or staff with `catalog.products.manage`). It leaves sale
/// at once and its slugs are released; orders that name it keep their own copy.
#[utoipa::path(
    delete, path = "/products/{product}", tag = "catalog", security(("bearer" = []), ("api_key" = [])),
    params(("product" = Uuid, Path)),
    responses((status = 204), Unauthorized, NotFound)
)]
pub async fn delete_product(
    platform: web::Data<Platform>,
    user: CurrentUser,
    path: web::Path<ProductId>,
) -> Result<HttpResponse, CatalogError> {
    let mut tx = platform.db.begin().await?;
    let p = repo::lock_product(&mut tx, *path, access::actor_id(&user), user.can(MANAGE))
        .await?
        .ok_or(CatalogError::ProductNotFound)?;
    repo::delete_product(&mut tx, p.id).await?;
    publish(
        &mut tx,
        &ProductDeleted {
            product_id: p.id.0,
            user_id: p.seller_id,
        },
    )
    .await?;
    audit_staff(&mut tx, &user, &p, "catalog.product.deleted", None).await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
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
    let page = search::shelf(&platform, &page, Some(true), ProductSort::Newest).await?;
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
    let page = search::shelf(&platform, &page, None, ProductSort::Popularity).await?;
    Ok(HttpResponse::Ok().json(page))
}
