//! Request spans for tracing-actix-web, carrying our request id (not the crate's own), so
//! every log line written while serving a request names it.

use actix_web::Error;
use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RootSpanBuilder};

use super::request_id::RequestId;

pub struct BasaltRootSpan;

impl RootSpanBuilder for BasaltRootSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let id = request
            .extensions()
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default();
        tracing::info_span!(
            "http",
            request_id = %id,
            method = %request.method(),
            path = %request.path(),
            route = tracing::field::Empty,
            status = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        if let Ok(res) = outcome {
            if let Some(route) = res.request().match_pattern() {
                span.record("route", route);
            }
            span.record("status", res.status().as_u16());
            let status = res.status();
            let _enter = span.enter();
            if status.is_server_error() {
                tracing::error!(status = status.as_u16(), "request finished");
            } else {
                tracing::info!(status = status.as_u16(), "request finished");
            }
        } else {
            DefaultRootSpanBuilder::on_request_end(span, outcome);
        }
    }
}
