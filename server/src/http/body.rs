//! Request-body extractors that report every problem as a 422 list with field locations.
//!
//! poem-openapi's own `Json<T>` rejects bad bodies with one unstructured message, and its
//! `Form<T>` skips validators. These extractors keep the schema that the `Object` derive
//! declares for the spec, but decode with serde (so errors carry the field path) and then run
//! the `validator` rules declared on the same struct.
//!
//! JSON bodies accept only the properties their schema declares: the check reads the schema
//! itself, and the published spec says `additionalProperties: false` for exactly these bodies
//! (see `api::finish_spec`).

use std::{
    collections::HashMap,
    sync::{Arc, LazyLock, RwLock},
};

use poem::{Request, RequestBody, error::ReadBodyError, http::StatusCode};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
    registry::{MetaMediaType, MetaRequest, Registry},
    types::Type,
};
use serde::{Deserialize, Deserializer, de::DeserializeOwned};
use serde_json::Value;
use validator::{Validate, ValidationErrors};

use crate::{
    config::DEFAULT_MAX_BODY_BYTES,
    error::{AppError, ValidationIssue},
    state::AppState,
};

const JSON: &str = "application/json; charset=utf-8";
const FORM: &str = "application/x-www-form-urlencoded";

/// A required JSON body.
pub struct JsonBody<T>(pub T);

/// A JSON body the client may leave out (an empty body).
pub struct OptionalJsonBody<T>(pub Option<T>);

/// A required `application/x-www-form-urlencoded` body.
pub struct FormBody<T>(pub T);

/// For `Option` fields that may be left out but not sent as `null`.
pub fn non_null<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

fn request_meta<T: Type>(content_type: &'static str, required: bool) -> Option<MetaRequest> {
    Some(MetaRequest {
        description: None,
        content: vec![MetaMediaType {
            content_type,
            schema: T::schema_ref(),
        }],
        required,
    })
}

fn is_json(content_type: Option<&str>) -> bool {
    let Some(mime) = content_type.and_then(|ct| ct.parse::<mime::Mime>().ok()) else {
        return false;
    };
    mime.type_() == mime::APPLICATION
        && (mime.subtype() == mime::JSON || mime.suffix() == Some(mime::JSON))
}

fn is_form(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|ct| ct.parse::<mime::Mime>().ok())
        .is_some_and(|m| m.essence_str() == FORM)
}

fn body_issue(msg: impl Into<String>, kind: &str) -> AppError {
    AppError::validation(ValidationIssue::new(["body"], msg, kind))
}

/// The answer to a body over the limit, declared or found while reading.
pub fn body_too_large(limit: usize) -> AppError {
    AppError::Rejected {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        message: format!("Request body larger than {limit} bytes"),
    }
}

pub fn uri_too_long(limit: usize) -> AppError {
    AppError::Rejected {
        status: StatusCode::URI_TOO_LONG,
        message: format!("Request URI longer than {limit} bytes"),
    }
}

pub fn headers_too_large(limit: usize) -> AppError {
    AppError::Rejected {
        status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        message: format!("Request headers larger than {limit} bytes"),
    }
}

async fn read_body(req: &Request, body: &mut RequestBody) -> Result<bytes::Bytes, AppError> {
    let limit = req
        .data::<AppState>()
        .map_or(DEFAULT_MAX_BODY_BYTES, |state| {
            state.settings.max_body_bytes
        });
    let body = body
        .take()
        .map_err(|_| AppError::internal("request body read twice"))?;
    body.into_bytes_limit(limit).await.map_err(|err| match err {
        ReadBodyError::PayloadTooLarge => body_too_large(limit),
        other => AppError::Rejected {
            status: StatusCode::BAD_REQUEST,
            message: format!("Cannot read the request body: {other}"),
        },
    })
}

/// Parses JSON text; `None` for an empty body.
fn parse_json(bytes: &[u8]) -> Result<Option<Value>, AppError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(bytes)
        .map(Some)
        .map_err(|err| body_issue(format!("JSON decode error: {err}"), "json_invalid"))
}

type PropertyNames = Arc<[&'static str]>;

/// The property names `T`'s schema declares, computed once per schema.
fn declared_properties<T: Type>() -> PropertyNames {
    static CACHE: LazyLock<RwLock<HashMap<String, PropertyNames>>> =
        LazyLock::new(Default::default);
    let name = T::name();
    if let Some(found) = CACHE
        .read()
        .ok()
        .and_then(|c| c.get(name.as_ref()).cloned())
    {
        return found;
    }
    let mut registry = Registry::new();
    T::register(&mut registry);
    let names: PropertyNames = registry
        .schemas
        .get(name.as_ref())
        .map(|schema| schema.properties.iter().map(|(name, _)| *name).collect())
        .unwrap_or_default();
    if let Ok(mut cache) = CACHE.write() {
        cache.insert(name.into_owned(), names.clone());
    }
    names
}

/// Refuses properties the schema does not declare, naming each one.
fn reject_undeclared<T: Type>(value: &Value) -> Result<(), AppError> {
    let Some(object) = value.as_object() else {
        return Ok(());
    };
    let declared = declared_properties::<T>();
    let issues: Vec<_> = object
        .keys()
        .filter(|key| !declared.contains(&key.as_str()))
        .map(|key| {
            ValidationIssue::new(
                ["body", key.as_str()],
                "Extra inputs are not permitted",
                "extra_forbidden",
            )
        })
        .collect();
    if issues.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation(issues))
    }
}

/// Decodes a strict JSON body: an object with only declared properties, then validated.
fn decode_json<T: Type + DeserializeOwned + Validate>(value: Value) -> Result<T, AppError> {
    require_object(&value)?;
    reject_undeclared::<T>(&value)?;
    decode(value)
}

fn require_object(value: &Value) -> Result<(), AppError> {
    // serde would also build a struct from an array of its fields in order.
    if value.is_object() {
        Ok(())
    } else {
        Err(body_issue("Input should be a JSON object", "model_type"))
    }
}

/// Decodes a JSON value into `T`, then runs its validation rules.
fn decode<T: DeserializeOwned + Validate>(value: Value) -> Result<T, AppError> {
    require_object(&value)?;
    reject_nul(&value, &mut vec!["body".to_string()])?;
    let decoded: T = serde_path_to_error::deserialize(value).map_err(decode_issue)?;
    decoded.validate().map_err(rule_issues)?;
    Ok(decoded)
}

/// NUL is refused in every string of every body: PostgreSQL cannot store it in text, and no
/// field of this API has a use for it.
fn reject_nul(value: &Value, loc: &mut Vec<String>) -> Result<(), AppError> {
    let found = |loc: &[String]| AppError::validation(nul_issue(loc.to_vec()));
    match value {
        Value::String(s) if s.contains('\0') => Err(found(loc)),
        Value::Array(items) => items.iter().enumerate().try_for_each(|(i, item)| {
            loc.push(i.to_string());
            reject_nul(item, loc)?;
            loc.pop();
            Ok(())
        }),
        Value::Object(fields) => fields.iter().try_for_each(|(key, field)| {
            loc.push(key.clone());
            if key.contains('\0') {
                return Err(found(loc));
            }
            reject_nul(field, loc)?;
            loc.pop();
            Ok(())
        }),
        _ => Ok(()),
    }
}

pub fn nul_issue(loc: Vec<String>) -> ValidationIssue {
    ValidationIssue::new(loc, "NUL characters are not allowed", "string_nul")
}

fn decode_issue(err: serde_path_to_error::Error<serde_json::Error>) -> AppError {
    let mut loc = vec!["body".to_string()];
    loc.extend(
        err.path()
            .iter()
            .map(|segment| segment.to_string())
            .filter(|segment| segment != "?"),
    );
    let message = err.inner().to_string();
    // serde names a missing field only in its message.
    let (msg, kind) = if let Some(field) = backticked(&message, "missing field `") {
        loc.push(field);
        ("Field required".to_string(), "missing")
    } else if message.starts_with("invalid type: null") {
        ("Field may not be null".to_string(), "null_forbidden")
    } else {
        (message, "type_error")
    };
    AppError::validation(ValidationIssue::new(loc, msg, kind))
}

fn backticked(message: &str, prefix: &str) -> Option<String> {
    let rest = message.strip_prefix(prefix)?;
    rest.split('`').next().map(str::to_string)
}

fn rule_issues(errors: ValidationErrors) -> AppError {
    let mut fields: Vec<_> = errors.field_errors().into_iter().collect();
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    let issues = fields
        .into_iter()
        .flat_map(|(field, errors)| {
            errors.iter().map(move |error| {
                let msg = error
                    .message
                    .as_deref()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("failed the `{}` rule", error.code));
                ValidationIssue::new(["body", field.as_ref()], msg, error.code.as_ref())
            })
        })
        .collect();
    AppError::Validation(issues)
}

fn require_json(req: &Request) -> Result<(), AppError> {
    if is_json(req.content_type()) {
        Ok(())
    } else {
        Err(body_issue(
            "Content-Type must be application/json",
            "content_type",
        ))
    }
}

fn parse_required_json<T: Type + DeserializeOwned + Validate>(
    req: &Request,
    bytes: &[u8],
) -> Result<T, AppError> {
    let value = parse_json(bytes)?.ok_or_else(|| body_issue("Field required", "missing"))?;
    require_json(req)?;
    decode_json(value)
}

fn parse_optional_json<T: Type + DeserializeOwned + Validate>(
    req: &Request,
    bytes: &[u8],
) -> Result<Option<T>, AppError> {
    match parse_json(bytes)? {
        None => Ok(None),
        Some(value) => {
            require_json(req)?;
            decode_json(value).map(Some)
        }
    }
}

/// OAuth2 clients send fields of their own, so forms tolerate undeclared ones.
fn parse_form<T: DeserializeOwned + Validate>(req: &Request, bytes: &[u8]) -> Result<T, AppError> {
    if !is_form(req.content_type()) {
        return Err(body_issue(
            "Content-Type must be application/x-www-form-urlencoded",
            "content_type",
        ));
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(bytes)
        .map_err(|err| body_issue(format!("Form decode error: {err}"), "form_invalid"))?;
    // Form fields are all text; the first of repeated keys wins.
    let mut object = serde_json::Map::new();
    for (key, value) in pairs {
        object.entry(key).or_insert(Value::String(value));
    }
    decode(Value::Object(object))
}

/// The `ApiExtractor` plumbing shared by the body types: only the content type, whether the
/// body is required, and the parse function differ.
macro_rules! body_extractor {
    ($name:ident, $content_type:expr, $required:expr, $parse:ident) => {
        impl<'a, T> ApiExtractor<'a> for $name<T>
        where
            T: Type + DeserializeOwned + Validate + Send,
        {
            const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
            type ParamType = ();
            type ParamRawType = ();

            fn register(registry: &mut Registry) {
                T::register(registry);
            }

            fn request_meta() -> Option<MetaRequest> {
                request_meta::<T>($content_type, $required)
            }

            async fn from_request(
                req: &'a Request,
                body: &mut RequestBody,
                _param_opts: ExtractParamOptions<Self::ParamType>,
            ) -> poem::Result<Self> {
                let bytes = read_body(req, body).await?;
                Ok(Self($parse(req, &bytes)?))
            }
        }
    };
}

body_extractor!(JsonBody, JSON, true, parse_required_json);
body_extractor!(OptionalJsonBody, JSON, false, parse_optional_json);
body_extractor!(FormBody, FORM, true, parse_form);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, poem_openapi::Object, Deserialize, Validate)]
    struct Sample {
        #[validate(length(min = 2, message = "too short"))]
        name: String,
        #[serde(default, deserialize_with = "non_null")]
        nick: Option<String>,
    }

    fn issue(value: Value) -> ValidationIssue {
        match decode_json::<Sample>(value) {
            Err(AppError::Validation(issues)) => issues[0].clone(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn missing_unknown_null_and_rule_failures_name_the_field() {
        let i = issue(json!({}));
        assert_eq!(
            (i.loc, i.kind.as_str()),
            (vec!["body".into(), "name".into()], "missing")
        );
        let i = issue(json!({"name": "ab", "extra": 1}));
        assert_eq!(i.loc, vec!["body", "extra"]);
        assert_eq!(i.kind, "extra_forbidden");
        let i = issue(json!({"name": "ab", "nick": null}));
        assert_eq!(i.loc, vec!["body", "nick"]);
        let i = issue(json!({"name": 5}));
        assert_eq!(
            (i.loc, i.kind.as_str()),
            (vec!["body".into(), "name".into()], "type_error")
        );
        let i = issue(json!({"name": "a"}));
        assert_eq!((i.msg.as_str(), i.kind.as_str()), ("too short", "length"));
    }

    #[test]
    fn nul_is_refused_anywhere_in_a_body() {
        let i = issue(json!({"name": "a\u{0}b"}));
        assert_eq!(
            (i.loc, i.kind.as_str()),
            (vec!["body".into(), "name".into()], "string_nul")
        );
        let mut loc = vec!["body".to_string()];
        let err = reject_nul(&json!({"list": ["ok", "n\u{0}"]}), &mut loc).unwrap_err();
        assert!(matches!(err, AppError::Validation(i) if i[0].loc == ["body", "list", "1"]));
    }

    /// The examples the spec shows (and Swagger UI's "Try it out" sends) pass the same checks
    /// as any request body.
    #[test]
    fn every_request_body_example_is_a_valid_body() {
        use poem_openapi::types::{Example, ToJSON};
        fn accepted<T: Type + Example + ToJSON + DeserializeOwned + Validate>() {
            let example = T::example().to_json().expect("an example");
            if let Err(err) = decode_json::<T>(example.clone()) {
                panic!("{} example {example} refused: {err:?}", T::name());
            }
        }
        accepted::<crate::users::schemas::UserCreate>();
        accepted::<crate::users::schemas::UserUpdate>();
        accepted::<crate::users::schemas::UserTierUpdate>();
        accepted::<crate::posts::schemas::PostCreate>();
        accepted::<crate::posts::schemas::PostUpdate>();
        accepted::<crate::tiers::schemas::TierCreate>();
        accepted::<crate::tiers::schemas::TierUpdate>();
        accepted::<crate::rate_limits::schemas::RateLimitCreate>();
        accepted::<crate::rate_limits::schemas::RateLimitUpdate>();
    }

    #[test]
    fn absent_optional_fields_are_none() {
        let s = decode_json::<Sample>(json!({"name": "ab"})).unwrap();
        assert_eq!(s.nick, None);
    }
}
