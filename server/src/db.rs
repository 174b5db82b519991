//! Database connection.

use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbBackend};

/// SQLite URLs without a `mode` would refuse to create a missing file: add `mode=rwc`.
fn with_create_mode(url: &str) -> String {
    if !url.starts_with("sqlite:") || url.contains("mode=") || url.contains(":memory:") {
        return url.to_string();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}mode=rwc")
}

pub async fn connect(url: &str) -> Result<DatabaseConnection, sea_orm::DbErr> {
    let mut options = ConnectOptions::new(with_create_mode(url));
    options
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging_level(tracing::log::LevelFilter::Debug);
    Database::connect(options).await
}

/// How the connection pool is used right now, for `/metrics`.
#[derive(Debug, Clone, Copy)]
pub struct PoolUsage {
    pub open: u32,
    pub idle: usize,
    pub max: u32,
}

pub fn pool_usage(db: &DatabaseConnection) -> Option<PoolUsage> {
    // The pool getters panic on another backend: each is called only for its own.
    match db.get_database_backend() {
        DbBackend::Postgres => Some(usage_of(db.get_postgres_connection_pool())),
        DbBackend::Sqlite => Some(usage_of(db.get_sqlite_connection_pool())),
        _ => None,
    }
}

fn usage_of<Db: sea_orm::sqlx::Database>(pool: &sea_orm::sqlx::Pool<Db>) -> PoolUsage {
    PoolUsage {
        open: pool.size(),
        idle: pool.num_idle(),
        max: pool.options().get_max_connections(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_files_are_created_when_missing() {
        assert_eq!(
            with_create_mode("sqlite://app.db"),
            "sqlite://app.db?mode=rwc"
        );
        assert_eq!(
            with_create_mode("sqlite://a.db?x=1"),
            "sqlite://a.db?x=1&mode=rwc"
        );
        assert_eq!(
            with_create_mode("sqlite://a.db?mode=ro"),
            "sqlite://a.db?mode=ro"
        );
        assert_eq!(with_create_mode("postgres://h/db"), "postgres://h/db");
    }
}
