//! Webhook subscription management (`/webhooks`): create (capped per client), delete, rotate
//! the signing secret (staged) and promote the new one, the delivery log, redeliver one
//! delivery, recover every failed one since a time, send a test event. The API routes and the
//! console ([`crate::admin::webhooks`]) share these functions. The routes validate the request's
//! shape and vet the URL
//! ([`crate::ssrf`]); these functions own the rules after that and write through
//! [`store::outbox`](crate::store::outbox).

use l2c_core::ClientId;
use l2c_core::api::events::EventType;
use l2c_core::api::webhooks::{Delivery, MAX_ROTATION_OVERLAP_SECONDS};
use l2c_core::webhook::WebhookSecret;

use crate::state::AppState;
use crate::store::StoreError;
use crate::store::outbox::{DeliveryFilter, Subscription};
use crate::store::sql::millis_to_cst;

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
    /// The subscription is disabled (by its owner in the console, or by the server after the
    /// receiver answered 410 Gone): nothing is sent to it until it is enabled again.
    #[error(
        "the subscription is disabled (in the console, or after the receiver answered 410 Gone); \
         enable it again in the console, or create a new subscription"
    )]
    Disabled,
    /// A recovery's `since` lies further back than deliveries are kept.
    #[error(
        "`since` may not be earlier than {oldest} (deliveries are kept for `--webhook-retention`)"
    )]
    SinceTooOld {
        /// The earliest `since` accepted now (RFC 3339, UTC+8).
        oldest: String,
    },
    /// A recovery's `since` lies in the future.
    #[error("`since` is in the future")]
    SinceInFuture,
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
    let sub = enabled(state, client, id).await?;
    match state
        .db
        .webhooks()
        .redeliver(&sub, delivery_id, state.db.now_millis())
        .await?
    {
        Some(d) => {
            state.webhook_wake.notify_one();
            Ok(d)
        }
        None => Err(SubscriptionError::DeliveryNotFound(delivery_id.to_owned())),
    }
}

/// One of `client`'s subscriptions, read once, refused when it is disabled.
async fn enabled(
    state: &AppState,
    client: &ClientId,
    id: &str,
) -> Result<Subscription, SubscriptionError> {
    match state.db.webhooks().get(client, id).await? {
        Some(sub) if sub.enabled => Ok(sub),
        Some(_) => Err(SubscriptionError::Disabled),
        None => Err(SubscriptionError::NotFound(id.to_owned())),
    }
}

/// One page (from 1) of one of `client`'s subscription's deliveries matching `filter`, newest
/// first, each with all its attempts, and how many match in all.
///
/// # Errors
///
/// [`SubscriptionError::NotFound`], [`SubscriptionError::Store`].
pub async fn deliveries(
    state: &AppState,
    client: &ClientId,
    id: &str,
    filter: &DeliveryFilter,
    page: u32,
    page_size: u32,
) -> Result<(Vec<Delivery>, u64), SubscriptionError> {
    match state.db.webhooks().get(client, id).await? {
        Some(sub) => log(state, &sub, filter, page, page_size).await,
        None => Err(SubscriptionError::NotFound(id.to_owned())),
    }
}

/// [`deliveries`] of a subscription already read as its owner's (the console has it at hand):
/// the one query path of the delivery log, for the API and the console alike.
///
/// # Errors
///
/// [`SubscriptionError::Store`].
pub async fn log(
    state: &AppState,
    sub: &Subscription,
    filter: &DeliveryFilter,
    page: u32,
    page_size: u32,
) -> Result<(Vec<Delivery>, u64), SubscriptionError> {
    Ok(state
        .db
        .webhooks()
        .deliveries(sub, filter, page, page_size)
        .await?)
}

/// Queues a `PING` test event for one of `client`'s enabled subscriptions (that one only) and
/// wakes the dispatcher, which signs, sends, records and retries it like any event.
///
/// # Errors
///
/// [`SubscriptionError::NotFound`], [`SubscriptionError::Disabled`],
/// [`SubscriptionError::Store`].
pub async fn send_test(
    state: &AppState,
    client: &ClientId,
    id: &str,
) -> Result<Delivery, SubscriptionError> {
    let sub = enabled(state, client, id).await?;
    let delivery = state
        .db
        .webhooks()
        .enqueue_ping(&sub, state.db.now_millis())
        .await?;
    state.webhook_wake.notify_one();
    Ok(delivery)
}

/// How many deliveries a recovery requeues per statement.
pub const RECOVER_BATCH: u32 = 500;

/// How far back a recovery may reach when retention is off: 30 days.
const RECOVER_DEFAULT_LOOKBACK_MS: i64 = 30 * 86_400_000;

/// Queues again every failed delivery of one of `client`'s enabled subscriptions created at or
/// after `since` (unix ms), in batches of [`RECOVER_BATCH`], and wakes the dispatcher (Svix's
/// "recover", after a receiver's outage). `since` may reach back as far as deliveries are kept
/// (`--webhook-retention`; 30 days when retention is off) and not into the future. Returns how
/// many were queued.
///
/// # Errors
///
/// [`SubscriptionError::SinceTooOld`], [`SubscriptionError::SinceInFuture`],
/// [`SubscriptionError::NotFound`], [`SubscriptionError::Disabled`],
/// [`SubscriptionError::Store`].
pub async fn recover(
    state: &AppState,
    client: &ClientId,
    id: &str,
    since: i64,
) -> Result<u64, SubscriptionError> {
    let now = state.db.now_millis();
    let lookback = state
        .config
        .webhooks
        .retention
        .duration()
        .map_or(RECOVER_DEFAULT_LOOKBACK_MS, |d| {
            i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
        });
    if since > now {
        return Err(SubscriptionError::SinceInFuture);
    }
    let oldest = now.saturating_sub(lookback);
    if since < oldest {
        return Err(SubscriptionError::SinceTooOld {
            oldest: millis_to_cst(oldest).to_rfc3339(),
        });
    }
    let sub = enabled(state, client, id).await?;
    let queued = state
        .db
        .webhooks()
        .recover(&sub, since, now, RECOVER_BATCH)
        .await?;
    if queued > 0 {
        state.webhook_wake.notify_one();
    }
    Ok(queued)
}
