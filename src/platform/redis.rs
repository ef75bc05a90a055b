//! The Redis connection pool (deadpool-redis), when the `redis` feature is on and a URL is
//! configured. Everything that uses Redis must keep working without it: callers hold an
//! `Option<RedisPool>` and fall back in-process on `None` or on an error.

use crate::config::RedisSettings;

pub use imp::RedisPool;

#[cfg(feature = "redis")]
mod imp {
    use std::time::Duration;

    use super::*;
    use deadpool_redis::{Config, Runtime, redis};

    /// One fixed-window counter step: increment, start the window's expiry on the first hit,
    /// and report the count and the milliseconds left. Atomic because it runs as one script.
    const FIXED_WINDOW: &str = r"
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}";

    /// Takes one back from a counter above zero, keeping its expiry (DECR keeps the TTL).
    const UNCOUNT: &str = r"
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count > 0 then
  return redis.call('DECR', KEYS[1])
end
return 0";

    #[derive(Clone)]
    pub struct RedisPool {
        pool: deadpool_redis::Pool,
        timeout: Duration,
    }

    impl RedisPool {
        /// Builds the pool; connections are opened lazily, so a Redis that is down now does
        /// not stop start-up.
        pub fn connect(settings: &RedisSettings) -> anyhow::Result<Option<Self>> {
            let Some(url) = settings.url() else {
                return Ok(None);
            };
            let mut config = Config::from_url(url);
            config.pool = Some(deadpool_redis::PoolConfig {
                max_size: settings.pool_size,
                timeouts: deadpool_redis::Timeouts {
                    wait: Some(Duration::from_millis(settings.timeout_ms)),
                    create: Some(Duration::from_millis(settings.timeout_ms.max(1000))),
                    recycle: Some(Duration::from_millis(settings.timeout_ms)),
                },
                ..Default::default()
            });
            let pool = config
                .create_pool(Some(Runtime::Tokio1))
                .map_err(|e| anyhow::anyhow!("redis.url: {e}"))?;
            Ok(Some(Self {
                pool,
                timeout: Duration::from_millis(settings.timeout_ms),
            }))
        }

        pub async fn ping(&self) -> anyhow::Result<()> {
            let mut conn = self.pool.get().await?;
            let pong: String = redis::cmd("PING").query_async(&mut conn).await?;
            anyhow::ensure!(pong == "PONG", "unexpected PING reply {pong:?}");
            Ok(())
        }

        /// Sets `key` with an expiry (revocation lists).
        pub async fn set_with_ttl(&self, key: &str, ttl_ms: u64) -> anyhow::Result<()> {
            self.bounded(async {
                let mut conn = self.pool.get().await?;
                let _: () = redis::cmd("SET")
                    .arg(key)
                    .arg(1)
                    .arg("PX")
                    .arg(ttl_ms.max(1))
                    .query_async(&mut conn)
                    .await?;
                Ok(())
            })
            .await
        }

        /// Whether any of `keys` exists.
        pub async fn any_exists(&self, keys: &[String]) -> anyhow::Result<bool> {
            self.bounded(async {
                let mut conn = self.pool.get().await?;
                let n: u64 = redis::cmd("EXISTS")
                    .arg(keys)
                    .query_async(&mut conn)
                    .await?;
                Ok(n > 0)
            })
            .await
        }

        async fn bounded<T>(
            &self,
            work: impl std::future::Future<Output = anyhow::Result<T>>,
        ) -> anyhow::Result<T> {
            tokio::time::timeout(self.timeout, work)
                .await
                .map_err(|_| anyhow::anyhow!("Redis did not answer within {:?}", self.timeout))?
        }

        pub async fn fixed_window(&self, key: &str, window_ms: u64) -> anyhow::Result<(u64, i64)> {
            self.bounded(async {
                let mut conn = self.pool.get().await?;
                let reply: (u64, i64) = redis::cmd("EVAL")
                    .arg(FIXED_WINDOW)
                    .arg(1)
                    .arg(key)
                    .arg(window_ms)
                    .query_async(&mut conn)
                    .await?;
                Ok(reply)
            })
            .await
        }

        /// Takes one back from a fixed-window counter that has any (never below zero).
        pub async fn uncount(&self, key: &str) -> anyhow::Result<()> {
            self.bounded(async {
                let mut conn = self.pool.get().await?;
                let _: i64 = redis::cmd("EVAL")
                    .arg(UNCOUNT)
                    .arg(1)
                    .arg(key)
                    .query_async(&mut conn)
                    .await?;
                Ok(())
            })
            .await
        }
    }
}

#[cfg(not(feature = "redis"))]
mod imp {
    use super::*;

    /// Built without the `redis` feature: `connect` never returns a pool, so these methods
    /// are never reached; they exist so callers need no `cfg` of their own.
    #[derive(Clone)]
    pub struct RedisPool {
        _private: (),
    }

    impl RedisPool {
        pub fn connect(settings: &RedisSettings) -> anyhow::Result<Option<Self>> {
            if settings.url().is_some() {
                tracing::warn!(
                    "redis.url is set, but this binary was built without the `redis` feature; ignoring it"
                );
            }
            Ok(None)
        }

        pub async fn ping(&self) -> anyhow::Result<()> {
            anyhow::bail!("built without the `redis` feature")
        }

        pub async fn fixed_window(
            &self,
            _key: &str,
            _window_ms: u64,
        ) -> anyhow::Result<(u64, i64)> {
            anyhow::bail!("built without the `redis` feature")
        }

        pub async fn uncount(&self, _key: &str) -> anyhow::Result<()> {
            anyhow::bail!("built without the `redis` feature")
        }

        pub async fn set_with_ttl(&self, _key: &str, _ttl_ms: u64) -> anyhow::Result<()> {
            anyhow::bail!("built without the `redis` feature")
        }

        pub async fn any_exists(&self, _keys: &[String]) -> anyhow::Result<bool> {
            anyhow::bail!("built without the `redis` feature")
        }
    }
}
