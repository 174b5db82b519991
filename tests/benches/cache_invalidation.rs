//! Pattern invalidation must cost what it drops, not what Redis holds. Invalidates one user's
//! list pages with 0 and with 100,000 unrelated keys in Redis, with this project's indexed
//! invalidation and, as the baseline in the same run, the original's `SCAN MATCH` + delete.
//! Writes `target/bench/cache_invalidation.json`.
//!
//! Runs a private `redis-server` on a free port, so the keyspace holds exactly what the
//! benchmark puts there. Run with `cargo bench -p tests --bench cache_invalidation`.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use bytes::Bytes;
use server::{
    cache::{CacheKey, CacheStore, Invalidation, Lookup, redis::RedisCacheStore},
    redis_store::RedisStore,
};

/// Pages of one user's list cached before each invalidation.
const PAGES: usize = 20;
const ROUNDS: usize = 200;
const UNRELATED: [usize; 2] = [0, 100_000];

fn page_key(n: usize) -> CacheKey {
    CacheKey {
        namespace: "alice_posts".into(),
        key: format!("alice_posts:page_{n}:items_per_page:10:alice"),
    }
}

async fn fill_pages(store: &RedisCacheStore) -> Result<(), Box<dyn std::error::Error>> {
    let body = Bytes::from(vec![b'x'; 2_000]);
    for n in 0..PAGES {
        let key = page_key(n);
        if let Lookup::Miss(seen) = store.lookup(&key).await? {
            store
                .put(&key, body.clone(), Duration::from_secs(600), &seen)
                .await?;
        }
    }
    Ok(())
}

/// The original's way: walk the whole keyspace with SCAN MATCH, delete what matches.
async fn scan_and_delete(redis: &RedisStore, pattern: &str) -> redis::RedisResult<u64> {
    let mut conn = redis.connection();
    let mut cursor = 0u64;
    let mut dropped = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await?;
        if !keys.is_empty() {
            dropped += redis::cmd("UNLINK")
                .arg(&keys)
                .query_async::<u64>(&mut conn)
                .await?;
        }
        if next == 0 {
            return Ok(dropped);
        }
        cursor = next;
    }
}

fn summary(mut micros: Vec<f64>) -> serde_json::Value {
    micros.sort_by(f64::total_cmp);
    let at = |q: f64| micros[((micros.len() - 1) as f64 * q) as usize];
    serde_json::json!({
        "median_us": at(0.5),
        "p90_us": at(0.9),
        "mean_us": micros.iter().sum::<f64>() / micros.len() as f64,
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut redis_server = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()?;
    let redis = RedisStore::open(&format!("redis://127.0.0.1:{port}"), "")?;
    let started = Instant::now();
    while redis.ping().await.is_err() {
        if started.elapsed() > Duration::from_secs(10) {
            return Err("redis-server did not start".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let store = RedisCacheStore::new(redis.clone());
    let everything = Invalidation::Prefix {
        namespace: "alice_posts".into(),
        prefix: "alice_posts:".into(),
    };

    let mut results = serde_json::Map::new();
    let mut inserted = 0;
    for unrelated in UNRELATED {
        let mut conn = redis.connection();
        while inserted < unrelated {
            let mut pipe = redis::pipe();
            for n in inserted..(inserted + 1000).min(unrelated) {
                pipe.cmd("SET")
                    .arg(format!("bob{n}_posts:page_1"))
                    .arg("{}")
                    .ignore();
            }
            pipe.query_async::<()>(&mut conn).await?;
            inserted = (inserted + 1000).min(unrelated);
        }
        let keys: u64 = redis::cmd("DBSIZE").query_async(&mut conn).await?;

        let (mut indexed, mut scanned) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            fill_pages(&store).await?;
            let timer = Instant::now();
            let dropped = store.invalidate(&everything).await?;
            indexed.push(timer.elapsed().as_secs_f64() * 1e6);
            assert_eq!(dropped as usize, PAGES);

            fill_pages(&store).await?;
            let timer = Instant::now();
            let dropped = scan_and_delete(&redis, "alice_posts:*").await?;
            scanned.push(timer.elapsed().as_secs_f64() * 1e6);
            assert_eq!(dropped as usize, PAGES);
        }
        results.insert(
            format!("unrelated_{unrelated}"),
            serde_json::json!({
                "keys_in_redis_before_fill": keys,
                "indexed_invalidation": summary(indexed),
                "scan_match_baseline": summary(scanned),
            }),
        );
    }
    redis_server.kill().ok();
    redis_server.wait().ok();

    let median = |run: &str, way: &str| results[run][way]["median_us"].as_f64().unwrap_or(0.0);
    let report = serde_json::json!({
        "pages_per_invalidation": PAGES,
        "rounds": ROUNDS,
        "runs": results.clone(),
        "indexed_100k_over_0": median("unrelated_100000", "indexed_invalidation")
            / median("unrelated_0", "indexed_invalidation"),
        "scan_100k_over_0": median("unrelated_100000", "scan_match_baseline")
            / median("unrelated_0", "scan_match_baseline"),
    });
    let out_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    std::fs::create_dir_all(&out_dir)?;
    let out = out_dir.join("cache_invalidation.json");
    std::fs::write(&out, serde_json::to_string_pretty(&report)?)?;
    println!("{report:#}\nwritten to {}", out.display());
    Ok(())
}
