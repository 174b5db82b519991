//! Rate-limit rule queries and rules, independent of HTTP.

use std::borrow::Cow;

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, SqlErr,
};
use validator::ValidationError;

use crate::{
    entities::rate_limit::{self, Column, Entity as RateLimit},
    error::{AppError, ValidationIssue},
    pagination::PageRequest,
    rate_limits::schemas::{RateLimitCreate, RateLimitUpdate},
};

pub const RATE_LIMIT_NOT_FOUND: &str = "Rate Limit not found";
pub(crate) const NAME_TAKEN: &str = "Rate Limit Name not available";
pub(crate) const PATH_TAKEN: &str = "There is already a rate limit for this path";

/// The stored form of a path: no `/` at either end, inner `/` as `_`
/// (`/api/v1/tasks/task/` → `api_v1_tasks_task`).
pub fn sanitize_path(path: &str) -> String {
    path.trim_matches('/').replace('/', "_")
}

pub fn path_not_empty(path: &str) -> Result<(), ValidationError> {
    if sanitize_path(path).is_empty() {
        return Err(ValidationError::new("path")
            .with_message(Cow::Borrowed("must name a path, not only `/`")));
    }
    Ok(())
}

/// The tier's rule with that id (another tier's is not found), or the contract's 404.
pub async fn get(
    db: &impl ConnectionTrait,
    tier_id: i64,
    id: i64,
) -> Result<rate_limit::Model, AppError> {
    RateLimit::find_by_id(id)
        .filter(Column::TierId.eq(tier_id))
        .one(db)
        .await?
        .ok_or(AppError::not_found(RATE_LIMIT_NOT_FOUND))
}

pub async fn list(
    db: &impl ConnectionTrait,
    tier_id: i64,
    page: PageRequest,
) -> Result<(Vec<rate_limit::Model>, u64), DbErr> {
    let query = RateLimit::find()
        .filter(Column::TierId.eq(tier_id))
        .order_by_asc(Column::Id);
    crate::pagination::fetch_page(db, query, page).await
}

/// Every rule of a tier, by id.
pub async fn for_tier(
    db: &impl ConnectionTrait,
    tier_id: i64,
) -> Result<Vec<rate_limit::Model>, DbErr> {
    RateLimit::find()
        .filter(Column::TierId.eq(tier_id))
        .order_by_asc(Column::Id)
        .all(db)
        .await
}

async fn name_taken(db: &impl ConnectionTrait, name: &str) -> Result<bool, DbErr> {
    Ok(RateLimit::find()
        .filter(Column::Name.eq(name))
        .count(db)
        .await?
        > 0)
}

async fn path_taken(db: &impl ConnectionTrait, tier_id: i64, path: &str) -> Result<bool, DbErr> {
    let rules = RateLimit::find()
        .filter(Column::TierId.eq(tier_id))
        .filter(Column::Path.eq(path));
    Ok(rules.count(db).await? > 0)
}

/// Maps a unique-constraint violation (a race the pre-checks lost) to the contract's 400.
fn on_unique_violation(err: DbErr) -> AppError {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(message)) if message.contains("path") => {
            AppError::bad_request(PATH_TAKEN)
        }
        Some(SqlErr::UniqueConstraintViolation(_)) => AppError::bad_request(NAME_TAKEN),
        _ => err.into(),
    }
}

/// A rule's name is at most this many characters (the column's width).
const MAX_NAME_CHARS: usize = 255;

/// `<path>:<limit>:<period>`; with a path near its own limit it would not fit the name column,
/// and the rule needs a name of its own.
fn default_name(path: &str, limit: i32, period: i32) -> Result<String, AppError> {
    let name = format!("{path}:{limit}:{period}");
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(AppError::validation(ValidationIssue::new(
            ["body", "name"],
            format!(
                "required when the default `<path>:<limit>:<period>` would be longer than \
                 {MAX_NAME_CHARS} characters"
            ),
            "missing",
        )));
    }
    Ok(name)
}

pub async fn create(
    db: &impl ConnectionTrait,
    tier_id: i64,
    new: RateLimitCreate,
) -> Result<rate_limit::Model, AppError> {
    let path = sanitize_path(&new.path);
    let name = match new.name {
        Some(name) => name,
        None => default_name(&path, new.limit, new.period)?,
    };
    if name_taken(db, &name).await? {
        return Err(AppError::bad_request(NAME_TAKEN));
    }
    if path_taken(db, tier_id, &path).await? {
        return Err(AppError::bad_request(PATH_TAKEN));
    }
    rate_limit::ActiveModel {
        tier_id: Set(tier_id),
        name: Set(name),
        path: Set(path),
        limit: Set(new.limit),
        period: Set(new.period),
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
    rule: rate_limit::Model,
    changes: RateLimitUpdate,
) -> Result<rate_limit::Model, AppError> {
    let path = changes.path.as_deref().map(sanitize_path);
    if let Some(name) = &changes.name
        && *name != rule.name
        && name_taken(db, name).await?
    {
        return Err(AppError::bad_request(NAME_TAKEN));
    }
    if let Some(path) = &path
        && *path != rule.path
        && path_taken(db, rule.tier_id, path).await?
    {
        return Err(AppError::bad_request(PATH_TAKEN));
    }
    let mut row: rate_limit::ActiveModel = rule.into();
    if let Some(path) = path {
        row.path = Set(path);
    }
    if let Some(limit) = changes.limit {
        row.limit = Set(limit);
    }
    if let Some(period) = changes.period {
        row.period = Set(period);
    }
    if let Some(name) = changes.name {
        row.name = Set(name);
    }
    row.updated_at = Set(Some(Utc::now()));
    row.update(db).await.map_err(on_unique_violation)
}

pub async fn delete(db: &impl ConnectionTrait, rule: rate_limit::Model) -> Result<(), DbErr> {
    RateLimit::delete_by_id(rule.id).exec(db).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_sanitised_as_the_contract_says() {
        assert_eq!(sanitize_path("/api/v1/tasks/task/"), "api_v1_tasks_task");
        assert_eq!(sanitize_path("api/v1/tasks/task"), "api_v1_tasks_task");
        assert_eq!(sanitize_path("api_v1_tasks_task"), "api_v1_tasks_task");
        assert_eq!(
            sanitize_path("/api/v1/{username}/posts"),
            "api_v1_{username}_posts"
        );
        assert!(path_not_empty("///").is_err());
    }
}
