//! The auth domain's events: declared in `crate::events::auth`, since notifications consumes
//! them.

pub use crate::events::auth::*;
