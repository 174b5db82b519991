//! Request and response bodies of the users endpoints.

use poem_openapi::{Object, types::Example};
use serde::Deserialize;
use validator::Validate;

use crate::{
    entities::user,
    http::responses::example_timestamp,
    rate_limits::schemas::RateLimitRead,
    validation::{self, EmailAddress},
};

/// A user as the API shows it: never the password hash.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct UserRead {
    /// The user's id.
    pub id: i64,
    /// The id of the user's tier; `null` for none (the default rate limits apply).
    #[oai(nullable)]
    pub tier_id: Option<i64>,
    /// Display name.
    pub name: String,
    /// Unique handle, used in paths (`/user/{username}`).
    pub username: String,
    /// Unique email address (the domain lowercased).
    pub email: String,
    /// Link to the profile picture; a placeholder until the user sets one.
    pub profile_image_url: String,
}

impl Example for UserRead {
    fn example() -> Self {
        example_user().into()
    }
}

/// The user the spec's examples show.
fn example_user() -> user::Model {
    user::Model {
        id: 1,
        name: "Ada Lovelace".into(),
        username: "ada".into(),
        email: "ada@example.com".into(),
        hashed_password: String::new(),
        profile_image_url: "https://www.profileimageurl.com".into(),
        uuid: uuid::Uuid::nil(),
        created_at: example_timestamp(),
        updated_at: None,
        deleted_at: None,
        is_deleted: false,
        is_superuser: false,
        tier_id: Some(1),
    }
}

impl From<user::Model> for UserRead {
    fn from(user: user::Model) -> Self {
        Self {
            id: user.id,
            tier_id: user.tier_id,
            name: user.name,
            username: user.username,
            email: user.email,
            profile_image_url: user.profile_image_url,
        }
    }
}

/// A new user.
#[derive(Debug, Object, Deserialize, Validate)]
#[oai(example, skip_serializing_if_is_none)]
pub struct UserCreate {
    /// Display name, 2 to 30 characters.
    #[oai(validator(min_length = 2, max_length = 30))]
    #[validate(length(min = 2, max = 30, message = "must be 2 to 30 characters"))]
    pub name: String,
    /// Lowercase letters and digits; not a path segment of this API (`me`, `users`, ...).
    #[oai(validator(min_length = 2, max_length = 20, pattern = r"^[a-z0-9]+$"))]
    #[validate(
        length(min = 2, max = 20, message = "must be 2 to 20 characters"),
        regex(path = *validation::USERNAME, message = "must match ^[a-z0-9]+$"),
        custom(function = "validation::not_reserved_username")
    )]
    pub username: String,
    /// A valid address of at most 50 characters, not registered yet.
    #[validate(custom(function = "validation::email_address"))]
    pub email: EmailAddress,
    /// 8 to 128 characters; stored only as an argon2 hash.
    #[oai(validator(min_length = 8, max_length = 128))]
    #[validate(length(min = 8, max = 128, message = "must be 8 to 128 characters"))]
    pub password: String,
}

/// Any subset of the fields; `null` is not accepted for any of them.
#[derive(Debug, Object, Deserialize, Validate)]
#[oai(example, skip_serializing_if_is_none)]
pub struct UserUpdate {
    /// Display name, 2 to 30 characters.
    #[oai(validator(min_length = 2, max_length = 30))]
    #[serde(default, deserialize_with = "crate::http::body::non_null")]
    #[validate(length(min = 2, max = 30, message = "must be 2 to 30 characters"))]
    pub name: Option<String>,
    /// A new handle: lowercase letters and digits, not taken.
    #[oai(validator(min_length = 2, max_length = 20, pattern = r"^[a-z0-9]+$"))]
    #[serde(default, deserialize_with = "crate::http::body::non_null")]
    #[validate(
        length(min = 2, max = 20, message = "must be 2 to 20 characters"),
        regex(path = *validation::USERNAME, message = "must match ^[a-z0-9]+$"),
        custom(function = "validation::not_reserved_username")
    )]
    pub username: Option<String>,
    /// A new address, not registered yet.
    #[serde(default, deserialize_with = "crate::http::body::non_null")]
    #[validate(custom(function = "validation::email_address"))]
    pub email: Option<EmailAddress>,
    /// An http(s) or ftp URL of the profile picture.
    #[oai(validator(pattern = r"^(https?|ftp)://[^\s/$.?#].[^\s]*$"))]
    #[serde(default, deserialize_with = "crate::http::body::non_null")]
    #[validate(custom(function = "validation::web_url"))]
    pub profile_image_url: Option<String>,
}

/// A user with the rate limits of their tier (none without a tier).
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct UserRateLimits {
    /// The user's id.
    pub id: i64,
    /// The id of the user's tier; `null` for none.
    #[oai(nullable)]
    pub tier_id: Option<i64>,
    /// Display name.
    pub name: String,
    /// Unique handle.
    pub username: String,
    /// Unique email address.
    pub email: String,
    /// Link to the profile picture.
    pub profile_image_url: String,
    /// Every rule of the user's tier; paths without a rule get the default limit.
    pub tier_rate_limits: Vec<RateLimitRead>,
}

impl Example for UserRateLimits {
    fn example() -> Self {
        Self::new(example_user(), vec![RateLimitRead::example()])
    }
}

impl UserRateLimits {
    pub fn new(user: user::Model, tier_rate_limits: Vec<RateLimitRead>) -> Self {
        let user = UserRead::from(user);
        Self {
            id: user.id,
            tier_id: user.tier_id,
            name: user.name,
            username: user.username,
            email: user.email,
            profile_image_url: user.profile_image_url,
            tier_rate_limits,
        }
    }
}

/// The tier to move the user to.
#[derive(Debug, Object, Deserialize, Validate)]
#[oai(example, skip_serializing_if_is_none)]
pub struct UserTierUpdate {
    /// The id of an existing tier.
    pub tier_id: i64,
}

impl Example for UserCreate {
    fn example() -> Self {
        Self {
            name: "Ada Lovelace".into(),
            username: "ada".into(),
            email: EmailAddress("ada@example.com".into()),
            password: "correct horse battery".into(),
        }
    }
}

impl Example for UserUpdate {
    fn example() -> Self {
        Self {
            name: Some("Ada King".into()),
            username: None,
            email: None,
            profile_image_url: Some("https://example.com/ada.png".into()),
        }
    }
}

impl Example for UserTierUpdate {
    fn example() -> Self {
        Self { tier_id: 1 }
    }
}
