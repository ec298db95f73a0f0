//! `/webhooks` (scope `webhooks:manage`): subscriptions, secret rotation, the delivery log and
//! redelivery. A client sees only its own subscriptions; any other id is 404.
//!
//! | route | answer |
//! |---|---|
//! | `POST /webhooks` `{url, events}` | 201 `{id, url, events, secret, createdAt}` (the only time the secret is shown) |
//! | `GET /webhooks` | 200 `{items: [{id, url, events, enabled, createdAt, previousSecretExpiresAt?}]}` |
//! | `DELETE /webhooks/{id}` | 204 |
//! | `POST /webhooks/{id}/rotate-secret` | 200 `{id, secret, previousSecretExpiresAt}` |
//! | `GET /webhooks/{id}/deliveries` | 200 `{items: [delivery with attempts]}`, newest first (100) |
//! | `POST /webhooks/{id}/deliveries/{delivery_id}/redeliver` | 202 the delivery, queued again |
//!
//! Bad input is a 400 problem (`invalid_field`) naming `url` or `events`: a URL that is not
//! https, does not resolve, or resolves to a non-public address ([`crate::ssrf`]); an empty or
//! unknown event type list.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Router};
use http::StatusCode;
use l2c_core::api::events::EventType;
use l2c_core::api::webhooks::{CreatedWebhook, DeliveryList, RotatedSecret, WebhookList};
use l2c_core::auth::RequireScopeLayer;
use l2c_core::webhook::WebhookSecret;
use l2c_core::{AuthenticatedClient, Problem, Scope};
use serde_json::Value;

use super::body::JsonBody;
use crate::error::AppError;
use crate::extract::{Json, Path};
use crate::ssrf;
use crate::state::AppState;
use crate::store::domain_util::millis_to_cst;
use crate::store::unix_millis;

/// How many deliveries `GET /webhooks/{id}/deliveries` lists.
pub const DELIVERY_LIST_LIMIT: i64 = 100;

/// The most subscriptions one client may hold.
pub const MAX_SUBSCRIPTIONS: usize = 20;

/// The webhook routes, relative to `/api/mobile`.
pub fn routes() -> Router<AppState> {
    let scope = || RequireScopeLayer::one(Scope::WebhooksManage);
    Router::new()
        .route("/webhooks", post(create).get(list).layer(scope()))
        .route("/webhooks/{id}", delete(remove).layer(scope()))
        .route("/webhooks/{id}/rotate-secret", post(rotate).layer(scope()))
        .route("/webhooks/{id}/deliveries", get(deliveries).layer(scope()))
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

fn not_found(what: &str) -> AppError {
    Problem::not_found(format!("no webhook subscription `{what}`")).into()
}

fn now_ms(state: &AppState) -> i64 {
    unix_millis(state.clock.now())
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
        if !types.contains(&t) {
            types.push(t);
        }
    }
    types.sort();
    Ok((url, types))
}

async fn create(
    State(state): State<AppState>,
    Extension(client): Extension<AuthenticatedClient>,
    body: JsonBody<Value>,
) -> Result<Response, AppError> {
    let (url, events) = validate(&body.value, state.config.webhooks.allow_private).await?;
    let store = state.db.webhooks();
    if store.list(&client.client_id).await?.len() >= MAX_SUBSCRIPTIONS {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "too_many_webhooks",
            "Too Many Webhooks",
        )
        .with_detail(format!(
            "a client may hold at most {MAX_SUBSCRIPTIONS} subscriptions; delete one first"
        ))
        .into());
    }
    let secret = WebhookSecret::generate();
    let sub = store
        .create(
            &client.client_id,
            &url,
            &events,
            secret.expose_secret(),
            now_ms(&state),
        )
        .await?;
    let created = CreatedWebhook::new(
        sub.id.as_str(),
        sub.url,
        sub.events,
        secret.expose_secret(),
        millis_to_cst(sub.created_at),
    );
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

async fn list(
    State(state): State<AppState>,
    Extension(client): Extension<AuthenticatedClient>,
) -> Result<Response, AppError> {
    let now = now_ms(&state);
    let items = state
        .db
        .webhooks()
        .list(&client.client_id)
        .await?
        .iter()
        .map(|s| s.to_wire(now))
        .collect();
    Ok(Json(WebhookList::new(items)).into_response())
}

async fn remove(
    State(state): State<AppState>,
    Extension(client): Extension<AuthenticatedClient>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    if state.db.webhooks().delete(&client.client_id, &id).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(not_found(&id))
    }
}

async fn rotate(
    State(state): State<AppState>,
    Extension(client): Extension<AuthenticatedClient>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let secret = WebhookSecret::generate();
    let window =
        i64::try_from(state.config.webhooks.rotation_window.as_millis()).unwrap_or(i64::MAX / 4);
    let expires = now_ms(&state).saturating_add(window);
    match state
        .db
        .webhooks()
        .rotate(&client.client_id, &id, secret.expose_secret(), expires)
        .await?
    {
        Some(sub) => Ok(Json(RotatedSecret::new(
            sub.id.as_str(),
            secret.expose_secret(),
            millis_to_cst(expires),
        ))
        .into_response()),
        None => Err(not_found(&id)),
    }
}

async fn deliveries(
    State(state): State<AppState>,
    Extension(client): Extension<AuthenticatedClient>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    match state
        .db
        .webhooks()
        .deliveries(&client.client_id, &id, DELIVERY_LIST_LIMIT)
        .await?
    {
        Some(items) => Ok(Json(DeliveryList::new(items)).into_response()),
        None => Err(not_found(&id)),
    }
}

async fn redeliver(
    State(state): State<AppState>,
    Extension(client): Extension<AuthenticatedClient>,
    Path((id, delivery_id)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let store = state.db.webhooks();
    let Some(sub) = store.get(&client.client_id, &id).await? else {
        return Err(not_found(&id));
    };
    if !sub.enabled {
        return Err(
            Problem::new(StatusCode::CONFLICT, "webhook_disabled", "Webhook Disabled")
                .with_detail(
                    "the receiver answered 410 Gone and the subscription was disabled; \
                 create a new subscription",
                )
                .into(),
        );
    }
    match store
        .redeliver(&client.client_id, &id, &delivery_id, now_ms(&state))
        .await?
    {
        Some(d) => {
            state.webhook_wake.notify_one();
            Ok((StatusCode::ACCEPTED, Json(d)).into_response())
        }
        None => Err(Problem::not_found(format!("no delivery `{delivery_id}`")).into()),
    }
}
