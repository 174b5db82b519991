//! Cache policies: what an operation declares, and the endpoint wrapper that applies it.
//!
//! A policy is declared next to the routes with [`cache_policy!`](crate::cache_policy) and
//! named in the operation's `transform`, so the handler itself knows nothing of caching:
//! - on a `GET` with a key, the response is served from the cache, or produced by the handler
//!   and stored when it is a 2xx;
//! - on any other method, after a 2xx, the key, the extra keys and the key patterns are
//!   invalidated; a failed write invalidates nothing.
//!
//! Templates name path and query parameters in braces; a query parameter the request leaves
//! out takes the default the spec declares for it, as the handler does.

use std::time::Duration;

use poem::{
    Endpoint, IntoResponse, Request, Response, Result,
    http::{Method, StatusCode, header},
};

use crate::{
    cache::store::{CacheKey, Invalidation, Lookup},
    http::routes::RouteParams,
    state::AppState,
};

/// What an operation declares; the field names are the original's decorator arguments.
#[derive(Debug, Clone, Copy)]
pub struct PolicySpec {
    /// The key template; the key is `<key_prefix>:<value of resource_id_name>`.
    pub key_prefix: Option<&'static str>,
    pub resource_id_name: Option<&'static str>,
    /// Seconds a stored response lives.
    pub expiration: u64,
    /// Whole key templates to drop after a successful write.
    pub to_invalidate_extra: &'static [&'static str],
    /// Key patterns (`<namespace>:<prefix>*`) to drop after a successful write.
    pub pattern_to_invalidate_extra: &'static [&'static str],
}

impl PolicySpec {
    pub const NONE: Self = Self {
        key_prefix: None,
        resource_id_name: None,
        expiration: 3600,
        to_invalidate_extra: &[],
        pattern_to_invalidate_extra: &[],
    };

    pub const fn key_prefix(mut self, template: &'static str) -> Self {
        self.key_prefix = Some(template);
        self
    }

    pub const fn resource_id_name(mut self, parameter: &'static str) -> Self {
        self.resource_id_name = Some(parameter);
        self
    }

    pub const fn expiration(mut self, seconds: u64) -> Self {
        self.expiration = seconds;
        self
    }

    pub const fn to_invalidate_extra(mut self, templates: &'static [&'static str]) -> Self {
        self.to_invalidate_extra = templates;
        self
    }

    pub const fn pattern_to_invalidate_extra(mut self, patterns: &'static [&'static str]) -> Self {
        self.pattern_to_invalidate_extra = patterns;
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Param(String),
}

/// A key template such as `{username}_posts:page_{page}`, split into literals and parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTemplate {
    parts: Vec<Part>,
    /// The template of the key's namespace: everything before the first literal `:`.
    namespace: Vec<Part>,
}

fn parse_parts(template: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut rest = template;
    while !rest.is_empty() {
        match rest.find('{') {
            Some(0) => {
                let end = rest
                    .find('}')
                    .ok_or_else(|| format!("unclosed `{{` in {template:?}"))?;
                let name = &rest[1..end];
                if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                    return Err(format!("bad parameter name {name:?} in {template:?}"));
                }
                parts.push(Part::Param(name.to_string()));
                rest = &rest[end + 1..];
            }
            found => {
                let end = found.unwrap_or(rest.len());
                if rest[..end].contains('}') {
                    return Err(format!("stray `}}` in {template:?}"));
                }
                parts.push(Part::Literal(rest[..end].to_string()));
                rest = &rest[end..];
            }
        }
    }
    Ok(parts)
}

impl KeyTemplate {
    pub fn parse(template: &str) -> Result<Self, String> {
        if template.contains(['*', '?', '[', ']']) {
            return Err(format!("{template:?}: a key has no wildcards"));
        }
        let parts = parse_parts(template)?;
        let mut namespace = Vec::new();
        for part in &parts {
            match part {
                Part::Literal(text) if text.contains(':') => {
                    let before = &text[..text.find(':').unwrap_or(text.len())];
                    if !before.is_empty() {
                        namespace.push(Part::Literal(before.to_string()));
                    }
                    break;
                }
                other => namespace.push(other.clone()),
            }
        }
        if namespace.is_empty() {
            return Err(format!(
                "{template:?} starts with `:`: its namespace is empty"
            ));
        }
        Ok(Self { parts, namespace })
    }

    fn fill_parts(parts: &[Part], param: &dyn Fn(&str) -> Option<String>) -> Option<String> {
        let mut out = String::new();
        for part in parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Param(name) => out.push_str(&param(name)?),
            }
        }
        Some(out)
    }

    /// The key, or `None` when a parameter has no (unambiguous) value.
    pub fn fill(&self, param: &dyn Fn(&str) -> Option<String>) -> Option<CacheKey> {
        Some(CacheKey {
            namespace: Self::fill_parts(&self.namespace, param)?,
            key: Self::fill_parts(&self.parts, param)?,
        })
    }
}

/// A key pattern `<namespace>:<prefix>*`: the only wildcard is the final `*`, so matching is
/// a prefix test within one namespace, never a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternTemplate(KeyTemplate);

impl PatternTemplate {
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let prefix = pattern
            .strip_suffix('*')
            .ok_or_else(|| format!("{pattern:?}: a pattern ends with `*`"))?;
        let template = KeyTemplate::parse(prefix)
            .map_err(|err| format!("{pattern:?}: only a final `*` is supported ({err})"))?;
        if !template
            .parts
            .iter()
            .any(|p| matches!(p, Part::Literal(text) if text.contains(':')))
        {
            return Err(format!(
                "{pattern:?}: the part before `*` must name a whole namespace and `:`"
            ));
        }
        Ok(Self(template))
    }

    pub fn fill(&self, param: &dyn Fn(&str) -> Option<String>) -> Option<Invalidation> {
        let CacheKey { namespace, key } = self.0.fill(param)?;
        Some(Invalidation::Prefix {
            namespace,
            prefix: key,
        })
    }
}

/// A parsed, checked policy.
#[derive(Debug, Clone)]
pub struct CachePolicy {
    pub name: &'static str,
    key: Option<KeyTemplate>,
    ttl: Duration,
    extra_keys: Vec<KeyTemplate>,
    patterns: Vec<PatternTemplate>,
}

impl CachePolicy {
    pub fn parse(name: &'static str, spec: &PolicySpec) -> Result<Self, String> {
        let key = match (spec.key_prefix, spec.resource_id_name) {
            (Some(prefix), Some(id)) => Some(KeyTemplate::parse(&format!("{prefix}:{{{id}}}"))?),
            (Some(prefix), None) => Some(KeyTemplate::parse(prefix)?),
            (None, Some(_)) => return Err("resource_id_name needs a key_prefix".into()),
            (None, None) => None,
        };
        if spec.expiration == 0 {
            return Err("expiration must be at least one second".into());
        }
        Ok(Self {
            name,
            key,
            ttl: Duration::from_secs(spec.expiration),
            extra_keys: spec
                .to_invalidate_extra
                .iter()
                .map(|t| KeyTemplate::parse(t))
                .collect::<Result<_, _>>()?,
            patterns: spec
                .pattern_to_invalidate_extra
                .iter()
                .map(|p| PatternTemplate::parse(p))
                .collect::<Result<_, _>>()?,
        })
    }

    /// What a successful write drops; targets whose parameters are missing are skipped.
    pub fn invalidations(&self, param: &dyn Fn(&str) -> Option<String>) -> Vec<Invalidation> {
        let keys = self.key.iter().chain(&self.extra_keys);
        keys.filter_map(|t| t.fill(param).map(Invalidation::Key))
            .chain(self.patterns.iter().filter_map(|p| p.fill(param)))
            .collect()
    }
}

/// Responses larger than this are served but not stored: they would cost more cache memory
/// than they save.
pub const MAX_ENTRY_BYTES: usize = 1024 * 1024;

/// The endpoint wrapper a `transform` returns.
pub struct Cached<E> {
    inner: E,
    policy: CachePolicy,
}

impl<E: Endpoint> Cached<E> {
    /// Called when the routes are built (at start-up): a malformed declaration stops the
    /// server there, never on a request.
    pub fn new(inner: E, name: &'static str, spec: &PolicySpec) -> Self {
        let policy = CachePolicy::parse(name, spec)
            .unwrap_or_else(|err| panic!("cache policy `{name}` is invalid: {err}"));
        Self { inner, policy }
    }

    async fn call_inner(&self, req: Request) -> Result<Response> {
        self.inner.call(req).await.map(IntoResponse::into_response)
    }
}

impl<E: Endpoint> Endpoint for Cached<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Response> {
        let Some(cache) = req.data::<AppState>().map(|state| state.cache.clone()) else {
            return self.call_inner(req).await;
        };
        let params = cache.request_params(&req);
        let param = |name: &str| params.get(name);
        if req.method() == Method::GET {
            let Some(key) = self.policy.key.as_ref().and_then(|t| t.fill(&param)) else {
                return self.call_inner(req).await;
            };
            let seen = match cache.lookup(&key).await {
                Some(Lookup::Hit(entry)) => match entry::decode(entry) {
                    Some(response) => return Ok(response),
                    None => None,
                },
                Some(Lookup::Miss(generation)) => Some(generation),
                None => None,
            };
            let mut response = self.call_inner(req).await?;
            if let Some(seen) = seen
                && response.status().is_success()
                && !response.headers().contains_key(header::SET_COOKIE)
            {
                let body = response.take_body().into_bytes().await?;
                if body.len() <= MAX_ENTRY_BYTES {
                    let stored = entry::encode(&response, &body);
                    cache.put(&key, stored, self.policy.ttl, &seen).await;
                }
                response.set_body(body);
            }
            return Ok(response);
        }
        let targets = self.policy.invalidations(&param);
        let response = self.call_inner(req).await?;
        if response.status().is_success() {
            cache.invalidate(targets).await;
        }
        Ok(response)
    }
}

/// The stored form of a response: version, status, content type, then the body as sent.
/// A hit is answered from these bytes without decoding the body.
mod entry {
    use super::*;
    use bytes::{BufMut, Bytes, BytesMut};

    const VERSION: u8 = 1;

    pub fn encode(response: &Response, body: &Bytes) -> Bytes {
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        let content_type = &content_type[..content_type.len().min(255)];
        let mut out = BytesMut::with_capacity(4 + content_type.len() + body.len());
        out.put_u8(VERSION);
        out.put_u16(response.status().as_u16());
        out.put_u8(content_type.len() as u8);
        out.put_slice(content_type);
        out.put_slice(body);
        out.freeze()
    }

    /// `None` for bytes this version did not write: treated as a miss.
    pub fn decode(stored: Bytes) -> Option<Response> {
        let (&version, rest) = stored.split_first()?;
        if version != VERSION || rest.len() < 3 {
            return None;
        }
        let status = StatusCode::from_u16(u16::from_be_bytes([rest[0], rest[1]])).ok()?;
        let type_len = usize::from(rest[2]);
        let body_start = 4 + type_len;
        if stored.len() < body_start {
            return None;
        }
        let mut builder = Response::builder().status(status);
        if type_len > 0 {
            builder = builder.header(header::CONTENT_TYPE, stored.slice(4..body_start).as_ref());
        }
        Some(builder.body(stored.slice(body_start..)))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_response_round_trips_through_its_stored_form() {
            let response = Response::builder()
                .status(StatusCode::CREATED)
                .content_type("application/json; charset=utf-8")
                .finish();
            let stored = encode(&response, &Bytes::from_static(b"{\"id\":1}"));
            let back = decode(stored).unwrap();
            assert_eq!(back.status(), StatusCode::CREATED);
            assert_eq!(
                back.headers()[header::CONTENT_TYPE],
                "application/json; charset=utf-8"
            );
            assert_eq!(
                decode(Bytes::from_static(b"\x02junk")).map(|r| r.status()),
                None
            );
            assert!(decode(Bytes::new()).is_none());
        }
    }
}

/// The concrete parameters of a request, by the names the spec gives them.
pub struct RequestParams {
    path: Vec<(String, String)>,
    query: Vec<(String, String)>,
    defaults: Option<std::sync::Arc<std::collections::HashMap<String, String>>>,
    integers: Option<std::sync::Arc<std::collections::HashSet<String>>>,
}

impl RequestParams {
    pub fn new(req: &Request, names: Option<&RouteParams>) -> Self {
        let path = names
            .map(|route| {
                route
                    .path
                    .iter()
                    .enumerate()
                    .filter_map(|(i, name)| {
                        // poem-openapi names path parameters param0, param1... in the router.
                        let value = req.raw_path_param(&format!("param{i}"))?;
                        Some((name.clone(), value.to_string()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        // Parsed as poem-openapi parses it for the handler: the same values, the same defaults.
        let query = req.params::<Vec<(String, String)>>().unwrap_or_default();
        Self {
            path,
            query,
            defaults: names.map(|route| route.query_defaults.clone()),
            integers: names.map(|route| route.integers.clone()),
        }
    }

    /// A path parameter, else a query parameter given once, else its declared default;
    /// integers in canonical form. No value (so no caching) for a repeated query parameter
    /// or an integer that does not parse: the key could disagree with the handler.
    pub fn get(&self, name: &str) -> Option<String> {
        let value = self.raw(name)?;
        if self.integers.as_ref().is_some_and(|i| i.contains(name)) {
            return value.parse::<i64>().ok().map(|n| n.to_string());
        }
        Some(value)
    }

    fn raw(&self, name: &str) -> Option<String> {
        if let Some((_, value)) = self.path.iter().find(|(n, _)| n == name) {
            return Some(value.clone());
        }
        let mut given = self.query.iter().filter(|(n, _)| n == name);
        match (given.next(), given.next()) {
            (Some((_, value)), None) => Some(value.clone()),
            (Some(_), Some(_)) => None,
            (None, _) => self.defaults.as_ref()?.get(name).cloned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn keys_follow_the_contracts_formats() {
        let spec = PolicySpec::NONE
            .key_prefix("{username}_posts:page_{page}:items_per_page:{items_per_page}")
            .resource_id_name("username");
        let policy = CachePolicy::parse("list", &spec).unwrap();
        let key = policy.key.unwrap().fill(&values(&[
            ("username", "alice"),
            ("page", "2"),
            ("items_per_page", "10"),
        ]));
        assert_eq!(
            key,
            Some(CacheKey {
                namespace: "alice_posts".into(),
                key: "alice_posts:page_2:items_per_page:10:alice".into(),
            })
        );
        let post = KeyTemplate::parse("{username}_post_cache:{id}").unwrap();
        let key = post
            .fill(&values(&[("username", "bob"), ("id", "7")]))
            .unwrap();
        assert_eq!(
            (key.namespace.as_str(), key.key.as_str()),
            ("bob_post_cache", "bob_post_cache:7")
        );
        assert_eq!(post.fill(&values(&[("username", "bob")])), None);
    }

    #[test]
    fn patterns_are_a_namespace_and_a_prefix() {
        let pattern = PatternTemplate::parse("{username}_posts:*").unwrap();
        assert_eq!(
            pattern.fill(&values(&[("username", "alice")])),
            Some(Invalidation::Prefix {
                namespace: "alice_posts".into(),
                prefix: "alice_posts:".into(),
            })
        );
        // A parameter's value is literal, even when it looks like a wildcard.
        assert_eq!(
            pattern.fill(&values(&[("username", "a*")])),
            Some(Invalidation::Prefix {
                namespace: "a*_posts".into(),
                prefix: "a*_posts:".into(),
            })
        );
        assert!(PatternTemplate::parse("{username}_posts").is_err());
        assert!(PatternTemplate::parse("{username}_posts*").is_err());
        assert!(PatternTemplate::parse("*_posts:*").is_err());
        assert!(PatternTemplate::parse("posts:page_?*").is_err());
    }

    #[test]
    fn malformed_declarations_are_refused() {
        let bad = |spec: PolicySpec| CachePolicy::parse("bad", &spec).is_err();
        assert!(bad(PolicySpec::NONE.resource_id_name("id")));
        assert!(bad(PolicySpec::NONE
            .key_prefix("{unclosed")
            .resource_id_name("id")));
        assert!(bad(PolicySpec::NONE
            .key_prefix(":x")
            .resource_id_name("id")));
        assert!(bad(PolicySpec::NONE.key_prefix("a").expiration(0)));
        assert!(!bad(
            PolicySpec::NONE.pattern_to_invalidate_extra(&["{u}_posts:*"])
        ));
    }
}
