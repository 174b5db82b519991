//! Settings read from the environment (and an optional `.env` file), with the contract's
//! names and defaults. A bad value stops start-up with a message naming the variable.

use std::{net::IpAddr, str::FromStr, time::Duration};

use ipnet::IpNet;

use crate::http::server::ConnectionLimits;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid value for {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("{name} must be set when ENVIRONMENT is {environment}")]
    Missing {
        name: &'static str,
        environment: &'static str,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Local,
    Staging,
    Production,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Staging => "staging",
            Self::Production => "production",
        }
    }
}

impl FromStr for Environment {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "local" => Ok(Self::Local),
            "staging" => Ok(Self::Staging),
            "production" => Ok(Self::Production),
            _ => Err("expected one of local, staging, production".into()),
        }
    }
}

/// How the API rate limits count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitAlgorithm {
    /// The original's: `limit` per aligned window of `period` seconds.
    FixedWindow,
    /// Generic cell rate: a burst of `limit`, then one request per `period / limit`.
    Gcra,
}

impl FromStr for RateLimitAlgorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "fixed_window" | "fixed-window" => Ok(Self::FixedWindow),
            "gcra" => Ok(Self::Gcra),
            _ => Err("expected fixed_window or gcra".into()),
        }
    }
}

/// A network in CIDR notation; a bare address is the network of that one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr(pub IpNet);

impl Cidr {
    pub fn contains(&self, addr: &IpAddr) -> bool {
        self.0.contains(addr)
    }
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains('/') {
            s.parse::<IpNet>().map(Self).map_err(|e| e.to_string())
        } else {
            s.parse::<IpAddr>()
                .map(|addr| Self(IpNet::from(addr)))
                .map_err(|e| e.to_string())
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "pretty" => Ok(Self::Pretty),
            "json" => Ok(Self::Json),
            _ => Err("expected pretty or json".into()),
        }
    }
}

/// The signing algorithm for JWTs; only the HMAC family, since the key is one shared secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtAlgorithm {
    HS256,
    HS384,
    HS512,
}

impl FromStr for JwtAlgorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "HS256" => Ok(Self::HS256),
            "HS384" => Ok(Self::HS384),
            "HS512" => Ok(Self::HS512),
            _ => Err("expected HS256, HS384 or HS512".into()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct AdminSettings {
    pub name: String,
    pub email: String,
    pub username: String,
    pub password: Secret,
}

/// A setting that must never reach a log line: its `Debug` shows `[redacted]`, so settings
/// can be printed whole.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_string())
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

/// The API's description in the spec (Markdown): what a reader of Swagger UI needs first.
const API_DESCRIPTION: &str = "\
Users, posts, JWT auth, tiers with per-tier, per-path rate limits, a response cache and a \
background task queue.

**Authentication.** `POST /api/v1/login` with a username (or email) and password returns an \
access token: send it as `Authorization: Bearer <token>`. In Swagger UI, *Authorize* logs in \
with the password flow. `POST /api/v1/logout` revokes it; `POST /api/v1/refresh` trades the \
refresh token for a new one.

**Errors** are JSON: `{\"detail\": \"<message>\"}`, or for validation errors (422) a list \
of `{loc, msg, type}`. Each error response lists its messages as examples.

**Rate limits.** Limited operations answer 429 with `Retry-After` past the limit of the \
caller's tier for that path, and every response of theirs carries `X-RateLimit-Limit`, \
`X-RateLimit-Remaining` and `X-RateLimit-Reset`.

**Caching.** Post reads are served from a cache that every write to the post invalidates.

**Lists** take `page` (from 1) and `items_per_page` (1 to 100), and return `{data, \
total_count, has_more, page, items_per_page}`, ordered by id.";

#[derive(Debug, Clone)]
pub struct AppInfo {
    pub name: String,
    pub description: String,
    pub version: String,
    pub contact_name: Option<String>,
    pub contact_email: Option<String>,
    pub license_name: Option<String>,
    pub license_url: Option<String>,
}

impl Default for AppInfo {
    /// The values the committed spec is derived with, whatever the environment says.
    fn default() -> Self {
        Self {
            name: "Rust API boilerplate".into(),
            description: API_DESCRIPTION.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            contact_name: None,
            contact_email: None,
            license_name: Some("MIT".into()),
            license_url: Some("https://opensource.org/licenses/MIT".into()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub environment: Environment,
    pub host: String,
    pub port: u16,
    pub database_url: String,
    pub redis_url: Option<String>,
    pub redis_cache_url: Option<String>,
    pub redis_queue_url: Option<String>,
    pub redis_rate_limit_url: Option<String>,
    /// Prepended to every Redis key (not in the original's settings: lets deployments and
    /// test runs share one Redis server).
    pub redis_key_prefix: String,
    pub secret_key: Secret,
    pub algorithm: JwtAlgorithm,
    pub access_token_expire: Duration,
    pub refresh_token_expire: Duration,
    pub admin: AdminSettings,
    pub tier_name: String,
    pub default_rate_limit_limit: u32,
    pub default_rate_limit_period: u32,
    pub client_cache_max_age: u32,
    /// Peers whose `X-Forwarded-For` is believed: CIDRs, or single addresses.
    pub trusted_proxies: Vec<Cidr>,
    /// Browser origins allowed to call the API from their pages (`CORS_ORIGINS`); empty: none.
    pub cors_origins: Vec<CorsOrigin>,
    /// The largest request body accepted (`MAX_BODY_BYTES`); larger ones are refused with 413.
    pub max_body_bytes: usize,
    /// How long a request may run before it is answered 503 (`REQUEST_TIMEOUT_MS`).
    pub request_timeout: Duration,
    /// The longest request target, path and query (`MAX_URI_BYTES`); longer ones get 414.
    pub max_uri_bytes: usize,
    /// The largest request headers, names and values (`MAX_HEADER_BYTES`); larger ones get 431.
    pub max_header_bytes: usize,
    /// What the connection loop bounds: connections, header time, drain time.
    pub connections: ConnectionLimits,
    /// `/metrics` is served and recorded (`METRICS_ENABLED`; default: in `local`, or when a
    /// token is set).
    pub metrics_enabled: bool,
    /// The bearer token `/metrics` requires (`METRICS_TOKEN`); unset: none.
    pub metrics_token: Option<Secret>,
    pub app: AppInfo,
    pub log_format: LogFormat,
    pub sample_task_delay: Duration,
    pub run_worker: bool,
    /// Password hashes allowed to run at once (each takes a core and ~19 MiB); default: the
    /// cores but one.
    pub password_hash_concurrency: usize,
    /// How long a login or sign-up waits for a hashing slot before a 503.
    pub password_hash_max_wait: Duration,
    /// The in-process response cache's bound, in bytes of keys and values.
    pub cache_max_memory_bytes: u64,
    /// Off: every cached operation goes to the database (for debugging, and to measure misses).
    pub response_cache_enabled: bool,
    /// Failed logins allowed per client address, and per username, in one window (seconds).
    pub login_failures_per_ip: u32,
    pub login_failures_per_username: u32,
    pub login_failure_window: u32,
    pub rate_limit_algorithm: RateLimitAlgorithm,
    pub queue: QueueSettings,
}

/// The task queue and its workers.
#[derive(Debug, Clone)]
pub struct QueueSettings {
    /// Jobs waiting or running, at most; enqueueing past it answers 503.
    pub max_jobs: u64,
    pub keep_result: Duration,
    pub max_tries: u32,
    pub job_timeout: Duration,
    pub lease: Duration,
    pub retry_backoff: Duration,
    pub poll_interval: Duration,
    pub worker_concurrency: usize,
    pub shutdown_grace: Duration,
}

/// A web origin as browsers send it in `Origin`: `scheme://host[:port]`, nothing more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsOrigin(String);

impl CorsOrigin {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for CorsOrigin {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let url = url::Url::parse(s).map_err(|err| err.to_string())?;
        let origin = url.origin();
        if !origin.is_tuple() || !matches!(url.scheme(), "http" | "https") {
            return Err("not an http(s) origin".into());
        }
        let serialized = origin.ascii_serialization();
        if serialized != s.trim_end_matches('/') {
            return Err(format!(
                "an origin is scheme://host[:port], as in {serialized:?}"
            ));
        }
        Ok(Self(serialized))
    }
}

/// `MAX_BODY_BYTES` when unset: the longest valid body (a post) is far below it.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// `MAX_URI_BYTES` when unset: the longest valid request target (a task message of 1,000
/// four-byte characters, percent-encoded: 12,000 bytes) fits.
pub const DEFAULT_MAX_URI_BYTES: usize = 16 * 1024;

/// `MAX_HEADER_BYTES` when unset: a bearer token is a few hundred bytes.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 * 1024;

/// The shortest `SECRET_KEY` accepted outside `ENVIRONMENT=local`.
const MIN_SECRET_KEY_BYTES: usize = 32;

/// The key used when none is configured; only ever accepted with `ENVIRONMENT=local`.
const LOCAL_SECRET_KEY: &str = "local-development-secret-key-change-me";

impl Settings {
    /// Reads the process environment, after loading `.env` if there is one.
    pub fn from_env() -> Result<Self, ConfigError> {
        // A missing .env file is normal; a malformed one is worth a warning but not fatal.
        if let Err(err) = dotenvy::dotenv()
            && !err.not_found()
        {
            eprintln!("warning: .env not loaded: {err}");
        }
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds settings from any key lookup: tests pass a map instead of the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let environment: Environment = env.parse("ENVIRONMENT", Environment::Local)?;
        let secret_key = match env.string("SECRET_KEY") {
            // A short HMAC key can be brute-forced from one token; 32 bytes is SHA-256's size.
            Some(key) if key.len() < MIN_SECRET_KEY_BYTES && environment != Environment::Local => {
                return Err(ConfigError::Invalid {
                    name: "SECRET_KEY",
                    reason: format!(
                        "{} bytes; at least {MIN_SECRET_KEY_BYTES} are required when ENVIRONMENT is {}",
                        key.len(),
                        environment.as_str()
                    ),
                });
            }
            Some(key) => key,
            None if environment == Environment::Local => LOCAL_SECRET_KEY.to_string(),
            None => {
                return Err(ConfigError::Missing {
                    name: "SECRET_KEY",
                    environment: environment.as_str(),
                });
            }
        };
        let defaults = AppInfo::default();
        let redis_url = env.string("REDIS_URL");
        let max_uri_bytes = env.positive("MAX_URI_BYTES", DEFAULT_MAX_URI_BYTES)?;
        let max_header_bytes = env.positive("MAX_HEADER_BYTES", DEFAULT_MAX_HEADER_BYTES)?;
        let metrics_token = env
            .string("METRICS_TOKEN")
            .filter(|token| !token.is_empty());
        let metrics_enabled = env.parse_bool(
            "METRICS_ENABLED",
            environment == Environment::Local || metrics_token.is_some(),
        )?;
        Ok(Self {
            environment,
            host: env.string("HOST").unwrap_or_else(|| "127.0.0.1".into()),
            port: env.parse("PORT", 8000)?,
            database_url: env
                .string("DATABASE_URL")
                .unwrap_or_else(|| "sqlite://app.db?mode=rwc".into()),
            redis_cache_url: env.string("REDIS_CACHE_URL").or_else(|| redis_url.clone()),
            redis_queue_url: env.string("REDIS_QUEUE_URL").or_else(|| redis_url.clone()),
            redis_rate_limit_url: env
                .string("REDIS_RATE_LIMIT_URL")
                .or_else(|| redis_url.clone()),
            redis_url,
            redis_key_prefix: env.string("REDIS_KEY_PREFIX").unwrap_or_default(),
            secret_key: secret_key.into(),
            algorithm: env.parse("ALGORITHM", JwtAlgorithm::HS256)?,
            access_token_expire: Duration::from_secs(
                60 * env.positive::<u64>("ACCESS_TOKEN_EXPIRE_MINUTES", 30)?,
            ),
            refresh_token_expire: Duration::from_secs(
                86_400 * env.positive::<u64>("REFRESH_TOKEN_EXPIRE_DAYS", 7)?,
            ),
            admin: AdminSettings {
                name: env.string("ADMIN_NAME").unwrap_or_else(|| "Admin".into()),
                email: env
                    .string("ADMIN_EMAIL")
                    .unwrap_or_else(|| "admin@example.com".into()),
                username: env
                    .string("ADMIN_USERNAME")
                    .unwrap_or_else(|| "admin".into()),
                password: env
                    .string("ADMIN_PASSWORD")
                    .unwrap_or_else(|| "!Ch4ng3Th1sP4ssW0rd!".into())
                    .into(),
            },
            tier_name: env.string("TIER_NAME").unwrap_or_else(|| "free".into()),
            default_rate_limit_limit: env.positive("DEFAULT_RATE_LIMIT_LIMIT", 10)?,
            default_rate_limit_period: env.positive("DEFAULT_RATE_LIMIT_PERIOD", 3600)?,
            client_cache_max_age: env.parse("CLIENT_CACHE_MAX_AGE", 60)?,
            trusted_proxies: env.list("TRUSTED_PROXIES")?,
            cors_origins: env.list("CORS_ORIGINS")?,
            max_body_bytes: env.positive("MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)?,
            request_timeout: Duration::from_millis(env.positive("REQUEST_TIMEOUT_MS", 30_000)?),
            max_uri_bytes,
            max_header_bytes,
            connections: ConnectionLimits {
                max_connections: env.positive("MAX_CONNECTIONS", 4096)?,
                header_read_timeout: Duration::from_millis(
                    env.positive("HEADER_READ_TIMEOUT_MS", 10_000)?,
                ),
                // Room for a request a little over the JSON limits, so that those answer it;
                // hyper refuses what is far over, without reading more.
                max_header_buffer_bytes: 2 * (max_uri_bytes + max_header_bytes),
                shutdown_grace: Duration::from_secs(env.parse("SHUTDOWN_GRACE_SECONDS", 30)?),
            },
            metrics_enabled,
            metrics_token: metrics_token.map(Secret::from),
            app: AppInfo {
                name: env.string("APP_NAME").unwrap_or(defaults.name),
                description: env
                    .string("APP_DESCRIPTION")
                    .unwrap_or(defaults.description),
                version: env.string("APP_VERSION").unwrap_or(defaults.version),
                contact_name: env.string("CONTACT_NAME"),
                contact_email: env.string("CONTACT_EMAIL"),
                // The default URL belongs to the default licence only.
                license_url: env
                    .string("LICENSE_URL")
                    .or(match env.string("LICENSE_NAME") {
                        None => defaults.license_url,
                        Some(_) => None,
                    }),
                license_name: env.string("LICENSE_NAME").or(defaults.license_name),
            },
            log_format: env.parse("LOG_FORMAT", LogFormat::Pretty)?,
            sample_task_delay: Duration::from_millis(env.parse("SAMPLE_TASK_DELAY_MS", 5000)?),
            run_worker: env.parse_bool("RUN_WORKER", true)?,
            // One core is left to every other request: hashing all cores away made the rest of
            // the API slow (see the login_flood benchmark).
            password_hash_concurrency: env.positive(
                "PASSWORD_HASH_CONCURRENCY",
                std::thread::available_parallelism()
                    .map_or(1, |cores| usize::from(cores).saturating_sub(1).max(1)),
            )?,
            password_hash_max_wait: Duration::from_millis(
                env.positive("PASSWORD_HASH_MAX_WAIT_MS", 1000)?,
            ),
            cache_max_memory_bytes: env.positive("CACHE_MAX_MEMORY_BYTES", 64 * 1024 * 1024)?,
            response_cache_enabled: env.parse_bool("RESPONSE_CACHE_ENABLED", true)?,
            login_failures_per_ip: env.positive("LOGIN_FAILURES_PER_IP", 50)?,
            login_failures_per_username: env.positive("LOGIN_FAILURES_PER_USERNAME", 10)?,
            login_failure_window: env.positive("LOGIN_FAILURE_WINDOW", 900)?,
            rate_limit_algorithm: env
                .parse("RATE_LIMIT_ALGORITHM", RateLimitAlgorithm::FixedWindow)?,
            queue: QueueSettings {
                max_jobs: env.positive("QUEUE_MAX_JOBS", 10_000)?,
                keep_result: Duration::from_secs(env.positive("QUEUE_KEEP_RESULT_SECONDS", 3600)?),
                max_tries: env.positive("QUEUE_MAX_TRIES", 5)?,
                job_timeout: Duration::from_secs(env.positive("QUEUE_JOB_TIMEOUT_SECONDS", 300)?),
                lease: Duration::from_millis(env.positive("QUEUE_LEASE_MS", 30_000)?),
                retry_backoff: Duration::from_millis(env.positive("QUEUE_RETRY_BACKOFF_MS", 1000)?),
                poll_interval: Duration::from_millis(env.positive("QUEUE_POLL_INTERVAL_MS", 500)?),
                worker_concurrency: env.positive("WORKER_CONCURRENCY", 10)?,
                shutdown_grace: Duration::from_secs(
                    env.parse("WORKER_SHUTDOWN_GRACE_SECONDS", 30)?,
                ),
            },
        })
    }

    pub fn docs_enabled(&self) -> bool {
        self.environment != Environment::Production
    }

    pub fn bind_address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    /// A set, non-blank value.
    fn string(&self, name: &str) -> Option<String> {
        (self.0)(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    fn parse<T>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        match self.string(name) {
            None => Ok(default),
            Some(raw) => raw.parse().map_err(|err: T::Err| ConfigError::Invalid {
                name,
                reason: format!("{raw:?}: {err}"),
            }),
        }
    }

    fn positive<T>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + Default,
        T::Err: std::fmt::Display,
    {
        let value = self.parse(name, default)?;
        if value <= T::default() {
            return Err(ConfigError::Invalid {
                name,
                reason: "must be greater than zero".into(),
            });
        }
        Ok(value)
    }

    fn parse_bool(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.string(name).map(|v| v.to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if matches!(v.as_str(), "1" | "true" | "yes" | "on") => Ok(true),
            Some(v) if matches!(v.as_str(), "0" | "false" | "no" | "off") => Ok(false),
            Some(v) => Err(ConfigError::Invalid {
                name,
                reason: format!("{v:?}: expected true or false"),
            }),
        }
    }

    fn list<T>(&self, name: &'static str) -> Result<Vec<T>, ConfigError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        let Some(raw) = self.string(name) else {
            return Ok(Vec::new());
        };
        raw.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| {
                item.parse().map_err(|err: T::Err| ConfigError::Invalid {
                    name,
                    reason: format!("{item:?}: {err}"),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_need_no_configuration() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.environment, Environment::Local);
        assert_eq!(s.bind_address(), "127.0.0.1:8000");
        assert!(s.database_url.starts_with("sqlite://"));
        assert!(s.redis_url.is_none());
        assert_eq!(s.access_token_expire, Duration::from_secs(1800));
        assert_eq!(s.default_rate_limit_limit, 10);
        assert!(s.run_worker);
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = settings(&[("PORT", "eighty")]).unwrap_err().to_string();
        assert!(err.contains("PORT"), "{err}");
        let err = settings(&[("ACCESS_TOKEN_EXPIRE_MINUTES", "0")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("ACCESS_TOKEN_EXPIRE_MINUTES"), "{err}");
        let err = settings(&[("TRUSTED_PROXIES", "10.0.0.1,nope")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("TRUSTED_PROXIES"), "{err}");
    }

    #[test]
    fn trusted_proxies_are_cidrs_or_addresses() {
        let s = settings(&[("TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.7,::1")]).unwrap();
        let inside = |ip: &str| {
            s.trusted_proxies
                .iter()
                .any(|c| c.contains(&ip.parse().unwrap()))
        };
        assert!(inside("10.20.30.40"));
        assert!(inside("192.168.1.7"));
        assert!(!inside("192.168.1.8"));
        assert!(inside("::1"));
        assert!(settings(&[("TRUSTED_PROXIES", "10.0.0.0/33")]).is_err());
    }

    #[test]
    fn secret_key_is_required_and_long_outside_local() {
        let err = settings(&[("ENVIRONMENT", "production")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("SECRET_KEY"), "{err}");
        let short = settings(&[("ENVIRONMENT", "staging"), ("SECRET_KEY", &"s".repeat(31))])
            .unwrap_err()
            .to_string();
        assert!(
            short.contains("SECRET_KEY") && short.contains("32"),
            "{short}"
        );
        let long = "s".repeat(32);
        assert!(settings(&[("ENVIRONMENT", "production"), ("SECRET_KEY", &long)]).is_ok());
        assert!(settings(&[("SECRET_KEY", "short is fine locally")]).is_ok());
    }

    #[test]
    fn printed_settings_show_no_secret() {
        let key = "k".repeat(40);
        let s = settings(&[("SECRET_KEY", &key), ("ADMIN_PASSWORD", "Adm1n-Passw0rd!")]).unwrap();
        let printed = format!("{s:?}");
        assert!(!printed.contains(&key), "{printed}");
        assert!(!printed.contains("Adm1n-Passw0rd!"), "{printed}");
        assert!(printed.contains("[redacted]"), "{printed}");
        assert_eq!(s.secret_key.expose(), key);
    }

    #[test]
    fn cors_origins_are_bare_origins() {
        let s = settings(&[(
            "CORS_ORIGINS",
            "https://app.example.com, http://localhost:3000/",
        )])
        .unwrap();
        let origins: Vec<&str> = s.cors_origins.iter().map(CorsOrigin::as_str).collect();
        assert_eq!(
            origins,
            ["https://app.example.com", "http://localhost:3000"]
        );
        assert!(settings(&[]).unwrap().cors_origins.is_empty());
        for bad in [
            "https://app.example.com/path",
            "app.example.com",
            "ftp://x.example",
        ] {
            let err = settings(&[("CORS_ORIGINS", bad)]).unwrap_err().to_string();
            assert!(err.contains("CORS_ORIGINS"), "{bad}: {err}");
        }
    }

    #[test]
    fn specific_redis_urls_fall_back_to_redis_url() {
        let s = settings(&[("REDIS_URL", "redis://a"), ("REDIS_QUEUE_URL", "redis://q")]).unwrap();
        assert_eq!(s.redis_cache_url.as_deref(), Some("redis://a"));
        assert_eq!(s.redis_queue_url.as_deref(), Some("redis://q"));
    }
}
