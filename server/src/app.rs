//! Start-up: connect, migrate, bind, and the route tree with its middleware.

use std::sync::Arc;

use anyhow::Context;
use migration::{Migrator, MigratorTrait};
use poem::{
    Endpoint, EndpointExt, IntoResponse, Route,
    error::ResponseError,
    http::StatusCode,
    middleware::{CatchPanic, Compression},
};
use tokio::sync::watch;

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
        cors::CorsPolicy,
        docs::DocPages,
        metrics,
        middleware::{RequestLimits, RequestPolicy, around_request},
        routes::RouteTable,
        server::serve,
    },
    queue::{
        QueueBackend,
        memory::MemoryQueue,
        redis::RedisQueue,
        worker::{self, WorkerConfig},
    },
    rate_limit::RateLimiter,
    redis_store::RedisStore,
    state::{AppState, Services},
    tasks::jobs,
    telemetry::metrics::Metrics,
};

pub struct Application {
    port: u16,
    listener: tokio::net::TcpListener,
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
        let metrics = if settings.metrics_enabled {
            Metrics::enabled()
        } else {
            Metrics::disabled()
        };
        let routes = Arc::new(RouteTable::from_spec(&crate::api::spec_json()));
        let cache = response_cache(&settings, redis.as_ref(), routes.clone())?
            .with_metrics(metrics.clone());
        let tokens = TokenService::new(&settings).context("SECRET_KEY is not usable")?;
        let limiter_redis = match &settings.redis_rate_limit_url {
            Some(url) if Some(url) == settings.redis_url.as_ref() => redis.clone(),
            Some(url) => Some(
                RedisStore::open(url, &settings.redis_key_prefix)
                    .context("invalid REDIS_RATE_LIMIT_URL")?,
            ),
            None => None,
        };
        let limiter = RateLimiter::new(
            &settings,
            db.clone(),
            limiter_redis,
            tokens.clone(),
            routes,
            metrics.clone(),
        );
        let queue: Arc<dyn QueueBackend> = match &settings.redis_queue_url {
            Some(url) if Some(url) == settings.redis_url.as_ref() && redis.is_some() => Arc::new(
                RedisQueue::new(redis.clone().context("REDIS_URL")?, settings.queue.max_jobs),
            ),
            Some(url) => Arc::new(RedisQueue::new(
                RedisStore::open(url, &settings.redis_key_prefix)
                    .context("invalid REDIS_QUEUE_URL")?,
                settings.queue.max_jobs,
            )),
            None => Arc::new(MemoryQueue::new(settings.queue.max_jobs)),
        };
        tokio::task::spawn_blocking(password::warm_up).await?;

        let listener = tokio::net::TcpListener::bind(settings.bind_address())
            .await
            .with_context(|| format!("cannot listen on {}", settings.bind_address()))?;
        let port = listener
            .local_addr()
            .context("the listener has no socket address")?
            .port();
        let state = AppState::new(Services {
            cache,
            limiter,
            queue,
            metrics,
            passwords: Passwords::from_settings(&settings),
            settings: Arc::new(settings),
            db,
            tokens,
            redis,
        });
        if let Some(redis) = &state.redis {
            warn_if_unreachable("REDIS_URL", redis.clone());
        }
        Ok(Self {
            port,
            listener,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until Ctrl-C / SIGTERM, then finishes in-flight requests (for at most
    /// `SHUTDOWN_GRACE_SECONDS`); with `RUN_WORKER`, also runs the queue's worker, which stops
    /// claiming at the same signal and hands back what it cannot finish within its grace period.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let settings = self.state.settings.clone();
        let (stop, stopped) = watch::channel(false);
        let worker = settings.run_worker.then(|| {
            tokio::spawn(worker::run(
                self.state.queue.clone(),
                jobs::registry(&settings),
                worker_config(&settings, self.state.metrics.clone()),
                stopped.clone(),
            ))
        });
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = stop.send(true);
        });
        let mut server_stopped = stopped;
        let app = routes(self.state);
        let served = serve(
            self.listener,
            app,
            settings.connections.clone(),
            async move {
                let _ = server_stopped.wait_for(|stop| *stop).await;
            },
        )
        .await;
        if let Some(worker) = worker {
            let _ = worker.await;
        }
        served
    }
}

pub fn worker_config(settings: &Settings, metrics: Metrics) -> WorkerConfig {
    let queue = &settings.queue;
    WorkerConfig {
        concurrency: queue.worker_concurrency,
        lease: queue.lease,
        poll_interval: queue.poll_interval,
        job_timeout: queue.job_timeout,
        retry_backoff: queue.retry_backoff,
        keep_result: queue.keep_result,
        shutdown_grace: queue.shutdown_grace,
        metrics,
    }
}

/// `server worker`: a worker process of its own, on the Redis queue.
pub async fn run_worker(settings: Settings) -> anyhow::Result<()> {
    let url = settings.redis_queue_url.as_deref().context(
        "a separate worker needs REDIS_QUEUE_URL or REDIS_URL; without Redis, `server serve` runs the jobs",
    )?;
    let redis =
        RedisStore::open(url, &settings.redis_key_prefix).context("invalid REDIS_QUEUE_URL")?;
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    let backend: Arc<dyn QueueBackend> = Arc::new(RedisQueue::new(redis, settings.queue.max_jobs));
    worker::run(
        backend,
        jobs::registry(&settings),
        // A worker process serves no /metrics.
        worker_config(&settings, Metrics::disabled()),
        stopped,
    )
    .await;
    Ok(())
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
    let cache = ResponseCache::new(store, routes);
    Ok(if settings.response_cache_enabled {
        cache
    } else {
        cache.turned_off()
    })
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
        route = DocPages::new(&api, &spec).mount(route).at(
            "/openapi.json",
            poem::endpoint::make_sync(move |_| {
                served
                    .clone()
                    .with_content_type("application/json; charset=utf-8")
            }),
        );
    }
    let policy = Arc::new(
        RequestPolicy::new(state.settings.client_cache_max_age, &spec)
            .with_cors(CorsPolicy::new(&state.settings.cors_origins))
            .with_limits(RequestLimits {
                max_body_bytes: state.settings.max_body_bytes,
                max_uri_bytes: state.settings.max_uri_bytes,
                max_header_bytes: state.settings.max_header_bytes,
            })
            .with_request_timeout(state.settings.request_timeout),
    );
    if state.metrics.is_enabled() {
        route = route.at(metrics::PATH, metrics::Scrape);
    }
    // Browsers ask for it on every page; there is none, and that is not an error.
    let route = route.nest(API_PREFIX, api).at(
        "/favicon.ico",
        poem::endpoint::make_sync(|_| StatusCode::NO_CONTENT),
    );
    route
        .with(Compression::new())
        .with(
            CatchPanic::new()
                .with_handler(|_| AppError::internal("a request handler panicked").as_response()),
        )
        .around(move |next, req| around_request(next, req, policy.clone(), state.clone()))
}
