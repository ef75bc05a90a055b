//! The auth domain: accounts, access and refresh tokens, verification, password reset, roles, permissions and API keys.
//!
//! Schema `auth`; routes under `/api/v1/auth`. Registered in `src/domains/mod.rs`; its
//! endpoints, events and migrations arrive with the domain's own issue.

use crate::platform::Domain;

#[derive(Default)]
pub struct Auth;

impl Domain for Auth {
    fn name(&self) -> &'static str {
        "auth"
    }

    fn schema(&self) -> &'static str {
        "auth"
    }
}
