//! Request ids: accept the caller's `X-Request-Id` when it is sane, otherwise mint a UUIDv7;
//! echo it on the response, and make it reachable from the request, the log span and any
//! error body rendered while the request runs (through a task-local).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};

pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the request being served, stored in the request's extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// What the task serving a request knows about it: its id, and who is calling once an
/// identity extractor has said (events published while serving it carry both).
struct Context {
    id: String,
    actor: std::sync::Mutex<Option<String>>,
}

tokio::task_local! {
    static CURRENT: std::sync::Arc<Context>;
}

/// The id of the request this task is serving, if any.
pub fn current() -> Option<String> {
    CURRENT.try_with(|c| c.id.clone()).ok()
}

/// The caller of the request this task is serving (`user:<id>`, `api_key:<id>`), once the
/// identity extractor has recognised one.
pub fn actor() -> Option<String> {
    CURRENT
        .try_with(|c| c.actor.lock().ok().and_then(|a| a.clone()))
        .ok()
        .flatten()
}

/// Records the caller of the request this task is serving; outside a request, nothing.
pub fn set_actor(actor: String) {
    let _ = CURRENT.try_with(|c| {
        if let Ok(mut slot) = c.actor.lock() {
            *slot = Some(actor);
        }
    });
}

/// Caller-chosen ids are kept only if short and made of safe characters, so they cannot
/// forge log lines or bloat them.
fn accept(value: &HeaderValue) -> Option<String> {
    let s = value.to_str().ok()?;
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    ok.then(|| s.to_owned())
}

pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = req
        .headers()
        .get(&HEADER)
        .and_then(accept)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let context = std::sync::Arc::new(Context {
        id: id.clone(),
        actor: std::sync::Mutex::new(None),
    });
    let mut res = CURRENT.scope(context, next.call(req)).await?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(HEADER, value);
    }
    Ok(res)
}
