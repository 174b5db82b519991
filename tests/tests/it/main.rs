//! The one integration-test binary: each module drives the live server through the generated
//! client, one module per domain.

mod helpers;

mod auth;
mod authorization;
mod cache;
mod cache_outage;
mod cache_store;
mod hardening;
mod limiter_store;
mod ops;
mod posts;
mod queue_store;
mod rate_limit;
mod scale_out;
mod schema;
mod spec;
mod tasks;
mod tiers;
mod users;
