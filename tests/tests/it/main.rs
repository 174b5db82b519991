//! The one integration-test binary: each module drives the live server through the generated
//! client, one module per domain.

mod helpers;

mod auth;
mod authorization;
mod cache;
mod cache_outage;
mod cache_store;
mod connections;
mod hardening;
mod limiter_store;
mod metrics;
mod ops;
mod posts;
mod queue_store;
mod rate_limit;
mod scale_out;
mod schema;
mod shutdown;
mod spec;
mod tasks;
mod tiers;
mod users;
