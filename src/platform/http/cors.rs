//! CORS from `http.cors`. Exposes the headers clients need to read: the request id, the
//! rate-limit budget, a new guest cart's token and whether a response is an idempotent
//! replay.

use actix_cors::Cors;

use crate::config::CorsSettings;

pub fn from_settings(settings: &CorsSettings) -> Cors {
    let mut cors = Cors::default()
        .allow_any_method()
        .allow_any_header()
        .expose_headers([
            "x-request-id",
            "ratelimit-limit",
            "ratelimit-remaining",
            "ratelimit-reset",
            "ratelimit-policy",
            "retry-after",
            "etag",
            "location",
            "x-cart-token",
            "idempotent-replayed",
        ])
        .max_age(settings.max_age_secs);
    if settings.allowed_origins.iter().any(|o| o == "*") {
        cors = cors.allow_any_origin().send_wildcard();
    } else {
        for origin in &settings.allowed_origins {
            cors = cors.allowed_origin(origin);
        }
    }
    if settings.allow_credentials {
        cors = cors.supports_credentials();
    }
    cors
}
