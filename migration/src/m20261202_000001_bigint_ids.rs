//! Ids and the columns that refer to them become 64-bit, so no table runs out of ids at 2^31 and
//! clients generated from the spec use 64-bit integers throughout.
//!
//! SQLite stores every `INTEGER` in up to 64 bits already, so only PostgreSQL changes. There the
//! sequences behind the ids are widened too: a `serial` column keeps a 32-bit sequence when its
//! column type changes, an identity column's sequence follows on its own.

use sea_orm_migration::{prelude::*, sea_orm::DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// (table, column, whether a sequence generates it)
const ID_COLUMNS: &[(&str, &str, bool)] = &[
    ("tier", "id", true),
    ("user", "id", true),
    ("user", "tier_id", false),
    ("post", "id", true),
    ("post", "created_by_user_id", false),
    ("rate_limit", "id", true),
    ("rate_limit", "tier_id", false),
    ("token_blacklist", "id", true),
];

async fn set_type(manager: &SchemaManager<'_>, sql_type: &str) -> Result<(), DbErr> {
    if manager.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(());
    }
    let db = manager.get_connection();
    for (table, column, generated) in ID_COLUMNS {
        db.execute_unprepared(&format!(
            r#"ALTER TABLE "{table}" ALTER COLUMN "{column}" TYPE {sql_type}"#
        ))
        .await?;
        if *generated {
            db.execute_unprepared(&format!(
                r#"DO $$
                DECLARE seq text := pg_get_serial_sequence('"{table}"', '{column}');
                BEGIN
                    IF seq IS NOT NULL THEN
                        EXECUTE format('ALTER SEQUENCE %s AS {sql_type}', seq);
                    END IF;
                END $$"#
            ))
            .await?;
        }
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        set_type(manager, "bigint").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        set_type(manager, "integer").await
    }
}
