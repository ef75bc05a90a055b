//! The users domain: marketplace profiles, addresses and preferences.
//!
//! Schema `users`; routes under `/api/v1/users`. Registered in `src/domains/mod.rs`; its
//! endpoints, events and migrations arrive with the domain's own issue.

use crate::platform::Domain;

#[derive(Default)]
pub struct Users;

impl Domain for Users {
    fn name(&self) -> &'static str {
        "users"
    }

    fn schema(&self) -> &'static str {
        "users"
    }
}
