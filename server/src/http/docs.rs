//! The documentation pages: Swagger UI at `/docs` and ReDoc at `/redoc`.
//!
//! poem-openapi's pages inline the spec as it derives it; these inline the finished spec
//! (`api::finish_spec`: error examples, rate-limit headers, `security: []`...) instead, so the
//! pages show what `/openapi.json` says. ReDoc's page also drops its Google Fonts stylesheet: the
//! pages need nothing from outside this server, and work air-gapped.

use poem::{Endpoint, Route, endpoint::make_sync, web::Html};
use poem_openapi::OpenApiService;

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
    make_sync(move |_| Html(html.clone()))
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
}
