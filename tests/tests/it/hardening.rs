//! Hostile input and floods: NUL characters, and a login flood against the bounded hashing.

use reqwest::StatusCode;
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::json;

use crate::helpers::{PASSWORD, exchange, failure, login_form, spawn_app, spawn_app_with};

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
    let (status, body) = exchange(http.post(app.url("/api/v1/user")).json(&signup)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(nul_issue_at(&body), ["body", "name"]);

    let (status, body) = exchange(
        http.post(app.url("/api/v1/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("username=nul%00name&password=whatever"),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(nul_issue_at(&body), ["body", "username"]);

    let (status, body) = exchange(http.get(app.url("/api/v1/user/nul%00name"))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(nul_issue_at(&body), ["path"]);

    let (status, body) = exchange(http.get(app.url("/api/v1/users?page=1%00"))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(nul_issue_at(&body), ["query", "page"]);

    // Any operation, even one without parameters: the spec declares 422 on all of them.
    let (status, body) = exchange(http.get(app.url("/api/v1/health?probe=%00"))).await;
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

#[tokio::test]
async fn bodies_over_max_body_bytes_are_413_declared_or_streamed_and_nothing_is_written() {
    let app = spawn_app_with(&[("MAX_BODY_BYTES", "1000")]).await;
    let http = reqwest::Client::new();
    let big_user = json!({
        "name": "Big Body",
        "username": "bigbody",
        "email": "big@example.com",
        "password": PASSWORD,
        "padding": "x".repeat(2000),
    });
    let (status, body) = exchange(http.post(app.url("/api/v1/user")).json(&big_user)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["detail"], "Request body larger than 1000 bytes");

    // Without a Content-Length the limit holds while the body is read.
    let bytes = serde_json::to_vec(&big_user).unwrap();
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(100).map(|c| Ok(c.to_vec())).collect();
    let (status, body) = exchange(
        http.post(app.url("/api/v1/user"))
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                chunks,
            ))),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");

    // A declared length over the limit is refused before routing, on any path.
    let declared_on_get = http
        .get(app.url("/api/v1/health"))
        .header("content-length", "5000")
        .body(vec![b' '; 5000])
        .send()
        .await
        .unwrap();
    assert_eq!(declared_on_get.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let users = app.api.read_users().send().await.unwrap().into_inner();
    assert_eq!(users.total_count, 0, "nothing was written");
    // A body under the limit is accepted.
    app.signup("smallbody").await;
}

#[tokio::test]
async fn every_answer_carries_the_security_headers_and_the_docs_a_strict_policy() {
    let app = spawn_app().await;
    let http = reqwest::Client::new();
    for path in ["/api/v1/health", "/api/v1/nope", "/docs", "/openapi.json"] {
        let response = http.get(app.url(path)).send().await.unwrap();
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
    }
    for page in ["/docs", "/redoc"] {
        let response = http.get(app.url(page)).send().await.unwrap();
        let policy = response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            policy.starts_with("default-src 'none'; script-src 'sha256-"),
            "{policy}"
        );
        assert!(!policy.contains("unsafe-eval"), "{policy}");
        assert!(policy.contains("connect-src 'self'"), "{policy}");
    }
}

#[tokio::test]
async fn only_the_configured_origins_may_read_answers_cross_origin() {
    const ALLOWED: &str = "https://app.example.com";
    let app = spawn_app_with(&[("CORS_ORIGINS", ALLOWED)]).await;
    let http = reqwest::Client::new();
    let url = app.url("/api/v1/user/me");

    let preflight = http
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", ALLOWED)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), StatusCode::NO_CONTENT);
    let headers = preflight.headers();
    assert_eq!(headers["access-control-allow-origin"], ALLOWED);
    let allowed_headers = headers["access-control-allow-headers"].to_str().unwrap();
    assert!(
        allowed_headers.contains("authorization"),
        "{allowed_headers}"
    );

    let read = http
        .get(app.url("/api/v1/health"))
        .header("origin", ALLOWED)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    assert_eq!(read.headers()["access-control-allow-origin"], ALLOWED);
    let exposed = read.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap();
    assert!(exposed.contains("x-ratelimit-remaining"), "{exposed}");

    // Another origin's request is answered, without the headers that let its page read it.
    let foreign = http
        .get(app.url("/api/v1/health"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), StatusCode::OK);
    assert!(
        !foreign
            .headers()
            .contains_key("access-control-allow-origin")
    );
    assert_eq!(foreign.headers()["vary"], "Origin");
    let foreign_preflight = http
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert!(
        !foreign_preflight
            .headers()
            .contains_key("access-control-allow-origin")
    );

    // With no CORS_ORIGINS, no origin gets them.
    let closed = spawn_app().await;
    let read = http
        .get(closed.url("/api/v1/health"))
        .header("origin", ALLOWED)
        .send()
        .await
        .unwrap();
    assert!(!read.headers().contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn a_request_past_its_timeout_is_503_json_and_writes_nothing() {
    // Each sign-up hashes its password (tens of milliseconds) before it writes: 1 ms is past.
    let app = spawn_app_with(&[("REQUEST_TIMEOUT_MS", "1")]).await;
    let http = reqwest::Client::new();
    let (status, body) = exchange(http.post(app.url("/api/v1/user")).json(&json!({
        "name": "Too Slow",
        "username": "tooslow",
        "email": "slow@example.com",
        "password": PASSWORD,
    })))
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["detail"], "Request timed out, try again later");

    // Long enough for the abandoned hash to end: had the handler gone on, it would have written.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let stored = server::entities::user::Entity::find()
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(stored, 0, "nothing was written");
}

/// Reads and writes while every database connection is cut, again and again: each answer is a
/// success or a clean 503, the pool reconnects, and every acknowledged write is stored, whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cut_database_connections_give_503s_then_the_pool_reconnects_and_no_write_is_lost() {
    let app = spawn_app_with(&[("RESPONSE_CACHE_ENABLED", "false")]).await;
    let alice = app.fx_user("alice").await;
    if app.cut_database_connections().await.is_none() {
        // SQLite is a file in the process: there is no connection to lose.
        return;
    }
    let writes = (0..40).map(|i| {
        let api = alice.api.clone();
        async move {
            let body = crate::posts::post_body(&format!("Post {i}"));
            let sent = api.create_post().username("alice").body(body).send().await;
            sent.map(|created| created.into_inner().id)
                .map_err(|err| crate::helpers::failure::<()>(Err(err)))
        }
    });
    let reads = (0..40).map(|_| {
        let api = alice.api.clone();
        async move {
            let read = api.read_user().username("alice").send().await;
            read.map(|_| ())
                .map_err(|err| crate::helpers::failure::<()>(Err(err)))
        }
    });
    let cutter = async {
        for _ in 0..5 {
            app.cut_database_connections().await;
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    let (written, read, ()) = tokio::join!(
        futures_util::future::join_all(writes),
        futures_util::future::join_all(reads),
        cutter
    );
    let mut acknowledged = Vec::new();
    for outcome in written {
        match outcome {
            Ok(id) => acknowledged.push(id),
            Err(refused) => refused.assert_is(
                StatusCode::SERVICE_UNAVAILABLE,
                "Database unavailable, try again later",
            ),
        }
    }
    for outcome in read {
        if let Err(refused) = outcome {
            refused.assert_is(
                StatusCode::SERVICE_UNAVAILABLE,
                "Database unavailable, try again later",
            );
        }
    }

    // The pool has reconnected: everything works again, and every acknowledged post is there.
    let page = alice
        .api
        .read_posts()
        .username("alice")
        .items_per_page(100)
        .send()
        .await
        .expect("reads work again")
        .into_inner();
    let stored: std::collections::BTreeSet<i64> = page.data.iter().map(|post| post.id).collect();
    let lost: Vec<&i64> = acknowledged
        .iter()
        .filter(|id| !stored.contains(id))
        .collect();
    assert!(lost.is_empty(), "acknowledged and lost: {lost:?}");
    // A commit whose answer was cut may be stored unacknowledged; never half.
    for post in &page.data {
        assert_eq!(post.text, format!("Text of {}", post.title), "whole rows");
    }
}
