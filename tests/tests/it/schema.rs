//! The migrations: they roll back and re-apply, and the constraints the contract relies on
//! hold on both backends.

use chrono::Utc;
use migration::{Migrator, MigratorTrait};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, DatabaseConnection, EntityTrait, ModelTrait};
use server::entities::{rate_limit, tier, user};

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

fn fx_rate_limit(tier_id: i32, name: &str, path: &str) -> rate_limit::ActiveModel {
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
