//! Revoked tokens, by `jti`, until they would have expired anyway.
//!
//! The database is the one record: a revocation must survive a Redis flush or restart, and a
//! second store in front of it would not spare the query for the common, unrevoked token.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    sea_query::{Expr, ExprTrait, Query},
};

use crate::{
    entities::token_blacklist::{self, Column, Entity as TokenBlacklist},
    error::AppError,
};

/// Records a revocation; revoking twice is not an error. Expired rows are purged on the way.
pub async fn revoke(
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

/// A condition that holds while `jti` is not revoked, to narrow another query: the check then
/// costs no round trip of its own.
pub fn not_revoked(jti: &str) -> Expr {
    Expr::exists(
        Query::select()
            .expr(Expr::val(1))
            .from(TokenBlacklist)
            .and_where(Column::Jti.eq(jti))
            .to_owned(),
    )
    .not()
}
