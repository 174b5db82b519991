//! The one application error type, and the one place it becomes an HTTP response.
//!
//! Handlers and services return [`AppError`]. Everything poem and poem-openapi reject on their
//! own (unknown routes, wrong methods, unparsable path or query values, missing credentials)
//! is converted by [`AppError::from_poem`], so every error leaves the server as JSON
//! `{"detail": ...}`. [`Errors`] declares, per operation, which of these statuses the spec lists.

use std::{borrow::Cow, fmt};

use poem::{
    IntoResponse, Response,
    error::{MethodNotAllowedError, NotFoundError, ResponseError},
    http::{HeaderValue, StatusCode, header},
};
use poem_openapi::{
    ApiResponse, Object,
    error::{AuthorizationError, ContentTypeError, ParseParamError, ParsePathError},
    registry::{
        MetaHeader, MetaMediaType, MetaResponse, MetaResponses, MetaSchema, MetaSchemaRef, Registry,
    },
    types::{Example, ParseError, ParseFromJSON, ParseResult, ToJSON, Type},
};

/// One problem with the request, in the shape FastAPI clients already parse.
#[derive(Debug, Clone, PartialEq, Object)]
#[oai(example)]
pub struct ValidationIssue {
    /// Where the problem is: `body`, `query` or `path`, then the field names.
    pub loc: Vec<String>,
    /// What is wrong, for people.
    pub msg: String,
    /// What is wrong, for programs: `missing`, `value_error`, `json_invalid`, ...
    #[oai(rename = "type")]
    pub kind: String,
}

impl Example for ValidationIssue {
    fn example() -> Self {
        Self::new(
            ["body", "username"],
            "must match ^[a-z0-9]+$",
            "value_error",
        )
    }
}

impl ValidationIssue {
    pub fn new(
        loc: impl IntoIterator<Item = impl Into<String>>,
        msg: impl Into<String>,
        kind: impl Into<String>,
    ) -> Self {
        Self {
            loc: loc.into_iter().map(Into::into).collect(),
            msg: msg.into(),
            kind: kind.into(),
        }
    }
}

/// A message for most errors, a list of issues for validation errors (422).
///
/// Its schema is written by hand: the `Union` derive would add `type: object`, which no
/// string or array satisfies.
#[derive(Debug, Clone, PartialEq)]
pub enum ErrorDetail {
    Message(String),
    Issues(Vec<ValidationIssue>),
}

impl Type for ErrorDetail {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ErrorDetail")
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Reference(Self::name().into_owned())
    }

    fn register(registry: &mut Registry) {
        registry.create_schema::<Self, _>(Self::name().into_owned(), |registry| {
            String::register(registry);
            Vec::<ValidationIssue>::register(registry);
            MetaSchema {
                description: Some(
                    "A message, or for validation errors (422) the list of problems.",
                ),
                one_of: vec![String::schema_ref(), Vec::<ValidationIssue>::schema_ref()],
                ..MetaSchema::ANY
            }
        });
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl ToJSON for ErrorDetail {
    fn to_json(&self) -> Option<serde_json::Value> {
        match self {
            Self::Message(message) => message.to_json(),
            Self::Issues(issues) => issues.to_json(),
        }
    }
}

impl ParseFromJSON for ErrorDetail {
    fn parse_from_json(value: Option<serde_json::Value>) -> ParseResult<Self> {
        match value {
            Some(serde_json::Value::Array(_)) => Vec::<ValidationIssue>::parse_from_json(value)
                .map(Self::Issues)
                .map_err(ParseError::propagate),
            other => String::parse_from_json(other)
                .map(Self::Message)
                .map_err(ParseError::propagate),
        }
    }
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Object)]
#[oai(example)]
pub struct ErrorBody {
    // Described by its schema: poem-openapi would wrap a described reference in `allOf`, which
    // openapi-python-client refuses for a schema that is not an object.
    pub detail: ErrorDetail,
}

impl Example for ErrorBody {
    fn example() -> Self {
        Self {
            detail: ErrorDetail::Message("Not Found".into()),
        }
    }
}

/// The answer to a request that ran past `REQUEST_TIMEOUT_MS`.
pub const REQUEST_TIMED_OUT: &str = "Request timed out, try again later";

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request conflicts with stored data (a taken name, a tier still in use).
    #[error("{0}")]
    BadRequest(Cow<'static, str>),
    #[error("Not authenticated")]
    NotAuthenticated,
    /// Bad credentials or a bad, expired or revoked token: deliberately one message.
    #[error("Incorrect email, username or password")]
    InvalidCredentials,
    #[error("The user doesn't have enough privileges")]
    Forbidden,
    #[error("{0}")]
    NotFound(Cow<'static, str>),
    #[error("Method Not Allowed")]
    MethodNotAllowed,
    #[error("request validation failed")]
    Validation(Vec<ValidationIssue>),
    #[error("Rate limit exceeded")]
    RateLimited { retry_after_secs: u64 },
    #[error("{0}")]
    Unavailable(Cow<'static, str>),
    /// A bounded resource (password hashing) stayed busy; the client should retry shortly.
    #[error("Server busy, try again shortly")]
    Overloaded { retry_after_secs: u64 },
    /// Any other rejection poem made before a handler ran (a body too large, a bad header).
    #[error("{message}")]
    Rejected { status: StatusCode, message: String },
    /// A fault on our side. Its cause is logged, never sent.
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

/// The answer while the database cannot be reached.
pub const DATABASE_UNAVAILABLE: &str = "Database unavailable, try again later";

impl From<sea_orm::DbErr> for AppError {
    fn from(err: sea_orm::DbErr) -> Self {
        if database_unreachable(&err) {
            tracing::warn!(error = %err, "the database is unreachable");
            return Self::Unavailable(DATABASE_UNAVAILABLE.into());
        }
        Self::Internal(err.into())
    }
}

/// Whether the error says the database cannot be reached right now rather than that the query
/// failed: no connection in time, a broken one, or a server shutting down, starting or full.
/// Those are worth a retry, so they are 503, not 500.
fn database_unreachable(err: &sea_orm::DbErr) -> bool {
    use sea_orm::{DbErr, RuntimeErr, sqlx};
    let sqlx_error = match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => e,
        _ => return false,
    };
    match sqlx_error.as_ref() {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // PostgreSQL: class 08 (connection exception), admin or crash shutdown, starting up,
        // too many connections.
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

impl AppError {
    pub fn not_found(message: &'static str) -> Self {
        Self::NotFound(Cow::Borrowed(message))
    }

    pub fn bad_request(message: &'static str) -> Self {
        Self::BadRequest(Cow::Borrowed(message))
    }

    pub fn validation(issue: ValidationIssue) -> Self {
        Self::Validation(vec![issue])
    }

    pub fn internal(message: impl fmt::Display) -> Self {
        Self::Internal(anyhow::anyhow!("{message}"))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotAuthenticated | Self::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) | Self::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Rejected { status, .. } => *status,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn body(&self) -> ErrorBody {
        let detail = match self {
            Self::Validation(issues) => ErrorDetail::Issues(issues.clone()),
            Self::Internal(_) => ErrorDetail::Message("Internal Server Error".into()),
            other => ErrorDetail::Message(other.to_string()),
        };
        ErrorBody { detail }
    }

    /// Maps any error poem or poem-openapi produced to the application error.
    pub fn from_poem(err: poem::Error) -> Self {
        let err = match err.downcast::<AppError>() {
            Ok(app) => return app,
            Err(err) => err,
        };
        if err.is::<NotFoundError>() {
            return Self::not_found("Not Found");
        }
        if err.is::<MethodNotAllowedError>() {
            return Self::MethodNotAllowed;
        }
        if err.is::<AuthorizationError>() {
            return Self::NotAuthenticated;
        }
        if let Some(e) = err.downcast_ref::<ParsePathError>() {
            return Self::validation(ValidationIssue::new(
                ["path", e.name],
                e.reason.clone(),
                "value_error",
            ));
        }
        if let Some(e) = err.downcast_ref::<ParseParamError>() {
            let kind = if e.reason.contains("expected input") {
                "missing"
            } else {
                "value_error"
            };
            return Self::validation(ValidationIssue::new(
                ["query", e.name],
                e.reason.clone(),
                kind,
            ));
        }
        if let Some(e) = err.downcast_ref::<ContentTypeError>() {
            return Self::validation(ValidationIssue::new(
                ["body"],
                e.to_string(),
                "content_type",
            ));
        }
        let status = err.status();
        match status {
            StatusCode::NOT_FOUND => Self::not_found("Not Found"),
            StatusCode::METHOD_NOT_ALLOWED => Self::MethodNotAllowed,
            StatusCode::UNAUTHORIZED => Self::NotAuthenticated,
            s if s.is_client_error() => Self::Rejected {
                status: s,
                message: err.to_string(),
            },
            _ => Self::internal(err),
        }
    }
}

impl ResponseError for AppError {
    fn status(&self) -> StatusCode {
        AppError::status(self)
    }

    fn as_response(&self) -> Response {
        if let Self::Internal(cause) = self {
            tracing::error!(error = ?cause, "request failed");
        }
        let mut response = poem::web::Json(self.body().to_json())
            .with_status(self.status())
            .into_response();
        let headers = response.headers_mut();
        match self {
            Self::NotAuthenticated | Self::InvalidCredentials => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::RateLimited { retry_after_secs } | Self::Overloaded { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            _ => {}
        }
        response
    }
}

/// Statuses every operation can answer with: what the request middleware refuses before routing
/// (a request target or headers over their limits, 414 and 431; a NUL in the URL, 422), 500,
/// and 503 (the request timeout, the database away).
const ALWAYS_POSSIBLE: [u16; 5] = [414, 422, 431, 500, 503];

/// An operation's error responses for the spec: the statuses it can answer with, plus those any
/// operation can ([`ALWAYS_POSSIBLE`]), each with the one [`ErrorBody`] schema. At run time it is
/// just the [`AppError`] it wraps.
#[derive(Debug)]
pub struct Errors<
    const A: u16 = 0,
    const B: u16 = 0,
    const C: u16 = 0,
    const D: u16 = 0,
    const E: u16 = 0,
>(pub AppError);

impl<const A: u16, const B: u16, const C: u16, const D: u16, const E: u16> From<AppError>
    for Errors<A, B, C, D, E>
{
    fn from(err: AppError) -> Self {
        let status = err.status().as_u16();
        if !ALWAYS_POSSIBLE.contains(&status) && ![A, B, C, D, E].contains(&status) {
            // A bug: clients generated from the spec will not expect this status.
            tracing::error!(status, "answering with a status the spec does not declare");
        }
        Self(err)
    }
}

impl<const A: u16, const B: u16, const C: u16, const D: u16, const E: u16> From<sea_orm::DbErr>
    for Errors<A, B, C, D, E>
{
    fn from(err: sea_orm::DbErr) -> Self {
        Self(err.into())
    }
}

impl<const A: u16, const B: u16, const C: u16, const D: u16, const E: u16>
    From<Errors<A, B, C, D, E>> for poem::Error
{
    fn from(err: Errors<A, B, C, D, E>) -> Self {
        poem::Error::from(err.0)
    }
}

impl<const A: u16, const B: u16, const C: u16, const D: u16, const E: u16> IntoResponse
    for Errors<A, B, C, D, E>
{
    fn into_response(self) -> Response {
        self.0.as_response()
    }
}

fn status_description(status: u16) -> &'static str {
    match status {
        400 => "The request conflicts with existing data",
        401 => "Missing, invalid, expired or revoked credentials",
        403 => "The user doesn't have enough privileges",
        404 => "The resource does not exist",
        414 => "The request URI is longer than MAX_URI_BYTES",
        422 => "The request failed validation",
        431 => "The request headers are larger than MAX_HEADER_BYTES",
        429 => "Rate limit exceeded; see Retry-After",
        500 => "Internal server error",
        503 => "A dependency is unavailable, or the server is busy (see Retry-After)",
        _ => "Error",
    }
}

impl<const A: u16, const B: u16, const C: u16, const D: u16, const E: u16> ApiResponse
    for Errors<A, B, C, D, E>
{
    fn meta() -> MetaResponses {
        let mut statuses: Vec<u16> = [A, B, C, D, E]
            .into_iter()
            .chain(ALWAYS_POSSIBLE)
            .filter(|s| *s != 0)
            .collect();
        statuses.sort_unstable();
        statuses.dedup();
        let responses = statuses
            .into_iter()
            .map(|status| MetaResponse {
                description: status_description(status),
                status: Some(status),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: "application/json; charset=utf-8",
                    schema: ErrorBody::schema_ref(),
                }],
                headers: match status {
                    401 => vec![header_meta(
                        "WWW-Authenticate",
                        "Always `Bearer`",
                        true,
                        String::schema_ref(),
                    )],
                    429 => vec![header_meta(
                        "Retry-After",
                        "Seconds until the rate-limit window resets",
                        true,
                        i32::schema_ref(),
                    )],
                    503 => vec![header_meta(
                        "Retry-After",
                        "Seconds to wait before retrying, when the server is busy",
                        false,
                        i32::schema_ref(),
                    )],
                    _ => vec![],
                },
            })
            .collect();
        MetaResponses { responses }
    }

    fn register(registry: &mut Registry) {
        ErrorBody::register(registry);
    }
}

/// The messages one operation answers one error status with, shown in the spec as that
/// response's examples. Each domain lists its own next to its handlers; statuses every operation
/// answers alike fall back to [`ErrorExamples::fallback`].
#[derive(Debug, Clone)]
pub struct ErrorExamples {
    pub operation: &'static str,
    pub status: u16,
    pub bodies: Vec<ErrorBody>,
}

impl ErrorExamples {
    pub fn new(
        operation: &'static str,
        status: u16,
        messages: impl IntoIterator<Item = impl fmt::Display>,
    ) -> Self {
        Self {
            operation,
            status,
            bodies: messages
                .into_iter()
                .map(|message| ErrorBody {
                    detail: ErrorDetail::Message(message.to_string()),
                })
                .collect(),
        }
    }

    /// What any operation that declares `status` answers with, unless it lists its own.
    pub fn fallback(status: u16) -> Vec<ErrorBody> {
        let errors = match status {
            401 => vec![AppError::NotAuthenticated, AppError::InvalidCredentials],
            403 => vec![AppError::Forbidden],
            // As the committed spec shows them: with the default limits.
            413 => vec![crate::http::body::body_too_large(
                crate::config::DEFAULT_MAX_BODY_BYTES,
            )],
            414 => vec![crate::http::body::uri_too_long(
                crate::config::DEFAULT_MAX_URI_BYTES,
            )],
            431 => vec![crate::http::body::headers_too_large(
                crate::config::DEFAULT_MAX_HEADER_BYTES,
            )],
            422 => vec![AppError::validation(ValidationIssue::example())],
            429 => vec![AppError::RateLimited {
                retry_after_secs: 1,
            }],
            500 => vec![AppError::internal("hidden")],
            _ => vec![],
        };
        errors.iter().map(AppError::body).collect()
    }

    /// What any operation can answer `status` with besides its own messages: the refusals that
    /// come from the request middleware and the shared infrastructure, not from a handler.
    pub fn universal(status: u16) -> Vec<ErrorBody> {
        let errors = match status {
            503 => vec![
                AppError::Unavailable(REQUEST_TIMED_OUT.into()),
                AppError::Unavailable(DATABASE_UNAVAILABLE.into()),
            ],
            _ => vec![],
        };
        errors.iter().map(AppError::body).collect()
    }
}

fn header_meta(name: &str, description: &str, required: bool, schema: MetaSchemaRef) -> MetaHeader {
    MetaHeader {
        name: name.to_string(),
        description: Some(description.to_string()),
        required,
        deprecated: false,
        schema,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_hide_their_cause() {
        let err = AppError::internal("connection refused to db.internal:5432");
        let body = serde_json::to_string(&err.body().to_json()).unwrap();
        assert_eq!(body, r#"{"detail":"Internal Server Error"}"#);
        assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn poem_rejections_map_to_contract_messages() {
        let err = AppError::from_poem(NotFoundError.into());
        assert_eq!(err.status(), StatusCode::NOT_FOUND);
        assert_eq!(err.to_string(), "Not Found");
        let err = AppError::from_poem(MethodNotAllowedError.into());
        assert_eq!(err.to_string(), "Method Not Allowed");
        let err = AppError::from_poem(AuthorizationError.into());
        assert_eq!(err.to_string(), "Not authenticated");
        let err = AppError::from_poem(AppError::Forbidden.into());
        assert_eq!(err.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn validation_errors_are_a_list() {
        let err = AppError::validation(ValidationIssue::new(["query", "page"], "too small", "x"));
        let body = serde_json::to_value(err.body().to_json()).unwrap();
        assert_eq!(
            body["detail"][0]["loc"],
            serde_json::json!(["query", "page"])
        );
        assert_eq!(body["detail"][0]["type"], "x");
    }
}
