//! User queries and rules, independent of HTTP.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, Select, SqlErr, TransactionSession, TransactionTrait,
};

use crate::{
    auth::password::Passwords,
    entities::{
        post,
        user::{self, Column, Entity as User},
    },
    error::AppError,
    pagination::PageRequest,
    users::schemas::{UserCreate, UserUpdate},
    validation::normalize_email,
};

pub const DEFAULT_PROFILE_IMAGE_URL: &str = "https://profileimageurl.com";

pub const USER_NOT_FOUND: &str = "User not found";
pub(crate) const EMAIL_TAKEN: &str = "Email is already registered";
pub(crate) const USERNAME_TAKEN: &str = "Username not available";

/// The query for a user who is not soft-deleted, by id; callers may narrow it further.
pub fn active_by_id(id: i64) -> Select<User> {
    User::find_by_id(id).filter(Column::IsDeleted.eq(false))
}

pub async fn find_active_by_id(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<Option<user::Model>, DbErr> {
    active_by_id(id).one(db).await
}

pub async fn find_active_by_username(
    db: &impl ConnectionTrait,
    username: &str,
) -> Result<Option<user::Model>, DbErr> {
    User::find()
        .filter(Column::Username.eq(username))
        .filter(Column::IsDeleted.eq(false))
        .one(db)
        .await
}

/// The live user of that name, or the contract's 404.
pub async fn get_active_by_username(
    db: &impl ConnectionTrait,
    username: &str,
) -> Result<user::Model, AppError> {
    find_active_by_username(db, username)
        .await?
        .ok_or(AppError::not_found(USER_NOT_FOUND))
}

/// Soft-deleted users included: for what only a superuser does to them.
pub async fn find_any_by_username(
    db: &impl ConnectionTrait,
    username: &str,
) -> Result<Option<user::Model>, DbErr> {
    User::find()
        .filter(Column::Username.eq(username))
        .one(db)
        .await
}

/// The login form takes a username, or an email when it contains `@`.
pub async fn find_active_by_login(
    db: &impl ConnectionTrait,
    username_or_email: &str,
) -> Result<Option<user::Model>, DbErr> {
    let filter = if username_or_email.contains('@') {
        Column::Email.eq(normalize_email(username_or_email))
    } else {
        Column::Username.eq(username_or_email)
    };
    User::find()
        .filter(filter)
        .filter(Column::IsDeleted.eq(false))
        .one(db)
        .await
}

pub async fn list_active(
    db: &impl ConnectionTrait,
    page: PageRequest,
) -> Result<(Vec<user::Model>, u64), DbErr> {
    let query = User::find()
        .filter(Column::IsDeleted.eq(false))
        .order_by_asc(Column::Id);
    crate::pagination::fetch_page(db, query, page).await
}

async fn email_taken(db: &impl ConnectionTrait, email: &str) -> Result<bool, DbErr> {
    Ok(User::find()
        .filter(Column::Email.eq(email))
        .count(db)
        .await?
        > 0)
}

async fn username_taken(db: &impl ConnectionTrait, username: &str) -> Result<bool, DbErr> {
    // Soft-deleted users keep their username.
    Ok(User::find()
        .filter(Column::Username.eq(username))
        .count(db)
        .await?
        > 0)
}

/// Maps a unique-constraint violation (a race the pre-checks lost) to the contract's 400.
fn on_unique_violation(err: DbErr) -> AppError {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(message)) if message.contains("email") => {
            AppError::bad_request(EMAIL_TAKEN)
        }
        Some(SqlErr::UniqueConstraintViolation(message)) if message.contains("username") => {
            AppError::bad_request(USERNAME_TAKEN)
        }
        _ => err.into(),
    }
}

/// Creates a user from validated sign-up data. Conflicts are checked before the password is
/// hashed (no hashing work for a refused sign-up); a race that slips past the checks is caught
/// by the unique constraints.
pub async fn create(
    db: &impl ConnectionTrait,
    passwords: &Passwords,
    new: UserCreate,
    is_superuser: bool,
) -> Result<user::Model, AppError> {
    let email = normalize_email(new.email.as_str());
    if email_taken(db, &email).await? {
        return Err(AppError::bad_request(EMAIL_TAKEN));
    }
    if username_taken(db, &new.username).await? {
        return Err(AppError::bad_request(USERNAME_TAKEN));
    }
    let hashed_password = passwords.hash(new.password).await?;
    let row = user::ActiveModel {
        name: Set(new.name),
        username: Set(new.username),
        email: Set(email),
        hashed_password: Set(hashed_password),
        profile_image_url: Set(DEFAULT_PROFILE_IMAGE_URL.to_string()),
        uuid: Set(uuid::Uuid::new_v4()),
        created_at: Set(Utc::now()),
        updated_at: Set(None),
        deleted_at: Set(None),
        is_deleted: Set(false),
        is_superuser: Set(is_superuser),
        tier_id: Set(None),
        ..Default::default()
    };
    row.insert(db).await.map_err(on_unique_violation)
}

pub async fn update(
    db: &impl ConnectionTrait,
    user: user::Model,
    changes: UserUpdate,
) -> Result<user::Model, AppError> {
    let email = changes.email.as_ref().map(|e| normalize_email(e.as_str()));
    if let Some(email) = &email
        && *email != user.email
        && email_taken(db, email).await?
    {
        return Err(AppError::bad_request(EMAIL_TAKEN));
    }
    if let Some(username) = &changes.username
        && *username != user.username
        && username_taken(db, username).await?
    {
        return Err(AppError::bad_request(USERNAME_TAKEN));
    }
    let mut row: user::ActiveModel = user.into();
    if let Some(name) = changes.name {
        row.name = Set(name);
    }
    if let Some(username) = changes.username {
        row.username = Set(username);
    }
    if let Some(email) = email {
        row.email = Set(email);
    }
    if let Some(url) = changes.profile_image_url {
        row.profile_image_url = Set(url);
    }
    row.updated_at = Set(Some(Utc::now()));
    row.update(db).await.map_err(on_unique_violation)
}

pub async fn soft_delete(db: &impl ConnectionTrait, user: user::Model) -> Result<(), DbErr> {
    let now = Utc::now();
    let mut row: user::ActiveModel = user.into();
    row.is_deleted = Set(true);
    row.deleted_at = Set(Some(now));
    row.updated_at = Set(Some(now));
    row.update(db).await?;
    Ok(())
}

/// Removes the user and their posts, all or nothing.
pub async fn hard_delete<C>(db: &C, user_id: i64) -> Result<(), DbErr>
where
    C: ConnectionTrait + TransactionTrait,
{
    let txn = db.begin().await?;
    post::Entity::delete_many()
        .filter(post::Column::CreatedByUserId.eq(user_id))
        .exec(&txn)
        .await?;
    User::delete_by_id(user_id).exec(&txn).await?;
    txn.commit().await
}

pub async fn set_tier(
    db: &impl ConnectionTrait,
    user: user::Model,
    tier_id: i64,
) -> Result<user::Model, DbErr> {
    let mut row: user::ActiveModel = user.into();
    row.tier_id = Set(Some(tier_id));
    row.updated_at = Set(Some(Utc::now()));
    row.update(db).await
}
