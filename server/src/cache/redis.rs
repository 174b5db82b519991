//! The Redis backend. Entries are stored under the contract's key formats (after
//! `REDIS_KEY_PREFIX`) with the namespace as the hash tag, `{alice_posts}:page_1:…`; each
//! namespace has a sorted set indexing its entries by expiry time (`cache-index:{<namespace>}`)
//! and a generation token (`cache-gen:{<namespace>}`). A namespace's keys thus share one hash
//! slot, so on a Redis Cluster each script below runs on the one node that holds them all.
//!
//! Both writes are Lua scripts, so each is one atomic step: an entry is never stored without
//! its index record and expiry, and an invalidation drops entries and renews the generation
//! together. Time comes from Redis (`TIME`), so instances need no clock agreement. `KEYS` and
//! `SCAN` are never used.

use std::{sync::LazyLock, time::Duration};

use async_trait::async_trait;
use bytes::Bytes;
use redis::Script;

use crate::{
    cache::store::{CacheError, CacheKey, CacheStore, Generation, Invalidation, Lookup},
    redis_store::RedisStore,
};

/// A generation outlives any request that could have read it (see `store.rs`).
const GENERATION_TTL: Duration = Duration::from_secs(24 * 3600);

/// KEYS: entry, index, generation. ARGV: value, ttl in ms, the generation the lookup saw.
/// Expired index members are pruned on every store, so an index holds about as many members
/// as its namespace has live entries, and it expires with the last of them.
static PUT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local current = redis.call('GET', KEYS[3]) or ''
if current ~= ARGV[3] then return 0 end
local ttl = tonumber(ARGV[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZADD', KEYS[2], now + ttl, KEYS[1])
if redis.call('PTTL', KEYS[2]) < ttl then redis.call('PEXPIRE', KEYS[2], ttl) end
return 1
",
    )
});

/// KEYS: index, generation, then the entry for a single-key invalidation. ARGV: the new
/// generation, its ttl in ms, the key prefix to drop (prefix mode only).
/// Cost: the members of this one namespace's index, whatever else Redis holds.
static INVALIDATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
if KEYS[3] then
  redis.call('ZREM', KEYS[1], KEYS[3])
  return redis.call('UNLINK', KEYS[3])
end
local prefix = ARGV[3]
local doomed = {}
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if string.sub(member, 1, #prefix) == prefix then doomed[#doomed + 1] = member end
end
local dropped = 0
for i = 1, #doomed, 1000 do
  local batch = {unpack(doomed, i, math.min(i + 999, #doomed))}
  dropped = dropped + redis.call('UNLINK', unpack(batch))
  redis.call('ZREM', KEYS[1], unpack(batch))
end
return dropped
",
    )
});

pub struct RedisCacheStore {
    redis: RedisStore,
}

impl RedisCacheStore {
    pub fn new(redis: RedisStore) -> Self {
        Self { redis }
    }

    fn index_key(&self, namespace: &str) -> String {
        self.redis.key(&format!("cache-index:{{{namespace}}}"))
    }

    fn generation_key(&self, namespace: &str) -> String {
        self.redis.key(&format!("cache-gen:{{{namespace}}}"))
    }

    fn entry_key(&self, key: &CacheKey) -> String {
        self.redis.key(&tagged(&key.namespace, &key.key))
    }
}

/// `alice_posts:page_1` in namespace `alice_posts` → `{alice_posts}:page_1`: the namespace
/// becomes the key's hash tag. A key that does not start with its namespace gets it in front.
fn tagged(namespace: &str, key: &str) -> String {
    match key.strip_prefix(namespace) {
        Some(rest) => format!("{{{namespace}}}{rest}"),
        None => format!("{{{namespace}}}:{key}"),
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

#[async_trait]
impl CacheStore for RedisCacheStore {
    async fn lookup(&self, key: &CacheKey) -> Result<Lookup, CacheError> {
        let mut conn = self.redis.connection();
        // One round trip: the entry, or on a miss the generation to store against.
        let (entry, generation): (Option<Vec<u8>>, Option<String>) = redis::cmd("MGET")
            .arg(self.entry_key(key))
            .arg(self.generation_key(&key.namespace))
            .query_async(&mut conn)
            .await?;
        Ok(match entry {
            Some(bytes) => Lookup::Hit(Bytes::from(bytes)),
            None => Lookup::Miss(Generation(generation.unwrap_or_default())),
        })
    }

    async fn put(
        &self,
        key: &CacheKey,
        value: Bytes,
        ttl: Duration,
        seen: &Generation,
    ) -> Result<bool, CacheError> {
        let mut conn = self.redis.connection();
        let stored: i64 = PUT
            .key(self.entry_key(key))
            .key(self.index_key(&key.namespace))
            .key(self.generation_key(&key.namespace))
            .arg(value.as_ref())
            .arg(millis(ttl))
            .arg(&seen.0)
            .invoke_async(&mut conn)
            .await?;
        Ok(stored == 1)
    }

    async fn invalidate(&self, target: &Invalidation) -> Result<u64, CacheError> {
        let mut conn = self.redis.connection();
        let namespace = target.namespace();
        let mut invocation = INVALIDATE.prepare_invoke();
        invocation
            .key(self.index_key(namespace))
            .key(self.generation_key(namespace))
            .arg(Generation::new_token().0)
            .arg(millis(GENERATION_TTL));
        match target {
            Invalidation::Key(key) => invocation.key(self.entry_key(key)),
            Invalidation::Prefix { prefix, .. } => {
                invocation.arg(self.redis.key(&tagged(namespace, prefix)))
            }
        };
        let dropped: u64 = invocation.invoke_async(&mut conn).await?;
        Ok(dropped)
    }

    async fn ping(&self) -> Result<(), CacheError> {
        Ok(self.redis.ping().await?)
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}

#[cfg(test)]
mod tests {
    use super::tagged;

    #[test]
    fn the_namespace_is_each_keys_hash_tag() {
        assert_eq!(
            tagged("alice_posts", "alice_posts:page_1:items_per_page:10:alice"),
            "{alice_posts}:page_1:items_per_page:10:alice"
        );
        assert_eq!(
            tagged("alice_posts", "alice_posts:page_1:"),
            "{alice_posts}:page_1:"
        );
        assert_eq!(tagged("ns", "other:1"), "{ns}:other:1");
    }
}
