//! The committed spec is exactly what the server derives, and is client-generator friendly.

use serde_json::Value;

const COMMITTED: &str = include_str!("../../../openapi.json");

fn spec() -> Value {
    serde_json::from_str(COMMITTED).expect("openapi.json is JSON")
}

fn operations(spec: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            out.push((method.to_uppercase(), path.clone(), op.clone()));
        }
    }
    out
}

#[test]
fn committed_spec_matches_the_server() {
    assert!(
        COMMITTED.trim_end() == server::spec_json().trim_end(),
        "openapi.json is stale: regenerate it with `cargo run --bin server -- openapi > openapi.json`"
    );
}

#[test]
fn every_operation_has_a_stable_id_a_tag_and_a_summary() {
    let spec = spec();
    let ops = operations(&spec);
    assert!(
        ops.len() >= 12,
        "expected the users and auth operations, got {}",
        ops.len()
    );
    let mut ids = std::collections::HashSet::new();
    for (method, path, op) in &ops {
        let id = op["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path}: no operationId"));
        assert!(
            id.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "{method} {path}: operationId {id} is not snake_case"
        );
        assert!(ids.insert(id.to_string()), "duplicate operationId {id}");
        assert!(
            op["tags"].as_array().is_some_and(|t| t.len() == 1),
            "{id}: one tag"
        );
        assert!(
            op["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{id}: summary"
        );
        assert!(
            path.starts_with("/api/v1/"),
            "{id}: path {path} lacks the prefix"
        );
    }
}

#[test]
fn every_error_response_is_the_one_json_error_body() {
    let spec = spec();
    for (method, path, op) in operations(&spec) {
        let responses = op["responses"].as_object().expect("responses");
        let successes: Vec<_> = responses.keys().filter(|s| s.starts_with('2')).collect();
        assert_eq!(successes.len(), 1, "{method} {path}: one success status");
        for (status, response) in responses {
            if status.starts_with('2') {
                continue;
            }
            let content = response["content"].as_object().expect("error content");
            assert_eq!(
                content.len(),
                1,
                "{method} {path} {status}: one content type"
            );
            let (content_type, media) = content.iter().next().expect("content");
            assert!(content_type.starts_with("application/json"));
            assert_eq!(
                media["schema"]["$ref"], "#/components/schemas/ErrorBody",
                "{method} {path} {status}"
            );
        }
    }
}

#[test]
fn protected_operations_declare_bearer_auth_and_401() {
    let spec = spec();
    for (method, path, op) in operations(&spec) {
        // Public operations say so (`security: []`) rather than leave it unstated.
        let security = op["security"]
            .as_array()
            .unwrap_or_else(|| panic!("{method} {path}: no security stated"));
        if !security.is_empty() {
            assert!(
                op["responses"].get("401").is_some(),
                "{method} {path}: secured but no 401"
            );
        }
    }
    let scheme = &spec["components"]["securitySchemes"]["BearerAuth"];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "bearer");
    // Swagger UI's Authorize with a username and password: the OAuth2 password flow on the
    // login endpoint, with a scope (OpenAPI requires the scopes map).
    let password = &spec["components"]["securitySchemes"]["OAuth2PasswordBearer"];
    assert_eq!(password["flows"]["password"]["tokenUrl"], "/api/v1/login");
    assert!(password["flows"]["password"]["scopes"]["api"].is_string());
    let me = &spec["paths"]["/api/v1/user/me"]["get"]["security"];
    assert_eq!(
        me,
        &serde_json::json!([{"BearerAuth": []}, {"OAuth2PasswordBearer": []}])
    );
}

#[test]
fn json_request_bodies_refuse_undeclared_properties() {
    let spec = spec();
    let mut checked = 0;
    for (method, path, op) in operations(&spec) {
        let Some(content) = op["requestBody"]["content"].as_object() else {
            continue;
        };
        for (content_type, media) in content {
            let reference = media["schema"]["$ref"].as_str().expect("a named schema");
            let name = reference.trim_start_matches("#/components/schemas/");
            let strict = &spec["components"]["schemas"][name]["additionalProperties"];
            if content_type.starts_with("application/json") {
                assert_eq!(strict, &Value::Bool(false), "{method} {path}: {name}");
                checked += 1;
            } else {
                assert!(
                    strict.is_null(),
                    "{method} {path}: forms tolerate extra fields"
                );
            }
        }
    }
    assert!(checked >= 4, "checked {checked} JSON bodies");
}

#[test]
fn every_operation_response_and_schema_is_described() {
    let spec = spec();
    for (method, path, op) in operations(&spec) {
        let described = |v: &Value| v.as_str().is_some_and(|d| !d.trim().is_empty());
        assert!(
            described(&op["description"]),
            "{method} {path}: no description"
        );
        for (status, response) in op["responses"].as_object().unwrap() {
            assert!(
                described(&response["description"]),
                "{method} {path} {status}: no description"
            );
        }
    }
    for (name, schema) in spec["components"]["schemas"].as_object().unwrap() {
        let description = schema["description"].as_str().unwrap_or_default();
        assert!(
            !description.trim().is_empty(),
            "schema {name}: no description"
        );
    }
}

#[test]
fn every_field_is_described_and_every_object_schema_has_a_fitting_example() {
    let spec = spec();
    for (name, schema) in spec["components"]["schemas"].as_object().unwrap() {
        let Some(properties) = schema["properties"].as_object() else {
            continue;
        };
        for (field, property) in properties {
            // A reference is described by the schema it names (a description beside it would
            // need an `allOf` wrapper, which some generators refuse).
            let described = match property["$ref"].as_str() {
                Some(reference) => {
                    let target = reference.trim_start_matches("#/components/schemas/");
                    &spec["components"]["schemas"][target]["description"]
                }
                None => &property["description"],
            };
            assert!(
                described.as_str().is_some_and(|d| !d.trim().is_empty()),
                "{name}.{field}: no description"
            );
            assert!(
                property.get("allOf").is_none(),
                "{name}.{field}: allOf wrapper"
            );
        }
        let example = schema["example"]
            .as_object()
            .unwrap_or_else(|| panic!("schema {name}: no example"));
        for key in example.keys() {
            assert!(
                properties.contains_key(key),
                "{name} example: unknown {key}"
            );
        }
        for required in schema["required"].as_array().into_iter().flatten() {
            let required = required.as_str().unwrap();
            assert!(
                example.contains_key(required),
                "{name} example: lacks {required}"
            );
        }
    }
}

#[test]
fn every_error_response_shows_the_messages_it_carries() {
    let spec = spec();
    for (method, path, op) in operations(&spec) {
        for (status, response) in op["responses"].as_object().unwrap() {
            if !status.starts_with(['4', '5']) {
                continue;
            }
            let (_, media) = response["content"]
                .as_object()
                .unwrap()
                .iter()
                .next()
                .unwrap();
            let examples = media["examples"]
                .as_object()
                .unwrap_or_else(|| panic!("{method} {path} {status}: no examples"));
            assert!(!examples.is_empty(), "{method} {path} {status}");
            for (name, example) in examples {
                let detail = &example["value"]["detail"];
                assert!(
                    detail.is_string() || (status == "422" && detail.is_array()),
                    "{method} {path} {status} {name}: {example}"
                );
            }
        }
    }
    // The contract's messages, where it names them.
    let not_found = &spec["paths"]["/api/v1/{username}/post/{id}"]["get"]["responses"]["404"];
    let shown: Vec<&str> = not_found["content"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|media| media["examples"].as_object().unwrap().values())
        .map(|example| example["value"]["detail"].as_str().unwrap())
        .collect();
    assert_eq!(shown, ["User not found", "Post not found"]);
}

#[test]
fn ids_and_counts_are_64_bit_integers() {
    let spec = spec();
    let mut checked = 0;
    for (name, schema) in spec["components"]["schemas"].as_object().unwrap() {
        for (field, property) in schema["properties"].as_object().into_iter().flatten() {
            if property["type"] == "string" {
                continue; // task ids, OAuth2's client_id
            }
            if field == "id" || field.ends_with("_id") || field.ends_with("_count") {
                assert_eq!(property["format"], "int64", "{name}.{field}");
                checked += 1;
            }
        }
    }
    assert!(checked >= 10, "checked only {checked} fields");
    let formats = serde_json::to_string(&spec).unwrap();
    assert!(
        !formats.contains("\"uint64\""),
        "unsigned formats map to 32 bits in some generators"
    );
}
