//! Webhook subscription management (`/webhooks`): create (capped per client), delete, rotate
//! the signing secret (staged) and promote the new one, redeliver. The routes validate the request's shape and vet the URL
//! ([`crate::ssrf`]); these functions own the rules after that and write through
//! [`store::outbox`](crate::store::outbox).

use l2c_core::ClientId;
use l2c_core::api::events::EventType;
use l2c_core::api::webhooks::{Delivery, MAX_ROTATION_OVERLAP_SECONDS};
use l2c_core::webhook::WebhookSecret;

use crate::state::AppState;
use crate::store::StoreError;
use crate::store::outbox::Subscription;

/// The most subscriptions one client may hold.
pub const MAX_SUBSCRIPTIONS: usize = 20;

/// Why a subscription change was refused. Nothing is written in any of these cases.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubscriptionError {
    /// The client already holds [`MAX_SUBSCRIPTIONS`].
    #[error("a client may hold at most {MAX_SUBSCRIPTIONS} subscriptions; delete one first")]
    TooMany,
    /// No such subscription of this client.
    #[error("no webhook subscription `{0}`")]
    NotFound(String),
    /// No such delivery of this subscription.
    #[error("no delivery `{0}`")]
    DeliveryNotFound(String),
    /// The receiver answered 410 Gone and the subscription was disabled.
    #[error(
        "the receiver answered 410 Gone and the subscription was disabled; \
         create a new subscription"
    )]
    Disabled,
    /// The rotation overlap asked for is longer than [`MAX_ROTATION_OVERLAP_SECONDS`].
    #[error("the overlap must be at most {MAX_ROTATION_OVERLAP_SECONDS} seconds (7 days)")]
    OverlapTooLong,
    /// Promote without a rotation under way (none was made, or its overlap has ended).
    #[error("no secret rotation is under way; rotate the secret first")]
    NoRotation,
    /// Promote of a rotation already promoted.
    #[error("the new secret is already promoted")]
    AlreadyPromoted,
    /// A database failure.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Subscribes `url` (already vetted) to `events` for `client` with a new signing secret, which
/// is returned with the subscription: it is shown to the caller this once.
///
/// # Errors
///
/// [`SubscriptionError::TooMany`], [`SubscriptionError::Store`].
pub async fn create(
    state: &AppState,
    client: &ClientId,
    url: &str,
    events: &[EventType],
) -> Result<(Subscription, WebhookSecret), SubscriptionError> {
    let secret = WebhookSecret::generate();
    state
        .db
        .webhooks()
        .create(
            client,
            url,
            events,
            secret.expose_secret(),
            state.db.now_millis(),
            MAX_SUBSCRIPTIONS,
        )
        .await?
        .map(|sub| (sub, secret))
        .ok_or(SubscriptionError::TooMany)
}

/// Deletes one of `client`'s subscriptions with its deliveries.
///
/// # Errors
///
/// [`SubscriptionError::NotFound`], [`SubscriptionError::Store`].
pub async fn remove(
    state: &AppState,
    client: &ClientId,
    id: &str,
) -> Result<(), SubscriptionError> {
    if state.db.webhooks().delete(client, id).await? {
        Ok(())
    } else {
        Err(SubscriptionError::NotFound(id.to_owned()))
    }
}

/// A rotated secret: the subscription, its new secret, and when the previous one stops
/// signing (unix ms).
#[derive(Debug)]
pub struct Rotated {
    /// The subscription.
    pub subscription: Subscription,
    /// The new secret, shown this once.
    pub secret: WebhookSecret,
    /// When the previous secret stops signing (unix ms): now + the overlap.
    pub previous_expires_at: i64,
}

/// Replaces the signing secret of one of `client`'s subscriptions, staged so that no receiver
/// breaks: the previous secret keeps signing for `overlap` (`None`: `--webhook-rotation-window`,
/// 24 h by default) — `X-L2C-Signature` with it alone until [`promote`] or the overlap's end,
/// `webhook-signature` with both secrets throughout. A zero overlap replaces it at once.
///
/// # Errors
///
/// [`SubscriptionError::OverlapTooLong`], [`SubscriptionError::NotFound`],
/// [`SubscriptionError::Store`].
pub async fn rotate(
    state: &AppState,
    client: &ClientId,
    id: &str,
    overlap: Option<std::time::Duration>,
) -> Result<Rotated, SubscriptionError> {
    let overlap = overlap.unwrap_or(state.config.webhooks.rotation_window);
    if overlap.as_secs() > MAX_ROTATION_OVERLAP_SECONDS {
        return Err(SubscriptionError::OverlapTooLong);
    }
    let secret = WebhookSecret::generate();
    let window = i64::try_from(overlap.as_millis()).unwrap_or(i64::MAX / 4);
    let now = state.db.now_millis();
    let expires = now.saturating_add(window);
    match state
        .db
        .webhooks()
        .rotate(client, id, secret.expose_secret(), now, expires)
        .await?
    {
        Some(subscription) => Ok(Rotated {
            subscription,
            secret,
            previous_expires_at: expires,
        }),
        None => Err(SubscriptionError::NotFound(id.to_owned())),
    }
}

/// Promotes the new secret of a staged rotation: `X-L2C-Signature` signs with it from now on,
/// while `webhook-signature` keeps both signatures until the overlap ends. Returns the
/// subscription as it now stands.
///
/// # Errors
///
/// [`SubscriptionError::NotFound`], [`SubscriptionError::NoRotation`],
/// [`SubscriptionError::AlreadyPromoted`], [`SubscriptionError::Store`].
pub async fn promote(
    state: &AppState,
    client: &ClientId,
    id: &str,
) -> Result<Subscription, SubscriptionError> {
    let store = state.db.webhooks();
    let now = state.db.now_millis();
    let promoted = store.promote(client, id, now).await?;
    let Some(sub) = store.get(client, id).await? else {
        return Err(SubscriptionError::NotFound(id.to_owned()));
    };
    if promoted {
        return Ok(sub);
    }
    Err(match sub.rotation(now) {
        Some(_) => SubscriptionError::AlreadyPromoted,
        None => SubscriptionError::NoRotation,
    })
}

/// Queues a delivery of one of `client`'s enabled subscriptions again (the same event, signed
/// afresh) and wakes the dispatcher.
///
/// # Errors
///
/// [`SubscriptionError::NotFound`], [`SubscriptionError::Disabled`],
/// [`SubscriptionError::DeliveryNotFound`], [`SubscriptionError::Store`].
pub async fn redeliver(
    state: &AppState,
    client: &ClientId,
    id: &str,
    delivery_id: &str,
) -> Result<Delivery, SubscriptionError> {
    let store = state.db.webhooks();
    let Some(sub) = store.get(client, id).await? else {
        return Err(SubscriptionError::NotFound(id.to_owned()));
    };
    if !sub.enabled {
        return Err(SubscriptionError::Disabled);
    }
    match store
        .redeliver(client, id, delivery_id, state.db.now_millis())
        .await?
    {
        Some(d) => {
            state.webhook_wake.notify_one();
            Ok(d)
        }
        None => Err(SubscriptionError::DeliveryNotFound(delivery_id.to_owned())),
    }
}
