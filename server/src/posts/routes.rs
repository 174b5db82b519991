//! The posts endpoints, and their cache policies.

use poem::web::Data;
use poem_openapi::{
    OpenApi,
    param::{Path, Query},
    payload::Json,
};

use crate::{
    api::{ApiTags, OperationLink},
    auth::BearerAuth,
    cache_policy,
    entities::post,
    error::{AppError, ErrorExamples, Errors},
    http::{
        body::JsonBody,
        responses::{Created, Message},
    },
    pagination::{self, PageRequest, Paginated},
    posts::{
        schemas::{PostCreate, PostRead, PostUpdate},
        service,
    },
    state::AppState,
    users::service as users,
};

// Reads are cached under the contract's keys; every write drops the post's key and the
// author's list pages once it has succeeded.
cache_policy!(
    cache_posts_page,
    key_prefix = "{username}_posts:page_{page}:items_per_page:{items_per_page}",
    resource_id_name = "username",
    expiration = 60
);
cache_policy!(
    cache_post,
    key_prefix = "{username}_post_cache",
    resource_id_name = "id",
    expiration = 3600
);
cache_policy!(
    invalidate_posts_pages,
    pattern_to_invalidate_extra = ["{username}_posts:*"]
);
cache_policy!(
    invalidate_post,
    key_prefix = "{username}_post_cache",
    resource_id_name = "id",
    pattern_to_invalidate_extra = ["{username}_posts:*"]
);

/// The caller's own live post: 404 for an unknown user, 403 for someone else's name, 404 for
/// a post that is not the named user's.
async fn own_post(
    state: &AppState,
    auth: &BearerAuth,
    username: &str,
    post_id: i64,
) -> Result<post::Model, AppError> {
    let author = users::get_active_by_username(&state.db, username).await?;
    auth.require_self(&author)?;
    service::get_active(&state.db, author.id, post_id).await
}

pub struct PostApi;

#[OpenApi(tag = "ApiTags::Posts")]
impl PostApi {
    /// Write a post as yourself
    ///
    /// Only the user named in the path may, and only as themselves. Invalidates the author's cached
    /// list pages.
    #[oai(
        path = "/:username/post",
        method = "post",
        operation_id = "create_post",
        transform = "invalidate_posts_pages"
    )]
    async fn create_post(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        username: Path<String>,
        body: JsonBody<PostCreate>,
    ) -> Result<Created<PostRead>, Errors<401, 403, 404, 422>> {
        let author = users::get_active_by_username(&state.db, &username).await?;
        auth.require_self(&author)?;
        let post = service::create(&state.db, author.id, body.0).await?;
        Ok(Created(post.into()))
    }

    /// A user's posts, by id (cached 60 s)
    ///
    /// Live posts only, ordered by id and paginated. Answers come from the response cache for up to
    /// 60 s; any write to the author's posts invalidates them.
    #[oai(
        path = "/:username/posts",
        method = "get",
        operation_id = "read_posts",
        transform = "cache_posts_page"
    )]
    async fn read_posts(
        &self,
        state: Data<&AppState>,
        username: Path<String>,
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
    ) -> Result<Json<Paginated<PostRead>>, Errors<404, 422>> {
        let author = users::get_active_by_username(&state.db, &username).await?;
        let request = PageRequest::new(page.0, items_per_page.0);
        let (rows, total) = service::list_active(&state.db, author.id, request).await?;
        let data = rows.into_iter().map(PostRead::from).collect();
        Ok(Json(Paginated::new(data, total, request)))
    }

    /// One post (cached 1 hour)
    ///
    /// The post is looked up under the user named in the path only: another user's post id is 404
    /// `Post not found`. Cached for an hour, invalidated by every write to it.
    #[oai(
        path = "/:username/post/:id",
        method = "get",
        operation_id = "read_post",
        transform = "cache_post"
    )]
    async fn read_post(
        &self,
        state: Data<&AppState>,
        username: Path<String>,
        id: Path<i64>,
    ) -> Result<Json<PostRead>, Errors<404, 422>> {
        let author = users::get_active_by_username(&state.db, &username).await?;
        let post = service::get_active(&state.db, author.id, id.0).await?;
        Ok(Json(post.into()))
    }

    /// Update your own post
    ///
    /// Any of `title`, `text`, `media_url` (`null` removes the media). The post must be the
    /// caller's own and named under the caller: otherwise 403 or 404, never a change.
    #[oai(
        path = "/:username/post/:id",
        method = "patch",
        operation_id = "patch_post",
        transform = "invalidate_post"
    )]
    async fn patch_post(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        username: Path<String>,
        id: Path<i64>,
        body: JsonBody<PostUpdate>,
    ) -> Result<Json<Message>, Errors<401, 403, 404, 422>> {
        let post = own_post(&state, &auth, &username, id.0).await?;
        service::update(&state.db, post, body.0).await?;
        Ok(Message::json("Post updated"))
    }

    /// Delete your own post (soft delete)
    ///
    /// The post is kept, marked deleted, and is no longer listed or read.
    #[oai(
        path = "/:username/post/:id",
        method = "delete",
        operation_id = "erase_post",
        transform = "invalidate_post"
    )]
    async fn erase_post(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        username: Path<String>,
        id: Path<i64>,
    ) -> Result<Json<Message>, Errors<401, 403, 404, 422>> {
        let post = own_post(&state, &auth, &username, id.0).await?;
        service::soft_delete(&state.db, post).await?;
        Ok(Message::json("Post deleted"))
    }

    /// Delete a post from the database (superuser)
    ///
    /// A hard delete, soft-deleted posts included; the post must belong to the user named in the
    /// path.
    #[oai(
        path = "/:username/db_post/:id",
        method = "delete",
        operation_id = "erase_db_post",
        transform = "invalidate_post"
    )]
    async fn erase_db_post(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        username: Path<String>,
        id: Path<i64>,
    ) -> Result<Json<Message>, Errors<401, 403, 404, 422>> {
        auth.require_superuser()?;
        let author = users::find_any_by_username(&state.db, &username)
            .await?
            .ok_or(AppError::not_found(users::USER_NOT_FOUND))?;
        let post = service::get_any(&state.db, author.id, id.0).await?;
        service::hard_delete(&state.db, post.id).await?;
        Ok(Message::json("Post deleted from the database"))
    }
}

/// The messages of this domain's errors, for the spec.
/// What a created post leads to.
pub(crate) const LINKS: &[OperationLink] = &[
    post_link("read_post"),
    post_link("patch_post"),
    post_link("erase_post"),
    post_link("erase_db_post"),
];

const fn post_link(to: &'static str) -> OperationLink {
    OperationLink {
        from: "create_post",
        status: "201",
        to,
        parameters: &[
            ("username", "$request.path.username"),
            ("id", "$response.body#/id"),
        ],
    }
}

pub(crate) fn error_examples() -> Vec<ErrorExamples> {
    use {service::POST_NOT_FOUND, users::USER_NOT_FOUND};
    let mut examples = vec![
        ErrorExamples::new("create_post", 404, [USER_NOT_FOUND]),
        ErrorExamples::new("read_posts", 404, [USER_NOT_FOUND]),
    ];
    for operation in ["read_post", "patch_post", "erase_post", "erase_db_post"] {
        examples.push(ErrorExamples::new(
            operation,
            404,
            [USER_NOT_FOUND, POST_NOT_FOUND],
        ));
    }
    examples
}
