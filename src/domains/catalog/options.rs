//! Editing a product's options after creation: rename an option, add values to it, rename
//! its values. Variants name option values, so a rename rewrites the variants that use it
//! (and the titles generated from them), all in one statement under the product's lock.
//! Adding a whole new option is not offered: every live variant would need a value for it.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use utoipa::OpenApi;

use super::access::audit_staff;
use super::access::{self, MANAGE};
use super::error::CatalogError;
use super::model::*;
use super::repo;
use crate::events::catalog::ProductUpdated;
use crate::platform::error::responses::{Conflict, Invalid, NotFound, Unauthorized};
use crate::platform::events::publish;
use crate::platform::http::{Endpoint, Routes, ValidatedJson};
use crate::platform::{CurrentUser, Platform};

#[derive(OpenApi)]
#[openapi(paths(update_option))]
pub struct OptionsApi;

pub fn configure(routes: &mut Routes) {
    routes.add(Endpoint::at("/products/{product}/options").patch(update_option));
}

/// Rename one of a product's options, add values to it or rename its values (its seller,
/// or staff with `catalog.products.manage`). Variants using a renamed value follow it; a
/// variant title that was generated from its values is generated again.
#[utoipa::path(
    patch, path = "/products/{product}/options", tag = "catalog", request_body = UpdateOptionRequest,
    security(("bearer" = []), ("api_key" = [])),
    params(("product" = Uuid, Path)),
    responses((status = 200, body = ProductResponse), Unauthorized, NotFound, Conflict, Invalid)
)]
pub async fn update_option(
    platform: web::Data<Platform>,
    user: CurrentUser,
    path: web::Path<ProductId>,
    body: ValidatedJson<UpdateOptionRequest>,
) -> Result<HttpResponse, CatalogError> {
    let u = body.into_inner();
    let mut tx = platform.db.begin().await?;
    let p = repo::lock_product(&mut tx, *path, access::actor_id(&user), user.can(MANAGE))
        .await?
        .ok_or(CatalogError::ProductNotFound)?;
    let old_options = p.options.0.clone();
    let option = u.option.trim();
    let Some(index) = old_options.iter().position(|o| o.name.trim() == option) else {
        return Err(CatalogError::invalid_field(
            "option",
            "exists",
            "the product has no such option",
        ));
    };
    let old_name = old_options[index].name.trim().to_owned();
    let new_name = u
        .name
        .as_deref()
        .map(str::trim)
        .unwrap_or(&old_name)
        .to_owned();
    let renames: BTreeMap<String, String> = u
        .rename_values
        .iter()
        .map(|(from, to)| (from.trim().to_owned(), to.trim().to_owned()))
        .collect();

    let mut checks = Checks::default();
    // Variants are rewritten one by one against the unique index of their option values, so
    // a swap (S→M, M→S) or a chain (S→X, M→S) could collide midway depending on row order:
    // refused as a whole rather than by chance; two requests through an unused value do it.
    for (from, to) in &renames {
        if from != to && renames.contains_key(to) {
            checks.fail(
                format!("rename_values.{from}"),
                "chained",
                "renames onto a value that is itself renamed in this request; rename through an unused value in two requests",
            );
        }
    }
    for from in renames.keys() {
        if !old_options[index].values.iter().any(|v| v.trim() == from) {
            checks.fail(
                format!("rename_values.{from}"),
                "exists",
                "the option has no such value",
            );
        }
    }
    let mut options = old_options.clone();
    let target = &mut options[index];
    target.name = new_name.clone();
    target.values = target
        .values
        .iter()
        .map(|v| {
            renames
                .get(v.trim())
                .cloned()
                .unwrap_or_else(|| v.trim().to_owned())
        })
        .chain(u.add_values.iter().map(|v| v.trim().to_owned()))
        .collect();
    // Names and values stay unique and within bounds (a rename onto an existing value is
    // caught here as a duplicate).
    checks.options(&options);
    checks.done()?;

    let variants = repo::live_variants(&mut tx, p.id).await?;
    let mut changed = Vec::new();
    for v in &variants {
        let mut chosen = v.options.clone();
        if let Some(value) = chosen.remove(&old_name) {
            let value = renames.get(&value).cloned().unwrap_or(value);
            chosen.insert(new_name.clone(), value);
        }
        let title = if v.title == variant_title(&v.options, &old_options) {
            variant_title(&chosen, &options)
        } else {
            v.title.clone()
        };
        if chosen != v.options || title != v.title {
            changed.push((v.id, chosen, title));
        }
    }
    let row = repo::set_options(&mut tx, p.id, &options, &changed)
        .await
        .map_err(|e| CatalogError::variant_write(e, None))?;
    publish(
        &mut tx,
        &ProductUpdated {
            product_id: row.id.0,
            user_id: row.seller_id,
            product: snapshot(&row),
        },
    )
    .await?;
    audit_staff(
        &mut tx,
        &user,
        &p,
        "catalog.product.options_updated",
        Some(&row),
    )
    .await?;
    tx.commit().await?;
    let variants = variants
        .into_iter()
        .map(|mut v| {
            if let Some((_, options, title)) = changed.iter().find(|c| c.0 == v.id) {
                v.options = options.clone();
                v.title = title.clone();
            }
            v
        })
        .collect();
    Ok(HttpResponse::Ok().json(ProductResponse::with_variants(row, variants, true)))
}
