//! Tier queries and rules, independent of HTTP.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, SqlErr, TransactionSession, TransactionTrait,
};

use crate::{
    entities::{
        rate_limit,
        tier::{self, Column, Entity as Tier},
        user,
    },
    error::AppError,
    pagination::PageRequest,
    tiers::schemas::{TierCreate, TierUpdate},
};

pub const TIER_NOT_FOUND: &str = "Tier not found";
pub(crate) const NAME_TAKEN: &str = "Tier Name not available";
pub(crate) const TIER_IN_USE: &str =
    "Tier has users assigned to it: move them to another tier first";

pub async fn find_by_name(
    db: &impl ConnectionTrait,
    name: &str,
) -> Result<Option<tier::Model>, DbErr> {
    Tier::find().filter(Column::Name.eq(name)).one(db).await
}

/// The tier of that name, or the contract's 404.
pub async fn get_by_name(db: &impl ConnectionTrait, name: &str) -> Result<tier::Model, AppError> {
    find_by_name(db, name)
        .await?
        .ok_or(AppError::not_found(TIER_NOT_FOUND))
}

pub async fn get_by_id(db: &impl ConnectionTrait, id: i64) -> Result<tier::Model, AppError> {
    Tier::find_by_id(id)
        .one(db)
        .await?
        .ok_or(AppError::not_found(TIER_NOT_FOUND))
}

pub async fn list(
    db: &impl ConnectionTrait,
    page: PageRequest,
) -> Result<(Vec<tier::Model>, u64), DbErr> {
    let query = Tier::find().order_by_asc(Column::Id);
    crate::pagination::fetch_page(db, query, page).await
}

/// A taken name, checked first and caught again from the unique constraint (a lost race).
fn on_unique_violation(err: DbErr) -> AppError {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => AppError::bad_request(NAME_TAKEN),
        _ => err.into(),
    }
}

pub async fn create(db: &impl ConnectionTrait, new: TierCreate) -> Result<tier::Model, AppError> {
    if find_by_name(db, &new.name).await?.is_some() {
        return Err(AppError::bad_request(NAME_TAKEN));
    }
    tier::ActiveModel {
        name: Set(new.name),
        created_at: Set(Utc::now()),
        updated_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await
    .map_err(on_unique_violation)
}

pub async fn update(
    db: &impl ConnectionTrait,
    tier: tier::Model,
    changes: TierUpdate,
) -> Result<tier::Model, AppError> {
    if let Some(name) = &changes.name
        && *name != tier.name
        && find_by_name(db, name).await?.is_some()
    {
        return Err(AppError::bad_request(NAME_TAKEN));
    }
    let mut row: tier::ActiveModel = tier.into();
    if let Some(name) = changes.name {
        row.name = Set(name);
    }
    row.updated_at = Set(Some(Utc::now()));
    row.update(db).await.map_err(on_unique_violation)
}

/// Deletes the tier with its rate limits, unless users are on it (soft-deleted users count:
/// they keep their tier). A user moved onto it meanwhile is caught by the foreign key.
pub async fn delete<C>(db: &C, tier: tier::Model) -> Result<(), AppError>
where
    C: ConnectionTrait + TransactionTrait,
{
    let users = user::Entity::find()
        .filter(user::Column::TierId.eq(tier.id))
        .count(db)
        .await?;
    if users > 0 {
        return Err(AppError::bad_request(TIER_IN_USE));
    }
    let txn = db.begin().await?;
    rate_limit::Entity::delete_many()
        .filter(rate_limit::Column::TierId.eq(tier.id))
        .exec(&txn)
        .await?;
    let deleted = Tier::delete_by_id(tier.id).exec(&txn).await;
    if let Err(err) = &deleted
        && matches!(
            err.sql_err(),
            Some(SqlErr::ForeignKeyConstraintViolation(_))
        )
    {
        return Err(AppError::bad_request(TIER_IN_USE));
    }
    deleted?;
    txn.commit().await?;
    Ok(())
}
