//! Image variants and previews. A bucket's variants are queued by a subscriber of
//! `storage.file.uploaded` and made by a job after the upload has answered, then downloaded
//! by name; previews are made on first request and kept.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use utoipa::OpenApi;

use super::access::{self, Opens};
use super::error::StorageError;
use super::events::{FileUploaded, VariantCreated};
use super::images::{self, VariantSpec};
use super::model::*;
use super::repo::{self, VariantRow, VersionRow};
use super::serve::{Object, serve};
use super::state::StorageState;
use crate::platform::Platform;
use crate::platform::error::Problem;
use crate::platform::error::responses::{BadRequest, Forbidden, NotFound};
use crate::platform::events::{DomainEvent, Subscriber, publish, subscriber_fn};
use crate::platform::grants::Caller;
use crate::platform::http::{Endpoint, Routes};

#[derive(OpenApi)]
#[openapi(
    paths(download_variant, preview),
    // Types only query parameters name are not collected from the paths.
    components(schemas(images::Fit, images::Format))
)]
pub struct VariantsApi;

pub fn configure(routes: &mut Routes) {
    routes
        .add(Endpoint::at("/files/{file}/variants/{name}").get(download_variant))
        .add(Endpoint::at("/files/{file}/preview").get(preview));
}

/// What to do with a decode that would need more than the whole decode memory budget.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OverBudget {
    /// Previews, which anyone who may read an image asks for, at sizes they choose: 422.
    Refuse,
    /// Variants, which the bucket's owner declared and the upload limits already bound: the
    /// decode waits for the whole budget and runs alone.
    RunAlone,
}

/// Decodes once, then renders the variants side by side, one thread each, so a large image's
/// variants take about as long as its largest; all of it off the async runtime. The
/// original is read whole, which its size cap bounds, and dropped once decoded.
/// First it takes its share of the replica's decode memory budget
/// (`storage.decode_memory_budget_bytes`), reckoned from the dimensions recorded at upload
/// (`images::decode_cost`), and waits until that much is free; only then is the original read,
/// so waiting requests hold no image bytes (nor, in the preview handler, a database
/// connection). Many small decodes run side by side; a large one waits for room.
async fn render_all(
    state: &StorageState,
    v: &VersionRow,
    specs: Vec<VariantSpec>,
    limits: images::ImageLimits,
    over: OverBudget,
) -> anyhow::Result<Vec<(VariantSpec, Vec<u8>, u32, u32)>> {
    let budget = state.decode_budget_kib;
    let boxes: Vec<_> = specs.iter().map(|s| (s.width, s.height, s.fit)).collect();
    let cost = match (v.width, v.height) {
        (Some(w), Some(h)) => images::decode_cost(w as u32, h as u32, v.size.max(0) as u64, &boxes),
        // Versions recorded without dimensions: assume the worst, the whole budget.
        _ => u64::from(budget) * 1024,
    };
    let share = |cost: u64| {
        let kib = u32::try_from(cost.div_ceil(1024)).unwrap_or(u32::MAX);
        match over {
            _ if kib <= budget => Ok(kib),
            OverBudget::RunAlone => Ok(budget),
            OverBudget::Refuse => Err(images::ImageError::OverBudget(
                cost,
                u64::from(budget) * 1024,
            )),
        }
    };
    let mut permit = state.decode_budget.acquire_many(share(cost)?).await?;
    let original = state.store.read_all(&v.object_key).await?;
    // A 16-bit file decodes at 6 or 8 bytes a pixel, then is converted to 8-bit beside
    // itself: charge the difference once the header says so. The share is taken again
    // whole (not topped up) so two waiting decodes cannot each hold half of what both need.
    if let (Some(w), Some(h), Some(bpp)) = (
        v.width,
        v.height,
        images::decoded_pixel_bytes(&original).filter(|&b| b > 4),
    ) {
        let wide = cost.saturating_add(u64::from(w as u32) * u64::from(h as u32) * bpp);
        drop(permit);
        permit = state.decode_budget.acquire_many(share(wide)?).await?;
    }
    let _permit = permit;
    tokio::task::spawn_blocking(move || {
        let img = images::decode(&original, &limits)?;
        drop(original);
        let resamples = boxes.iter().any(|&(w, h, fit)| {
            images::output_size(img.width(), img.height(), w, h, fit) != (img.width(), img.height())
        });
        let img = images::Source::new(img, resamples)?;
        std::thread::scope(|scope| {
            let renders: Vec<_> = specs
                .into_iter()
                .map(|s| {
                    let img = &img;
                    scope.spawn(move || {
                        let (bytes, w, h) =
                            images::render(img, s.width, s.height, s.fit, s.format)?;
                        Ok::<_, images::ImageError>((s, bytes, w, h))
                    })
                })
                .collect();
            renders
                .into_iter()
                .map(|r| {
                    r.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect::<Result<Vec<_>, images::ImageError>>()
        })
    })
    .await?
    .map_err(Into::into)
}

/// Attempts per version before its variants are given up on (the backend keeps failing).
const MAX_ATTEMPTS: i32 = 5;

/// Makes the bucket's variants of one version. Nothing is held open while images decode:
/// rows and events are written in one short transaction at the end.
async fn make_variants(state: &StorageState, version_id: VersionId) -> anyhow::Result<()> {
    let (v, file, bucket) = {
        let mut conn = state.db.acquire().await?;
        let Some(v) = repo::version(&mut conn, version_id).await? else {
            return Ok(());
        };
        let Some(file) = repo::file(&mut conn, v.file_id, false).await? else {
            return Ok(());
        };
        let Some(bucket) = repo::bucket(&mut conn, file.bucket_id).await? else {
            return Ok(());
        };
        (v, file, bucket)
    };
    let specs = bucket.variants.0.clone();
    if specs.is_empty()
        || !images::is_processable(&v.content_type)
        || v.size as u64 > state.settings.max_image_bytes
    {
        return Ok(());
    }
    let rendered =
        match render_all(state, &v, specs, state.image_limits(), OverBudget::RunAlone).await {
            Ok(r) => r,
            Err(e) if e.downcast_ref::<images::ImageError>().is_some() => {
                // A corrupt or oversized image will not get better on retry.
                tracing::warn!(file = %file.id, error = %e, "no variants for this image");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
    let mut rows = Vec::with_capacity(rendered.len());
    for (spec, bytes, w, h) in rendered {
        let key = format!("variants/{}/{}", v.id, spec.name);
        let size = bytes.len() as i64;
        state.store.put(&key, Bytes::from(bytes)).await?;
        rows.push(VariantRow {
            version_id: v.id,
            name: spec.name.clone(),
            width: w as i32,
            height: h as i32,
            size,
            content_type: spec.format.mime().into(),
            object_key: key,
        });
    }
    let mut tx = state.db.begin().await?;
    for row in &rows {
        if repo::insert_variant(&mut tx, row).await? {
            let made = VariantCreated {
                user_id: bucket.owner_id,
                bucket_id: bucket.id,
                file_id: file.id,
                version_id: v.id,
                name: row.name.clone(),
                width: row.width,
                height: row.height,
                size: row.size,
                content_type: row.content_type.clone(),
            };
            publish(&mut tx, &made).await?;
        } else if repo::version(&mut tx, v.id).await?.is_none() {
            // The version went away meanwhile: its rows are gone, so must the bytes be.
            repo::queue_garbage(&mut *tx, &row.object_key).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Queues the variants of an uploaded version; the job makes them.
pub fn subscriber() -> Arc<dyn Subscriber> {
    subscriber_fn("storage.variants", &[FileUploaded::TYPE], |event, conn| {
        Box::pin(async move {
            let uploaded = event.decode::<FileUploaded>()?;
            repo::queue_variants(conn, uploaded.version_id).await?;
            Ok(())
        })
    })
}

/// One run of the variants job: due versions a few at a time, one after another (each decodes
/// on the blocking pool), until none is due. Replicas share the queue.
pub async fn run_due(state: &StorageState) -> anyhow::Result<()> {
    loop {
        let due = repo::claim_variant_jobs(&state.db, 4).await?;
        if due.is_empty() {
            return Ok(());
        }
        for (version, attempts) in due {
            match make_variants(state, version).await {
                Ok(()) => repo::finish_variant_job(&state.db, version).await?,
                Err(e) => {
                    tracing::warn!(%version, attempts, error = %format!("{e:#}"), "variants failed; will retry");
                    repo::fail_variant_job(
                        &state.db,
                        version,
                        attempts,
                        MAX_ATTEMPTS,
                        &format!("{e:#}"),
                    )
                    .await?;
                }
            }
        }
    }
}

/// Download a variant of the current version by name (made shortly after upload).
#[utoipa::path(
    get, path = "/files/{file}/variants/{name}", tag = "storage", security((), ("bearer" = []), ("api_key" = [])),
    params(("file" = Uuid, Path), ("name" = String, Path), DownloadParams, DownloadHeaders),
    responses(
        (status = 200, description = "The variant's bytes"),
        (status = 304, description = "If-None-Match matched"),
        Forbidden,
        (status = 404, description = "No such file or variant, or not made yet (`variant_pending`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn download_variant(
    req: HttpRequest,
    platform: web::Data<Platform>,
    state: web::Data<StorageState>,
    caller: Caller,
    path: web::Path<(FileId, String)>,
    params: web::Query<DownloadParams>,
) -> Result<HttpResponse, StorageError> {
    let (id, name) = path.into_inner();
    let mut conn = platform.db.acquire().await?;
    let opens = Opens {
        version: None,
        variant: Some(&name),
    };
    let (t, file, _) =
        access::downloadable(&mut conn, &state, &caller, id, params.signed(), opens).await?;
    let Some(variant) = repo::variant(&mut conn, file.current_version, &name).await? else {
        let declared = t.bucket.variants.0.iter().any(|v| v.name == name);
        return Err(if declared {
            StorageError::VariantPending
        } else {
            StorageError::VariantNotFound
        });
    };
    drop(conn);
    let o = Object {
        key: &variant.object_key,
        size: variant.size as u64,
        content_type: &variant.content_type,
        etag: format!("\"{}-{}\"", variant.version_id.0.simple(), variant.name),
        name: &file.name,
        public: t.bucket.public,
        force_attachment: params.disposition.as_deref() == Some("attachment"),
    };
    serve(&req, &state, o).await
}

/// A resized rendering of an image file (width, height, fit, format), made on first request
/// and kept for the next (charged to the bucket owner's quota). Sides snap up to the next of
/// `storage.preview_sizes` (100 becomes 128); images past `storage.max_preview_pixels` get
/// none (422 `image_too_large`).
#[utoipa::path(
    get, path = "/files/{file}/preview", tag = "storage", security((), ("bearer" = []), ("api_key" = [])),
    params(("file" = Uuid, Path), PreviewParams, DownloadHeaders),
    responses(
        (status = 200, description = "The preview's bytes", content_type = "image/jpeg"),
        (status = 304, description = "If-None-Match matched"),
        BadRequest,
        Forbidden,
        NotFound,
        (status = 422, description = "The image cannot be decoded within the limits (`image_too_large`, `image_unreadable`)", body = Problem, content_type = "application/problem+json"),
        (status = 507, description = "A new preview would take the bucket's owner past their quota (`quota_exceeded`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn preview(
    req: HttpRequest,
    platform: web::Data<Platform>,
    state: web::Data<StorageState>,
    caller: Caller,
    path: web::Path<FileId>,
    params: web::Query<PreviewParams>,
) -> Result<HttpResponse, StorageError> {
    let p = params.into_inner();
    let spec = PreviewOptions {
        width: p.width,
        height: p.height,
        fit: p.fit,
        format: p.format,
    }
    .spec(
        state.settings.max_preview_dimension,
        &state.settings.preview_sizes,
    )?;
    let grant = format!("preview:{}", spec.key);
    let opens = Opens {
        version: None,
        variant: Some(&grant),
    };
    // The pooled connection goes back before any decode, which may wait for a permit and
    // then take a while.
    let (t, file, v, stored) = {
        let mut conn = platform.db.acquire().await?;
        let (t, file, v) =
            access::downloadable(&mut conn, &state, &caller, *path, p.signed(), opens).await?;
        if !images::is_processable(&v.content_type) {
            return Err(StorageError::NotAnImage);
        }
        let stored = repo::preview(&mut conn, v.id, &spec.key).await?;
        (t, file, v, stored)
    };
    let (key, content_type, size) = match stored {
        Some(found) => found,
        None => make_preview(&platform, &state, &t, &v, &spec).await?,
    };
    let o = Object {
        key: &key,
        size: size as u64,
        content_type: &content_type,
        etag: format!("\"{}-{}\"", v.id.0.simple(), spec.key),
        name: &file.name,
        public: t.bucket.public,
        force_attachment: false,
    };
    serve(&req, &state, o).await
}

/// Renders, stores and records a preview, charged to the bucket owner's quota; returns its
/// key, type and size. Images past `storage.max_preview_pixels` are refused from the
/// dimensions recorded at upload, before their bytes are read, and again from the header
/// before decoding (a version recorded without dimensions).
async fn make_preview(
    platform: &Platform,
    state: &StorageState,
    t: &access::Target,
    v: &VersionRow,
    spec: &PreviewSpec,
) -> Result<(String, String, i64), StorageError> {
    if v.size as u64 > state.settings.max_image_bytes {
        return Err(StorageError::ImageTooLarge(
            "The image is too large for previews.".into(),
        ));
    }
    let limits = state.preview_limits();
    if let (Some(w), Some(h)) = (v.width, v.height) {
        images::check_dimensions(w as u32, h as u32, &limits)
            .map_err(|e| StorageError::ImageTooLarge(format!("No previews: {e}.")))?;
    }
    let render = VariantSpec {
        name: spec.key.clone(),
        width: spec.width,
        height: spec.height,
        fit: spec.fit,
        format: spec.format,
    };
    let mut rendered = render_all(state, v, vec![render], limits, OverBudget::Refuse)
        .await
        .map_err(|e| match e.downcast_ref::<images::ImageError>() {
            Some(images::ImageError::TooLarge(..) | images::ImageError::OverBudget(..)) => {
                StorageError::ImageTooLarge(format!("No previews: {e}."))
            }
            _ => StorageError::ImageUnreadable(e.to_string()),
        })?;
    let (_, bytes, _, _) = rendered.remove(0);
    let key = format!("previews/{}/{}", v.id, spec.key);
    let size = bytes.len() as i64;
    let mime = spec.format.mime();
    state.store.put(&key, Bytes::from(bytes)).await?;
    let owner = t.bucket.owner_id;
    let mut tx = platform.db.begin().await?;
    if !repo::charge(&mut tx, owner, size, state.settings.quota_bytes_per_user).await? {
        drop(tx);
        // Another request may have recorded the same key meanwhile; its row keeps the bytes.
        if repo::preview(&mut *platform.db.acquire().await?, v.id, &spec.key)
            .await?
            .is_none()
        {
            state.discard(&key).await;
        }
        return Err(StorageError::QuotaExceeded);
    }
    let row = repo::NewPreview {
        version: v.id,
        params: &spec.key,
        key: &key,
        content_type: mime,
        size,
        quota_owner: owner,
    };
    if repo::insert_preview(&mut tx, &row).await? {
        tx.commit().await?;
    } else {
        // Either another request made the same preview (same key, same bytes; its row pays
        // for them) or the version is gone, and then the bytes must go too.
        drop(tx);
        let mut conn = platform.db.acquire().await?;
        if repo::version(&mut conn, v.id).await?.is_none() {
            state.discard(&key).await;
        }
    }
    Ok((key, mime.to_owned(), size))
}
