//! The rate-limit rule endpoints, under their tier: writes for superusers, reads for anyone.

use poem::web::Data;
use poem_openapi::{
    OpenApi,
    param::{Path, Query},
    payload::Json,
};

use crate::{
    api::{ApiTags, OperationLink},
    auth::BearerAuth,
    error::{ErrorExamples, Errors},
    http::{
        body::JsonBody,
        responses::{Created, Message},
    },
    pagination::{self, PageRequest, Paginated},
    rate_limit::rules_changed,
    rate_limits::{
        schemas::{RateLimitCreate, RateLimitCreated, RateLimitRead, RateLimitUpdate},
        service,
    },
    state::AppState,
    tiers::service as tiers,
};

pub struct RateLimitApi;

#[OpenApi(tag = "ApiTags::RateLimits")]
impl RateLimitApi {
    /// Add a rate limit to a tier (superuser)
    ///
    /// One rule per tier and path; the path is stored sanitised.
    #[oai(
        path = "/tier/:tier_name/rate_limit",
        method = "post",
        operation_id = "create_rate_limit",
        transform = "rules_changed"
    )]
    async fn create_rate_limit(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        tier_name: Path<String>,
        body: JsonBody<RateLimitCreate>,
    ) -> Result<Created<RateLimitCreated>, Errors<400, 401, 403, 404, 422>> {
        auth.require_superuser()?;
        let tier = tiers::get_by_name(&state.db, &tier_name).await?;
        let rule = service::create(&state.db, tier.id, body.0).await?;
        Ok(Created(rule.into()))
    }

    /// A tier's rate limits, by id
    ///
    /// Paginated with `page` and `items_per_page`; 404 for an unknown tier.
    #[oai(
        path = "/tier/:tier_name/rate_limits",
        method = "get",
        operation_id = "read_rate_limits"
    )]
    async fn read_rate_limits(
        &self,
        state: Data<&AppState>,
        tier_name: Path<String>,
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
    ) -> Result<Json<Paginated<RateLimitRead>>, Errors<404, 422>> {
        let tier = tiers::get_by_name(&state.db, &tier_name).await?;
        let request = PageRequest::new(page.0, items_per_page.0);
        let (rows, total) = service::list(&state.db, tier.id, request).await?;
        let data = rows.into_iter().map(RateLimitRead::from).collect();
        Ok(Json(Paginated::new(data, total, request)))
    }

    /// One rate limit of a tier
    ///
    /// 404 `Rate Limit not found` for an unknown id, or another tier's.
    #[oai(
        path = "/tier/:tier_name/rate_limit/:id",
        method = "get",
        operation_id = "read_rate_limit"
    )]
    async fn read_rate_limit(
        &self,
        state: Data<&AppState>,
        tier_name: Path<String>,
        id: Path<i64>,
    ) -> Result<Json<RateLimitRead>, Errors<404, 422>> {
        let tier = tiers::get_by_name(&state.db, &tier_name).await?;
        Ok(Json(service::get(&state.db, tier.id, id.0).await?.into()))
    }

    /// Change a rate limit (superuser)
    ///
    /// Any of `path`, `limit`, `period`, `name`. Takes effect on the next request, on every
    /// instance.
    #[oai(
        path = "/tier/:tier_name/rate_limit/:id",
        method = "patch",
        operation_id = "patch_rate_limit",
        transform = "rules_changed"
    )]
    async fn patch_rate_limit(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        tier_name: Path<String>,
        id: Path<i64>,
        body: JsonBody<RateLimitUpdate>,
    ) -> Result<Json<Message>, Errors<400, 401, 403, 404, 422>> {
        auth.require_superuser()?;
        let tier = tiers::get_by_name(&state.db, &tier_name).await?;
        let rule = service::get(&state.db, tier.id, id.0).await?;
        service::update(&state.db, rule, body.0).await?;
        Ok(Message::json("Rate Limit updated"))
    }

    /// Delete a rate limit (superuser)
    ///
    /// Users of the tier fall back to the default limits for that path.
    #[oai(
        path = "/tier/:tier_name/rate_limit/:id",
        method = "delete",
        operation_id = "erase_rate_limit",
        transform = "rules_changed"
    )]
    async fn erase_rate_limit(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        tier_name: Path<String>,
        id: Path<i64>,
    ) -> Result<Json<Message>, Errors<401, 403, 404, 422>> {
        auth.require_superuser()?;
        let tier = tiers::get_by_name(&state.db, &tier_name).await?;
        let rule = service::get(&state.db, tier.id, id.0).await?;
        service::delete(&state.db, rule).await?;
        Ok(Message::json("Rate Limit deleted"))
    }
}

/// The messages of this domain's errors, for the spec.
/// What a created rule leads to.
pub(crate) const LINKS: &[OperationLink] = &[
    rule_link("read_rate_limit"),
    rule_link("patch_rate_limit"),
    rule_link("erase_rate_limit"),
];

const fn rule_link(to: &'static str) -> OperationLink {
    OperationLink {
        from: "create_rate_limit",
        status: "201",
        to,
        parameters: &[
            ("tier_name", "$request.path.tier_name"),
            ("id", "$response.body#/id"),
        ],
    }
}

pub(crate) fn error_examples() -> Vec<ErrorExamples> {
    use {
        service::{NAME_TAKEN, PATH_TAKEN, RATE_LIMIT_NOT_FOUND},
        tiers::TIER_NOT_FOUND,
    };
    vec![
        ErrorExamples::new("create_rate_limit", 400, [NAME_TAKEN, PATH_TAKEN]),
        ErrorExamples::new("create_rate_limit", 404, [TIER_NOT_FOUND]),
        ErrorExamples::new("read_rate_limits", 404, [TIER_NOT_FOUND]),
        ErrorExamples::new(
            "read_rate_limit",
            404,
            [TIER_NOT_FOUND, RATE_LIMIT_NOT_FOUND],
        ),
        ErrorExamples::new("patch_rate_limit", 400, [NAME_TAKEN, PATH_TAKEN]),
        ErrorExamples::new(
            "patch_rate_limit",
            404,
            [TIER_NOT_FOUND, RATE_LIMIT_NOT_FOUND],
        ),
        ErrorExamples::new(
            "erase_rate_limit",
            404,
            [TIER_NOT_FOUND, RATE_LIMIT_NOT_FOUND],
        ),
    ]
}
