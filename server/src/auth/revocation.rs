//! Revoked tokens, by `jti`, until they would have expired anyway.
//!
//! The database table is the record; with Redis configured, each revocation is mirrored there
//! so that the check on every authenticated request is one Redis lookup instead of a query.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use crate::{
    entities::token_blacklist::{self, Column, Entity as TokenBlacklist},
    error::AppError,
    state::AppState,
};

fn redis_key(jti: &str) -> String {
    format!("revoked_token:{jti}")
}

pub async fn revoke(
    state: &AppState,
    jti: &str,
    expires_at: DateTime<Utc>,
) -> Result<(), AppError> {
    revoke_in(&state.db, jti, expires_at).await?;
    if let Some(redis) = &state.redis {
        let ttl = (expires_at - Utc::now()).num_seconds().max(1) as u64;
        if let Err(err) = redis.set_with_expiry(&redis_key(jti), "1", ttl).await {
            // The database still has it; the lookup falls back to it.
            tracing::warn!(error = %err, "could not mirror a revoked token to Redis");
        }
    }
    Ok(())
}

/// Records a revocation; revoking twice is not an error. Expired rows are purged on the way.
pub async fn revoke_in(
    db: &impl ConnectionTrait,
    jti: &str,
    expires_at: DateTime<Utc>,
) -> Result<(), AppError> {
    TokenBlacklist::delete_many()
        .filter(Column::ExpiresAt.lt(Utc::now()))
        .exec(db)
        .await?;
    let row = token_blacklist::ActiveModel {
        jti: Set(jti.to_string()),
        expires_at: Set(expires_at),
        ..Default::default()
    };
    TokenBlacklist::insert(row)
        .on_conflict_do_nothing_on([Column::Jti])
        .exec(db)
        .await?;
    Ok(())
}

pub async fn is_revoked(state: &AppState, jti: &str) -> Result<bool, AppError> {
    if let Some(redis) = &state.redis {
        match redis.exists(&redis_key(jti)).await {
            Ok(true) => return Ok(true),
            // Absent in Redis is not proof (Redis may have been flushed): ask the database.
            Ok(false) => {}
            Err(err) => tracing::warn!(error = %err, "revocation lookup in Redis failed"),
        }
    }
    let found = TokenBlacklist::find()
        .filter(Column::Jti.eq(jti))
        .one(&state.db)
        .await?;
    Ok(found.is_some())
}
