//! The OpenAPI document: the kernel's endpoints, the shared problem schema and security
//! schemes, and the document of every enabled domain nested under `/api/v1/<name>`.

use std::sync::{Arc, OnceLock};

use actix_web::web::Bytes;

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::Domain;
use super::error::{ApiError, FieldError, Problem};
use super::health::{CheckReport, HealthReport, Status};
use super::http::{dead_letters, system};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Basalt",
        description = "Backend-as-a-Service and marketplace backend. Every error is RFC 9457 \
problem+json (`application/problem+json`) with a stable `code`. Authenticate with \
`Authorization: Bearer <access token>` or, server to server, `X-Api-Key`.",
        license(name = "Apache-2.0")
    ),
    paths(system::health_report, system::live, system::ready, system::metrics, system::capabilities, system::jwks,
        dead_letters::list, dead_letters::replay),
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
        super::events::DeadLetter,
        dead_letters::Replayed,
    )),
    modifiers(&SecuritySchemes),
    tags((name = "system", description = "Health, metrics, capabilities and the events dead-letter queue"))
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

/// Where the document is served; the Swagger UI at `/docs/` reads it from there.
pub const DOCUMENT_PATH: &str = "/api-docs/openapi.json";

/// The document as served: rendered to JSON on its first request and kept as those bytes.
/// Building it runs the generated code of every operation and schema and takes about 35 MiB
/// of heap at its peak; done at start-up (and kept as a tree per worker, as it was) it was
/// most of an idle server's memory, and a request for it serialised the tree again each time.
pub struct ServedDocument {
    domains: Vec<Arc<dyn Domain>>,
    json: OnceLock<Result<Bytes, String>>,
}

impl ServedDocument {
    pub fn new(domains: Vec<Arc<dyn Domain>>) -> Self {
        Self {
            domains,
            json: OnceLock::new(),
        }
    }

    pub fn json(&self) -> Result<Bytes, ApiError> {
        let rendered = self.json.get_or_init(|| {
            let json = serde_json::to_vec(&document(&self.domains)).map_err(|e| e.to_string());
            // The tree it was rendered from is gone; give its pages back now.
            super::memory::give_back();
            json.map(Bytes::from)
        });
        rendered
            .clone()
            .map_err(|e| ApiError::internal(anyhow::anyhow!("rendering the OpenAPI document: {e}")))
    }
}

/// The whole document for the enabled domains.
pub fn document(domains: &[Arc<dyn Domain>]) -> utoipa::openapi::OpenApi {
    let mut doc = KernelApi::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc.merge(super::error::codes_openapi(
        "KernelError",
        super::error::KERNEL_CODES,
    ));
    for domain in domains {
        doc = doc.nest(format!("/api/v1/{}", domain.path()), domain.openapi());
        if !domain.error_codes().is_empty() {
            doc.merge(super::error::codes_openapi(
                &format!("{}Error", pascal_case(domain.name())),
                domain.error_codes(),
            ));
        }
    }
    describe_responses(&mut doc);
    doc
}

/// `baas-database` → `BaasDatabase`.
fn pascal_case(name: &str) -> String {
    name.split(['-', '_'])
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::platform::domain::route_table;
    use crate::platform::http::routes::template_shape;

    fn operations(doc: &utoipa::openapi::OpenApi) -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        for (path, item) in &doc.paths.paths {
            let methods = [
                ("GET", &item.get),
                ("PUT", &item.put),
                ("POST", &item.post),
                ("DELETE", &item.delete),
                ("OPTIONS", &item.options),
                ("HEAD", &item.head),
                ("PATCH", &item.patch),
                ("TRACE", &item.trace),
            ];
            for (method, op) in methods {
                if op.is_some() {
                    out.insert((method.to_owned(), template_shape(path)));
                }
            }
        }
        out
    }

    /// The kernel test of the "routes document themselves" rule: every operation a compiled
    /// domain mounts is in the OpenAPI document, and every documented one is mounted.
    #[test]
    fn every_mounted_route_is_documented_and_every_documented_route_is_mounted() {
        let domains = crate::domains::compiled();
        let kernel = operations(&KernelApi::openapi());
        let documented: BTreeSet<_> = operations(&document(&domains))
            .difference(&kernel)
            .cloned()
            .collect();
        let mounted: BTreeSet<_> = domains
            .iter()
            .flat_map(|d| route_table(d.as_ref()))
            .map(|m| (m.method.to_string(), template_shape(&m.path)))
            .collect();
        let undocumented: Vec<_> = mounted.difference(&documented).collect();
        let unmounted: Vec<_> = documented.difference(&mounted).collect();
        assert!(
            undocumented.is_empty(),
            "mounted but not in OpenAPI: {undocumented:?}"
        );
        assert!(
            unmounted.is_empty(),
            "in OpenAPI but not mounted: {unmounted:?}"
        );
    }

    #[test]
    fn domain_names_become_schema_names() {
        assert_eq!(pascal_case("baas-database"), "BaasDatabase");
        assert_eq!(pascal_case("auth"), "Auth");
    }
}
