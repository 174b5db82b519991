//! Several instances behind a load balancer, on one database and one Redis (a server, or a
//! Redis Cluster): what one does, the other sees at once.

use std::time::Duration;

use client::types::{TaskInfo, TaskStatus};
use reqwest::StatusCode;

use crate::{
    auth::BAD_CREDENTIALS,
    helpers::{TestRedis, failure, run_concurrently, spawn_app_with, test_cluster_url},
    posts::{fx_post, title_update},
};

const LIMIT: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_one_redis_share_limits_cache_jobs_and_revocations() {
    let mut redis = TestRedis::stopped();
    redis.start().await;
    two_instances_share_limits_cache_jobs_and_revocations(&redis.url(), "").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_a_redis_cluster_share_limits_cache_jobs_and_revocations() {
    // The cluster serves the whole test process: a key prefix of this test's own.
    let prefix = format!("scale-out:{}:", uuid::Uuid::new_v4().simple());
    two_instances_share_limits_cache_jobs_and_revocations(&test_cluster_url(), &prefix).await;
}

async fn two_instances_share_limits_cache_jobs_and_revocations(redis_url: &str, prefix: &str) {
    let limit = LIMIT.to_string();
    let first = spawn_app_with(&[
        ("REDIS_URL", redis_url),
        ("REDIS_KEY_PREFIX", prefix),
        ("DEFAULT_RATE_LIMIT_LIMIT", limit.as_str()),
        ("DEFAULT_RATE_LIMIT_PERIOD", "31536000"),
        ("SAMPLE_TASK_DELAY_MS", "50"),
        ("QUEUE_POLL_INTERVAL_MS", "20"),
    ])
    .await;
    let (_, second_base) = first.second_instance().await;
    let alice = first.fx_user("alice").await;
    let alice_on_second = client::with_bearer(&second_base, &alice.token.access_token).unwrap();
    let instances = [alice.api.clone(), alice_on_second.clone()];

    // The limit holds across instances exactly: 3 × limit requests at once, spread over both.
    let sent = run_concurrently((0..3 * LIMIT).map(|i| {
        let api = instances[i % 2].clone();
        async move { api.create_task().message(format!("job {i}")).send().await }
    }))
    .await;
    let mut accepted = Vec::new();
    for result in sent {
        match result {
            Ok(created) => accepted.push(created.into_inner().id),
            Err(refused) => failure::<()>(Err(refused))
                .assert_is(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded"),
        }
    }
    assert_eq!(accepted.len(), LIMIT, "exactly the limit passed");

    // Each accepted job runs once, on one of the two workers, and either instance reads it.
    for (i, id) in accepted.iter().enumerate() {
        let info = until_ended(&instances[(i + 1) % 2], id).await;
        assert_eq!(info.status, TaskStatus::Complete, "{info:?}");
        assert_eq!(info.job_try, 1, "run once: {info:?}");
    }

    // A write through one instance invalidates what the other serves from the cache.
    let post = fx_post(&alice, "Before").await;
    let read_on_second = || {
        alice_on_second
            .read_post()
            .username("alice")
            .id(post.id)
            .send()
    };
    assert_eq!(read_on_second().await.unwrap().into_inner().title, "Before");
    assert_eq!(read_on_second().await.unwrap().into_inner().title, "Before");
    alice
        .api
        .patch_post()
        .username("alice")
        .id(post.id)
        .body(title_update("After"))
        .send()
        .await
        .unwrap();
    assert_eq!(read_on_second().await.unwrap().into_inner().title, "After");

    // A token revoked through one instance is refused by the other.
    alice.api.logout().send().await.unwrap();
    let refused = alice_on_second.read_users_me().send().await;
    failure(refused).assert_is(StatusCode::UNAUTHORIZED, BAD_CREDENTIALS);
}

async fn until_ended(api: &client::Client, id: &str) -> TaskInfo {
    for _ in 0..300 {
        let info = api
            .read_task()
            .task_id(id)
            .send()
            .await
            .unwrap()
            .into_inner();
        if matches!(info.status, TaskStatus::Complete | TaskStatus::Failed) {
            return info;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("task {id} never ended");
}
