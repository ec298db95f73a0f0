//! `GET /leads` and `GET /leads/{leadId}` (scope `leads:read`): a client reads back its own
//! leads — what it pushed and what its channels delivered — masked like customers. Another
//! client's lead is 404, exactly like one that does not exist.

use axum::extract::{RawQuery, State};
use axum::routing::get;
use axum::{Extension, Router};
use chrono::DateTime;
use l2c_core::api::leads::{Lead, LeadQuery, LeadSource};
use l2c_core::api::showroom::Page;
use l2c_core::auth::RequireScopeLayer;
use l2c_core::{AuthenticatedClient, Problem, Scope};

use super::openapi::{Authenticated, DatabaseUnavailable, RateLimited};
use crate::domain::{FieldError, validate};
use crate::error::AppError;
use crate::error::ProblemDoc;
use crate::extract::{Json, Path};
use crate::extract::{invalid_query, query_params};
use crate::state::AppState;
use crate::store::lead_views::LeadFilter;
use crate::store::unix_millis;

/// The lead read routes, relative to `/api/mobile`.
pub fn routes() -> Router<AppState> {
    let scope = || RequireScopeLayer::one(Scope::LeadsRead);
    Router::new()
        .route("/leads", get(list_leads).layer(scope()))
        .route("/leads/{leadId}", get(get_lead).layer(scope()))
}

/// The longest `externalLeadId` / `leadSourceId` filter.
const MAX_FILTER_CHARS: usize = 128;

fn parse_query(raw: Option<&str>) -> Result<LeadFilter, FieldError> {
    let [source, external, lead_source, since, page, page_size] = query_params(
        raw,
        [
            "source",
            "externalLeadId",
            "leadSourceId",
            "createdSince",
            "page",
            "pageSize",
        ],
    )?;
    let (page, page_size) = validate::paging(page.as_deref(), page_size.as_deref())?;
    Ok(LeadFilter {
        source: source
            .map(|s| {
                s.parse::<LeadSource>()
                    .map_err(|e| FieldError::new("source", e.to_string()))
            })
            .transpose()?,
        external_lead_id: validate::text_filter(
            "externalLeadId",
            external.as_deref(),
            MAX_FILTER_CHARS,
        )?,
        lead_source_id: validate::text_filter(
            "leadSourceId",
            lead_source.as_deref(),
            MAX_FILTER_CHARS,
        )?,
        created_since: since
            .as_deref()
            .map(|s| {
                DateTime::parse_from_rfc3339(s)
                    .map(|t| unix_millis(t.into()))
                    .map_err(|_| {
                        FieldError::new(
                            "createdSince",
                            "must be an RFC 3339 time such as 2026-11-20T00:00:00+08:00",
                        )
                    })
            })
            .transpose()?,
        page,
        page_size,
    })
}

/// One page of the caller's leads, newest first, masked.
#[utoipa::path(
    get,
    path = "/api/mobile/leads",
    tag = "leads",
    operation_id = "listLeads",
    params(LeadQuery),
    responses(
        (status = 200, description = "One page of the caller's leads", body = Page<Lead>),
        (status = 400, description = "A bad query parameter (named in `field`)", body = ProblemDoc, content_type = "application/problem+json"),
        Authenticated, RateLimited, DatabaseUnavailable,
    ),
    security(("bearer" = ["leads:read"]))
)]
pub async fn list_leads(
    State(state): State<AppState>,
    Extension(client): Extension<AuthenticatedClient>,
    RawQuery(query): RawQuery,
) -> Result<Json<Page<Lead>>, AppError> {
    let filter = parse_query(query.as_deref()).map_err(|e| invalid_query(&e))?;
    let (items, total) = state
        .db
        .lead_views()
        .list(&client.client_id, &filter)
        .await?;
    Ok(Json(Page::new(items, filter.page, filter.page_size, total)))
}

/// One of the caller's leads, masked.
#[utoipa::path(
    get,
    path = "/api/mobile/leads/{leadId}",
    tag = "leads",
    operation_id = "getLead",
    params(("leadId" = String, Path, description = "The lead's id (`lead_…`)")),
    responses(
        (status = 200, description = "The lead, masked", body = Lead),
        (status = 404, description = "No such lead for this client", body = ProblemDoc, content_type = "application/problem+json"),
        Authenticated, RateLimited, DatabaseUnavailable,
    ),
    security(("bearer" = ["leads:read"]))
)]
pub async fn get_lead(
    State(state): State<AppState>,
    Extension(client): Extension<AuthenticatedClient>,
    Path(id): Path<String>,
) -> Result<Json<Lead>, AppError> {
    match state.db.lead_views().get(&client.client_id, &id).await? {
        Some(lead) => Ok(Json(lead)),
        None => Err(Problem::not_found("no lead with this id for this client").into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_errors_name_the_parameter() {
        for (q, field) in [
            ("source=TIKTOK", "source"),
            ("createdSince=yesterday", "createdSince"),
            ("pageSize=0", "pageSize"),
            ("source=DOUYIN&source=BAIDU", "source"),
            ("externalLeadId=%00", "externalLeadId"),
        ] {
            assert_eq!(parse_query(Some(q)).unwrap_err().field, field, "{q}");
        }
        let f = parse_query(Some(
            "source=XIAOHONGSHU&leadSourceId=lsrc_1&createdSince=2026-01-01T00:00:00%2B08:00",
        ))
        .unwrap();
        assert_eq!(f.source, Some(LeadSource::Xiaohongshu));
        assert_eq!(f.lead_source_id.as_deref(), Some("lsrc_1"));
        assert_eq!(f.created_since, Some(1_767_196_800_000));
    }
}
