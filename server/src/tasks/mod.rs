//! Tasks: background jobs enqueued over HTTP and read back by id.

pub mod jobs;
pub mod routes;
