//! API keys for server-to-server calls: created by a signed-in user with scopes no wider than
//! their own permissions, shown once, sent as `X-Api-Key`, and resolved for the kernel's
//! `CurrentUser` extractor by [`Resolver`].

use crate::platform::http::{Endpoint, Routes};
use actix_web::{HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::Utc;
use futures_util::future::LocalBoxFuture;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use super::model::{ApiKeyResponse, CreateApiKeyRequest};
use super::repo::{self, ApiKeyRow};
use crate::platform::error::{ApiError, FieldError, Problem};
use crate::platform::http::ValidatedJson;
use crate::platform::identity::ApiKeyResolver;
use crate::platform::{CurrentUser, Platform};

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

fn owner(user: &CurrentUser) -> Result<Uuid, ApiError> {
    // A key cannot mint keys: only a person signed in with a token can.
    if user.is_api_key() {
        return Err(ApiError::forbidden(
            "API keys cannot manage API keys; sign in.",
        ));
    }
    user.uuid()
}

/// Create an API key. The key is in this response only.
#[utoipa::path(
    post, path = "/api-keys", tag = "auth", request_body = CreateApiKeyRequest, security(("bearer" = [])),
    responses(
        (status = 201, body = ApiKeyResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A scope the owner does not hold, or a past expiry", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_api_key(
    platform: web::Data<Platform>,
    user: CurrentUser,
    body: ValidatedJson<CreateApiKeyRequest>,
) -> Result<HttpResponse, ApiError> {
    let owner_id = owner(&user)?;
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
        return Err(ApiError::validation(errors));
    }
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let secret = B64.encode(secret);
    let row = ApiKeyRow {
        id: Uuid::now_v7(),
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
    repo::insert_api_key(&mut conn, &row)
        .await
        .map_err(|e| match &e {
            // A token still valid for an account deleted since (on a replica without Redis, the
            // revocation reaches it only at expiry).
            sqlx::Error::Database(d) if d.is_foreign_key_violation() => {
                ApiError::unauthorized("The account this token belongs to no longer exists.")
            }
            _ => e.into(),
        })?;
    let key = format!("bsk_{}_{secret}", row.id.simple());
    Ok(HttpResponse::Created().json(response(row, Some(key))))
}

/// The signed-in user's live API keys (never their secrets).
#[utoipa::path(
    get, path = "/api-keys", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Vec<ApiKeyResponse>), (status = 401, body = Problem, content_type = "application/problem+json"))
)]
pub async fn list_api_keys(
    platform: web::Data<Platform>,
    user: CurrentUser,
) -> Result<HttpResponse, ApiError> {
    let keys = repo::api_keys_of(&platform.db, owner(&user)?).await?;
    Ok(HttpResponse::Ok().json(
        keys.into_iter()
            .map(|k| response(k, None))
            .collect::<Vec<_>>(),
    ))
}

/// Revoke one of the signed-in user's API keys (404 for anyone else's).
#[utoipa::path(
    delete, path = "/api-keys/{id}", tag = "auth", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "API key id")),
    responses((status = 204), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
pub async fn revoke_api_key(
    platform: web::Data<Platform>,
    user: CurrentUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    if !repo::revoke_api_key(&platform.db, owner(&user)?, id.into_inner()).await? {
        return Err(ApiError::not_found("No such API key."));
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
            let id = Uuid::parse_str(id).map_err(|_| invalid())?;
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
            let owner = CurrentUser {
                id: row.user_id.to_string(),
                roles,
                permissions,
                token_id: String::new(),
                session_id: None,
                expires_at: 0,
            };
            let scopes = row.scopes.into_iter().filter(|s| owner.can(s)).collect();
            Ok(CurrentUser {
                id: row.user_id.to_string(),
                roles: Vec::new(),
                permissions: scopes,
                token_id: format!("{}{id}", crate::platform::identity::API_KEY_TOKEN_PREFIX),
                session_id: None,
                expires_at: row.expires_at.map_or(i64::MAX, |e| e.timestamp()),
            })
        })
    }
}
