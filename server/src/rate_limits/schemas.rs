//! Request and response bodies of the rate-limit endpoints.

use chrono::{DateTime, Utc};
use poem_openapi::{Object, types::Example};
use serde::Deserialize;
use validator::Validate;

use crate::entities::rate_limit;

/// A rule as lists and reads show it.
#[derive(Debug, Clone, Object)]
pub struct RateLimitRead {
    /// Sanitised: no `/` at either end, inner `/` as `_` (`api_v1_tasks_task`).
    pub path: String,
    /// Requests allowed per period.
    pub limit: i32,
    /// Seconds.
    pub period: i32,
    pub id: i32,
    pub tier_id: i32,
    pub name: String,
}

/// A rule as its creation returns it.
#[derive(Debug, Clone, Object)]
pub struct RateLimitCreated {
    pub path: String,
    pub limit: i32,
    pub period: i32,
    pub id: i32,
    pub tier_id: i32,
    pub name: String,
    pub created_at: DateTime<Utc>,
    #[oai(nullable)]
    pub updated_at: Option<DateTime<Utc>>,
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
    /// Defaults to `<path>:<limit>:<period>`.
    #[oai(validator(min_length = 1, max_length = 255))]
    #[serde(default, deserialize_with = "crate::http::body::non_null")]
    #[validate(length(min = 1, max = 255, message = "must be 1 to 255 characters"))]
    pub name: Option<String>,
}

/// Any subset of the fields; `null` is refused for all of them.
#[derive(Debug, Object, Deserialize, Validate)]
#[oai(example, skip_serializing_if_is_none)]
pub struct RateLimitUpdate {
    #[oai(validator(min_length = 1, max_length = 255))]
    #[serde(default, deserialize_with = "crate::http::body::non_null")]
    #[validate(
        length(min = 1, max = 255, message = "must be 1 to 255 characters"),
        custom(function = "super::service::path_not_empty")
    )]
    pub path: Option<String>,
    #[oai(validator(minimum(value = "1"), maximum(value = "1000000000")))]
    #[serde(default, deserialize_with = "crate::http::body::non_null")]
    #[validate(range(min = 1, max = 1_000_000_000, message = "must be 1 to 1000000000"))]
    pub limit: Option<i32>,
    #[oai(validator(minimum(value = "1"), maximum(value = "31536000")))]
    #[serde(default, deserialize_with = "crate::http::body::non_null")]
    #[validate(range(min = 1, max = 31_536_000, message = "must be 1 to 31536000"))]
    pub period: Option<i32>,
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
