//! Hostile input and floods: NUL characters, and a login flood against the bounded hashing.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{PASSWORD, failure, login_form, raw_json, spawn_app, spawn_app_with};

fn nul_issue_at(body: &serde_json::Value) -> Vec<String> {
    assert_eq!(body["detail"][0]["type"], "string_nul", "{body}");
    serde_json::from_value(body["detail"][0]["loc"].clone()).expect("a loc list")
}

#[tokio::test]
async fn nul_characters_are_refused_with_422_everywhere() {
    let app = spawn_app().await;
    let http = reqwest::Client::new();

    let signup = json!({"name": "a\u{0}b", "username": "alice", "email": "alice@example.com",
                        "password": PASSWORD});
    let (status, body) = raw_json(
        http.post(app.url("/api/v1/user"))
            .json(&signup)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(nul_issue_at(&body), ["body", "name"]);

    let login = http
        .post(app.url("/api/v1/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("username=nul%00name&password=whatever")
        .send()
        .await
        .unwrap();
    let (status, body) = raw_json(login).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(nul_issue_at(&body), ["body", "username"]);

    let (status, body) = raw_json(
        http.get(app.url("/api/v1/user/nul%00name"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(nul_issue_at(&body), ["path"]);

    let (status, body) = raw_json(
        http.get(app.url("/api/v1/users?page=1%00"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(nul_issue_at(&body), ["query", "page"]);

    // Any operation, even one without parameters: the spec declares 422 on all of them.
    let (status, body) = raw_json(
        http.get(app.url("/api/v1/health?probe=%00"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(nul_issue_at(&body), ["query", "probe"]);
    let spec: serde_json::Value = serde_json::from_str(&server::api::spec_json()).unwrap();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            assert!(
                operation["responses"].get("422").is_some(),
                "{method} {path} does not declare 422"
            );
        }
    }

    // Nothing was written.
    let users = app.api.read_users().send().await.unwrap().into_inner();
    assert_eq!(users.total_count, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_login_flood_is_bounded_and_the_excess_gets_503_with_retry_after() {
    let app = spawn_app_with(&[
        ("PASSWORD_HASH_CONCURRENCY", "2"),
        ("PASSWORD_HASH_MAX_WAIT_MS", "100"),
        // Failed-login throttling would answer most of the flood before any hashing.
        ("LOGIN_FAILURES_PER_IP", "1000"),
        ("LOGIN_FAILURES_PER_USERNAME", "1000"),
    ])
    .await;
    app.signup("victim").await;
    let attempts: Vec<_> = (0..80)
        .map(|_| {
            let api = app.api.clone();
            tokio::spawn(async move {
                api.login()
                    .body(login_form("victim", "wrong-password"))
                    .send()
                    .await
            })
        })
        .collect();
    let (mut refused, mut shed) = (0, 0);
    for attempt in attempts {
        let failure = failure(attempt.await.unwrap());
        match failure.status {
            StatusCode::UNAUTHORIZED => refused += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(failure.message(), "Server busy, try again shortly");
                let retry_after = failure.headers["retry-after"].to_str().unwrap();
                assert!(retry_after.parse::<u64>().unwrap() >= 1);
                shed += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    let peak = app.state.passwords.peak_concurrency();
    assert!((1..=2).contains(&peak), "peak concurrent hashes {peak}");
    assert!(refused > 0, "some attempts were verified");
    assert!(
        shed > 0,
        "80 hashes cannot all start within 100 ms on 2 slots"
    );
    // Once the flood is over, the real password works.
    app.login("victim", PASSWORD).await;
}
