//! `/lead-sources` (scope `lead-sources:manage`): the push URLs a client pastes into the ad
//! platforms. A client sees only its own sources; any other id is 404.
//!
//! | route | answer |
//! |---|---|
//! | `POST /lead-sources` `{channel, name, settings}` | 201 `{id, channel, name, pushUrl, secret?, createdAt}` (the only time the URL and a generated secret are shown) |
//! | `GET /lead-sources?page&pageSize` | 200 `{items: [{id, channel, name, settings, hasSecret, createdAt, updatedAt}], page, pageSize, total}` |
//! | `GET /lead-sources/{id}` | 200 the source |
//! | `PUT /lead-sources/{id}` `{name?, settings?}` | 200 the source |
//! | `POST /lead-sources/{id}/rotate` | 200 `{id, channel, name, pushUrl, secret?, createdAt}`: a new URL (the old one is 404 at once) and, if the server generated the secret, a new secret |
//! | `DELETE /lead-sources/{id}` | 204 (its URL is 404 at once; its leads stay) |
//!
//! The push URL is `<--public-url or the request's scheme://host>/api/hooks/leads/<token>`, the
//! token 128 random bits of which only a SHA-256 is stored. The answers that show it carry
//! `Cache-Control: no-store`, and the idempotency layer records them without `pushUrl` and
//! `secret` ([`StoreRedacted`]): a retried create gets the same source back, not a second one,
//! but not the URL again — rotate to see a new one.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use http::{HeaderMap, StatusCode, header};
use l2c_core::api::lead_sources::{
    CreateLeadSource, CreatedLeadSource, LeadSourceView, UpdateLeadSource,
};
use l2c_core::api::showroom::Page;
use l2c_core::auth::RequireScopeLayer;
use l2c_core::idempotency::StoreRedacted;
use l2c_core::{AuthenticatedClient, Problem, Scope};
use serde_json::Value;

use super::openapi::{
    Authenticated, BodyTooLarge, DatabaseUnavailable, IdempotencyInFlight, IdempotencyKey,
    IdempotencyKeyRefused, IdempotencyKeyReused, RateLimited,
};
use crate::domain::{FieldError, validate};
use crate::error::AppError;
use crate::error::ProblemDoc;
use crate::extract::{Json, Path};
use crate::extract::{JsonBody, invalid_field, invalid_query};
use crate::state::AppState;
use crate::store::lead_sources::StoredSource;
use crate::store::sql::millis_to_cst;
use crate::usecases::lead_sources::{self, LeadSourceError};

pub use crate::usecases::lead_sources::{
    MAX_LEAD_SOURCES, TOKEN_PREFIX, looks_like_token, new_token, token_hash,
};

/// The path of the push endpoint, before the token.
pub const HOOK_PATH: &str = "/api/hooks/leads/";

/// The lead source routes, relative to `/api/mobile`.
pub fn routes() -> Router<AppState> {
    let scope = || RequireScopeLayer::one(Scope::LeadSourcesManage);
    Router::new()
        .route("/lead-sources", post(create).get(list).layer(scope()))
        .route(
            "/lead-sources/{id}",
            get(read).put(update).delete(remove).layer(scope()),
        )
        .route("/lead-sources/{id}/rotate", post(rotate).layer(scope()))
}

/// The scheme and host the push URL starts with: `--public-url`, else the request's own.
fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.config.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        })
        .map_or_else(|| state.config.listen.to_string(), str::to_owned);
    let forwarded_https = state.config.trust_proxy_tls
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    let scheme = if state.config.tls.is_some() || forwarded_https {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{host}")
}

fn not_found(id: &str) -> AppError {
    Problem::not_found(format!("no lead source `{id}`")).into()
}

/// The problem a refused lead source change is answered with.
fn refusal(err: LeadSourceError) -> AppError {
    match err {
        LeadSourceError::Invalid(e) => invalid_field(&e).into(),
        LeadSourceError::TooMany => Problem::new(
            StatusCode::CONFLICT,
            "too_many_lead_sources",
            "Too Many Lead Sources",
        )
        .with_detail(LeadSourceError::TooMany.to_string())
        .into(),
        LeadSourceError::NotFound(id) => not_found(&id),
        LeadSourceError::Store(e) => AppError::Store(e),
    }
}

/// A JSON answer showing the push URL (and maybe a secret): `Cache-Control: no-store`, and the
/// idempotency layer stores it without `pushUrl` and `secret`.
fn shows_secret<T: serde::Serialize>(status: StatusCode, value: &T) -> Response {
    let serialised = serde_json::to_value(value).and_then(|full| {
        let mut redacted = full.clone();
        if let Value::Object(members) = &mut redacted {
            members.remove("secret");
            members.remove("pushUrl");
        }
        Ok((serde_json::to_vec(&full)?, serde_json::to_vec(&redacted)?))
    });
    let (body, stored) = match serialised {
        Ok(pair) => pair,
        Err(e) => {
            return AppError::internal(format!("serialising a lead source: {e}")).into_response();
        }
    };
    let mut res = (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response();
    res.extensions_mut()
        .insert(StoreRedacted(Bytes::from(stored)));
    res
}

fn shown(source: &StoredSource, push_url: String, secret: Option<String>) -> CreatedLeadSource {
    CreatedLeadSource::new(
        source.id.clone(),
        source.channel,
        source.name.clone(),
        push_url,
        secret,
        millis_to_cst(source.created_at),
    )
}

/// Create a lead source. The answer carries the push URL (and a generated secret), shown only
/// this once.
#[utoipa::path(
    post,
    path = "/api/mobile/lead-sources",
    tag = "lead-sources",
    operation_id = "createLeadSource",
    request_body = CreateLeadSource,
    params(IdempotencyKey),
    responses(
        (status = 201, description = "The source, with its push URL (and the secret the server generated, for GENERIC without one)", body = CreatedLeadSource,
            links(("GetLeadSource" = (operation_id = "getLeadSource", parameters(("id" = "$response.body#/id")))), ("UpdateLeadSource" = (operation_id = "updateLeadSource", parameters(("id" = "$response.body#/id")))), ("RotateLeadSource" = (operation_id = "rotateLeadSource", parameters(("id" = "$response.body#/id")))), ("DeleteLeadSource" = (operation_id = "deleteLeadSource", parameters(("id" = "$response.body#/id")))))),
        (status = 400, description = "Malformed JSON; or no `X-Request-Id` (`idempotency_key_missing`), a key that is not 1–255 visible ASCII characters (`idempotency_key_invalid`), or `X-Request-Id` and `Idempotency-Key` differing (`idempotency_key_conflict`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "The client already holds the most sources allowed (`too_many_lead_sources`); or a request with the same idempotency key is still running (`idempotency_key_in_use`; retry after `Retry-After`)", body = ProblemDoc, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "With `idempotency_key_in_use`: seconds to wait (1)"))),
        (status = 415, description = "Not `application/json`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Unknown channel, bad name or settings (named in `field`, e.g. `settings.fields.mobile`); or the idempotency key was already used with a different request body (`idempotency_key_reused`)", body = ProblemDoc, content_type = "application/problem+json"),
        Authenticated, RateLimited, DatabaseUnavailable, BodyTooLarge,
    ),
    security(("bearer" = ["lead-sources:manage"]))
)]
pub async fn create(
    State(state): State<AppState>,
    Extension(client): Extension<AuthenticatedClient>,
    headers: HeaderMap,
    body: JsonBody<CreateLeadSource>,
) -> Result<Response, AppError> {
    let issued = lead_sources::create(&state.db, &client.client_id, &body.value)
        .await
        .map_err(refusal)?;
    let url = format!("{}{HOOK_PATH}{}", base_url(&state, &headers), issued.token);
    Ok(shows_secret(
        StatusCode::CREATED,
        &shown(&issued.source, url, issued.secret),
    ))
}

/// The caller's lead sources, oldest first (no secrets, no push URLs).
#[utoipa::path(
    get,
    path = "/api/mobile/lead-sources",
    tag = "lead-sources",
    operation_id = "listLeadSources",
    params(
        ("page" = Option<u32>, Query, minimum = 1, maximum = 1000000, description = "The page, from 1 (default 1), at most 1,000,000"),
        ("pageSize" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Items per page, 1–100 (default 20)"),
    ),
    responses(
        (status = 200, description = "One page of sources", body = Page<LeadSourceView>),
        (status = 400, description = "A bad paging parameter (named in `field`)", body = ProblemDoc, content_type = "application/problem+json"),
        Authenticated, RateLimited, DatabaseUnavailable,
    ),
    security(("bearer" = ["lead-sources:manage"]))
)]
pub async fn list(
    State(state): State<AppState>,
    Extension(client): Extension<AuthenticatedClient>,
    RawQuery(query): RawQuery,
) -> Result<Json<Page<LeadSourceView>>, AppError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
            .map_err(|_| invalid_query(&FieldError::new("query", "is not a valid query string")))?;
    let value = |name: &str| {
        let mut found = pairs.iter().filter(|(k, _)| k == name);
        match (found.next(), found.next()) {
            (_, Some(_)) => Err(FieldError::new(name, "must be given at most once")),
            (v, None) => Ok(v.map(|(_, v)| v.as_str())),
        }
    };
    let (page, page_size) = value("page")
        .and_then(|page| validate::paging(page, value("pageSize")?))
        .map_err(|e| invalid_query(&e))?;
    let (items, total) = state
        .db
        .lead_sources()
        .list(&client.client_id, page, page_size)
        .await?;
    Ok(Json(Page::new(
        items.iter().map(StoredSource::to_view).collect(),
        page,
        page_size,
        total,
    )))
}

/// One of the caller's lead sources (no secret, no push URL).
#[utoipa::path(
    get,
    path = "/api/mobile/lead-sources/{id}",
    tag = "lead-sources",
    operation_id = "getLeadSource",
    params(("id" = String, Path, description = "The source id (`lsrc_…`)")),
    responses(
        (status = 200, description = "The source", body = LeadSourceView),
        (status = 404, description = "No such source for this client", body = ProblemDoc, content_type = "application/problem+json"),
        Authenticated, RateLimited, DatabaseUnavailable,
    ),
    security(("bearer" = ["lead-sources:manage"]))
)]
pub async fn read(
    State(state): State<AppState>,
    Extension(client): Extension<AuthenticatedClient>,
    Path(id): Path<String>,
) -> Result<Json<LeadSourceView>, AppError> {
    match state.db.lead_sources().get(&client.client_id, &id).await? {
        Some(s) => Ok(Json(s.to_view())),
        None => Err(not_found(&id)),
    }
}

/// Rename a source or replace its settings. A secret member in `settings` replaces the stored
/// secret; absent keeps it; `null` removes it.
#[utoipa::path(
    put,
    path = "/api/mobile/lead-sources/{id}",
    tag = "lead-sources",
    operation_id = "updateLeadSource",
    params(("id" = String, Path, description = "The source id (`lsrc_…`)"), IdempotencyKey),
    request_body = UpdateLeadSource,
    responses(
        (status = 200, description = "The source as changed", body = LeadSourceView),
        (status = 400, description = "Malformed JSON; or no `X-Request-Id` (`idempotency_key_missing`), a key that is not 1–255 visible ASCII characters (`idempotency_key_invalid`), or `X-Request-Id` and `Idempotency-Key` differing (`idempotency_key_conflict`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such source for this client", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "Not `application/json`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Bad name or settings (named in `field`); or the idempotency key was already used with a different request body (`idempotency_key_reused`)", body = ProblemDoc, content_type = "application/problem+json"),
        Authenticated, RateLimited, DatabaseUnavailable, IdempotencyInFlight, BodyTooLarge,
    ),
    security(("bearer" = ["lead-sources:manage"]))
)]
pub async fn update(
    State(state): State<AppState>,
    Extension(client): Extension<AuthenticatedClient>,
    Path(id): Path<String>,
    body: JsonBody<UpdateLeadSource>,
) -> Result<Json<LeadSourceView>, AppError> {
    let source = lead_sources::update(&state.db, &client.client_id, &id, &body.value)
        .await
        .map_err(refusal)?;
    Ok(Json(source.to_view()))
}

/// Issue a new push URL (the old one stops working at once) and, for a secret the server
/// generated, a new secret. Both are shown only in this answer.
#[utoipa::path(
    post,
    path = "/api/mobile/lead-sources/{id}/rotate",
    tag = "lead-sources",
    operation_id = "rotateLeadSource",
    params(("id" = String, Path, description = "The source id (`lsrc_…`)"), IdempotencyKey),
    responses(
        (status = 200, description = "The new push URL (and generated secret)", body = CreatedLeadSource),
        (status = 404, description = "No such source for this client", body = ProblemDoc, content_type = "application/problem+json"),
        Authenticated, RateLimited, DatabaseUnavailable, IdempotencyKeyRefused, IdempotencyInFlight, IdempotencyKeyReused, BodyTooLarge,
    ),
    security(("bearer" = ["lead-sources:manage"]))
)]
pub async fn rotate(
    State(state): State<AppState>,
    Extension(client): Extension<AuthenticatedClient>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let issued = lead_sources::rotate(&state.db, &client.client_id, &id)
        .await
        .map_err(refusal)?;
    let url = format!("{}{HOOK_PATH}{}", base_url(&state, &headers), issued.token);
    Ok(shows_secret(
        StatusCode::OK,
        &shown(&issued.source, url, issued.secret),
    ))
}

/// Delete a source: its push URL is 404 from now on; the leads it delivered stay.
#[utoipa::path(
    delete,
    path = "/api/mobile/lead-sources/{id}",
    tag = "lead-sources",
    operation_id = "deleteLeadSource",
    params(("id" = String, Path, description = "The source id (`lsrc_…`)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such source for this client", body = ProblemDoc, content_type = "application/problem+json"),
        Authenticated, RateLimited, DatabaseUnavailable,
    ),
    security(("bearer" = ["lead-sources:manage"]))
)]
pub async fn remove(
    State(state): State<AppState>,
    Extension(client): Extension<AuthenticatedClient>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    lead_sources::remove(&state.db, &client.client_id, &id)
        .await
        .map_err(refusal)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
