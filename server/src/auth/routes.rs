//! `POST /login`, `POST /logout`, `POST /refresh`.

use poem::{Request, web::Data};
use poem_openapi::{Object, OpenApi, payload::Json, types::Example};
use sea_orm::TransactionTrait;
use serde::Deserialize;
use validator::Validate;

use crate::{
    api::ApiTags,
    auth::{BearerAuth, jwt::TokenKind, revocation, security::user_for_token},
    error::{AppError, ErrorExamples, Errors},
    http::{
        body::{FormBody, OptionalJsonBody},
        responses::Message,
    },
    state::AppState,
    users::service as users,
};

/// The OAuth2 password-grant form. `username` may be the username or the email.
#[derive(Debug, Object, Deserialize, Validate)]
#[oai(example, skip_serializing_if_is_none)]
pub struct LoginForm {
    /// Username, or email if it contains `@`.
    pub username: String,
    /// The user's password.
    pub password: String,
    /// Only `password` is accepted when given.
    #[oai(validator(pattern = "^password$"))]
    #[validate(custom(function = "password_grant"))]
    pub grant_type: Option<String>,
    /// Accepted for OAuth2 clients, ignored: a token carries no scopes.
    pub scope: Option<String>,
    /// Accepted for OAuth2 clients, ignored.
    pub client_id: Option<String>,
    /// Accepted for OAuth2 clients, ignored.
    pub client_secret: Option<String>,
}

impl Example for LoginForm {
    fn example() -> Self {
        Self {
            username: "ada".into(),
            password: "correct horse battery".into(),
            grant_type: Some("password".into()),
            scope: None,
            client_id: None,
            client_secret: None,
        }
    }
}

fn password_grant(grant_type: &str) -> Result<(), validator::ValidationError> {
    if grant_type == "password" {
        return Ok(());
    }
    Err(validator::ValidationError::new("grant_type")
        .with_message("grant_type must be \"password\"".into()))
}

/// Shortened JWTs for the spec's examples (real ones are longer).
const EXAMPLE_ACCESS_TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.access";
const EXAMPLE_REFRESH_TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.refresh";

/// The tokens of a successful login (OAuth2 password grant response).
#[derive(Debug, Object)]
#[oai(example)]
pub struct Token {
    /// A JWT for the `Authorization: Bearer` header, valid for `ACCESS_TOKEN_EXPIRE_MINUTES`.
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: String,
    /// A JWT for `POST /refresh`, valid for `REFRESH_TOKEN_EXPIRE_DAYS`.
    pub refresh_token: String,
}

impl Example for Token {
    fn example() -> Self {
        Self {
            access_token: EXAMPLE_ACCESS_TOKEN.into(),
            token_type: "bearer".into(),
            refresh_token: EXAMPLE_REFRESH_TOKEN.into(),
        }
    }
}

/// A new access token, from a refresh token.
#[derive(Debug, Object)]
#[oai(example)]
pub struct AccessToken {
    /// A JWT for the `Authorization: Bearer` header.
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: String,
}

impl Example for AccessToken {
    fn example() -> Self {
        Self {
            access_token: EXAMPLE_ACCESS_TOKEN.into(),
            token_type: "bearer".into(),
        }
    }
}

/// The refresh token from `POST /login`.
#[derive(Debug, Object, Deserialize, Validate)]
#[oai(example)]
pub struct RefreshRequest {
    /// The `refresh_token` of a login.
    pub refresh_token: String,
}

impl Example for RefreshRequest {
    fn example() -> Self {
        Self {
            refresh_token: EXAMPLE_REFRESH_TOKEN.into(),
        }
    }
}

/// Optionally, the refresh token to revoke along with the access token.
#[derive(Debug, Object, Deserialize, Validate)]
#[oai(example, skip_serializing_if_is_none)]
pub struct LogoutRequest {
    /// Revoked along with the access token when given.
    #[serde(default, deserialize_with = "crate::http::body::non_null")]
    pub refresh_token: Option<String>,
}

impl Example for LogoutRequest {
    fn example() -> Self {
        Self {
            refresh_token: Some(EXAMPLE_REFRESH_TOKEN.into()),
        }
    }
}

pub struct AuthApi;

#[OpenApi(tag = "ApiTags::Login")]
impl AuthApi {
    /// Log in with a username (or email) and password
    ///
    /// Returns an access token for the `Authorization: Bearer` header and a refresh token for
    /// `POST /refresh`. Failed attempts are limited per client address and per username
    /// (429 with `Retry-After`).
    #[oai(path = "/login", method = "post", operation_id = "login")]
    async fn login(
        &self,
        req: &Request,
        state: Data<&AppState>,
        form: FormBody<LoginForm>,
    ) -> Result<Json<Token>, Errors<401, 422, 429, 503>> {
        let form = form.0;
        let attempt = state.limiter.login_attempt(req, &form.username).await?;
        let user = users::find_active_by_login(&state.db, &form.username).await?;
        let stored_hash = user.as_ref().map(|u| u.hashed_password.clone());
        if !state.passwords.verify(form.password, stored_hash).await? {
            return Err(AppError::InvalidCredentials.into());
        }
        let user = user.ok_or(AppError::InvalidCredentials)?;
        state.limiter.login_succeeded(attempt).await;
        let issue = |kind| {
            state
                .tokens
                .issue(user.id, kind)
                .map_err(AppError::internal)
        };
        Ok(Json(Token {
            access_token: issue(TokenKind::Access)?,
            token_type: "bearer".into(),
            refresh_token: issue(TokenKind::Refresh)?,
        }))
    }

    /// Log out
    ///
    /// Revokes the presented access token, and the refresh token if one is sent, until they
    /// expire.
    #[oai(path = "/logout", method = "post", operation_id = "logout")]
    async fn logout(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        body: OptionalJsonBody<LogoutRequest>,
    ) -> Result<Json<Message>, Errors<401, 422>> {
        let claims = &auth.claims;
        let txn = state.db.begin().await?;
        if let Some(refresh_token) = body.0.and_then(|b| b.refresh_token) {
            // Only the caller's own, valid refresh token is revoked; anything else is ignored
            // rather than failing the logout.
            if let Ok(refresh) = state.tokens.verify(&refresh_token, TokenKind::Refresh)
                && refresh.sub == claims.sub
            {
                revocation::revoke(&txn, &refresh.jti, refresh.expires_at()).await?;
            }
        }
        revocation::revoke(&txn, &claims.jti, claims.expires_at()).await?;
        txn.commit().await?;
        Ok(Message::json("Logged out successfully"))
    }

    /// Exchange a refresh token for a new access token
    ///
    /// Send the `refresh_token` from `POST /login`. 401 if it is invalid, expired, revoked (by
    /// logout) or not a refresh token.
    #[oai(
        path = "/refresh",
        method = "post",
        operation_id = "refresh_access_token"
    )]
    async fn refresh(
        &self,
        state: Data<&AppState>,
        body: crate::http::body::JsonBody<RefreshRequest>,
    ) -> Result<Json<AccessToken>, Errors<401, 422>> {
        let auth = user_for_token(&state, &body.0.refresh_token, TokenKind::Refresh).await?;
        let access_token = state
            .tokens
            .issue(auth.user.id, TokenKind::Access)
            .map_err(AppError::internal)?;
        Ok(Json(AccessToken {
            access_token,
            token_type: "bearer".into(),
        }))
    }
}

/// The messages of this domain's errors, for the spec.
pub(crate) fn error_examples() -> Vec<ErrorExamples> {
    let busy = AppError::Overloaded {
        retry_after_secs: 1,
    };
    vec![
        // No token is involved: only bad credentials.
        ErrorExamples::new("login", 401, [AppError::InvalidCredentials]),
        ErrorExamples::new("login", 503, [busy]),
        ErrorExamples::new("refresh_access_token", 401, [AppError::InvalidCredentials]),
    ]
}
