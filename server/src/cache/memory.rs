//! The in-process backend (no Redis configured): moka, bounded by bytes, with per-entry
//! expiry, and the same namespace index and generations as the Redis backend.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use bytes::Bytes;
use moka::{Expiry, notification::RemovalCause, sync::Cache};

use crate::cache::store::{CacheError, CacheKey, CacheStore, Generation, Invalidation, Lookup};

#[derive(Clone)]
struct Entry {
    value: Bytes,
    ttl: Duration,
}

struct EntryExpiry;

impl Expiry<String, Entry> for EntryExpiry {
    fn expire_after_create(&self, _: &String, entry: &Entry, _: Instant) -> Option<Duration> {
        Some(entry.ttl)
    }

    fn expire_after_update(
        &self,
        _: &String,
        entry: &Entry,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.ttl)
    }
}

/// A namespace's generation and the keys stored in it, with their expiry times.
#[derive(Default)]
struct Namespace {
    generation: Generation,
    members: HashMap<String, Instant>,
    /// Expired members are pruned when the index grows past this, so it stays proportional
    /// to the live entries.
    prune_at: usize,
}

impl Namespace {
    fn add(&mut self, key: String, expires: Instant) {
        if self.members.len() >= self.prune_at {
            let now = Instant::now();
            self.members.retain(|_, expires| *expires > now);
            self.prune_at = (self.members.len() * 2).max(64);
        }
        self.members.insert(key, expires);
    }
}

type SharedNamespace = Arc<Mutex<Namespace>>;

pub struct MemoryStore {
    entries: Cache<String, Entry>,
    namespaces: Cache<String, SharedNamespace>,
}

/// Namespaces kept at most; one is dropped, with its entries, when this is exceeded.
const MAX_NAMESPACES: u64 = 100_000;
/// A namespace unused for this long is dropped with its entries.
const NAMESPACE_IDLE: Duration = Duration::from_secs(24 * 3600);

impl MemoryStore {
    /// A store holding at most `max_bytes` of keys and values.
    pub fn new(max_bytes: u64) -> Self {
        let entries: Cache<String, Entry> = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|key: &String, entry: &Entry| {
                u32::try_from(key.len() + entry.value.len()).unwrap_or(u32::MAX)
            })
            .expire_after(EntryExpiry)
            .build();
        let orphans = entries.clone();
        let namespaces = Cache::builder()
            .max_capacity(MAX_NAMESPACES)
            .time_to_idle(NAMESPACE_IDLE)
            .eviction_listener(move |_, namespace: SharedNamespace, cause| {
                // Entries of a forgotten namespace could no longer be invalidated: drop them.
                if cause != RemovalCause::Replaced
                    && let Ok(namespace) = namespace.lock()
                {
                    for key in namespace.members.keys() {
                        orphans.invalidate(key);
                    }
                }
            })
            .build();
        Self {
            entries,
            namespaces,
        }
    }

    fn namespace(&self, name: &str) -> SharedNamespace {
        self.namespaces
            .get_with_by_ref(name, SharedNamespace::default)
    }
}

fn poisoned<T>(_: T) -> CacheError {
    CacheError("a namespace lock was poisoned".into())
}

#[async_trait]
impl CacheStore for MemoryStore {
    async fn lookup(&self, key: &CacheKey) -> Result<Lookup, CacheError> {
        if let Some(entry) = self.entries.get(&key.key) {
            return Ok(Lookup::Hit(entry.value));
        }
        let generation = match self.namespaces.get(&key.namespace) {
            Some(namespace) => namespace.lock().map_err(poisoned)?.generation.clone(),
            None => Generation::default(),
        };
        Ok(Lookup::Miss(generation))
    }

    async fn put(
        &self,
        key: &CacheKey,
        value: Bytes,
        ttl: Duration,
        seen: &Generation,
    ) -> Result<bool, CacheError> {
        let namespace = self.namespace(&key.namespace);
        let mut namespace = namespace.lock().map_err(poisoned)?;
        if namespace.generation != *seen {
            return Ok(false);
        }
        self.entries.insert(key.key.clone(), Entry { value, ttl });
        namespace.add(key.key.clone(), Instant::now() + ttl);
        Ok(true)
    }

    async fn invalidate(&self, target: &Invalidation) -> Result<u64, CacheError> {
        let namespace = self.namespace(target.namespace());
        let mut namespace = namespace.lock().map_err(poisoned)?;
        namespace.generation = Generation::new_token();
        let doomed: Vec<String> = match target {
            Invalidation::Key(key) => vec![key.key.clone()],
            Invalidation::Prefix { prefix, .. } => namespace
                .members
                .keys()
                .filter(|key| key.starts_with(prefix.as_str()))
                .cloned()
                .collect(),
        };
        let mut dropped = 0;
        for key in doomed {
            namespace.members.remove(&key);
            if self.entries.remove(&key).is_some() {
                dropped += 1;
            }
        }
        Ok(dropped)
    }

    async fn ping(&self) -> Result<(), CacheError> {
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_flood_of_entries_stays_within_the_byte_bound() {
        let store = MemoryStore::new(16 * 1024);
        for n in 0..500 {
            let key = CacheKey {
                namespace: "flood".into(),
                key: format!("flood:page_{n}"),
            };
            let value = Bytes::from(vec![b'x'; 1000]);
            let seen = Generation::default();
            store
                .put(&key, value, Duration::from_secs(60), &seen)
                .await
                .unwrap();
        }
        store.entries.run_pending_tasks();
        assert!(store.entries.weighted_size() <= 16 * 1024);
        assert!(store.entries.entry_count() > 0);
    }
}
