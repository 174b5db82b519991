//! Cross-origin access: which browser pages, served elsewhere, may call the API.
//!
//! Only the configured origins (`CORS_ORIGINS`) get `Access-Control-Allow-*` headers; any other
//! origin gets none, so the browser keeps the answer from the page. Requests are never refused
//! for their `Origin`: a same-origin page (Swagger UI at `/docs`) sends one too, and the server
//! cannot tell it from a foreign one without trusting `Host`.

use std::collections::HashSet;

use poem::{
    Request, Response,
    http::{HeaderValue, Method, StatusCode, header},
};

use crate::config::CorsOrigin;

/// What pages may send and read beyond the CORS-safelisted headers.
const ALLOWED_METHODS: &str = "GET, POST, PUT, PATCH, DELETE";
const ALLOWED_HEADERS: &str = "authorization, content-type, x-request-id";
const EXPOSED_HEADERS: &str =
    "x-ratelimit-limit, x-ratelimit-remaining, x-ratelimit-reset, retry-after, x-request-id";
/// How long a browser may reuse a preflight answer, in seconds.
const PREFLIGHT_MAX_AGE: &str = "600";

#[derive(Clone, Default)]
pub struct CorsPolicy {
    origins: HashSet<HeaderValue>,
}

impl CorsPolicy {
    pub fn new(origins: &[CorsOrigin]) -> Self {
        Self {
            origins: origins
                .iter()
                .filter_map(|origin| HeaderValue::from_str(origin.as_str()).ok())
                .collect(),
        }
    }

    /// The request's `Origin`, kept only when origins are configured (the common case of
    /// none costs nothing more).
    pub fn origin_of(&self, req: &Request) -> Option<HeaderValue> {
        if self.origins.is_empty() {
            return None;
        }
        req.headers().get(header::ORIGIN).cloned()
    }

    fn allowed(&self, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
        origin
            .filter(|origin| self.origins.contains(*origin))
            .cloned()
    }

    /// The answer to a preflight from an allowed origin; `None` for anything else, which is
    /// routed as usual.
    pub fn preflight(&self, req: &Request) -> Option<Response> {
        if req.method() != Method::OPTIONS
            || !req
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            return None;
        }
        let origin = self.allowed(req.headers().get(header::ORIGIN))?;
        Some(
            Response::builder()
                .status(StatusCode::NO_CONTENT)
                .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin)
                .header(
                    header::ACCESS_CONTROL_ALLOW_METHODS,
                    HeaderValue::from_static(ALLOWED_METHODS),
                )
                .header(
                    header::ACCESS_CONTROL_ALLOW_HEADERS,
                    HeaderValue::from_static(ALLOWED_HEADERS),
                )
                .header(
                    header::ACCESS_CONTROL_MAX_AGE,
                    HeaderValue::from_static(PREFLIGHT_MAX_AGE),
                )
                .header(header::VARY, HeaderValue::from_static("Origin"))
                .finish(),
        )
    }

    /// Marks the answer to an allowed origin's request as readable by its page.
    pub fn decorate(&self, origin: Option<&HeaderValue>, response: &mut Response) {
        if self.origins.is_empty() {
            return;
        }
        let headers = response.headers_mut();
        // The answer depends on `Origin` whenever origins are configured: caches must not
        // give one origin's answer to another.
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
        if let Some(origin) = self.allowed(origin) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            headers.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSED_HEADERS),
            );
        }
    }
}
