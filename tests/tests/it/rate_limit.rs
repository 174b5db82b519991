//! The rate limiter on limited routes of the test's own (the API's limited operation, the task
//! endpoint, comes with the queue): defaults, tier rules, templates, concurrency, rule changes,
//! client addresses behind proxies, and a Redis outage.

use poem::{
    EndpointExt, Route, Server,
    endpoint::make_sync,
    http::StatusCode,
    listener::{Acceptor, Listener, TcpListener},
};
use reqwest::{Client, Response};

use crate::{
    helpers::{TestApp, TestRedis, TestUser, run_concurrently, spawn_app_with},
    tiers::{fx_rule, fx_tier},
};

/// A period so long that no window boundary falls inside a test.
const YEAR: &str = "31536000";
const TASK_PATH: &str = "/api/v1/tasks/task";

/// Serves limited routes with the app's state: `POST /api/v1/tasks/task` and
/// `GET /api/v1/{username}/posts` (a route template of the API).
async fn serve_limited(app: &TestApp) -> String {
    serve_limited_with(app.state.clone()).await
}

async fn serve_limited_with(state: server::state::AppState) -> String {
    let limited = || server::rate_limit::rate_limited(make_sync(|_| StatusCode::CREATED));
    let routes = Route::new()
        .at(TASK_PATH, poem::post(limited()))
        .at("/api/v1/:param0/posts", poem::get(limited()))
        .data(state);
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let port = acceptor.local_addr()[0].as_socket_addr().unwrap().port();
    tokio::spawn(Server::new_with_acceptor(acceptor).run(routes));
    format!("http://127.0.0.1:{port}")
}

struct Limited {
    base: String,
    http: Client,
}

impl Limited {
    async fn new(app: &TestApp) -> Self {
        Self {
            base: serve_limited(app).await,
            http: Client::new(),
        }
    }

    async fn post(&self, token: Option<&str>) -> Response {
        let mut request = self.http.post(format!("{}{TASK_PATH}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    async fn statuses(&self, token: Option<&str>, n: usize) -> Vec<u16> {
        let mut statuses = Vec::new();
        for _ in 0..n {
            statuses.push(self.post(token).await.status().as_u16());
        }
        statuses
    }
}

fn header(response: &Response, name: &str) -> u64 {
    let value = response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("{name} missing"));
    value.to_str().unwrap().parse().unwrap()
}

async fn spawn_with_defaults(limit: &str, extra: &[(&str, &str)]) -> TestApp {
    let mut settings = vec![
        ("DEFAULT_RATE_LIMIT_LIMIT", limit),
        ("DEFAULT_RATE_LIMIT_PERIOD", YEAR),
    ];
    settings.extend_from_slice(extra);
    spawn_app_with(&settings).await
}

#[tokio::test]
async fn exactly_limit_requests_pass_then_429_with_the_headers() {
    let app = spawn_with_defaults("3", &[]).await;
    let limited = Limited::new(&app).await;
    for remaining in [2, 1, 0] {
        let response = limited.post(None).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(header(&response, "x-ratelimit-limit"), 3);
        assert_eq!(header(&response, "x-ratelimit-remaining"), remaining);
    }
    let response = limited.post(None).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&response, "x-ratelimit-remaining"), 0);
    let reset = header(&response, "x-ratelimit-reset");
    let now = epoch_now();
    assert!(
        reset > now && reset.is_multiple_of(31_536_000),
        "reset {reset} is the window's end"
    );
    let retry_after = header(&response, "retry-after");
    assert!(retry_after >= 1 && retry_after <= reset - now + 1);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"detail": "Rate limit exceeded"}));
    // The near-cache answers the same from then on.
    assert_eq!(limited.statuses(None, 3).await, [429, 429, 429]);
}

#[tokio::test]
async fn tiers_rules_apply_to_their_users_and_defaults_to_the_rest() {
    let app = spawn_with_defaults("2", &[]).await;
    let admin = app.fx_superuser().await;
    let limited = Limited::new(&app).await;
    let free = fx_tier(&admin, "free").await;
    let pro = fx_tier(&admin, "pro").await;
    fx_tier(&admin, "empty").await;
    fx_rule(&admin, "free", "api/v1/tasks/task", 1, 31_536_000).await;
    fx_rule(&admin, "pro", "/api/v1/tasks/task/", 4, 31_536_000).await;
    let on_tier = |user: &TestUser, tier: i64| {
        let body = client::types::UserTierUpdate { tier_id: tier };
        admin
            .api
            .patch_user_tier()
            .username(&user.user.username)
            .body(body)
            .send()
    };
    let alice = app.fx_user("alice").await;
    let bob = app.fx_user("bob").await;
    let carol = app.fx_user("carol").await;
    let dave = app.fx_user("dave").await;
    on_tier(&alice, free.id).await.unwrap();
    on_tier(&bob, pro.id).await.unwrap();
    let empty_tier = app
        .api
        .read_tier()
        .name("empty")
        .send()
        .await
        .unwrap()
        .into_inner();
    on_tier(&carol, empty_tier.id).await.unwrap();

    let token = |user: &TestUser| user.token.access_token.clone();
    assert_eq!(
        limited.statuses(Some(&token(&alice)), 2).await,
        [201, 429],
        "free: 1"
    );
    assert_eq!(
        limited.statuses(Some(&token(&bob)), 5).await,
        [201, 201, 201, 201, 429],
        "pro: 4"
    );
    assert_eq!(
        limited.statuses(Some(&token(&carol)), 3).await,
        [201, 201, 429],
        "no rule: defaults"
    );
    assert_eq!(
        limited.statuses(Some(&token(&dave)), 3).await,
        [201, 201, 429],
        "no tier: defaults"
    );
    // Users are counted apart from each other and from anonymous clients; an invalid token
    // counts as anonymous.
    assert_eq!(limited.statuses(None, 2).await, [201, 201]);
    assert_eq!(limited.statuses(Some("not-a-token"), 1).await, [429]);

    // Moving a user to another tier takes effect on the next request.
    on_tier(&alice, pro.id).await.unwrap();
    assert_eq!(
        limited.statuses(Some(&token(&alice)), 3).await,
        [201, 201, 429],
        "pro now: 4 in all"
    );
}

#[tokio::test]
async fn rule_changes_and_deletions_apply_on_the_next_request() {
    let app = spawn_with_defaults("5", &[]).await;
    let admin = app.fx_superuser().await;
    let limited = Limited::new(&app).await;
    let free = fx_tier(&admin, "free").await;
    let rule = fx_rule(&admin, "free", "api/v1/tasks/task", 1, 31_536_000).await;
    let alice = app.fx_user("alice").await;
    let body = client::types::UserTierUpdate { tier_id: free.id };
    admin
        .api
        .patch_user_tier()
        .username("alice")
        .body(body)
        .send()
        .await
        .unwrap();
    let token = alice.token.access_token.as_str();
    assert_eq!(limited.statuses(Some(token), 2).await, [201, 429]);

    let raise = client::types::RateLimitUpdate {
        limit: std::num::NonZeroU32::new(3),
        name: None,
        path: None,
        period: None,
    };
    admin
        .api
        .patch_rate_limit()
        .tier_name("free")
        .id(rule.id)
        .body(raise)
        .send()
        .await
        .unwrap();
    assert_eq!(
        limited.statuses(Some(token), 2).await,
        [201, 429],
        "3 in all: 2 counted before"
    );

    admin
        .api
        .erase_rate_limit()
        .tier_name("free")
        .id(rule.id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        limited.statuses(Some(token), 2).await,
        [201, 429],
        "defaults: 5 in all"
    );
}

#[tokio::test]
async fn a_template_rule_limits_every_path_of_its_route_together() {
    let app = spawn_with_defaults("10", &[]).await;
    let admin = app.fx_superuser().await;
    let limited = Limited::new(&app).await;
    let free = fx_tier(&admin, "free").await;
    fx_rule(&admin, "free", "api/v1/{username}/posts", 2, 31_536_000).await;
    fx_rule(&admin, "free", "api/v1/carol/posts", 1, 31_536_000).await;
    app.fx_user("alice").await;
    let body = client::types::UserTierUpdate { tier_id: free.id };
    admin
        .api
        .patch_user_tier()
        .username("alice")
        .body(body)
        .send()
        .await
        .unwrap();
    let alice = app.login("alice", crate::helpers::PASSWORD).await;
    let get = |path: &str| {
        let request = limited
            .http
            .get(format!("{}/api/v1/{path}/posts", limited.base));
        let request = request.bearer_auth(&alice.access_token);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(
        [get("bob").await, get("dave").await, get("erin").await],
        [201, 201, 429]
    );
    // The concrete rule wins over the template's, with a counter of its own.
    assert_eq!([get("carol").await, get("carol").await], [201, 429]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_times_the_limit_at_once_lets_exactly_the_limit_through() {
    let app = spawn_with_defaults("7", &[]).await;
    let base = serve_limited(&app).await;
    let http = Client::new();
    let requests = (0..21).map(|_| {
        let request = http.post(format!("{base}{TASK_PATH}"));
        async move { request.send().await.unwrap().status().as_u16() }
    });
    let statuses = run_concurrently(requests).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        7,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        14,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    let post_from = |limited: &Limited, forwarded: &'static str| {
        let request = limited.http.post(format!("{}{TASK_PATH}", limited.base));
        let request = request.header("x-forwarded-for", forwarded);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    // Not trusted: every forwarded address is the same client, the peer.
    let app = spawn_with_defaults("1", &[]).await;
    let limited = Limited::new(&app).await;
    assert_eq!(
        [
            post_from(&limited, "1.1.1.1").await,
            post_from(&limited, "2.2.2.2").await
        ],
        [201, 429]
    );

    // Loopback trusted (as a CIDR): each forwarded client has its own count.
    let app = spawn_with_defaults("1", &[("TRUSTED_PROXIES", "127.0.0.0/8")]).await;
    let limited = Limited::new(&app).await;
    assert_eq!(post_from(&limited, "1.1.1.1").await, 201);
    assert_eq!(post_from(&limited, "2.2.2.2").await, 201);
    assert_eq!(
        post_from(&limited, "9.9.9.9, 1.1.1.1").await,
        429,
        "the right-most address counts"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_limits_hold_in_process_and_nothing_fails() {
    let mut redis = TestRedis::stopped();
    redis.start().await;
    let url = redis.url();
    let app = spawn_with_defaults("3", &[("REDIS_URL", &url), ("REDIS_KEY_PREFIX", "")]).await;
    let limited = Limited::new(&app).await;
    assert_eq!(limited.statuses(None, 1).await, [201], "counted on Redis");
    redis.stop();
    // Counting restarts in process: the limit still holds there.
    assert_eq!(limited.statuses(None, 4).await, [201, 201, 201, 429]);
    redis.start().await;
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    // Back on Redis (a fresh server: the Redis count starts over; the near-cache of the
    // in-process 429 applies to its own key only).
    let statuses = limited.statuses(None, 4).await;
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 429),
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        3,
        "{statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_sharing_redis_share_counts_and_see_each_others_rule_changes() {
    let mut redis = TestRedis::stopped();
    redis.start().await;
    let url = redis.url();
    let app = spawn_with_defaults("100", &[("REDIS_URL", &url), ("REDIS_KEY_PREFIX", "")]).await;
    let (second, _) = app.second_instance().await;
    let first_base = serve_limited(&app).await;
    let second_base = serve_limited_with(second).await;
    let admin = app.fx_superuser().await;
    let free = fx_tier(&admin, "free").await;
    let rule = fx_rule(&admin, "free", "api/v1/tasks/task", 1, 31_536_000).await;
    let alice = app.fx_user("alice").await;
    let bob = app.fx_user("bob").await;
    let body = client::types::UserTierUpdate { tier_id: free.id };
    admin
        .api
        .patch_user_tier()
        .username("alice")
        .body(body)
        .send()
        .await
        .unwrap();

    let http = Client::new();
    let post = |base: &str, user: &TestUser| {
        let request = http
            .post(format!("{base}{TASK_PATH}"))
            .bearer_auth(&user.token.access_token);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let set_limit = |limit: u32| {
        let change = client::types::RateLimitUpdate {
            limit: std::num::NonZeroU32::new(limit),
            name: None,
            path: None,
            period: None,
        };
        admin
            .api
            .patch_rate_limit()
            .tier_name("free")
            .id(rule.id)
            .body(change)
            .send()
    };
    assert_eq!(post(&first_base, &alice).await, 201);
    assert_eq!(
        post(&second_base, &bob).await,
        201,
        "the second instance has loaded the rules"
    );

    // Raised through the first instance: the second applies it on its next request.
    set_limit(2).await.unwrap();
    assert_eq!(
        post(&second_base, &alice).await,
        201,
        "one count, the new limit"
    );
    assert_eq!(post(&second_base, &alice).await, 429);

    // An exhausted client is answered locally for a second at most, then sees the change.
    set_limit(10).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while post(&second_base, &alice).await == 429 {
        assert!(
            std::time::Instant::now() < deadline,
            "the raise never reached the second instance"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // Across both instances at once, exactly the limit passes.
    let counted_before = {
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let window = 31_536_000 * (epoch_now() / 31_536_000);
        let key = format!("ratelimit:{}:api_v1_tasks_task:{window}", alice.user.id);
        redis::cmd("GET")
            .arg(key)
            .query_async::<u64>(&mut conn)
            .await
            .unwrap()
    };
    let requests = (0..20).map(|n| {
        let base = if n % 2 == 0 {
            first_base.clone()
        } else {
            second_base.clone()
        };
        let request = http
            .post(format!("{base}{TASK_PATH}"))
            .bearer_auth(&alice.token.access_token);
        async move { request.send().await.unwrap().status().as_u16() }
    });
    let statuses = run_concurrently(requests).await;
    let passed = statuses.iter().filter(|s| **s == 201).count() as u64;
    assert_eq!(
        passed,
        10 - counted_before,
        "{statuses:?}, {counted_before} counted before"
    );
}

fn epoch_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

mod gcra {
    use super::*;

    #[tokio::test]
    async fn a_burst_of_limit_then_one_request_per_interval() {
        let app = spawn_app_with(&[
            ("RATE_LIMIT_ALGORITHM", "gcra"),
            ("DEFAULT_RATE_LIMIT_LIMIT", "3"),
            ("DEFAULT_RATE_LIMIT_PERIOD", "3"),
        ])
        .await;
        let limited = Limited::new(&app).await;
        for remaining in [2, 1, 0] {
            let response = limited.post(None).await;
            assert_eq!(response.status(), StatusCode::CREATED);
            assert_eq!(header(&response, "x-ratelimit-remaining"), remaining);
            assert_eq!(header(&response, "x-ratelimit-limit"), 3);
        }
        let denied = limited.post(None).await;
        assert_eq!(denied.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(header(&denied, "retry-after"), 1, "one interval");
        // One interval later, exactly one more: no second burst.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        assert_eq!(limited.statuses(None, 2).await, [201, 429]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn three_times_the_limit_at_once_lets_exactly_the_limit_through() {
        let app = spawn_app_with(&[
            ("RATE_LIMIT_ALGORITHM", "gcra"),
            ("DEFAULT_RATE_LIMIT_LIMIT", "7"),
            ("DEFAULT_RATE_LIMIT_PERIOD", YEAR),
        ])
        .await;
        let base = serve_limited(&app).await;
        let http = Client::new();
        let requests = (0..21).map(|_| {
            let request = http.post(format!("{base}{TASK_PATH}"));
            async move { request.send().await.unwrap().status().as_u16() }
        });
        let statuses = run_concurrently(requests).await;
        assert_eq!(
            statuses.iter().filter(|s| **s == 201).count(),
            7,
            "{statuses:?}"
        );
    }
}

mod login_throttle {
    use super::*;
    use crate::helpers::{PASSWORD, failure, login_form};

    async fn login_status(app: &TestApp, username: &str, password: &str) -> u16 {
        let result = app
            .api
            .login()
            .body(login_form(username, password))
            .send()
            .await;
        match result {
            Ok(ok) => ok.status().as_u16(),
            Err(err) => {
                let failure = failure::<client::types::Token>(Err(err));
                if failure.status == StatusCode::TOO_MANY_REQUESTS {
                    assert_eq!(failure.message(), "Rate limit exceeded");
                    let retry_after: u64 = failure.headers["retry-after"]
                        .to_str()
                        .unwrap()
                        .parse()
                        .unwrap();
                    assert!((1..=900).contains(&retry_after), "{retry_after}");
                }
                failure.status.as_u16()
            }
        }
    }

    #[tokio::test]
    async fn failures_per_username_are_limited_alike_for_known_and_unknown_names() {
        let app = spawn_app_with(&[("LOGIN_FAILURES_PER_USERNAME", "3")]).await;
        app.signup("alice").await;
        for username in ["alice", "nobody"] {
            let mut statuses = Vec::new();
            for _ in 0..4 {
                statuses.push(login_status(&app, username, "wrong-password").await);
            }
            assert_eq!(statuses, [401, 401, 401, 429], "{username}");
        }
        // Even the right password waits for the window: the guesser cannot tell.
        assert_eq!(login_status(&app, "alice", PASSWORD).await, 429);
        assert_eq!(
            login_status(&app, "ALICE", "wrong-password").await,
            429,
            "names fold case"
        );
    }

    #[tokio::test]
    async fn failures_per_address_are_limited_across_usernames() {
        let app = spawn_app_with(&[("LOGIN_FAILURES_PER_IP", "4")]).await;
        let mut statuses = Vec::new();
        for n in 0..5 {
            statuses.push(login_status(&app, &format!("user{n}"), "wrong-password").await);
        }
        assert_eq!(statuses, [401, 401, 401, 401, 429]);
    }

    #[tokio::test]
    async fn successes_do_not_count_and_do_not_reset_anothers_failures() {
        let app = spawn_app_with(&[("LOGIN_FAILURES_PER_USERNAME", "3")]).await;
        app.signup("alice").await;
        for _ in 0..5 {
            assert_eq!(login_status(&app, "alice", PASSWORD).await, 200);
        }
        assert_eq!(login_status(&app, "alice", "guess-1").await, 401);
        assert_eq!(login_status(&app, "alice", "guess-2").await, 401);
        assert_eq!(login_status(&app, "alice", PASSWORD).await, 200);
        assert_eq!(login_status(&app, "alice", "guess-3").await, 401);
        assert_eq!(login_status(&app, "alice", "guess-4").await, 429);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_redis_down_login_works_and_failures_stay_bounded() {
        let redis = TestRedis::stopped();
        let url = redis.url();
        let app = spawn_app_with(&[
            ("REDIS_URL", url.as_str()),
            ("REDIS_KEY_PREFIX", ""),
            ("LOGIN_FAILURES_PER_USERNAME", "2"),
        ])
        .await;
        app.signup("alice").await;
        assert_eq!(login_status(&app, "alice", PASSWORD).await, 200);
        let statuses = [
            login_status(&app, "alice", "wrong-password").await,
            login_status(&app, "alice", "wrong-password").await,
            login_status(&app, "alice", "wrong-password").await,
        ];
        assert_eq!(statuses, [401, 401, 429]);
    }
}
