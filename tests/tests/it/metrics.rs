//! `GET /metrics`: scraped after known traffic, with the counts that traffic must have left;
//! the series stay bounded whatever paths clients try; protected by a token, or off.

use std::{collections::BTreeMap, time::Duration};

use client::types::TaskStatus;
use reqwest::{StatusCode, header};

use crate::{
    helpers::{TestApp, exchange, spawn_app_with},
    posts::{fx_post, read_post, title_update},
    tasks::until_ended,
};

/// One scrape: each sample's name, labels and value.
struct Scrape(Vec<(String, BTreeMap<String, String>, f64)>);

impl Scrape {
    async fn of(app: &TestApp, token: Option<&str>) -> Self {
        let mut request = reqwest::Client::new().get(app.url("/metrics"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("the scrape");
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response.headers()[header::CONTENT_TYPE].to_str().unwrap();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        Self::parse(&response.text().await.unwrap())
    }

    /// The text format: `name{label="value",...} value`, or `name value`; `#` lines are comments.
    fn parse(text: &str) -> Self {
        let mut samples = Vec::new();
        for line in text.lines() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("a sample line");
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("a value: {line}"));
            let (name, labels) = match series.split_once('{') {
                None => (series.to_string(), BTreeMap::new()),
                Some((name, labels)) => {
                    let labels = labels.trim_end_matches('}');
                    let labels = labels
                        .split("\",")
                        .filter(|pair| !pair.is_empty())
                        .map(|pair| {
                            let (key, value) = pair.split_once("=\"").expect("label=\"value\"");
                            (key.to_string(), value.trim_end_matches('"').to_string())
                        })
                        .collect();
                    (name.to_string(), labels)
                }
            };
            samples.push((name, labels, value));
        }
        Self(samples)
    }

    /// The sum over the samples of `name` that carry all of `labels`.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|(_, _, value)| value).sum()
    }

    fn series(&self, name: &str) -> usize {
        self.matching(name, &[]).count()
    }

    fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a (String, BTreeMap<String, String>, f64)> + 'a {
        self.0.iter().filter(move |(sample, sample_labels, _)| {
            sample == name
                && labels
                    .iter()
                    .all(|(key, value)| sample_labels.get(*key).map(String::as_str) == Some(value))
        })
    }
}

#[tokio::test]
async fn a_scrape_counts_the_traffic_it_followed() {
    let app = spawn_app_with(&[
        ("SAMPLE_TASK_DELAY_MS", "10"),
        ("QUEUE_POLL_INTERVAL_MS", "20"),
        ("DEFAULT_RATE_LIMIT_LIMIT", "2"),
    ])
    .await;
    for _ in 0..3 {
        app.api.health().send().await.expect("health");
    }
    let http = reqwest::Client::new();
    let (status, _) = exchange(http.get(app.url("/api/v1/nope"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A cached read: a miss, then a hit; a write drops the post's key and its list pattern.
    let alice = app.fx_user("alice").await;
    let post = fx_post(&alice, "Counted").await;
    for _ in 0..2 {
        let read = read_post(&app, "alice", post.id).await.expect("the post");
        assert_eq!(read.status(), StatusCode::OK);
    }
    alice
        .api
        .patch_post()
        .username("alice")
        .id(post.id)
        .body(title_update("Recounted"))
        .send()
        .await
        .expect("patched");

    // Three enqueues under a limit of two: two allowed, one refused; one job runs.
    let mut task_id = None;
    for _ in 0..3 {
        if let Ok(created) = app.api.create_task().message("m").send().await {
            task_id.get_or_insert(created.into_inner().id);
        }
    }
    let task_id = task_id.expect("an enqueue was allowed");
    assert_eq!(
        until_ended(&app, &task_id).await.status,
        TaskStatus::Complete
    );
    // Let the other job finish too, so that the depth is settled.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let scrape = Scrape::of(&app, None).await;
    let requests = |method: &str, route: &str, status: &str| {
        scrape.sum(
            "http_requests_total",
            &[("method", method), ("route", route), ("status", status)],
        )
    };
    assert_eq!(requests("GET", "/api/v1/health", "200"), 3.0);
    assert_eq!(
        scrape.sum(
            "http_request_duration_seconds_count",
            &[("route", "/api/v1/health"), ("status", "200")]
        ),
        3.0
    );
    assert_eq!(
        scrape.sum(
            "http_request_duration_seconds_bucket",
            &[
                ("route", "/api/v1/health"),
                ("status", "200"),
                ("le", "+Inf")
            ]
        ),
        3.0
    );
    assert_eq!(requests("GET", "unmatched", "404"), 1.0);
    assert_eq!(requests("GET", "/api/v1/{username}/post/{id}", "200"), 2.0);
    assert_eq!(requests("POST", "/api/v1/tasks/task", "201"), 2.0);
    assert_eq!(requests("POST", "/api/v1/tasks/task", "429"), 1.0);

    assert_eq!(
        scrape.sum("cache_lookups_total", &[("result", "miss")]),
        1.0
    );
    assert_eq!(scrape.sum("cache_lookups_total", &[("result", "hit")]), 1.0);
    // Creating the post dropped its list pages; patching it, its key and the pages again.
    assert_eq!(
        scrape.sum("cache_invalidations_total", &[("kind", "key")]),
        1.0
    );
    assert_eq!(
        scrape.sum("cache_invalidations_total", &[("kind", "pattern")]),
        2.0
    );

    let decisions = |decision: &str| {
        scrape.sum(
            "rate_limit_decisions_total",
            &[
                ("route", "/api/v1/tasks/task"),
                ("rule", "default"),
                ("decision", decision),
            ],
        )
    };
    assert_eq!((decisions("allowed"), decisions("refused")), (2.0, 1.0));

    assert_eq!(
        scrape.sum("queue_jobs_finished_total", &[("outcome", "complete")]),
        2.0
    );
    assert_eq!(scrape.sum("queue_depth", &[]), 0.0);
    assert!(scrape.sum("db_pool_max_connections", &[]) >= 1.0);
    assert!(scrape.sum("db_pool_connections", &[("state", "open")]) >= 1.0);
    assert_eq!(scrape.series("log_lines_dropped_total"), 1);
}

#[tokio::test]
async fn the_series_stay_bounded_whatever_paths_clients_try() {
    let app = spawn_app_with(&[]).await;
    let http = reqwest::Client::new();
    for i in 0..200 {
        for path in [
            format!("/api/v1/user/nobody{i}"),
            format!("/random/{i}"),
            format!("/api/v1/nobody{i}/posts?page={}", i + 1),
        ] {
            let response = http.get(app.url(&path)).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        }
    }
    // Nor per method: any token is a method to HTTP, and those outside the standard set share
    // one label.
    for i in 0..50 {
        let method = reqwest::Method::from_bytes(format!("BREW{i}").as_bytes()).unwrap();
        let response = http
            .request(method, app.url("/random"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
    let scrape = Scrape::of(&app, None).await;
    // One series per route template, method and status, not per path: a user, a user's posts,
    // what no operation answers, and the same for methods outside the standard set.
    assert_eq!(scrape.series("http_requests_total"), 4, "{:?}", scrape.0);
    assert_eq!(
        scrape.sum(
            "http_requests_total",
            &[("method", "OTHER"), ("route", "unmatched")]
        ),
        50.0
    );
    assert_eq!(
        scrape.sum(
            "http_requests_total",
            &[("route", "/api/v1/user/{username}"), ("status", "404")]
        ),
        200.0
    );
}

#[tokio::test]
async fn with_a_token_the_scrape_requires_it() {
    let app = spawn_app_with(&[("METRICS_TOKEN", "scrape-token-0123456789")]).await;
    let http = reqwest::Client::new();
    let (status, body) = exchange(http.get(app.url("/metrics"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["detail"], "Not authenticated");
    let (status, _) = exchange(
        http.get(app.url("/metrics"))
            .bearer_auth("scrape-token-wrong"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let scrape = Scrape::of(&app, Some("scrape-token-0123456789")).await;
    assert_eq!(
        scrape.sum(
            "http_requests_total",
            &[("route", "unmatched"), ("status", "401")]
        ),
        2.0
    );
}

#[tokio::test]
async fn metrics_are_off_when_disabled_and_by_default_outside_local() {
    for settings in [
        vec![("METRICS_ENABLED", "false")],
        vec![("ENVIRONMENT", "staging")],
    ] {
        let app = spawn_app_with(&settings).await;
        let (status, body) = exchange(reqwest::Client::new().get(app.url("/metrics"))).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{settings:?}");
        assert_eq!(body["detail"], "Not Found");
        assert!(!app.state.metrics.is_enabled());
    }
}
