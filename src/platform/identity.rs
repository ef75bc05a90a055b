//! Who is calling: verifies access tokens (issuing them is the `auth` domain's job), so every
//! domain works with tokens whether or not `auth` is compiled in, even tokens minted by another
//! Basalt instance that shares the secret.
//!
//! Handlers take a `CurrentUser` argument (401 problem when the token is missing, bad or
//! revoked) and
//! call `user.require("catalog.products.moderate")?` (403 problem when not allowed).

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::ExposeSecret;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

use crate::config::IdentitySettings;
use crate::platform::error::ApiError;
use crate::platform::revocation::Revocations;

/// The claims of a Basalt access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    pub sub: String,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub permissions: Vec<String>,
    pub jti: String,
    /// The session (refresh-token family) the token was issued for, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
}

/// The signed-in caller of a request.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub id: String,
    pub roles: Vec<String>,
    pub permissions: Vec<String>,
    pub token_id: String,
    pub session_id: Option<String>,
    pub expires_at: i64,
}

impl CurrentUser {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// Permissions match exactly or by a trailing wildcard segment (`catalog.*`); the `admin`
    /// role holds every permission.
    pub fn can(&self, permission: &str) -> bool {
        self.has_role("admin")
            || self.permissions.iter().any(|p| {
                p == permission
                    || p == "*"
                    || p.strip_suffix(".*")
                        .is_some_and(|prefix| permission.starts_with(&format!("{prefix}.")))
            })
    }

    pub fn require(&self, permission: &str) -> Result<(), ApiError> {
        if self.can(permission) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "This needs the permission {permission}."
            )))
        }
    }
}

/// Verifies HS256 access tokens. Only HS256 is accepted, so `alg: none` and algorithm
/// confusion (an RSA public key used as an HMAC secret) are rejected before any check.
pub struct TokenVerifier {
    decoding: DecodingKey,
    encoding: EncodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
}

impl TokenVerifier {
    pub fn new(settings: &IdentitySettings) -> Self {
        let secret = settings.jwt_secret.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        validation.leeway = 5;
        Self {
            decoding: DecodingKey::from_secret(secret),
            encoding: EncodingKey::from_secret(secret),
            validation,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
        }
    }

    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                match e.kind() {
                    ErrorKind::ExpiredSignature => {
                        ApiError::unauthorized("The access token has expired.")
                    }
                    _ => ApiError::unauthorized("The access token is not valid."),
                }
            })
    }

    /// Signs claims with this instance's key; used by the `auth` domain and by tests.
    pub fn sign(&self, claims: &Claims) -> Result<String, ApiError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(ApiError::internal)
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }
}

/// The bearer token of a request, if it has one.
pub fn bearer_token(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Resolves `X-Api-Key` headers to their owner and scopes. The `auth` domain, which owns
/// the keys, registers one; without it API keys are refused.
pub trait ApiKeyResolver: Send + Sync + 'static {
    fn resolve(&self, key: String) -> LocalBoxFuture<'static, Result<CurrentUser, ApiError>>;
}

/// Where the resolver is registered (set once, by the owning domain's `init`).
#[derive(Default, Clone)]
pub struct ApiKeys(pub Arc<OnceLock<Arc<dyn ApiKeyResolver>>>);

impl FromRequest for CurrentUser {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        if bearer_token(req).is_none()
            && let Some(key) = req.headers().get("x-api-key")
        {
            let key = key.to_str().unwrap_or_default().to_owned();
            let resolver = req
                .app_data::<web::Data<ApiKeys>>()
                .and_then(|k| k.0.get().cloned());
            return Box::pin(async move {
                match resolver {
                    Some(resolver) => resolver.resolve(key).await,
                    None => Err(ApiError::unauthorized(
                        "API keys need the auth domain, which is not enabled.",
                    )),
                }
            });
        }
        let verified = verify_request(req);
        let revocations = req.app_data::<web::Data<Revocations>>().cloned();
        Box::pin(async move {
            let claims = verified?;
            if let Some(revocations) = revocations
                && revocations.is_revoked(&claims).await
            {
                return Err(ApiError::unauthorized("The access token has been revoked."));
            }
            Ok(CurrentUser {
                id: claims.sub,
                roles: claims.roles,
                permissions: claims.permissions,
                token_id: claims.jti,
                session_id: claims.sid,
                expires_at: claims.exp,
            })
        })
    }
}

/// Checks the bearer token's signature and claims (not revocation).
fn verify_request(req: &HttpRequest) -> Result<Claims, ApiError> {
    let token = bearer_token(req).ok_or_else(|| {
        ApiError::unauthorized("Sign in: send Authorization: Bearer <access token>.")
    })?;
    let verifier = req
        .app_data::<web::Data<TokenVerifier>>()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("TokenVerifier is not registered")))?;
    verifier.verify(token)
}
