//! What `/metrics` exposes, in Prometheus' text format: one recorder per application instance
//! (several run in one test process), fed by the request middleware, the response cache, the
//! rate limiter and the worker; the gauges that are cheap to read at scrape time (queue depth,
//! database pool, dropped log lines) are read then.
//!
//! Every label value comes from a closed set (route templates, status codes, tier ids, fixed
//! outcome names), never from a raw path or a client's input: the series a client can create
//! are bounded by the spec, not by its requests.

use std::{
    collections::HashMap,
    sync::{Arc, PoisonError, RwLock},
    time::Duration,
};

use metrics::{
    Counter, Histogram, Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge,
    histogram, with_local_recorder,
};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use poem::http::Method;

use crate::db::PoolUsage;

/// Request latency buckets, in seconds: from a cached read to the request timeout.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Histogram samples wait in the recorder until they are folded into the buckets: without a
/// scrape they would pile up, so they are folded on this interval as well.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

const STANDARD_METHODS: [Method; 9] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
    Method::TRACE,
    Method::CONNECT,
];

/// The `method` label of every other method.
static OTHER_METHOD: std::sync::LazyLock<Method> =
    std::sync::LazyLock::new(|| Method::from_bytes(b"OTHER").unwrap_or(Method::GET));

/// The recorder of one application instance; `disabled` records nothing and costs nothing.
#[derive(Clone, Default)]
pub struct Metrics(Option<Arc<Recording>>);

struct Recording {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// The handles of each request series, found again without building its labels: that
    /// building and the registry lookup were most of what a request's recording cost.
    request_series: RwLock<HashMap<(u16, Method), HashMap<String, RequestSeries>>>,
}

#[derive(Clone)]
struct RequestSeries {
    count: Counter,
    latency: Histogram,
}

/// How a response-cache lookup went.
#[derive(Debug, Clone, Copy)]
pub enum CacheLookup {
    Hit,
    Miss,
    /// The backend was failing (or the cache is off): served uncached.
    Unavailable,
}

/// How a job's run ended.
#[derive(Debug, Clone, Copy)]
pub enum JobOutcome {
    Complete,
    Retried,
    Failed,
    /// Another worker holds the job now (the claim expired).
    Abandoned,
    /// Still running at shutdown: returned to the queue.
    HandedBack,
}

/// The gauges read when `/metrics` is scraped.
#[derive(Debug, Clone, Default)]
pub struct ScrapeGauges {
    pub queue_depth: Option<u64>,
    pub db_pool: Option<PoolUsage>,
    pub log_lines_dropped: u64,
}

impl Recording {
    fn request_series(&self, method: &Method, route: &str, status: u16) -> RequestSeries {
        // Clients may send any token as a method: those outside the standard set share one
        // series, or each would make its own.
        let method = if STANDARD_METHODS.contains(method) {
            method.clone()
        } else {
            OTHER_METHOD.clone()
        };
        let key = (status, method);
        let known = self
            .request_series
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .and_then(|routes| routes.get(route))
            .cloned();
        if let Some(series) = known {
            return series;
        }
        let series = with_local_recorder(&self.recorder, || {
            let labels = [
                ("method", key.1.as_str().to_owned()),
                ("route", route.to_owned()),
                ("status", status.to_string()),
            ];
            RequestSeries {
                count: counter!("http_requests_total", &labels),
                latency: histogram!("http_request_duration_seconds", &labels),
            }
        });
        self.request_series
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key)
            .or_default()
            .insert(route.to_owned(), series.clone());
        series
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("enabled", &self.is_enabled())
            .finish()
    }
}

impl Metrics {
    pub fn disabled() -> Self {
        Self(None)
    }

    /// A recorder of its own; its histogram samples are folded every few seconds by a task
    /// that ends with the last clone.
    pub fn enabled() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("http_request_duration_seconds".into()),
                &LATENCY_BUCKETS,
            )
            .map(PrometheusBuilder::build_recorder);
        let Ok(recorder) = recorder else {
            tracing::error!("metrics: the latency buckets were refused; /metrics is off");
            return Self(None);
        };
        with_local_recorder(&recorder, describe);
        let handle = recorder.handle();
        let recording = Arc::new(Recording {
            recorder,
            handle,
            request_series: RwLock::default(),
        });
        let weak = Arc::downgrade(&recording);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let mut interval = tokio::time::interval(UPKEEP_INTERVAL);
                loop {
                    interval.tick().await;
                    let Some(recording) = weak.upgrade() else {
                        return;
                    };
                    recording.handle.run_upkeep();
                }
            });
        }
        Self(Some(recording))
    }

    pub fn is_enabled(&self) -> bool {
        self.0.is_some()
    }

    fn record(&self, record: impl FnOnce()) {
        if let Some(recording) = &self.0 {
            with_local_recorder(&recording.recorder, record);
        }
    }

    /// One answered request. `route` is the operation's path template, or `unmatched`.
    pub fn request_finished(&self, method: &Method, route: &str, status: u16, latency: Duration) {
        let Some(recording) = &self.0 else {
            return;
        };
        let series = recording.request_series(method, route, status);
        series.count.increment(1);
        series.latency.record(latency.as_secs_f64());
    }

    pub fn cache_lookup(&self, outcome: CacheLookup) {
        let result = match outcome {
            CacheLookup::Hit => "hit",
            CacheLookup::Miss => "miss",
            CacheLookup::Unavailable => "unavailable",
        };
        self.record(|| counter!("cache_lookups_total", "result" => result).increment(1));
    }

    /// `kind`: `key` (one entry) or `pattern` (a prefix of a namespace).
    pub fn cache_invalidated(&self, kind: &'static str) {
        self.record(|| counter!("cache_invalidations_total", "kind" => kind).increment(1));
    }

    /// A metered request: `rule` is `tier:<id>` or `default`.
    pub fn rate_limit_decision(&self, route: &str, rule: String, allowed: bool) {
        let decision = if allowed { "allowed" } else { "refused" };
        self.record(|| {
            counter!("rate_limit_decisions_total",
                "route" => route.to_owned(), "rule" => rule, "decision" => decision)
            .increment(1);
        });
    }

    pub fn job_finished(&self, outcome: JobOutcome) {
        let outcome = match outcome {
            JobOutcome::Complete => "complete",
            JobOutcome::Retried => "retried",
            JobOutcome::Failed => "failed",
            JobOutcome::Abandoned => "abandoned",
            JobOutcome::HandedBack => "handed_back",
        };
        self.record(|| counter!("queue_jobs_finished_total", "outcome" => outcome).increment(1));
    }

    /// The text exposition, after setting the scrape-time gauges; `None` when disabled.
    pub fn render(&self, gauges: &ScrapeGauges) -> Option<String> {
        let recording = self.0.as_ref()?;
        with_local_recorder(&recording.recorder, || {
            if let Some(depth) = gauges.queue_depth {
                gauge!("queue_depth").set(depth as f64);
            }
            if let Some(pool) = gauges.db_pool {
                gauge!("db_pool_connections", "state" => "open").set(f64::from(pool.open));
                gauge!("db_pool_connections", "state" => "idle").set(pool.idle as f64);
                gauge!("db_pool_max_connections").set(f64::from(pool.max));
            }
            counter!("log_lines_dropped_total").absolute(gauges.log_lines_dropped);
        });
        Some(recording.handle.render())
    }
}

/// The `# HELP` lines.
fn describe() {
    describe_counter!(
        "http_requests_total",
        "Requests answered, by route template and status"
    );
    describe_histogram!(
        "http_request_duration_seconds",
        Unit::Seconds,
        "Time from the request's arrival to its answer, by route template and status"
    );
    describe_counter!(
        "cache_lookups_total",
        "Response-cache lookups: hit, miss, or unavailable (served uncached)"
    );
    describe_counter!(
        "cache_invalidations_total",
        "Response-cache invalidations made, by kind: key or pattern"
    );
    describe_counter!(
        "rate_limit_decisions_total",
        "Metered requests allowed or refused, by route template and rule (tier:<id> or default)"
    );
    describe_counter!(
        "queue_jobs_finished_total",
        "Jobs this process's worker finished, by outcome"
    );
    describe_gauge!("queue_depth", "Jobs waiting or running in the queue");
    describe_gauge!(
        "db_pool_connections",
        "Database connections in the pool: open (in use or idle), and idle"
    );
    describe_gauge!("db_pool_max_connections", "The pool's connection limit");
    describe_counter!(
        "log_lines_dropped_total",
        "Log lines dropped because the log output could not keep up"
    );
}
