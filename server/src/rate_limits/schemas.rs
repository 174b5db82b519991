//! Request and response bodies of the rate-limit endpoints.

use chrono::{DateTime, Utc};
use poem_openapi::{Object, types::Example};
use serde::Deserialize;
use validator::Validate;

use crate::{entities::rate_limit, http::responses::example_timestamp};

/// A rule as lists and reads show it.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct RateLimitRead {
    /// Sanitised: no `/` at either end, inner `/` as `_` (`api_v1_tasks_task`).
    pub path: String,
    /// Requests allowed per period.
    pub limit: i32,
    /// The window, in seconds.
    pub period: i32,
    /// The rule's id.
    pub id: i64,
    /// The id of the tier the rule belongs to.
    pub tier_id: i64,
    /// Unique name of the rule.
    pub name: String,
}

/// A rule as its creation returns it.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct RateLimitCreated {
    /// Sanitised: no `/` at either end, inner `/` as `_` (`api_v1_tasks_task`).
    pub path: String,
    /// Requests allowed per period.
    pub limit: i32,
    /// The window, in seconds.
    pub period: i32,
    /// The rule's id.
    pub id: i64,
    /// The id of the tier the rule belongs to.
    pub tier_id: i64,
    /// Unique name of the rule; `<path>:<limit>:<period>` unless one was given.
    pub name: String,
    /// When the rule was created (UTC).
    pub created_at: DateTime<Utc>,
    /// When the rule was last changed; `null` until then.
    #[oai(nullable)]
    pub updated_at: Option<DateTime<Utc>>,
}

/// The rule the spec's examples show.
fn example_rule() -> rate_limit::Model {
    rate_limit::Model {
        id: 1,
        tier_id: 1,
        name: "api_v1_tasks_task:10:3600".into(),
        path: "api_v1_tasks_task".into(),
        limit: 10,
        period: 3600,
        created_at: example_timestamp(),
        updated_at: None,
    }
}

impl Example for RateLimitRead {
    fn example() -> Self {
        example_rule().into()
    }
}

impl Example for RateLimitCreated {
    fn example() -> Self {
        example_rule().into()
    }
}

impl From<rate_limit::Model> for RateLimitRead {
    fn from(rule: rate_limit::Model) -> Self {
        Self {
            path: rule.path,
            limit: rule.limit,
            period: rule.period,
            id: rule.id,
            tier_id: rule.tier_id,
            name: rule.name,
        }
    }
}

impl From<rate_limit::Model> for RateLimitCreated {
    fn from(rule: rate_limit::Model) -> Self {
        Self {
            path: rule.path,
            limit: rule.limit,
            period: rule.period,
            id: rule.id,
            tier_id: rule.tier_id,
            name: rule.name,
            created_at: rule.created_at,
            updated_at: rule.updated_at,
        }
    }
}

/// A new rate-limit rule for a tier.
#[derive(Debug, Object, Deserialize, Validate)]
#[oai(example, skip_serializing_if_is_none)]
pub struct RateLimitCreate {
    /// The request path, as sent or sanitised (`/api/v1/tasks/task` or `api_v1_tasks_task`).
    #[oai(validator(min_length = 1, max_length = 255))]
    #[validate(
        length(min = 1, max = 255, message = "must be 1 to 255 characters"),
        custom(function = "super::service::path_not_empty")
    )]
    pub path: String,
    /// Requests allowed per period.
    #[oai(validator(minimum(value = "1"), maximum(value = "1000000000")))]
    #[validate(range(min = 1, max = 1_000_000_000, message = "must be 1 to 1000000000"))]
    pub limit: i32,
    /// Seconds, up to a year.
    #[oai(validator(minimum(value = "1"), maximum(value = "31536000")))]
    #[validate(range(min = 1, max = 31_536_000, message = "must be 1 to 31536000"))]
    pub period: i32,
    /// Defaults to `<path>:<limit>:<period>`; required when that would be longer than 255
    /// characters.
    #[oai(validator(min_length = 1, max_length = 255))]
    #[serde(default, deserialize_with = "crate::http::body::non_null")]
    #[validate(length(min = 1, max = 255, message = "must be 1 to 255 characters"))]
    pub name: Option<String>,
}

/// Any subset of the fields; `null` is refused for all of them.
#[derive(Debug, Object, Deserialize, Validate)]
#[oai(example, skip_serializing_if_is_none)]
pub struct RateLimitUpdate {
    /// The request path, as sent or sanitised; not the path of another rule of the tier.
    #[oai(validator(min_length = 1, max_length = 255))]
    #[serde(default, deserialize_with = "crate::http::body::non_null")]
    #[validate(
        length(min = 1, max = 255, message = "must be 1 to 255 characters"),
        custom(function = "super::service::path_not_empty")
    )]
    pub path: Option<String>,
    /// Requests allowed per period.
    #[oai(validator(minimum(value = "1"), maximum(value = "1000000000")))]
    #[serde(default, deserialize_with = "crate::http::body::non_null")]
    #[validate(range(min = 1, max = 1_000_000_000, message = "must be 1 to 1000000000"))]
    pub limit: Option<i32>,
    /// The window, in seconds, up to a year.
    #[oai(validator(minimum(value = "1"), maximum(value = "31536000")))]
    #[serde(default, deserialize_with = "crate::http::body::non_null")]
    #[validate(range(min = 1, max = 31_536_000, message = "must be 1 to 31536000"))]
    pub period: Option<i32>,
    /// A new unique name.
    #[oai(validator(min_length = 1, max_length = 255))]
    #[serde(default, deserialize_with = "crate::http::body::non_null")]
    #[validate(length(min = 1, max = 255, message = "must be 1 to 255 characters"))]
    pub name: Option<String>,
}

impl Example for RateLimitCreate {
    fn example() -> Self {
        Self {
            path: "api/v1/tasks/task".into(),
            limit: 10,
            period: 3600,
            name: None,
        }
    }
}

impl Example for RateLimitUpdate {
    fn example() -> Self {
        Self {
            path: None,
            limit: Some(20),
            period: None,
            name: None,
        }
    }
}
