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
        doc = doc.nest(format!("/api/v1/{}", domain.name()), domain.openapi());
    }
    doc
}
