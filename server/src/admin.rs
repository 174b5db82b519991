//! Administrative commands: `create-superuser` and `create-tier`. Both are idempotent.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::ExprTrait};

use crate::{
    auth::password::Passwords,
    config::Settings,
    entities::user,
    tiers::{schemas::TierCreate, service as tiers},
    users::{schemas::UserCreate, service},
    validation::{EmailAddress, normalize_email},
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
        password: admin.password.expose().to_string(),
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
    // The same rules and code as `POST /tier`.
    let new = TierCreate {
        name: name.to_string(),
    };
    new.validate()
        .map_err(|err| anyhow::anyhow!("TIER_NAME is not a valid tier name: {err}"))?;
    if tiers::find_by_name(db, name).await?.is_some() {
        return Ok(Outcome::AlreadyExists);
    }
    tiers::create(db, new).await?;
    Ok(Outcome::Created)
}
