//! The bearer-token security scheme. Its checker verifies the token, refuses revoked ones and
//! loads the user, so a handler that takes [`BearerAuth`] only runs for a live user.

use poem::Request;
use poem_openapi::{OAuthScopes, SecurityScheme, auth::Bearer};
use sea_orm::QueryFilter;

use crate::{
    auth::{
        jwt::{Claims, TokenKind},
        revocation,
    },
    entities::user,
    error::AppError,
    state::AppState,
    users::service as users,
};

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user: user::Model,
    /// The claims of the presented access token (logout revokes its `jti`).
    pub claims: Claims,
}

impl AuthUser {
    pub fn require_superuser(&self) -> Result<(), AppError> {
        if self.user.is_superuser {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }

    /// Only the user named in the path may act on it.
    pub fn require_self(&self, target: &user::Model) -> Result<(), AppError> {
        if self.user.id == target.id {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }
}

/// The OAuth2 scope of this API: a token grants everything its user may do.
#[derive(OAuthScopes)]
pub enum Scopes {
    /// Everything the user may do
    #[oai(rename = "api")]
    Api,
}

/// A token pasted as is (from `POST /login`).
#[derive(SecurityScheme)]
#[oai(
    rename = "BearerAuth",
    ty = "bearer",
    bearer_format = "JWT",
    checker = "authenticate"
)]
pub struct BearerToken(pub AuthUser);

/// The same token, obtained by Swagger UI (or any OAuth2 client) from a username and password.
#[derive(SecurityScheme)]
#[oai(
    rename = "OAuth2PasswordBearer",
    ty = "oauth2",
    flows(password(token_url = "/api/v1/login", scopes = "Scopes")),
    checker = "authenticate"
)]
pub struct PasswordGrant(pub AuthUser);

/// The authenticated caller of an operation that requires one: `Authorization: Bearer <jwt>`,
/// declared in the spec both as a bearer token and as the OAuth2 password flow.
#[derive(SecurityScheme)]
pub enum BearerAuth {
    Token(BearerToken),
    Password(PasswordGrant),
}

impl std::ops::Deref for BearerAuth {
    type Target = AuthUser;

    fn deref(&self) -> &AuthUser {
        match self {
            Self::Token(BearerToken(user)) | Self::Password(PasswordGrant(user)) => user,
        }
    }
}

async fn authenticate(req: &Request, bearer: Bearer) -> poem::Result<AuthUser> {
    let state = req
        .data::<AppState>()
        .ok_or_else(|| AppError::internal("application state is not attached to the route"))?;
    Ok(user_for_token(state, &bearer.token, TokenKind::Access).await?)
}

/// Resolves a token of the given kind to its live user, or `InvalidCredentials`.
pub async fn user_for_token(
    state: &AppState,
    token: &str,
    kind: TokenKind,
) -> Result<AuthUser, AppError> {
    let claims = state.tokens.verify(token, kind).map_err(|err| {
        tracing::debug!(error = %err, "token refused");
        AppError::InvalidCredentials
    })?;
    let user_id = claims.user_id().ok_or(AppError::InvalidCredentials)?;
    // One query: the user, if active and the token is not revoked.
    let user = users::active_by_id(user_id)
        .filter(revocation::not_revoked(&claims.jti))
        .one(&state.db)
        .await?
        .ok_or(AppError::InvalidCredentials)?;
    Ok(AuthUser { user, claims })
}
