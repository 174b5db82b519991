//! Authentication: passwords, JWTs, revocation, the bearer scheme and the login endpoints.

pub mod jwt;
pub mod password;
pub mod revocation;
pub mod routes;
pub mod security;

pub use security::{AuthUser, BearerAuth};
