//! The API service as a library: `main.rs` only parses the command line and calls in here,
//! and the integration tests start [`app::Application`] in-process.

pub mod admin;
pub mod api;
pub mod app;
pub mod auth;
pub mod cache;
pub mod config;
pub mod db;
pub mod entities;
pub mod error;
pub mod http;
pub mod ops;
pub mod pagination;
pub mod posts;
pub mod queue;
pub mod rate_limit;
pub mod rate_limits;
pub mod redis_store;
pub mod state;
pub mod tasks;
pub mod telemetry;
pub mod tiers;
pub mod users;
pub mod validation;

pub use api::spec_json;
pub use app::Application;
pub use config::Settings;
