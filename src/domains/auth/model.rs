//! Ids, and the request and response bodies of the auth API. Requests refuse unknown
//! fields, so a typo is a 400 rather than a silently ignored value.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

crate::id_type!(
    /// An account.
    UserId
);
crate::id_type!(
    /// A session: one refresh-token family, from sign-in to sign-out.
    SessionId
);
crate::id_type!(
    /// A server-to-server API key.
    ApiKeyId
);

/// Trimmed and lower-cased: the form every email is stored and compared in.
pub fn normalise_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Normalises while deserialising, so validation sees the address that will be stored.
fn email_field<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    String::deserialize(d).map(|e| normalise_email(&e))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "ada@example.com", "password": "correct horse battery staple", "first_name": "Ada", "last_name": "Lovelace"}))]
pub struct RegisterRequest {
    #[validate(email, length(max = 254))]
    #[serde(deserialize_with = "email_field")]
    pub email: String,
    /// 12 to 128 characters by default, not a common password.
    pub password: String,
    #[validate(length(min = 1, max = 100))]
    pub first_name: String,
    #[validate(length(min = 1, max = 100))]
    pub last_name: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "0193a5f6-7d2c-7b9e-9f10-3c4d5e6f7a8b", "email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace", "email_verified": false, "roles": ["user"], "created_at": "2026-11-21T10:00:00Z"}))]
pub struct UserResponse {
    pub id: UserId,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub email_verified: bool,
    pub roles: Vec<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "ada@example.com", "password": "correct horse battery staple"}))]
pub struct LoginRequest {
    #[validate(length(min = 1, max = 254))]
    #[serde(deserialize_with = "email_field")]
    pub email: String,
    #[validate(length(min = 1, max = 1024))]
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"access_token": "eyJhbGciOiJIUzI1NiJ9...", "token_type": "Bearer", "expires_in": 900, "refresh_token": "brt_0193a5f67d2c7b9e9f103c4d5e6f7a8b.0.q3J...", "refresh_expires_at": "2026-12-21T10:00:00Z", "session_id": "0193a5f6-7d2c-7b9e-9f10-3c4d5e6f7a8b"}))]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Opaque; send it to /refresh for a new pair. Each one works once.
    pub refresh_token: String,
    pub refresh_expires_at: DateTime<Utc>,
    pub session_id: SessionId,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    #[validate(length(min = 1, max = 256))]
    pub refresh_token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionResponse {
    pub id: SessionId,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The session of the token making this request.
    pub current: bool,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The token from the emailed link.
    #[validate(length(min = 1, max = 256))]
    pub token: String,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailRequest {
    #[validate(length(min = 1, max = 254))]
    #[serde(deserialize_with = "email_field")]
    pub email: String,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    #[validate(length(min = 1, max = 256))]
    pub token: String,
    pub password: String,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    #[validate(length(min = 1, max = 1024))]
    pub current_password: String,
    pub new_password: String,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMeRequest {
    #[validate(length(min = 1, max = 100))]
    pub first_name: Option<String>,
    #[validate(length(min = 1, max = 100))]
    pub last_name: Option<String>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteMeRequest {
    #[validate(length(min = 1, max = 1024))]
    pub password: String,
}

/// Accepted: if the account exists, an email is on its way.
#[derive(Debug, Serialize, ToSchema)]
pub struct AcceptedResponse {
    pub status: &'static str,
}

/// Permission strings: dotted lower-case segments, the last may be `*` (`catalog.products.*`).
pub fn valid_permission(p: &str) -> bool {
    let mut segments = p.split('.').peekable();
    let mut ok = p.len() <= 128;
    while let Some(seg) = segments.next() {
        let last = segments.peek().is_none();
        ok &= (last && seg == "*" && p != "*")
            || (!seg.is_empty()
                && seg.starts_with(|c: char| c.is_ascii_lowercase())
                && seg
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'));
    }
    ok
}

fn validate_permissions(permissions: &[String]) -> Result<(), validator::ValidationError> {
    if permissions.len() > 100 || !permissions.iter().all(|p| valid_permission(p)) {
        let mut e = validator::ValidationError::new("permission");
        e.message = Some(
            "must be at most 100 dotted lower-case names like catalog.products.moderate".into(),
        );
        return Err(e);
    }
    Ok(())
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "inventory sync", "scopes": ["catalog.products.write"], "expires_at": "2027-06-01T00:00:00Z"}))]
pub struct CreateApiKeyRequest {
    #[validate(length(min = 1, max = 100))]
    pub name: String,
    /// Permissions the key may use; each must be one its owner holds.
    #[validate(custom(function = "validate_permissions"))]
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyResponse {
    pub id: ApiKeyId,
    pub name: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// Only in the response that creates the key: send it as `X-Api-Key`. It cannot be shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "moderator", "description": "Reviews listings", "permissions": ["catalog.products.moderate"]}))]
pub struct CreateRoleRequest {
    #[validate(custom(function = "validate_role_name"))]
    pub name: String,
    #[validate(length(max = 500))]
    #[serde(default)]
    pub description: String,
    #[validate(custom(function = "validate_permissions"))]
    #[serde(default)]
    pub permissions: Vec<String>,
}

fn validate_role_name(name: &str) -> Result<(), validator::ValidationError> {
    let ok = (2..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        return Ok(());
    }
    let mut e = validator::ValidationError::new("role_name");
    e.message =
        Some("must be 2-63 lower-case letters, digits, _ or -, starting with a letter".into());
    Err(e)
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolePermissionsRequest {
    #[validate(custom(function = "validate_permissions"))]
    pub permissions: Vec<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RoleResponse {
    pub name: String,
    pub description: String,
    pub builtin: bool,
    pub permissions: Vec<String>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRoleRequest {
    #[validate(length(min = 1, max = 63))]
    pub role: String,
}
