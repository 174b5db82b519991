//! What the router cannot tell a middleware: poem-openapi names path parameters `param0`,
//! `param1`... in the router, so the names, declared defaults and types the spec gives them are
//! looked up here, by the router's pattern, once per start-up.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use poem::{PathPattern, Request};

/// One route, from the spec.
#[derive(Debug, Default)]
pub struct RouteParams {
    /// The spec's path, with named parameters: `/api/v1/{username}/posts`.
    pub template: String,
    /// Path parameter names, in path order.
    pub path: Vec<String>,
    /// Declared defaults of query parameters.
    pub query_defaults: Arc<HashMap<String, String>>,
    /// Parameters the spec types as integers: their values are keyed in canonical form, so
    /// `/post/07` and `/post/7` share one entry (and one invalidation).
    pub integers: Arc<HashSet<String>>,
}

/// Router pattern (`/api/v1/:param0/posts`) → its parameters.
fn route_params(spec_json: &str) -> HashMap<String, RouteParams> {
    let spec: serde_json::Value = serde_json::from_str(spec_json).unwrap_or_default();
    let mut routes = HashMap::new();
    for (path, item) in spec["paths"].as_object().into_iter().flatten() {
        let mut names = Vec::new();
        let pattern: Vec<String> = path
            .split('/')
            .map(
                |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => {
                        names.push(name.to_string());
                        format!(":param{}", names.len() - 1)
                    }
                    None => segment.to_string(),
                },
            )
            .collect();
        let mut defaults = HashMap::new();
        let mut integers = HashSet::new();
        for operation in item.as_object().into_iter().flat_map(|o| o.values()) {
            for param in operation["parameters"].as_array().into_iter().flatten() {
                let Some(name) = param["name"].as_str() else {
                    continue;
                };
                if param["schema"]["type"] == "integer" {
                    integers.insert(name.to_string());
                }
                let default = &param["schema"]["default"];
                if param["in"] == "query" && !default.is_null() {
                    let value = default
                        .as_str()
                        .map_or_else(|| default.to_string(), str::to_string);
                    defaults.insert(name.to_string(), value);
                }
            }
        }
        routes.insert(
            pattern.join("/"),
            RouteParams {
                template: path.clone(),
                path: names,
                query_defaults: Arc::new(defaults),
                integers: Arc::new(integers),
            },
        );
    }
    routes
}

/// Router pattern → route, for every operation of the API.
#[derive(Debug, Default)]
pub struct RouteTable(HashMap<String, RouteParams>);

impl RouteTable {
    pub fn from_spec(spec_json: &str) -> Self {
        Self(route_params(spec_json))
    }

    /// The route the router matched for this request (set inside the API's routes only).
    pub fn for_request(&self, req: &Request) -> Option<&RouteParams> {
        let pattern = req.data::<PathPattern>()?;
        self.0.get(pattern.0.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_parameters_are_named_from_the_spec() {
        let spec = r#"{"paths": {"/api/v1/{username}/post/{id}": {"get": {"parameters": [
                {"name": "id", "in": "path", "schema": {"type": "integer"}}]}},
            "/api/v1/{username}/posts": {"get": {"parameters": [
                {"name": "page", "in": "query", "schema": {"default": 1}},
                {"name": "sort", "in": "query", "schema": {"default": "id"}},
                {"name": "username", "in": "path", "schema": {}}]}}}}"#;
        let routes = route_params(spec);
        let post = &routes["/api/v1/:param0/post/:param1"];
        assert_eq!(post.path, ["username", "id"]);
        assert!(post.integers.contains("id"));
        let list = &routes["/api/v1/:param0/posts"];
        assert_eq!(list.query_defaults["page"], "1");
        assert_eq!(list.query_defaults["sort"], "id");
        assert!(!list.query_defaults.contains_key("username"));
    }
}
