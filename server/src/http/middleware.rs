//! Cross-cutting HTTP behaviour applied to every route: the request span and id, the one
//! error rendering, and the client cache header.

use std::time::Instant;

use poem::{
    Endpoint, IntoResponse, Request, Response, Result,
    error::ResponseError,
    http::{HeaderValue, Method, header},
};
use poem_openapi::OperationId;
use tracing::Instrument;

use crate::error::AppError;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Wraps the whole application. Never returns `Err`: every error becomes the contract's JSON.
pub async fn around_request<E: Endpoint>(
    next: E,
    req: Request,
    client_cache_max_age: u32,
) -> Result<Response> {
    let request_id = incoming_request_id(&req).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let method = req.method().clone();
    let authenticated = req.headers().contains_key(header::AUTHORIZATION);
    let span = tracing::info_span!(
        "request",
        method = %method,
        path = %req.uri().path(),
        request_id = %request_id,
        operation = tracing::field::Empty,
        status = tracing::field::Empty,
        latency_ms = tracing::field::Empty,
    );
    let started = Instant::now();
    let mut response = match next.call(req).instrument(span.clone()).await {
        Ok(response) => response.into_response(),
        Err(err) => AppError::from_poem(err).as_response(),
    };
    let status = response.status();

    let cache_control = if method == Method::GET && status.is_success() && !authenticated {
        HeaderValue::from_str(&format!("public, max-age={client_cache_max_age}"))
            .unwrap_or(HeaderValue::from_static("no-store"))
    } else {
        HeaderValue::from_static("no-store")
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, cache_control);
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert(REQUEST_ID_HEADER, value);
    }

    if let Some(operation) = response.data::<OperationId>() {
        span.record("operation", operation.0);
    }
    span.record("status", status.as_u16());
    span.record("latency_ms", started.elapsed().as_secs_f64() * 1000.0);
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::error!("request finished");
        } else {
            tracing::info!("request finished");
        }
    });
    Ok(response)
}

/// A caller-supplied id, if it is short and printable enough to echo and log.
fn incoming_request_id(req: &Request) -> Option<String> {
    let value = req.header(REQUEST_ID_HEADER)?.trim();
    let acceptable = !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    acceptable.then(|| value.to_string())
}
