//! Webhook subscriptions as the console manages them: add (with the SSRF rules), edit the URL
//! and events, disable and re-enable, rotate the secret, delete, the deliveries (paged, filtered)
//! and resending one. Always scoped to one app: another app's subscription is "not found".

use l2c_core::ClientId;
use l2c_core::api::events::EventType;
use l2c_core::webhook::WebhookSecret;
use sqlx::Row;

use super::Actor;
use crate::ssrf::{self, SsrfError};
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::outbox::Subscription;
use crate::usecases::subscriptions::{self, MAX_SUBSCRIPTIONS, SubscriptionError};

/// Deliveries per page.
pub const DELIVERY_PAGE_SIZE: i64 = 20;

/// Why a webhook action failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No such subscription (or delivery) for this app.
    #[error("no such webhook subscription")]
    NotFound,
    /// The URL is refused by the SSRF rules.
    #[error("url: {0}")]
    Url(SsrfError),
    /// No event type chosen.
    #[error("events: choose at least one event type")]
    NoEvents,
    /// The app holds the most subscriptions allowed.
    #[error("an app may hold at most {MAX_SUBSCRIPTIONS} subscriptions")]
    TooMany,
    /// The subscription is disabled (resend refused until it is enabled again).
    #[error("the subscription is disabled")]
    Disabled,
    /// The rotation overlap is too long.
    #[error("the overlap must be at most 7 days")]
    Overlap,
    /// Promote without a staged rotation (none under way, or already promoted).
    #[error("no staged secret rotation to promote")]
    NothingToPromote,
}

impl From<SubscriptionError> for WebhookError {
    fn from(e: SubscriptionError) -> Self {
        match e {
            SubscriptionError::TooMany => WebhookError::TooMany,
            SubscriptionError::Disabled => WebhookError::Disabled,
            SubscriptionError::OverlapTooLong => WebhookError::Overlap,
            SubscriptionError::NoRotation | SubscriptionError::AlreadyPromoted => {
                WebhookError::NothingToPromote
            }
            SubscriptionError::Store(e) => WebhookError::Store(e),
            _ => WebhookError::NotFound,
        }
    }
}

async fn vet(state: &AppState, url: &str, events: &[EventType]) -> Result<String, WebhookError> {
    if events.is_empty() {
        return Err(WebhookError::NoEvents);
    }
    let url = url.trim();
    ssrf::vet(url, state.config.webhooks.allow_private)
        .await
        .map_err(WebhookError::Url)?;
    Ok(url.to_owned())
}

fn sorted(events: &[EventType]) -> Vec<EventType> {
    let mut v = events.to_vec();
    v.sort();
    v.dedup();
    v
}

/// Subscribes `url` to `events` for app `client`. Returns the subscription and its secret
/// (shown once).
///
/// # Errors
///
/// [`WebhookError::Url`] (in words), [`WebhookError::NoEvents`], [`WebhookError::TooMany`].
pub async fn create(
    state: &AppState,
    actor: &Actor,
    client: &ClientId,
    url: &str,
    events: &[EventType],
) -> Result<(Subscription, WebhookSecret), WebhookError> {
    let url = vet(state, url, events).await?;
    let (sub, secret) = subscriptions::create(state, client, &url, &sorted(events)).await?;
    actor
        .audit(
            &state.db,
            "webhook.create",
            Some(client.as_str()),
            Some(&sub.id),
        )
        .await?;
    Ok((sub, secret))
}

/// Changes a subscription's URL and events.
///
/// # Errors
///
/// As [`create`], and [`WebhookError::NotFound`].
pub async fn update(
    state: &AppState,
    actor: &Actor,
    client: &ClientId,
    id: &str,
    url: &str,
    events: &[EventType],
) -> Result<(), WebhookError> {
    let url = vet(state, url, events).await?;
    let joined = sorted(events)
        .iter()
        .map(|e| e.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let n = sqlx::query(
        "UPDATE webhook_subscriptions SET url = $1, events = $2 WHERE client_id = $3 AND id = $4",
    )
    .bind(&url)
    .bind(joined)
    .bind(client.as_str())
    .bind(id)
    .execute(state.db.pool())
    .await
    .map_err(StoreError::from)?
    .rows_affected();
    if n == 0 {
        return Err(WebhookError::NotFound);
    }
    actor
        .audit(&state.db, "webhook.update", Some(client.as_str()), Some(id))
        .await?;
    Ok(())
}

/// Disables or re-enables a subscription (also after a receiver's 410 disabled it).
///
/// # Errors
///
/// [`WebhookError::NotFound`], [`WebhookError::Store`].
pub async fn set_enabled(
    state: &AppState,
    actor: &Actor,
    client: &ClientId,
    id: &str,
    enabled: bool,
) -> Result<(), WebhookError> {
    let n = sqlx::query(
        "UPDATE webhook_subscriptions SET enabled = $1, disabled_reason = NULL \
         WHERE client_id = $2 AND id = $3",
    )
    .bind(i64::from(enabled))
    .bind(client.as_str())
    .bind(id)
    .execute(state.db.pool())
    .await
    .map_err(StoreError::from)?
    .rows_affected();
    if n == 0 {
        return Err(WebhookError::NotFound);
    }
    let action = if enabled {
        "webhook.enable"
    } else {
        "webhook.disable"
    };
    actor
        .audit(&state.db, action, Some(client.as_str()), Some(id))
        .await?;
    Ok(())
}

/// Why the server disabled a subscription (a receiver's 410 Gone), if it did.
///
/// # Errors
///
/// [`WebhookError::Store`].
pub async fn disabled_reason(
    state: &AppState,
    client: &ClientId,
    id: &str,
) -> Result<Option<String>, WebhookError> {
    let row = sqlx::query(
        "SELECT disabled_reason FROM webhook_subscriptions WHERE client_id = $1 AND id = $2",
    )
    .bind(client.as_str())
    .bind(id)
    .fetch_optional(state.db.pool())
    .await
    .map_err(StoreError::from)?;
    Ok(row
        .map(|r| r.try_get::<Option<String>, _>("disabled_reason"))
        .transpose()
        .map_err(StoreError::from)?
        .flatten())
}

/// Rotates the secret, staged (see [`subscriptions::rotate`]): the previous one keeps signing
/// for `overlap`. Returns the new secret (shown once) and when the previous one stops signing.
///
/// # Errors
///
/// [`WebhookError::Overlap`], [`WebhookError::NotFound`], [`WebhookError::Store`].
pub async fn rotate(
    state: &AppState,
    actor: &Actor,
    client: &ClientId,
    id: &str,
    overlap: std::time::Duration,
) -> Result<(WebhookSecret, i64), WebhookError> {
    let rotated = subscriptions::rotate(state, client, id, Some(overlap)).await?;
    actor
        .audit(
            &state.db,
            "webhook.rotate_secret",
            Some(client.as_str()),
            Some(&format!("{id} overlap={}s", overlap.as_secs())),
        )
        .await?;
    Ok((rotated.secret, rotated.previous_expires_at))
}

/// Promotes the new secret of a staged rotation (see [`subscriptions::promote`]):
/// `X-L2C-Signature` signs with it from now on.
///
/// # Errors
///
/// [`WebhookError::NothingToPromote`], [`WebhookError::NotFound`], [`WebhookError::Store`].
pub async fn promote(
    state: &AppState,
    actor: &Actor,
    client: &ClientId,
    id: &str,
) -> Result<(), WebhookError> {
    subscriptions::promote(state, client, id).await?;
    actor
        .audit(
            &state.db,
            "webhook.promote_secret",
            Some(client.as_str()),
            Some(id),
        )
        .await?;
    Ok(())
}

/// Deletes a subscription with its deliveries.
///
/// # Errors
///
/// [`WebhookError::NotFound`], [`WebhookError::Store`].
pub async fn delete(
    state: &AppState,
    actor: &Actor,
    client: &ClientId,
    id: &str,
) -> Result<(), WebhookError> {
    subscriptions::remove(state, client, id).await?;
    actor
        .audit(&state.db, "webhook.delete", Some(client.as_str()), Some(id))
        .await?;
    Ok(())
}

/// Queues a delivery again (resend).
///
/// # Errors
///
/// [`WebhookError::NotFound`], [`WebhookError::Store`].
pub async fn resend(
    state: &AppState,
    actor: &Actor,
    client: &ClientId,
    id: &str,
    delivery_id: &str,
) -> Result<(), WebhookError> {
    subscriptions::redeliver(state, client, id, delivery_id).await?;
    actor
        .audit(
            &state.db,
            "webhook.resend",
            Some(client.as_str()),
            Some(delivery_id),
        )
        .await?;
    Ok(())
}

/// One attempt of a delivery, as the console lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AttemptRow {
    /// When (unix ms).
    pub attempted_at: i64,
    /// The receiver's status, if it answered.
    pub response_status: Option<i64>,
    /// Latency (ms).
    pub latency_ms: i64,
    /// Why it failed.
    pub error: Option<String>,
}

/// One delivery, as the console lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryRow {
    /// `dlv_…`.
    pub id: String,
    /// The event id.
    pub event_id: String,
    /// The event type.
    pub event_type: String,
    /// PENDING, SUCCEEDED or FAILED.
    pub status: String,
    /// Created (unix ms).
    pub created_at: i64,
    /// Its attempts, oldest first.
    pub attempts: Vec<AttemptRow>,
}

/// A filter of the delivery list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryFilter {
    /// Only this status (`PENDING`, `SUCCEEDED`, `FAILED`).
    pub status: Option<String>,
    /// Only this event type.
    pub event_type: Option<EventType>,
}

/// A page (1-based) of a subscription's deliveries, newest first, with whether a next page
/// exists.
///
/// # Errors
///
/// [`WebhookError::NotFound`], [`WebhookError::Store`].
pub async fn deliveries(
    state: &AppState,
    client: &ClientId,
    id: &str,
    filter: &DeliveryFilter,
    page: i64,
) -> Result<(Vec<DeliveryRow>, bool), WebhookError> {
    if state.db.webhooks().get(client, id).await?.is_none() {
        return Err(WebhookError::NotFound);
    }
    let status = filter
        .status
        .as_deref()
        .filter(|s| matches!(*s, "PENDING" | "SUCCEEDED" | "FAILED"));
    let offset = (page.max(1) - 1).saturating_mul(DELIVERY_PAGE_SIZE);
    let rows = sqlx::query(
        "SELECT d.id, d.event_id, e.event_type, d.status, d.created_at \
         FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id \
         WHERE d.subscription_id = $1 AND ($2 IS NULL OR d.status = $2) \
         AND ($3 IS NULL OR e.event_type = $3) \
         ORDER BY d.created_at DESC, d.id DESC LIMIT $4 OFFSET $5",
    )
    .bind(id)
    .bind(status)
    .bind(filter.event_type.map(EventType::as_str))
    .bind(DELIVERY_PAGE_SIZE + 1)
    .bind(offset)
    .fetch_all(state.db.pool())
    .await
    .map_err(StoreError::from)?;
    let more = rows.len() > usize::try_from(DELIVERY_PAGE_SIZE).unwrap_or(usize::MAX);
    let mut out = Vec::with_capacity(rows.len());
    for r in rows
        .iter()
        .take(usize::try_from(DELIVERY_PAGE_SIZE).unwrap_or(0))
    {
        let delivery_id: String = r.try_get("id").map_err(StoreError::from)?;
        let attempts = sqlx::query(
            "SELECT attempted_at, response_status, latency_ms, error FROM webhook_attempts \
             WHERE delivery_id = $1 ORDER BY attempt_no",
        )
        .bind(&delivery_id)
        .fetch_all(state.db.pool())
        .await
        .map_err(StoreError::from)?
        .iter()
        .map(|a| {
            Ok(AttemptRow {
                attempted_at: a.try_get("attempted_at")?,
                response_status: a.try_get("response_status")?,
                latency_ms: a.try_get("latency_ms")?,
                error: a.try_get("error")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(StoreError::from)?;
        out.push(DeliveryRow {
            id: delivery_id,
            event_id: r.try_get("event_id").map_err(StoreError::from)?,
            event_type: r.try_get("event_type").map_err(StoreError::from)?,
            status: r.try_get("status").map_err(StoreError::from)?,
            created_at: r.try_get("created_at").map_err(StoreError::from)?,
            attempts,
        });
    }
    Ok((out, more))
}
