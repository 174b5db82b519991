//! Posts: written by their author, read by anyone, soft-deleted by their author and purged by a
//! superuser. Reads are cached; writes invalidate (see the policies in `routes.rs`).

pub mod routes;
pub mod schemas;
pub mod service;
