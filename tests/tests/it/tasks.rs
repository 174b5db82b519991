//! `POST /tasks/task` and `GET /tasks/task/{task_id}` through the generated client: the sample
//! job runs on the server's own worker; the enqueue is rate limited.

use std::time::Duration;

use client::types::{TaskInfo, TaskStatus};
use reqwest::StatusCode;

use crate::helpers::{TestApp, TestRedis, exchange, failure, run_concurrently, spawn_app_with};

const FAST: [(&str, &str); 2] = [
    ("SAMPLE_TASK_DELAY_MS", "50"),
    ("QUEUE_POLL_INTERVAL_MS", "20"),
];

pub async fn until_ended(app: &TestApp, id: &str) -> TaskInfo {
    for _ in 0..300 {
        let info = app
            .api
            .read_task()
            .task_id(id)
            .send()
            .await
            .expect("the task")
            .into_inner();
        if matches!(info.status, TaskStatus::Complete | TaskStatus::Failed) {
            return info;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("task {id} never ended");
}

#[tokio::test]
async fn the_sample_task_is_enqueued_run_and_read_back() {
    let app = spawn_app_with(&FAST).await;
    let created = app.api.create_task().message("hello").send().await.unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let id = created.into_inner().id;
    assert_eq!(id.len(), 32);

    let info = until_ended(&app, &id).await;
    assert_eq!(info.status, TaskStatus::Complete);
    assert_eq!(info.result, serde_json::json!("Task hello is complete!"));
    assert_eq!((info.success, info.job_try), (Some(true), 1));
    assert_eq!(
        (info.function.as_str(), info.args.clone()),
        ("sample_background_task", serde_json::json!(["hello"]))
    );
    let (start, finish) = (info.start_time.unwrap(), info.finish_time.unwrap());
    assert!(info.enqueue_time <= start && start <= finish, "{info:?}");
    assert!(
        finish - start >= chrono::Duration::milliseconds(50),
        "the job took its delay"
    );
}

#[tokio::test]
async fn unknown_tasks_are_404_and_messages_are_validated() {
    let app = spawn_app_with(&FAST).await;
    for id in ["0123456789abcdef0123456789abcdef", "not-an-id", "x"] {
        let missing = app.api.read_task().task_id(id).send().await;
        failure(missing).assert_is(StatusCode::NOT_FOUND, "Task not found");
    }
    let http = reqwest::Client::new();
    for query in ["message=", &format!("message={}", "x".repeat(1001)), ""] {
        let url = app.url(&format!("/api/v1/tasks/task?{query}"));
        let (status, body) = exchange(http.post(url)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
        assert_eq!(
            body["detail"][0]["loc"],
            serde_json::json!(["query", "message"])
        );
    }
}

#[tokio::test]
async fn enqueueing_is_rate_limited_with_the_headers() {
    let app = spawn_app_with(&[
        ("DEFAULT_RATE_LIMIT_LIMIT", "2"),
        ("DEFAULT_RATE_LIMIT_PERIOD", "31536000"),
    ])
    .await;
    for remaining in ["1", "0"] {
        let created = app.api.create_task().message("hi").send().await.unwrap();
        assert_eq!(created.headers()["x-ratelimit-remaining"], remaining);
        assert_eq!(created.headers()["x-ratelimit-limit"], "2");
    }
    let refused = failure(app.api.create_task().message("hi").send().await);
    refused.assert_is(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded");
    assert!(refused.headers.contains_key("retry-after"));
    assert_eq!(refused.headers["x-ratelimit-remaining"], "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_queues_redis_down_enqueue_answers_503_and_resumes_after() {
    let mut redis = TestRedis::stopped();
    let url = redis.url();
    let mut settings = vec![("REDIS_URL", url.as_str()), ("REDIS_KEY_PREFIX", "")];
    settings.extend(FAST);
    let app = spawn_app_with(&settings).await;
    let refused = failure(app.api.create_task().message("hi").send().await);
    refused.assert_is(
        StatusCode::SERVICE_UNAVAILABLE,
        "Task queue unavailable, try again later",
    );
    let unreadable = app
        .api
        .read_task()
        .task_id("0123456789abcdef0123456789abcdef")
        .send()
        .await;
    assert_eq!(failure(unreadable).status, StatusCode::SERVICE_UNAVAILABLE);

    redis.start().await;
    let mut created = None;
    for _ in 0..50 {
        if let Ok(ok) = app.api.create_task().message("back").send().await {
            created = Some(ok.into_inner().id);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let id = created.expect("enqueue works again once Redis is back");
    let info = until_ended(&app, &id).await;
    assert_eq!(
        info.result,
        serde_json::json!("Task back is complete!"),
        "the worker resumed"
    );
}

#[tokio::test]
async fn a_flood_of_jobs_no_worker_drains_stops_at_the_queues_capacity_with_503() {
    let app = spawn_app_with(&[
        ("RUN_WORKER", "false"),
        ("QUEUE_MAX_JOBS", "5"),
        ("DEFAULT_RATE_LIMIT_LIMIT", "1000"),
    ])
    .await;
    let sent = run_concurrently((0..40).map(|i| {
        let api = app.api.clone();
        async move { api.create_task().message(format!("job {i}")).send().await }
    }))
    .await;
    let accepted = sent.iter().filter(|r| r.is_ok()).count();
    assert_eq!(accepted, 5, "exactly the capacity is accepted");
    for refused in sent.into_iter().filter(Result::is_err) {
        failure(refused).assert_is(
            StatusCode::SERVICE_UNAVAILABLE,
            "Task queue is full, try again later",
        );
    }
    assert_eq!(app.state.queue.depth().await.unwrap(), 5);
}
