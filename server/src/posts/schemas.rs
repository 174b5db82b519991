//! Request and response bodies of the posts endpoints.

use chrono::{DateTime, Utc};
use poem_openapi::{
    Object,
    types::{Example, MaybeUndefined},
};
use serde::Deserialize;
use validator::{Validate, ValidationError};

use crate::{entities::post, validation};

/// A post as the API shows it.
#[derive(Debug, Clone, Object)]
pub struct PostRead {
    pub id: i32,
    pub title: String,
    pub text: String,
    #[oai(nullable)]
    pub media_url: Option<String>,
    pub created_by_user_id: i32,
    pub created_at: DateTime<Utc>,
}

impl From<post::Model> for PostRead {
    fn from(post: post::Model) -> Self {
        Self {
            id: post.id,
            title: post.title,
            text: post.text,
            media_url: post.media_url,
            created_by_user_id: post.created_by_user_id,
            created_at: post.created_at,
        }
    }
}

/// A new post.
#[derive(Debug, Object, Deserialize, Validate)]
#[oai(example, skip_serializing_if_is_none)]
pub struct PostCreate {
    #[oai(validator(min_length = 2, max_length = 30))]
    #[validate(length(min = 2, max = 30, message = "must be 2 to 30 characters"))]
    pub title: String,
    #[oai(validator(min_length = 1, max_length = 63206))]
    #[validate(length(min = 1, max = 63206, message = "must be 1 to 63206 characters"))]
    pub text: String,
    /// An http(s) or ftp URL; `null` or absent for none.
    #[oai(nullable, validator(pattern = r"^(https?|ftp)://[^\s/$.?#].[^\s]*$"))]
    #[serde(default)]
    #[validate(custom(function = "validation::web_url"))]
    pub media_url: Option<String>,
}

/// Any subset of the fields. `media_url: null` removes the media; `null` is refused for the
/// others.
#[derive(Debug, Object, Deserialize, Validate)]
#[oai(example, skip_serializing_if_is_none)]
pub struct PostUpdate {
    #[oai(validator(min_length = 2, max_length = 30))]
    #[serde(default, deserialize_with = "crate::http::body::non_null")]
    #[validate(length(min = 2, max = 30, message = "must be 2 to 30 characters"))]
    pub title: Option<String>,
    #[oai(validator(min_length = 1, max_length = 63206))]
    #[serde(default, deserialize_with = "crate::http::body::non_null")]
    #[validate(length(min = 1, max = 63206, message = "must be 1 to 63206 characters"))]
    pub text: Option<String>,
    #[oai(validator(pattern = r"^(https?|ftp)://[^\s/$.?#].[^\s]*$"))]
    #[serde(default)]
    #[validate(custom(function = "media_url_change"))]
    pub media_url: MaybeUndefined<String>,
}

fn media_url_change(value: &MaybeUndefined<String>) -> Result<(), ValidationError> {
    match value {
        MaybeUndefined::Value(url) => validation::web_url(url),
        _ => Ok(()),
    }
}

impl Example for PostCreate {
    fn example() -> Self {
        Self {
            title: "Notes on the Engine".into(),
            text: "The Analytical Engine weaves algebraic patterns.".into(),
            media_url: Some("https://example.com/engine.png".into()),
        }
    }
}

impl Example for PostUpdate {
    fn example() -> Self {
        Self {
            title: Some("Notes on the Engine, revised".into()),
            text: None,
            media_url: MaybeUndefined::Undefined,
        }
    }
}
