//! Turns every error the framework produces on its own (unknown route, wrong method, bad
//! JSON, wrong content type, oversized body, bad path or query) into problem+json, so no
//! client ever has to parse a plain-text error.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::{JsonPayloadError, PathError, PayloadError, QueryPayloadError};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{Error, HttpRequest, HttpResponse, web};

use crate::platform::error::{ApiError, PROBLEM_JSON};

/// The extractor configs the app registers once, so every handler's `Json`, `Query`,
/// `Path` and `Bytes` failures are problems too.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(|err, _req| json_error(err).into())
}

pub fn payload_config(limit: usize) -> web::PayloadConfig {
    web::PayloadConfig::new(limit)
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        let detail = match err {
            QueryPayloadError::Deserialize(e) => format!("Invalid query string: {e}"),
            other => format!("Invalid query string: {other}"),
        };
        ApiError::bad_request("invalid_query", detail).into()
    })
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, _req| {
        let detail = match err {
            PathError::Deserialize(e) => format!("Invalid path parameter: {e}"),
            other => format!("Invalid path parameter: {other}"),
        };
        ApiError::new(StatusCode::NOT_FOUND, "not_found")
            .detail(detail)
            .into()
    })
}

fn json_error(err: JsonPayloadError) -> ApiError {
    match err {
        JsonPayloadError::ContentType => {
            ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
                .detail("This endpoint takes a JSON body: send Content-Type: application/json.")
        }
        JsonPayloadError::OverflowKnownLength { length, limit } => too_large(Some(length), limit),
        JsonPayloadError::Overflow { limit } => too_large(None, limit),
        JsonPayloadError::Deserialize(e) if e.is_data() => ApiError::bad_request(
            "invalid_body",
            format!(
                "The JSON does not match the expected shape at line {} column {}: {e}",
                e.line(),
                e.column()
            ),
        ),
        JsonPayloadError::Deserialize(e) => ApiError::bad_request(
            "malformed_json",
            format!(
                "Malformed JSON at line {} column {}: {e}",
                e.line(),
                e.column()
            ),
        ),
        JsonPayloadError::Payload(PayloadError::Overflow) => too_large(None, 0),
        other => ApiError::bad_request("invalid_body", format!("Could not read the body: {other}")),
    }
}

fn too_large(length: Option<usize>, limit: usize) -> ApiError {
    let detail = match (length, limit) {
        (Some(len), l) if l > 0 => format!("The body is {len} bytes; the limit is {l} bytes."),
        (_, l) if l > 0 => format!("The body is larger than the limit of {l} bytes."),
        _ => "The body is larger than this endpoint accepts.".to_owned(),
    };
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").detail(detail)
}

/// The app's default service: nothing matched the path.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found(format!(
        "No route matches {} {}",
        req.method(),
        req.path()
    )))
}

/// Rewrites error responses that are not problem+json already (actix's own 405, a 413 from
/// a payload limit, a 500 from a panic-free framework error) into problem+json.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let method = req.method().clone();
    let res = next.call(req).await?;
    let status = res.status();
    // JSON error bodies are deliberate (a problem, or a 503 health report); anything else
    // (empty, plain text) came from the framework and is rewritten.
    // So are HTML pages (auth's link pages show their errors as pages).
    let is_json = res.headers().get(header::CONTENT_TYPE).is_some_and(|v| {
        let v = v.as_bytes();
        v.starts_with(PROBLEM_JSON.as_bytes())
            || v.starts_with(b"application/json")
            || v.starts_with(b"text/html")
    });
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return Ok(res.map_into_left_body());
    }
    let (http_req, original) = res.into_parts();
    let path = http_req.path().to_owned();
    let error = match status {
        StatusCode::NOT_FOUND => ApiError::not_found(format!("No route matches {method} {path}")),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(status, "method_not_allowed")
            .detail(format!("{method} is not allowed on {path}")),
        StatusCode::PAYLOAD_TOO_LARGE => too_large(None, 0),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(status, "unsupported_media_type"),
        s if s.is_server_error() => {
            let cause = original
                .error()
                .map(|e| e.to_string())
                .unwrap_or_else(|| "no error attached".into());
            ApiError::internal(anyhow::anyhow!("{s} from the framework: {cause}"))
        }
        s => ApiError::new(s, "request_rejected"),
    };
    // Keep what the original response said besides its body (Allow on a 405, rate-limit
    // budget, Retry-After, CORS).
    let keep: Vec<(header::HeaderName, HeaderValue)> = original
        .headers()
        .iter()
        .filter(|(name, _)| **name != header::CONTENT_TYPE && **name != header::CONTENT_LENGTH)
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    let mut rendered: HttpResponse = actix_web::ResponseError::error_response(&error);
    if method == Method::HEAD {
        rendered = HttpResponse::build(rendered.status()).finish();
    }
    for (name, value) in keep {
        rendered.headers_mut().insert(name, value);
    }
    Ok(ServiceResponse::new(http_req, rendered).map_into_right_body())
}
