//! Start-up: connect, migrate, bind, and the route tree with its middleware.

use std::sync::Arc;

use anyhow::Context;
use migration::{Migrator, MigratorTrait};
use poem::{
    Endpoint, EndpointExt, IntoResponse, Route, Server,
    error::ResponseError,
    listener::{Acceptor, Listener, TcpAcceptor, TcpListener},
    middleware::{CatchPanic, NormalizePath, TrailingSlash},
};

use crate::{
    api::{API_PREFIX, api_service, finish_spec},
    auth::{
        jwt::TokenService,
        password::{self, Passwords},
    },
    cache::{CacheStore, ResponseCache, memory::MemoryStore, redis::RedisCacheStore},
    config::Settings,
    db,
    error::AppError,
    http::{
        middleware::{RequestPolicy, around_request},
        routes::RouteTable,
    },
    rate_limit::RateLimiter,
    redis_store::RedisStore,
    state::AppState,
};

pub struct Application {
    port: u16,
    acceptor: TcpAcceptor,
    state: AppState,
}

impl Application {
    /// Connects to the database (applying pending migrations) and Redis, and binds the
    /// listener, so that the real port is known before serving (tests bind port 0).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        anyhow::ensure!(
            jsonwebtoken::crypto::CryptoProvider::try_get_default().is_some(),
            "no JWT crypto backend is enabled"
        );
        let db = db::connect(&settings.database_url)
            .await
            .with_context(|| "cannot connect to DATABASE_URL".to_string())?;
        Migrator::up(&db, None)
            .await
            .context("applying database migrations")?;
        let redis = match &settings.redis_url {
            Some(url) => Some(
                RedisStore::open(url, &settings.redis_key_prefix).context("invalid REDIS_URL")?,
            ),
            None => None,
        };
        let routes = Arc::new(RouteTable::from_spec(&crate::api::spec_json()));
        let cache = response_cache(&settings, redis.as_ref(), routes.clone())?;
        let tokens = TokenService::new(&settings).context("SECRET_KEY is not usable")?;
        let limiter_redis = match &settings.redis_rate_limit_url {
            Some(url) if Some(url) == settings.redis_url.as_ref() => redis.clone(),
            Some(url) => Some(
                RedisStore::open(url, &settings.redis_key_prefix)
                    .context("invalid REDIS_RATE_LIMIT_URL")?,
            ),
            None => None,
        };
        let limiter =
            RateLimiter::new(&settings, db.clone(), limiter_redis, tokens.clone(), routes);
        tokio::task::spawn_blocking(password::warm_up).await?;

        let acceptor = TcpListener::bind(settings.bind_address())
            .into_acceptor()
            .await
            .with_context(|| format!("cannot listen on {}", settings.bind_address()))?;
        let port = acceptor
            .local_addr()
            .first()
            .and_then(|addr| addr.as_socket_addr().map(|a| a.port()))
            .context("the listener has no socket address")?;
        let state = AppState {
            cache,
            limiter,
            passwords: Passwords::from_settings(&settings),
            settings: Arc::new(settings),
            db,
            tokens,
            redis,
        };
        if let Some(redis) = &state.redis {
            warn_if_unreachable("REDIS_URL", redis.clone());
        }
        Ok(Self {
            port,
            acceptor,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until Ctrl-C / SIGTERM, then finishes in-flight requests.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let app = routes(self.state);
        Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(app, shutdown_signal(), None)
            .await
    }
}

/// The cache on `REDIS_CACHE_URL` (the `REDIS_URL` connection when they are the same), or in
/// process when no Redis is configured.
fn response_cache(
    settings: &Settings,
    redis: Option<&RedisStore>,
    routes: Arc<RouteTable>,
) -> anyhow::Result<ResponseCache> {
    let store: Arc<dyn CacheStore> = match &settings.redis_cache_url {
        Some(url) if Some(url) == settings.redis_url.as_ref() && redis.is_some() => {
            Arc::new(RedisCacheStore::new(redis.cloned().context("REDIS_URL")?))
        }
        Some(url) => Arc::new(RedisCacheStore::new(
            RedisStore::open(url, &settings.redis_key_prefix).context("invalid REDIS_CACHE_URL")?,
        )),
        None => Arc::new(MemoryStore::new(settings.cache_max_memory_bytes)),
    };
    Ok(ResponseCache::new(store, routes))
}

/// Start-up does not wait for Redis (every use of it has a fallback); an unreachable server is
/// reported once, and the connection keeps being retried on use.
fn warn_if_unreachable(variable: &'static str, redis: RedisStore) {
    tokio::spawn(async move {
        if let Err(err) = redis.ping().await {
            tracing::warn!(error = %err, "{variable} is unreachable; retrying in the background");
        }
    });
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// The whole HTTP application.
pub fn routes(state: AppState) -> impl Endpoint {
    let api = api_service(&state.settings.app);
    let spec = finish_spec(&api.spec());
    let mut route = Route::new();
    if state.settings.docs_enabled() {
        let served = spec.clone();
        route = route.nest("/docs", api.swagger_ui()).at(
            "/openapi.json",
            poem::endpoint::make_sync(move |_| {
                served
                    .clone()
                    .with_content_type("application/json; charset=utf-8")
            }),
        );
    }
    let policy = RequestPolicy::new(state.settings.client_cache_max_age, &spec);
    let route = route.nest(API_PREFIX, api);
    route
        .with(NormalizePath::new(TrailingSlash::Trim))
        .with(
            CatchPanic::new()
                .with_handler(|_| AppError::internal("a request handler panicked").as_response()),
        )
        .data(state)
        .around(move |next, req| around_request(next, req, policy.clone()))
}
