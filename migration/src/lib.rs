//! Database schema migrations, run by `server migrate` and at `server serve` start-up.
//! They are written against sea-query, so the same migration runs on SQLite and PostgreSQL.

pub use sea_orm_migration::prelude::*;

mod m20261201_000001_initial_schema;
mod m20261202_000001_bigint_ids;
mod m20261202_000002_listing_indexes;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261201_000001_initial_schema::Migration),
            Box::new(m20261202_000001_bigint_ids::Migration),
            Box::new(m20261202_000002_listing_indexes::Migration),
        ]
    }
}
