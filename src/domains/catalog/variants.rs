//! Variants: each product's sellable versions (a size, a colour), with their own SKU,
//! price in minor units, weight and stock policy. Each is written alone, so editing one never
//! touches its siblings; the statement that writes a variant also keeps the product's price
//! range.

use actix_web::{HttpResponse, web};
use utoipa::OpenApi;

use super::access::audit_staff;
use super::access::{self, MANAGE};
use super::error::CatalogError;
use super::model::*;
use super::repo::{self, VariantFields};
use super::state::CatalogState;
use crate::events::catalog::ProductUpdated;
use crate::platform::error::responses::{BadRequest, Conflict, Invalid, NotFound, Unauthorized};
use crate::platform::events::publish;
use crate::platform::http::{Endpoint, Routes, ValidatedJson};
use crate::platform::identity::MaybeUser;
use crate::platform::page::{Page, PageQuery};
use crate::platform::{CurrentUser, Platform};

#[derive(OpenApi)]
#[openapi(paths(list_variants, create_variant, update_variant, delete_variant))]
pub struct VariantsApi;

pub fn configure(routes: &mut Routes) {
    routes
        .add(
            Endpoint::at("/products/{product}/variants")
                .get(list_variants)
                .post(create_variant),
        )
        .add(
            Endpoint::at("/products/{product}/variants/{variant}")
                .patch(update_variant)
                .delete(delete_variant),
        );
}

/// A product's live variants, oldest first (anyone while the product is active).
#[utoipa::path(
    get, path = "/products/{product}/variants", tag = "catalog", security((), ("bearer" = []), ("api_key" = [])),
    params(("product" = Uuid, Path), PageQuery),
    responses((status = 200, body = Page<VariantResponse>), BadRequest, Unauthorized, NotFound)
)]
pub async fn list_variants(
    platform: web::Data<Platform>,
    user: MaybeUser,
    path: web::Path<ProductId>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, CatalogError> {
    let (limit, after) = (page.limit()?, page.cursor::<VariantId>()?);
    let viewer = access::viewer(&user);
    let rows = repo::list_variants(&platform.db, *path, viewer, after, page.fetch()?).await?;
    // The product's row comes back with each variant; none at all means no such product
    // for this viewer, unless it simply has no variants past the cursor.
    let Some(first) = rows.first() else {
        repo::product(&platform.db, *path, viewer)
            .await?
            .ok_or(CatalogError::ProductNotFound)?;
        return Ok(HttpResponse::Ok().json(Page::<VariantResponse>::all(Vec::new())));
    };
    let insider = viewer.staff || viewer.id == Some(first.seller_id);
    Ok(HttpResponse::Ok().json(Page::from_rows(
        rows,
        limit,
        |v| v.variant.0.id,
        |v| VariantResponse::of(v.variant.0, insider),
    )))
}

/// Add a variant to a product (its seller, or staff with `catalog.products.manage`): its
/// option values must be the product's, its SKU unique among live variants, and the product
/// under `catalog.max_variants_per_product` variants.
#[utoipa::path(
    post, path = "/products/{product}/variants", tag = "catalog", request_body = CreateVariantRequest,
    security(("bearer" = []), ("api_key" = [])),
    params(("product" = Uuid, Path)),
    responses((status = 201, body = VariantResponse), Unauthorized, NotFound, Conflict, Invalid)
)]
pub async fn create_variant(
    platform: web::Data<Platform>,
    state: web::Data<CatalogState>,
    user: CurrentUser,
    path: web::Path<ProductId>,
    body: ValidatedJson<CreateVariantRequest>,
) -> Result<HttpResponse, CatalogError> {
    let v = body.into_inner();
    let mut tx = platform.db.begin().await?;
    let (p, count) =
        repo::lock_product_counting(&mut tx, *path, access::actor_id(&user), user.can(MANAGE))
            .await?
            .ok_or(CatalogError::ProductNotFound)?;
    let cap = state.settings.max_variants_per_product;
    if count >= cap as i64 {
        return Err(CatalogError::invalid_field(
            "variants",
            "cap",
            format!("a product has at most {cap} variants (catalog.max_variants_per_product)"),
        ));
    }
    let mut checks = Checks::default();
    let fields = checks.new_variant("", &v, &p.options.0);
    checks.done()?;
    let (row, product) = repo::insert_variant(&mut tx, p.id, &fields, &user.actor())
        .await
        .map_err(|e| CatalogError::variant_write(e, fields.sku.as_deref()))?;
    publish(
        &mut tx,
        &ProductUpdated {
            product_id: product.id.0,
            user_id: product.seller_id,
            product: snapshot(&product),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(VariantResponse::of(row, true)))
}

/// Change one variant (its product's seller, or staff with `catalog.products.manage`); its
/// siblings are not touched. Stock changes through inventory adjustments.
#[utoipa::path(
    patch, path = "/products/{product}/variants/{variant}", tag = "catalog", request_body = UpdateVariantRequest,
    security(("bearer" = []), ("api_key" = [])),
    params(("product" = Uuid, Path), ("variant" = Uuid, Path)),
    responses((status = 200, body = VariantResponse), Unauthorized, NotFound, Conflict, Invalid)
)]
pub async fn update_variant(
    platform: web::Data<Platform>,
    user: CurrentUser,
    path: web::Path<(ProductId, VariantId)>,
    body: ValidatedJson<UpdateVariantRequest>,
) -> Result<HttpResponse, CatalogError> {
    let (product, variant) = path.into_inner();
    let u = body.into_inner();
    let mut tx = platform.db.begin().await?;
    let (p, v, _) = repo::lock_variant(
        &mut tx,
        product,
        variant,
        access::actor_id(&user),
        user.can(MANAGE),
    )
    .await?
    .ok_or(CatalogError::VariantNotFound)?;
    let mut checks = Checks::default();
    checks.sku("sku", u.sku.as_deref());
    if let Some(options) = &u.options {
        checks.choice("options", options, &p.options.0);
    }
    let price = u.price.as_ref().map(|a| checks.amount("price", a));
    let compare_at_price = u
        .compare_at_price
        .as_ref()
        .map(|a| checks.amount("compare_at_price", a));
    checks.done()?;
    let options = u.options.unwrap_or(v.options);
    let fields = VariantFields {
        sku: u.sku.or(v.sku),
        title: match u.title {
            Some(t) => t.trim().to_owned(),
            None => v.title,
        },
        options,
        price: price.unwrap_or(v.price),
        compare_at_price: compare_at_price.or(v.compare_at_price),
        weight_grams: u.weight_grams.or(v.weight_grams),
        track_inventory: u.track_inventory.unwrap_or(v.track_inventory),
        allow_backorder: u.allow_backorder.unwrap_or(v.allow_backorder),
        on_hand: v.on_hand,
    };
    let (row, product) = repo::update_variant(&mut tx, p.id, v.id, &fields)
        .await
        .map_err(|e| CatalogError::variant_write(e, fields.sku.as_deref()))?;
    publish(
        &mut tx,
        &ProductUpdated {
            product_id: product.id.0,
            user_id: product.seller_id,
            product: snapshot(&product),
        },
    )
    .await?;
    audit_staff(
        &mut tx,
        &user,
        &p,
        "catalog.variant.updated",
        Some(&product),
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(VariantResponse::of(row, true)))
}

/// Delete one variant (its SKU is free again; orders that name it keep their copy). A
/// product keeps at least one variant.
#[utoipa::path(
    delete, path = "/products/{product}/variants/{variant}", tag = "catalog",
    security(("bearer" = []), ("api_key" = [])),
    params(("product" = Uuid, Path), ("variant" = Uuid, Path)),
    responses((status = 204), Unauthorized, NotFound, Conflict)
)]
pub async fn delete_variant(
    platform: web::Data<Platform>,
    user: CurrentUser,
    path: web::Path<(ProductId, VariantId)>,
) -> Result<HttpResponse, CatalogError> {
    let (product, variant) = path.into_inner();
    let mut tx = platform.db.begin().await?;
    let (p, v, count) = repo::lock_variant(
        &mut tx,
        product,
        variant,
        access::actor_id(&user),
        user.can(MANAGE),
    )
    .await?
    .ok_or(CatalogError::VariantNotFound)?;
    if count <= 1 {
        return Err(CatalogError::LastVariant);
    }
    let after = repo::delete_variant(&mut tx, p.id, v.id).await?;
    publish(
        &mut tx,
        &ProductUpdated {
            product_id: after.id.0,
            user_id: after.seller_id,
            product: snapshot(&after),
        },
    )
    .await?;
    audit_staff(&mut tx, &user, &p, "catalog.variant.deleted", Some(&after)).await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}
