//! Rate-limit rules: for each tier, at most one rule per (sanitised) path.

pub mod routes;
pub mod schemas;
pub mod service;
