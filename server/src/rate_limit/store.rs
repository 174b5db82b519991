//! The counter backends of the fixed-window limiter: Redis, or in process. Both count and expire
//! in one atomic step, so concurrent requests get distinct counts and never more than `limit`
//! of them pass.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use async_trait::async_trait;
use moka::{Expiry, sync::Cache};
use redis::Script;

use crate::redis_store::RedisStore;

/// The count of a window after one more request, and the rules version the backend holds
/// (Redis only: that is how an instance learns of another instance's rule change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub count: u64,
    pub rules_version: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("rate-limit backend: {0}")]
pub struct StoreError(pub String);

impl From<redis::RedisError> for StoreError {
    fn from(err: redis::RedisError) -> Self {
        Self(err.to_string())
    }
}

#[async_trait]
pub trait CounterStore: Send + Sync {
    /// Counts one request under `key`, which expires `ttl` after its first request.
    async fn hit(&self, key: &str, ttl: Duration) -> Result<Hit, StoreError>;

    /// Takes back one request counted under `key`, if its window still exists.
    async fn undo(&self, key: &str) -> Result<(), StoreError>;

    /// Tells every instance sharing this backend that the rules changed.
    async fn bump_rules_version(&self) -> Result<(), StoreError>;

    fn kind(&self) -> &'static str;
}

/// Name of the rules version key (under `REDIS_KEY_PREFIX`).
const RULES_VERSION_KEY: &str = "ratelimit:rules-version";

/// KEYS: the window's counter, the rules version. ARGV: the window's remaining seconds.
static HIT: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return {count, redis.call('GET', KEYS[2]) or '0'}
",
    )
});

/// KEYS: a window's counter. A window that expired meanwhile is not recreated (without TTL).
static UNDO: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('DECR', KEYS[1]) end
return 0
",
    )
});

pub struct RedisCounter {
    redis: RedisStore,
}

impl RedisCounter {
    pub fn new(redis: RedisStore) -> Self {
        Self { redis }
    }
}

#[async_trait]
impl CounterStore for RedisCounter {
    async fn hit(&self, key: &str, ttl: Duration) -> Result<Hit, StoreError> {
        let mut conn = self.redis.connection();
        let (count, version): (u64, String) = HIT
            .key(self.redis.key(key))
            .key(self.redis.key(RULES_VERSION_KEY))
            .arg(ttl.as_secs().max(1))
            .invoke_async(&mut conn)
            .await?;
        Ok(Hit {
            count,
            rules_version: Some(version),
        })
    }

    async fn undo(&self, key: &str) -> Result<(), StoreError> {
        let mut conn = self.redis.connection();
        let _: i64 = UNDO
            .key(self.redis.key(key))
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }

    async fn bump_rules_version(&self) -> Result<(), StoreError> {
        let mut conn = self.redis.connection();
        let _: u64 = redis::cmd("INCR")
            .arg(self.redis.key(RULES_VERSION_KEY))
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}

struct Window {
    count: AtomicU64,
    ttl: Duration,
}

struct WindowExpiry;

impl Expiry<String, Arc<Window>> for WindowExpiry {
    fn expire_after_create(
        &self,
        _: &String,
        window: &Arc<Window>,
        _: Instant,
    ) -> Option<Duration> {
        Some(window.ttl)
    }
}

/// In-process windows; each is dropped when it ends, and at most `MAX_WINDOWS` are kept.
pub struct MemoryCounter {
    windows: Cache<String, Arc<Window>>,
}

/// Live windows kept at most; beyond, the least used are forgotten (their clients start over).
const MAX_WINDOWS: u64 = 1_000_000;

impl Default for MemoryCounter {
    fn default() -> Self {
        Self {
            windows: Cache::builder()
                .max_capacity(MAX_WINDOWS)
                .expire_after(WindowExpiry)
                .build(),
        }
    }
}

#[async_trait]
impl CounterStore for MemoryCounter {
    async fn hit(&self, key: &str, ttl: Duration) -> Result<Hit, StoreError> {
        let window = self.windows.get_with_by_ref(key, || {
            Arc::new(Window {
                count: AtomicU64::new(0),
                ttl,
            })
        });
        Ok(Hit {
            count: window.count.fetch_add(1, Ordering::SeqCst) + 1,
            rules_version: None,
        })
    }

    async fn undo(&self, key: &str) -> Result<(), StoreError> {
        if let Some(window) = self.windows.get(key) {
            let _ = window
                .count
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        }
        Ok(())
    }

    async fn bump_rules_version(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}
