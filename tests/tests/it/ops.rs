//! Operations endpoints and the rules every endpoint follows: JSON errors for unknown routes
//! and methods, trailing slashes, request ids, cache headers, docs.

use reqwest::{Method, StatusCode, header};
use serde_json::json;

use crate::helpers::{exchange, raw_json, spawn_app, spawn_app_with};

#[tokio::test]
async fn health_answers() {
    let app = spawn_app().await;
    let health = app.api.health().send().await.expect("health").into_inner();
    assert_eq!(health.status, "ok");
}

#[tokio::test]
async fn ready_checks_the_database_and_the_configured_redis() {
    let app = spawn_app().await;
    let ready = app.api.ready().send().await.expect("ready").into_inner();
    assert_eq!(ready.status, "ready");
    assert_eq!(ready.database, "ok");
    let expected_redis = if std::env::var("TEST_REDIS_URL").is_ok_and(|v| !v.is_empty()) {
        "ok"
    } else {
        "disabled"
    };
    assert_eq!(ready.redis, expected_redis);
}

#[tokio::test]
async fn ready_is_503_when_the_database_is_gone() {
    let app = spawn_app().await;
    app.state.db.clone().close().await.expect("close the pool");
    let failure = crate::helpers::failure(app.api.ready().send().await);
    assert_eq!(failure.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(failure.message(), "Database unreachable");
}

#[tokio::test]
async fn unknown_paths_and_methods_are_json_errors() {
    let app = spawn_app().await;
    let http = reqwest::Client::new();
    for path in ["/nope", "/api/v1/nope", "/api/v2/users"] {
        let (status, body) = exchange(http.get(app.url(path))).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body, json!({"detail": "Not Found"}));
    }
    let response = http
        .request(Method::PUT, app.url("/api/v1/users"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()[header::ALLOW], "GET");
    let (status, body) = raw_json(response).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body, json!({"detail": "Method Not Allowed"}));
}

#[tokio::test]
async fn a_trailing_slash_serves_the_same_operation() {
    let app = spawn_app().await;
    let http = reqwest::Client::new();
    let (status, body) = exchange(http.get(app.url("/api/v1/health/"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"status": "ok"}));
    let (status, body) = exchange(http.get(app.url("/api/v1/user/me/"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, json!({"detail": "Not authenticated"}));
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let app = spawn_app().await;
    let http = reqwest::Client::new();
    let response = http
        .get(app.url("/api/v1/health"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "abc-123");
    let response = http.get(app.url("/api/v1/nope")).send().await.unwrap();
    let generated = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(generated.len(), 36, "a UUID: {generated}");
    // Unprintable or oversized ids are replaced, not echoed.
    let response = http
        .get(app.url("/api/v1/health"))
        .header("x-request-id", "a".repeat(300))
        .send()
        .await
        .unwrap();
    assert_ne!(response.headers()["x-request-id"], "a".repeat(300).as_str());
}

#[tokio::test]
async fn only_anonymous_successful_gets_are_publicly_cacheable() {
    let app = spawn_app_with(&[("CLIENT_CACHE_MAX_AGE", "42")]).await;
    let http = reqwest::Client::new();
    let cache_control = |r: &reqwest::Response| {
        r.headers()[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .to_string()
    };

    let anonymous = http.get(app.url("/api/v1/users")).send().await.unwrap();
    assert_eq!(cache_control(&anonymous), "public, max-age=42");

    let authenticated = http
        .get(app.url("/api/v1/users"))
        .bearer_auth("whatever")
        .send()
        .await
        .unwrap();
    assert_eq!(cache_control(&authenticated), "no-store");

    let error = http
        .get(app.url("/api/v1/user/nobody"))
        .send()
        .await
        .unwrap();
    assert_eq!(error.status(), StatusCode::NOT_FOUND);
    assert_eq!(cache_control(&error), "no-store");

    let post = http
        .post(app.url("/api/v1/user"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(cache_control(&post), "no-store");
}

#[tokio::test]
async fn docs_and_spec_are_served_outside_production() {
    let app = spawn_app().await;
    let http = reqwest::Client::new();
    let docs = http.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(docs.text().await.unwrap().contains("swagger"));
    let spec: serde_json::Value = http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(spec["paths"]["/api/v1/user/me"].is_object());

    let redoc = http.get(app.url("/redoc")).send().await.unwrap();
    assert_eq!(redoc.status(), StatusCode::OK);
    assert!(redoc.text().await.unwrap().to_lowercase().contains("redoc"));
    let favicon = http.get(app.url("/favicon.ico")).send().await.unwrap();
    assert_eq!(
        favicon.status(),
        StatusCode::NO_CONTENT,
        "no icon, and no 404"
    );
}

#[tokio::test]
async fn responses_are_compressed_for_clients_that_accept_it() {
    let app = spawn_app().await;
    let http = reqwest::Client::new();
    let plain = http.get(app.url("/docs")).send().await.unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    let plain_size = plain.bytes().await.unwrap().len();
    let gzip = http
        .get(app.url("/docs"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gzip.headers()["content-encoding"], "gzip");
    let gzip_size = gzip.bytes().await.unwrap().len();
    assert!(
        gzip_size * 3 < plain_size,
        "{gzip_size} compressed vs {plain_size}"
    );
}

#[tokio::test]
async fn docs_are_off_in_production() {
    let app = spawn_app_with(&[("ENVIRONMENT", "production")]).await;
    let http = reqwest::Client::new();
    for path in ["/docs", "/redoc", "/openapi.json"] {
        let (status, _) = exchange(http.get(app.url(path))).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    // The API itself still serves.
    app.api.health().send().await.expect("health in production");
}

#[tokio::test]
async fn ready_is_503_when_the_rate_limiters_own_redis_is_unreachable() {
    let down = crate::helpers::TestRedis::stopped();
    let url = down.url();
    let app = spawn_app_with(&[("REDIS_RATE_LIMIT_URL", url.as_str())]).await;
    let response = reqwest::get(app.url("/api/v1/ready")).await.unwrap();
    let (status, body) = raw_json(response).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["detail"], "Redis unreachable");
}
