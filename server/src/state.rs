//! What every handler can reach: configuration, the database, the token service, Redis.

use std::{ops::Deref, sync::Arc};

use sea_orm::DatabaseConnection;

use crate::{
    auth::{jwt::TokenService, password::Passwords},
    cache::ResponseCache,
    config::Settings,
    queue::QueueBackend,
    rate_limit::RateLimiter,
    redis_store::RedisStore,
    telemetry::metrics::Metrics,
};

/// A handle on the services, cloned into every request: one reference count, however many
/// services there are.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    pub fn new(services: Services) -> Self {
        Self(Arc::new(services))
    }
}

impl Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

pub struct Services {
    pub settings: Arc<Settings>,
    pub db: DatabaseConnection,
    pub tokens: TokenService,
    pub passwords: Passwords,
    /// `None` when no `REDIS_URL` is configured: the in-process backends are used instead.
    pub redis: Option<RedisStore>,
    pub cache: ResponseCache,
    pub limiter: RateLimiter,
    pub queue: Arc<dyn QueueBackend>,
    /// What `/metrics` shows; records nothing when metrics are off.
    pub metrics: Metrics,
}
