//! `ApiError`: the one error type handlers return, rendered as RFC 9457 problem+json.
//!
//! Every problem carries a stable machine-readable `code` (clients switch on it, never on
//! `title` or `detail`), the request id, and for validation failures one entry per field.
//! 5xx problems log their cause with the request id and show the client a generic body.

use std::borrow::Cow;
use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::platform::http::request_id;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// One invalid field of a request body or query.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldError {
    /// Path of the field, e.g. `email` or `items[2].quantity`.
    pub field: String,
    /// Stable reason, e.g. `length`, `email`, `range`, `required`.
    pub code: String,
    pub message: String,
}

/// RFC 9457 problem details, as every error response of the API is shaped.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "urn:basalt:problem:not_found",
    "title": "Not Found",
    "status": 404,
    "detail": "No route matches GET /api/v1/nothing",
    "code": "not_found",
    "request_id": "0193a5f6-7d2c-7b9e-9f10-3c4d5e6f7a8b"
}))]
pub struct Problem {
    /// `urn:basalt:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Stable machine-readable error code.
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Per-field messages for validation failures (422).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: Cow<'static, str>,
    detail: Option<String>,
    errors: Vec<FieldError>,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// The cause of a 5xx, logged and never shown.
    source: Option<anyhow::Error>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status,
            code: code.into(),
            detail: None,
            errors: Vec::new(),
            headers: Vec::new(),
            source: None,
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Replaces the stable code (a 403 that is really `email_not_verified`, say).
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = code.into();
        self
    }

    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code).detail(detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized")
            .detail(detail)
            .header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden").detail(detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found").detail(detail)
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code).detail(detail)
    }

    /// The same problem listing `errors` (a 409 naming what changed, say).
    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    pub fn validation(errors: Vec<FieldError>) -> Self {
        let mut e = Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
            .detail("The request is well-formed but some fields are invalid.");
        e.errors = errors;
        e
    }

    /// An unexpected failure: the client sees a generic 500, the log gets `cause`.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        let mut e = Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error")
            .detail("An unexpected error occurred. Quote the request id when reporting it.");
        e.source = Some(cause.into());
        e
    }

    pub fn unavailable(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code).detail(detail)
    }

    /// The same problem as part `prefix` of a larger request (one operation of a batch):
    /// field paths go under the prefix, and a problem without fields names the part itself.
    pub fn within(mut self, prefix: &str) -> Self {
        if self.errors.is_empty() {
            self.errors.push(FieldError {
                field: prefix.to_owned(),
                code: self.code.to_string(),
                message: self.detail.clone().unwrap_or_default(),
            });
        } else {
            for e in &mut self.errors {
                e.field = format!("{prefix}.{}", e.field);
            }
        }
        self.detail = Some(format!(
            "{prefix}: {}",
            self.detail.as_deref().unwrap_or("failed")
        ));
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The human-readable detail, if any (for pages that show the problem as HTML).
    pub fn detail_text(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// The field errors of a 422.
    pub fn field_errors(&self) -> &[FieldError] {
        &self.errors
    }

    pub fn code(&self) -> &str {
        &self.code
    }

    pub fn problem(&self) -> Problem {
        Problem {
            kind: format!("urn:basalt:problem:{}", self.code),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.to_string(),
            request_id: request_id::current(),
            errors: self.errors.clone(),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.code)?;
        if let Some(d) = &self.detail {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        if let Some(cause) = &self.source {
            tracing::error!(
                request_id = request_id::current().as_deref().unwrap_or("-"),
                error = format!("{cause:#}"),
                "request failed"
            );
        }
        problem_response(self.status, &self.problem(), &self.headers)
    }
}

pub(crate) fn problem_response(
    status: StatusCode,
    problem: &Problem,
    headers: &[(HeaderName, HeaderValue)],
) -> HttpResponse {
    let mut res = HttpResponse::build(status);
    res.insert_header((header::CONTENT_TYPE, PROBLEM_JSON));
    for (name, value) in headers {
        res.insert_header((name.clone(), value.clone()));
    }
    res.body(serde_json::to_vec(problem).unwrap_or_default())
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            // Valid JSON and valid UTF-8, yet PostgreSQL stores no U+0000 in text or jsonb:
            // the input is at fault, whichever handler passed it on.
            sqlx::Error::PoolTimedOut => Self::from_sqlx_ref(&e),
            sqlx::Error::Database(d)
                if matches!(d.code().as_deref(), Some("22021" | "22P05" | "57014")) =>
            {
                Self::from_sqlx_ref(&e)
            }
            _ => Self::internal(e),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        Self::internal(e)
    }
}

impl From<validator::ValidationErrors> for ApiError {
    fn from(errors: validator::ValidationErrors) -> Self {
        let mut out = Vec::new();
        flatten_validation(String::new(), &errors, &mut out);
        out.sort_by(|a, b| a.field.cmp(&b.field));
        Self::validation(out)
    }
}

fn flatten_validation(
    prefix: String,
    errors: &validator::ValidationErrors,
    out: &mut Vec<FieldError>,
) {
    use validator::ValidationErrorsKind as Kind;
    for (field, kind) in errors.errors() {
        let path = if prefix.is_empty() {
            field.to_string()
        } else {
            format!("{prefix}.{field}")
        };
        match kind {
            Kind::Field(list) => out.extend(list.iter().map(|e| {
                FieldError {
                    field: path.clone(),
                    code: e.code.to_string(),
                    message: e
                        .message
                        .as_ref()
                        .map(|m| m.to_string())
                        .unwrap_or_else(|| describe(e)),
                }
            })),
            Kind::Struct(inner) => flatten_validation(path, inner, out),
            Kind::List(items) => {
                for (i, inner) in items {
                    flatten_validation(format!("{path}[{i}]"), inner, out);
                }
            }
        }
    }
}

/// A readable default for validator's built-in rules, which carry no message of their own.
fn describe(e: &validator::ValidationError) -> String {
    let param = |name: &str| e.params.get(name).map(|v| v.to_string());
    match e.code.as_ref() {
        "length" => match (param("min"), param("max")) {
            (Some(min), Some(max)) => format!("must be between {min} and {max} characters long"),
            (Some(min), None) => format!("must be at least {min} characters long"),
            (None, Some(max)) => format!("must be at most {max} characters long"),
            _ => "has the wrong length".into(),
        },
        "range" => match (param("min"), param("max")) {
            (Some(min), Some(max)) => format!("must be between {min} and {max}"),
            (Some(min), None) => format!("must be at least {min}"),
            (None, Some(max)) => format!("must be at most {max}"),
            _ => "is out of range".into(),
        },
        "email" => "must be a valid email address".into(),
        "url" => "must be a valid URL".into(),
        "required" => "is required".into(),
        other => format!("is invalid ({other})"),
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    /// The problem a database error stands for, without consuming it (a domain error's
    /// `ResponseError` only borrows).
    pub fn from_sqlx_ref(e: &sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut => {
                Self::unavailable("database_busy", "The database is busy; retry shortly.")
                    .header(header::RETRY_AFTER, HeaderValue::from_static("1"))
            }
            sqlx::Error::Database(d) if matches!(d.code().as_deref(), Some("22021" | "22P05")) => {
                Self::bad_request(
                    "invalid_text",
                    "Text may not contain the NUL character (U+0000).",
                )
            }
            // The statement timeout (`SET LOCAL statement_timeout`) cancelled the query.
            sqlx::Error::Database(d) if d.code().as_deref() == Some("57014") => {
                Self::new(StatusCode::GATEWAY_TIMEOUT, "query_timeout")
                    .detail("The query took longer than the statement timeout allows.")
            }
            other => Self::internal(anyhow::anyhow!("{other}")),
        }
    }
}

/// The name of the constraint a failed statement violated (unique, foreign key, check or
/// exclusion), so a domain maps it to its own error by name instead of checking first.
pub fn violated_constraint(e: &sqlx::Error) -> Option<&str> {
    match e {
        sqlx::Error::Database(d) => d.constraint(),
        _ => None,
    }
}

/// `.on_constraint("buckets_owner_name_key", || StorageError::NameTaken)?` after an insert
/// or update: the violation of that one constraint becomes the domain's error, anything
/// else stays a database error.
pub trait OnConstraint<T> {
    fn on_constraint<E: From<sqlx::Error>>(
        self,
        constraint: &str,
        error: impl FnOnce() -> E,
    ) -> Result<T, E>;
}

impl<T> OnConstraint<T> for Result<T, sqlx::Error> {
    fn on_constraint<E: From<sqlx::Error>>(
        self,
        constraint: &str,
        error: impl FnOnce() -> E,
    ) -> Result<T, E> {
        match self {
            Err(e) if violated_constraint(&e) == Some(constraint) => Err(error()),
            other => other.map_err(E::from),
        }
    }
}

/// Declares a domain's one error enum: each variant with its status, its stable `code` and
/// its message (the problem's `detail`, through thiserror). Generates the enum (with
/// pass-through variants for kernel problems, database and unexpected errors), its
/// conversion into [`ApiError`] in one `match`, `ResponseError` so handlers return it, and
/// `CODES`, which the domain returns from `Domain::error_codes` for the OpenAPI document.
///
/// ```ignore
/// crate::domain_errors! {
///     pub enum StorageError {
///         #[problem(NOT_FOUND, "not_found")]
///         #[error("No such bucket, or not yours.")]
///         BucketNotFound,
///         #[problem(CONFLICT, "name_taken")]
///         #[error("A bucket named {0} exists already.")]
///         NameTaken(String),
///     }
/// }
/// ```
#[macro_export]
macro_rules! domain_errors {
    (
        $(#[$enum_meta:meta])*
        pub enum $name:ident {
            $(
                $(#[doc = $doc:literal])*
                #[problem($status:ident, $code:literal)]
                #[error($($msg:tt)+)]
                $variant:ident $( ( $($tuple:ty),* $(,)? ) )? $( { $($field:ident : $fty:ty),* $(,)? } )?
            ),* $(,)?
        }
    ) => {
        $(#[$enum_meta])*
        #[derive(Debug, thiserror::Error)]
        pub enum $name {
            $(
                $(#[doc = $doc])*
                #[error($($msg)+)]
                $variant $( ( $($tuple),* ) )? $( { $($field : $fty),* } )?,
            )*
            /// A kernel problem (authentication, validation, paging) passed through as is.
            #[error(transparent)]
            Platform(#[from] $crate::platform::error::ApiError),
            /// A database failure the domain has no name for (see `ApiError::from_sqlx_ref`).
            #[error(transparent)]
            Database(#[from] sqlx::Error),
            /// Anything else unexpected: a generic 500, the cause logged.
            #[error(transparent)]
            Internal(#[from] anyhow::Error),
        }

        impl $name {
            /// The stable codes of this domain's own variants, with their statuses.
            pub const CODES: &'static [(&'static str, actix_web::http::StatusCode)] = &[
                $(($code, actix_web::http::StatusCode::$status)),*
            ];

            /// A 422 `validation_failed` naming the fields the domain's own checks refused.
            pub fn invalid(errors: Vec<$crate::platform::error::FieldError>) -> Self {
                Self::Platform($crate::platform::error::ApiError::validation(errors))
            }

            /// A 422 for one field.
            pub fn invalid_field(field: &str, code: &str, message: impl Into<String>) -> Self {
                Self::invalid(vec![$crate::platform::error::FieldError {
                    field: field.to_owned(),
                    code: code.to_owned(),
                    message: message.into(),
                }])
            }

            /// The problem this error renders as.
            pub fn to_api(&self) -> $crate::platform::error::ApiError {
                use $crate::platform::error::ApiError;
                match self {
                    $(
                        Self::$variant { .. } => {
                            ApiError::new(actix_web::http::StatusCode::$status, $code)
                                .detail(self.to_string())
                        }
                    )*
                    Self::Platform(e) => e.clone_problem(),
                    Self::Database(e) => ApiError::from_sqlx_ref(e),
                    Self::Internal(e) => ApiError::internal(anyhow::anyhow!("{e:#}")),
                }
            }
        }

        impl From<$name> for $crate::platform::error::ApiError {
            fn from(e: $name) -> Self {
                match e {
                    $name::Platform(e) => e,
                    $name::Database(e) => e.into(),
                    $name::Internal(e) => Self::internal(e),
                    other => other.to_api(),
                }
            }
        }

        impl actix_web::ResponseError for $name {
            fn status_code(&self) -> actix_web::http::StatusCode {
                match self {
                    $( Self::$variant { .. } => actix_web::http::StatusCode::$status, )*
                    Self::Platform(e) => e.status(),
                    other => other.to_api().status(),
                }
            }

            fn error_response(&self) -> actix_web::HttpResponse {
                match self {
                    Self::Platform(e) => e.error_response(),
                    other => other.to_api().error_response(),
                }
            }
        }
    };
}

impl ApiError {
    /// A copy of the problem (status, code, detail, fields, headers); the cause of a 5xx is
    /// logged by the original and not carried over.
    pub fn clone_problem(&self) -> Self {
        Self {
            status: self.status,
            code: self.code.clone(),
            detail: self.detail.clone(),
            errors: self.errors.clone(),
            headers: self.headers.clone(),
            source: self.source.as_ref().map(|e| anyhow::anyhow!("{e:#}")),
        }
    }
}

/// The codes the kernel itself answers with, whatever the domain (listed in OpenAPI as
/// `KernelErrorCode`); domains add theirs through their error enum.
pub const KERNEL_CODES: &[(&str, StatusCode)] = &[
    ("invalid_body", StatusCode::BAD_REQUEST),
    ("invalid_query", StatusCode::BAD_REQUEST),
    ("invalid_cursor", StatusCode::BAD_REQUEST),
    ("invalid_text", StatusCode::BAD_REQUEST),
    ("unauthorized", StatusCode::UNAUTHORIZED),
    ("forbidden", StatusCode::FORBIDDEN),
    ("email_not_verified", StatusCode::FORBIDDEN),
    ("not_found", StatusCode::NOT_FOUND),
    ("method_not_allowed", StatusCode::METHOD_NOT_ALLOWED),
    ("payload_too_large", StatusCode::PAYLOAD_TOO_LARGE),
    ("unsupported_media_type", StatusCode::UNSUPPORTED_MEDIA_TYPE),
    ("validation_failed", StatusCode::UNPROCESSABLE_ENTITY),
    ("rate_limited", StatusCode::TOO_MANY_REQUESTS),
    ("internal_error", StatusCode::INTERNAL_SERVER_ERROR),
    ("database_busy", StatusCode::SERVICE_UNAVAILABLE),
    ("query_timeout", StatusCode::GATEWAY_TIMEOUT),
    ("request_rejected", StatusCode::BAD_REQUEST),
    ("idempotency_key_missing", StatusCode::BAD_REQUEST),
    ("idempotency_key_invalid", StatusCode::BAD_REQUEST),
    ("idempotency_key_reused", StatusCode::UNPROCESSABLE_ENTITY),
    ("idempotency_key_in_flight", StatusCode::CONFLICT),
    ("malformed_request", StatusCode::BAD_REQUEST),
    (
        "request_head_too_large",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
    ),
];

/// A domain's error codes as an OpenAPI string enum named `<Name>Code`, so clients see every
/// code a domain can answer with in one place.
pub fn codes_openapi(name: &str, codes: &[(&str, StatusCode)]) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    // Several variants may share a code (`not_found` for each kind of object): name it once.
    let mut described: Vec<String> = Vec::new();
    for (code, status) in codes {
        let entry = format!("`{code}` ({})", status.as_u16());
        if !described.contains(&entry) {
            described.push(entry);
        }
    }
    let description = described.join(", ");
    let mut values: Vec<&str> = codes.iter().map(|(c, _)| *c).collect();
    values.sort_unstable();
    values.dedup();
    let schema = ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values))
        .description(Some(if name == "KernelError" {
            format!("The stable `code`s any route may answer with: {description}.")
        } else {
            format!(
                "The stable `code`s of this domain's problems, besides the kernel's \
                 (`KernelErrorCode`): {description}."
            )
        }));
    utoipa::openapi::OpenApiBuilder::new()
        .components(Some(
            utoipa::openapi::ComponentsBuilder::new()
                .schema(format!("{name}Code"), schema)
                .build(),
        ))
        .build()
}

/// Shared OpenAPI responses, so a route documents the problems it can answer with in one
/// word each: `responses((status = 200, body = X), NotFound, Unauthorized)`.
pub mod responses {
    use std::collections::BTreeMap;

    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder, response::Response};

    use super::PROBLEM_JSON;

    fn problem(description: &str) -> RefOr<Response> {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    PROBLEM_JSON,
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build(),
        )
    }

    macro_rules! problem_responses {
        ($($(#[$doc:meta])* $name:ident = $status:literal, $description:literal;)*) => {
            $(
                $(#[$doc])*
                pub struct $name;

                impl utoipa::IntoResponses for $name {
                    fn responses() -> BTreeMap<String, RefOr<Response>> {
                        BTreeMap::from([($status.to_owned(), problem($description))])
                    }
                }
            )*
        };
    }

    problem_responses! {
        /// 400: a malformed query, cursor or body.
        BadRequest = "400", "Malformed request (`invalid_query`, `invalid_body`, `invalid_cursor`, ...)";
        /// 401: no valid credentials.
        Unauthorized = "401", "Missing, invalid, expired or revoked credentials (`unauthorized`)";
        /// 403: signed in, but not allowed.
        Forbidden = "403", "Not allowed (`forbidden`, or a more specific code)";
        /// 404: no such object, or not the caller's to see.
        NotFound = "404", "No such object, or not visible to the caller (`not_found`)";
        /// 409: the request conflicts with the current state.
        Conflict = "409", "Conflicts with the current state (a taken name, an illegal transition)";
        /// 412: `If-Match` no longer matches.
        PreconditionFailed = "412", "The object has changed since the `If-Match` version (`precondition_failed`)";
        /// 413: the body is too large.
        TooLarge = "413", "The body or file is too large (`payload_too_large`)";
        /// 415: the wrong content type.
        UnsupportedType = "415", "The content type is not accepted (`unsupported_media_type`)";
        /// 422: fields failed validation.
        Invalid = "422", "Some fields are invalid (`validation_failed`, one entry per field)";
        /// 429: too many requests.
        TooMany = "429", "Too many requests (`rate_limited`); see `Retry-After`";
        /// 502: an upstream service (a payment provider) refused.
        BadGateway = "502", "An upstream service refused the request (`provider_refused`)";
        /// 503: an upstream service (a payment provider) cannot be reached.
        Unavailable = "503", "An upstream service cannot be reached; retry later (`provider_unavailable`)";
        /// 504: a statement ran past its timeout.
        QueryTimeout = "504", "The query ran past the statement timeout (`query_timeout`)";
    }
}
