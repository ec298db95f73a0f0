//! `GET /showroom/items`: products and cases (scope `showroom:read`).

use axum::extract::{OriginalUri, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use http::{HeaderValue, header};
use l2c_core::api::showroom::{Page, ShowroomItem, ShowroomItemType, ShowroomQuery};
use l2c_core::auth::RequireScopeLayer;
use l2c_core::{AuthenticatedClient, Problem, Scope};

use super::openapi::{Authenticated, DatabaseUnavailable, RateLimited};
use crate::domain::FieldError;
use crate::domain::validate;
use crate::error::AppError;
use crate::error::ProblemDoc;
use crate::extract::Json;
use crate::extract::{invalid_query, query_params};
use crate::state::AppState;
use crate::store::showroom::ItemFilter;

/// The showroom routes, relative to `/api/mobile`.
pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/showroom/items",
        get(list_items).layer(RequireScopeLayer::one(Scope::ShowroomRead)),
    )
}

const MAX_FILTER_CHARS: usize = 64;

/// Parses the query string by hand, so every error names its parameter. Unknown parameters are
/// ignored; a known one given twice is refused.
fn parse_query(raw: Option<&str>) -> Result<ItemFilter, FieldError> {
    let [item_type, category, keyword, page, page_size] =
        query_params(raw, ["type", "category", "keyword", "page", "pageSize"])?;
    let (page, page_size) = validate::paging(page.as_deref(), page_size.as_deref())?;
    let item_type = match item_type {
        None => None,
        Some(t) => Some(
            t.parse::<ShowroomItemType>()
                .map_err(|_| FieldError::new("type", "must be `PRODUCT` or `CASE`"))?,
        ),
    };
    Ok(ItemFilter {
        item_type,
        category: validate::text_filter(
            "category",
            category.as_deref().map(str::trim),
            MAX_FILTER_CHARS,
        )?,
        keyword: validate::text_filter(
            "keyword",
            keyword.as_deref().map(str::trim),
            MAX_FILTER_CHARS,
        )?,
        page,
        page_size,
    })
}

fn page_link(path: &str, filter: &ItemFilter, page: u32, rel: &str) -> String {
    let mut query = ShowroomQuery::new();
    if let Some(t) = filter.item_type {
        query = query.item_type(t);
    }
    if let Some(c) = &filter.category {
        query = query.category(c.as_str());
    }
    if let Some(k) = &filter.keyword {
        query = query.keyword(k.as_str());
    }
    let query = query.page(page).page_size(filter.page_size);
    let qs = serde_urlencoded::to_string(&query).unwrap_or_default();
    format!("<{path}?{qs}>; rel=\"{rel}\"")
}

/// One page of the showroom items the caller may see: every `PUBLIC` item plus the
/// `AUTHORIZED` ones granted to it, ordered by id. `Link` carries `first`, `prev`, `next` and
/// `last` (RFC 8288); a page past the end has empty `items`. `total` is exact.
#[utoipa::path(
    get,
    path = "/api/mobile/showroom/items",
    tag = "showroom",
    operation_id = "listShowroomItems",
    params(ShowroomQuery),
    responses(
        (status = 200, description = "One page of items", body = Page<ShowroomItem>,
            headers(("Link" = String, description = "RFC 8288 links: first, prev, next, last"))),
        (status = 400, description = "A bad query parameter (named in `field`): page < 1, pageSize outside 1–100, non-numeric, unknown type", body = ProblemDoc, content_type = "application/problem+json"),
        Authenticated, RateLimited, DatabaseUnavailable,
    ),
    security(("bearer" = ["showroom:read"]))
)]
pub async fn list_items(
    State(state): State<AppState>,
    Extension(client): Extension<AuthenticatedClient>,
    OriginalUri(uri): OriginalUri,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let filter = parse_query(query.as_deref()).map_err(|e| invalid_query(&e))?;
    let page: Page<ShowroomItem> = state.db.showroom().list(&client.client_id, &filter).await?;
    let path = uri.path();
    let last = u32::try_from(page.total.div_ceil(u64::from(filter.page_size)))
        .unwrap_or(u32::MAX)
        .max(1);
    let mut links = vec![page_link(path, &filter, 1, "first")];
    if filter.page > 1 {
        links.push(page_link(
            path,
            &filter,
            (filter.page - 1).min(last),
            "prev",
        ));
    }
    if filter.page < last {
        links.push(page_link(path, &filter, filter.page + 1, "next"));
    }
    links.push(page_link(path, &filter, last, "last"));
    let mut response = Json(page).into_response();
    match HeaderValue::from_str(&links.join(", ")) {
        Ok(v) => {
            response.headers_mut().insert(header::LINK, v);
        }
        Err(_) => {
            return Err(Problem::internal().into());
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_errors_name_the_parameter() {
        for (q, field) in [
            ("page=0", "page"),
            ("page=abc", "page"),
            ("page=-1", "page"),
            ("pageSize=101", "pageSize"),
            ("pageSize=0", "pageSize"),
            ("type=SOFA", "type"),
            ("page=1&page=2", "page"),
        ] {
            assert_eq!(parse_query(Some(q)).unwrap_err().field, field, "{q}");
        }
        let f = parse_query(Some("type=CASE&keyword=%E5%A5%B6&page=2&pageSize=5&x=1")).unwrap();
        assert_eq!(f.item_type, Some(ShowroomItemType::Case));
        assert_eq!(f.keyword.as_deref(), Some("奶"));
        assert_eq!((f.page, f.page_size), (2, 5));
    }

    #[test]
    fn links_keep_the_filters() {
        for q in ["keyword=%00", "category=a%01b"] {
            let err = parse_query(Some(q)).unwrap_err();
            assert!(q.starts_with(&err.field), "{q}: {err}");
        }
        let f = parse_query(Some("type=PRODUCT&keyword=a%26b&pageSize=5")).unwrap();
        let link = page_link("/api/mobile/showroom/items", &f, 2, "next");
        assert_eq!(
            link,
            "</api/mobile/showroom/items?type=PRODUCT&keyword=a%26b&page=2&pageSize=5>; rel=\"next\""
        );
    }
}
