//! Administrative commands: `create-superuser` and `create-tier`. Both are idempotent.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, sea_query::ExprTrait,
};

use crate::{
    auth::password::Passwords,
    config::Settings,
    entities::{tier, user},
    users::{schemas::UserCreate, service},
    validation::{self, EmailAddress, normalize_email},
};
use validator::Validate;

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Created,
    AlreadyExists,
}

pub async fn create_superuser(
    db: &sea_orm::DatabaseConnection,
    settings: &Settings,
) -> anyhow::Result<Outcome> {
    let admin = &settings.admin;
    // The superuser obeys the same rules as a sign-up.
    let signup = UserCreate {
        name: admin.name.clone(),
        username: admin.username.clone(),
        email: EmailAddress(admin.email.clone()),
        password: admin.password.clone(),
    };
    signup
        .validate()
        .map_err(|err| anyhow::anyhow!("the ADMIN_* settings are not a valid user: {err}"))?;
    let email = normalize_email(&admin.email);
    let existing = user::Entity::find()
        .filter(
            user::Column::Username
                .eq(&admin.username)
                .or(user::Column::Email.eq(&email)),
        )
        .one(db)
        .await?;
    if existing.is_some() {
        return Ok(Outcome::AlreadyExists);
    }
    service::create(db, &Passwords::from_settings(settings), signup, true).await?;
    Ok(Outcome::Created)
}

pub async fn create_tier(db: &sea_orm::DatabaseConnection, name: &str) -> anyhow::Result<Outcome> {
    anyhow::ensure!(
        (1..=50).contains(&name.len()) && validation::TIER_NAME.is_match(name),
        "TIER_NAME must be 1 to 50 characters of a-z, 0-9, _ and -"
    );
    let existing = tier::Entity::find()
        .filter(tier::Column::Name.eq(name))
        .one(db)
        .await?;
    if existing.is_some() {
        return Ok(Outcome::AlreadyExists);
    }
    tier::ActiveModel {
        name: Set(name.to_string()),
        created_at: Set(Utc::now()),
        updated_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(Outcome::Created)
}
