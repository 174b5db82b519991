//! `GET /metrics`: the Prometheus scrape, outside the API's spec like the docs pages. Mounted
//! only when metrics are enabled; with `METRICS_TOKEN` set, it requires that bearer token.

use poem::{
    Endpoint, Request, Response, Result,
    http::{StatusCode, header},
};
use sha2::{Digest, Sha256};

use crate::{
    error::AppError,
    state::AppState,
    telemetry::{self, metrics::ScrapeGauges},
};

pub const PATH: &str = "/metrics";

/// The text exposition format's content type.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub struct Scrape;

impl Endpoint for Scrape {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Response> {
        let state = req
            .data::<AppState>()
            .cloned()
            .ok_or_else(|| AppError::internal("no application state on the request"))?;
        if let Some(token) = &state.settings.metrics_token
            && !bearer_matches(&req, token.expose())
        {
            return Err(AppError::NotAuthenticated.into());
        }
        let gauges = ScrapeGauges {
            // A failing queue backend leaves the depth out rather than failing the scrape.
            queue_depth: state.queue.depth().await.ok(),
            db_pool: crate::db::pool_usage(&state.db),
            log_lines_dropped: telemetry::dropped_log_lines(),
        };
        let text = state
            .metrics
            .render(&gauges)
            .ok_or_else(|| AppError::Rejected {
                status: StatusCode::NOT_FOUND,
                message: "Not Found".into(),
            })?;
        Ok(Response::builder().content_type(CONTENT_TYPE).body(text))
    }
}

/// Compares digests, so that the time taken says nothing about how much of the token matched.
fn bearer_matches(req: &Request, expected: &str) -> bool {
    let Some(given) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
    else {
        return false;
    };
    Sha256::digest(given.as_bytes()) == Sha256::digest(expected.as_bytes())
}
