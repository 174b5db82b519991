//! Post queries and rules, independent of HTTP. A post is always looked up under its owner,
//! so a path naming another user never reaches it.

use chrono::Utc;
use poem_openapi::types::MaybeUndefined;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    QueryFilter, QueryOrder, Select,
};

use crate::{
    entities::post::{self, Column, Entity as Post},
    error::AppError,
    pagination::PageRequest,
    posts::schemas::{PostCreate, PostUpdate},
};

pub const POST_NOT_FOUND: &str = "Post not found";

/// The owner's live post with that id, or the contract's 404.
pub async fn get_active(
    db: &impl ConnectionTrait,
    owner_id: i64,
    post_id: i64,
) -> Result<post::Model, AppError> {
    one_or_404(
        db,
        owned(owner_id, post_id).filter(Column::IsDeleted.eq(false)),
    )
    .await
}

/// The owner's post with that id, soft-deleted or not: for the superuser's purge.
pub async fn get_any(
    db: &impl ConnectionTrait,
    owner_id: i64,
    post_id: i64,
) -> Result<post::Model, AppError> {
    one_or_404(db, owned(owner_id, post_id)).await
}

fn owned(owner_id: i64, post_id: i64) -> Select<Post> {
    Post::find_by_id(post_id).filter(Column::CreatedByUserId.eq(owner_id))
}

async fn one_or_404(
    db: &impl ConnectionTrait,
    query: Select<Post>,
) -> Result<post::Model, AppError> {
    query
        .one(db)
        .await?
        .ok_or(AppError::not_found(POST_NOT_FOUND))
}

pub async fn list_active(
    db: &impl ConnectionTrait,
    owner_id: i64,
    page: PageRequest,
) -> Result<(Vec<post::Model>, u64), DbErr> {
    let query = Post::find()
        .filter(Column::CreatedByUserId.eq(owner_id))
        .filter(Column::IsDeleted.eq(false))
        .order_by_asc(Column::Id);
    crate::pagination::fetch_page(db, query, page).await
}

pub async fn create(
    db: &impl ConnectionTrait,
    owner_id: i64,
    new: PostCreate,
) -> Result<post::Model, DbErr> {
    post::ActiveModel {
        created_by_user_id: Set(owner_id),
        title: Set(new.title),
        text: Set(new.text),
        uuid: Set(uuid::Uuid::new_v4()),
        media_url: Set(new.media_url),
        created_at: Set(Utc::now()),
        updated_at: Set(None),
        deleted_at: Set(None),
        is_deleted: Set(false),
        ..Default::default()
    }
    .insert(db)
    .await
}

pub async fn update(
    db: &impl ConnectionTrait,
    post: post::Model,
    changes: PostUpdate,
) -> Result<post::Model, DbErr> {
    let mut row: post::ActiveModel = post.into();
    if let Some(title) = changes.title {
        row.title = Set(title);
    }
    if let Some(text) = changes.text {
        row.text = Set(text);
    }
    match changes.media_url {
        MaybeUndefined::Undefined => {}
        MaybeUndefined::Null => row.media_url = Set(None),
        MaybeUndefined::Value(url) => row.media_url = Set(Some(url)),
    }
    row.updated_at = Set(Some(Utc::now()));
    row.update(db).await
}

pub async fn soft_delete(db: &impl ConnectionTrait, post: post::Model) -> Result<(), DbErr> {
    let now = Utc::now();
    let mut row: post::ActiveModel = post.into();
    row.is_deleted = Set(true);
    row.deleted_at = Set(Some(now));
    row.updated_at = Set(Some(now));
    row.update(db).await?;
    Ok(())
}

pub async fn hard_delete(db: &impl ConnectionTrait, post_id: i64) -> Result<(), DbErr> {
    Post::delete_by_id(post_id).exec(db).await?;
    Ok(())
}
