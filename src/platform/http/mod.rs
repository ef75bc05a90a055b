//! The HTTP edge: what the seeds' API gateway did, in-process. Middleware (request id,
//! logging, metrics, security headers, CORS, rate limits, problem+json for framework errors)
//! and the kernel's own endpoints (health, metrics, capabilities, dead letters).

pub mod cors;
pub mod dead_letters;
pub mod extract;
pub mod logging;
pub mod problems;
pub mod rate_limit;
pub mod request_id;
pub mod routes;
pub mod security_headers;
pub mod system;
pub mod wire;

pub use extract::{OptionalJson, ValidatedJson};
pub use routes::{Endpoint, Routes};
