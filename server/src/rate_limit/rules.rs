//! The rules in memory: looked up on every limited request without a database query, and
//! reloaded when an admin changes them (here at once; on other instances when the version the
//! Redis counter returns moves on).

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use moka::sync::Cache;
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QuerySelect};

use crate::entities::{rate_limit, user};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub limit: u64,
    /// Seconds.
    pub period: u64,
}

#[derive(Default)]
struct Loaded {
    /// (tier id, sanitised path or template) → rule.
    rules: Arc<HashMap<(i64, String), Rule>>,
    /// The Redis rules version these rules reflect; `None` before Redis told one.
    version: Option<String>,
    ready: bool,
}

pub struct RuleBook {
    db: DatabaseConnection,
    loaded: RwLock<Loaded>,
    reloading: tokio::sync::Mutex<()>,
    /// User id → tier id, so a request costs no query; dropped with every reload, since a
    /// tier change is a rules change.
    user_tiers: Cache<i64, Option<i64>>,
}

impl RuleBook {
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            loaded: RwLock::default(),
            reloading: tokio::sync::Mutex::new(()),
            user_tiers: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(600))
                .build(),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Loaded> {
        self.loaded.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Loads the rules if they were never loaded, or if `seen` (the version Redis returned)
    /// differs from the one they reflect.
    pub async fn sync(&self, seen: Option<&str>) -> Result<bool, DbErr> {
        let stale = |loaded: &Loaded| {
            !loaded.ready || seen.is_some_and(|v| loaded.version.as_deref() != Some(v))
        };
        if !stale(&self.read()) {
            return Ok(false);
        }
        let _one_at_a_time = self.reloading.lock().await;
        if !stale(&self.read()) {
            return Ok(false);
        }
        self.reload(seen.map(str::to_string)).await?;
        Ok(true)
    }

    /// Reads every rule from the database (a short table: admins write it).
    pub async fn reload(&self, version: Option<String>) -> Result<(), DbErr> {
        let rows = rate_limit::Entity::find().all(&self.db).await?;
        let rules = rows
            .into_iter()
            .map(|row| {
                let rule = Rule {
                    limit: u64::try_from(row.limit).unwrap_or(1),
                    period: u64::try_from(row.period).unwrap_or(1),
                };
                ((row.tier_id, row.path), rule)
            })
            .collect();
        self.user_tiers.invalidate_all();
        let mut loaded = self.loaded.write().unwrap_or_else(|e| e.into_inner());
        *loaded = Loaded {
            rules: Arc::new(rules),
            version: version.or(loaded.version.take()),
            ready: true,
        };
        Ok(())
    }

    pub fn rule(&self, tier_id: i64, path: &str) -> Option<Rule> {
        self.read().rules.get(&(tier_id, path.to_string())).copied()
    }

    /// The tier of a live user, from memory when it can.
    pub async fn tier_of(&self, user_id: i64) -> Result<Option<i64>, DbErr> {
        if let Some(tier) = self.user_tiers.get(&user_id) {
            return Ok(tier);
        }
        let tier: Option<Option<i64>> = user::Entity::find_by_id(user_id)
            .filter(user::Column::IsDeleted.eq(false))
            .select_only()
            .column(user::Column::TierId)
            .into_tuple()
            .one(&self.db)
            .await?;
        let tier = tier.flatten();
        self.user_tiers.insert(user_id, tier);
        Ok(tier)
    }
}
