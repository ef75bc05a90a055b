//! The access-token revocation list. A revoked token id (`jti`) or session id (`sid`) makes
//! every access token carrying it fail at once, on every replica when Redis is configured.
//! Entries expire with the last token they could match, so the list stays small.
//!
//! Every revocation is also kept in-process, so a replica without Redis (or while Redis is
//! down) still honours its own revocations; other replicas then see them only through Redis.
//! A Redis outage during a check fails open to the in-process list, because refusing every
//! request while Redis is down would take the whole API down with it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dashmap::DashMap;

use super::identity::Claims;
use super::redis::RedisPool;

pub struct Revocations {
    redis: Option<RedisPool>,
    /// key -> when the entry may be forgotten.
    local: DashMap<String, Instant>,
    redis_failing: AtomicBool,
}

fn keys(claims: &Claims) -> Vec<String> {
    let mut keys = vec![format!("basalt:revoked:jti:{}", claims.jti)];
    if let Some(sid) = &claims.sid {
        keys.push(format!("basalt:revoked:sid:{sid}"));
    }
    keys
}

impl Revocations {
    pub fn new(redis: Option<RedisPool>) -> Self {
        Self {
            redis,
            local: DashMap::new(),
            redis_failing: AtomicBool::new(false),
        }
    }

    /// Revokes one access token until it would have expired anyway.
    pub async fn revoke_token(&self, jti: &str, ttl: Duration) {
        self.revoke(format!("basalt:revoked:jti:{jti}"), ttl).await;
    }

    /// Revokes every access token of a session, for as long as one could still be valid.
    pub async fn revoke_session(&self, sid: &str, ttl: Duration) {
        self.revoke(format!("basalt:revoked:sid:{sid}"), ttl).await;
    }

    async fn revoke(&self, key: String, ttl: Duration) {
        if let Some(redis) = &self.redis
            && let Err(e) = redis.set_with_ttl(&key, ttl.as_millis() as u64).await
        {
            self.note_failure(&e);
        }
        self.local.insert(key, Instant::now() + ttl);
    }

    pub async fn is_revoked(&self, claims: &Claims) -> bool {
        // Nothing revoked here and nowhere else to ask: no keys to format on each request.
        if self.redis.is_none() && self.local.is_empty() {
            return false;
        }
        let keys = keys(claims);
        let now = Instant::now();
        if keys
            .iter()
            .any(|k| self.local.get(k).is_some_and(|until| *until > now))
        {
            return true;
        }
        if let Some(redis) = &self.redis {
            // Boxed: the Redis call's future is large, and inline it would make every
            // request's authentication future that large (moved, byte by byte, at each await
            // of the middleware chain) even where no Redis is configured.
            match Box::pin(redis.any_exists(&keys)).await {
                Ok(found) => {
                    self.redis_failing.store(false, Ordering::Relaxed);
                    return found;
                }
                Err(e) => self.note_failure(&e),
            }
        }
        false
    }

    fn note_failure(&self, e: &anyhow::Error) {
        if !self.redis_failing.swap(true, Ordering::Relaxed) {
            tracing::warn!(error = %e, "Redis unavailable; token revocations are checked in-process only");
        }
    }

    /// Forgets entries past their expiry; run periodically.
    pub fn prune(&self) {
        let now = Instant::now();
        self.local.retain(|_, until| *until > now);
    }
}
