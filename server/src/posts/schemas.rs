//! Request and response bodies of the posts endpoints.

use chrono::{DateTime, Utc};
use poem_openapi::{
    Object,
    types::{Example, MaybeUndefined},
};
use serde::Deserialize;
use validator::{Validate, ValidationError};

use crate::{entities::post, http::responses::example_timestamp, validation};

/// A post as the API shows it.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct PostRead {
    /// The post's id, unique across users.
    pub id: i64,
    /// 2 to 30 characters.
    pub title: String,
    /// 1 to 63206 characters.
    pub text: String,
    /// A link to an image or other media; `null` for none.
    #[oai(nullable)]
    pub media_url: Option<String>,
    /// The id of the author.
    pub created_by_user_id: i64,
    /// When the post was created (UTC).
    pub created_at: DateTime<Utc>,
}

impl Example for PostRead {
    fn example() -> Self {
        let post = PostCreate::example();
        Self {
            id: 1,
            title: post.title,
            text: post.text,
            media_url: post.media_url,
            created_by_user_id: 1,
            created_at: example_timestamp(),
        }
    }
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
    /// 2 to 30 characters.
    #[oai(validator(min_length = 2, max_length = 30))]
    #[validate(length(min = 2, max = 30, message = "must be 2 to 30 characters"))]
    pub title: String,
    /// 1 to 63206 characters.
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
    /// 2 to 30 characters.
    #[oai(validator(min_length = 2, max_length = 30))]
    #[serde(default, deserialize_with = "crate::http::body::non_null")]
    #[validate(length(min = 2, max = 30, message = "must be 2 to 30 characters"))]
    pub title: Option<String>,
    /// 1 to 63206 characters.
    #[oai(validator(min_length = 1, max_length = 63206))]
    #[serde(default, deserialize_with = "crate::http::body::non_null")]
    #[validate(length(min = 1, max = 63206, message = "must be 1 to 63206 characters"))]
    pub text: Option<String>,
    /// An http(s) or ftp URL; `null` removes the media.
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
