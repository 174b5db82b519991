//! The rate limiter: an operation opts in with `transform = "rate_limited"` and declares the
//! 429 in its errors (`Errors<.., 429>`); the spec then documents the 429 and the
//! `X-RateLimit-*` headers for it (`api::finish_spec`).
//!
//! - Who: an authenticated user by id, with their tier's rule for the sanitised request path
//!   (or for the route's template, `api_v1_{username}_posts`; a concrete rule wins); no tier or
//!   no rule: the defaults. Anonymous clients by IP, with the defaults.
//! - How: a fixed window, `ratelimit:{user_id|ip}:{path}:{window_start}`, counted and expired
//!   in one atomic step, on Redis or in process.
//! - An exhausted key is remembered locally until its window ends: a client hammering past its
//!   limit costs no Redis round trip.
//! - Redis failing: counting falls back to the in-process counters (limits then hold per
//!   instance), with one error logged per outage; Redis is retried a second later.
//! - Rules live in memory ([`rules::RuleBook`]); admin writes declare `transform =
//!   "rules_changed"`, which reloads them here and bumps a version in Redis that every
//!   instance's next counter round trip returns.

pub mod client;
pub mod rules;
pub mod store;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use moka::{Expiry, sync::Cache};
use poem::{
    Endpoint, IntoResponse, Request, Response, Result,
    error::ResponseError,
    http::{HeaderMap, HeaderValue},
};
use sea_orm::DatabaseConnection;

use crate::{
    auth::jwt::TokenService,
    config::{Cidr, Settings},
    error::AppError,
    http::routes::RouteTable,
    rate_limits::service::sanitize_path,
    redis_store::RedisStore,
    state::AppState,
};
use client::Client;
use rules::{Rule, RuleBook};
use store::{CounterStore, Hit, MemoryCounter, RedisCounter};

/// The headers every response of a limited operation carries, with their spec descriptions.
pub const HEADERS: [(&str, &str); 3] = [
    (
        "X-RateLimit-Limit",
        "Requests allowed in the current window",
    ),
    (
        "X-RateLimit-Remaining",
        "Requests left in the current window",
    ),
    (
        "X-RateLimit-Reset",
        "When the current window ends, in Unix epoch seconds",
    ),
];

/// The outcome for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u64,
    pub remaining: u64,
    /// Epoch seconds.
    pub reset_at: u64,
}

impl Decision {
    fn retry_after(&self) -> u64 {
        self.reset_at.saturating_sub(epoch_seconds()).max(1)
    }

    pub fn write_headers(&self, headers: &mut HeaderMap) {
        for (name, value) in HEADERS
            .iter()
            .zip([self.limit, self.remaining, self.reset_at])
        {
            headers.insert(name.0, HeaderValue::from(value));
        }
    }
}

fn epoch_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Entries that expire at the epoch second they hold.
struct UntilEpoch;

impl Expiry<String, u64> for UntilEpoch {
    fn expire_after_create(&self, _: &String, reset_at: &u64, _: Instant) -> Option<Duration> {
        Some(Duration::from_secs(
            reset_at.saturating_sub(epoch_seconds()).max(1),
        ))
    }
}

#[derive(Default)]
struct RedisHealth {
    degraded: AtomicBool,
    retry_at: Mutex<Option<Instant>>,
}

struct Inner {
    redis: Option<RedisCounter>,
    memory: MemoryCounter,
    redis_health: RedisHealth,
    /// Keys over their limit, until their window ends.
    exhausted: Cache<String, u64>,
    rules: RuleBook,
    defaults: Rule,
    /// User and path pairs warned about running on the defaults, for one default period.
    warned: Cache<(i32, String), ()>,
    trusted_proxies: Vec<Cidr>,
    tokens: TokenService,
    routes: Arc<RouteTable>,
}

#[derive(Clone)]
pub struct RateLimiter(Arc<Inner>);

const REDIS_RETRY: Duration = Duration::from_secs(1);

impl RateLimiter {
    pub fn new(
        settings: &Settings,
        db: DatabaseConnection,
        redis: Option<RedisStore>,
        tokens: TokenService,
        routes: Arc<RouteTable>,
    ) -> Self {
        let defaults = Rule {
            limit: u64::from(settings.default_rate_limit_limit),
            period: u64::from(settings.default_rate_limit_period),
        };
        Self(Arc::new(Inner {
            redis: redis.map(RedisCounter::new),
            memory: MemoryCounter::default(),
            redis_health: RedisHealth::default(),
            exhausted: Cache::builder()
                .max_capacity(1_000_000)
                .expire_after(UntilEpoch)
                .build(),
            rules: RuleBook::new(db),
            defaults,
            warned: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(defaults.period))
                .build(),
            trusted_proxies: settings.trusted_proxies.clone(),
            tokens,
            routes,
        }))
    }

    /// The rule for this client and path, and the path its counter is kept under.
    async fn rule_for(
        &self,
        client: &Client,
        path: &str,
        template: Option<&str>,
    ) -> (Rule, String) {
        let inner = &self.0;
        let Client::User(user_id) = client else {
            return (inner.defaults, path.to_string());
        };
        let tier = inner.rules.tier_of(*user_id).await.unwrap_or_else(|err| {
            tracing::error!(error = %err, "rate limiter: cannot read the user's tier; using the defaults");
            None
        });
        if let Some(tier) = tier {
            if let Some(rule) = inner.rules.rule(tier, path) {
                return (rule, path.to_string());
            }
            if let Some(template) = template
                && let Some(rule) = inner.rules.rule(tier, template)
            {
                return (rule, template.to_string());
            }
        }
        let warn_key = (*user_id, path.to_string());
        if inner.warned.get(&warn_key).is_none() {
            inner.warned.insert(warn_key, ());
            tracing::warn!(
                user_id,
                path,
                ?tier,
                "no rate-limit rule for this user's tier and path: using the defaults"
            );
        }
        (inner.defaults, path.to_string())
    }

    /// Counts the request and decides.
    pub async fn check(&self, req: &Request) -> Decision {
        let inner = &self.0;
        if let Err(err) = inner.rules.sync(None).await {
            tracing::error!(error = %err, "rate limiter: cannot load the rules");
        }
        let client = client::identify(req, &inner.tokens, &inner.trusted_proxies);
        let path = sanitize_path(req.uri().path());
        let template = inner
            .routes
            .for_request(req)
            .map(|route| sanitize_path(&route.template));
        let (mut rule, counted_path) = self.rule_for(&client, &path, template.as_deref()).await;
        let (mut key, mut reset_at) = window(&client, &counted_path, rule);
        if let Some(reset_at) = inner.exhausted.get(&key) {
            return Decision {
                allowed: false,
                limit: rule.limit,
                remaining: 0,
                reset_at,
            };
        }
        let mut hit = self.count(&key, reset_at).await;
        // Another instance changed the rules: apply them to this very request.
        if let Some(version) = hit.rules_version.as_deref()
            && inner.rules.sync(Some(version)).await.unwrap_or(false)
        {
            let (new_rule, new_path) = self.rule_for(&client, &path, template.as_deref()).await;
            let (new_key, new_reset_at) = window(&client, &new_path, new_rule);
            if new_key != key {
                hit = self.count(&new_key, new_reset_at).await;
            }
            (rule, key, reset_at) = (new_rule, new_key, new_reset_at);
        }
        let allowed = hit.count <= rule.limit;
        if !allowed {
            inner.exhausted.insert(exhausted_key(&key, rule), reset_at);
        }
        Decision {
            allowed,
            limit: rule.limit,
            remaining: rule.limit.saturating_sub(hit.count),
            reset_at,
        }
    }

    /// Counts on Redis, or in process while Redis fails.
    async fn count(&self, key: &str, reset_at: u64) -> Hit {
        let inner = &self.0;
        let ttl = Duration::from_secs(reset_at.saturating_sub(epoch_seconds()).max(1));
        if let Some(redis) = &inner.redis
            && self.redis_usable()
        {
            match redis.hit(key, ttl).await {
                Ok(hit) => {
                    self.redis_answered();
                    return hit;
                }
                Err(err) => self.redis_failed(&err),
            }
        }
        // The in-process store cannot fail.
        inner.memory.hit(key, ttl).await.unwrap_or(Hit {
            count: 1,
            rules_version: None,
        })
    }

    fn redis_usable(&self) -> bool {
        let health = &self.0.redis_health;
        if !health.degraded.load(Ordering::Acquire) {
            return true;
        }
        let retry_at = *health.retry_at.lock().unwrap_or_else(|e| e.into_inner());
        retry_at.is_none_or(|at| Instant::now() >= at)
    }

    fn redis_failed(&self, err: &store::StoreError) {
        let health = &self.0.redis_health;
        if !health.degraded.swap(true, Ordering::AcqRel) {
            tracing::error!(error = %err,
                "rate limiter: Redis unavailable; counting in process (limits hold per instance)");
        }
        *health.retry_at.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Instant::now() + REDIS_RETRY);
    }

    fn redis_answered(&self) {
        if self.0.redis_health.degraded.swap(false, Ordering::AcqRel) {
            tracing::info!("rate limiter: Redis available again");
        }
    }

    /// After an admin change: reload here, and tell the other instances.
    pub async fn rules_changed(&self) {
        let inner = &self.0;
        if let Some(redis) = &inner.redis
            && let Err(err) = redis.bump_rules_version().await
        {
            tracing::error!(error = %err, "rate limiter: other instances will not see this rule change until Redis answers");
        }
        if let Err(err) = inner.rules.reload(None).await {
            tracing::error!(error = %err, "rate limiter: cannot reload the rules");
        }
    }
}

/// A key is exhausted for one limit: a raised limit (a rule change, a tier move) is not.
fn exhausted_key(key: &str, rule: Rule) -> String {
    format!("{key}|{}", rule.limit)
}

/// The counter key of the client's current window for this rule, and when the window ends.
fn window(client: &Client, path: &str, rule: Rule) -> (String, u64) {
    let now = epoch_seconds();
    let start = now - now % rule.period.max(1);
    let key = format!("ratelimit:{}:{path}:{start}", client.key());
    (key, start + rule.period)
}

/// The transform of a limited operation.
pub fn rate_limited(ep: impl Endpoint + 'static) -> impl Endpoint {
    RateLimited(ep)
}

pub struct RateLimited<E>(E);

impl<E: Endpoint> Endpoint for RateLimited<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Response> {
        let Some(limiter) = req.data::<AppState>().map(|state| state.limiter.clone()) else {
            return self.0.call(req).await.map(IntoResponse::into_response);
        };
        let decision = limiter.check(&req).await;
        let mut response = if decision.allowed {
            // Errors become responses here, so that they carry the headers too.
            match self.0.call(req).await {
                Ok(response) => response.into_response(),
                Err(err) => AppError::from_poem(err).as_response(),
            }
        } else {
            AppError::RateLimited {
                retry_after_secs: decision.retry_after(),
            }
            .as_response()
        };
        decision.write_headers(response.headers_mut());
        Ok(response)
    }
}

/// The transform of an admin write that changes rules or tiers: after a 2xx, every instance's
/// limiter applies the change on its next request.
pub fn rules_changed(ep: impl Endpoint + 'static) -> impl Endpoint {
    RulesChanged(ep)
}

pub struct RulesChanged<E>(E);

impl<E: Endpoint> Endpoint for RulesChanged<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Response> {
        let limiter = req.data::<AppState>().map(|state| state.limiter.clone());
        let response = self.0.call(req).await?.into_response();
        if response.status().is_success()
            && let Some(limiter) = limiter
        {
            limiter.rules_changed().await;
        }
        Ok(response)
    }
}
