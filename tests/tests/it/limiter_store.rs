//! The conformance suite of the rate limiter's counter backends: every test runs in process,
//! on a Redis Cluster, and on `TEST_REDIS_URL` when it is set.

use std::{sync::Arc, time::Duration};

use server::rate_limit::store::{CounterStore, MemoryCounter, RedisCounter};

use crate::helpers::{conformance_redis, run_concurrently};

fn stores() -> Vec<Arc<dyn CounterStore>> {
    let mut stores: Vec<Arc<dyn CounterStore>> = vec![Arc::new(MemoryCounter::default())];
    for redis in conformance_redis("limiter-conformance") {
        stores.push(Arc::new(RedisCounter::new(redis)));
    }
    stores
}

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_hits_get_distinct_counts() {
    for store in stores() {
        let hits = (0..50).map(|_| {
            let store = store.clone();
            async move { store.hit("ratelimit:1:path:0", MINUTE).await.unwrap().count }
        });
        let mut counts = run_concurrently(hits).await;
        counts.sort_unstable();
        assert_eq!(counts, (1..=50).collect::<Vec<u64>>(), "{}", store.kind());
    }
}

#[tokio::test]
async fn windows_expire_and_undo_never_revives_one() {
    for store in stores() {
        let ttl = Duration::from_secs(1);
        assert_eq!(store.hit("ratelimit:2:path:0", ttl).await.unwrap().count, 1);
        assert_eq!(store.hit("ratelimit:2:path:0", ttl).await.unwrap().count, 2);
        store.undo("ratelimit:2:path:0").await.unwrap();
        assert_eq!(
            store.hit("ratelimit:2:path:0", ttl).await.unwrap().count,
            2,
            "{}",
            store.kind()
        );
        tokio::time::sleep(Duration::from_millis(2100)).await;
        store.undo("ratelimit:2:path:0").await.unwrap();
        assert_eq!(
            store.hit("ratelimit:2:path:0", ttl).await.unwrap().count,
            1,
            "{}",
            store.kind()
        );
    }
}

#[tokio::test]
async fn gcra_gives_a_burst_then_refuses_with_the_wait() {
    for store in stores() {
        let period = Duration::from_secs(60);
        for remaining in [2, 1, 0] {
            let hit = store.gcra("ratelimit:3:path", 3, period).await.unwrap();
            assert!(hit.allowed, "{}", store.kind());
            assert_eq!(hit.remaining, remaining, "{}", store.kind());
        }
        let refused = store.gcra("ratelimit:3:path", 3, period).await.unwrap();
        assert!(!refused.allowed);
        // One interval is 20 s; a few milliseconds went by.
        assert!(
            (19_000..=20_000).contains(&refused.retry_after_ms),
            "{refused:?}"
        );
        assert!(
            (59_000..=60_000).contains(&refused.reset_after_ms),
            "{refused:?}"
        );
    }
}

#[tokio::test]
async fn redis_returns_the_rules_version_and_bumps_move_it() {
    for store in stores() {
        let before = store
            .hit("ratelimit:4:path:0", MINUTE)
            .await
            .unwrap()
            .rules_version;
        store.bump_rules_version().await.unwrap();
        let after = store
            .hit("ratelimit:4:path:0", MINUTE)
            .await
            .unwrap()
            .rules_version;
        match store.kind() {
            "redis" => assert_ne!(before, after),
            _ => assert_eq!((before, after), (None, None)),
        }
    }
}
