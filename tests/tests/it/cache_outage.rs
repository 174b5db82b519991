//! A cache outage degrades, never fails. Each test runs a `redis-server` of its own on a free
//! port, and stops, pauses or starts it mid-test.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::{
    helpers::{TestApp, TestRedis, spawn_app_with},
    posts::{fx_post, retitle_in_database, title_update},
};

async fn list_titles(app: &TestApp) -> Vec<String> {
    let page = app.api.read_posts().username("alice").send().await;
    let page = page
        .expect("reads never fail during a cache outage")
        .into_inner();
    page.data.into_iter().map(|p| p.title).collect()
}

async fn ready_status(app: &TestApp) -> StatusCode {
    reqwest::get(app.url("/api/v1/ready"))
        .await
        .unwrap()
        .status()
}

/// Polls until a read is served from the cache: the row changes behind the API each time,
/// so an answer that does not follow it came from the cache. Returns that answer.
async fn until_served_from_cache(app: &TestApp, post_id: i64, forbidden: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    for round in 0.. {
        assert!(Instant::now() < deadline, "caching did not resume");
        let behind = format!("Behind {round}");
        retitle_in_database(app, post_id, &behind).await;
        let titles = list_titles(app).await;
        assert_ne!(
            titles,
            [forbidden],
            "an entry invalidated during the outage was served"
        );
        if titles != [behind.as_str()] {
            return titles[0].clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    unreachable!()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_serves_uncached_and_replays_missed_invalidations() {
    let mut redis = TestRedis::stopped();
    redis.start().await;
    let url = redis.url();
    let app = spawn_app_with(&[("REDIS_URL", &url), ("REDIS_KEY_PREFIX", "")]).await;
    let alice = app.fx_user("alice").await;
    let post = fx_post(&alice, "Original").await;
    assert_eq!(list_titles(&app).await, ["Original"]);
    retitle_in_database(&app, post.id, "Original, changed behind").await;
    assert_eq!(list_titles(&app).await, ["Original"], "cached");

    // Redis stops answering (a partition: it keeps its data).
    redis.signal("-STOP");
    assert_eq!(
        list_titles(&app).await,
        ["Original, changed behind"],
        "read from the database"
    );
    let patch = alice
        .api
        .patch_post()
        .username("alice")
        .id(post.id)
        .body(title_update("Patched"));
    assert_eq!(
        patch.send().await.unwrap().status(),
        StatusCode::OK,
        "writes still succeed"
    );
    for _ in 0..20 {
        assert_eq!(list_titles(&app).await, ["Patched"]);
    }
    assert_eq!(ready_status(&app).await, StatusCode::SERVICE_UNAVAILABLE);

    // Redis is back with the entry the patch invalidated: it must never be served.
    redis.signal("-CONT");
    let cached = until_served_from_cache(&app, post.id, "Original").await;
    assert!(cached.starts_with("Behind"), "{cached}");
    assert_eq!(ready_status(&app).await, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_starts_without_redis_and_caches_once_it_appears() {
    let mut redis = TestRedis::stopped();
    let url = redis.url();
    let app = spawn_app_with(&[("REDIS_URL", &url), ("REDIS_KEY_PREFIX", "")]).await;
    assert_eq!(ready_status(&app).await, StatusCode::SERVICE_UNAVAILABLE);
    let alice = app.fx_user("alice").await;
    let post = fx_post(&alice, "Original").await;
    retitle_in_database(&app, post.id, "Fresh").await;
    assert_eq!(list_titles(&app).await, ["Fresh"]);
    retitle_in_database(&app, post.id, "Fresher").await;
    assert_eq!(
        list_titles(&app).await,
        ["Fresher"],
        "nothing is cached without Redis"
    );

    redis.start().await;
    until_served_from_cache(&app, post.id, "Original").await;
    assert_eq!(ready_status(&app).await, StatusCode::OK);

    // Killed outright, then restarted empty: reads keep working throughout.
    redis.stop();
    assert_eq!(list_titles(&app).await.len(), 1);
    assert_eq!(ready_status(&app).await, StatusCode::SERVICE_UNAVAILABLE);
    redis.start().await;
    until_served_from_cache(&app, post.id, "Original").await;
}

#[test]
fn a_malformed_redis_url_stops_start_up() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let started = runtime.block_on(async {
        let settings = server::Settings::from_lookup(|name| match name {
            "REDIS_URL" => Some("not a url".into()),
            "DATABASE_URL" => Some("sqlite::memory:".into()),
            "PORT" => Some("0".into()),
            _ => None,
        })
        .unwrap();
        server::Application::build(settings)
            .await
            .err()
            .map(|e| format!("{e:#}"))
    });
    let error = started.expect("start-up refused");
    assert!(error.contains("REDIS_URL"), "{error}");
}
