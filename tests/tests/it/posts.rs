//! Posts: every endpoint's answers and messages, owner checks that follow the post row,
//! soft and hard deletion, and pagination.

use client::types;
use progenitor_client::{Error as ClientError, ResponseValue};
use reqwest::StatusCode;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};
use serde_json::{Value, json};
use server::entities::post;

use crate::helpers::{TestApp, TestUser, failure, raw_json, spawn_app};

pub fn post_body(title: &str) -> types::PostCreate {
    types::PostCreate {
        title: title.try_into().expect("valid title"),
        text: format!("Text of {title}")
            .as_str()
            .try_into()
            .expect("valid text"),
        media_url: None,
    }
}

pub async fn fx_post(author: &TestUser, title: &str) -> types::PostRead {
    author
        .api
        .create_post()
        .username(&author.user.username)
        .body(post_body(title))
        .send()
        .await
        .expect("post created")
        .into_inner()
}

pub fn title_update(title: &str) -> types::PostUpdate {
    types::PostUpdate {
        title: Some(title.try_into().expect("valid title")),
        text: None,
        media_url: None,
    }
}

/// `GET /{username}/post/{id}`, anonymously.
pub async fn read_post(
    app: &TestApp,
    username: &str,
    id: i64,
) -> Result<ResponseValue<types::PostRead>, ClientError<types::ErrorBody>> {
    app.api.read_post().username(username).id(id).send().await
}

/// The post's row, soft-deleted or not.
pub async fn stored_post(app: &TestApp, id: i64) -> Option<post::Model> {
    post::Entity::find_by_id(id)
        .one(&app.state.db)
        .await
        .expect("a query")
}

/// Changes a post behind the API's back, to tell a cached answer from a fresh one.
pub async fn retitle_in_database(app: &TestApp, id: i64, title: &str) {
    let row = stored_post(app, id).await.expect("the post exists");
    let mut row: post::ActiveModel = row.into();
    row.title = Set(title.to_string());
    row.update(&app.state.db).await.unwrap();
}

async fn send_json(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Value,
) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .request(method, app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    raw_json(response).await
}

#[tokio::test]
async fn create_returns_201_with_the_post_and_checks_who_writes() {
    let app = spawn_app().await;
    let alice = app.fx_user("alice").await;
    let bob = app.fx_user("bob").await;

    let created = alice
        .api
        .create_post()
        .username("alice")
        .body(types::PostCreate {
            media_url: Some("https://example.com/a.png".try_into().unwrap()),
            ..post_body("First post")
        })
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let created = created.into_inner();
    assert_eq!(created.title, "First post");
    assert_eq!(created.text, "Text of First post");
    assert_eq!(
        created.media_url.as_deref(),
        Some("https://example.com/a.png")
    );
    assert_eq!(created.created_by_user_id, alice.user.id);

    // Writing under someone else's name, for nobody, or anonymously.
    let as_bob = bob
        .api
        .create_post()
        .username("alice")
        .body(post_body("Nope"))
        .send();
    failure(as_bob.await).assert_is(
        StatusCode::FORBIDDEN,
        "The user doesn't have enough privileges",
    );
    let nobody = alice
        .api
        .create_post()
        .username("nobody")
        .body(post_body("Nope"))
        .send();
    failure(nobody.await).assert_is(StatusCode::NOT_FOUND, "User not found");
    let anonymous = app
        .api
        .create_post()
        .username("alice")
        .body(post_body("Nope"))
        .send();
    failure(anonymous.await).assert_is(StatusCode::UNAUTHORIZED, "Not authenticated");

    // Validation, with what the typed client cannot send.
    let token = &alice.token.access_token;
    for (body, field) in [
        (json!({"title": "x", "text": "t"}), "title"),
        (
            json!({"title": "ok title", "text": "t", "media_url": "http://[x"}),
            "media_url",
        ),
        (json!({"title": "ok title", "text": ""}), "text"),
        (
            json!({"title": "ok title", "text": "x".repeat(63_207)}),
            "text",
        ),
        (
            json!({"title": "ok title", "text": "t", "media_url": "javascript:x"}),
            "media_url",
        ),
        (json!({"title": null, "text": "t"}), "title"),
        (
            json!({"title": "ok title", "text": "t", "created_by_user_id": 2}),
            "created_by_user_id",
        ),
    ] {
        let (status, body) = send_json(
            &app,
            reqwest::Method::POST,
            "/api/v1/alice/post",
            token,
            body,
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["detail"][0]["loc"], json!(["body", field]), "{body}");
    }
    // media_url may be null: no media.
    let (status, body) = send_json(
        &app,
        reqwest::Method::POST,
        "/api/v1/alice/post",
        token,
        json!({"title": "No media", "text": "t", "media_url": null}),
    )
    .await;
    assert_eq!(
        (status, &body["media_url"]),
        (StatusCode::CREATED, &Value::Null)
    );
}

#[tokio::test]
async fn lists_are_ordered_paginated_and_only_show_live_posts() {
    let app = spawn_app().await;
    let alice = app.fx_user("alice").await;
    let bob = app.fx_user("bob").await;
    let mut ids = Vec::new();
    for n in 1..=5 {
        ids.push(fx_post(&alice, &format!("Post {n}")).await.id);
    }
    fx_post(&bob, "Bob's post").await;
    alice
        .api
        .erase_post()
        .username("alice")
        .id(ids[4])
        .send()
        .await
        .unwrap();

    let page = |page: u64| {
        app.api
            .read_posts()
            .username("alice")
            .page(page)
            .items_per_page(2)
            .send()
    };
    let first = page(1).await.unwrap().into_inner();
    assert_eq!(
        first.data.iter().map(|p| p.id).collect::<Vec<_>>(),
        ids[..2]
    );
    assert_eq!(
        (
            first.total_count,
            first.has_more,
            first.page,
            first.items_per_page
        ),
        (4, true, 1, 2)
    );
    let second = page(2).await.unwrap().into_inner();
    assert_eq!(
        second.data.iter().map(|p| p.id).collect::<Vec<_>>(),
        ids[2..4]
    );
    assert!(!second.has_more);
    assert!(page(3).await.unwrap().into_inner().data.is_empty());

    let default = app
        .api
        .read_posts()
        .username("bob")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (default.total_count, default.items_per_page, default.page),
        (1, 10, 1)
    );

    let missing = app.api.read_posts().username("nobody").send().await;
    failure(missing).assert_is(StatusCode::NOT_FOUND, "User not found");
    let response = reqwest::get(app.url("/api/v1/alice/posts?items_per_page=101"))
        .await
        .unwrap();
    let (status, body) = raw_json(response).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["query", "items_per_page"]));
}

#[tokio::test]
async fn a_post_is_read_only_under_its_author() {
    let app = spawn_app().await;
    let alice = app.fx_user("alice").await;
    app.fx_user("bob").await;
    let post = fx_post(&alice, "Hello").await;

    let read = read_post(&app, "alice", post.id).await.unwrap();
    let read = read.into_inner();
    assert_eq!(
        (read.id, read.title, read.created_at),
        (post.id, post.title, post.created_at)
    );
    let under_bob = read_post(&app, "bob", post.id).await;
    failure(under_bob).assert_is(StatusCode::NOT_FOUND, "Post not found");
    let missing = read_post(&app, "alice", 9999).await;
    failure(missing).assert_is(StatusCode::NOT_FOUND, "Post not found");
    let nobody = read_post(&app, "nobody", post.id).await;
    failure(nobody).assert_is(StatusCode::NOT_FOUND, "User not found");
    let (status, _) = raw_json(
        reqwest::get(app.url("/api/v1/alice/post/abc"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn only_the_author_changes_a_post_whatever_the_path_says() {
    let app = spawn_app().await;
    let alice = app.fx_user("alice").await;
    let bob = app.fx_user("bob").await;
    let post = fx_post(&alice, "Original").await;

    // Bob names himself in the path, with Alice's post id: it is not his.
    let idor = bob
        .api
        .patch_post()
        .username("bob")
        .id(post.id)
        .body(title_update("Hacked"))
        .send();
    failure(idor.await).assert_is(StatusCode::NOT_FOUND, "Post not found");
    let idor = bob.api.erase_post().username("bob").id(post.id).send();
    failure(idor.await).assert_is(StatusCode::NOT_FOUND, "Post not found");
    // Bob names Alice: he is not her.
    let other = bob
        .api
        .patch_post()
        .username("alice")
        .id(post.id)
        .body(title_update("Hacked"))
        .send();
    failure(other.await).assert_is(
        StatusCode::FORBIDDEN,
        "The user doesn't have enough privileges",
    );
    let other = bob.api.erase_post().username("alice").id(post.id).send();
    failure(other.await).assert_is(
        StatusCode::FORBIDDEN,
        "The user doesn't have enough privileges",
    );
    let anonymous = app
        .api
        .patch_post()
        .username("alice")
        .id(post.id)
        .body(title_update("x y"))
        .send();
    failure(anonymous.await).assert_is(StatusCode::UNAUTHORIZED, "Not authenticated");
    let unchanged = read_post(&app, "alice", post.id).await.unwrap();
    assert_eq!(unchanged.into_inner().title, "Original");

    let patched = alice
        .api
        .patch_post()
        .username("alice")
        .id(post.id)
        .body(title_update("Edited"))
        .send();
    assert_eq!(patched.await.unwrap().into_inner().message, "Post updated");
    let row = stored_post(&app, post.id).await.unwrap();
    assert_eq!(row.title, "Edited");
    assert!(row.updated_at.is_some());

    // media_url: a value sets it, null clears it, null is refused for the others.
    let token = &alice.token.access_token;
    let path = format!("/api/v1/alice/post/{}", post.id);
    let patch = |body| send_json(&app, reqwest::Method::PATCH, &path, token, body);
    assert_eq!(
        patch(json!({"media_url": "https://example.com/m.png"}))
            .await
            .0,
        StatusCode::OK
    );
    let row = stored_post(&app, row.id).await.unwrap();
    assert_eq!(row.media_url.as_deref(), Some("https://example.com/m.png"));
    assert_eq!(patch(json!({"media_url": null})).await.0, StatusCode::OK);
    let row = stored_post(&app, row.id).await.unwrap();
    assert_eq!(row.media_url, None);
    let (status, body) = patch(json!({"title": null})).await;
    assert_eq!(
        (status, &body["detail"][0]["loc"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!(["body", "title"]))
    );
    let (status, body) = patch(json!({"media_url": "nope"})).await;
    assert_eq!(
        (status, &body["detail"][0]["loc"]),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!(["body", "media_url"])
        )
    );
}

#[tokio::test]
async fn soft_delete_hides_a_post_and_a_superuser_purges_it() {
    let app = spawn_app().await;
    let alice = app.fx_user("alice").await;
    let bob = app.fx_user("bob").await;
    let admin = app.fx_superuser().await;
    let post = fx_post(&alice, "Short-lived").await;

    let deleted = alice
        .api
        .erase_post()
        .username("alice")
        .id(post.id)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.into_inner().message, "Post deleted");
    let gone = read_post(&app, "alice", post.id).await;
    failure(gone).assert_is(StatusCode::NOT_FOUND, "Post not found");
    let again = alice
        .api
        .erase_post()
        .username("alice")
        .id(post.id)
        .send()
        .await;
    failure(again).assert_is(StatusCode::NOT_FOUND, "Post not found");
    let row = stored_post(&app, post.id).await.unwrap();
    assert!(row.is_deleted && row.deleted_at.is_some());

    // Only a superuser purges, and only under the post's author.
    let by_author = alice
        .api
        .erase_db_post()
        .username("alice")
        .id(post.id)
        .send()
        .await;
    failure(by_author).assert_is(
        StatusCode::FORBIDDEN,
        "The user doesn't have enough privileges",
    );
    let wrong_author = admin
        .api
        .erase_db_post()
        .username("bob")
        .id(post.id)
        .send()
        .await;
    failure(wrong_author).assert_is(StatusCode::NOT_FOUND, "Post not found");
    let nobody = admin
        .api
        .erase_db_post()
        .username("nobody")
        .id(post.id)
        .send()
        .await;
    failure(nobody).assert_is(StatusCode::NOT_FOUND, "User not found");
    let purged = admin
        .api
        .erase_db_post()
        .username("alice")
        .id(post.id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        purged.into_inner().message,
        "Post deleted from the database"
    );
    let row = stored_post(&app, post.id).await;
    assert!(row.is_none());
    drop(bob);
}

#[tokio::test]
async fn posts_of_a_soft_deleted_user_are_never_listed_or_read() {
    let app = spawn_app().await;
    let alice = app.fx_user("alice").await;
    let post = fx_post(&alice, "Orphan").await;
    alice
        .api
        .erase_user()
        .username("alice")
        .send()
        .await
        .unwrap();
    let list = app.api.read_posts().username("alice").send().await;
    failure(list).assert_is(StatusCode::NOT_FOUND, "User not found");
    let one = read_post(&app, "alice", post.id).await;
    failure(one).assert_is(StatusCode::NOT_FOUND, "User not found");
}
