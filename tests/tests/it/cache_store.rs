//! The conformance suite of the cache backends: every test runs on the in-process store, on a
//! Redis Cluster, and on `TEST_REDIS_URL` when it is set.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use server::{
    cache::{
        CacheKey, CacheStore, Invalidation, Lookup, memory::MemoryStore, redis::RedisCacheStore,
    },
    redis_store::RedisStore,
};

use crate::helpers::conformance_redis;

struct StoreUnderTest {
    store: Arc<dyn CacheStore>,
    /// Set for Redis: to look at the keys it writes.
    redis: Option<RedisStore>,
}

fn stores() -> Vec<StoreUnderTest> {
    let mut stores = vec![StoreUnderTest {
        store: Arc::new(MemoryStore::new(1024 * 1024)),
        redis: None,
    }];
    for redis in conformance_redis("cache-conformance") {
        stores.push(StoreUnderTest {
            store: Arc::new(RedisCacheStore::new(redis.clone())),
            redis: Some(redis),
        });
    }
    stores
}

fn key(namespace: &str, rest: &str) -> CacheKey {
    CacheKey {
        namespace: namespace.into(),
        key: format!("{namespace}{rest}"),
    }
}

async fn put(store: &dyn CacheStore, key: &CacheKey, value: &'static str, ttl: Duration) {
    let Lookup::Miss(seen) = store.lookup(key).await.unwrap() else {
        panic!("{key:?} was already stored");
    };
    assert!(
        store
            .put(key, Bytes::from(value), ttl, &seen)
            .await
            .unwrap()
    );
}

async fn cached(store: &dyn CacheStore, key: &CacheKey) -> Option<Bytes> {
    match store.lookup(key).await.unwrap() {
        Lookup::Hit(value) => Some(value),
        Lookup::Miss(_) => None,
    }
}

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn entries_are_returned_as_stored_until_they_expire() {
    for under_test in stores() {
        let store = under_test.store.as_ref();
        let short = key("alice_posts", ":page_1");
        let long = key("alice_posts", ":page_2");
        put(store, &short, "{\"short\":1}", Duration::from_millis(300)).await;
        put(store, &long, "{\"long\":1}", MINUTE).await;
        assert_eq!(
            cached(store, &short).await.as_deref(),
            Some(&b"{\"short\":1}"[..])
        );
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(
            cached(store, &short).await,
            None,
            "{} expired",
            store.kind()
        );
        assert!(cached(store, &long).await.is_some());
    }
}

#[tokio::test]
async fn a_pattern_drops_its_prefix_within_its_namespace_only() {
    for under_test in stores() {
        let store = under_test.store.as_ref();
        let pages: Vec<_> = (1..=3)
            .map(|n| key("alice_posts", &format!(":page_{n}:items_per_page:10:alice")))
            .collect();
        for page in &pages {
            put(store, page, "page", MINUTE).await;
        }
        let alice_post = key("alice_post_cache", ":1");
        let bob_page = key("bob_posts", ":page_1:items_per_page:10:bob");
        let alicex_page = key("alicex_posts", ":page_1:items_per_page:10:alicex");
        for other in [&alice_post, &bob_page, &alicex_page] {
            put(store, other, "other", MINUTE).await;
        }

        let first_page_only = Invalidation::Prefix {
            namespace: "alice_posts".into(),
            prefix: "alice_posts:page_1:".into(),
        };
        assert_eq!(store.invalidate(&first_page_only).await.unwrap(), 1);
        assert_eq!(cached(store, &pages[0]).await, None);
        assert!(cached(store, &pages[1]).await.is_some());

        let all_pages = Invalidation::Prefix {
            namespace: "alice_posts".into(),
            prefix: "alice_posts:".into(),
        };
        assert_eq!(
            store.invalidate(&all_pages).await.unwrap(),
            2,
            "{}",
            store.kind()
        );
        for page in &pages {
            assert_eq!(cached(store, page).await, None);
        }
        for other in [&alice_post, &bob_page, &alicex_page] {
            assert!(
                cached(store, other).await.is_some(),
                "{other:?} is untouched"
            );
        }

        assert_eq!(
            store
                .invalidate(&Invalidation::Key(alice_post.clone()))
                .await
                .unwrap(),
            1
        );
        assert_eq!(cached(store, &alice_post).await, None);
        assert_eq!(
            store
                .invalidate(&Invalidation::Key(alice_post))
                .await
                .unwrap(),
            0
        );
    }
}

/// The deterministic part of the read/write race: a read misses, a write invalidates, then
/// the read tries to store what it read before the write. The store is refused.
#[tokio::test]
async fn a_read_that_raced_an_invalidation_cannot_store_stale_data() {
    for under_test in stores() {
        let store = under_test.store.as_ref();
        let page = key("alice_posts", ":page_1");
        let Lookup::Miss(seen) = store.lookup(&page).await.unwrap() else {
            panic!("empty store");
        };
        let write = Invalidation::Prefix {
            namespace: "alice_posts".into(),
            prefix: "alice_posts:".into(),
        };
        store.invalidate(&write).await.unwrap();
        let stored = store
            .put(&page, Bytes::from("stale"), MINUTE, &seen)
            .await
            .unwrap();
        assert!(!stored, "{} refused the stale store", store.kind());
        assert_eq!(cached(store, &page).await, None);

        // A read that started after the write stores normally.
        put(store, &page, "fresh", MINUTE).await;
        assert_eq!(cached(store, &page).await.as_deref(), Some(&b"fresh"[..]));
        // Invalidating another namespace does not block this one.
        let Lookup::Miss(seen) = store.lookup(&key("alice_posts", ":page_2")).await.unwrap() else {
            panic!("not stored yet");
        };
        store
            .invalidate(&Invalidation::Key(key("bob_posts", ":page_1")))
            .await
            .unwrap();
        let other = key("alice_posts", ":page_2");
        assert!(
            store
                .put(&other, Bytes::from("ok"), MINUTE, &seen)
                .await
                .unwrap()
        );
    }
}

/// An anonymous client can fill the cache with pages; the index of a namespace holds no more
/// than its live entries, and expires with them.
#[tokio::test]
async fn namespace_indexes_shed_expired_entries() {
    for under_test in stores() {
        let Some(redis) = under_test.redis else {
            continue; // the in-process bound is a unit test of its own (memory.rs)
        };
        let store = under_test.store.as_ref();
        for n in 0..50 {
            put(
                store,
                &key("flood_posts", &format!(":page_{n}")),
                "x",
                Duration::from_millis(200),
            )
            .await;
        }
        let index = redis.key("cache-index:{flood_posts}");
        let mut conn = redis.connection();
        let size: u64 = redis::cmd("ZCARD")
            .arg(&index)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(size, 50);
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&index)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(
            (1..=200).contains(&ttl),
            "the index expires with its entries: {ttl}"
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
        put(store, &key("flood_posts", ":page_last"), "x", MINUTE).await;
        let size: u64 = redis::cmd("ZCARD")
            .arg(&index)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(size, 1, "expired members were pruned");
    }
}
