//! Who is calling: verifies access tokens (issuing them is the `auth` domain's job), so every
//! domain works with tokens whether or not `auth` is compiled in, even tokens minted by another
//! Basalt instance that shares the secret.
//!
//! Handlers take a `CurrentUser` argument (401 problem when the token is missing, bad or
//! revoked) and
//! call `user.require("catalog.products.moderate")?` (403 problem when not allowed).

use actix_web::dev::Payload;
use actix_web::http::{Method, StatusCode, header};
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::ExposeSecret;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

use crate::config::IdentitySettings;
use crate::platform::error::ApiError;
use crate::platform::http::request_id;
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
    /// Whether the account had proven its email address when the token was issued (the
    /// OIDC claim). What a squatter who registered someone else's address first must not
    /// be able to do (API keys, webhooks) needs it.
    #[serde(default)]
    pub email_verified: bool,
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
    /// Whether the account's email address is verified (see [`Claims::email_verified`]).
    pub email_verified: bool,
}

impl CurrentUser {
    /// The caller's id as a local account id; 403 for tokens whose subject is not a UUID
    /// (issued elsewhere for something that is not an account here).
    pub fn uuid(&self) -> Result<uuid::Uuid, ApiError> {
        uuid::Uuid::parse_str(&self.id)
            .map_err(|_| ApiError::forbidden("This token is not for a local account."))
    }

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

    /// Whether the caller is an API key acting for its owner (not a signed-in session).
    pub fn is_api_key(&self) -> bool {
        self.token_id.starts_with(API_KEY_TOKEN_PREFIX)
    }

    /// How events and the audit trail name this caller: `user:<id>` or `api_key:<id>`.
    pub fn actor(&self) -> String {
        match self.token_id.strip_prefix(API_KEY_TOKEN_PREFIX) {
            Some(key) => format!("api_key:{key}"),
            None => format!("user:{}", self.id),
        }
    }

    /// The owner of an object, or staff holding `permission` (`orders.read_any`): the
    /// ownership rule every domain applies the same way. Anyone else gets a 404, as if the
    /// object did not exist, so ids cannot be probed.
    pub fn owns_or(&self, owner: &str, permission: &str) -> Result<(), ApiError> {
        if self.id == owner || self.can(permission) {
            Ok(())
        } else {
            Err(ApiError::not_found("No such object, or not yours."))
        }
    }

    /// 403 `email_not_verified` unless the account has proven its email address: for what
    /// would outlive an account squatted by someone who registered the address first
    /// (account pre-hijacking): API keys, webhook endpoints.
    pub fn require_verified_email(&self) -> Result<(), ApiError> {
        if self.email_verified {
            Ok(())
        } else {
            Err(ApiError::new(StatusCode::FORBIDDEN, "email_not_verified")
                .detail("Verify your email address first (then sign in again)."))
        }
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

/// `token_id` of a caller authenticated by an API key: `apikey:<key id>`.
pub const API_KEY_TOKEN_PREFIX: &str = "apikey:";

/// The caller when signing in is optional (public catalog reads, guest carts): no
/// credentials at all is `MaybeUser(None)`, an anonymous caller; credentials that are
/// present but bad are still a 401, never silently anonymous.
#[derive(Debug, Clone)]
pub struct MaybeUser(pub Option<CurrentUser>);

impl MaybeUser {
    pub fn user(&self) -> Option<&CurrentUser> {
        self.0.as_ref()
    }

    /// Whether the caller holds `permission` (an anonymous caller holds none).
    pub fn can(&self, permission: &str) -> bool {
        self.0.as_ref().is_some_and(|u| u.can(permission))
    }

    /// Whether the caller is `owner` or holds `permission`.
    pub fn owns_or_can(&self, owner: &str, permission: &str) -> bool {
        self.0
            .as_ref()
            .is_some_and(|u| u.owns_or(owner, permission).is_ok())
    }
}

impl FromRequest for MaybeUser {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let presented = req.headers().contains_key(header::AUTHORIZATION)
            || req.headers().contains_key("x-api-key");
        if !presented {
            return Box::pin(async { Ok(MaybeUser(None)) });
        }
        // Its one user, `grants::Caller`, checks an API key's scopes in each handler.
        let _ = payload;
        let user = authenticate(req);
        Box::pin(async move { Ok(MaybeUser(Some(user.await?))) })
    }
}

/// Verifies (and signs) access tokens with exactly one algorithm: HS256 with the shared
/// secret, or EdDSA / RS256 with `kid`-named keys. A token whose header names any other
/// algorithm is refused before its signature is looked at, so `alg: none` and algorithm
/// confusion (a public key used as an HMAC secret) cannot pass.
pub struct TokenVerifier {
    algorithm: Algorithm,
    /// (kid, key) that signs; `None` kid for HS256.
    signer: (Option<String>, EncodingKey),
    /// HS256: the one key under `None`; asymmetric: every configured kid.
    verifiers: HashMap<Option<String>, DecodingKey>,
    jwks: JwkSet,
    validation: Validation,
    issuer: String,
    audience: String,
    /// Tokens whose signature and claims already checked out, by their exact text: a client
    /// sends the same access token on every request until it expires, and checking it again
    /// (base64, two JSON parses, an HMAC or a signature) was a fifth of a document read's
    /// instructions. Only what `verify` accepted goes in; expiry is still checked on every
    /// use, and revocation is the caller's, as before. The keys never change while the
    /// process runs, so an entry stays true until it expires.
    verified: quick_cache::sync::Cache<Box<str>, Arc<Claims>>,
}

/// Distinct valid tokens remembered at once (a few hundred bytes each).
const VERIFIED_TOKENS: usize = 4096;

impl TokenVerifier {
    /// Loads the keys; errors name the configuration key at fault.
    pub fn new(settings: &IdentitySettings) -> anyhow::Result<Self> {
        let algorithm = match settings.algorithm.as_str() {
            "EdDSA" => Algorithm::EdDSA,
            "RS256" => Algorithm::RS256,
            _ => Algorithm::HS256,
        };
        let mut verifiers = HashMap::new();
        let mut jwks = JwkSet { keys: Vec::new() };
        let signer = if algorithm == Algorithm::HS256 {
            let secret = settings.jwt_secret.expose_secret().as_bytes();
            verifiers.insert(None, DecodingKey::from_secret(secret));
            (None, EncodingKey::from_secret(secret))
        } else {
            let mut signer = None;
            for (i, key) in settings.keys.iter().enumerate() {
                let at = format!("identity.keys[{i}].private_key_file");
                let pem = std::fs::read(&key.private_key_file).map_err(|e| {
                    anyhow::anyhow!("{at}: cannot read {:?}: {e}", key.private_key_file)
                })?;
                let encoding = match algorithm {
                    Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem),
                    _ => EncodingKey::from_rsa_pem(&pem),
                }
                .map_err(|e| anyhow::anyhow!("{at}: not a {:?} private key: {e}", algorithm))?;
                let mut jwk = Jwk::from_encoding_key(&encoding, algorithm)
                    .map_err(|e| anyhow::anyhow!("{at}: {e}"))?;
                jwk.common.key_id = Some(key.kid.clone());
                jwk.common.public_key_use = Some(PublicKeyUse::Signature);
                let decoding =
                    DecodingKey::from_jwk(&jwk).map_err(|e| anyhow::anyhow!("{at}: {e}"))?;
                verifiers.insert(Some(key.kid.clone()), decoding);
                jwks.keys.push(jwk);
                signer.get_or_insert((Some(key.kid.clone()), encoding));
            }
            signer.ok_or_else(|| {
                anyhow::anyhow!("identity.keys: {} needs a signing key", settings.algorithm)
            })?
        };
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        validation.leeway = 5;
        Ok(Self {
            algorithm,
            signer,
            verifiers,
            jwks,
            validation,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            verified: quick_cache::sync::Cache::new(VERIFIED_TOKENS),
        })
    }

    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        if let Some(claims) = self.verified.get(token) {
            let now = jsonwebtoken::get_current_timestamp() as i64;
            if claims.exp.saturating_add(self.validation.leeway as i64) >= now {
                return Ok(Claims::clone(&claims));
            }
            self.verified.remove(token);
            return Err(ApiError::unauthorized("The access token has expired."));
        }
        let claims = self.verify_uncached(token)?;
        self.verified.insert(token.into(), Arc::new(claims.clone()));
        Ok(claims)
    }

    fn verify_uncached(&self, token: &str) -> Result<Claims, ApiError> {
        let invalid = || ApiError::unauthorized("The access token is not valid.");
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid())?;
        if header.alg != self.algorithm {
            return Err(invalid());
        }
        let kid = if self.algorithm == Algorithm::HS256 {
            None
        } else {
            header.kid
        };
        let key = self.verifiers.get(&kid).ok_or_else(invalid)?;
        jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    ApiError::unauthorized("The access token has expired.")
                }
                _ => invalid(),
            })
    }

    /// Signs claims with the current key; used by the `auth` domain and by tests.
    pub fn sign(&self, claims: &Claims) -> Result<String, ApiError> {
        let mut header = Header::new(self.algorithm);
        header.kid = self.signer.0.clone();
        jsonwebtoken::encode(&header, claims, &self.signer.1).map_err(ApiError::internal)
    }

    /// The public keys, for /.well-known/jwks.json; empty for HS256 (a shared secret is never
    /// published).
    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }
}

/// The bearer token of a request, if it has one (the scheme is case-insensitive, RFC 9110).
/// Read with `from_utf8` rather than `HeaderValue::to_str`, whose byte-at-a-time check cost
/// 4 % of a document read; a token with bytes no token has fails its verification (401).
pub fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let (scheme, token) = std::str::from_utf8(req.headers().get(header::AUTHORIZATION)?.as_bytes())
        .ok()?
        .split_once(' ')?;
    Some(token.trim()).filter(|t| scheme.eq_ignore_ascii_case("bearer") && !t.is_empty())
}

/// Resolves `X-Api-Key` headers to their owner and scopes. The `auth` domain, which owns
/// the keys, registers one; without it API keys are refused.
pub trait ApiKeyResolver: Send + Sync + 'static {
    fn resolve(&self, key: String) -> LocalBoxFuture<'static, Result<CurrentUser, ApiError>>;
}

/// Where the resolver is registered (set once, by the owning domain's `init`).
#[derive(Default, Clone)]
pub struct ApiKeys(pub Arc<OnceLock<Arc<dyn ApiKeyResolver>>>);

/// What an account holds now (its roles and permissions, as a `CurrentUser` with no token),
/// for work done outside a request on an account's behalf: a webhook endpoint created by an
/// administrator must stop receiving everyone's events when its owner is demoted or deleted.
/// `None` when the account no longer exists. The `auth` domain registers one.
pub trait AccountLookup: Send + Sync + 'static {
    fn grants_of(
        &self,
        user: uuid::Uuid,
    ) -> futures_util::future::BoxFuture<'static, Result<Option<CurrentUser>, ApiError>>;
}

/// Where the lookup is registered (set once, by the owning domain's `init`). Without one,
/// what a caller held when it acted is all there is to go by.
#[derive(Default, Clone)]
pub struct Accounts(pub Arc<OnceLock<Arc<dyn AccountLookup>>>);

impl Accounts {
    /// The account's current grants; `Ok(None)` if it is gone, `Err` if they cannot be
    /// known (no lookup registered, or the lookup failed).
    pub async fn grants_of(&self, user: uuid::Uuid) -> Result<Option<CurrentUser>, ApiError> {
        match self.0.get() {
            Some(lookup) => lookup.grants_of(user).await,
            None => Err(ApiError::internal(anyhow::anyhow!(
                "no domain looks accounts up"
            ))),
        }
    }

    pub fn available(&self) -> bool {
        self.0.get().is_some()
    }
}

impl FromRequest for CurrentUser {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    /// The signed-in caller. An API key is let in only when it carries the route's scope
    /// ([`route_scope`]): routes that take a plain signed-in user check no scope themselves,
    /// and a key scoped `databases.read` must not create webhooks or sign its owner out.
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let scope = route_scope(req.method(), req.path());
        let user = authenticate(req);
        Box::pin(async move {
            let user = user.await?;
            if user.is_api_key() && !user.can(&scope) {
                return Err(ApiError::forbidden(format!(
                    "This API key lacks the scope {scope} this route needs."
                )));
            }
            Ok(user)
        })
    }
}

/// The scope an API key needs on a route that takes a plain signed-in user:
/// `<domain>.read` for GET and HEAD, `<domain>.write` for anything else, the domain being the
/// path segment after `/api/v1/` (`databases`, `storage`, `notifications`, `auth`, ...).
/// Handlers may require more (`notifications.messages.manage`); never less.
pub fn route_scope(method: &Method, path: &str) -> String {
    let domain = path
        .strip_prefix("/api/v1/")
        .and_then(|rest| rest.split('/').next())
        .filter(|s| !s.is_empty())
        .unwrap_or("system");
    let access = if method == Method::GET || method == Method::HEAD {
        "read"
    } else {
        "write"
    };
    format!("{domain}.{access}")
}

/// Who is calling, by bearer token or API key (401 when neither is valid), with no check of
/// an API key's scopes.
fn authenticate(req: &HttpRequest) -> LocalBoxFuture<'static, Result<CurrentUser, ApiError>> {
    let bearer = bearer_token(req);
    if bearer.is_none()
        && let Some(key) = req.headers().get("x-api-key")
    {
        let key = key.to_str().unwrap_or_default().to_owned();
        let resolver = req
            .app_data::<web::Data<ApiKeys>>()
            .and_then(|k| k.0.get().cloned());
        return Box::pin(async move {
            let user = match resolver {
                Some(resolver) => resolver.resolve(key).await?,
                None => {
                    return Err(ApiError::unauthorized(
                        "API keys need the auth domain, which is not enabled.",
                    ));
                }
            };
            request_id::set_actor(user.actor());
            Ok(user)
        });
    }
    let verified = verify_bearer(req, bearer);
    let revocations = req.app_data::<web::Data<Revocations>>().cloned();
    Box::pin(async move {
        let claims = verified?;
        if let Some(revocations) = revocations
            && revocations.is_revoked(&claims).await
        {
            return Err(ApiError::unauthorized("The access token has been revoked."));
        }
        let user = CurrentUser {
            id: claims.sub,
            roles: claims.roles,
            permissions: claims.permissions,
            token_id: claims.jti,
            session_id: claims.sid,
            expires_at: claims.exp,
            email_verified: claims.email_verified,
        };
        request_id::set_actor(user.actor());
        Ok(user)
    })
}

/// Checks the bearer token's signature and claims (not revocation); `token` is the request's
/// bearer token, read once by the caller.
fn verify_bearer(req: &HttpRequest, token: Option<&str>) -> Result<Claims, ApiError> {
    let token = token.ok_or_else(|| {
        ApiError::unauthorized("Sign in: send Authorization: Bearer <access token>.")
    })?;
    let verifier = req
        .app_data::<web::Data<TokenVerifier>>()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("TokenVerifier is not registered")))?;
    verifier.verify(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier() -> TokenVerifier {
        TokenVerifier::new(&IdentitySettings {
            jwt_secret: "a-secret-that-is-long-enough-for-hs256-use"
                .to_owned()
                .into(),
            issuer: "basalt".into(),
            audience: "basalt-api".into(),
            algorithm: "HS256".into(),
            keys: Vec::new(),
        })
        .unwrap()
    }

    fn claims(exp_in: i64) -> Claims {
        let now = jsonwebtoken::get_current_timestamp() as i64;
        Claims {
            sub: "u1".into(),
            roles: vec!["user".into()],
            permissions: Vec::new(),
            jti: "j1".into(),
            email_verified: true,
            sid: None,
            iat: now,
            exp: now + exp_in,
            iss: "basalt".into(),
            aud: "basalt-api".into(),
        }
    }

    #[test]
    fn remembered_tokens_are_matched_exactly_and_still_expire() {
        let v = verifier();
        let token = v.sign(&claims(600)).unwrap();
        assert_eq!(v.verify(&token).unwrap(), claims_of(&v, &token));
        // Remembered now; a token differing in one signature character is still checked.
        assert_eq!(v.verify(&token).unwrap().sub, "u1");
        let mut forged = token.clone().into_bytes();
        let last = forged.len() - 2;
        forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        assert!(v.verify(&forged).is_err());
        // A remembered token whose time is up is refused as expired, and forgotten.
        let stale = v.sign(&claims(-60)).unwrap();
        v.verified
            .insert(stale.as_str().into(), Arc::new(claims(-60)));
        let err = v.verify(&stale).unwrap_err();
        assert_eq!(err.detail_text(), Some("The access token has expired."));
        assert!(v.verified.get(stale.as_str()).is_none());
    }

    fn claims_of(v: &TokenVerifier, token: &str) -> Claims {
        v.verify_uncached(token).unwrap()
    }
}
