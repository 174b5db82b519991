use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "rate_limit")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub tier_id: i64,
    #[sea_orm(unique)]
    pub name: String,
    /// Sanitised: no leading or trailing `/`, inner `/` replaced by `_`.
    pub path: String,
    pub limit: i32,
    /// Seconds.
    pub period: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::tier::Entity",
        from = "Column::TierId",
        to = "super::tier::Column::Id"
    )]
    Tier,
}

impl Related<super::tier::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Tier.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
