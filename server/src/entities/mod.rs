//! sea-orm entities, one per table created by the `migration` crate.

pub mod post;
pub mod rate_limit;
pub mod tier;
pub mod token_blacklist;
pub mod user;
