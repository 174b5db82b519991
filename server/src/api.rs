//! The OpenAPI service: every domain's operations under `/api/v1`, and the derived spec.

use poem_openapi::{
    ContactObject, LicenseObject, OpenApiService, ServerObject, Tags, types::ToJSON,
};
use serde_json::{Value, json};

use crate::{
    auth::routes::AuthApi,
    config::AppInfo,
    error::{ErrorBody, ErrorExamples},
    ops::OpsApi,
    posts::routes::PostApi,
    rate_limits::routes::RateLimitApi,
    tasks::routes::TaskApi,
    tiers::routes::TierApi,
    users::routes::UserApi,
};

pub const API_PREFIX: &str = "/api/v1";

#[derive(Tags)]
#[oai(rename_all = "snake_case")]
pub enum ApiTags {
    /// Log in, log out and refresh tokens
    Login,
    /// Sign-up and user accounts
    Users,
    /// Users' posts: cached reads, owner-only writes
    Posts,
    /// Tiers of users (writes: superuser)
    Tiers,
    /// Per-tier, per-path rate limits (writes: superuser)
    RateLimits,
    /// Background tasks: enqueue (rate limited) and read back
    Tasks,
    /// Liveness and readiness
    Operations,
}

pub type Api = (
    AuthApi,
    UserApi,
    PostApi,
    TierApi,
    RateLimitApi,
    TaskApi,
    OpsApi,
);

pub fn api_service(info: &AppInfo) -> OpenApiService<Api, ()> {
    let mut service = OpenApiService::new(
        (
            AuthApi,
            UserApi,
            PostApi,
            TierApi,
            RateLimitApi,
            TaskApi,
            OpsApi,
        ),
        &info.name,
        &info.version,
    )
    .description(&info.description)
    // Relative: Swagger UI and generated clients default to wherever the spec was served from.
    .server(ServerObject::new("/").description("The server this document came from"))
    .url_prefix(API_PREFIX);
    if info.contact_name.is_some() || info.contact_email.is_some() {
        let mut contact = ContactObject::new();
        if let Some(name) = &info.contact_name {
            contact = contact.name(name);
        }
        if let Some(email) = &info.contact_email {
            contact = contact.email(email);
        }
        service = service.contact(contact);
    }
    if let Some(license) = &info.license_name {
        let mut license = LicenseObject::new(license);
        if let Some(url) = &info.license_url {
            license = license.url(url);
        }
        service = service.license(license);
    }
    service
}

/// The spec committed as `openapi.json`: derived with the built-in app info, so the same
/// bytes come out whatever the environment.
pub fn spec_json() -> String {
    finish_spec(&api_service(&AppInfo::default()).spec())
}

/// Every operation of the document.
fn operations_mut(doc: &mut Value) -> impl Iterator<Item = &mut Value> {
    doc["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .flat_map(|item| {
            item.as_object_mut()
                .into_iter()
                .flat_map(|ops| ops.values_mut())
        })
}

/// Operations without a security requirement are public: they say so with `security: []`, so
/// tools do not read the absence as an oversight.
fn declare_public_operations(doc: &mut Value) {
    for operation in operations_mut(doc) {
        if let Some(operation) = operation.as_object_mut() {
            operation
                .entry("security")
                .or_insert_with(|| Value::Array(vec![]));
        }
    }
}

/// Every operation that takes a body can answer 413 (`MAX_BODY_BYTES`): the body extractors
/// and the request middleware refuse larger ones, with the one error schema.
fn declare_body_limit(doc: &mut Value) {
    for operation in operations_mut(doc) {
        if operation.get("requestBody").is_none() {
            continue;
        }
        let Some(responses) = operation["responses"].as_object_mut() else {
            continue;
        };
        let Some(mut too_large) = responses.get("422").cloned() else {
            continue;
        };
        too_large["description"] = Value::String("The request body is too large".into());
        responses.insert("413".into(), too_large);
        responses.sort_keys();
    }
}

/// A follow-up an operation's response leads to, declared as an OpenAPI link on that response:
/// its parameters are runtime expressions over the request and response (`$response.body#/id`).
/// Readers of the docs see what to call next; schemathesis's stateful phase chains create →
/// read → update → delete with them.
pub struct OperationLink {
    pub from: &'static str,
    pub status: &'static str,
    pub to: &'static str,
    pub parameters: &'static [(&'static str, &'static str)],
}

/// Every link the domains declare.
fn link_catalog() -> Vec<&'static OperationLink> {
    [
        crate::users::routes::LINKS,
        crate::posts::routes::LINKS,
        crate::tiers::routes::LINKS,
        crate::rate_limits::routes::LINKS,
        crate::tasks::routes::LINKS,
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Puts each declared link on its response, named after the operation it leads to.
fn declare_links(doc: &mut Value) {
    let catalog = link_catalog();
    for operation in operations_mut(doc) {
        let id = operation["operationId"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        for link in catalog.iter().filter(|link| link.from == id) {
            let Some(response) = operation["responses"][link.status].as_object_mut() else {
                continue;
            };
            let parameters: serde_json::Map<String, Value> = link
                .parameters
                .iter()
                .map(|(name, expression)| (name.to_string(), Value::String(expression.to_string())))
                .collect();
            let links = response
                .entry("links")
                .or_insert_with(|| Value::Object(Default::default()));
            links[link.to] = json!({ "operationId": link.to, "parameters": parameters });
        }
    }
}

/// Every error message the domains declare, for the examples of their error responses.
pub(crate) fn error_catalog() -> Vec<ErrorExamples> {
    [
        crate::auth::routes::error_examples(),
        crate::users::routes::error_examples(),
        crate::posts::routes::error_examples(),
        crate::tiers::routes::error_examples(),
        crate::rate_limits::routes::error_examples(),
        crate::tasks::routes::error_examples(),
        crate::ops::error_examples(),
    ]
    .concat()
}

/// Each error response shows the bodies it can carry as named examples: the operation's own
/// messages (else those every operation answers that status with), and those any operation can
/// meet whatever its own are.
fn document_error_examples(doc: &mut Value) {
    let catalog = error_catalog();
    for operation in operations_mut(doc) {
        let id = operation["operationId"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let Some(responses) = operation["responses"].as_object_mut() else {
            continue;
        };
        for (status, response) in responses.iter_mut() {
            let Ok(status) = status.parse::<u16>() else {
                continue;
            };
            if status < 400 {
                continue;
            }
            let own = catalog
                .iter()
                .find(|entry| entry.operation == id && entry.status == status);
            let mut bodies: Vec<ErrorBody> = own.map_or_else(
                || ErrorExamples::fallback(status),
                |entry| entry.bodies.clone(),
            );
            for body in ErrorExamples::universal(status) {
                if !bodies.contains(&body) {
                    bodies.push(body);
                }
            }
            let examples: serde_json::Map<String, Value> = bodies
                .iter()
                .map(|body| {
                    let summary = match body.detail.to_json() {
                        Some(Value::String(message)) => message,
                        _ => "Validation failed".to_string(),
                    };
                    let value = json!({ "summary": summary, "value": body.to_json() });
                    (example_name(&summary), value)
                })
                .collect();
            if examples.is_empty() {
                continue;
            }
            let content = response["content"].as_object_mut().into_iter().flatten();
            for (_, media) in content {
                media["examples"] = Value::Object(examples.clone());
            }
        }
    }
}

/// `User not found` → `user_not_found`.
fn example_name(summary: &str) -> String {
    let words: Vec<String> = summary
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .take(6)
        .map(str::to_ascii_lowercase)
        .collect();
    words.join("_")
}

/// poem-openapi leaves a `Json<T>` success response's description empty (OpenAPI requires
/// one): it takes the description of the schema it returns.
fn describe_responses(doc: &mut Value) {
    let schemas = doc["components"]["schemas"].clone();
    let responses = operations_mut(doc).flat_map(|op| {
        op["responses"]
            .as_object_mut()
            .into_iter()
            .flat_map(|r| r.values_mut())
    });
    for response in responses {
        if response["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
        {
            continue;
        }
        let described = response["content"]
            .as_object()
            .and_then(|content| content.values().next())
            .and_then(|media| media["schema"]["$ref"].as_str())
            .and_then(|r| r.strip_prefix("#/components/schemas/"))
            .and_then(|name| schemas[name]["description"].as_str())
            .unwrap_or("Success")
            .to_string();
        response["description"] = Value::String(described);
    }
}

/// Schema names `value` refers to, directly or through other schemas.
fn referenced_schemas(doc: &Value, value: &Value, found: &mut std::collections::BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            if let Some(name) = map
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
                && found.insert(name.to_string())
            {
                referenced_schemas(doc, &doc["components"]["schemas"][name], found);
            }
            map.values().for_each(|v| referenced_schemas(doc, v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| referenced_schemas(doc, v, found)),
        _ => {}
    }
}

/// Response bodies always carry every property (`None` is sent as `null`), so schemas that only
/// responses use list all their properties as required: generated clients then type them as
/// present (and nullable where they are), not as optional.
fn require_response_fields(doc: &mut Value) {
    let (mut requests, mut responses) = Default::default();
    let operations: Vec<&Value> = doc["paths"]
        .as_object()
        .into_iter()
        .flat_map(|paths| paths.values())
        .flat_map(|item| item.as_object().into_iter().flat_map(|ops| ops.values()))
        .collect();
    for operation in operations {
        referenced_schemas(doc, &operation["requestBody"], &mut requests);
        referenced_schemas(doc, &operation["parameters"], &mut requests);
        referenced_schemas(doc, &operation["responses"], &mut responses);
    }
    for name in responses.difference(&requests) {
        if let Some(schema) = doc["components"]["schemas"][name].as_object_mut()
            && let Some(properties) = schema.get("properties").and_then(Value::as_object)
        {
            let all: Vec<Value> = properties.keys().cloned().map(Value::String).collect();
            schema.insert("required".into(), Value::Array(all));
        }
    }
}

/// Operations that can answer 429 are rate limited: every one of their responses carries the
/// limiter's headers.
fn document_rate_limit_headers(doc: &mut Value) {
    for operation in operations_mut(doc) {
        let unmetered = operation["operationId"]
            .as_str()
            .is_some_and(|id| crate::rate_limit::UNMETERED_429.contains(&id));
        let Some(responses) = operation["responses"].as_object_mut() else {
            continue;
        };
        if unmetered || !responses.contains_key("429") {
            continue;
        }
        for (status, response) in responses.iter_mut() {
            let Some(response) = response.as_object_mut() else {
                continue;
            };
            // Errors raised before routing (a NUL in the URL, say) never reach the limiter.
            let always = status.starts_with('2') || status == "429";
            let headers = response
                .entry("headers")
                .or_insert_with(|| Value::Object(Default::default()));
            for (name, description) in crate::rate_limit::HEADERS {
                headers[name] = serde_json::json!({
                    "description": description,
                    "required": always,
                    "schema": {"type": "integer", "format": "int64", "minimum": 0},
                });
            }
        }
    }
}

/// What poem-openapi cannot express: JSON request bodies refuse undeclared properties (the
/// `JsonBody` extractor checks them against this same schema), so their schemas get
/// `additionalProperties: false`.
pub fn finish_spec(spec: &str) -> String {
    let Ok(mut doc) = serde_json::from_str::<Value>(spec) else {
        return spec.to_string();
    };
    let mut strict = Vec::new();
    for item in doc["paths"]
        .as_object()
        .into_iter()
        .flat_map(|p| p.values())
    {
        for operation in item.as_object().into_iter().flat_map(|o| o.values()) {
            let content = operation["requestBody"]["content"].as_object();
            for (content_type, media) in content.into_iter().flatten() {
                if content_type.starts_with("application/json")
                    && let Some(name) = media["schema"]["$ref"]
                        .as_str()
                        .and_then(|r| r.strip_prefix("#/components/schemas/"))
                {
                    strict.push(name.to_string());
                }
            }
        }
    }
    for name in strict {
        if let Some(schema) = doc["components"]["schemas"][&name].as_object_mut() {
            schema.insert("additionalProperties".into(), Value::Bool(false));
        }
    }
    document_rate_limit_headers(&mut doc);
    declare_body_limit(&mut doc);
    document_error_examples(&mut doc);
    declare_links(&mut doc);
    declare_public_operations(&mut doc);
    require_response_fields(&mut doc);
    describe_responses(&mut doc);
    serde_json::to_string_pretty(&doc).unwrap_or_else(|_| spec.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_link_fills_the_path_parameters_of_an_operation_that_exists() {
        let doc: Value = serde_json::from_str(&spec_json()).unwrap();
        let mut operations = std::collections::BTreeMap::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for operation in item.as_object().unwrap().values() {
                operations.insert(
                    operation["operationId"].as_str().unwrap(),
                    (path, operation),
                );
            }
        }
        for link in link_catalog() {
            let (_, from) = operations[link.from];
            assert!(
                from["responses"][link.status]["links"][link.to].is_object(),
                "{} {} -> {}",
                link.from,
                link.status,
                link.to
            );
            let (path, _) = operations
                .get(link.to)
                .expect("the target operation exists");
            let mut wanted: Vec<&str> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .collect();
            let mut given: Vec<&str> = link.parameters.iter().map(|(name, _)| *name).collect();
            wanted.sort_unstable();
            given.sort_unstable();
            assert_eq!(given, wanted, "{} -> {}", link.from, link.to);
            for (_, expression) in link.parameters {
                assert!(
                    expression.starts_with("$response.body#/")
                        || expression.starts_with("$request.path."),
                    "{expression}"
                );
            }
        }
    }

    #[test]
    fn every_listed_error_message_belongs_to_a_declared_response() {
        let doc: Value = serde_json::from_str(&spec_json()).unwrap();
        let mut declared = std::collections::BTreeSet::new();
        for item in doc["paths"].as_object().unwrap().values() {
            for operation in item.as_object().unwrap().values() {
                for status in operation["responses"].as_object().unwrap().keys() {
                    declared.insert((operation["operationId"].as_str().unwrap(), status.clone()));
                }
            }
        }
        for entry in error_catalog() {
            let key = (entry.operation, entry.status.to_string());
            assert!(
                declared.contains(&key),
                "{key:?} is not a declared response"
            );
            assert!(!entry.bodies.is_empty(), "{key:?}");
        }
        // Statuses whose message depends on the operation are listed by the operation itself.
        for (operation, status) in &declared {
            if ["400", "404"].contains(&status.as_str()) {
                let listed = error_catalog()
                    .iter()
                    .any(|e| e.operation == *operation && e.status.to_string() == *status);
                assert!(listed, "{operation} {status}: no messages listed");
            }
        }
    }

    #[test]
    fn every_property_of_a_response_only_schema_is_required() {
        let mut doc = serde_json::json!({
            "paths": {"/x": {"post": {
                "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/In"}}}},
                "responses": {"200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Page"}}}}},
            }}},
            "components": {"schemas": {
                "In": {"properties": {"a": {}, "b": {}}, "required": ["a"]},
                "Page": {"properties": {"data": {"items": {"$ref": "#/components/schemas/Out"}}}},
                "Out": {"properties": {"id": {}, "tier_id": {"nullable": true}}, "required": ["id"]},
            }},
        });
        require_response_fields(&mut doc);
        describe_responses(&mut doc);
        let schemas = &doc["components"]["schemas"];
        assert_eq!(
            schemas["Out"]["required"],
            serde_json::json!(["id", "tier_id"])
        );
        assert_eq!(schemas["Page"]["required"], serde_json::json!(["data"]));
        assert_eq!(
            schemas["In"]["required"],
            serde_json::json!(["a"]),
            "request schemas keep theirs"
        );
    }

    #[test]
    fn limited_operations_document_the_limiter_headers_on_every_response() {
        let mut doc = serde_json::json!({"paths": {
            "/limited": {"post": {"operationId": "limited",
                "responses": {"201": {}, "422": {}, "429": {}}}},
            "/login": {"post": {"operationId": "login", "responses": {"200": {}, "429": {}}}},
            "/free": {"get": {"operationId": "free", "responses": {"200": {}}}},
        }});
        document_rate_limit_headers(&mut doc);
        require_response_fields(&mut doc);
        describe_responses(&mut doc);
        for status in ["201", "429"] {
            let headers = &doc["paths"]["/limited"]["post"]["responses"][status]["headers"];
            for (name, _) in crate::rate_limit::HEADERS {
                assert_eq!(
                    headers[name]["schema"]["type"], "integer",
                    "{status} {name}"
                );
            }
        }
        assert!(doc["paths"]["/login"]["post"]["responses"]["200"]["headers"].is_null());
        assert!(doc["paths"]["/free"]["get"]["responses"]["200"]["headers"].is_null());
    }
}
