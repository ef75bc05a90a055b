//! Accounts' current grants for the kernel (`platform.accounts`), so work done later on an
//! account's behalf (webhook deliveries) goes by what the account holds now, not by what it
//! held when it set the work up.

use futures_util::future::BoxFuture;
use sqlx::PgPool;
use uuid::Uuid;

use super::repo;
use crate::platform::identity::AccountLookup;
use crate::platform::{ApiError, CurrentUser};

pub struct Lookup {
    pub db: PgPool,
}

impl AccountLookup for Lookup {
    fn grants_of(&self, user: Uuid) -> BoxFuture<'static, Result<Option<CurrentUser>, ApiError>> {
        let db = self.db.clone();
        Box::pin(async move {
            let grants = repo::current_grants(&db, user.into()).await?;
            Ok(
                grants.map(|(roles, permissions, email_verified)| CurrentUser {
                    id: user.to_string(),
                    roles,
                    permissions,
                    email_verified,
                    token_id: String::new(),
                    session_id: None,
                    expires_at: 0,
                }),
            )
        })
    }
}
