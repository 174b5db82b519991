//! Tiers, their rate limits, and moving users between tiers: every admin answer and message of
//! the contract, and races that must end as 400s, never 500s or duplicates.

use std::num::NonZeroU32;

use client::types;
use reqwest::StatusCode;
use serde_json::{Value, json};
use server::admin::{self, Outcome};

use crate::helpers::{
    TestApp, TestUser, failure, raw_json, run_concurrently, spawn_app, status_of,
};

pub fn tier_body(name: &str) -> types::TierCreate {
    types::TierCreate {
        name: name.try_into().expect("valid tier name"),
    }
}

pub fn rule_body(path: &str, limit: u32, period: u32) -> types::RateLimitCreate {
    types::RateLimitCreate {
        path: path.try_into().expect("valid path"),
        limit: NonZeroU32::new(limit).expect("positive"),
        period: NonZeroU32::new(period).expect("positive"),
        name: None,
    }
}

pub async fn fx_tier(admin: &TestUser, name: &str) -> types::TierCreated {
    let created = admin.api.create_tier().body(tier_body(name)).send().await;
    created.expect("tier created").into_inner()
}

pub async fn fx_rule(
    admin: &TestUser,
    tier: &str,
    path: &str,
    limit: u32,
    period: u32,
) -> types::RateLimitCreated {
    let created = admin
        .api
        .create_rate_limit()
        .tier_name(tier)
        .body(rule_body(path, limit, period));
    created.send().await.expect("rule created").into_inner()
}

async fn send_as(
    app: &TestApp,
    admin: &TestUser,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    let request = reqwest::Client::new().request(method, app.url(path));
    let response = request
        .bearer_auth(&admin.token.access_token)
        .json(&body)
        .send()
        .await
        .unwrap();
    raw_json(response).await
}

#[tokio::test]
async fn tiers_are_created_read_renamed_and_deleted_by_superusers() {
    let app = spawn_app().await;
    let admin = app.fx_superuser().await;
    let alice = app.fx_user("alice").await;

    let created = admin
        .api
        .create_tier()
        .body(tier_body("free"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let free = created.into_inner();
    assert_eq!((free.name.as_str(), free.updated_at), ("free", None));
    let duplicate = admin.api.create_tier().body(tier_body("free")).send().await;
    failure(duplicate).assert_is(StatusCode::BAD_REQUEST, "Tier Name not available");
    let by_user = alice.api.create_tier().body(tier_body("mine")).send().await;
    failure(by_user).assert_is(
        StatusCode::FORBIDDEN,
        "The user doesn't have enough privileges",
    );
    let anonymous = app.api.create_tier().body(tier_body("anon")).send().await;
    failure(anonymous).assert_is(StatusCode::UNAUTHORIZED, "Not authenticated");
    for bad in [
        json!({"name": "Pro"}),
        json!({"name": ""}),
        json!({"name": "x".repeat(51)}),
        json!({}),
    ] {
        let (status, body) =
            send_as(&app, &admin, reqwest::Method::POST, "/api/v1/tier", bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["detail"][0]["loc"], json!(["body", "name"]));
    }

    // A tier named like a static segment is still a tier (static segments win).
    fx_tier(&admin, "posts").await;
    let posts = app
        .api
        .read_tier()
        .name("posts")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(posts.name, "posts");
    let text = reqwest::get(app.url("/api/v1/tier/free"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let order: Vec<usize> = ["\"name\"", "\"id\"", "\"created_at\""]
        .iter()
        .map(|k| text.find(k).unwrap())
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "TierRead key order: {text}"
    );

    let list = app
        .api
        .read_tiers()
        .items_per_page(1)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (list.total_count, list.has_more, list.data[0].name.as_str()),
        (2, true, "free")
    );
    let missing = app.api.read_tier().name("gold").send().await;
    failure(missing).assert_is(StatusCode::NOT_FOUND, "Tier not found");

    let rename = |name: &str| types::TierUpdate {
        name: Some(name.try_into().unwrap()),
    };
    let taken = admin
        .api
        .patch_tier()
        .name("posts")
        .body(rename("free"))
        .send()
        .await;
    failure(taken).assert_is(StatusCode::BAD_REQUEST, "Tier Name not available");
    let renamed = admin
        .api
        .patch_tier()
        .name("posts")
        .body(rename("basic"))
        .send()
        .await
        .unwrap();
    assert_eq!(renamed.into_inner().message, "Tier updated");
    assert_eq!(
        app.api
            .read_tier()
            .name("basic")
            .send()
            .await
            .unwrap()
            .into_inner()
            .id,
        posts.id
    );
    let missing = admin
        .api
        .patch_tier()
        .name("posts")
        .body(rename("other"))
        .send()
        .await;
    failure(missing).assert_is(StatusCode::NOT_FOUND, "Tier not found");

    let deleted = admin.api.erase_tier().name("basic").send().await.unwrap();
    assert_eq!(deleted.into_inner().message, "Tier deleted");
    let again = admin.api.erase_tier().name("basic").send().await;
    failure(again).assert_is(StatusCode::NOT_FOUND, "Tier not found");
}

#[tokio::test]
async fn a_tier_with_users_is_not_deleted_and_a_deleted_tier_takes_its_rules() {
    let app = spawn_app().await;
    let admin = app.fx_superuser().await;
    let alice = app.fx_user("alice").await;
    let free = fx_tier(&admin, "free").await;
    let pro = fx_tier(&admin, "pro").await;
    fx_rule(&admin, "pro", "api/v1/tasks/task", 10, 3600).await;

    let tier_of = |id: i64| types::UserTierUpdate { tier_id: id };
    let moved = admin
        .api
        .patch_user_tier()
        .username("alice")
        .body(tier_of(free.id))
        .send()
        .await;
    assert_eq!(
        moved.unwrap().into_inner().message,
        "User User alice Tier updated"
    );
    let refused = admin.api.erase_tier().name("free").send().await;
    let refused = failure(refused);
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.message().contains("users"), "{}", refused.message());
    assert!(app.api.read_tier().name("free").send().await.is_ok());

    admin.api.erase_tier().name("pro").send().await.unwrap();
    let rules = rules_of_tier(&app, pro.id).await;
    assert_eq!(rules, 0, "the tier's rules went with it");

    // Soft-deleted users keep their tier, so it still counts as in use.
    alice
        .api
        .erase_user()
        .username("alice")
        .send()
        .await
        .unwrap();
    let refused = admin.api.erase_tier().name("free").send().await;
    assert_eq!(failure(refused).status, StatusCode::BAD_REQUEST);
}

async fn rules_of_tier(app: &TestApp, tier_id: i64) -> u64 {
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    use server::entities::rate_limit::{Column, Entity};
    let rules = Entity::find().filter(Column::TierId.eq(tier_id));
    rules.count(&app.state.db).await.expect("a count")
}

#[tokio::test]
async fn rate_limits_are_kept_per_tier_and_path_with_the_contracts_messages() {
    let app = spawn_app().await;
    let admin = app.fx_superuser().await;
    let alice = app.fx_user("alice").await;
    let free = fx_tier(&admin, "free").await;
    fx_tier(&admin, "pro").await;

    let created = admin
        .api
        .create_rate_limit()
        .tier_name("free")
        .body(rule_body("/api/v1/tasks/task/", 1, 3600));
    let created = created.send().await.unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let rule = created.into_inner();
    assert_eq!(
        (
            rule.path.as_str(),
            rule.name.as_str(),
            rule.limit,
            rule.period,
            rule.tier_id,
            rule.updated_at
        ),
        (
            "api_v1_tasks_task",
            "api_v1_tasks_task:1:3600",
            1,
            3600,
            free.id,
            None
        )
    );

    // One rule per tier and path, however the path is spelled; names are unique everywhere.
    let same_path = admin
        .api
        .create_rate_limit()
        .tier_name("free")
        .body(types::RateLimitCreate {
            name: Some("another".try_into().unwrap()),
            ..rule_body("api_v1_tasks_task", 5, 60)
        });
    failure(same_path.send().await).assert_is(
        StatusCode::BAD_REQUEST,
        "There is already a rate limit for this path",
    );
    let same_name = admin
        .api
        .create_rate_limit()
        .tier_name("pro")
        .body(types::RateLimitCreate {
            name: Some("api_v1_tasks_task:1:3600".try_into().unwrap()),
            ..rule_body("api/v1/other", 5, 60)
        });
    failure(same_name.send().await)
        .assert_is(StatusCode::BAD_REQUEST, "Rate Limit Name not available");
    let pro_rule = fx_rule(&admin, "pro", "api/v1/tasks/task", 10, 3600).await;

    // A path of the longest kind leaves no room for the default name: a name is required.
    let long_path = "p".repeat(255);
    let (status, body) = send_as(
        &app,
        &admin,
        reqwest::Method::POST,
        "/api/v1/tier/pro/rate_limit",
        json!({"path": long_path, "limit": 396_143, "period": 166}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["detail"][0]["loc"], json!(["body", "name"]));
    let named = admin
        .api
        .create_rate_limit()
        .tier_name("pro")
        .body(types::RateLimitCreate {
            name: Some("long".try_into().unwrap()),
            ..rule_body(&long_path, 396_143, 166)
        })
        .send()
        .await;
    assert_eq!(named.unwrap().status(), StatusCode::CREATED);
    let no_tier = admin
        .api
        .create_rate_limit()
        .tier_name("gold")
        .body(rule_body("a", 1, 1))
        .send()
        .await;
    failure(no_tier).assert_is(StatusCode::NOT_FOUND, "Tier not found");
    let by_user = alice
        .api
        .create_rate_limit()
        .tier_name("free")
        .body(rule_body("b", 1, 1))
        .send()
        .await;
    failure(by_user).assert_is(
        StatusCode::FORBIDDEN,
        "The user doesn't have enough privileges",
    );
    for (bad, field) in [
        (json!({"path": "x", "limit": 0, "period": 1}), "limit"),
        (
            json!({"path": "x", "limit": 1_000_000_001, "period": 1}),
            "limit",
        ),
        (
            json!({"path": "x", "limit": 1, "period": 31_536_001}),
            "period",
        ),
        (json!({"path": "/", "limit": 1, "period": 1}), "path"),
        (
            json!({"path": "x", "limit": 1, "period": 1, "name": null}),
            "name",
        ),
    ] {
        let (status, body) = send_as(
            &app,
            &admin,
            reqwest::Method::POST,
            "/api/v1/tier/free/rate_limit",
            bad,
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["detail"][0]["loc"], json!(["body", field]), "{body}");
    }

    let list = app
        .api
        .read_rate_limits()
        .tier_name("free")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!((list.total_count, list.data[0].id), (1, rule.id));
    let one = app
        .api
        .read_rate_limit()
        .tier_name("free")
        .id(rule.id)
        .send()
        .await
        .unwrap();
    assert_eq!(one.into_inner().name, "api_v1_tasks_task:1:3600");
    let other_tiers = app
        .api
        .read_rate_limit()
        .tier_name("free")
        .id(pro_rule.id)
        .send()
        .await;
    failure(other_tiers).assert_is(StatusCode::NOT_FOUND, "Rate Limit not found");

    let change = types::RateLimitUpdate {
        limit: NonZeroU32::new(3),
        path: Some("/api/v1/tasks/task/".try_into().unwrap()),
        name: None,
        period: None,
    };
    let patched = admin
        .api
        .patch_rate_limit()
        .tier_name("free")
        .id(rule.id)
        .body(change)
        .send()
        .await;
    assert_eq!(patched.unwrap().into_inner().message, "Rate Limit updated");
    let one = app
        .api
        .read_rate_limit()
        .tier_name("free")
        .id(rule.id)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!((one.limit, one.path.as_str()), (3, "api_v1_tasks_task"));
    fx_rule(&admin, "free", "api/v1/other", 1, 60).await;
    let onto_taken = types::RateLimitUpdate {
        path: Some("api/v1/other".try_into().unwrap()),
        limit: None,
        name: None,
        period: None,
    };
    let onto_taken = admin
        .api
        .patch_rate_limit()
        .tier_name("free")
        .id(rule.id)
        .body(onto_taken)
        .send()
        .await;
    failure(onto_taken).assert_is(
        StatusCode::BAD_REQUEST,
        "There is already a rate limit for this path",
    );

    let deleted = admin
        .api
        .erase_rate_limit()
        .tier_name("free")
        .id(rule.id)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.into_inner().message, "Rate Limit deleted");
    let gone = admin
        .api
        .erase_rate_limit()
        .tier_name("free")
        .id(rule.id)
        .send()
        .await;
    failure(gone).assert_is(StatusCode::NOT_FOUND, "Rate Limit not found");
}

#[tokio::test]
async fn superusers_move_users_between_tiers_and_read_their_limits() {
    let app = spawn_app().await;
    let admin = app.fx_superuser().await;
    let alice = app.fx_user("alice").await;
    let pro = fx_tier(&admin, "pro").await;
    let rule = fx_rule(&admin, "pro", "api/v1/tasks/task", 10, 3600).await;

    let none = admin
        .api
        .read_user_rate_limits()
        .username("alice")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!((none.tier_id, none.tier_rate_limits.len()), (None, 0));
    let move_to = |id| types::UserTierUpdate { tier_id: id };
    let unknown_tier = admin
        .api
        .patch_user_tier()
        .username("alice")
        .body(move_to(pro.id + 100))
        .send()
        .await;
    failure(unknown_tier).assert_is(StatusCode::NOT_FOUND, "Tier not found");
    let unknown_user = admin
        .api
        .patch_user_tier()
        .username("nobody")
        .body(move_to(pro.id))
        .send()
        .await;
    failure(unknown_user).assert_is(StatusCode::NOT_FOUND, "User not found");
    let by_user = alice
        .api
        .patch_user_tier()
        .username("alice")
        .body(move_to(pro.id))
        .send()
        .await;
    failure(by_user).assert_is(
        StatusCode::FORBIDDEN,
        "The user doesn't have enough privileges",
    );
    let by_user = alice
        .api
        .read_user_rate_limits()
        .username("alice")
        .send()
        .await;
    failure(by_user).assert_is(
        StatusCode::FORBIDDEN,
        "The user doesn't have enough privileges",
    );

    admin
        .api
        .patch_user_tier()
        .username("alice")
        .body(move_to(pro.id))
        .send()
        .await
        .unwrap();
    let limits = admin
        .api
        .read_user_rate_limits()
        .username("alice")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (limits.username.as_str(), limits.tier_id),
        ("alice", Some(pro.id))
    );
    assert_eq!(
        limits
            .tier_rate_limits
            .iter()
            .map(|r| r.id)
            .collect::<Vec<_>>(),
        [rule.id]
    );
    let me = alice.api.read_users_me().send().await.unwrap().into_inner();
    assert_eq!(me.tier_id, Some(pro.id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_duplicates_end_as_one_row_and_400s() {
    let app = spawn_app().await;
    let admin = app.fx_superuser().await;
    let tiers = (0..8).map(|_| {
        let api = admin.api.clone();
        async move { api.create_tier().body(tier_body("race")).send().await }
    });
    let statuses: Vec<StatusCode> = run_concurrently(tiers)
        .await
        .iter()
        .map(status_of)
        .collect();
    assert_one_created_rest_400(&statuses);

    let rules = (0..8).map(|n| {
        let api = admin.api.clone();
        let body = types::RateLimitCreate {
            name: Some(format!("rule{n}").as_str().try_into().unwrap()),
            ..rule_body("api/v1/x", 1, 60)
        };
        async move {
            api.create_rate_limit()
                .tier_name("race")
                .body(body)
                .send()
                .await
        }
    });
    let statuses: Vec<StatusCode> = run_concurrently(rules)
        .await
        .iter()
        .map(status_of)
        .collect();
    assert_one_created_rest_400(&statuses);
}

fn assert_one_created_rest_400(statuses: &[StatusCode]) {
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1, "{statuses:?}");
    let others_400 = statuses
        .iter()
        .all(|s| *s == StatusCode::CREATED || *s == StatusCode::BAD_REQUEST);
    assert!(others_400, "{statuses:?}");
}

#[tokio::test]
async fn the_create_tier_command_shares_the_services_rules() {
    let app = spawn_app().await;
    assert_eq!(
        admin::create_tier(&app.state.db, "free").await.unwrap(),
        Outcome::Created
    );
    assert_eq!(
        admin::create_tier(&app.state.db, "free").await.unwrap(),
        Outcome::AlreadyExists
    );
    assert!(
        admin::create_tier(&app.state.db, "Not Valid")
            .await
            .is_err()
    );
    let free = app
        .api
        .read_tier()
        .name("free")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(free.name, "free");
}
