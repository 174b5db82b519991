//! Database connection.

use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection};

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
