//! Security headers on every response. API responses get a CSP that allows nothing (they are
//! data, never documents); the Swagger UI under /docs gets one that allows its own scripts.
//! A handler that sets one of these headers itself keeps its own value.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, web};

use crate::config::HstsSettings;

const API_CSP: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
const DOCS_CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
script-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'";

/// Precomputed header values, registered as app data.
#[derive(Clone)]
pub struct SecurityHeaders {
    hsts: Option<HeaderValue>,
}

impl SecurityHeaders {
    pub fn new(settings: &HstsSettings) -> Self {
        let hsts = settings.enabled.then(|| {
            let mut v = format!("max-age={}", settings.max_age_secs);
            if settings.include_subdomains {
                v.push_str("; includeSubDomains");
            }
            HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static("max-age=31536000"))
        });
        Self { hsts }
    }
}

pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let config = req.app_data::<web::Data<SecurityHeaders>>().cloned();
    let is_docs = req.path().starts_with("/docs");
    let mut res = next.call(req).await?;
    let h = res.headers_mut();
    let mut set = |name: HeaderName, value: HeaderValue| {
        if !h.contains_key(&name) {
            h.insert(name, value);
        }
    };
    set(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    set(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    set(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    set(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(if is_docs { DOCS_CSP } else { API_CSP }),
    );
    if let Some(hsts) = config.and_then(|c| c.hsts.clone()) {
        set(header::STRICT_TRANSPORT_SECURITY, hsts);
    }
    Ok(res)
}
