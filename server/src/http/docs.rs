//! The documentation pages: Swagger UI at `/docs` and ReDoc at `/redoc`.
//!
//! poem-openapi's pages inline the spec as it derives it; these inline the finished spec
//! (`api::finish_spec`: error examples, rate-limit headers, `security: []`...) instead, so the
//! pages show what `/openapi.json` says. ReDoc's page also drops its Google Fonts stylesheet: the
//! pages need nothing from outside this server, and work air-gapped.

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use poem::{
    Endpoint, IntoResponse, Route,
    endpoint::make_sync,
    http::{HeaderValue, header},
    web::Html,
};
use poem_openapi::OpenApiService;
use sha2::{Digest, Sha256};

use crate::api::Api;

const REDOC_FONTS: &str = r#"<link href="https://fonts.googleapis.com/css?family=Montserrat:300,400,700|Roboto:300,400,700" rel="stylesheet">"#;

/// `html` with the spec it inlines (`let spec = <derived>;`) replaced by `finished`.
fn with_spec(html: &str, derived: &str, finished: &str) -> String {
    html.replacen(
        &format!("let spec = {derived};"),
        &format!("let spec = {finished};"),
        1,
    )
}

/// The page's policy: its own inline scripts (by hash) and nothing else runs; it talks only to
/// this server. Styles stay open to inline use, which both UIs build at run time.
fn content_security_policy(html: &str) -> String {
    let scripts: Vec<String> = inline_scripts(html)
        .map(|script| format!("'sha256-{}'", BASE64.encode(Sha256::digest(script))))
        .collect();
    format!(
        "default-src 'none'; script-src {}; style-src 'unsafe-inline'; img-src 'self' data:; \
         font-src 'self' data:; connect-src 'self'; worker-src blob:; base-uri 'none'; \
         form-action 'none'; frame-ancestors 'none'",
        scripts.join(" ")
    )
}

/// The text of each `<script>` element without a `src`.
fn inline_scripts(html: &str) -> impl Iterator<Item = &str> {
    let mut rest = html;
    std::iter::from_fn(move || {
        loop {
            let start = rest.find("<script")?;
            let open_end = start + rest[start..].find('>')? + 1;
            let close = open_end + rest[open_end..].find("</script>")?;
            let opening_tag = &rest[start..open_end];
            let script = &rest[open_end..close];
            rest = &rest[close + "</script>".len()..];
            if !opening_tag.contains("src=") {
                return Some(script);
            }
        }
    })
}

pub struct DocPages {
    pub swagger_ui: String,
    pub redoc: String,
}

impl DocPages {
    pub fn new(api: &OpenApiService<Api, ()>, finished: &str) -> Self {
        let derived = api.spec();
        Self {
            swagger_ui: with_spec(&api.swagger_ui_html(), &derived, finished),
            redoc: with_spec(&api.redoc_html(), &derived, finished).replacen(REDOC_FONTS, "", 1),
        }
    }

    /// Mounts the pages on `route`.
    pub fn mount(self, route: Route) -> Route {
        let Self { swagger_ui, redoc } = self;
        route
            .at("/docs", page(swagger_ui))
            .at("/redoc", page(redoc))
    }
}

fn page(html: String) -> impl Endpoint {
    let policy = HeaderValue::from_str(&content_security_policy(&html))
        .unwrap_or(HeaderValue::from_static("default-src 'none'"));
    make_sync(move |_| {
        Html(html.clone())
            .with_header(header::CONTENT_SECURITY_POLICY, policy.clone())
            .into_response()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        api::{api_service, finish_spec},
        config::AppInfo,
    };

    #[test]
    fn pages_inline_the_finished_spec_and_nothing_external() {
        let api = api_service(&AppInfo::default());
        let finished = finish_spec(&api.spec());
        let pages = DocPages::new(&api, &finished);
        for html in [&pages.swagger_ui, &pages.redoc] {
            assert!(html.contains(&format!("let spec = {finished};")));
            assert!(!html.contains("fonts.googleapis.com"));
        }
    }

    #[test]
    fn the_policy_allows_exactly_the_pages_inline_scripts() {
        let html = "<script charset=\"UTF-8\">let a = 1;</script><script src=\"x.js\"></script>\
                    <style>p{}</style><script>\nrun();\n</script>";
        let scripts: Vec<&str> = inline_scripts(html).collect();
        assert_eq!(scripts, ["let a = 1;", "\nrun();\n"]);
        let policy = content_security_policy(html);
        let hash = BASE64.encode(Sha256::digest("let a = 1;"));
        assert!(
            policy.contains(&format!("script-src 'sha256-{hash}' 'sha256-")),
            "{policy}"
        );
        assert!(policy.starts_with("default-src 'none';"), "{policy}");
        assert!(!policy.contains("unsafe-eval"), "{policy}");
    }
}
