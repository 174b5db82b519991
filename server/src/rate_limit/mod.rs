//! The rate limiter: an operation opts in with `transform = "rate_limited"` and declares the
//! 429 in its errors (`Errors<.., 429>`); the spec then documents the 429 and the
//! `X-RateLimit-*` headers for it (`api::finish_spec`).
//!
//! - Who: an authenticated user by id, with their tier's rule for the sanitised request path
//!   (or for the route's template, `api_v1_{username}_posts`; a concrete rule wins); no tier or
//!   no rule: the defaults. Anonymous clients by IP, with the defaults.
//! - How: a fixed window, `ratelimit:{user_id|ip}:{path}:{window_start}`, counted and expired
//!   in one atomic step, on Redis or in process.
//! - An exhausted key is remembered locally (for a second at most, and never past its window):
//!   a client hammering past its limit costs one Redis round trip a second, not one a request.
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
    config::{Cidr, RateLimitAlgorithm, Settings},
    error::AppError,
    http::routes::RouteTable,
    rate_limits::service::sanitize_path,
    redis_store::RedisStore,
    state::AppState,
    telemetry::metrics::Metrics,
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

/// Operations whose 429 is not the metering of every call (login's counts failures only):
/// their responses carry no `X-RateLimit-*` headers.
pub const UNMETERED_429: [&str; 1] = ["login"];

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

/// How long an exhausted key is answered locally at most. Within this, a client over its limit
/// costs no Redis round trip; after it, one round trip tells whether the window or the rules
/// (another instance's change) moved on.
const NEAR_CACHE_TTL: Duration = Duration::from_secs(1);

/// Near-cache entries: until their window ends, and never longer than `NEAR_CACHE_TTL`.
struct NearCacheExpiry;

impl Expiry<String, u64> for NearCacheExpiry {
    fn expire_after_create(&self, _: &String, reset_at: &u64, _: Instant) -> Option<Duration> {
        let window_left = Duration::from_secs(reset_at.saturating_sub(epoch_seconds()).max(1));
        Some(window_left.min(NEAR_CACHE_TTL))
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
    warned: Cache<(i64, String), ()>,
    trusted_proxies: Vec<Cidr>,
    tokens: TokenService,
    routes: Arc<RouteTable>,
    login_per_ip: Rule,
    login_per_username: Rule,
    algorithm: RateLimitAlgorithm,
    metrics: Metrics,
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
        metrics: Metrics,
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
                .expire_after(NearCacheExpiry)
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
            login_per_ip: Rule {
                limit: u64::from(settings.login_failures_per_ip),
                period: u64::from(settings.login_failure_window),
            },
            login_per_username: Rule {
                limit: u64::from(settings.login_failures_per_username),
                period: u64::from(settings.login_failure_window),
            },
            algorithm: settings.rate_limit_algorithm,
            metrics,
        }))
    }

    /// The rule for this client and path, the path its counter is kept under, and the tier
    /// whose rule it is (`None`: the defaults).
    async fn rule_for(
        &self,
        client: &Client,
        path: &str,
        template: Option<&str>,
    ) -> (Rule, String, Option<i64>) {
        let inner = &self.0;
        let Client::User(user_id) = client else {
            return (inner.defaults, path.to_string(), None);
        };
        let tier = inner.rules.tier_of(*user_id).await.unwrap_or_else(|err| {
            tracing::error!(error = %err, "rate limiter: cannot read the user's tier; using the defaults");
            None
        });
        if let Some(tier) = tier {
            if let Some(rule) = inner.rules.rule(tier, path) {
                return (rule, path.to_string(), Some(tier));
            }
            if let Some(template) = template
                && let Some(rule) = inner.rules.rule(tier, template)
            {
                return (rule, template.to_string(), Some(tier));
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
        (inner.defaults, path.to_string(), None)
    }

    /// Counts the request and decides.
    pub async fn check(&self, req: &Request) -> Decision {
        let inner = &self.0;
        let template = inner
            .routes
            .for_request(req)
            .map(|route| route.template.as_str());
        let (decision, tier) = self.decide(req, template).await;
        if inner.metrics.is_enabled() {
            let route = template.unwrap_or("unmatched");
            let rule = tier.map_or_else(|| "default".to_string(), |tier| format!("tier:{tier}"));
            inner
                .metrics
                .rate_limit_decision(route, rule, decision.allowed);
        }
        decision
    }

    /// The decision, and the tier whose rule made it (`None`: the defaults). `template` is the
    /// route's path template, when the request matched one.
    async fn decide(&self, req: &Request, template: Option<&str>) -> (Decision, Option<i64>) {
        let inner = &self.0;
        if let Err(err) = inner.rules.sync(None).await {
            tracing::error!(error = %err, "rate limiter: cannot load the rules");
        }
        let client = client::identify(req, &inner.tokens, &inner.trusted_proxies);
        let path = sanitize_path(req.uri().path());
        let template = template.map(sanitize_path);
        let (rule, counted_path, tier) = self.rule_for(&client, &path, template.as_deref()).await;
        if inner.algorithm == RateLimitAlgorithm::Gcra {
            return (self.check_gcra(&client, &counted_path, rule).await, tier);
        }
        let (key, reset_at) = window(&client, &counted_path, rule);
        let (decision, hit) = self.hit_rule(&key, rule, reset_at).await;
        // Another instance changed the rules: apply them to this very request.
        let Some(hit) = hit else {
            return (decision, tier);
        };
        let Some(version) = hit.rules_version else {
            return (decision, tier);
        };
        if !inner.rules.sync(Some(&version)).await.unwrap_or(false) {
            return (decision, tier);
        }
        let (rule, path, tier) = self.rule_for(&client, &path, template.as_deref()).await;
        let (new_key, reset_at) = window(&client, &path, rule);
        if new_key != key {
            return (self.hit_rule(&new_key, rule, reset_at).await.0, tier);
        }
        // The same counter: judge its count by the new rule.
        (judge(hit.count, rule, reset_at), tier)
    }

    /// The GCRA decision. A rules version that moved on is loaded for the next request (this
    /// one already spent its emission under the rule it was judged by).
    async fn check_gcra(&self, client: &Client, path: &str, rule: Rule) -> Decision {
        let inner = &self.0;
        let key = format!("ratelimit:{}:{path}", client.key());
        let near = exhausted_key(&key, rule);
        let now = epoch_seconds();
        if let Some(retry_at) = inner.exhausted.get(&near) {
            return Decision {
                allowed: false,
                limit: rule.limit,
                remaining: 0,
                reset_at: retry_at,
            };
        }
        let period = Duration::from_secs(rule.period);
        let hit = match &inner.redis {
            Some(redis) if self.redis_usable() => {
                match redis.gcra(&key, rule.limit, period).await {
                    Ok(hit) => {
                        self.redis_answered();
                        Some(hit)
                    }
                    Err(err) => {
                        self.redis_failed(&err);
                        None
                    }
                }
            }
            _ => None,
        };
        let hit = match hit {
            Some(hit) => hit,
            None => match inner.memory.gcra(&key, rule.limit, period).await {
                Ok(hit) => hit,
                Err(_) => return judge(0, rule, now + rule.period),
            },
        };
        if let Some(version) = &hit.rules_version
            && let Err(err) = inner.rules.sync(Some(version)).await
        {
            tracing::error!(error = %err, "rate limiter: cannot load the rules");
        }
        let seconds = |ms: u64| ms.div_ceil(1000);
        if !hit.allowed {
            // Retry-After is derived from the reset: the next request is allowed then.
            let retry_at = now + seconds(hit.retry_after_ms).max(1);
            inner.exhausted.insert(near, retry_at);
            return Decision {
                allowed: false,
                limit: rule.limit,
                remaining: 0,
                reset_at: retry_at,
            };
        }
        Decision {
            allowed: true,
            limit: rule.limit,
            remaining: hit.remaining,
            reset_at: now + seconds(hit.reset_after_ms),
        }
    }

    /// Counts one window of `rule` under `key`, with the near-cache in front (which answers
    /// without a count: no `Hit`).
    async fn hit_rule(&self, key: &str, rule: Rule, reset_at: u64) -> (Decision, Option<Hit>) {
        let inner = &self.0;
        if let Some(reset_at) = inner.exhausted.get(&exhausted_key(key, rule)) {
            let decision = Decision {
                allowed: false,
                limit: rule.limit,
                remaining: 0,
                reset_at,
            };
            return (decision, None);
        }
        let hit = self.count(key, reset_at).await;
        let decision = judge(hit.count, rule, reset_at);
        if !decision.allowed {
            inner.exhausted.insert(exhausted_key(key, rule), reset_at);
        }
        (decision, Some(hit))
    }

    /// Brute-force protection, before any password hashing: every attempt is counted as a
    /// failure per client address and per username (known or not, alike) until it succeeds.
    /// Over either limit: the 429 to answer.
    pub async fn login_attempt(
        &self,
        req: &Request,
        username: &str,
    ) -> Result<LoginAttempt, AppError> {
        let inner = &self.0;
        let ip = client::Client::Address(client::client_ip(req, &inner.trusted_proxies));
        // Usernames and emails are short; a longer value is cut, not stored whole.
        let username: String = username.trim().to_lowercase().chars().take(100).collect();
        let (ip_key, ip_reset) = window(&ip, "login_failures_ip", inner.login_per_ip);
        let user = format!("login_failures_user:{username}");
        let (user_key, user_reset) = window(
            &client::Client::Address(None),
            &user,
            inner.login_per_username,
        );
        let (by_ip, _) = self.hit_rule(&ip_key, inner.login_per_ip, ip_reset).await;
        let (by_user, _) = self
            .hit_rule(&user_key, inner.login_per_username, user_reset)
            .await;
        if !by_ip.allowed || !by_user.allowed {
            let retry_after = [by_ip, by_user]
                .iter()
                .filter(|d| !d.allowed)
                .map(Decision::retry_after)
                .max()
                .unwrap_or(1);
            return Err(AppError::RateLimited {
                retry_after_secs: retry_after,
            });
        }
        Ok(LoginAttempt {
            keys: [ip_key, user_key],
        })
    }

    /// A successful login is not a failure: its attempt is taken back.
    pub async fn login_succeeded(&self, attempt: LoginAttempt) {
        for key in &attempt.keys {
            let counted = match &self.0.redis {
                Some(redis) if self.redis_usable() => redis.undo(key).await,
                _ => self.0.memory.undo(key).await,
            };
            if let Err(err) = counted {
                tracing::warn!(error = %err, "login throttle: a successful attempt stays counted");
            }
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

    /// Whether the limiter's Redis answers (`None` without one).
    pub async fn ping(&self) -> Option<Result<(), store::StoreError>> {
        let redis = self.0.redis.as_ref()?;
        Some(redis.ping().await)
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

/// The decision for a window that has counted `count` requests.
fn judge(count: u64, rule: Rule, reset_at: u64) -> Decision {
    Decision {
        allowed: count <= rule.limit,
        limit: rule.limit,
        remaining: rule.limit.saturating_sub(count),
        reset_at,
    }
}

/// The counter keys of one login attempt.
#[derive(Debug)]
pub struct LoginAttempt {
    keys: [String; 2],
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
