//! Request and response bodies of the tiers endpoints.

use chrono::{DateTime, Utc};
use poem_openapi::{Object, types::Example};
use serde::Deserialize;
use validator::Validate;

use crate::{entities::tier, validation};

/// A tier as lists and reads show it.
#[derive(Debug, Clone, Object)]
pub struct TierRead {
    pub name: String,
    pub id: i32,
    pub created_at: DateTime<Utc>,
}

/// A tier as its creation returns it.
#[derive(Debug, Clone, Object)]
pub struct TierCreated {
    pub id: i32,
    pub name: String,
    pub created_at: DateTime<Utc>,
    #[oai(nullable)]
    pub updated_at: Option<DateTime<Utc>>,
}

impl From<tier::Model> for TierRead {
    fn from(tier: tier::Model) -> Self {
        Self {
            name: tier.name,
            id: tier.id,
            created_at: tier.created_at,
        }
    }
}

impl From<tier::Model> for TierCreated {
    fn from(tier: tier::Model) -> Self {
        Self {
            id: tier.id,
            name: tier.name,
            created_at: tier.created_at,
            updated_at: tier.updated_at,
        }
    }
}

/// A new tier.
#[derive(Debug, Object, Deserialize, Validate)]
#[oai(example, skip_serializing_if_is_none)]
pub struct TierCreate {
    /// 1 to 50 of a-z, 0-9, `_` and `-`.
    #[oai(validator(min_length = 1, max_length = 50, pattern = r"^[a-z0-9_-]+$"))]
    #[validate(
        length(min = 1, max = 50, message = "must be 1 to 50 characters"),
        regex(path = *validation::TIER_NAME, message = "must match ^[a-z0-9_-]+$")
    )]
    pub name: String,
}

/// A tier's new name.
#[derive(Debug, Object, Deserialize, Validate)]
#[oai(example, skip_serializing_if_is_none)]
pub struct TierUpdate {
    #[oai(validator(min_length = 1, max_length = 50, pattern = r"^[a-z0-9_-]+$"))]
    #[serde(default, deserialize_with = "crate::http::body::non_null")]
    #[validate(
        length(min = 1, max = 50, message = "must be 1 to 50 characters"),
        regex(path = *validation::TIER_NAME, message = "must match ^[a-z0-9_-]+$")
    )]
    pub name: Option<String>,
}

impl Example for TierCreate {
    fn example() -> Self {
        Self { name: "pro".into() }
    }
}

impl Example for TierUpdate {
    fn example() -> Self {
        Self {
            name: Some("premium".into()),
        }
    }
}
