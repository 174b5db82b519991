//! Sign-up, profiles, pagination, updates, soft and hard deletion, and who may do what.

use client::types;
use reqwest::StatusCode;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};
use serde_json::{Value, json};
use server::entities::{post, user};

use crate::helpers::{
    PASSWORD, TestApp, exchange, failure, raw_json, run_concurrently, signup_body, spawn_app,
};

async fn post_json(app: &TestApp, path: &str, body: Value) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(app.url(path))
        .json(&body)
        .send()
        .await
        .expect("request sent");
    raw_json(response).await
}

fn valid_signup() -> Value {
    json!({"name": "Alice A", "username": "alice", "email": "alice@example.com", "password": PASSWORD})
}

fn with(mut body: Value, key: &str, value: Value) -> Value {
    body[key] = value;
    body
}

#[tokio::test]
async fn signup_returns_201_and_the_public_fields_in_order() {
    let app = spawn_app().await;
    let response = reqwest::Client::new()
        .post(app.url("/api/v1/user"))
        .json(&valid_signup())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let text = response.text().await.unwrap();
    let keys: Vec<String> = serde_json::from_str::<serde_json::Map<String, Value>>(&text)
        .unwrap()
        .keys()
        .cloned()
        .collect();
    // serde_json's map is sorted, so check the order in the raw text.
    let positions: Vec<usize> = [
        "\"id\"",
        "\"tier_id\"",
        "\"name\"",
        "\"username\"",
        "\"email\"",
        "\"profile_image_url\"",
    ]
    .iter()
    .map(|k| {
        text.find(k)
            .unwrap_or_else(|| panic!("{k} missing in {text}"))
    })
    .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "key order: {text}"
    );
    assert_eq!(keys.len(), 6, "{text}");
    assert!(
        !text.contains("password") && !text.contains("argon2"),
        "{text}"
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["tier_id"], Value::Null);
    assert_eq!(body["profile_image_url"], "https://profileimageurl.com");

    // Through the typed client.
    let bob = app.signup("bob").await;
    assert_eq!(bob.username, "bob");
    assert_eq!(bob.email, "bob@example.com");
}

#[tokio::test]
async fn signup_lowercases_the_email_domain() {
    let app = spawn_app().await;
    let (status, body) = post_json(
        &app,
        "/api/v1/user",
        with(valid_signup(), "email", json!("Alice@Example.COM")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["email"], "Alice@example.com");
    // The same address in another case is taken.
    let other = json!({"name": "Other", "username": "other", "email": "Alice@EXAMPLE.com", "password": PASSWORD});
    let (status, body) = post_json(&app, "/api/v1/user", other).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"detail": "Email is already registered"})
        )
    );
}

#[tokio::test]
async fn taken_email_and_username_are_400() {
    let app = spawn_app().await;
    app.signup("alice").await;
    let mut same_email = signup_body("bob");
    same_email.email = "alice@example.com".try_into().unwrap();
    let f = failure(app.api.create_user().body(same_email).send().await);
    assert_eq!(f.status, StatusCode::BAD_REQUEST);
    assert_eq!(f.message(), "Email is already registered");

    let mut same_username = signup_body("alice");
    same_username.email = "other@example.com".try_into().unwrap();
    let f = failure(app.api.create_user().body(same_username).send().await);
    assert_eq!(f.status, StatusCode::BAD_REQUEST);
    assert_eq!(f.message(), "Username not available");
}

#[tokio::test]
async fn concurrent_duplicate_signups_never_500() {
    let app = spawn_app().await;
    let attempts = (0..8).map(|_| {
        let api = app.api.clone();
        async move { api.create_user().body(signup_body("racer")).send().await }
    });
    let results = run_concurrently(attempts).await;
    let mut created = 0;
    for result in results {
        match result {
            Ok(response) => {
                assert_eq!(response.status(), StatusCode::CREATED);
                created += 1;
            }
            Err(err) => {
                let f = failure::<types::UserRead>(Err(err));
                assert_eq!(f.status, StatusCode::BAD_REQUEST);
                assert!(
                    ["Email is already registered", "Username not available"]
                        .contains(&f.message()),
                    "{}",
                    f.message()
                );
            }
        }
    }
    assert_eq!(created, 1);
}

#[tokio::test]
async fn signup_validation_names_each_field() {
    let app = spawn_app().await;
    let long = |n: usize| json!("a".repeat(n));
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "name too short",
            with(valid_signup(), "name", json!("A")),
            vec!["body", "name"],
        ),
        (
            "name too long",
            with(valid_signup(), "name", long(31)),
            vec!["body", "name"],
        ),
        (
            "username uppercase",
            with(valid_signup(), "username", json!("Alice")),
            vec!["body", "username"],
        ),
        (
            "username too long",
            with(valid_signup(), "username", long(21)),
            vec!["body", "username"],
        ),
        (
            "username reserved",
            with(valid_signup(), "username", json!("me")),
            vec!["body", "username"],
        ),
        (
            "username reserved users",
            with(valid_signup(), "username", json!("users")),
            vec!["body", "username"],
        ),
        (
            "email invalid",
            with(valid_signup(), "email", json!("not-an-email")),
            vec!["body", "email"],
        ),
        (
            "email too long",
            with(
                valid_signup(),
                "email",
                json!(format!("{}@example.com", "a".repeat(40))),
            ),
            vec!["body", "email"],
        ),
        (
            "password short",
            with(valid_signup(), "password", json!("short")),
            vec!["body", "password"],
        ),
        (
            "password long",
            with(valid_signup(), "password", long(129)),
            vec!["body", "password"],
        ),
        (
            "wrong type",
            with(valid_signup(), "name", json!(42)),
            vec!["body", "name"],
        ),
        (
            "explicit null",
            with(valid_signup(), "name", Value::Null),
            vec!["body", "name"],
        ),
        (
            "unknown field",
            with(valid_signup(), "is_superuser", json!(true)),
            vec!["body", "is_superuser"],
        ),
        (
            "missing field",
            json!({"name": "Alice", "username": "alice", "email": "a@b.co"}),
            vec!["body", "password"],
        ),
        ("not an object", json!([1, 2]), vec!["body"]),
    ];
    for (case, body, loc) in cases {
        let (status, answer) = post_json(&app, "/api/v1/user", body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{case}: {answer}");
        let issue = &answer["detail"][0];
        assert_eq!(issue["loc"], json!(loc), "{case}: {answer}");
        assert!(
            issue["msg"].as_str().is_some_and(|m| !m.is_empty()),
            "{case}"
        );
        assert!(
            issue["type"].as_str().is_some_and(|m| !m.is_empty()),
            "{case}"
        );
    }
    // Boundaries that are fine.
    let ok =
        json!({"name": "Al", "username": "a1", "email": "x@example.com", "password": "12345678"});
    assert_eq!(
        post_json(&app, "/api/v1/user", ok).await.0,
        StatusCode::CREATED
    );
    // Nothing invalid was stored.
    let users = app.api.read_users().send().await.unwrap().into_inner();
    assert_eq!(users.total_count, 1);
}

#[tokio::test]
async fn malformed_json_and_wrong_content_type_are_422() {
    let app = spawn_app().await;
    let http = reqwest::Client::new();
    let (status, body) = exchange(
        http.post(app.url("/api/v1/user"))
            .header("content-type", "application/json")
            .body("{\"name\": "),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["type"], "json_invalid");

    let (status, body) = exchange(
        http.post(app.url("/api/v1/user"))
            .header("content-type", "text/plain")
            .body(valid_signup().to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["body"]));

    let (status, body) = exchange(http.post(app.url("/api/v1/user"))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["type"], "missing");
}

#[tokio::test]
async fn users_are_paginated_by_id_with_exact_counts() {
    let app = spawn_app().await;
    for i in 0..5 {
        app.signup(&format!("user{i}")).await;
    }
    let page = app
        .api
        .read_users()
        .page(2)
        .items_per_page(2)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.total_count, 5);
    assert_eq!((page.page, page.items_per_page), (2, 2));
    assert!(page.has_more);
    let names: Vec<_> = page.data.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["user2", "user3"]);

    let last = app
        .api
        .read_users()
        .page(3)
        .items_per_page(2)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(last.data.len(), 1);
    assert!(!last.has_more);

    let defaults = app.api.read_users().send().await.unwrap().into_inner();
    assert_eq!(
        (defaults.page, defaults.items_per_page, defaults.data.len()),
        (1, 10, 5)
    );
    let ids: Vec<_> = defaults.data.iter().map(|u| u.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));

    let beyond = app
        .api
        .read_users()
        .page(9)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert!(beyond.data.is_empty());
    assert_eq!(beyond.total_count, 5);
}

#[tokio::test]
async fn pagination_bounds_are_422() {
    let app = spawn_app().await;
    let http = reqwest::Client::new();
    for query in [
        "page=0",
        "items_per_page=0",
        "items_per_page=101",
        "page=abc",
        "page=-1",
    ] {
        let (status, body) = exchange(http.get(app.url(&format!("/api/v1/users?{query}")))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
        assert_eq!(body["detail"][0]["loc"][0], "query", "{query}");
        let field = query.split('=').next().unwrap();
        assert_eq!(body["detail"][0]["loc"][1], field, "{query}");
    }
    let response = http
        .get(app.url("/api/v1/users?items_per_page=100"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn read_user_by_username() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let read = app
        .api
        .read_user()
        .username("alice")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.id, alice.id);
    let f = failure(app.api.read_user().username("nobody").send().await);
    f.assert_is(StatusCode::NOT_FOUND, "User not found");
}

#[tokio::test]
async fn me_is_not_a_username() {
    let app = spawn_app().await;
    let alice = app.fx_user("alice").await;
    let me = alice.api.read_users_me().send().await.unwrap().into_inner();
    assert_eq!(me.id, alice.user.id);
}

fn update() -> types::UserUpdate {
    types::UserUpdate {
        email: None,
        name: None,
        profile_image_url: None,
        username: None,
    }
}

#[tokio::test]
async fn users_update_themselves() {
    let app = spawn_app().await;
    let alice = app.fx_user("alice").await;
    let before = user::Entity::find_by_id(alice.user.id)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert!(before.updated_at.is_none());
    let mut changes = update();
    changes.name = Some("Alice Liddell".try_into().unwrap());
    changes.profile_image_url = Some("https://img.example.com/a.png".try_into().unwrap());
    changes.email = Some("alice@Wonderland.example".try_into().unwrap());
    let message = alice
        .api
        .patch_user()
        .username("alice")
        .body(changes)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(message.message, "User updated");
    let read = app
        .api
        .read_user()
        .username("alice")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.name, "Alice Liddell");
    assert_eq!(read.profile_image_url, "https://img.example.com/a.png");
    assert_eq!(read.email, "alice@wonderland.example");
    let after = user::Entity::find_by_id(alice.user.id)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert!(after.updated_at.is_some());

    // Renaming keeps the session: tokens name the user by id.
    let mut rename = update();
    rename.username = Some("liddell".try_into().unwrap());
    alice
        .api
        .patch_user()
        .username("alice")
        .body(rename)
        .send()
        .await
        .unwrap();
    let me = alice.api.read_users_me().send().await.unwrap().into_inner();
    assert_eq!(me.username, "liddell");
}

type PatchResult = Result<
    progenitor_client::ResponseValue<types::Message>,
    progenitor_client::Error<types::ErrorBody>,
>;

async fn patch(api: &client::Client, username: &str, changes: types::UserUpdate) -> PatchResult {
    api.patch_user()
        .username(username)
        .body(changes)
        .send()
        .await
}

#[tokio::test]
async fn update_permissions_and_conflicts() {
    let app = spawn_app().await;
    let alice = app.fx_user("alice").await;
    let bob = app.fx_user("bob").await;
    let admin = app.fx_superuser().await;

    let mut rename = update();
    rename.name = Some("Hacked".try_into().unwrap());
    let forbidden = "The user doesn't have enough privileges";
    failure(patch(&bob.api, "alice", rename.clone()).await)
        .assert_is(StatusCode::FORBIDDEN, forbidden);
    failure(patch(&admin.api, "alice", rename.clone()).await)
        .assert_is(StatusCode::FORBIDDEN, forbidden);
    failure(patch(&app.api, "alice", rename.clone()).await)
        .assert_is(StatusCode::UNAUTHORIZED, "Not authenticated");
    failure(patch(&alice.api, "nobody", rename.clone()).await)
        .assert_is(StatusCode::NOT_FOUND, "User not found");

    let mut taken = update();
    taken.username = Some("bob".try_into().unwrap());
    failure(patch(&alice.api, "alice", taken).await)
        .assert_is(StatusCode::BAD_REQUEST, "Username not available");
    let mut taken = update();
    taken.email = Some("bob@example.com".try_into().unwrap());
    failure(patch(&alice.api, "alice", taken).await)
        .assert_is(StatusCode::BAD_REQUEST, "Email is already registered");

    // Keeping one's own username or email is not a conflict.
    let mut same = update();
    same.username = Some("alice".try_into().unwrap());
    same.email = Some("alice@example.com".try_into().unwrap());
    patch(&alice.api, "alice", same)
        .await
        .expect("no-op update");
    let read = app.api.read_user().username("alice").send().await.unwrap();
    assert_eq!(read.into_inner().name, "User alice");
}

#[tokio::test]
async fn update_validation_rejects_null_and_bad_values() {
    let app = spawn_app().await;
    let alice = app.fx_user("alice").await;
    let http = reqwest::Client::new();
    let cases = [
        (json!({"name": null}), "name"),
        (json!({"username": "Not Valid"}), "username"),
        (json!({"username": "tiers"}), "username"),
        (json!({"email": "nope"}), "email"),
        (
            json!({"profile_image_url": "javascript:alert(1)"}),
            "profile_image_url",
        ),
        (json!({"is_superuser": true}), "is_superuser"),
    ];
    for (body, field) in cases {
        let (status, answer) = exchange(
            http.patch(app.url("/api/v1/user/alice"))
                .bearer_auth(&alice.token.access_token)
                .json(&body),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert_eq!(answer["detail"][0]["loc"], json!(["body", field]), "{body}");
    }
    let stored = user::Entity::find_by_id(alice.user.id)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert!(!stored.is_superuser);
    assert!(stored.updated_at.is_none(), "nothing was written");
}

#[tokio::test]
async fn soft_delete_hides_the_user_but_keeps_the_username() {
    let app = spawn_app().await;
    let alice = app.fx_user("alice").await;
    let bob = app.fx_user("bob").await;

    let f = failure(bob.api.erase_user().username("alice").send().await);
    assert_eq!(f.status, StatusCode::FORBIDDEN);
    let f = failure(app.api.erase_user().username("alice").send().await);
    assert_eq!(f.status, StatusCode::UNAUTHORIZED);

    let message = alice
        .api
        .erase_user()
        .username("alice")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(message.message, "User deleted");

    let f = failure(app.api.read_user().username("alice").send().await);
    f.assert_is(StatusCode::NOT_FOUND, "User not found");
    let users = app.api.read_users().send().await.unwrap().into_inner();
    assert_eq!(users.total_count, 1);
    assert_eq!(users.data[0].username, "bob");

    let stored = user::Entity::find_by_id(alice.user.id)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert!(stored.is_deleted && stored.deleted_at.is_some());

    let mut again = signup_body("alice");
    again.email = "new-alice@example.com".try_into().unwrap();
    let f = failure(app.api.create_user().body(again).send().await);
    f.assert_is(StatusCode::BAD_REQUEST, "Username not available");
    let f = failure(bob.api.erase_user().username("alice").send().await);
    assert_eq!(f.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn superusers_hard_delete_users_with_their_posts() {
    let app = spawn_app().await;
    let alice = app.fx_user("alice").await;
    let bob = app.fx_user("bob").await;
    let admin = app.fx_superuser().await;
    let now = chrono::Utc::now();
    let post = post::ActiveModel {
        created_by_user_id: Set(alice.user.id),
        title: Set("Hello".into()),
        text: Set("World".into()),
        uuid: Set(uuid::Uuid::new_v4()),
        media_url: Set(None),
        created_at: Set(now),
        updated_at: Set(None),
        deleted_at: Set(None),
        is_deleted: Set(false),
        ..Default::default()
    }
    .insert(&app.state.db)
    .await
    .unwrap();

    let f = failure(bob.api.erase_db_user().username("alice").send().await);
    assert_eq!(
        (f.status, f.message()),
        (
            StatusCode::FORBIDDEN,
            "The user doesn't have enough privileges"
        )
    );
    let f = failure(app.api.erase_db_user().username("alice").send().await);
    assert_eq!(f.status, StatusCode::UNAUTHORIZED);
    let f = failure(admin.api.erase_db_user().username("nobody").send().await);
    f.assert_is(StatusCode::NOT_FOUND, "User not found");

    let message = admin
        .api
        .erase_db_user()
        .username("alice")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(message.message, "User deleted from the database");
    assert!(
        user::Entity::find_by_id(alice.user.id)
            .one(&app.state.db)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        post::Entity::find_by_id(post.id)
            .one(&app.state.db)
            .await
            .unwrap()
            .is_none()
    );
    // The username is free again.
    app.signup("alice").await;

    // Soft-deleted users can be purged too.
    bob.api.erase_user().username("bob").send().await.unwrap();
    admin
        .api
        .erase_db_user()
        .username("bob")
        .send()
        .await
        .expect("purge a soft-deleted user");
}

#[tokio::test]
async fn create_superuser_is_idempotent() {
    let app = spawn_app().await;
    let first = server::admin::create_superuser(&app.state.db, &app.state.settings)
        .await
        .unwrap();
    let second = server::admin::create_superuser(&app.state.db, &app.state.settings)
        .await
        .unwrap();
    assert_eq!(first, server::admin::Outcome::Created);
    assert_eq!(second, server::admin::Outcome::AlreadyExists);
    let tier = server::admin::create_tier(&app.state.db, "free")
        .await
        .unwrap();
    let again = server::admin::create_tier(&app.state.db, "free")
        .await
        .unwrap();
    assert_eq!(
        (tier, again),
        (
            server::admin::Outcome::Created,
            server::admin::Outcome::AlreadyExists
        )
    );
    let admin = app.login("admin", PASSWORD).await;
    let me = app
        .authed(&admin.access_token)
        .read_users_me()
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.username, "admin");
}

#[tokio::test]
async fn admin_commands_refuse_invalid_settings() {
    let app = crate::helpers::spawn_app_with(&[("ADMIN_USERNAME", "Not Valid")]).await;
    let err = server::admin::create_superuser(&app.state.db, &app.state.settings)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("ADMIN_"), "{err}");
    let err = server::admin::create_tier(&app.state.db, "Bad Name")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("TIER_NAME"), "{err}");
    let users = app.api.read_users().send().await.unwrap().into_inner();
    assert_eq!(users.total_count, 0);
}

#[tokio::test]
async fn oversized_bodies_are_413_json() {
    let app = spawn_app().await;
    let huge = json!({"name": "x".repeat(2 * 1024 * 1024)});
    let (status, body) = post_json(&app, "/api/v1/user", huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("larger")),
        "{body}"
    );
}
