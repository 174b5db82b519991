//! Tiers: categories of users, each with its own rate limits.

pub mod routes;
pub mod schemas;
pub mod service;
