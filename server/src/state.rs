//! What every handler can reach: configuration, the database, the token service, Redis.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::{
    auth::{jwt::TokenService, password::Passwords},
    cache::ResponseCache,
    config::Settings,
    queue::QueueBackend,
    rate_limit::RateLimiter,
    redis_store::RedisStore,
};

#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: DatabaseConnection,
    pub tokens: TokenService,
    pub passwords: Passwords,
    /// `None` when no `REDIS_URL` is configured: the in-process backends are used instead.
    pub redis: Option<RedisStore>,
    pub cache: ResponseCache,
    pub limiter: RateLimiter,
    pub queue: Arc<dyn QueueBackend>,
}
