//! The migrations: they roll back and re-apply, and the constraints the contract relies on
//! hold on both backends.

use chrono::Utc;
use migration::{Migrator, MigratorTrait};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, DatabaseConnection, EntityTrait, ModelTrait};
use server::entities::{post, rate_limit, tier, user};

use crate::helpers::spawn_app;

async fn fx_tier(db: &DatabaseConnection, name: &str) -> tier::Model {
    tier::ActiveModel {
        name: Set(name.into()),
        created_at: Set(Utc::now()),
        updated_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await
    .expect("tier inserted")
}

fn fx_rate_limit(tier_id: i64, name: &str, path: &str) -> rate_limit::ActiveModel {
    rate_limit::ActiveModel {
        tier_id: Set(tier_id),
        name: Set(name.into()),
        path: Set(path.into()),
        limit: Set(5),
        period: Set(60),
        created_at: Set(Utc::now()),
        updated_at: Set(None),
        ..Default::default()
    }
}

#[tokio::test]
async fn migrations_roll_back_and_reapply() {
    let app = spawn_app().await;
    let db = &app.state.db;
    Migrator::down(db, None).await.expect("down");
    assert!(
        tier::Entity::find().all(db).await.is_err(),
        "tables are gone"
    );
    Migrator::up(db, None).await.expect("up again");
    Migrator::up(db, None).await.expect("up is idempotent");
    assert!(
        tier::Entity::find()
            .all(db)
            .await
            .expect("tables back")
            .is_empty()
    );
}

#[tokio::test]
async fn one_rate_limit_per_tier_and_path_and_unique_names() {
    let app = spawn_app().await;
    let db = &app.state.db;
    let free = fx_tier(db, "free").await;
    let pro = fx_tier(db, "pro").await;
    fx_rate_limit(free.id, "a", "api_v1_tasks_task")
        .insert(db)
        .await
        .unwrap();
    assert!(
        fx_rate_limit(free.id, "b", "api_v1_tasks_task")
            .insert(db)
            .await
            .is_err()
    );
    assert!(
        fx_rate_limit(pro.id, "a", "api_v1_other")
            .insert(db)
            .await
            .is_err()
    );
    fx_rate_limit(pro.id, "c", "api_v1_tasks_task")
        .insert(db)
        .await
        .unwrap();
    let duplicate_tier = tier::ActiveModel {
        name: Set("pro".into()),
        created_at: Set(Utc::now()),
        ..Default::default()
    };
    assert!(
        duplicate_tier.insert(db).await.is_err(),
        "tier names are unique"
    );
}

#[tokio::test]
async fn a_tier_in_use_cannot_be_deleted_and_takes_its_rate_limits_with_it() {
    let app = spawn_app().await;
    let db = &app.state.db;
    let alice = app.signup("alice").await;
    let free = fx_tier(db, "free").await;
    fx_rate_limit(free.id, "a", "api_v1_tasks_task")
        .insert(db)
        .await
        .unwrap();
    let mut row: user::ActiveModel = user::Entity::find_by_id(alice.id)
        .one(db)
        .await
        .unwrap()
        .unwrap()
        .into();
    row.tier_id = Set(Some(free.id));
    let on_tier = row.update(db).await.unwrap();

    assert!(free.clone().delete(db).await.is_err(), "users are on it");
    let mut row: user::ActiveModel = on_tier.into();
    row.tier_id = Set(None);
    row.update(db).await.unwrap();
    free.delete(db).await.expect("no users left on it");
    assert!(rate_limit::Entity::find().all(db).await.unwrap().is_empty());
}

/// Ids past 32 bits (a busy table's future) are stored, served and taken in paths.
#[tokio::test]
async fn ids_past_32_bits_round_trip_through_the_api() {
    let app = spawn_app().await;
    let db = &app.state.db;
    let ada = app.fx_user("ada").await;
    let admin = app.fx_superuser().await;
    let big_tier = tier::ActiveModel {
        id: Set(3_000_000_000),
        name: Set("big".into()),
        created_at: Set(Utc::now()),
        updated_at: Set(None),
    }
    .insert(db)
    .await
    .expect("a tier with a 64-bit id");
    admin
        .api
        .patch_user_tier()
        .username("ada")
        .body(client::types::UserTierUpdate {
            tier_id: big_tier.id,
        })
        .send()
        .await
        .expect("tier set");
    let read = app.api.read_user().username("ada").send().await.unwrap();
    assert_eq!(read.tier_id, Some(3_000_000_000));

    let post_id = 5_000_000_000_i64;
    post::ActiveModel {
        id: Set(post_id),
        created_by_user_id: Set(ada.user.id),
        title: Set("Far ids".into()),
        text: Set("past i32::MAX".into()),
        uuid: Set(uuid::Uuid::new_v4()),
        media_url: Set(None),
        created_at: Set(Utc::now()),
        updated_at: Set(None),
        deleted_at: Set(None),
        is_deleted: Set(false),
    }
    .insert(db)
    .await
    .expect("a post with a 64-bit id");
    let post = app
        .api
        .read_post()
        .username("ada")
        .id(post_id)
        .send()
        .await
        .expect("read by its 64-bit id");
    assert_eq!(post.id, post_id);
}
