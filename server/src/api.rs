//! The OpenAPI service: every domain's operations under `/api/v1`, and the derived spec.

use poem_openapi::{ContactObject, LicenseObject, OpenApiService, Tags};

use crate::{auth::routes::AuthApi, config::AppInfo, ops::OpsApi, users::routes::UserApi};

pub const API_PREFIX: &str = "/api/v1";

#[derive(Tags)]
#[oai(rename_all = "snake_case")]
pub enum ApiTags {
    /// Log in, log out and refresh tokens
    Login,
    /// Sign-up and user accounts
    Users,
    /// Liveness and readiness
    Operations,
}

pub type Api = (AuthApi, UserApi, OpsApi);

pub fn api_service(info: &AppInfo) -> OpenApiService<Api, ()> {
    let mut service = OpenApiService::new((AuthApi, UserApi, OpsApi), &info.name, &info.version)
        .description(&info.description)
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
        service = service.license(LicenseObject::new(license));
    }
    service
}

/// The spec committed as `openapi.json`: derived with the built-in app info, so the same
/// bytes come out whatever the environment.
pub fn spec_json() -> String {
    api_service(&AppInfo::default()).spec()
}
