//! The response cache: per-operation policies over a Redis or in-process backend.
//!
//! Declare a policy with [`cache_policy!`](crate::cache_policy) and name it in the
//! operation's `transform`:
//!
//! ```ignore
//! cache_policy!(cache_posts_page,
//!     key_prefix = "{username}_posts:page_{page}:items_per_page:{items_per_page}",
//!     resource_id_name = "username", expiration = 60);
//!
//! #[oai(path = "/:username/posts", method = "get", operation_id = "read_posts",
//!       transform = "cache_posts_page")]
//! ```
//!
//! The backend is reached through [`ResponseCache`], which turns every backend failure into
//! "uncached": an outage costs speed, never an error. While the backend is failing, calls skip
//! it (one probe a second), and invalidations that could not be made are kept and replayed
//! before the cache is used again, so an entry that a write invalidated during the outage is
//! not served afterwards.

pub mod memory;
pub mod policy;
pub mod redis;
pub mod store;

use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use poem::Request;

pub use policy::{Cached, PolicySpec};

use crate::{
    http::routes::RouteTable,
    telemetry::metrics::{CacheLookup, Metrics},
};
pub use store::{CacheKey, CacheStore, Generation, Invalidation, Lookup};

/// Declares a cache policy as a function for an operation's `transform`.
///
/// Fields (all optional, the original's decorator arguments): `key_prefix`,
/// `resource_id_name`, `expiration` (seconds, default 3600), `to_invalidate_extra` (key
/// templates) and `pattern_to_invalidate_extra` (`<namespace>:<prefix>*` patterns).
#[macro_export]
macro_rules! cache_policy {
    ($name:ident $(, $field:ident = $value:tt)* $(,)?) => {
        fn $name(ep: impl ::poem::Endpoint + 'static) -> impl ::poem::Endpoint {
            const SPEC: $crate::cache::PolicySpec =
                $crate::cache::PolicySpec::NONE $(.$field($crate::__cache_policy_value!($value)))*;
            $crate::cache::Cached::new(ep, stringify!($name), &SPEC)
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __cache_policy_value {
    ([$($item:expr),* $(,)?]) => { &[$($item),*] };
    ($value:expr) => { $value };
}

/// How long calls skip a failing backend before probing it again.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);
/// Invalidations kept for replay during an outage; beyond this, entries may stay stale until
/// they expire (logged).
const MAX_PENDING_INVALIDATIONS: usize = 10_000;

#[derive(Default)]
struct Outage {
    /// `Some` while the backend is failing: calls skip it until then.
    retry_at: Option<Instant>,
    pending: HashSet<Invalidation>,
    overflowed: bool,
}

/// The cache as handlers and policies see it. Cheap to clone.
#[derive(Clone)]
pub struct ResponseCache {
    store: Arc<dyn CacheStore>,
    routes: Arc<RouteTable>,
    outage: Arc<Mutex<Outage>>,
    /// Mirrors `outage.retry_at.is_some()`, so the healthy path takes no lock.
    degraded: Arc<AtomicBool>,
    probe: Arc<tokio::sync::Mutex<()>>,
    /// `false` when the operator turned the cache off: every lookup misses, nothing is stored.
    enabled: bool,
    metrics: Metrics,
}

impl ResponseCache {
    pub fn new(store: Arc<dyn CacheStore>, routes: Arc<RouteTable>) -> Self {
        Self {
            store,
            routes,
            outage: Arc::default(),
            degraded: Arc::default(),
            probe: Arc::default(),
            enabled: true,
            metrics: Metrics::disabled(),
        }
    }

    /// The same cache, counting its lookups and invalidations in `metrics`.
    pub fn with_metrics(self, metrics: Metrics) -> Self {
        Self { metrics, ..self }
    }

    /// The same cache, with every lookup missing and nothing stored or invalidated.
    pub fn turned_off(self) -> Self {
        Self {
            enabled: false,
            ..self
        }
    }

    pub fn kind(&self) -> &'static str {
        if self.enabled {
            self.store.kind()
        } else {
            "off"
        }
    }

    pub async fn ping(&self) -> Result<(), store::CacheError> {
        self.store.ping().await
    }

    pub fn request_params(&self, req: &Request) -> policy::RequestParams {
        policy::RequestParams::new(req, self.routes.for_request(req))
    }

    fn lock_outage(&self) -> std::sync::MutexGuard<'_, Outage> {
        // The guarded data stays consistent whatever a panicking holder did.
        self.outage.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn failed(&self, err: &store::CacheError) {
        let mut outage = self.lock_outage();
        if outage.retry_at.is_none() {
            tracing::warn!(error = %err, backend = self.kind(),
                "response cache unavailable: serving uncached until it answers again");
        }
        outage.retry_at = Some(Instant::now() + RETRY_AFTER_FAILURE);
        self.degraded.store(true, Ordering::Release);
    }

    /// Whether to use the backend now. After an outage, one caller probes it by replaying
    /// the invalidations it missed; the cache is used again only once they are made.
    async fn available(&self) -> bool {
        if !self.enabled {
            return false;
        }
        if !self.degraded.load(Ordering::Acquire) {
            return true;
        }
        let retry_at = self.lock_outage().retry_at;
        let Some(retry_at) = retry_at else {
            return true;
        };
        if Instant::now() < retry_at {
            return false;
        }
        let Ok(_probing) = self.probe.try_lock() else {
            return false;
        };
        let pending: Vec<Invalidation> = self.lock_outage().pending.iter().cloned().collect();
        for target in &pending {
            if let Err(err) = self.store.invalidate(target).await {
                self.failed(&err);
                return false;
            }
            self.lock_outage().pending.remove(target);
        }
        if let Err(err) = self.store.ping().await {
            self.failed(&err);
            return false;
        }
        let mut outage = self.lock_outage();
        if outage.pending.is_empty() {
            outage.retry_at = None;
            outage.overflowed = false;
            self.degraded.store(false, Ordering::Release);
            tracing::info!(backend = self.kind(), "response cache available again");
        }
        outage.retry_at.is_none()
    }

    /// `None` when the backend is unavailable: the caller serves uncached.
    pub async fn lookup(&self, key: &CacheKey) -> Option<Lookup> {
        let found = if self.available().await {
            self.store
                .lookup(key)
                .await
                .inspect_err(|err| self.failed(err))
                .ok()
        } else {
            None
        };
        self.metrics.cache_lookup(match &found {
            Some(Lookup::Hit(_)) => CacheLookup::Hit,
            Some(Lookup::Miss(_)) => CacheLookup::Miss,
            None => CacheLookup::Unavailable,
        });
        found
    }

    pub async fn put(&self, key: &CacheKey, value: Bytes, ttl: Duration, seen: &Generation) {
        if self.available().await
            && let Err(err) = self.store.put(key, value, ttl, seen).await
        {
            self.failed(&err);
        }
    }

    /// Makes the invalidations, or keeps them for replay when the backend is failing.
    pub async fn invalidate(&self, targets: Vec<Invalidation>) {
        if !self.enabled {
            return;
        }
        let mut targets = targets.into_iter();
        if self.available().await {
            for target in targets.by_ref() {
                if let Err(err) = self.store.invalidate(&target).await {
                    self.failed(&err);
                    self.keep_for_replay(std::iter::once(target));
                    break;
                }
                self.metrics.cache_invalidated(match target {
                    Invalidation::Key(_) => "key",
                    Invalidation::Prefix { .. } => "pattern",
                });
            }
        }
        self.keep_for_replay(targets);
    }

    fn keep_for_replay(&self, targets: impl Iterator<Item = Invalidation>) {
        let mut outage = self.lock_outage();
        for target in targets {
            if outage.pending.len() < MAX_PENDING_INVALIDATIONS {
                outage.pending.insert(target);
            } else if !outage.overflowed {
                outage.overflowed = true;
                tracing::error!(
                    "too many invalidations missed during the cache outage: some cached \
                     entries may be served stale until they expire"
                );
            }
        }
    }
}
