//! Administration of accounts and roles: list users, define roles and their permissions,
//! grant and revoke roles. Each endpoint needs an `auth.*` permission (the `admin` role holds
//! them all). Changes reach a user's access token at its next refresh.

use crate::platform::http::{Endpoint, Routes};
use actix_web::{HttpResponse, web};
use uuid::Uuid;

use super::model::*;
use super::repo;
use crate::platform::error::{ApiError, Problem};
use crate::platform::http::ValidatedJson;
use crate::platform::{CurrentUser, Platform};

pub fn configure(routes: &mut Routes) {
    routes
        .add(Endpoint::at("/admin/users").get(list_users))
        .add(Endpoint::at("/admin/users/{id}/roles").post(grant_role))
        .add(Endpoint::at("/admin/users/{id}/roles/{role}").delete(revoke_role))
        .add(
            Endpoint::at("/admin/roles")
                .get(list_roles)
                .post(create_role),
        )
        .add(
            Endpoint::at("/admin/roles/{name}")
                .put(set_role_permissions)
                .delete(delete_role),
        );
}

fn role_response(r: repo::RoleRow) -> RoleResponse {
    RoleResponse {
        name: r.name,
        description: r.description,
        builtin: r.builtin,
        permissions: r.permissions,
    }
}

/// Accounts, newest first (permission `auth.users.read`).
#[utoipa::path(
    get, path = "/admin/users", tag = "auth-admin", params(UserListQuery), security(("bearer" = [])),
    responses((status = 200, body = UserPage), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json"))
)]
pub async fn list_users(
    platform: web::Data<Platform>,
    user: CurrentUser,
    query: web::Query<UserListQuery>,
) -> Result<HttpResponse, ApiError> {
    user.require("auth.users.read")?;
    let limit = crate::platform::page::limit(query.limit)?;
    let rows = repo::list_users(&platform.db, query.after, limit).await?;
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.user.id))
        .flatten();
    let users = rows
        .into_iter()
        .map(|r| UserResponse {
            id: r.user.id,
            email: r.user.email,
            first_name: r.user.first_name,
            last_name: r.user.last_name,
            email_verified: r.user.email_verified_at.is_some(),
            roles: r.roles,
            created_at: r.user.created_at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(UserPage { users, next }))
}

/// Roles and their permissions (permission `auth.roles.read`).
#[utoipa::path(
    get, path = "/admin/roles", tag = "auth-admin", security(("bearer" = [])),
    responses((status = 200, body = Vec<RoleResponse>), (status = 403, body = Problem, content_type = "application/problem+json"))
)]
pub async fn list_roles(
    platform: web::Data<Platform>,
    user: CurrentUser,
) -> Result<HttpResponse, ApiError> {
    user.require("auth.roles.read")?;
    let roles: Vec<RoleResponse> = repo::roles(&platform.db)
        .await?
        .into_iter()
        .map(role_response)
        .collect();
    Ok(HttpResponse::Ok().json(roles))
}

/// Create a custom role (permission `auth.roles.manage`).
#[utoipa::path(
    post, path = "/admin/roles", tag = "auth-admin", request_body = CreateRoleRequest, security(("bearer" = [])),
    responses(
        (status = 201, body = RoleResponse),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A role with this name exists", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_role(
    platform: web::Data<Platform>,
    user: CurrentUser,
    body: ValidatedJson<CreateRoleRequest>,
) -> Result<HttpResponse, ApiError> {
    user.require("auth.roles.manage")?;
    let body = body.into_inner();
    let mut tx = platform.db.begin().await?;
    if repo::role_exists(&mut tx, &body.name).await?.is_some() {
        return Err(ApiError::conflict(
            "role_exists",
            format!("The role {} already exists.", body.name),
        ));
    }
    repo::insert_role(&mut tx, &body.name, &body.description).await?;
    repo::set_role_permissions(&mut tx, &body.name, &body.permissions).await?;
    tx.commit().await?;
    let mut permissions = body.permissions;
    permissions.sort();
    permissions.dedup();
    Ok(HttpResponse::Created().json(RoleResponse {
        name: body.name,
        description: body.description,
        builtin: false,
        permissions,
    }))
}

/// Replace a role's permissions (permission `auth.roles.manage`).
#[utoipa::path(
    put, path = "/admin/roles/{name}", tag = "auth-admin", request_body = RolePermissionsRequest,
    params(("name" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
pub async fn set_role_permissions(
    platform: web::Data<Platform>,
    user: CurrentUser,
    name: web::Path<String>,
    body: ValidatedJson<RolePermissionsRequest>,
) -> Result<HttpResponse, ApiError> {
    user.require("auth.roles.manage")?;
    let mut tx = platform.db.begin().await?;
    if repo::role_exists(&mut tx, &name).await?.is_none() {
        return Err(ApiError::not_found("No such role."));
    }
    repo::set_role_permissions(&mut tx, &name, &body.permissions).await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Delete a custom role (permission `auth.roles.manage`); built-in roles stay.
#[utoipa::path(
    delete, path = "/admin/roles/{name}", tag = "auth-admin", params(("name" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json"))
)]
pub async fn delete_role(
    platform: web::Data<Platform>,
    user: CurrentUser,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    user.require("auth.roles.manage")?;
    let mut tx = platform.db.begin().await?;
    match repo::role_exists(&mut tx, &name).await? {
        None => return Err(ApiError::not_found("No such role.")),
        Some(true) => {
            return Err(ApiError::conflict(
                "builtin_role",
                "Built-in roles cannot be deleted.",
            ));
        }
        Some(false) => repo::delete_role(&mut tx, &name).await?,
    }
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Grant a role to an account (permission `auth.roles.grant`).
#[utoipa::path(
    post, path = "/admin/users/{id}/roles", tag = "auth-admin", request_body = GrantRoleRequest,
    params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, description = "No such user or role", body = Problem, content_type = "application/problem+json"))
)]
pub async fn grant_role(
    platform: web::Data<Platform>,
    user: CurrentUser,
    id: web::Path<Uuid>,
    body: ValidatedJson<GrantRoleRequest>,
) -> Result<HttpResponse, ApiError> {
    user.require("auth.roles.grant")?;
    let mut tx = platform.db.begin().await?;
    if repo::user_by_id(&mut tx, *id).await?.is_none() {
        return Err(ApiError::not_found("No such user."));
    }
    if repo::role_exists(&mut tx, &body.role).await?.is_none() {
        return Err(ApiError::not_found("No such role."));
    }
    repo::grant_role(&mut tx, *id, &body.role).await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Revoke a role from an account (permission `auth.roles.grant`).
#[utoipa::path(
    delete, path = "/admin/users/{id}/roles/{role}", tag = "auth-admin",
    params(("id" = Uuid, Path), ("role" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
pub async fn revoke_role(
    platform: web::Data<Platform>,
    user: CurrentUser,
    path: web::Path<(Uuid, String)>,
) -> Result<HttpResponse, ApiError> {
    user.require("auth.roles.grant")?;
    let (id, role) = path.into_inner();
    let mut conn = platform.db.acquire().await?;
    if !repo::revoke_role(&mut conn, id, &role).await? {
        return Err(ApiError::not_found("That user does not hold that role."));
    }
    Ok(HttpResponse::NoContent().finish())
}
