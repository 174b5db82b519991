//! Realistic data, written straight to the database before the server starts (so the server
//! loads the tiers' rules as it would in production): users with posts, two tiers with rules
//! high enough never to trip, some users on each tier.

use std::time::Duration;

use chrono::Utc;
use sea_orm::{ActiveValue::Set, DatabaseConnection, EntityTrait};
use server::{
    auth::password::Passwords,
    entities::{post, rate_limit, tier, user},
};

pub const USERS: usize = 1_000;
pub const POSTS_PER_USER: usize = 20;
pub const PASSWORD: &str = "benchmark-password";
/// Users `user0000`.. `user0099` are on `free`, `user0100`.. `user0199` on `pro`.
pub const ON_EACH_TIER: usize = 100;

pub fn username(i: usize) -> String {
    format!("user{i:04}")
}

/// The id of user `i`'s `n`th post: posts are inserted user by user, in order.
pub fn post_id(i: usize, n: usize) -> i64 {
    (i * POSTS_PER_USER + n + 1) as i64
}

pub async fn seed(db: &DatabaseConnection) {
    let now = Utc::now();
    let mut tier_ids = Vec::new();
    for name in ["free", "pro"] {
        let inserted = tier::Entity::insert(tier::ActiveModel {
            name: Set(name.into()),
            created_at: Set(now),
            updated_at: Set(None),
            ..Default::default()
        })
        .exec(db)
        .await
        .expect("a tier");
        tier_ids.push(inserted.last_insert_id);
        rate_limit::Entity::insert(rate_limit::ActiveModel {
            tier_id: Set(inserted.last_insert_id),
            name: Set(format!("{name}:tasks")),
            path: Set("api_v1_tasks_task".into()),
            limit: Set(1_000_000_000),
            period: Set(3600),
            created_at: Set(now),
            updated_at: Set(None),
            ..Default::default()
        })
        .exec(db)
        .await
        .expect("a rule");
    }

    // One hash for everyone: hashing a thousand passwords would only slow the seeding down.
    let hashed = Passwords::new(1, Duration::from_secs(60))
        .hash(PASSWORD.into())
        .await
        .expect("a hash");
    let users: Vec<user::ActiveModel> = (0..USERS)
        .map(|i| user::ActiveModel {
            name: Set(format!("Bench User {i}")),
            username: Set(username(i)),
            email: Set(format!("{}@example.com", username(i))),
            hashed_password: Set(hashed.clone()),
            profile_image_url: Set("https://www.profileimageurl.com".into()),
            uuid: Set(uuid::Uuid::new_v4()),
            created_at: Set(now),
            updated_at: Set(None),
            deleted_at: Set(None),
            is_deleted: Set(false),
            is_superuser: Set(false),
            tier_id: Set(tier_ids.get(i / ON_EACH_TIER).copied()),
            ..Default::default()
        })
        .collect();
    for chunk in users.chunks(500) {
        user::Entity::insert_many(chunk.to_vec())
            .exec(db)
            .await
            .expect("users");
    }

    let text = "A post of a realistic length: a few sentences about the engine, the loom and \
                the patterns they weave, long enough to look like the real thing in a list.";
    let posts: Vec<post::ActiveModel> = (0..USERS)
        .flat_map(|i| (0..POSTS_PER_USER).map(move |n| (i, n)))
        .map(|(i, n)| post::ActiveModel {
            created_by_user_id: Set((i + 1) as i64),
            title: Set(format!("Post {n} of user {i}")),
            text: Set(text.into()),
            uuid: Set(uuid::Uuid::new_v4()),
            media_url: Set(None),
            created_at: Set(now),
            updated_at: Set(None),
            deleted_at: Set(None),
            is_deleted: Set(false),
            ..Default::default()
        })
        .collect();
    for chunk in posts.chunks(500) {
        post::Entity::insert_many(chunk.to_vec())
            .exec(db)
            .await
            .expect("posts");
    }
}
