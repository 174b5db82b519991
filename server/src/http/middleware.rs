//! Cross-cutting HTTP behaviour applied to every route: the request span and id, the one
//! error rendering, and the client cache header.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use poem::{
    Endpoint, IntoResponse, Request, Response, Result,
    error::ResponseError,
    http::{HeaderValue, Method, StatusCode, Uri, header, uri::PathAndQuery},
};
use poem_openapi::OperationId;
use tracing::Instrument;

use crate::{
    error::{AppError, REQUEST_TIMED_OUT, ValidationIssue},
    http::{
        body::{body_too_large, headers_too_large, nul_issue, uri_too_long},
        cors::CorsPolicy,
    },
    state::AppState,
};

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The `route` of a request no operation answered (docs pages, unknown paths): one series for
/// all of them, however many paths clients try.
const UNMATCHED_ROUTE: &str = "unmatched";

/// What the request middleware needs, derived once at start-up from the spec and settings, and
/// shared by every request through one `Arc`.
pub struct RequestPolicy {
    cors: CorsPolicy,
    limits: RequestLimits,
    request_timeout: Duration,
    /// `Cache-Control` of successful anonymous GETs, built once.
    public_cache_control: HeaderValue,
    /// `operationId` → `METHOD /path/{template}`, for low-cardinality `route` log fields.
    routes: HashMap<String, String>,
    /// Path templates and their methods, for the `Allow` header of 405 answers.
    paths: Vec<PathMethods>,
}

/// The sizes refused before routing, with the contract's JSON error.
#[derive(Debug, Clone)]
pub struct RequestLimits {
    /// The declared `Content-Length` at most (the body extractors enforce it while reading).
    pub max_body_bytes: usize,
    /// The request target, path and query.
    pub max_uri_bytes: usize,
    /// Header names and values together.
    pub max_header_bytes: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: usize::MAX,
            max_uri_bytes: usize::MAX,
            max_header_bytes: usize::MAX,
        }
    }
}

struct PathMethods {
    segments: Vec<String>,
    methods: String,
}

impl PathMethods {
    /// How well a concrete path matches: `None` if not at all, else the number of static
    /// segments (the router prefers static segments over parameters).
    fn score(&self, path: &[&str]) -> Option<usize> {
        if self.segments.len() != path.len() {
            return None;
        }
        let mut statics = 0;
        for (template, actual) in self.segments.iter().zip(path) {
            if template.starts_with('{') {
                continue;
            }
            if template != actual {
                return None;
            }
            statics += 1;
        }
        Some(statics)
    }
}

fn segments(path: &str) -> Vec<&str> {
    path.trim_matches('/').split('/').collect()
}

impl RequestPolicy {
    pub fn new(client_cache_max_age: u32, spec_json: &str) -> Self {
        let spec: serde_json::Value = serde_json::from_str(spec_json).unwrap_or_default();
        let mut routes = HashMap::new();
        let mut paths = Vec::new();
        for (path, item) in spec["paths"].as_object().into_iter().flatten() {
            let mut methods = Vec::new();
            for (method, operation) in item.as_object().into_iter().flatten() {
                let method = method.to_uppercase();
                if let Some(id) = operation["operationId"].as_str() {
                    routes.insert(id.to_string(), format!("{method} {path}"));
                }
                methods.push(method);
            }
            paths.push(PathMethods {
                segments: segments(path).into_iter().map(str::to_string).collect(),
                methods: methods.join(", "),
            });
        }
        let public_cache_control =
            HeaderValue::from_str(&format!("public, max-age={client_cache_max_age}"))
                .unwrap_or(HeaderValue::from_static("no-store"));
        Self {
            cors: CorsPolicy::default(),
            limits: RequestLimits::default(),
            request_timeout: Duration::MAX,
            public_cache_control,
            routes,
            paths,
        }
    }

    pub fn with_cors(self, cors: CorsPolicy) -> Self {
        Self { cors, ..self }
    }

    pub fn with_request_timeout(self, request_timeout: Duration) -> Self {
        Self {
            request_timeout,
            ..self
        }
    }

    pub fn with_limits(self, limits: RequestLimits) -> Self {
        Self { limits, ..self }
    }

    fn allowed_methods(&self, path: &str) -> Option<&str> {
        let path = segments(path);
        self.paths
            .iter()
            .filter_map(|p| p.score(&path).map(|score| (score, p)))
            .max_by_key(|(score, _)| *score)
            .map(|(_, p)| p.methods.as_str())
    }
}

/// Wraps the whole application. Never returns `Err`: every error becomes the contract's JSON.
///
/// It also does what would otherwise be two more middleware layers (the state handed to
/// handlers, and path normalisation): each layer moves the request and nests its future once
/// more, and those copies were a third of `/health`'s instructions.
pub async fn around_request<E: Endpoint>(
    next: E,
    mut req: Request,
    policy: Arc<RequestPolicy>,
    state: AppState,
) -> Result<Response> {
    normalize_path(&mut req);
    req.set_data(state.clone());
    let request_id = incoming_request_id(&req).unwrap_or_else(new_request_id);
    let method = req.method().clone();
    let uri = req.uri().clone();
    let authenticated = req.headers().contains_key(header::AUTHORIZATION);
    // The span carries only what inner log lines need to be traced back to this request; the
    // rest goes on the one closing event. Each span field is formatted when the span opens,
    // and that was a tenth of `/health`'s cost.
    let span = tracing::info_span!("request", id = request_id.to_str().unwrap_or_default());
    let started = Instant::now();
    let origin = policy.cors.origin_of(&req);
    let outcome = if let Some(preflight) = policy.cors.preflight(&req) {
        Ok(preflight)
    } else if let Some(refusal) = refuse_before_routing(&req, &policy.limits) {
        Err(refusal.into())
    } else {
        let handled = next.call(req).instrument(span.clone());
        match tokio::time::timeout(policy.request_timeout, handled).await {
            Ok(handled) => handled.map(IntoResponse::into_response),
            // Dropping the handler rolls back its open transaction, so nothing is half-written.
            Err(_) => Err(AppError::Unavailable(REQUEST_TIMED_OUT.into()).into()),
        }
    };
    let (mut response, operation) = match outcome {
        Ok(response) => {
            let operation = response.data::<OperationId>().map(|id| id.0);
            (response, operation)
        }
        Err(err) => {
            let operation = err.data::<OperationId>().map(|id| id.0);
            (AppError::from_poem(err).as_response(), operation)
        }
    };
    let status = response.status();

    let cache_control = if method == Method::GET && status.is_success() && !authenticated {
        policy.public_cache_control.clone()
    } else {
        HeaderValue::from_static("no-store")
    };
    policy.cors.decorate(origin.as_ref(), &mut response);
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, cache_control);
    headers.insert(REQUEST_ID_HEADER, request_id);
    // Answers are data, never pages to sniff, frame or leak the address of.
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if status == StatusCode::METHOD_NOT_ALLOWED
        && let Some(allowed) = policy.allowed_methods(uri.path())
        && let Ok(value) = HeaderValue::from_str(allowed)
    {
        headers.insert(header::ALLOW, value);
    }

    let route = operation
        .and_then(|id| policy.routes.get(id))
        .map_or("", String::as_str);
    let status = status.as_u16();
    let latency = started.elapsed();
    if state.metrics.is_enabled() {
        let template = route.split_once(' ').map_or(UNMATCHED_ROUTE, |(_, t)| t);
        state
            .metrics
            .request_finished(&method, template, status, latency);
    }
    let latency_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
    let path = uri.path();
    span.in_scope(|| {
        // A 503 is a planned refusal (busy, timed out, a backend away), not a fault.
        if status == 503 {
            tracing::warn!(%method, path, route, status, latency_us, "request finished");
        } else if status >= 500 {
            tracing::error!(%method, path, route, status, latency_us, "request finished");
        } else {
            tracing::info!(%method, path, route, status, latency_us, "request finished");
        }
    });
    Ok(response)
}

/// `/a//b/` is served as `/a/b`: a trailing slash is dropped and repeated ones are merged, as
/// clients and proxies add them. Only such paths are rebuilt.
fn normalize_path(req: &mut Request) {
    let path = req.uri().path();
    if path.len() <= 1 || !(path.ends_with('/') || path.contains("//")) {
        return;
    }
    let mut normalized = String::with_capacity(path.len());
    for segment in path.split('/').filter(|segment| !segment.is_empty()) {
        normalized.push('/');
        normalized.push_str(segment);
    }
    if normalized.is_empty() {
        normalized.push('/');
    }
    if let Some(query) = req.uri().query() {
        normalized.push('?');
        normalized.push_str(query);
    }
    let mut parts = req.uri().clone().into_parts();
    parts.path_and_query = PathAndQuery::from_maybe_shared(normalized).ok();
    if let Ok(uri) = Uri::from_parts(parts) {
        *req.uri_mut() = uri;
    }
}

/// What is refused before routing, for every operation at once: a request target or headers
/// larger than allowed, a declared body larger than any endpoint accepts (without reading it),
/// and NUL in the URL.
fn refuse_before_routing(req: &Request, limits: &RequestLimits) -> Option<AppError> {
    let target_bytes = req
        .uri()
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    if target_bytes > limits.max_uri_bytes {
        return Some(uri_too_long(limits.max_uri_bytes));
    }
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if header_bytes > limits.max_header_bytes {
        return Some(headers_too_large(limits.max_header_bytes));
    }
    let declared_length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if declared_length.is_some_and(|length| length > limits.max_body_bytes as u64) {
        return Some(body_too_large(limits.max_body_bytes));
    }
    nul_in_url(req).map(AppError::validation)
}

/// NUL in the path or in a query value (sent as `%00`) is refused before routing, for every
/// operation at once: PostgreSQL cannot store or compare it in text. A URI cannot hold a raw
/// NUL, so only a URL with `%00` in it needs decoding.
fn nul_in_url(req: &Request) -> Option<ValidationIssue> {
    if !req.uri().path_and_query()?.as_str().contains("%00") {
        return None;
    }
    let path = percent_encoding::percent_decode_str(req.uri().path());
    if path.into_iter().any(|b| b == 0) {
        return Some(nul_issue(vec!["path".into()]));
    }
    let query = req.uri().query()?;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).ok()?;
    pairs
        .into_iter()
        .find(|(key, value)| key.contains('\0') || value.contains('\0'))
        .map(|(key, _)| nul_issue(vec!["query".into(), key.replace('\0', "")]))
}

/// A caller-supplied id, if it is short and printable enough to echo and log.
fn incoming_request_id(req: &Request) -> Option<HeaderValue> {
    let value = req.headers().get(REQUEST_ID_HEADER)?;
    let acceptable = !value.is_empty()
        && value.len() <= 128
        && value
            .as_bytes()
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b));
    acceptable.then(|| value.clone())
}

/// A random UUID, formatted straight into the header value.
fn new_request_id() -> HeaderValue {
    let mut text = [0; uuid::fmt::Hyphenated::LENGTH];
    let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut text);
    HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static("unknown"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_named_by_method_and_template() {
        let policy = RequestPolicy::new(60, &crate::api::spec_json());
        assert_eq!(policy.routes["read_user"], "GET /api/v1/user/{username}");
        assert_eq!(
            policy.routes["erase_db_user"],
            "DELETE /api/v1/db_user/{username}"
        );
    }

    #[test]
    fn allowed_methods_follow_the_routers_preference_for_static_segments() {
        let policy = RequestPolicy::new(60, &crate::api::spec_json());
        assert_eq!(policy.allowed_methods("/api/v1/user/me"), Some("GET"));
        assert_eq!(policy.allowed_methods("/api/v1/user/me/"), Some("GET"));
        assert_eq!(
            policy.allowed_methods("/api/v1/user/alice"),
            Some("GET, PATCH, DELETE")
        );
        assert_eq!(policy.allowed_methods("/api/v1/nope"), None);
    }

    #[test]
    fn trailing_and_repeated_slashes_are_dropped() {
        let normalized = |uri: &str| {
            let mut req = Request::builder().uri_str(uri).finish();
            normalize_path(&mut req);
            req.uri().to_string()
        };
        assert_eq!(normalized("/api/v1/health/"), "/api/v1/health");
        assert_eq!(
            normalized("/api//v1///users/?page=2"),
            "/api/v1/users?page=2"
        );
        assert_eq!(normalized("/"), "/");
        assert_eq!(normalized("//"), "/");
        assert_eq!(normalized("/api/v1/health"), "/api/v1/health");
    }

    #[test]
    fn nul_in_path_or_query_is_found() {
        let nul = |uri: &str| nul_in_url(&Request::builder().uri_str(uri).finish()).map(|i| i.loc);
        assert_eq!(nul("/api/v1/user/a%00b"), Some(vec!["path".to_string()]));
        assert_eq!(
            nul("/api/v1/users?page=1%00"),
            Some(vec!["query".to_string(), "page".to_string()])
        );
        assert_eq!(nul("/api/v1/users?page=1&x=%2500"), None);
        assert_eq!(nul("/api/v1/user/alice"), None);
    }

    #[test]
    fn only_short_printable_request_ids_are_kept() {
        let with = |v: &str| {
            let req = Request::builder().header(REQUEST_ID_HEADER, v).finish();
            incoming_request_id(&req)
        };
        assert_eq!(with("abc-123"), Some(HeaderValue::from_static("abc-123")));
        assert_eq!(with("has space"), None);
        assert_eq!(with(&"x".repeat(129)), None);
    }
}
