//! Image variants, queued by a subscriber of `storage.file.uploaded` and made by a job after
//! the upload has answered, and on-the-fly previews, made on first request and kept.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use serde_json::json;
use uuid::Uuid;

use super::download::authorised;
use super::download::{self, Object};
use super::images::{self, Fit, Format, VariantSpec};
use super::model::{DownloadHeaders, PreviewOptions, PreviewParams};
use super::repo::{self, VariantRow, VersionRow};
use super::{StorageState, events};
use crate::platform::Platform;
use crate::platform::error::{ApiError, Problem};
use crate::platform::events::{Subscriber, subscriber_fn};
use crate::platform::grants::Caller;

/// Decodes once, then renders the variants side by side, one thread each, so a large image's
/// variants take about as long as its largest; all of it off the async runtime. The
/// original is read whole, which its size cap bounds.
async fn render_all(
    state: &StorageState,
    v: &VersionRow,
    specs: Vec<VariantSpec>,
) -> anyhow::Result<Vec<(VariantSpec, Vec<u8>, u32, u32)>> {
    let original = state.store.read_all(&v.object_key).await?;
    let limits = state.image_limits();
    tokio::task::spawn_blocking(move || {
        let img = images::decode(&original, &limits)?;
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
async fn make_variants(state: &StorageState, version_id: Uuid) -> anyhow::Result<()> {
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
    let rendered = match render_all(state, &v, specs).await {
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
            events::emit(
                &mut tx,
                "storage.variant.created",
                file.id.to_string(),
                json!({"user_id": bucket.owner_id, "bucket_id": bucket.id, "file_id": file.id, "version_id": v.id,
                       "name": row.name, "width": row.width, "height": row.height, "size": row.size, "content_type": row.content_type}),
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
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
    subscriber_fn(
        "storage.variants",
        &["storage.file.uploaded"],
        |event, conn| {
            Box::pin(async move {
                if let Some(version) = event.payload["version_id"]
                    .as_str()
                    .and_then(|v| Uuid::parse_str(v).ok())
                {
                    repo::queue_variants(conn, version).await?;
                }
                Ok(())
            })
        },
    )
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

/// A preview's settings, defaults filled in, with the key that names it (in the cache and in
/// a signed URL's grant).
pub struct PreviewSpec {
    pub width: u32,
    pub height: u32,
    pub fit: Fit,
    pub format: Format,
    pub key: String,
}

impl PreviewSpec {
    /// The query string that asks for exactly this preview.
    pub fn query(&self) -> String {
        format!(
            "width={}&height={}&fit={}&format={}",
            self.width,
            self.height,
            self.fit.name(),
            self.format.name()
        )
    }
}

pub fn preview_spec(state: &StorageState, p: PreviewOptions) -> Result<PreviewSpec, ApiError> {
    let max = state.settings.max_preview_dimension;
    let (width, height) = (p.width.unwrap_or(max), p.height.unwrap_or(max));
    if !(1..=max).contains(&width) || !(1..=max).contains(&height) {
        return Err(ApiError::bad_request(
            "invalid_preview",
            format!("width and height must be between 1 and {max}"),
        ));
    }
    let (fit, format) = (
        p.fit.unwrap_or(Fit::Contain),
        p.format.unwrap_or(Format::Jpeg),
    );
    let key = format!("{width}x{height}-{}.{}", fit.name(), format.name());
    Ok(PreviewSpec {
        width,
        height,
        fit,
        format,
        key,
    })
}

/// A resized rendering of an image file (width, height, fit, format), made on first request
/// and kept for the next.
#[utoipa::path(
    get, path = "/files/{file}/preview", tag = "storage", security((), ("bearer" = []), ("api_key" = [])),
    params(("file" = Uuid, Path), PreviewParams, DownloadHeaders),
    responses(
        (status = 200, description = "The preview's bytes", content_type = "image/jpeg"),
        (status = 400, description = "A dimension past `storage.max_preview_dimension`, or not an image", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The image cannot be decoded within the limits", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn preview(
    req: HttpRequest,
    platform: web::Data<Platform>,
    state: web::Data<StorageState>,
    caller: Caller,
    path: web::Path<String>,
    params: web::Query<PreviewParams>,
) -> Result<HttpResponse, ApiError> {
    let p = params.into_inner();
    let spec = preview_spec(
        &state,
        PreviewOptions {
            width: p.width,
            height: p.height,
            fit: p.fit,
            format: p.format,
        },
    )?;
    let PreviewSpec {
        width,
        height,
        fit,
        format,
        key: params_key,
    } = spec;
    let mut conn = platform.db.acquire().await?;
    let grant = format!("preview:{params_key}");
    let (t, file, v) = authorised(
        &mut conn,
        &state,
        &caller,
        &path,
        (p.signature.as_ref(), p.expires),
        None,
        Some(&grant),
    )
    .await?;
    if !images::is_processable(&v.content_type) {
        return Err(ApiError::bad_request(
            "not_an_image",
            "Previews are made of JPEG, PNG, WebP and GIF images.",
        ));
    }
    let params_key = format!("{width}x{height}-{fit:?}.{format:?}").to_lowercase();
    let (key, content_type, size) = match repo::preview(&mut conn, v.id, &params_key).await? {
        Some(found) => found,
        None => {
            if v.size as u64 > state.settings.max_image_bytes {
                return Err(ApiError::new(
                    actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
                    "image_too_large",
                )
                .detail("The image is too large for previews."));
            }
            let spec = VariantSpec {
                name: params_key.clone(),
                width,
                height,
                fit,
                format,
            };
            let mut rendered = render_all(&state, &v, vec![spec]).await.map_err(|e| {
                ApiError::new(
                    actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
                    "image_unreadable",
                )
                .detail(e.to_string())
            })?;
            let (_, bytes, _, _) = rendered.remove(0);
            let key = format!("previews/{}/{params_key}", v.id);
            let size = bytes.len() as i64;
            state
                .store
                .put(&key, Bytes::from(bytes))
                .await
                .map_err(ApiError::internal)?;
            if !repo::insert_preview(&mut conn, v.id, &params_key, &key, format.mime(), size)
                .await?
            {
                // Either another request made the same preview (same key, same bytes) or the
                // version is gone; in the second case the bytes must go too.
                if repo::version(&mut conn, v.id).await?.is_none() {
                    state.discard(&key).await;
                }
            }
            (key, format.mime().to_owned(), size)
        }
    };
    drop(conn);
    let o = Object {
        key: &key,
        size: size as u64,
        content_type: &content_type,
        etag: format!("\"{}-{params_key}\"", v.id.simple()),
        name: &file.name,
        public: t.bucket.public,
        force_attachment: false,
    };
    download::serve(&req, &state.store, o).await
}
