//! HTTP plumbing shared by every domain: body extractors, middleware, common responses.

pub mod body;
pub mod cors;
pub mod docs;
pub mod metrics;
pub mod middleware;
pub mod responses;
pub mod routes;
pub mod server;
