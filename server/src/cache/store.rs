//! The interface both cache backends implement, and the shapes they exchange.
//!
//! Every entry belongs to a *namespace*: its key up to the first `:` of its template
//! (`alice_posts` for `alice_posts:page_1:items_per_page:10:alice`). A backend keeps, per
//! namespace, an index of the entries stored in it and a *generation* token:
//! - pattern invalidation reads the index of one namespace, so it costs what that namespace
//!   holds, never a scan of the whole keyspace;
//! - every invalidation replaces the generation, and a store is refused when the generation
//!   changed since the lookup that missed: a read that raced a write cannot put back the data
//!   the write just invalidated.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

/// The key of one cached response, with the namespace it is indexed under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    pub namespace: String,
    pub key: String,
}

/// The generation of a namespace as a lookup saw it; empty when the namespace had none.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Generation(pub String);

impl Generation {
    /// A fresh, unguessable token: two invalidations never produce the same one.
    pub fn new_token() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Hit(Bytes),
    /// Not cached; pass the generation to [`CacheStore::put`].
    Miss(Generation),
}

/// What a successful write drops.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Invalidation {
    /// One entry.
    Key(CacheKey),
    /// Every entry of `namespace` whose key starts with `prefix` (a pattern `prefix*`).
    Prefix { namespace: String, prefix: String },
}

impl Invalidation {
    pub fn namespace(&self) -> &str {
        match self {
            Self::Key(key) => &key.namespace,
            Self::Prefix { namespace, .. } => namespace,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cache backend: {0}")]
pub struct CacheError(pub String);

impl From<redis::RedisError> for CacheError {
    fn from(err: redis::RedisError) -> Self {
        Self(err.to_string())
    }
}

/// A response cache backend: Redis, or in process. Both keep the same semantics, checked by
/// one conformance suite (`tests/it/cache_store.rs`).
#[async_trait]
pub trait CacheStore: Send + Sync {
    async fn lookup(&self, key: &CacheKey) -> Result<Lookup, CacheError>;

    /// Stores `value` for `ttl`, indexed in its namespace, in one atomic step, unless the
    /// namespace's generation is no longer `seen`. Returns whether it was stored.
    async fn put(
        &self,
        key: &CacheKey,
        value: Bytes,
        ttl: Duration,
        seen: &Generation,
    ) -> Result<bool, CacheError>;

    /// Drops the matching entries and renews the namespace's generation; returns how many
    /// entries were dropped.
    async fn invalidate(&self, target: &Invalidation) -> Result<u64, CacheError>;

    /// Whether the backend answers (`/ready`).
    async fn ping(&self) -> Result<(), CacheError>;

    /// `redis` or `memory`, for `/ready` and logs.
    fn kind(&self) -> &'static str;
}
