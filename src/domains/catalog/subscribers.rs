//! What the catalog does with other domains' events: an account deleted in auth takes its
//! reviews, helpful votes and purchase records with it (the products it sold stay, as orders
//! and other buyers' reviews name them).

use std::sync::Arc;

use super::repo;
use crate::events::auth::UserDeleted;
use crate::platform::events::{DomainEvent, Subscriber, subscriber_fn};

pub fn accounts() -> Arc<dyn Subscriber> {
    subscriber_fn("catalog.accounts", &[UserDeleted::TYPE], |event, conn| {
        Box::pin(async move {
            let e = event.decode::<UserDeleted>()?;
            repo::forget_user(conn, e.user_id).await?;
            Ok(())
        })
    })
}
