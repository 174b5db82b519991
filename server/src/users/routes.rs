//! The users endpoints.

use poem::web::Data;
use poem_openapi::{
    OpenApi,
    param::{Path, Query},
    payload::Json,
};
use sea_orm::TransactionTrait;

use crate::{
    api::{ApiTags, OperationLink},
    auth::{BearerAuth, revocation},
    cache_policy,
    error::{AppError, ErrorExamples, Errors},
    http::{
        body::JsonBody,
        responses::{Created, Message},
    },
    pagination::{self, PageRequest, Paginated},
    rate_limit::rules_changed,
    rate_limits::{schemas::RateLimitRead, service as rate_limits},
    state::AppState,
    tiers::service as tiers,
    users::{
        schemas::{UserCreate, UserRateLimits, UserRead, UserTierUpdate, UserUpdate},
        service,
    },
};

// A user's renaming or deletion drops every cached entry of theirs: otherwise
// `GET /{old_name}/posts` would keep answering.
cache_policy!(
    drop_user_entries,
    pattern_to_invalidate_extra = ["{username}_posts:*", "{username}_post_cache:*"]
);

pub struct UserApi;

#[OpenApi(tag = "ApiTags::Users")]
impl UserApi {
    /// Sign up
    ///
    /// Creates an account with the default profile image. Usernames are lowercase letters and
    /// digits and may not name a path of this API; the email's domain is stored lowercased. 400
    /// when the email or username is taken (soft-deleted users keep theirs).
    #[oai(path = "/user", method = "post", operation_id = "create_user")]
    async fn create_user(
        &self,
        state: Data<&AppState>,
        body: JsonBody<UserCreate>,
    ) -> Result<Created<UserRead>, Errors<400, 422, 503>> {
        let user = service::create(&state.db, &state.passwords, body.0, false).await?;
        Ok(Created(user.into()))
    }

    /// List users (not soft-deleted), by id
    ///
    /// Paginated with `page` and `items_per_page`; `has_more` tells whether another page follows.
    #[oai(path = "/users", method = "get", operation_id = "read_users")]
    async fn read_users(
        &self,
        state: Data<&AppState>,
        /// Page number, from 1
        #[oai(
            default = "pagination::default_page",
            validator(minimum(value = "1"), maximum(value = "2147483647"))
        )]
        page: Query<i64>,
        /// Page size, 1 to 100
        #[oai(
            default = "pagination::default_items_per_page",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        items_per_page: Query<i64>,
    ) -> Result<Json<Paginated<UserRead>>, Errors<422>> {
        let request = PageRequest::new(page.0, items_per_page.0);
        let (rows, total) = service::list_active(&state.db, request).await?;
        let data = rows.into_iter().map(UserRead::from).collect();
        Ok(Json(Paginated::new(data, total, request)))
    }

    /// The authenticated user
    ///
    /// The user the access token belongs to.
    #[oai(path = "/user/me", method = "get", operation_id = "read_users_me")]
    async fn read_users_me(&self, auth: BearerAuth) -> Result<Json<UserRead>, Errors<401>> {
        Ok(Json(auth.user.clone().into()))
    }

    /// A user by username
    ///
    /// 404 `User not found` for an unknown or soft-deleted user.
    #[oai(path = "/user/:username", method = "get", operation_id = "read_user")]
    async fn read_user(
        &self,
        state: Data<&AppState>,
        username: Path<String>,
    ) -> Result<Json<UserRead>, Errors<404>> {
        let user = service::get_active_by_username(&state.db, &username).await?;
        Ok(Json(user.into()))
    }

    /// Update your own profile
    ///
    /// Any of `name`, `username`, `email`, `profile_image_url`; only the user themselves may.
    /// Renaming drops the user's cached posts, so their old path answers 404 at once. Sessions stay
    /// valid (tokens name the user by id).
    #[oai(
        path = "/user/:username",
        method = "patch",
        operation_id = "patch_user",
        transform = "drop_user_entries"
    )]
    async fn patch_user(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        username: Path<String>,
        body: JsonBody<UserUpdate>,
    ) -> Result<Json<Message>, Errors<400, 401, 403, 404, 422>> {
        let user = service::get_active_by_username(&state.db, &username).await?;
        auth.require_self(&user)?;
        service::update(&state.db, user, body.0).await?;
        Ok(Message::json("User updated"))
    }

    /// Delete your own account (soft delete)
    ///
    /// The account is kept, marked deleted; its username stays taken. The token used for this
    /// request is revoked.
    #[oai(
        path = "/user/:username",
        method = "delete",
        operation_id = "erase_user",
        transform = "drop_user_entries"
    )]
    async fn erase_user(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        username: Path<String>,
    ) -> Result<Json<Message>, Errors<401, 403, 404>> {
        let user = service::get_active_by_username(&state.db, &username).await?;
        auth.require_self(&user)?;
        let claims = &auth.claims;
        let txn = state.db.begin().await?;
        service::soft_delete(&txn, user).await?;
        revocation::revoke(&txn, &claims.jti, claims.expires_at()).await?;
        txn.commit().await?;
        Ok(Message::json("User deleted"))
    }

    /// Delete a user and their posts from the database (superuser)
    ///
    /// A hard delete, soft-deleted users included, with all their posts, in one transaction; the
    /// user's cached entries are dropped.
    #[oai(
        path = "/db_user/:username",
        method = "delete",
        operation_id = "erase_db_user",
        transform = "drop_user_entries"
    )]
    async fn erase_db_user(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        username: Path<String>,
    ) -> Result<Json<Message>, Errors<401, 403, 404>> {
        auth.require_superuser()?;
        let user = service::find_any_by_username(&state.db, &username)
            .await?
            .ok_or(AppError::not_found(service::USER_NOT_FOUND))?;
        service::hard_delete(&state.db, user.id).await?;
        Ok(Message::json("User deleted from the database"))
    }

    /// A user with their tier's rate limits (superuser)
    ///
    /// The user's public fields plus `tier_rate_limits`, the rules of their tier (empty without a
    /// tier).
    #[oai(
        path = "/user/:username/rate_limits",
        method = "get",
        operation_id = "read_user_rate_limits"
    )]
    async fn read_user_rate_limits(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        username: Path<String>,
    ) -> Result<Json<UserRateLimits>, Errors<401, 403, 404>> {
        auth.require_superuser()?;
        let user = service::get_active_by_username(&state.db, &username).await?;
        let rules = match user.tier_id {
            Some(tier_id) => rate_limits::for_tier(&state.db, tier_id).await?,
            None => Vec::new(),
        };
        let rules = rules.into_iter().map(RateLimitRead::from).collect();
        Ok(Json(UserRateLimits::new(user, rules)))
    }

    /// Move a user to a tier (superuser)
    ///
    /// Takes effect on the user's next rate-limited request, on every instance.
    #[oai(
        path = "/user/:username/tier",
        method = "patch",
        operation_id = "patch_user_tier",
        transform = "rules_changed"
    )]
    async fn patch_user_tier(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        username: Path<String>,
        body: JsonBody<UserTierUpdate>,
    ) -> Result<Json<Message>, Errors<401, 403, 404, 422>> {
        auth.require_superuser()?;
        let user = service::get_active_by_username(&state.db, &username).await?;
        let tier = tiers::get_by_id(&state.db, body.0.tier_id).await?;
        let user = service::set_tier(&state.db, user, tier.id).await?;
        Ok(Message::json(format!("User {} Tier updated", user.name)))
    }
}

/// The messages of this domain's errors, for the spec.
/// What a created user leads to.
pub(crate) const LINKS: &[OperationLink] = &[
    user_link("read_user"),
    user_link("patch_user"),
    user_link("erase_user"),
    user_link("read_posts"),
    user_link("create_post"),
];

const fn user_link(to: &'static str) -> OperationLink {
    OperationLink {
        from: "create_user",
        status: "201",
        to,
        parameters: &[("username", "$response.body#/username")],
    }
}

pub(crate) fn error_examples() -> Vec<ErrorExamples> {
    use service::{EMAIL_TAKEN, USER_NOT_FOUND, USERNAME_TAKEN};
    let busy = AppError::Overloaded {
        retry_after_secs: 1,
    };
    let mut examples = vec![
        ErrorExamples::new("create_user", 400, [EMAIL_TAKEN, USERNAME_TAKEN]),
        ErrorExamples::new("create_user", 503, [busy]),
        ErrorExamples::new("patch_user", 400, [EMAIL_TAKEN, USERNAME_TAKEN]),
        ErrorExamples::new(
            "patch_user_tier",
            404,
            [USER_NOT_FOUND, tiers::TIER_NOT_FOUND],
        ),
    ];
    for operation in [
        "read_user",
        "patch_user",
        "erase_user",
        "erase_db_user",
        "read_user_rate_limits",
    ] {
        examples.push(ErrorExamples::new(operation, 404, [USER_NOT_FOUND]));
    }
    examples
}
