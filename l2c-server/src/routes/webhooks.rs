//! `/webhooks` (scope `webhooks:manage`): subscriptions, secret rotation, the delivery log and
//! redelivery. A client sees only its own subscriptions; any other id is 404.
//!
//! | route | answer |
//! |---|---|
//! | `POST /webhooks` `{url, events}` | 201 `{id, url, events, secret, createdAt}` (the only time the secret is shown) |
//! | `GET /webhooks?page&pageSize` | 200 `{items: [{id, url, events, enabled, createdAt, previousSecretExpiresAt?, secretRotation?}], page, pageSize, total}`, oldest first |
//! | `DELETE /webhooks/{id}` | 204 |
//! | `POST /webhooks/{id}/rotate-secret` `{overlapSeconds?}` (body optional) | 200 `{id, secret, previousSecretExpiresAt}` |
//! | `POST /webhooks/{id}/promote-secret` | 200 the subscription, `secretRotation.stage` `PROMOTED` |
//! | `GET /webhooks/{id}/deliveries?page&pageSize&status&eventType` | 200 `{items: [delivery with attempts], page, pageSize, total}`, newest first |
//! | `POST /webhooks/{id}/deliveries/{delivery_id}/redeliver` | 202 the delivery, queued again |
//! | `POST /webhooks/{id}/test` | 202 the delivery of a new `PING` event to this subscription only |
//! | `POST /webhooks/{id}/recover` `{since}` | 202 `{queued}`: every failed delivery since `since` queued again |
//!
//! Paging follows the platform's convention (`page` from 1, `pageSize` 1–100, default 20; a bad
//! value is a 400 `invalid_query_parameter` naming it). A disabled subscription refuses test
//! events, redelivery and recovery with 409 `webhook_disabled`.
//!
//! The two answers that show a secret (create, rotate-secret) carry `Cache-Control: no-store`,
//! and the idempotency layer records them with the `secret` member removed
//! ([`l2c_core::idempotency::StoreRedacted`]): a retry with the same key gets the
//! same status and subscription back with `Idempotent-Replayed: true` but no `secret` — the secret
//! is shown only once, is never written to the idempotency store, and a retried create does not
//! create a second subscription.
//!
//! A rotation is staged ([`RotationStage`](l2c_core::api::webhooks::RotationStage)): the spec's
//! `X-L2C-Signature` keeps the previous secret until `promote-secret` (409
//! `no_secret_rotation` without a rotation under way, `secret_already_promoted` the second time)
//! or the overlap's end; `webhook-signature` carries both signatures throughout.
//!
//! Bad input is a 400 problem (`invalid_field`) naming `url` or `events`: a URL that is not
//! https, does not resolve, or resolves to a non-public address ([`crate::ssrf`]); an empty or
//! unknown event type list.

use axum::body::Bytes;
use axum::extract::{FromRequest, RawQuery, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Router};
use http::{StatusCode, header};
use l2c_core::api::events::EventType;
use l2c_core::api::showroom::Page;
use l2c_core::api::webhooks::{
    CreateWebhook, CreatedWebhook, Delivery, DeliveryStatus, RecoverWebhook, Recovered,
    RotateWebhookSecret, RotatedSecret, Webhook,
};
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
use crate::extract::JsonBody;
use crate::extract::{Json, Path};
use crate::extract::{invalid_query, query_params};
use crate::ssrf;
use crate::state::AppState;
use crate::store::outbox::DeliveryFilter;
use crate::store::sql::millis_to_cst;
use crate::usecases::subscriptions::{self, SubscriptionError};

pub use crate::usecases::subscriptions::MAX_SUBSCRIPTIONS;

/// The webhook routes, relative to `/api/mobile`.
pub fn routes() -> Router<AppState> {
    let scope = || RequireScopeLayer::one(Scope::WebhooksManage);
    Router::new()
        .route("/webhooks", post(create).get(list).layer(scope()))
        .route("/webhooks/{id}", delete(remove).layer(scope()))
        .route("/webhooks/{id}/rotate-secret", post(rotate).layer(scope()))
        .route(
            "/webhooks/{id}/promote-secret",
            post(promote).layer(scope()),
        )
        .route("/webhooks/{id}/deliveries", get(deliveries).layer(scope()))
        .route("/webhooks/{id}/test", post(send_test).layer(scope()))
        .route("/webhooks/{id}/recover", post(recover).layer(scope()))
        .route(
            "/webhooks/{id}/deliveries/{delivery_id}/redeliver",
            post(redeliver).layer(scope()),
        )
}

fn invalid(field: &'static str, detail: impl Into<String>) -> AppError {
    let detail = detail.into();
    Problem::new(StatusCode::BAD_REQUEST, "invalid_field", "Bad Request")
        .with_detail(format!("`{field}`: {detail}"))
        .with_extension("field", field)
        .into()
}

/// The problem a refused subscription change is answered with.
fn refusal(err: SubscriptionError) -> AppError {
    let detail = err.to_string();
    match err {
        // Nothing was written: the retry with the same key after a delete runs.
        SubscriptionError::TooMany => AppError::refused(
            Problem::new(
                StatusCode::CONFLICT,
                "too_many_webhooks",
                "Too Many Webhooks",
            )
            .with_detail(detail),
        ),
        SubscriptionError::NotFound(_) | SubscriptionError::DeliveryNotFound(_) => {
            Problem::not_found(detail).into()
        }
        SubscriptionError::OverlapTooLong => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "Unprocessable Content",
        )
        .with_detail(format!("`overlapSeconds`: {detail}"))
        .with_extension("field", "overlapSeconds")
        .into(),
        SubscriptionError::NoRotation => Problem::new(
            StatusCode::CONFLICT,
            "no_secret_rotation",
            "No Secret Rotation",
        )
        .with_detail(detail)
        .into(),
        SubscriptionError::AlreadyPromoted => Problem::new(
            StatusCode::CONFLICT,
            "secret_already_promoted",
            "Secret Already Promoted",
        )
        .with_detail(detail)
        .into(),
        SubscriptionError::Disabled => {
            Problem::new(StatusCode::CONFLICT, "webhook_disabled", "Webhook Disabled")
                .with_detail(detail)
                .into()
        }
        SubscriptionError::SinceTooOld { .. } | SubscriptionError::SinceInFuture => {
            invalid("since", detail)
        }
        SubscriptionError::Store(e) => AppError::Store(e),
    }
}

/// The validated body of `POST /webhooks`.
async fn validate(body: &Value, allow_private: bool) -> Result<(String, Vec<EventType>), AppError> {
    let Some(obj) = body.as_object() else {
        return Err(Problem::bad_request("invalid_body", "the body must be a JSON object").into());
    };
    let url = match obj.get("url") {
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(_) => return Err(invalid("url", "must be a string")),
        None => return Err(invalid("url", "is required")),
    };
    ssrf::vet(&url, allow_private)
        .await
        .map_err(|e| invalid("url", e.to_string()))?;
    let events = match obj.get("events") {
        Some(Value::Array(items)) => items,
        Some(_) => return Err(invalid("events", "must be an array of event types")),
        None => return Err(invalid("events", "is required")),
    };
    if events.is_empty() {
        return Err(invalid("events", "must name at least one event type"));
    }
    let mut types = Vec::with_capacity(events.len());
    for item in events {
        let t: EventType = item
            .as_str()
            .ok_or_else(|| invalid("events", "must be an array of strings"))?
            .parse()
            .map_err(|e: l2c_core::api::events::UnknownEventType| {
                invalid("events", e.to_string())
            })?;
        if !t.is_subscribable() {
            return Err(invalid(
                "events",
                "PING is sent only on request (POST /webhooks/{id}/test) and cannot be subscribed to",
            ));
        }
        if !types.contains(&t) {
            types.push(t);
        }
    }
    types.sort();
    Ok((url, types))
}

/// Subscribe a URL to event types. The answer carries the signing secret, shown only this once.
#[utoipa::path(
    post,
    path = "/api/mobile/webhooks",
    tag = "webhooks",
    operation_id = "createWebhook",
    request_body = CreateWebhook,
    params(IdempotencyKey),
    responses(
        (status = 201, description = "The subscription, with its signing secret", body = CreatedWebhook,
            links(("DeleteWebhook" = (operation_id = "deleteWebhook", parameters(("id" = "$response.body#/id")))), ("RotateWebhookSecret" = (operation_id = "rotateWebhookSecret", parameters(("id" = "$response.body#/id")))), ("ListWebhookDeliveries" = (operation_id = "listWebhookDeliveries", parameters(("id" = "$response.body#/id")))), ("SendWebhookTest" = (operation_id = "sendWebhookTest", parameters(("id" = "$response.body#/id")))), ("RecoverWebhook" = (operation_id = "recoverWebhook", parameters(("id" = "$response.body#/id")))))),
        (status = 400, description = "Malformed JSON, or `url` / `events` invalid (named in `field`): not https, not public, unknown event type, empty list; or no `X-Request-Id` (`idempotency_key_missing`), a key that is not 1–255 visible ASCII characters (`idempotency_key_invalid`), or `X-Request-Id` and `Idempotency-Key` differing (`idempotency_key_conflict`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "The client already holds the most subscriptions allowed (`too_many_webhooks`); or a request with the same idempotency key is still running (`idempotency_key_in_use`; retry after `Retry-After`)", body = ProblemDoc, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "With `idempotency_key_in_use`: seconds to wait (1)"))),
        (status = 413, description = "Body over 1 MiB", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "Not `application/json`", body = ProblemDoc, content_type = "application/problem+json"),
        Authenticated, RateLimited, DatabaseUnavailable, IdempotencyKeyReused,
    ),
    security(("bearer" = ["webhooks:manage"]))
)]
pub async fn create(
    State(state): State<AppState>,
    Extension(client): Extension<AuthenticatedClient>,
    body: JsonBody<Value>,
) -> Result<Response, AppError> {
    let (url, events) = validate(&body.value, state.config.webhooks.allow_private).await?;
    let (sub, secret) = subscriptions::create(&state, &client.client_id, &url, &events)
        .await
        .map_err(refusal)?;
    let created = CreatedWebhook::new(
        sub.id.as_str(),
        sub.url,
        sub.events,
        secret.expose_secret(),
        millis_to_cst(sub.created_at),
    );
    Ok(shows_secret(StatusCode::CREATED, &created))
}

/// A JSON answer that shows a signing secret: `Cache-Control: no-store`, and the idempotency
/// layer stores it without its `secret` member.
fn shows_secret<T: serde::Serialize>(status: StatusCode, value: &T) -> Response {
    let serialised = serde_json::to_value(value).and_then(|full| {
        let mut redacted = full.clone();
        if let Value::Object(members) = &mut redacted {
            members.remove("secret");
        }
        Ok((serde_json::to_vec(&full)?, serde_json::to_vec(&redacted)?))
    });
    let (body, stored) = match serialised {
        Ok(pair) => pair,
        Err(e) => {
            return AppError::internal(format!("serialising a secret response: {e}"))
                .into_response();
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

/// The caller's subscriptions (without secrets), oldest first, one page at a time.
#[utoipa::path(
    get,
    path = "/api/mobile/webhooks",
    tag = "webhooks",
    operation_id = "listWebhooks",
    params(
        ("page" = Option<u32>, Query, minimum = 1, maximum = 1000000, description = "The page, from 1 (default 1), at most 1,000,000"),
        ("pageSize" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Items per page, 1–100 (default 20)"),
    ),
    responses(
        (status = 200, description = "One page of the caller's subscriptions", body = Page<Webhook>),
        (status = 400, description = "A bad paging parameter (named in `field`)", body = ProblemDoc, content_type = "application/problem+json"),
        Authenticated, RateLimited, DatabaseUnavailable,
    ),
    security(("bearer" = ["webhooks:manage"]))
)]
pub async fn list(
    State(state): State<AppState>,
    Extension(client): Extension<AuthenticatedClient>,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let [page, page_size] =
        query_params(query.as_deref(), ["page", "pageSize"]).map_err(|e| invalid_query(&e))?;
    let (page, page_size) =
        validate::paging(page.as_deref(), page_size.as_deref()).map_err(|e| invalid_query(&e))?;
    let now = state.db.now_millis();
    let (subs, total) = state
        .db
        .webhooks()
        .list_page(&client.client_id, page, page_size)
        .await?;
    let items = subs.iter().map(|s| s.to_wire(now)).collect();
    Ok(Json(Page::new(items, page, page_size, total)).into_response())
}

/// Delete a subscription; nothing more is delivered to it.
#[utoipa::path(
    delete,
    path = "/api/mobile/webhooks/{id}",
    tag = "webhooks",
    operation_id = "deleteWebhook",
    params(("id" = String, Path, description = "The subscription id (`wh_…`)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such subscription for this client", body = ProblemDoc, content_type = "application/problem+json"),
        Authenticated, RateLimited, DatabaseUnavailable,
    ),
    security(("bearer" = ["webhooks:manage"]))
)]
pub async fn remove(
    State(state): State<AppState>,
    Extension(client): Extension<AuthenticatedClient>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    subscriptions::remove(&state, &client.client_id, &id)
        .await
        .map_err(refusal)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Replace the signing secret, staged. The previous secret keeps signing until
/// `previousSecretExpiresAt` (`overlapSeconds` from now; 24 h without a body): `X-L2C-Signature`
/// with it alone until `promote-secret` or that time, `webhook-signature` with both secrets.
/// The body is optional (none, or `null`: the default overlap).
#[utoipa::path(
    post,
    path = "/api/mobile/webhooks/{id}/rotate-secret",
    tag = "webhooks",
    operation_id = "rotateWebhookSecret",
    params(("id" = String, Path, description = "The subscription id (`wh_…`)"), IdempotencyKey),
    request_body(content = Option<RotateWebhookSecret>, description = "Optional: the overlap"),
    responses(
        (status = 200, description = "The new secret, shown only this once", body = RotatedSecret,
            links(("PromoteWebhookSecret" = (operation_id = "promoteWebhookSecret", parameters(("id" = "$response.body#/id")))))),
        (status = 400, description = "Malformed JSON or a body that is not a JSON object; or no `X-Request-Id` (`idempotency_key_missing`), a key that is not 1–255 visible ASCII characters (`idempotency_key_invalid`), or `X-Request-Id` and `Idempotency-Key` differing (`idempotency_key_conflict`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such subscription for this client", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "A body that is not `application/json`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "`overlapSeconds` negative, not an integer or over 604800, or an unknown member (named in `field`); or the idempotency key was already used with a different request body (`idempotency_key_reused`)", body = ProblemDoc, content_type = "application/problem+json"),
        Authenticated, RateLimited, DatabaseUnavailable, IdempotencyInFlight, BodyTooLarge,
    ),
    security(("bearer" = ["webhooks:manage"]))
)]
pub async fn rotate(
    State(state): State<AppState>,
    Extension(client): Extension<AuthenticatedClient>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, AppError> {
    let overlap = match optional_body::<RotateWebhookSecret>(req, &state).await {
        Ok(body) => body.and_then(|b| b.overlap_seconds),
        Err(refused) => return Ok(refused.into_response()),
    };
    let rotated = subscriptions::rotate(
        &state,
        &client.client_id,
        &id,
        overlap.map(std::time::Duration::from_secs),
    )
    .await
    .map_err(refusal)?;
    Ok(shows_secret(
        StatusCode::OK,
        &RotatedSecret::new(
            rotated.subscription.id.as_str(),
            rotated.secret.expose_secret(),
            millis_to_cst(rotated.previous_expires_at),
        ),
    ))
}

/// The JSON body of a request whose body is optional: `None` for an empty body or `null`,
/// else parsed like any [`JsonBody`] (`Content-Type` checked, a JSON object required).
async fn optional_body<T: serde::de::DeserializeOwned>(
    req: Request,
    state: &AppState,
) -> Result<Option<T>, crate::extract::Refused> {
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, crate::extract::MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(e) if is_length_limit(&e) => return Err(crate::extract::payload_too_large().into()),
        Err(_) => {
            return Err(
                Problem::bad_request("invalid_body", "the request body could not be read").into(),
            );
        }
    };
    if matches!(bytes.trim_ascii(), b"" | b"null") {
        return Ok(None);
    }
    let req = Request::from_parts(parts, axum::body::Body::from(bytes));
    Ok(Some(JsonBody::<T>::from_request(req, state).await?.value))
}

fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// Promote the new secret of a staged rotation: `X-L2C-Signature` signs with it from now on
/// (call this once every receiver verifies with the new secret); `webhook-signature` keeps both
/// signatures until `previousSecretExpiresAt`.
#[utoipa::path(
    post,
    path = "/api/mobile/webhooks/{id}/promote-secret",
    tag = "webhooks",
    operation_id = "promoteWebhookSecret",
    params(("id" = String, Path, description = "The subscription id (`wh_…`)"), IdempotencyKey),
    responses(
        (status = 200, description = "The subscription, `secretRotation.stage` now `PROMOTED`", body = Webhook),
        (status = 404, description = "No such subscription for this client", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "No rotation under way (`no_secret_rotation`), the new secret already promoted (`secret_already_promoted`), or a request with the same idempotency key still running (`idempotency_key_in_use`; retry after `Retry-After`)", body = ProblemDoc, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "With `idempotency_key_in_use`: seconds to wait (1)"))),
        Authenticated, RateLimited, DatabaseUnavailable, IdempotencyKeyRefused, IdempotencyKeyReused, BodyTooLarge,
    ),
    security(("bearer" = ["webhooks:manage"]))
)]
pub async fn promote(
    State(state): State<AppState>,
    Extension(client): Extension<AuthenticatedClient>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let sub = subscriptions::promote(&state, &client.client_id, &id)
        .await
        .map_err(refusal)?;
    Ok(Json(sub.to_wire(state.db.now_millis())).into_response())
}

/// The query of `GET /webhooks/{id}/deliveries`: paging and the two filters.
fn delivery_query(raw: Option<&str>) -> Result<(DeliveryFilter, u32, u32), FieldError> {
    let [page, page_size, status, event_type] =
        query_params(raw, ["page", "pageSize", "status", "eventType"])?;
    let (page, page_size) = validate::paging(page.as_deref(), page_size.as_deref())?;
    let status = match status.as_deref() {
        None => None,
        Some("PENDING") => Some(DeliveryStatus::Pending),
        Some("SUCCEEDED") => Some(DeliveryStatus::Succeeded),
        Some("FAILED") => Some(DeliveryStatus::Failed),
        Some(_) => {
            return Err(FieldError::new(
                "status",
                "must be `PENDING`, `SUCCEEDED` or `FAILED`",
            ));
        }
    };
    let event_type = event_type
        .map(|t| t.parse::<EventType>())
        .transpose()
        .map_err(|e| FieldError::new("eventType", e.to_string()))?;
    Ok((DeliveryFilter { status, event_type }, page, page_size))
}

/// The subscription's deliveries with all their attempts, newest first, one page at a time,
/// optionally only those in one status or of one event type.
#[utoipa::path(
    get,
    path = "/api/mobile/webhooks/{id}/deliveries",
    tag = "webhooks",
    operation_id = "listWebhookDeliveries",
    params(
        ("id" = String, Path, description = "The subscription id (`wh_…`)"),
        ("page" = Option<u32>, Query, minimum = 1, maximum = 1000000, description = "The page, from 1 (default 1), at most 1,000,000"),
        ("pageSize" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Items per page, 1–100 (default 20)"),
        ("status" = Option<DeliveryStatus>, Query, description = "Only deliveries in this status"),
        ("eventType" = Option<EventType>, Query, description = "Only deliveries of this event type"),
    ),
    responses(
        (status = 200, description = "One page of the delivery log", body = Page<Delivery>,
            links(("RedeliverWebhook" = (operation_id = "redeliverWebhook", parameters(("id" = "$request.path.id"), ("delivery_id" = "$response.body#/items/0/id")))))),
        (status = 400, description = "A bad query parameter (named in `field`): paging out of range or not a number, unknown status or event type", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such subscription for this client", body = ProblemDoc, content_type = "application/problem+json"),
        Authenticated, RateLimited, DatabaseUnavailable,
    ),
    security(("bearer" = ["webhooks:manage"]))
)]
pub async fn deliveries(
    State(state): State<AppState>,
    Extension(client): Extension<AuthenticatedClient>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let (filter, page, page_size) =
        delivery_query(query.as_deref()).map_err(|e| invalid_query(&e))?;
    let (items, total) =
        subscriptions::deliveries(&state, &client.client_id, &id, &filter, page, page_size)
            .await
            .map_err(refusal)?;
    Ok(Json(Page::new(items, page, page_size, total)).into_response())
}

/// Queue a delivery again: the same event (same id), signed afresh.
#[utoipa::path(
    post,
    path = "/api/mobile/webhooks/{id}/deliveries/{delivery_id}/redeliver",
    tag = "webhooks",
    operation_id = "redeliverWebhook",
    params(
        ("id" = String, Path, description = "The subscription id (`wh_…`)"),
        ("delivery_id" = String, Path, description = "The delivery id (`dlv_…`)"),
        IdempotencyKey,
    ),
    responses(
        (status = 202, description = "The delivery, queued again", body = Delivery),
        (status = 404, description = "No such subscription or delivery for this client", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "The subscription was disabled after the receiver answered 410 Gone (`webhook_disabled`); or a request with the same idempotency key is still running (`idempotency_key_in_use`; retry after `Retry-After`)", body = ProblemDoc, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "With `idempotency_key_in_use`: seconds to wait (1)"))),
        Authenticated, RateLimited, DatabaseUnavailable, IdempotencyKeyRefused, IdempotencyKeyReused, BodyTooLarge,
    ),
    security(("bearer" = ["webhooks:manage"]))
)]
pub async fn redeliver(
    State(state): State<AppState>,
    Extension(client): Extension<AuthenticatedClient>,
    Path((id, delivery_id)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let delivery = subscriptions::redeliver(&state, &client.client_id, &id, &delivery_id)
        .await
        .map_err(refusal)?;
    Ok((StatusCode::ACCEPTED, Json(delivery)).into_response())
}

/// Send a test event: a new `PING` event queued for this subscription only, delivered by the
/// dispatcher like any other (signed, recorded in the delivery log, retried). Its `data` is
/// `{webhookId, clientId, note}`.
#[utoipa::path(
    post,
    path = "/api/mobile/webhooks/{id}/test",
    tag = "webhooks",
    operation_id = "sendWebhookTest",
    params(("id" = String, Path, description = "The subscription id (`wh_…`)"), IdempotencyKey),
    responses(
        (status = 202, description = "The PING delivery, queued", body = Delivery),
        (status = 404, description = "No such subscription for this client", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "The subscription is disabled (`webhook_disabled`); or a request with the same idempotency key is still running (`idempotency_key_in_use`; retry after `Retry-After`)", body = ProblemDoc, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "With `idempotency_key_in_use`: seconds to wait (1)"))),
        Authenticated, RateLimited, DatabaseUnavailable, IdempotencyKeyRefused, IdempotencyKeyReused, BodyTooLarge,
    ),
    security(("bearer" = ["webhooks:manage"]))
)]
pub async fn send_test(
    State(state): State<AppState>,
    Extension(client): Extension<AuthenticatedClient>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let delivery = subscriptions::send_test(&state, &client.client_id, &id)
        .await
        .map_err(refusal)?;
    Ok((StatusCode::ACCEPTED, Json(delivery)).into_response())
}

/// Resend every failed delivery of the subscription queued since `since` (after the receiver's
/// outage): each is queued again with a fresh retry schedule. `since` may reach back as far as
/// deliveries are kept (`--webhook-retention`, default 30 days) and not into the future.
#[utoipa::path(
    post,
    path = "/api/mobile/webhooks/{id}/recover",
    tag = "webhooks",
    operation_id = "recoverWebhook",
    request_body = RecoverWebhook,
    params(("id" = String, Path, description = "The subscription id (`wh_…`)"), IdempotencyKey),
    responses(
        (status = 202, description = "How many failed deliveries were queued again", body = Recovered),
        (status = 400, description = "Malformed JSON, or `since` missing, not an RFC 3339 time, in the future or older than the retention (named in `field`); or an idempotency key problem", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such subscription for this client", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "The subscription is disabled (`webhook_disabled`); or a request with the same idempotency key is still running (`idempotency_key_in_use`; retry after `Retry-After`)", body = ProblemDoc, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "With `idempotency_key_in_use`: seconds to wait (1)"))),
        (status = 413, description = "Body over 1 MiB", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "Not `application/json`", body = ProblemDoc, content_type = "application/problem+json"),
        Authenticated, RateLimited, DatabaseUnavailable, IdempotencyKeyReused,
    ),
    security(("bearer" = ["webhooks:manage"]))
)]
pub async fn recover(
    State(state): State<AppState>,
    Extension(client): Extension<AuthenticatedClient>,
    Path(id): Path<String>,
    body: JsonBody<Value>,
) -> Result<Response, AppError> {
    let Some(obj) = body.value.as_object() else {
        return Err(Problem::bad_request("invalid_body", "the body must be a JSON object").into());
    };
    let since = match obj.get("since") {
        Some(Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s.trim())
            .map_err(|_| invalid("since", "must be an RFC 3339 time with offset"))?,
        Some(_) => return Err(invalid("since", "must be a string")),
        None => return Err(invalid("since", "is required")),
    };
    let queued = subscriptions::recover(&state, &client.client_id, &id, since.timestamp_millis())
        .await
        .map_err(refusal)?;
    Ok((StatusCode::ACCEPTED, Json(Recovered::new(queued))).into_response())
}
