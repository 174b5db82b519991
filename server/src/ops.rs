//! `GET /health` and `GET /ready`.

use poem::web::Data;
use poem_openapi::{Object, OpenApi, payload::Json, types::Example};

use crate::{
    api::ApiTags,
    error::{AppError, ErrorExamples, Errors},
    state::AppState,
};

/// The process is alive.
#[derive(Debug, Object)]
#[oai(example)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
}

impl Example for Health {
    fn example() -> Self {
        Self {
            status: "ok".into(),
        }
    }
}

/// Every dependency answered.
#[derive(Debug, Object)]
#[oai(example)]
pub struct Readiness {
    /// `ready`.
    pub status: String,
    /// `ok`.
    pub database: String,
    /// `ok`, or `disabled` when no Redis is configured.
    pub redis: String,
}

impl Example for Readiness {
    fn example() -> Self {
        Self {
            status: "ready".into(),
            database: "ok".into(),
            redis: "ok".into(),
        }
    }
}

const DATABASE_UNREACHABLE: &str = "Database unreachable";
const REDIS_UNREACHABLE: &str = "Redis unreachable";

/// The messages of this domain's errors, for the spec.
pub(crate) fn error_examples() -> Vec<ErrorExamples> {
    vec![ErrorExamples::new(
        "ready",
        503,
        [DATABASE_UNREACHABLE, REDIS_UNREACHABLE],
    )]
}

pub struct OpsApi;

#[OpenApi(tag = "ApiTags::Operations")]
impl OpsApi {
    /// Liveness: the process is serving requests
    ///
    /// Always 200 while the process serves; no dependency is checked.
    #[oai(path = "/health", method = "get", operation_id = "health")]
    async fn health(&self) -> Result<Json<Health>, Errors> {
        Ok(Json(Health {
            status: "ok".into(),
        }))
    }

    /// Readiness: the database and every configured Redis (cache, queue, rate limiter) answer
    ///
    /// 503 with the failing dependency named when one does not answer; for load balancers and
    /// orchestrators.
    #[oai(path = "/ready", method = "get", operation_id = "ready")]
    async fn ready(&self, state: Data<&AppState>) -> Result<Json<Readiness>, Errors<503>> {
        if let Err(err) = state.db.ping().await {
            tracing::warn!(error = %err, "readiness: database unreachable");
            return Err(AppError::Unavailable(DATABASE_UNREACHABLE.into()).into());
        }
        let unreachable = |err: &dyn std::fmt::Display| {
            tracing::warn!(error = %err, "readiness: Redis unreachable");
            Errors::from(AppError::Unavailable(REDIS_UNREACHABLE.into()))
        };
        let mut redis = "disabled";
        if let Some(store) = &state.redis {
            store.ping().await.map_err(|err| unreachable(&err))?;
            redis = "ok";
        }
        if state.cache.kind() == "redis" {
            state.cache.ping().await.map_err(|err| unreachable(&err))?;
            redis = "ok";
        }
        if state.queue.kind() == "redis" {
            state.queue.ping().await.map_err(|err| unreachable(&err))?;
            redis = "ok";
        }
        if let Some(pinged) = state.limiter.ping().await {
            pinged.map_err(|err| unreachable(&err))?;
            redis = "ok";
        }
        Ok(Json(Readiness {
            status: "ready".into(),
            database: "ok".into(),
            redis: redis.into(),
        }))
    }
}
