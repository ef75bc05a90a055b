//! The OpenAPI document: the kernel's endpoints, the shared problem schema and security
//! schemes, and the document of every enabled domain nested under `/api/v1/<name>`.

use std::sync::Arc;

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::Domain;
use super::error::{FieldError, Problem};
use super::health::{CheckReport, HealthReport, Status};
use super::http::system;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Basalt",
        description = "Backend-as-a-Service and marketplace backend. Every error is RFC 9457 \
problem+json (`application/problem+json`) with a stable `code`. Authenticate with \
`Authorization: Bearer <access token>` or, server to server, `X-Api-Key`.",
        license(name = "Apache-2.0")
    ),
    paths(system::health_report, system::live, system::ready, system::metrics, system::capabilities, system::jwks),
    components(schemas(
        Problem,
        FieldError,
        HealthReport,
        CheckReport,
        Status,
        system::Liveness,
        system::Capabilities,
        system::DomainCapability,
        system::Infrastructure,
        system::Component,
        super::events::Event,
    )),
    modifiers(&SecuritySchemes),
    tags((name = "system", description = "Health, metrics and capabilities"))
)]
struct KernelApi;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("A short-lived access token from /api/v1/auth/login"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Api-Key",
                "A server-to-server key with scopes",
            ))),
        );
    }
}

/// The whole document for the enabled domains.
pub fn document(domains: &[Arc<dyn Domain>]) -> utoipa::openapi::OpenApi {
    let mut doc = KernelApi::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    for domain in domains {
        doc = doc.nest(format!("/api/v1/{}", domain.path()), domain.openapi());
    }
    describe_responses(&mut doc);
    doc
}

/// OpenAPI requires a description on every response; where a handler's annotation gives
/// none, the status's reason phrase stands in (so validators and client generators accept
/// the document).
fn describe_responses(doc: &mut utoipa::openapi::OpenApi) {
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ];
        for op in operations.into_iter().flatten() {
            for (status, response) in op.responses.responses.iter_mut() {
                if let utoipa::openapi::RefOr::T(r) = response
                    && r.description.is_empty()
                {
                    r.description = status
                        .parse::<u16>()
                        .ok()
                        .and_then(|code| actix_web::http::StatusCode::from_u16(code).ok())
                        .and_then(|code| code.canonical_reason())
                        .unwrap_or("Response")
                        .to_owned();
                }
            }
        }
    }
}
