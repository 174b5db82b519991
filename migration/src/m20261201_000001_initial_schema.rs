//! The whole schema of the contract: tiers, users, posts, rate limits and revoked tokens.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tier {
    Table,
    Id,
    Name,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum User {
    Table,
    Id,
    Name,
    Username,
    Email,
    HashedPassword,
    ProfileImageUrl,
    Uuid,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
    IsDeleted,
    IsSuperuser,
    TierId,
}

#[derive(DeriveIden)]
enum Post {
    Table,
    Id,
    CreatedByUserId,
    Title,
    Text,
    Uuid,
    MediaUrl,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
    IsDeleted,
}

#[derive(DeriveIden)]
enum RateLimit {
    Table,
    Id,
    TierId,
    Name,
    Path,
    Limit,
    Period,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum TokenBlacklist {
    Table,
    Id,
    Jti,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Tier::Table)
                    .if_not_exists()
                    .col(pk_auto(Tier::Id))
                    .col(string_len_uniq(Tier::Name, 50))
                    .col(timestamp_with_time_zone(Tier::CreatedAt))
                    .col(timestamp_with_time_zone_null(Tier::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(User::Table)
                    .if_not_exists()
                    .col(pk_auto(User::Id))
                    .col(string_len(User::Name, 30))
                    .col(string_len_uniq(User::Username, 20))
                    .col(string_len_uniq(User::Email, 50))
                    .col(string(User::HashedPassword))
                    .col(string(User::ProfileImageUrl))
                    .col(uuid_uniq(User::Uuid))
                    .col(timestamp_with_time_zone(User::CreatedAt))
                    .col(timestamp_with_time_zone_null(User::UpdatedAt))
                    .col(timestamp_with_time_zone_null(User::DeletedAt))
                    .col(boolean(User::IsDeleted).default(false))
                    .col(boolean(User::IsSuperuser).default(false))
                    .col(integer_null(User::TierId))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_user_tier_id")
                            .from(User::Table, User::TierId)
                            .to(Tier::Table, Tier::Id)
                            // A tier with users on it cannot be deleted.
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        create_index(manager, "ix_user_tier_id", User::Table, User::TierId).await?;
        create_index(manager, "ix_user_is_deleted", User::Table, User::IsDeleted).await?;

        manager
            .create_table(
                Table::create()
                    .table(Post::Table)
                    .if_not_exists()
                    .col(pk_auto(Post::Id))
                    .col(integer(Post::CreatedByUserId))
                    .col(string_len(Post::Title, 30))
                    .col(string_len(Post::Text, 63206))
                    .col(uuid_uniq(Post::Uuid))
                    .col(string_null(Post::MediaUrl))
                    .col(timestamp_with_time_zone(Post::CreatedAt))
                    .col(timestamp_with_time_zone_null(Post::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Post::DeletedAt))
                    .col(boolean(Post::IsDeleted).default(false))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_post_created_by_user_id")
                            .from(Post::Table, Post::CreatedByUserId)
                            .to(User::Table, User::Id)
                            // Hard-deleting a user removes their posts with them.
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "ix_post_created_by_user_id",
            Post::Table,
            Post::CreatedByUserId,
        )
        .await?;
        create_index(manager, "ix_post_is_deleted", Post::Table, Post::IsDeleted).await?;

        manager
            .create_table(
                Table::create()
                    .table(RateLimit::Table)
                    .if_not_exists()
                    .col(pk_auto(RateLimit::Id))
                    .col(integer(RateLimit::TierId))
                    .col(string_len_uniq(RateLimit::Name, 255))
                    .col(string(RateLimit::Path))
                    .col(integer(RateLimit::Limit))
                    .col(integer(RateLimit::Period))
                    .col(timestamp_with_time_zone(RateLimit::CreatedAt))
                    .col(timestamp_with_time_zone_null(RateLimit::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_rate_limit_tier_id")
                            .from(RateLimit::Table, RateLimit::TierId)
                            .to(Tier::Table, Tier::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // One rule per tier and path; it also serves the limiter's lookup.
        manager
            .create_index(
                Index::create()
                    .name("ux_rate_limit_tier_id_path")
                    .table(RateLimit::Table)
                    .col(RateLimit::TierId)
                    .col(RateLimit::Path)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(TokenBlacklist::Table)
                    .if_not_exists()
                    .col(pk_auto(TokenBlacklist::Id))
                    .col(string_len_uniq(TokenBlacklist::Jti, 64))
                    .col(timestamp_with_time_zone(TokenBlacklist::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "ix_token_blacklist_expires_at",
            TokenBlacklist::Table,
            TokenBlacklist::ExpiresAt,
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            TokenBlacklist::Table.into_iden(),
            RateLimit::Table.into_iden(),
            Post::Table.into_iden(),
            User::Table.into_iden(),
            Tier::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

async fn create_index<T, C>(
    manager: &SchemaManager<'_>,
    name: &str,
    table: T,
    column: C,
) -> Result<(), DbErr>
where
    T: IntoIden + 'static,
    C: IntoIden + 'static,
{
    manager
        .create_index(
            Index::create()
                .name(name)
                .table(table)
                .col(column)
                .if_not_exists()
                .to_owned(),
        )
        .await
}
