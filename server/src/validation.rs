//! Field rules shared by request bodies (used from `#[validate(...)]` attributes).

use std::{borrow::Cow, sync::LazyLock};

use poem_openapi::{
    registry::{MetaSchema, MetaSchemaRef},
    types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type},
};
use regex::Regex;
use validator::{ValidateEmail, ValidationError};

pub static USERNAME: LazyLock<Regex> = LazyLock::new(|| compile(r"^[a-z0-9]+$"));
pub static URL: LazyLock<Regex> = LazyLock::new(|| compile(r"^(https?|ftp)://[^\s/$.?#].[^\s]*$"));
pub static TIER_NAME: LazyLock<Regex> = LazyLock::new(|| compile(r"^[a-z0-9_-]+$"));

fn compile(pattern: &str) -> Regex {
    // The patterns are constants; a typo must fail the first test that touches them.
    Regex::new(pattern).unwrap_or_else(|err| panic!("invalid built-in pattern {pattern}: {err}"))
}

/// Static path segments of this API: a user named like one would shadow or be shadowed by it.
pub const RESERVED_USERNAMES: &[&str] = &[
    "user", "users", "tier", "tiers", "tasks", "db_user", "login", "logout", "health", "ready",
    "docs", "me",
];

/// A link stored for others to follow (`profile_image_url`, `media_url`): the contract's pattern,
/// and a URL that really parses with a host (the pattern alone lets `http://[x` through).
pub fn web_url(value: &str) -> Result<(), ValidationError> {
    let parses = url::Url::parse(value).is_ok_and(|url| url.host().is_some());
    if URL.is_match(value) && parses {
        return Ok(());
    }
    Err(ValidationError::new("url").with_message(Cow::Borrowed("must be an http(s) or ftp URL")))
}

pub fn not_reserved_username(username: &str) -> Result<(), ValidationError> {
    if RESERVED_USERNAMES.contains(&username) {
        return Err(ValidationError::new("reserved")
            .with_message(Cow::Borrowed("This username is reserved")));
    }
    Ok(())
}

/// Emails compare case-insensitively in the domain part, so it is stored lowercased.
pub fn normalize_email(email: &str) -> String {
    let email = email.trim();
    match email.rsplit_once('@') {
        Some((local, domain)) => format!("{local}@{}", domain.to_ascii_lowercase()),
        None => email.to_string(),
    }
}

pub const EMAIL_MAX_LENGTH: usize = 50;

/// An email address in a request body: a string with `format: email` in the spec, checked by
/// [`email_address`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct EmailAddress(pub String);

impl EmailAddress {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Type for EmailAddress {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        Cow::Borrowed("string_email")
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            format: Some("email"),
            max_length: Some(EMAIL_MAX_LENGTH),
            ..MetaSchema::new("string")
        }))
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

// Only the spec uses these: bodies are decoded with serde (see `http::body`).
impl ParseFromJSON for EmailAddress {
    fn parse_from_json(value: Option<serde_json::Value>) -> ParseResult<Self> {
        String::parse_from_json(value)
            .map(Self)
            .map_err(ParseError::propagate)
    }
}

impl ToJSON for EmailAddress {
    fn to_json(&self) -> Option<serde_json::Value> {
        self.0.to_json()
    }
}

pub fn email_address(email: &EmailAddress) -> Result<(), ValidationError> {
    let email = email.as_str();
    if email.chars().count() > EMAIL_MAX_LENGTH {
        return Err(ValidationError::new("length")
            .with_message(Cow::Borrowed("must be at most 50 characters")));
    }
    if !email.validate_email() {
        return Err(ValidationError::new("email")
            .with_message(Cow::Borrowed("must be a valid email address")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_the_contract() {
        assert!(USERNAME.is_match("alice42"));
        assert!(!USERNAME.is_match("Alice"));
        assert!(!USERNAME.is_match("al ice"));
        assert!(URL.is_match("https://example.com/a.png"));
        assert!(URL.is_match("ftp://files.example.com"));
        assert!(!URL.is_match("javascript:alert(1)"));
        assert!(!URL.is_match("https://"));
        assert!(TIER_NAME.is_match("pro-2_x"));
        assert!(!TIER_NAME.is_match("Pro"));
    }

    #[test]
    fn web_urls_match_the_pattern_and_parse() {
        assert!(web_url("https://example.com/a.png").is_ok());
        assert!(web_url("ftp://files.example.com/x").is_ok());
        assert!(web_url("http://[x").is_err(), "an unclosed IPv6 host");
        assert!(web_url("javascript:alert(1)").is_err());
        assert!(web_url("https://").is_err());
    }

    #[test]
    fn reserved_names_are_refused() {
        assert!(not_reserved_username("me").is_err());
        assert!(not_reserved_username("alice").is_ok());
    }

    #[test]
    fn email_addresses_are_checked_for_shape_and_length() {
        let check = |s: &str| email_address(&EmailAddress(s.into()));
        assert!(check("ada@example.com").is_ok());
        assert!(check("").is_err());
        assert!(check("no-at-sign").is_err());
        assert!(check(&format!("{}@example.com", "a".repeat(40))).is_err());
    }

    #[test]
    fn email_domain_is_lowercased() {
        assert_eq!(normalize_email(" Bob@Example.COM "), "Bob@example.com");
    }
}
