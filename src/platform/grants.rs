//! Grants on containers and their items, shared by the domains that hold user data (a
//! database collection and its documents, a storage bucket and its files): who is asking,
//! and what the container's and each item's grants let them do.
//!
//! Roles are `any` (everyone, signed in or not), `users` (anyone signed in), `user:<id>` and
//! `role:<name>`. The container's owner (or an API key of theirs) may do anything in it;
//! everyone else gets what the container grants on all its items, plus, when it has
//! item-level security, what each item grants.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::platform::CurrentUser;
use crate::platform::error::{ApiError, FieldError};
use crate::platform::identity::MaybeUser;

/// The caller of a request that anonymous callers may make too: signed in, by API key, or
/// anonymous.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: Option<Uuid>,
    /// The roles grants are matched against, `any` first.
    pub roles: Vec<String>,
    user: Option<CurrentUser>,
}

impl Caller {
    fn anonymous() -> Self {
        Self {
            user_id: None,
            roles: vec!["any".into()],
            user: None,
        }
    }

    fn from_user(user: CurrentUser) -> Result<Self, ApiError> {
        let id = user.uuid()?;
        let mut roles = vec!["any".into(), "users".into(), format!("user:{id}")];
        roles.extend(user.roles.iter().map(|r| format!("role:{r}")));
        Ok(Self {
            user_id: Some(id),
            roles,
            user: Some(user),
        })
    }

    /// API keys carry scopes (`databases.write`); a signed-in person may do whatever their
    /// grants allow.
    pub fn require_scope(&self, scope: &str) -> Result<(), ApiError> {
        match &self.user {
            Some(u) if u.is_api_key() => u.require(scope),
            _ => Ok(()),
        }
    }

    /// The signed-in account, for what only an account may do (own databases, buckets).
    pub fn account(&self) -> Result<Uuid, ApiError> {
        self.user_id.ok_or_else(|| {
            ApiError::unauthorized("Sign in: send Authorization: Bearer <access token>.")
        })
    }

    pub fn holds_any(&self, grants: &[String]) -> bool {
        grants.iter().any(|g| self.roles.contains(g))
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    /// The grant model's view of [`MaybeUser`]: bad credentials are a 401, none at all is
    /// the `any` role.
    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let caller = MaybeUser::from_request(req, payload);
        Box::pin(async move {
            match caller.await?.0 {
                Some(user) => Caller::from_user(user),
                None => Ok(Caller::anonymous()),
            }
        })
    }
}

/// Roles granted each action on every item of a container (documents of a collection, files
/// of a bucket). Empty lists: the owner only.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
#[schema(example = json!({"create": ["users"], "read": ["any"], "update": [], "delete": []}))]
pub struct ContainerPermissions {
    pub create: Vec<String>,
    pub read: Vec<String>,
    pub update: Vec<String>,
    pub delete: Vec<String>,
}

/// Roles granted each action on one item (besides its container's grants).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
#[schema(example = json!({"read": ["users"], "update": ["user:0193a5f6-7d2c-7b9e-9f10-3c4d5e6f7a8b"], "delete": []}))]
pub struct ItemPermissions {
    pub read: Vec<String>,
    pub update: Vec<String>,
    pub delete: Vec<String>,
}

impl ItemPermissions {
    /// Creator-only: what an item gets when its creator names no grants.
    pub fn owner(user: Option<Uuid>) -> Self {
        let mine: Vec<String> = user.map(|u| format!("user:{u}")).into_iter().collect();
        Self {
            read: mine.clone(),
            update: mine.clone(),
            delete: mine,
        }
    }
}

impl ItemPermissions {
    /// The same roles for each action, whatever their order or repeats: a write that sends an
    /// item's grants back unchanged is not a change of grants.
    pub fn same_as(&self, other: &ItemPermissions) -> bool {
        fn set(roles: &[String]) -> std::collections::BTreeSet<&str> {
            roles.iter().map(String::as_str).collect()
        }
        set(&self.read) == set(&other.read)
            && set(&self.update) == set(&other.update)
            && set(&self.delete) == set(&other.delete)
    }
}

const MAX_GRANTS: usize = 100;

fn valid_role(role: &str) -> bool {
    match role.split_once(':') {
        None => role == "any" || role == "users",
        Some(("user", id)) => Uuid::parse_str(id).is_ok(),
        Some(("role", name)) => {
            let mut chars = name.chars();
            matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
                && name.len() <= 64
                && chars
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        }
        _ => false,
    }
}

/// Checks lists of grants, named `path.<action>`.
pub fn check_grants<'a>(
    lists: impl IntoIterator<Item = (&'a str, &'a [String])>,
    path: &str,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (action, roles) in lists {
        if roles.len() > MAX_GRANTS {
            errors.push(FieldError {
                field: format!("{path}{action}"),
                code: "length".into(),
                message: format!("at most {MAX_GRANTS} roles"),
            });
        }
        if let Some((i, _)) = roles.iter().enumerate().find(|(_, r)| !valid_role(r)) {
            errors.push(FieldError {
                field: format!("{path}{action}[{i}]"),
                code: "role".into(),
                message: "must be any, users, user:<id> or role:<name>".into(),
            });
        }
    }
    errors
}

impl ContainerPermissions {
    pub fn check(&self, path: &str) -> Vec<FieldError> {
        check_grants(
            [
                ("create", &self.create[..]),
                ("read", &self.read[..]),
                ("update", &self.update[..]),
                ("delete", &self.delete[..]),
            ],
            path,
        )
    }
}

impl ItemPermissions {
    pub fn check(&self, path: &str) -> Vec<FieldError> {
        check_grants(
            [
                ("read", &self.read[..]),
                ("update", &self.update[..]),
                ("delete", &self.delete[..]),
            ],
            path,
        )
    }
}

/// What a caller may do in one container, before looking at any item.
#[derive(Debug, Clone)]
pub struct Access {
    pub owner: bool,
    pub create: bool,
    pub read_all: bool,
    pub update_all: bool,
    pub delete_all: bool,
    /// Items' own grants count.
    pub item_security: bool,
}

impl Access {
    pub fn new(
        caller: &Caller,
        owner: Uuid,
        permissions: &ContainerPermissions,
        item_security: bool,
    ) -> Self {
        let owner = caller.user_id == Some(owner);
        Self {
            owner,
            create: owner || caller.holds_any(&permissions.create),
            read_all: owner || caller.holds_any(&permissions.read),
            update_all: owner || caller.holds_any(&permissions.update),
            delete_all: owner || caller.holds_any(&permissions.delete),
            item_security,
        }
    }

    /// Whether the caller may learn the container exists at all; if not, everything in it
    /// answers 404.
    pub fn visible(&self) -> bool {
        self.owner
            || self.create
            || self.read_all
            || self.update_all
            || self.delete_all
            || self.item_security
    }

    /// Whether the caller may change (or, with `delete`, delete) an item with these grants.
    pub fn may_change(
        &self,
        caller: &Caller,
        item: ItemGrants<'_>,
        delete: bool,
    ) -> Result<(), Denied> {
        let (all, grants) = if delete {
            (self.delete_all, item.delete)
        } else {
            (self.update_all, item.update)
        };
        if self.allows(all, caller, grants) {
            Ok(())
        } else if self.allows(self.read_all, caller, item.read) {
            Err(Denied::Forbidden)
        } else {
            Err(Denied::Hidden)
        }
    }

    /// Whether the caller may change who may do what with an item: the container's owner, or
    /// the signed-in creator of the item. An `update` grant never is one: it lets a caller
    /// change an item's content, not widen who may read or delete it (issue #11).
    pub fn may_regrant(&self, caller: &Caller, creator: Option<Uuid>) -> bool {
        self.owner || (creator.is_some() && creator == caller.user_id)
    }

    /// Whether the caller may do what `all` says on every item, or the item's own `grants`
    /// admit them.
    pub fn allows(&self, all: bool, caller: &Caller, grants: &[String]) -> bool {
        all || (self.item_security && caller.holds_any(grants))
    }
}

/// An item's stored grants, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct ItemGrants<'a> {
    pub read: &'a [String],
    pub update: &'a [String],
    pub delete: &'a [String],
}

/// Why a caller may not change an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// They may not even read it: it does not exist for them (404).
    Hidden,
    /// They may read it, not do this (403).
    Forbidden,
}

impl Denied {
    /// `missing` when the item is hidden, else a 403 naming the action on `what`.
    pub fn into_error(self, missing: ApiError, what: &str, delete: bool) -> ApiError {
        match self {
            Denied::Hidden => missing,
            Denied::Forbidden => ApiError::forbidden(format!(
                "You may not {} this {what}.",
                if delete { "delete" } else { "change" }
            )),
        }
    }
}
