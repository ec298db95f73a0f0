//! Webhook subscriptions as the console manages them: add (with the SSRF rules), edit the URL
//! and events, disable and re-enable, rotate the secret, delete, send a test event, the
//! deliveries (paged, filtered, with every attempt and the signed body), resending one and
//! recovering every failed one since a time. Always scoped to one app: another app's subscription is "not found".

use std::collections::HashMap;

use l2c_core::ClientId;
use l2c_core::api::events::EventType;
use l2c_core::api::webhooks::Delivery;
use l2c_core::webhook::WebhookSecret;

use super::Actor;
use crate::ssrf::{self, SsrfError};
use crate::state::AppState;
use crate::store::StoreError;
pub use crate::store::outbox::DeliveryFilter;
use crate::store::outbox::Subscription;
use crate::usecases::subscriptions::{self, MAX_SUBSCRIPTIONS, SubscriptionError};

/// Deliveries per page.
pub const DELIVERY_PAGE_SIZE: u32 = 20;

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
    /// `PING` chosen: it is sent only on request.
    #[error("events: PING is sent only on request and cannot be subscribed to")]
    Unsubscribable,
    /// The app holds the most subscriptions allowed.
    #[error("an app may hold at most {MAX_SUBSCRIPTIONS} subscriptions")]
    TooMany,
    /// The subscription is disabled (test, resend and recover refused until it is enabled
    /// again).
    #[error("the subscription is disabled")]
    Disabled,
    /// A recovery's start time is refused (too old or in the future).
    #[error("since: {0}")]
    Since(SubscriptionError),
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
            e @ (SubscriptionError::SinceTooOld { .. } | SubscriptionError::SinceInFuture) => {
                WebhookError::Since(e)
            }
            _ => WebhookError::NotFound,
        }
    }
}

async fn vet(state: &AppState, url: &str, events: &[EventType]) -> Result<String, WebhookError> {
    if events.is_empty() {
        return Err(WebhookError::NoEvents);
    }
    if events.iter().any(|e| !e.is_subscribable()) {
        return Err(WebhookError::Unsubscribable);
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

/// Sends a test event (`PING`) to one subscription.
///
/// # Errors
///
/// [`WebhookError::NotFound`], [`WebhookError::Disabled`], [`WebhookError::Store`].
pub async fn send_test(
    state: &AppState,
    actor: &Actor,
    client: &ClientId,
    id: &str,
) -> Result<Delivery, WebhookError> {
    let delivery = subscriptions::send_test(state, client, id).await?;
    actor
        .audit(&state.db, "webhook.test", Some(client.as_str()), Some(id))
        .await?;
    Ok(delivery)
}

/// Resends every failed delivery of a subscription queued since `since` (unix ms). Returns
/// how many were queued.
///
/// # Errors
///
/// [`WebhookError::Since`] (in words), [`WebhookError::NotFound`], [`WebhookError::Disabled`],
/// [`WebhookError::Store`].
pub async fn recover(
    state: &AppState,
    actor: &Actor,
    client: &ClientId,
    id: &str,
    since: i64,
) -> Result<u64, WebhookError> {
    let queued = subscriptions::recover(state, client, id, since).await?;
    actor
        .audit(
            &state.db,
            "webhook.recover",
            Some(client.as_str()),
            Some(id),
        )
        .await?;
    Ok(queued)
}

/// One page of a subscription's deliveries as the console shows them: newest first, each with
/// all its attempts and the exact body that was signed and sent.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DeliveryPage {
    /// The deliveries, newest first.
    pub items: Vec<Delivery>,
    /// The signed body of each delivery's event, by event id.
    pub payloads: HashMap<String, String>,
    /// How many deliveries match the filter in all.
    pub total: u64,
}

/// A page (from 1) of [`DELIVERY_PAGE_SIZE`] deliveries of `sub` (read as its app's) matching
/// `filter`: the API's batched query ([`subscriptions::log`]) and the events' bodies, in four
/// queries whatever the page holds.
///
/// # Errors
///
/// [`WebhookError::Store`].
pub async fn deliveries(
    state: &AppState,
    sub: &Subscription,
    filter: &DeliveryFilter,
    page: u32,
) -> Result<DeliveryPage, WebhookError> {
    let (items, total) = subscriptions::log(state, sub, filter, page, DELIVERY_PAGE_SIZE).await?;
    let events: Vec<String> = items.iter().map(|d| d.event_id.clone()).collect();
    let client = ClientId::new(sub.client_id.as_str());
    let payloads = state.db.webhooks().payloads(&client, &events).await?;
    Ok(DeliveryPage {
        items,
        payloads,
        total,
    })
}
