//! Field rules shared by request bodies (used from `#[validate(...)]` attributes).

use std::{borrow::Cow, sync::LazyLock};

use regex::Regex;
use validator::ValidationError;

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
    fn reserved_names_are_refused() {
        assert!(not_reserved_username("me").is_err());
        assert!(not_reserved_username("alice").is_ok());
    }

    #[test]
    fn email_domain_is_lowercased() {
        assert_eq!(normalize_email(" Bob@Example.COM "), "Bob@example.com");
    }
}
