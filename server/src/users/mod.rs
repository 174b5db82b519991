//! Users: sign-up, profiles, soft and hard deletion.

pub mod routes;
pub mod schemas;
pub mod service;
