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

/// A GCRA decision: the key holds the theoretical arrival time (TAT) of the next request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcraHit {
    pub allowed: bool,
    /// Requests that could be made right now.
    pub remaining: u64,
    /// Milliseconds until one request is allowed again (0 when allowed).
    pub retry_after_ms: u64,
    /// Milliseconds until the full burst is available again.
    pub reset_after_ms: u64,
    pub rules_version: Option<String>,
}

/// The GCRA step, from the TAT before it (`None`: a fresh key) and the time, both in
/// milliseconds: the new TAT to store when allowed, and the hit.
fn gcra_step(tat: Option<f64>, now: f64, limit: u64, period_ms: f64) -> (Option<f64>, GcraHit) {
    let interval = period_ms / limit.max(1) as f64;
    let tat = tat.unwrap_or(now).max(now);
    let new_tat = tat + interval;
    let allow_at = new_tat - period_ms;
    if now < allow_at {
        let hit = GcraHit {
            allowed: false,
            remaining: 0,
            retry_after_ms: (allow_at - now).ceil() as u64,
            reset_after_ms: (tat - now).ceil() as u64,
            rules_version: None,
        };
        return (None, hit);
    }
    let hit = GcraHit {
        allowed: true,
        remaining: ((now - allow_at) / interval).floor() as u64,
        retry_after_ms: 0,
        reset_after_ms: (new_tat - now).ceil() as u64,
        rules_version: None,
    };
    (Some(new_tat), hit)
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

    /// One GCRA step for `limit` requests per `period` under `key`: no double burst at window
    /// edges, one key, one round trip.
    async fn gcra(&self, key: &str, limit: u64, period: Duration) -> Result<GcraHit, StoreError>;

    /// Takes back one request counted under `key`, if its window still exists.
    async fn undo(&self, key: &str) -> Result<(), StoreError>;

    /// Tells every instance sharing this backend that the rules changed.
    async fn bump_rules_version(&self) -> Result<(), StoreError>;

    fn kind(&self) -> &'static str;
}

/// Name of the rules version key (under `REDIS_KEY_PREFIX`).
const RULES_VERSION_KEY: &str = "ratelimit:rules-version";

/// KEYS: the window's counter, then on one server the rules version (on a cluster it lives in
/// another slot, and is read beside the script). ARGV: the window's remaining seconds.
static HIT: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local version = ''
if KEYS[2] then version = redis.call('GET', KEYS[2]) or '0' end
return {count, version}
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

/// KEYS: the TAT, then on one server the rules version (as for `HIT`). ARGV: limit, period in ms. The same step as
/// `gcra_step`, on Redis's clock (`TIME`), so instances need no clock agreement. Fractions
/// travel as strings (Lua numbers return to Redis as integers).
static GCRA: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"
local limit = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local interval = period / limit
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - period
local version = ''
if KEYS[2] then version = redis.call('GET', KEYS[2]) or '0' end
if now < allow_at then
  return {0, 0, math.ceil(allow_at - now), math.ceil(tat - now), version}
end
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil(new_tat - now))
return {1, math.floor((now - allow_at) / interval), 0, math.ceil(new_tat - now), version}
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

    pub async fn ping(&self) -> Result<(), StoreError> {
        Ok(self.redis.ping().await?)
    }

    /// Runs a counting script whose answer ends with the rules version. On one server the
    /// script reads the version itself (one round trip); on a cluster the version key is in
    /// another slot, so it is read beside the script, at the same time.
    async fn invoke_with_rules_version<T: HasRulesVersion>(
        &self,
        mut invocation: redis::ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        let version_key = self.redis.key(RULES_VERSION_KEY);
        if !self.redis.is_cluster() {
            invocation.key(&version_key);
            return Ok(invocation
                .invoke_async(&mut self.redis.connection())
                .await?);
        }
        let mut script_connection = self.redis.connection();
        let mut version_connection = self.redis.connection();
        let mut read_version = redis::cmd("GET");
        read_version.arg(&version_key);
        let (answer, version): (T, Option<String>) = tokio::try_join!(
            invocation.invoke_async(&mut script_connection),
            read_version.query_async(&mut version_connection),
        )?;
        Ok(answer.with_rules_version(version.unwrap_or_else(|| "0".into())))
    }
}

/// A counting script's answer, whose last field is the rules version.
trait HasRulesVersion: redis::FromRedisValue {
    fn with_rules_version(self, version: String) -> Self;
}

impl HasRulesVersion for (u64, String) {
    fn with_rules_version(self, version: String) -> Self {
        (self.0, version)
    }
}

impl HasRulesVersion for (u8, u64, u64, u64, String) {
    fn with_rules_version(self, version: String) -> Self {
        (self.0, self.1, self.2, self.3, version)
    }
}

#[async_trait]
impl CounterStore for RedisCounter {
    async fn hit(&self, key: &str, ttl: Duration) -> Result<Hit, StoreError> {
        let mut invocation = HIT.prepare_invoke();
        invocation
            .key(self.redis.key(key))
            .arg(ttl.as_secs().max(1));
        let (count, version): (u64, String) = self.invoke_with_rules_version(invocation).await?;
        Ok(Hit {
            count,
            rules_version: Some(version),
        })
    }

    async fn gcra(&self, key: &str, limit: u64, period: Duration) -> Result<GcraHit, StoreError> {
        let mut invocation = GCRA.prepare_invoke();
        invocation
            .key(self.redis.key(key))
            .arg(limit)
            .arg(u64::try_from(period.as_millis()).unwrap_or(u64::MAX));
        let (allowed, remaining, retry_after_ms, reset_after_ms, version): (
            u8,
            u64,
            u64,
            u64,
            String,
        ) = self.invoke_with_rules_version(invocation).await?;
        Ok(GcraHit {
            allowed: allowed == 1,
            remaining,
            retry_after_ms,
            reset_after_ms,
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

/// A GCRA key in process: its TAT in epoch milliseconds, and how long it may live.
struct Tat {
    at: std::sync::Mutex<Option<f64>>,
    ttl: Duration,
}

struct TatExpiry;

/// A TAT is at most one period ahead of its last use, so a key unused for a period is fresh:
/// every use extends its life by a period.
impl Expiry<String, Arc<Tat>> for TatExpiry {
    fn expire_after_create(&self, _: &String, tat: &Arc<Tat>, _: Instant) -> Option<Duration> {
        Some(tat.ttl)
    }

    fn expire_after_read(
        &self,
        _: &String,
        tat: &Arc<Tat>,
        _: Instant,
        _: Option<Duration>,
        _: Instant,
    ) -> Option<Duration> {
        Some(tat.ttl)
    }
}

/// In-process windows (and GCRA keys); each is dropped when it ends, and at most
/// `MAX_WINDOWS` are kept.
pub struct MemoryCounter {
    windows: Cache<String, Arc<Window>>,
    tats: Cache<String, Arc<Tat>>,
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
            tats: Cache::builder()
                .max_capacity(MAX_WINDOWS)
                .expire_after(TatExpiry)
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

    async fn gcra(&self, key: &str, limit: u64, period: Duration) -> Result<GcraHit, StoreError> {
        let tat = self.tats.get_with_by_ref(key, || {
            Arc::new(Tat {
                at: std::sync::Mutex::new(None),
                ttl: period,
            })
        });
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        let mut at = tat.at.lock().unwrap_or_else(|e| e.into_inner());
        let (new_tat, hit) = gcra_step(*at, now, limit, period.as_secs_f64() * 1000.0);
        if new_tat.is_some() {
            *at = new_tat;
        }
        Ok(hit)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcra_allows_a_burst_of_limit_then_one_per_interval() {
        // 4 per 4 s: an interval of 1 s.
        let (limit, period) = (4, 4000.0);
        let mut tat = None;
        let mut now = 0.0;
        for remaining in [3, 2, 1, 0] {
            let (next, hit) = gcra_step(tat, now, limit, period);
            assert!(hit.allowed);
            assert_eq!(hit.remaining, remaining);
            tat = next;
        }
        let (next, hit) = gcra_step(tat, now, limit, period);
        assert!(!hit.allowed && next.is_none());
        assert_eq!(hit.retry_after_ms, 1000);
        assert_eq!(hit.reset_after_ms, 4000);
        // After one interval, one more; no double burst at any edge.
        now += 1000.0;
        let (next, hit) = gcra_step(tat, now, limit, period);
        assert!(hit.allowed && hit.remaining == 0);
        tat = next;
        assert!(!gcra_step(tat, now + 500.0, limit, period).1.allowed);
        // Idle for a whole period: the full burst again.
        assert_eq!(gcra_step(tat, now + 4000.0, limit, period).1.remaining, 3);
    }
}
