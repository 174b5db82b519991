//! The tiers endpoints: writes for superusers, reads for anyone.

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
    state::AppState,
    tiers::{
        schemas::{TierCreate, TierCreated, TierRead, TierUpdate},
        service,
    },
};

pub struct TierApi;

#[OpenApi(tag = "ApiTags::Tiers")]
impl TierApi {
    /// Create a tier (superuser)
    ///
    /// Tier names are 1 to 50 of a-z, 0-9, `_` and `-`; 400 when the name is taken.
    #[oai(path = "/tier", method = "post", operation_id = "create_tier")]
    async fn create_tier(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        body: JsonBody<TierCreate>,
    ) -> Result<Created<TierCreated>, Errors<400, 401, 403, 422>> {
        auth.require_superuser()?;
        let tier = service::create(&state.db, body.0).await?;
        Ok(Created(tier.into()))
    }

    /// List tiers, by id
    ///
    /// Paginated with `page` and `items_per_page`.
    #[oai(path = "/tiers", method = "get", operation_id = "read_tiers")]
    async fn read_tiers(
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
    ) -> Result<Json<Paginated<TierRead>>, Errors<422>> {
        let request = PageRequest::new(page.0, items_per_page.0);
        let (rows, total) = service::list(&state.db, request).await?;
        let data = rows.into_iter().map(TierRead::from).collect();
        Ok(Json(Paginated::new(data, total, request)))
    }

    /// A tier by name
    ///
    /// 404 `Tier not found` when there is no such tier.
    #[oai(path = "/tier/:name", method = "get", operation_id = "read_tier")]
    async fn read_tier(
        &self,
        state: Data<&AppState>,
        name: Path<String>,
    ) -> Result<Json<TierRead>, Errors<404>> {
        Ok(Json(service::get_by_name(&state.db, &name).await?.into()))
    }

    /// Rename a tier (superuser)
    ///
    /// 400 when the new name is taken. Users and rules stay attached (they refer to the tier by
    /// id).
    #[oai(path = "/tier/:name", method = "patch", operation_id = "patch_tier")]
    async fn patch_tier(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        name: Path<String>,
        body: JsonBody<TierUpdate>,
    ) -> Result<Json<Message>, Errors<400, 401, 403, 404, 422>> {
        auth.require_superuser()?;
        let tier = service::get_by_name(&state.db, &name).await?;
        service::update(&state.db, tier, body.0).await?;
        Ok(Message::json("Tier updated"))
    }

    /// Delete a tier and its rate limits (superuser)
    ///
    /// Refused (400) while users are on the tier.
    #[oai(
        path = "/tier/:name",
        method = "delete",
        operation_id = "erase_tier",
        transform = "rules_changed"
    )]
    async fn erase_tier(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        name: Path<String>,
    ) -> Result<Json<Message>, Errors<400, 401, 403, 404>> {
        auth.require_superuser()?;
        let tier = service::get_by_name(&state.db, &name).await?;
        service::delete(&state.db, tier).await?;
        Ok(Message::json("Tier deleted"))
    }
}

/// The messages of this domain's errors, for the spec.
/// What a created tier leads to.
pub(crate) const LINKS: &[OperationLink] = &[
    tier_link("read_tier", NAMED),
    tier_link("patch_tier", NAMED),
    tier_link("erase_tier", NAMED),
    tier_link("create_rate_limit", RULES_OF),
    tier_link("read_rate_limits", RULES_OF),
];

/// The created tier's name, as the tier operations and the rule operations call it.
const NAMED: &[(&str, &str)] = &[("name", "$response.body#/name")];
const RULES_OF: &[(&str, &str)] = &[("tier_name", "$response.body#/name")];

const fn tier_link(
    to: &'static str,
    parameters: &'static [(&'static str, &'static str)],
) -> OperationLink {
    OperationLink {
        from: "create_tier",
        status: "201",
        to,
        parameters,
    }
}

pub(crate) fn error_examples() -> Vec<ErrorExamples> {
    use service::{NAME_TAKEN, TIER_IN_USE, TIER_NOT_FOUND};
    vec![
        ErrorExamples::new("create_tier", 400, [NAME_TAKEN]),
        ErrorExamples::new("read_tier", 404, [TIER_NOT_FOUND]),
        ErrorExamples::new("patch_tier", 400, [NAME_TAKEN]),
        ErrorExamples::new("patch_tier", 404, [TIER_NOT_FOUND]),
        ErrorExamples::new("erase_tier", 400, [TIER_IN_USE]),
        ErrorExamples::new("erase_tier", 404, [TIER_NOT_FOUND]),
    ]
}
