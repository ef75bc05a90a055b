//! Rate limiting at the edge: a fixed window per policy and caller.
//!
//! The policy is the configured route prefix that matches the path most specifically (auth
//! routes are stricter), else the default. The caller is the signed-in user when the request
//! carries a valid access token (so users behind one NAT do not share a budget), otherwise the
//! client IP; under a route policy the IP counts as well, signed in or not; a request with an API key is counted against both the key and the IP, because
//! the key is not verified here and must not become a way around the IP limit.
//!
//! Counters live in Redis when it is configured, so replicas share them. When Redis is absent
//! or fails, counting falls back to this process (logged once per outage) and requests keep
//! being served. Hand-written rather than a crate because none of the actix rate limiters
//! offers per-route policies, a deadpool Redis store and an in-process fallback together.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpRequest, ResponseError, web};
use dashmap::DashMap;
use sha2::{Digest, Sha256};

use serde::{Deserialize, Serialize};

use crate::config::{RateLimitSettings, RatePolicy, RoutePolicy};
use crate::platform::error::ApiError;
use crate::platform::identity::{TokenVerifier, bearer_token};
use crate::platform::redis::RedisPool;
use crate::platform::runtime::Setting;

/// Paths orchestrators and people poll; never limited.
const EXEMPT_PREFIXES: &[&str] = &["/health", "/metrics", "/docs", "/api-docs"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the window resets.
    pub reset_secs: u64,
}

impl Decision {
    fn from_count(count: u64, policy: &RatePolicy, reset: Duration) -> Self {
        let limit = policy.requests;
        Self {
            allowed: count <= u64::from(limit),
            limit,
            remaining: u64::from(limit).saturating_sub(count) as u32,
            reset_secs: reset.as_secs().max(1),
        }
    }
}

struct Window {
    started: Instant,
    count: u64,
}

/// The policies in force: the default and the stricter route prefixes. A runtime setting
/// (`platform.rate_limit`), so administrators can tighten them during an incident without a
/// restart; its default is the `[rate_limit]` TOML section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateRules {
    pub default: RatePolicy,
    #[serde(default)]
    pub routes: Vec<RoutePolicy>,
}

impl RateRules {
    pub fn from_settings(settings: &RateLimitSettings) -> Self {
        Self {
            default: settings.default,
            routes: settings.routes.clone(),
        }
    }

    /// The owner's validation of a new value.
    pub fn validate(&self) -> Result<(), String> {
        let policies =
            std::iter::once(("default", &self.default.requests, &self.default.window_secs)).chain(
                self.routes
                    .iter()
                    .map(|r| (r.prefix.as_str(), &r.requests, &r.window_secs)),
            );
        for (name, requests, window) in policies {
            if *requests == 0 || *window == 0 || *window > 86_400 {
                return Err(format!(
                    "{name}: requests must be at least 1 and window_secs between 1 and 86400"
                ));
            }
        }
        if let Some(r) = self.routes.iter().find(|r| !r.prefix.starts_with('/')) {
            return Err(format!("routes: prefix {:?} must start with /", r.prefix));
        }
        Ok(())
    }

    /// The most specific matching prefix's policy, else the default.
    fn policy_for(&self, path: &str) -> (String, RatePolicy) {
        self.routes
            .iter()
            .filter(|r| path.starts_with(r.prefix.as_str()))
            .max_by_key(|r| r.prefix.len())
            .map(|r| {
                (
                    r.prefix.clone(),
                    RatePolicy {
                        requests: r.requests,
                        window_secs: r.window_secs,
                    },
                )
            })
            .unwrap_or_else(|| ("default".to_owned(), self.default))
    }
}

pub struct RateLimiter {
    enabled: bool,
    rules: Arc<Setting<RateRules>>,
    memory: DashMap<String, Window>,
    redis: Option<RedisPool>,
    redis_failing: AtomicBool,
    trust_forwarded_for: bool,
}

impl RateLimiter {
    /// `rules` is the runtime setting declared with [`RateRules::from_settings`] as default.
    pub fn new(
        settings: &RateLimitSettings,
        rules: Arc<Setting<RateRules>>,
        redis: Option<RedisPool>,
        trust_forwarded_for: bool,
    ) -> Self {
        Self {
            enabled: settings.enabled,
            rules,
            memory: DashMap::new(),
            redis,
            redis_failing: AtomicBool::new(false),
            trust_forwarded_for,
        }
    }

    /// Counts one request against `key` and says whether it may proceed.
    pub async fn hit(&self, key: &str, policy: &RatePolicy) -> Decision {
        if let Some(redis) = &self.redis {
            match self.hit_redis(redis, key, policy).await {
                Ok(decision) => {
                    if self.redis_failing.swap(false, Ordering::Relaxed) {
                        tracing::info!("Redis is back; rate limits are shared again");
                    }
                    return decision;
                }
                Err(e) => {
                    if !self.redis_failing.swap(true, Ordering::Relaxed) {
                        tracing::warn!(error = %e, "Redis unavailable; rate limiting in-process until it returns");
                    }
                }
            }
        }
        self.hit_memory(key, policy)
    }

    /// Gives back one count against `key` (an attempt counted up front that turned out not
    /// to be a failure: a successful sign-in).
    pub async fn refund(&self, key: &str) {
        if let Some(redis) = &self.redis
            && redis.uncount(key).await.is_ok()
        {
            return;
        }
        if let Some(mut w) = self.memory.get_mut(key) {
            w.count = w.count.saturating_sub(1);
        }
    }

    fn hit_memory(&self, key: &str, policy: &RatePolicy) -> Decision {
        let window = Duration::from_secs(policy.window_secs);
        let now = Instant::now();
        let mut entry = self.memory.entry(key.to_owned()).or_insert(Window {
            started: now,
            count: 0,
        });
        if now.duration_since(entry.started) >= window {
            entry.started = now;
            entry.count = 0;
        }
        entry.count += 1;
        let reset = window.saturating_sub(now.duration_since(entry.started));
        Decision::from_count(entry.count, policy, reset)
    }

    async fn hit_redis(
        &self,
        pool: &RedisPool,
        key: &str,
        policy: &RatePolicy,
    ) -> anyhow::Result<Decision> {
        let (count, ttl_ms) = pool.fixed_window(key, policy.window_secs * 1000).await?;
        Ok(Decision::from_count(
            count,
            policy,
            Duration::from_millis(ttl_ms.max(0) as u64),
        ))
    }

    /// Drops in-process windows that have ended; run periodically.
    pub fn prune(&self) {
        let now = Instant::now();
        let rules = self.rules.get();
        let longest = rules
            .routes
            .iter()
            .map(|r| r.window_secs)
            .chain([rules.default.window_secs])
            .max()
            .unwrap_or(60);
        self.memory
            .retain(|_, w| now.duration_since(w.started) < Duration::from_secs(longest));
    }

    /// The client's address: the peer, or X-Forwarded-For when configured to trust it.
    pub fn client_ip(&self, req: &HttpRequest) -> String {
        if self.trust_forwarded_for {
            req.connection_info()
                .realip_remote_addr()
                .map(str::to_owned)
        } else {
            req.peer_addr().map(|a| a.ip().to_string())
        }
        .unwrap_or_else(|| "unknown".into())
    }

    /// Who a request counts against. Under a route policy (the stricter prefixes, such as
    /// `/api/v1/auth`) the IP always counts too: any valid token would otherwise buy its
    /// holder a budget of its own there, and tokens are free to whoever has an account.
    fn subjects(&self, req: &ServiceRequest, route_policy: bool) -> Vec<String> {
        let ip = self.client_ip(req.request());
        if let Some(token) = bearer_token(req.request())
            && let Some(verifier) = req.app_data::<web::Data<TokenVerifier>>()
            && let Ok(claims) = verifier.verify(token)
        {
            let mut subjects = vec![format!("user:{}", claims.sub)];
            if route_policy {
                subjects.push(format!("ip:{ip}"));
            }
            return subjects;
        }
        let mut subjects = vec![format!("ip:{ip}")];
        if let Some(key) = req.headers().get("x-api-key") {
            let digest = Sha256::digest(key.as_bytes());
            subjects.push(format!("key:{}", hex::encode(&digest[..12])));
        }
        subjects
    }
}

fn set_headers(headers: &mut header::HeaderMap, d: &Decision, policy: &RatePolicy) {
    let num =
        |n: u64| HeaderValue::from_str(&n.to_string()).unwrap_or(HeaderValue::from_static("0"));
    headers.insert(
        HeaderName::from_static("ratelimit-limit"),
        num(d.limit.into()),
    );
    headers.insert(
        HeaderName::from_static("ratelimit-remaining"),
        num(d.remaining.into()),
    );
    headers.insert(
        HeaderName::from_static("ratelimit-reset"),
        num(d.reset_secs),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("{};w={}", policy.requests, policy.window_secs)) {
        headers.insert(HeaderName::from_static("ratelimit-policy"), v);
    }
}

pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let limiter: Option<Arc<RateLimiter>> = req
        .app_data::<web::Data<RateLimiter>>()
        .map(|d| d.clone().into_inner())
        .filter(|l| l.enabled);
    let Some(limiter) =
        limiter.filter(|_| !EXEMPT_PREFIXES.iter().any(|p| req.path().starts_with(p)))
    else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let (policy_name, policy) = limiter.rules.get().policy_for(req.path());
    let mut tightest: Option<Decision> = None;
    for subject in limiter.subjects(&req, policy_name != "default") {
        let key = format!("basalt:rl:{policy_name}:{}:{subject}", policy.window_secs);
        // Boxed for the same reason as the revocation check: the Redis path's future is large.
        let d = Box::pin(limiter.hit(&key, &policy)).await;
        let tighter = match tightest {
            None => true,
            Some(t) => {
                (!d.allowed && t.allowed) || (d.allowed == t.allowed && d.remaining < t.remaining)
            }
        };
        if tighter {
            tightest = Some(d);
        }
    }
    let Some(decision) = tightest else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    if !decision.allowed {
        let error = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited")
            .detail(format!(
                "Too many requests: {} per {} s allowed here. Retry in {} s.",
                policy.requests, policy.window_secs, decision.reset_secs
            ))
            .header(header::RETRY_AFTER, HeaderValue::from(decision.reset_secs));
        let mut res = error.error_response();
        set_headers(res.headers_mut(), &decision, &policy);
        let (http_req, _) = req.into_parts();
        return Ok(ServiceResponse::new(http_req, res).map_into_right_body());
    }
    let mut res = next.call(req).await?;
    set_headers(res.headers_mut(), &decision, &policy);
    Ok(res.map_into_left_body())
}
