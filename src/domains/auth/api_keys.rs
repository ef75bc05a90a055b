//! API keys for server-to-server calls: created by a signed-in user with scopes no wider than
//! their own permissions, shown once, sent as `X-Api-Key`, and resolved for the kernel's
//! `CurrentUser` extractor by [`Resolver`].

use actix_web::{HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, Utc};
use futures_util::future::LocalBoxFuture;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use utoipa::OpenApi;

use super::access;
use super::error::{API_KEYS_USER_FKEY, AuthError};
use super::model::{ApiKeyId, ApiKeyResponse, CreateApiKeyRequest, UserId};
use super::repo::{self, ApiKeyRow};
use crate::platform::error::responses::{BadRequest, Forbidden, Invalid, NotFound, Unauthorized};
use crate::platform::error::{ApiError, FieldError, OnConstraint};
use crate::platform::http::{Endpoint, Routes, ValidatedJson};
use crate::platform::identity::{API_KEY_TOKEN_PREFIX, ApiKeyResolver};
use crate::platform::page::{Page, PageQuery};
use crate::platform::{CurrentUser, Platform};

#[derive(OpenApi)]
#[openapi(paths(create_api_key, list_api_keys, revoke_api_key))]
pub struct ApiKeysApi;

pub fn configure(routes: &mut Routes) {
    routes
        .add(
            Endpoint::at("/api-keys")
                .get(list_api_keys)
                .post(create_api_key),
        )
        .add(Endpoint::at("/api-keys/{id}").delete(revoke_api_key));
}

fn response(k: ApiKeyRow, key: Option<String>) -> ApiKeyResponse {
    ApiKeyResponse {
        id: k.id,
        name: k.name,
        scopes: k.scopes,
        expires_at: k.expires_at,
        last_used_at: k.last_used_at,
        created_at: k.created_at,
        key,
    }
}

fn owner(user: &CurrentUser) -> Result<UserId, AuthError> {
    // A key cannot mint keys: only a person signed in with a token can.
    if user.is_api_key() {
        return Err(AuthError::KeysCannotManageKeys);
    }
    access::caller(user)
}

/// Create an API key. The key is in this response only.
///
/// 422 for a scope the owner does not hold, or a past expiry; 403 when the caller is itself
/// an API key, or `email_not_verified` before the account's email address is verified.
#[utoipa::path(
    post, path = "/api-keys", tag = "auth", request_body = CreateApiKeyRequest, security(("bearer" = [])),
    responses((status = 201, body = ApiKeyResponse), Unauthorized, Forbidden, Invalid)
)]
pub async fn create_api_key(
    platform: web::Data<Platform>,
    user: CurrentUser,
    body: ValidatedJson<CreateApiKeyRequest>,
) -> Result<HttpResponse, AuthError> {
    let owner_id = owner(&user)?;
    // A key outlives sessions: only the proven owner of the address may make one.
    user.require_verified_email()?;
    let body = body.into_inner();
    let mut errors = Vec::new();
    if let Some(scope) = body.scopes.iter().find(|s| !user.can(s)) {
        errors.push(FieldError {
            field: "scopes".into(),
            code: "not_held".into(),
            message: format!("{scope} is not a permission you hold"),
        });
    }
    if body.expires_at.is_some_and(|e| e <= Utc::now()) {
        errors.push(FieldError {
            field: "expires_at".into(),
            code: "past".into(),
            message: "must be in the future".into(),
        });
    }
    if !errors.is_empty() {
        return Err(AuthError::invalid(errors));
    }
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let secret = B64.encode(secret);
    let row = ApiKeyRow {
        id: ApiKeyId::new(),
        user_id: owner_id,
        name: body.name.trim().to_owned(),
        secret_hash: Sha256::digest(secret.as_bytes()).to_vec(),
        scopes: body.scopes,
        expires_at: body.expires_at,
        last_used_at: None,
        created_at: Utc::now(),
        revoked_at: None,
    };
    let mut conn = platform.db.acquire().await?;
    // A token still valid for an account deleted since (on a replica without Redis, the
    // revocation reaches it only at expiry).
    repo::insert_api_key(&mut conn, &row)
        .await
        .on_constraint(API_KEYS_USER_FKEY, || {
            AuthError::AccountDeleted.unauthenticated()
        })?;
    let key = format!("bsk_{}_{secret}", row.id.0.simple());
    Ok(HttpResponse::Created().json(response(row, Some(key))))
}

/// The signed-in user's live API keys, oldest first (never their secrets).
#[utoipa::path(
    get, path = "/api-keys", tag = "auth", params(PageQuery), security(("bearer" = [])),
    responses((status = 200, body = Page<ApiKeyResponse>), BadRequest, Unauthorized, Forbidden)
)]
pub async fn list_api_keys(
    platform: web::Data<Platform>,
    user: CurrentUser,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, AuthError> {
    let after = query.cursor::<(DateTime<Utc>, ApiKeyId)>()?;
    let rows = repo::api_keys_of(&platform.db, owner(&user)?, after, query.fetch()?).await?;
    let page = Page::from_rows(
        rows,
        query.limit()?,
        |k| (k.created_at, k.id),
        |k| response(k, None),
    );
    Ok(HttpResponse::Ok().json(page))
}

/// Revoke one of the signed-in user's API keys (404 for anyone else's).
#[utoipa::path(
    delete, path = "/api-keys/{id}", tag = "auth", security(("bearer" = [])),
    params(("id" = ApiKeyId, Path, description = "API key id")),
    responses((status = 204), Unauthorized, Forbidden, NotFound)
)]
pub async fn revoke_api_key(
    platform: web::Data<Platform>,
    user: CurrentUser,
    id: web::Path<ApiKeyId>,
) -> Result<HttpResponse, AuthError> {
    if !repo::revoke_api_key(&platform.db, owner(&user)?, id.into_inner()).await? {
        return Err(AuthError::ApiKeyNotFound);
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Resolves `X-Api-Key: bsk_<id>_<secret>` for the kernel.
pub struct Resolver {
    pub db: PgPool,
}

impl ApiKeyResolver for Resolver {
    fn resolve(&self, key: String) -> LocalBoxFuture<'static, Result<CurrentUser, ApiError>> {
        let db = self.db.clone();
        Box::pin(async move {
            let invalid = || ApiError::unauthorized("The API key is not valid.");
            let rest = key.strip_prefix("bsk_").ok_or_else(invalid)?;
            let (id, secret) = rest.split_once('_').ok_or_else(invalid)?;
            let id: ApiKeyId = id.parse().map_err(|_| invalid())?;
            let row = repo::api_key(&db, id).await?.ok_or_else(invalid)?;
            let presented = Sha256::digest(secret.as_bytes());
            // Constant-time: a timing difference must not leak how much of a hash matched.
            let same = presented.len() == row.secret_hash.len()
                && presented
                    .iter()
                    .zip(&row.secret_hash)
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0;
            let live = row.revoked_at.is_none() && row.expires_at.is_none_or(|e| e > Utc::now());
            if !(same && live) {
                return Err(invalid());
            }
            repo::touch_api_key(&db, id).await?;
            // A key never outranks its owner: scopes the owner has since lost are dropped.
            let mut conn = db.acquire().await?;
            let (roles, permissions) = repo::grants(&mut conn, row.user_id).await?;
            let email_verified = repo::is_verified(&mut conn, row.user_id).await?;
            let owner = CurrentUser {
                id: row.user_id.to_string(),
                roles,
                permissions,
                token_id: String::new(),
                session_id: None,
                expires_at: 0,
                email_verified,
            };
            let scopes = row.scopes.into_iter().filter(|s| owner.can(s)).collect();
            Ok(CurrentUser {
                id: row.user_id.to_string(),
                roles: Vec::new(),
                permissions: scopes,
                token_id: format!("{API_KEY_TOKEN_PREFIX}{id}"),
                session_id: None,
                expires_at: row.expires_at.map_or(i64::MAX, |e| e.timestamp()),
                email_verified,
            })
        })
    }
}
