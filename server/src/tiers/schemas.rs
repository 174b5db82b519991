//! Request and response bodies of the tiers endpoints.

use chrono::{DateTime, Utc};
use poem_openapi::{Object, types::Example};
use serde::Deserialize;
use validator::Validate;

use crate::{entities::tier, http::responses::example_timestamp, validation};

/// A tier as lists and reads show it.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct TierRead {
    /// Unique name, used in paths (`/tier/{name}`).
    pub name: String,
    /// The tier's id, which `PATCH /user/{username}/tier` takes.
    pub id: i64,
    /// When the tier was created (UTC).
    pub created_at: DateTime<Utc>,
}

/// A tier as its creation returns it.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct TierCreated {
    /// The tier's id, which `PATCH /user/{username}/tier` takes.
    pub id: i64,
    /// Unique name, used in paths (`/tier/{name}`).
    pub name: String,
    /// When the tier was created (UTC).
    pub created_at: DateTime<Utc>,
    /// When the tier was last changed; `null` until then.
    #[oai(nullable)]
    pub updated_at: Option<DateTime<Utc>>,
}

impl Example for TierRead {
    fn example() -> Self {
        Self {
            name: "pro".into(),
            id: 1,
            created_at: example_timestamp(),
        }
    }
}

impl Example for TierCreated {
    fn example() -> Self {
        Self {
            id: 1,
            name: "pro".into(),
            created_at: example_timestamp(),
            updated_at: None,
        }
    }
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
    /// A new unique name: 1 to 50 of a-z, 0-9, `_` and `-`.
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
