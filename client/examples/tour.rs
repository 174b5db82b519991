//! A tour of the API through the client: sign up, log in, write posts and page through them,
//! enqueue a task and poll it to its result, and handle errors and rate limits.
//!
//! `cargo run -p client --example tour -- http://127.0.0.1:8000`

use std::time::Duration;

use client::{Client, Error, RateLimit, types};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:8000".into());
    let api = Client::new(&base);
    let username = format!("tour{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let password = "tour-password-123";

    // Sign up and log in.
    api.create_user()
        .body(types::UserCreate {
            name: "Tour Guide".try_into()?,
            username: username.as_str().try_into()?,
            email: format!("{username}@example.com").as_str().try_into()?,
            password: password.try_into()?,
        })
        .send()
        .await?;
    let token = api
        .login()
        .body(types::LoginForm {
            username: username.clone(),
            password: password.into(),
            grant_type: None,
            scope: None,
            client_id: None,
            client_secret: None,
        })
        .send()
        .await?
        .into_inner();
    let me = client::with_bearer(&base, &token.access_token)?;
    println!("logged in as {}", me.read_users_me().send().await?.username);

    // Write posts, then page through them.
    for n in 1..=5 {
        me.create_post()
            .username(&username)
            .body(types::PostCreate {
                title: format!("Post number {n}").as_str().try_into()?,
                text: "Written by the tour".try_into()?,
                media_url: None,
            })
            .send()
            .await?;
    }
    let mut page = 1u64;
    loop {
        let posts = api
            .read_posts()
            .username(&username)
            .page(page)
            .items_per_page(2)
            .send()
            .await?
            .into_inner();
        let titles: Vec<_> = posts.data.iter().map(|p| p.title.as_str()).collect();
        println!("page {page} of {} posts: {titles:?}", posts.total_count);
        if !posts.has_more {
            break;
        }
        page += 1;
    }
    assert_eq!(page, 3, "5 posts, 2 a page");

    // Enqueue a task (a rate-limited operation) and poll it to its result.
    let created = me.create_task().message("from the tour").send().await?;
    if let Some(limit) = RateLimit::from_headers(created.headers()) {
        println!("task quota: {} of {} left", limit.remaining, limit.limit);
    }
    let id = created.into_inner().id;
    let task = loop {
        let task = api.read_task().task_id(&id).send().await?.into_inner();
        if matches!(
            task.status,
            types::TaskStatus::Complete | types::TaskStatus::Failed
        ) {
            break task;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    println!("task {id}: {:?} → {}", task.status, task.result);
    assert_eq!(
        task.result,
        serde_json::json!("Task from the tour is complete!")
    );

    // Errors come back typed, with the server's message.
    match api.read_user().username("nobody-at-all").send().await {
        Err(Error::ErrorResponse(response)) => {
            let status = response.status();
            match &response.into_inner().detail {
                types::ErrorDetail::String(message) => println!("{status}: {message}"),
                types::ErrorDetail::Array(issues) => {
                    println!("{status}: {} validation issues", issues.len())
                }
            }
        }
        other => return Err(format!("expected a 404, got {other:?}").into()),
    }
    println!("tour complete");
    Ok(())
}
