//! The response cache through the API: reads are served from it (shown by changing a row
//! behind the API's back), every write that must invalidate does, and nothing else is touched.

use reqwest::StatusCode;
use sea_orm::ConnectionTrait;

use crate::{
    helpers::{TestApp, failure, spawn_app, spawn_app_with},
    posts::{fx_post, read_post, retitle_in_database, title_update},
};

async fn list_titles(app: &TestApp, username: &str) -> Vec<String> {
    let page = app
        .api
        .read_posts()
        .username(username)
        .send()
        .await
        .expect("a list");
    page.into_inner()
        .data
        .into_iter()
        .map(|p| p.title)
        .collect()
}

async fn post_title(app: &TestApp, username: &str, id: i64) -> String {
    let post = read_post(app, username, id).await.expect("a post");
    post.into_inner().title
}

#[tokio::test]
async fn reads_are_served_from_the_cache_until_a_write_invalidates_them() {
    let app = spawn_app().await;
    let alice = app.fx_user("alice").await;
    let post = fx_post(&alice, "Original").await;
    assert_eq!(list_titles(&app, "alice").await, ["Original"]);
    assert_eq!(post_title(&app, "alice", post.id).await, "Original");

    retitle_in_database(&app, post.id, "Changed behind").await;
    assert_eq!(
        list_titles(&app, "alice").await,
        ["Original"],
        "the list is cached"
    );
    assert_eq!(
        post_title(&app, "alice", post.id).await,
        "Original",
        "the post is cached"
    );

    // Another page size is another key: a miss, read fresh.
    let other = app
        .api
        .read_posts()
        .username("alice")
        .items_per_page(5)
        .send()
        .await;
    assert_eq!(other.unwrap().into_inner().data[0].title, "Changed behind");

    let patch = alice
        .api
        .patch_post()
        .username("alice")
        .id(post.id)
        .body(title_update("Patched"));
    patch.send().await.unwrap();
    assert_eq!(list_titles(&app, "alice").await, ["Patched"]);
    assert_eq!(post_title(&app, "alice", post.id).await, "Patched");
}

#[tokio::test]
async fn turned_off_every_read_is_fresh() {
    let app = spawn_app_with(&[("RESPONSE_CACHE_ENABLED", "false")]).await;
    let alice = app.fx_user("alice").await;
    let post = fx_post(&alice, "Original").await;
    assert_eq!(list_titles(&app, "alice").await, ["Original"]);
    assert_eq!(post_title(&app, "alice", post.id).await, "Original");
    retitle_in_database(&app, post.id, "Changed behind").await;
    assert_eq!(list_titles(&app, "alice").await, ["Changed behind"]);
    assert_eq!(post_title(&app, "alice", post.id).await, "Changed behind");
}

#[tokio::test]
async fn spellings_of_one_number_share_one_entry() {
    let app = spawn_app().await;
    let alice = app.fx_user("alice").await;
    let post = fx_post(&alice, "Original").await;
    let read_as = |path: String| {
        let url = app.url(&path);
        async move {
            let body: serde_json::Value = reqwest::get(url).await.unwrap().json().await.unwrap();
            body
        }
    };
    let padded = format!("/api/v1/alice/post/00{}", post.id);
    assert_eq!(read_as(padded.clone()).await["title"], "Original");
    let list = "/api/v1/alice/posts?page=01&items_per_page=%2B10".to_string();
    assert_eq!(read_as(list.clone()).await["data"][0]["title"], "Original");
    let patch = alice.api.patch_post().username("alice").id(post.id);
    patch.body(title_update("Patched")).send().await.unwrap();
    assert_eq!(read_as(padded).await["title"], "Patched");
    assert_eq!(read_as(list).await["data"][0]["title"], "Patched");
}

#[tokio::test]
async fn create_soft_delete_and_hard_delete_invalidate_the_authors_entries() {
    let app = spawn_app().await;
    let alice = app.fx_user("alice").await;
    let admin = app.fx_superuser().await;
    let first = fx_post(&alice, "First").await;
    assert_eq!(list_titles(&app, "alice").await, ["First"]);

    let second = fx_post(&alice, "Second").await;
    assert_eq!(
        list_titles(&app, "alice").await,
        ["First", "Second"],
        "create"
    );

    post_title(&app, "alice", first.id).await;
    alice
        .api
        .erase_post()
        .username("alice")
        .id(first.id)
        .send()
        .await
        .unwrap();
    assert_eq!(list_titles(&app, "alice").await, ["Second"], "soft delete");
    let gone = read_post(&app, "alice", first.id).await;
    failure(gone).assert_is(StatusCode::NOT_FOUND, "Post not found");

    post_title(&app, "alice", second.id).await;
    admin
        .api
        .erase_db_post()
        .username("alice")
        .id(second.id)
        .send()
        .await
        .unwrap();
    assert!(list_titles(&app, "alice").await.is_empty(), "hard delete");
    let gone = read_post(&app, "alice", second.id).await;
    failure(gone).assert_is(StatusCode::NOT_FOUND, "Post not found");
}

#[tokio::test]
async fn renaming_or_deleting_a_user_drops_every_entry_of_theirs() {
    let app = spawn_app().await;
    let alice = app.fx_user("alice").await;
    let bob = app.fx_user("bob").await;
    let carol = app.fx_user("carol").await;
    let admin = app.fx_superuser().await;
    let post = fx_post(&alice, "Alice's").await;
    let bob_post = fx_post(&bob, "Bob's").await;
    let carol_post = fx_post(&carol, "Carol's").await;
    for (name, id) in [
        ("alice", post.id),
        ("bob", bob_post.id),
        ("carol", carol_post.id),
    ] {
        list_titles(&app, name).await;
        post_title(&app, name, id).await;
    }

    let rename = client::types::UserUpdate {
        username: Some("alicia".try_into().unwrap()),
        name: None,
        email: None,
        profile_image_url: None,
    };
    alice
        .api
        .patch_user()
        .username("alice")
        .body(rename)
        .send()
        .await
        .unwrap();
    let old_list = app.api.read_posts().username("alice").send().await;
    failure(old_list).assert_is(StatusCode::NOT_FOUND, "User not found");
    let old_post = read_post(&app, "alice", post.id).await;
    failure(old_post).assert_is(StatusCode::NOT_FOUND, "User not found");
    assert_eq!(list_titles(&app, "alicia").await, ["Alice's"]);

    bob.api.erase_user().username("bob").send().await.unwrap();
    let list = app.api.read_posts().username("bob").send().await;
    failure(list).assert_is(StatusCode::NOT_FOUND, "User not found");
    let one = read_post(&app, "bob", bob_post.id).await;
    failure(one).assert_is(StatusCode::NOT_FOUND, "User not found");

    admin
        .api
        .erase_db_user()
        .username("carol")
        .send()
        .await
        .unwrap();
    let list = app.api.read_posts().username("carol").send().await;
    failure(list).assert_is(StatusCode::NOT_FOUND, "User not found");
    let one = read_post(&app, "carol", carol_post.id).await;
    failure(one).assert_is(StatusCode::NOT_FOUND, "User not found");
}

#[tokio::test]
async fn invalidation_leaves_other_users_entries_alone() {
    let app = spawn_app().await;
    let alice = app.fx_user("alice").await;
    let bob = app.fx_user("bob").await;
    let bob_post = fx_post(&bob, "Bob's").await;
    list_titles(&app, "bob").await;
    post_title(&app, "bob", bob_post.id).await;
    retitle_in_database(&app, bob_post.id, "Changed behind").await;

    let alice_post = fx_post(&alice, "Alice's").await;
    let patch = alice.api.patch_post().username("alice").id(alice_post.id);
    patch
        .body(title_update("Alice again"))
        .send()
        .await
        .unwrap();
    alice
        .api
        .erase_post()
        .username("alice")
        .id(alice_post.id)
        .send()
        .await
        .unwrap();

    assert_eq!(
        list_titles(&app, "bob").await,
        ["Bob's"],
        "bob's list is still cached"
    );
    assert_eq!(post_title(&app, "bob", bob_post.id).await, "Bob's");
}

#[tokio::test]
async fn failed_writes_invalidate_nothing_and_errors_are_not_stored() {
    let app = spawn_app().await;
    let alice = app.fx_user("alice").await;
    let bob = app.fx_user("bob").await;
    let post = fx_post(&alice, "Original").await;
    list_titles(&app, "alice").await;
    retitle_in_database(&app, post.id, "Changed behind").await;
    // A refused write (403) leaves the cached list as it was.
    let refused = bob
        .api
        .patch_post()
        .username("alice")
        .id(post.id)
        .body(title_update("Nope"));
    failure(refused.send().await).assert_is(
        StatusCode::FORBIDDEN,
        "The user doesn't have enough privileges",
    );
    assert_eq!(list_titles(&app, "alice").await, ["Original"]);

    // A 500 is not stored: once the fault is gone, the next read answers from the database.
    let db = &app.state.db;
    db.execute_unprepared("ALTER TABLE post RENAME TO post_away")
        .await
        .unwrap();
    let broken = read_post(&app, "alice", post.id).await;
    assert_eq!(failure(broken).status, StatusCode::INTERNAL_SERVER_ERROR);
    db.execute_unprepared("ALTER TABLE post_away RENAME TO post")
        .await
        .unwrap();
    assert_eq!(post_title(&app, "alice", post.id).await, "Changed behind");
    // Nor is a 404.
    let missing = read_post(&app, "alice", post.id + 1).await;
    assert_eq!(failure(missing).status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn cached_answers_carry_the_same_headers_as_fresh_ones() {
    let app = spawn_app().await;
    let alice = app.fx_user("alice").await;
    let post = fx_post(&alice, "Headers").await;
    let url = app.url(&format!("/api/v1/alice/post/{}", post.id));
    let http = reqwest::Client::new();
    let mut bodies = Vec::new();
    for request_id in ["first-read", "second-read"] {
        let response = http
            .get(&url)
            .header("x-request-id", request_id)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let headers = response.headers();
        assert_eq!(headers["cache-control"], "public, max-age=60");
        assert_eq!(headers["x-request-id"], request_id);
        assert_eq!(headers["content-type"], "application/json; charset=utf-8");
        bodies.push(response.text().await.unwrap());
    }
    assert_eq!(bodies[0], bodies[1]);
    // An authenticated read of a cached entry is still private.
    let response = http
        .get(&url)
        .bearer_auth(&alice.token.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
}
