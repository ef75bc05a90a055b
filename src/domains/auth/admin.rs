//! Administration of accounts and roles: list users, define roles and their permissions,
//! grant and revoke roles. Each endpoint needs an `auth.*` permission (the `admin` role holds
//! them all). Changes reach a user's access token at its next refresh. Every change is
//! recorded in the audit trail (`platform.audit_log`) in its own transaction, with the state
//! before and after.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use sqlx::PgConnection;
use utoipa::OpenApi;

use super::access;
use super::error::{AuthError, ROLES_PKEY, USER_ROLES_ROLE_FKEY};
use super::model::*;
use super::repo::{self, RoleRow};
use crate::platform::audit::{self, AuditEntry};
use crate::platform::error::OnConstraint;
use crate::platform::error::responses::{
    BadRequest, Conflict, Forbidden, Invalid, NotFound, Unauthorized,
};
use crate::platform::http::{Endpoint, Routes, ValidatedJson};
use crate::platform::page::{Page, PageQuery};
use crate::platform::{CurrentUser, Platform};

#[derive(OpenApi)]
#[openapi(paths(
    list_users,
    list_roles,
    create_role,
    set_role_permissions,
    delete_role,
    grant_role,
    revoke_role
))]
pub struct AdminApi;

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

fn role_response(r: RoleRow) -> RoleResponse {
    RoleResponse {
        name: r.name,
        description: r.description,
        builtin: r.builtin,
        permissions: r.permissions,
    }
}

/// An account's roles, as audit entries record them.
#[derive(Serialize)]
struct Roles<'a> {
    roles: &'a [String],
}

/// Records an administrator's action in the audit trail, on the action's transaction.
async fn record(
    conn: &mut PgConnection,
    user: &CurrentUser,
    action: &str,
    (object_type, object_id): (&str, &str),
    before: Option<impl Serialize>,
    after: Option<impl Serialize>,
) -> Result<(), AuthError> {
    let (before, after) = (json(before)?, json(after)?);
    audit::record(
        conn,
        &AuditEntry {
            actor: &user.actor(),
            action,
            object_type,
            object_id,
            before: before.as_ref(),
            after: after.as_ref(),
        },
    )
    .await?;
    Ok(())
}

fn json(value: Option<impl Serialize>) -> anyhow::Result<Option<serde_json::Value>> {
    Ok(value.map(serde_json::to_value).transpose()?)
}

/// Delegated administration must not escalate: the caller may grant, revoke, edit or delete
/// `role` only when it holds everything the role confers (`admin` confers everything, so only
/// an admin hands it out).
fn within_own_rights(
    user: &CurrentUser,
    role: &str,
    permissions: &[String],
) -> Result<(), AuthError> {
    if role == "admin" && !user.has_role("admin") {
        return Err(AuthError::BeyondOwnRights(
            "Only an administrator can grant or revoke the admin role.".into(),
        ));
    }
    match permissions.iter().find(|p| !user.can(p)) {
        Some(p) => Err(AuthError::BeyondOwnRights(format!(
            "The role {role} confers {p}, which you do not hold."
        ))),
        None => Ok(()),
    }
}

/// A 422 on `permissions` for the first one the caller does not hold itself.
fn permissions_held(user: &CurrentUser, permissions: &[String]) -> Result<(), AuthError> {
    match permissions.iter().find(|p| !user.can(p)) {
        Some(p) => Err(AuthError::invalid_field(
            "permissions",
            "not_held",
            format!("{p} is not a permission you hold"),
        )),
        None => Ok(()),
    }
}

/// A role's permissions as stored: sorted, without repeats.
fn normalised(mut permissions: Vec<String>) -> Vec<String> {
    permissions.sort();
    permissions.dedup();
    permissions
}

/// Accounts, newest first (permission `auth.users.read`).
#[utoipa::path(
    get, path = "/admin/users", tag = "auth-admin", params(PageQuery), security(("bearer" = [])),
    responses((status = 200, body = Page<UserResponse>), BadRequest, Unauthorized, Forbidden)
)]
pub async fn list_users(
    platform: web::Data<Platform>,
    user: CurrentUser,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, AuthError> {
    user.require("auth.users.read")?;
    let rows = repo::list_users(&platform.db, query.cursor()?, query.fetch()?).await?;
    let page = Page::from_rows(
        rows,
        query.limit()?,
        |r| r.user.id,
        |r| access::user_response(&r.user, r.roles),
    );
    Ok(HttpResponse::Ok().json(page))
}

/// Roles and their permissions, by name (permission `auth.roles.read`).
///
/// Paged: roles are defined by administrators, with no cap on how many.
#[utoipa::path(
    get, path = "/admin/roles", tag = "auth-admin", params(PageQuery), security(("bearer" = [])),
    responses((status = 200, body = Page<RoleResponse>), BadRequest, Unauthorized, Forbidden)
)]
pub async fn list_roles(
    platform: web::Data<Platform>,
    user: CurrentUser,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, AuthError> {
    user.require("auth.roles.read")?;
    let after = query.cursor::<String>()?;
    let rows = repo::roles(&platform.db, after.as_deref(), query.fetch()?).await?;
    let page = Page::from_rows(rows, query.limit()?, |r| r.name.clone(), role_response);
    Ok(HttpResponse::Ok().json(page))
}

/// Create a custom role (permission `auth.roles.manage`); 409 `role_exists` when the name is
/// taken.
#[utoipa::path(
    post, path = "/admin/roles", tag = "auth-admin", request_body = CreateRoleRequest, security(("bearer" = [])),
    responses((status = 201, body = RoleResponse), Unauthorized, Forbidden, Conflict, Invalid)
)]
pub async fn create_role(
    platform: web::Data<Platform>,
    user: CurrentUser,
    body: ValidatedJson<CreateRoleRequest>,
) -> Result<HttpResponse, AuthError> {
    user.require("auth.roles.manage")?;
    let body = body.into_inner();
    permissions_held(&user, &body.permissions)?;
    let mut tx = platform.db.begin().await?;
    repo::insert_role(&mut tx, &body.name, &body.description)
        .await
        .on_constraint(ROLES_PKEY, || AuthError::RoleExists(body.name.clone()))?;
    repo::set_role_permissions(&mut tx, &body.name, &body.permissions).await?;
    let role = RoleResponse {
        name: body.name,
        description: body.description,
        builtin: false,
        permissions: normalised(body.permissions),
    };
    let object = ("role", role.name.as_str());
    record(
        &mut tx,
        &user,
        "auth.role.created",
        object,
        None::<()>,
        Some(&role),
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(role))
}

/// Replace a role's permissions (permission `auth.roles.manage`).
#[utoipa::path(
    put, path = "/admin/roles/{name}", tag = "auth-admin", request_body = RolePermissionsRequest,
    params(("name" = String, Path)), security(("bearer" = [])),
    responses((status = 204), Unauthorized, Forbidden, NotFound, Invalid)
)]
pub async fn set_role_permissions(
    platform: web::Data<Platform>,
    user: CurrentUser,
    name: web::Path<String>,
    body: ValidatedJson<RolePermissionsRequest>,
) -> Result<HttpResponse, AuthError> {
    user.require("auth.roles.manage")?;
    let mut tx = platform.db.begin().await?;
    let before = repo::lock_role(&mut tx, &name)
        .await?
        .ok_or(AuthError::RoleNotFound)?;
    if before.builtin {
        return Err(AuthError::BuiltinRole);
    }
    if user.has_role(&name) {
        return Err(AuthError::BeyondOwnRights(
            "You cannot change the permissions of a role you hold.".into(),
        ));
    }
    within_own_rights(&user, &name, &before.permissions)?;
    let body = body.into_inner();
    permissions_held(&user, &body.permissions)?;
    repo::set_role_permissions(&mut tx, &name, &body.permissions).await?;
    let before = role_response(before);
    let after = RoleResponse {
        permissions: normalised(body.permissions),
        ..before.clone()
    };
    record(
        &mut tx,
        &user,
        "auth.role.permissions_set",
        ("role", &name),
        Some(&before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Delete a custom role (permission `auth.roles.manage`); built-in roles stay (409
/// `builtin_role`).
#[utoipa::path(
    delete, path = "/admin/roles/{name}", tag = "auth-admin", params(("name" = String, Path)), security(("bearer" = [])),
    responses((status = 204), Unauthorized, Forbidden, NotFound, Conflict)
)]
pub async fn delete_role(
    platform: web::Data<Platform>,
    user: CurrentUser,
    name: web::Path<String>,
) -> Result<HttpResponse, AuthError> {
    user.require("auth.roles.manage")?;
    let mut tx = platform.db.begin().await?;
    let role = repo::lock_role(&mut tx, &name)
        .await?
        .ok_or(AuthError::RoleNotFound)?;
    if role.builtin {
        return Err(AuthError::BuiltinRole);
    }
    within_own_rights(&user, &name, &role.permissions)?;
    let holders = repo::delete_role(&mut tx, &name).await?;
    let before = Some(serde_json::json!({ "role": role_response(role), "holders": holders }));
    record(
        &mut tx,
        &user,
        "auth.role.deleted",
        ("role", &name),
        before,
        None::<()>,
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Grant a role to an account (permission `auth.roles.grant`); 404 for no such user or role.
#[utoipa::path(
    post, path = "/admin/users/{id}/roles", tag = "auth-admin", request_body = GrantRoleRequest,
    params(("id" = UserId, Path)), security(("bearer" = [])),
    responses((status = 204), Unauthorized, Forbidden, NotFound, Invalid)
)]
pub async fn grant_role(
    platform: web::Data<Platform>,
    user: CurrentUser,
    id: web::Path<UserId>,
    body: ValidatedJson<GrantRoleRequest>,
) -> Result<HttpResponse, AuthError> {
    user.require("auth.roles.grant")?;
    let id = id.into_inner();
    let mut tx = platform.db.begin().await?;
    let role = repo::lock_role(&mut tx, &body.role)
        .await?
        .ok_or(AuthError::RoleNotFound)?;
    within_own_rights(&user, &role.name, &role.permissions)?;
    let before = repo::lock_roles_of(&mut tx, id)
        .await?
        .ok_or(AuthError::UserNotFound)?;
    let granted = repo::grant_role(&mut tx, id, &body.role)
        .await
        .on_constraint(USER_ROLES_ROLE_FKEY, || AuthError::RoleNotFound)?;
    if !granted {
        // Held already: the same answer, and nothing happened to record.
        return Ok(HttpResponse::NoContent().finish());
    }
    let after = repo::roles_of(&mut tx, id).await?;
    record(
        &mut tx,
        &user,
        "auth.role.granted",
        ("user", &id.to_string()),
        Some(Roles { roles: &before }),
        Some(Roles { roles: &after }),
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Revoke a role from an account (permission `auth.roles.grant`).
#[utoipa::path(
    delete, path = "/admin/users/{id}/roles/{role}", tag = "auth-admin",
    params(("id" = UserId, Path), ("role" = String, Path)), security(("bearer" = [])),
    responses((status = 204), Unauthorized, Forbidden, NotFound)
)]
pub async fn revoke_role(
    platform: web::Data<Platform>,
    user: CurrentUser,
    path: web::Path<(UserId, String)>,
) -> Result<HttpResponse, AuthError> {
    user.require("auth.roles.grant")?;
    let (id, role) = path.into_inner();
    let mut tx = platform.db.begin().await?;
    let confers = repo::lock_role(&mut tx, &role)
        .await?
        .ok_or(AuthError::RoleNotHeld)?;
    within_own_rights(&user, &role, &confers.permissions)?;
    let before = repo::lock_roles_of(&mut tx, id)
        .await?
        .ok_or(AuthError::UserNotFound)?;
    if !repo::revoke_role(&mut tx, id, &role).await? {
        return Err(AuthError::RoleNotHeld);
    }
    let after = repo::roles_of(&mut tx, id).await?;
    record(
        &mut tx,
        &user,
        "auth.role.revoked",
        ("user", &id.to_string()),
        Some(Roles { roles: &before }),
        Some(Roles { roles: &after }),
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}
