//! Webhook subscriptions (spec §5.1) and their delivery log, under `/api/mobile/webhooks`
//! (scope `webhooks:manage`; a client sees only its own).
//!
//! | route | body | answer |
//! |---|---|---|
//! | `POST /webhooks` | [`CreateWebhook`] | 201 [`CreatedWebhook`] (the only time the secret is shown) |
//! | `GET /webhooks?page&pageSize` | | 200 [`Page`]`<`[`Webhook`]`>`, oldest first |
//! | `DELETE /webhooks/:id` | | 204 |
//! | `POST /webhooks/:id/rotate-secret` | [`RotateWebhookSecret`] (optional) | 200 [`RotatedSecret`] |
//! | `POST /webhooks/:id/promote-secret` | | 200 [`Webhook`] |
//! | `GET /webhooks/:id/deliveries?page&pageSize&status&eventType` | | 200 [`Page`]`<`[`Delivery`]`>`, newest first |
//! | `POST /webhooks/:id/deliveries/:delivery_id/redeliver` | | 202 [`Delivery`] |
//! | `POST /webhooks/:id/test` | | 202 [`Delivery`] (a `PING` event) |
//! | `POST /webhooks/:id/recover` | [`RecoverWebhook`] | 202 [`Recovered`] |
//!
//! ```
//! use l2c_core::api::events::EventType;
//! use l2c_core::api::webhooks::{CreateWebhook, CreatedWebhook};
//!
//! let body = CreateWebhook::new("https://erp.example.com/l2c", [EventType::OrderCreated]);
//! assert_eq!(
//!     serde_json::to_value(&body).unwrap(),
//!     serde_json::json!({"url": "https://erp.example.com/l2c", "events": ["ORDER_CREATED"]}),
//! );
//!
//! let created: CreatedWebhook = serde_json::from_str(r#"{
//!     "id": "wh_1", "url": "https://erp.example.com/l2c", "events": ["ORDER_CREATED"],
//!     "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "createdAt": "2026-11-26T09:30:00+08:00"
//! }"#).unwrap();
//! assert!(!format!("{created:?}").contains("whsec_MfKQ"));
//! ```

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use crate::api::events::EventType;
use crate::api::ids::{DeliveryId, WebhookId};
#[cfg(doc)]
use crate::api::showroom::Page;

/// The body of `POST /api/mobile/webhooks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CreateWebhook {
    /// The receiver's URL (https, public, unless the server runs for local development).
    #[cfg_attr(
        feature = "openapi",
        schema(example = "https://erp.example.com/l2c/webhook")
    )]
    pub url: String,
    /// The event types to deliver (at least one).
    pub events: Vec<EventType>,
}

impl CreateWebhook {
    /// A subscription of `url` to `events`.
    pub fn new(url: impl Into<String>, events: impl IntoIterator<Item = EventType>) -> Self {
        Self {
            url: url.into(),
            events: events.into_iter().collect(),
        }
    }
}

/// The answer to `POST /api/mobile/webhooks` (201): the subscription and its signing secret,
/// which is never shown again. `Debug` redacts the secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CreatedWebhook {
    /// The subscription's id.
    pub id: WebhookId,
    /// The receiver's URL.
    pub url: String,
    /// The subscribed event types.
    pub events: Vec<EventType>,
    /// The signing secret, `whsec_` + base64 of 32 random bytes.
    #[cfg_attr(
        feature = "openapi",
        schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    )]
    pub secret: String,
    /// When the subscription was created (RFC 3339 with offset).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime, example = "2026-11-26T09:30:00+08:00"))]
    pub created_at: DateTime<FixedOffset>,
}

impl CreatedWebhook {
    /// A created subscription.
    pub fn new(
        id: impl Into<WebhookId>,
        url: impl Into<String>,
        events: Vec<EventType>,
        secret: impl Into<String>,
        created_at: DateTime<FixedOffset>,
    ) -> Self {
        Self {
            id: id.into(),
            url: url.into(),
            events,
            secret: secret.into(),
            created_at,
        }
    }
}

impl fmt::Debug for CreatedWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedWebhook")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("secret", &"<redacted>")
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// A subscription as listed (without its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Webhook {
    /// The subscription's id.
    pub id: WebhookId,
    /// The receiver's URL.
    pub url: String,
    /// The subscribed event types.
    pub events: Vec<EventType>,
    /// Whether events are delivered (false once the receiver answered `410 Gone`).
    #[serde(default = "enabled_default")]
    pub enabled: bool,
    /// When the subscription was created.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime, example = "2026-11-26T09:30:00+08:00"))]
    pub created_at: DateTime<FixedOffset>,
    /// While a secret rotation is under way: when the previous secret stops signing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub previous_secret_expires_at: Option<DateTime<FixedOffset>>,
    /// While a secret rotation is under way: where it stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_rotation: Option<SecretRotation>,
}

/// Where a staged secret rotation stands.
///
/// `X-L2C-Signature` (the spec's header) carries one signature. After a rotation it keeps using
/// the **previous** secret ([`RotationStage::Staged`]) until the partner promotes the new one
/// (`POST /api/mobile/webhooks/:id/promote-secret`) or the overlap ends; from then on it uses the
/// new one. The Standard Webhooks `webhook-signature` carries a signature with each secret until
/// `previousSecretExpiresAt`, promoted or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum RotationStage {
    /// `X-L2C-Signature` still signs with the previous secret.
    Staged,
    /// `X-L2C-Signature` signs with the new secret; the previous one still signs
    /// `webhook-signature` until the overlap ends.
    Promoted,
}

/// A secret rotation under way (see [`RotationStage`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SecretRotation {
    /// Which secret `X-L2C-Signature` uses.
    pub stage: RotationStage,
    /// When the previous secret stops signing anything (and a staged rotation promotes itself).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime, example = "2026-11-27T09:30:00+08:00"))]
    pub previous_secret_expires_at: DateTime<FixedOffset>,
    /// When the new secret was promoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub promoted_at: Option<DateTime<FixedOffset>>,
}

impl SecretRotation {
    /// A rotation at `stage`, the previous secret signing until `previous_secret_expires_at`.
    pub fn new(
        stage: RotationStage,
        previous_secret_expires_at: DateTime<FixedOffset>,
        promoted_at: Option<DateTime<FixedOffset>>,
    ) -> Self {
        Self {
            stage,
            previous_secret_expires_at,
            promoted_at,
        }
    }
}

/// The longest overlap [`RotateWebhookSecret::overlap_seconds`] may ask for (7 days).
pub const MAX_ROTATION_OVERLAP_SECONDS: u64 = 7 * 24 * 3600;

/// The optional body of `POST /api/mobile/webhooks/:id/rotate-secret`.
///
/// ```
/// use l2c_core::api::webhooks::RotateWebhookSecret;
///
/// let body = RotateWebhookSecret::new(3600);
/// assert_eq!(serde_json::to_string(&body).unwrap(), r#"{"overlapSeconds":3600}"#);
/// // A fraction or a sign is refused. (The server also reads `3600.0`, as JSON Schema's integer
/// // allows, for every integer field of every body.)
/// assert!(serde_json::from_str::<RotateWebhookSecret>(r#"{"overlapSeconds":1.5}"#).is_err());
/// assert!(serde_json::from_str::<RotateWebhookSecret>(r#"{"overlapSeconds":-1}"#).is_err());
/// assert_eq!(serde_json::from_str::<RotateWebhookSecret>("{}").unwrap().overlap_seconds, None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct RotateWebhookSecret {
    /// How long the previous secret keeps signing, in seconds (0 to 604800; without it, the
    /// server's rotation window, 24 h by default). 0 replaces the secret at once, e.g. after a
    /// leak.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 0, maximum = 604_800, example = 86_400)
    )]
    pub overlap_seconds: Option<u64>,
}

impl RotateWebhookSecret {
    /// A rotation whose previous secret keeps signing for `overlap_seconds`.
    pub fn new(overlap_seconds: u64) -> Self {
        Self {
            overlap_seconds: Some(overlap_seconds),
        }
    }
}

fn enabled_default() -> bool {
    true
}

impl Webhook {
    /// An enabled subscription with no rotation under way.
    pub fn new(
        id: impl Into<WebhookId>,
        url: impl Into<String>,
        events: Vec<EventType>,
        created_at: DateTime<FixedOffset>,
    ) -> Self {
        Self {
            id: id.into(),
            url: url.into(),
            events,
            enabled: true,
            created_at,
            previous_secret_expires_at: None,
            secret_rotation: None,
        }
    }
}

/// The answer to `POST /api/mobile/webhooks/:id/rotate-secret`: the new secret (shown once);
/// the previous one keeps signing too until `previousSecretExpiresAt` — `X-L2C-Signature` with
/// it alone until the new one is promoted (see [`RotationStage`]). `Debug` redacts the secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RotatedSecret {
    /// The subscription's id.
    pub id: WebhookId,
    /// The new signing secret.
    pub secret: String,
    /// When the previous secret stops signing.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime, example = "2026-11-27T09:30:00+08:00"))]
    pub previous_secret_expires_at: DateTime<FixedOffset>,
}

impl RotatedSecret {
    /// A rotation result.
    pub fn new(
        id: impl Into<WebhookId>,
        secret: impl Into<String>,
        previous_secret_expires_at: DateTime<FixedOffset>,
    ) -> Self {
        Self {
            id: id.into(),
            secret: secret.into(),
            previous_secret_expires_at,
        }
    }
}

impl fmt::Debug for RotatedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RotatedSecret")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .field(
                "previous_secret_expires_at",
                &self.previous_secret_expires_at,
            )
            .finish()
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum DeliveryStatus {
    /// Waiting for its first or next attempt.
    Pending,
    /// A 2xx answer was received.
    Succeeded,
    /// Every attempt of the schedule failed (or the subscription was disabled).
    Failed,
}

/// One attempt to deliver an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DeliveryAttempt {
    /// When the attempt started.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub attempted_at: DateTime<FixedOffset>,
    /// The receiver's HTTP status, if it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_status: Option<u16>,
    /// How long the attempt took, in milliseconds.
    pub latency_ms: u64,
    /// Why the attempt failed (connection refused, timeout, non-2xx), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The start of the receiver's answer: at most [`MAX_RECORDED_RESPONSE`] bytes, invalid
    /// UTF-8 replaced, if it answered with a body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
    /// The request headers as sent (lower-case names): the content type, the user agent and the
    /// signature headers of that attempt. Empty when nothing was sent (the destination was
    /// refused before a request was made).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub request_headers: BTreeMap<String, String>,
}

/// How much of a receiver's answer an attempt keeps ([`DeliveryAttempt::response_body`]): 4 KiB.
pub const MAX_RECORDED_RESPONSE: usize = 4 * 1024;

impl DeliveryAttempt {
    /// An attempt record.
    pub fn new(
        attempted_at: DateTime<FixedOffset>,
        response_status: Option<u16>,
        latency_ms: u64,
        error: Option<String>,
    ) -> Self {
        Self {
            attempted_at,
            response_status,
            latency_ms,
            error,
            response_body: None,
            request_headers: BTreeMap::new(),
        }
    }

    /// The same attempt with the start of the receiver's answer and the headers as sent.
    #[must_use]
    pub fn with_exchange(
        mut self,
        response_body: Option<String>,
        request_headers: BTreeMap<String, String>,
    ) -> Self {
        self.response_body = response_body;
        self.request_headers = request_headers;
        self
    }
}

/// The delivery of one event to one subscription, with every attempt so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Delivery {
    /// The delivery's id.
    pub id: DeliveryId,
    /// The event's id (`X-L2C-Delivery`, `webhook-id`).
    pub event_id: String,
    /// The event's type.
    pub event_type: EventType,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// The attempts so far, oldest first.
    #[serde(default)]
    pub attempts: Vec<DeliveryAttempt>,
    /// When the next attempt is due, while pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub next_attempt_at: Option<DateTime<FixedOffset>>,
    /// When the event was queued for this subscription.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: DateTime<FixedOffset>,
}

impl Delivery {
    /// A delivery with no attempts yet.
    pub fn new(
        id: impl Into<DeliveryId>,
        event_id: impl Into<String>,
        event_type: EventType,
        status: DeliveryStatus,
        created_at: DateTime<FixedOffset>,
    ) -> Self {
        Self {
            id: id.into(),
            event_id: event_id.into(),
            event_type,
            status,
            attempts: Vec::new(),
            next_attempt_at: None,
            created_at,
        }
    }
}

/// The body of `POST /api/mobile/webhooks/:id/recover`: resend every failed delivery of the
/// subscription created since `since` (after a receiver's outage). `since` may be at most the
/// server's delivery retention in the past (default 30 days) and not in the future.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RecoverWebhook {
    /// The earliest delivery to resend, by the time it was queued (RFC 3339 with offset).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime, example = "2026-11-26T09:30:00+08:00"))]
    pub since: DateTime<FixedOffset>,
}

impl RecoverWebhook {
    /// Recover the failed deliveries queued since `since`.
    pub fn new(since: DateTime<FixedOffset>) -> Self {
        Self { since }
    }
}

/// The answer to `POST /api/mobile/webhooks/:id/recover` (202).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Recovered {
    /// How many failed deliveries were queued again.
    pub queued: u64,
}

impl Recovered {
    /// `queued` deliveries queued again.
    pub fn new(queued: u64) -> Self {
        Self { queued }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_secret_is_redacted_and_camel_case() {
        let at = DateTime::parse_from_rfc3339("2026-11-27T09:30:00+08:00").unwrap();
        let r = RotatedSecret::new("wh_1", "whsec_abc", at);
        assert!(!format!("{r:?}").contains("whsec_abc"));
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["previousSecretExpiresAt"], "2026-11-27T09:30:00+08:00");
    }

    #[test]
    fn rotation_stage_is_screaming_and_optional() {
        let at = DateTime::parse_from_rfc3339("2026-11-27T09:30:00+08:00").unwrap();
        let mut w = Webhook::new("wh_1", "https://x.example", vec![], at);
        assert!(
            serde_json::to_value(&w)
                .unwrap()
                .get("secretRotation")
                .is_none()
        );
        w.secret_rotation = Some(SecretRotation::new(RotationStage::Staged, at, None));
        let v = serde_json::to_value(&w).unwrap();
        assert_eq!(v["secretRotation"]["stage"], "STAGED");
        assert_eq!(
            v["secretRotation"]["previousSecretExpiresAt"],
            "2026-11-27T09:30:00+08:00"
        );
        assert!(v["secretRotation"].get("promotedAt").is_none());
        assert!(
            serde_json::from_str::<RotateWebhookSecret>(r#"{"overlapSecond":1}"#).is_err(),
            "a misspelt member is refused, not ignored"
        );
    }

    #[test]
    fn listed_webhook_defaults_to_enabled() {
        let w: Webhook = serde_json::from_str(
            r#"{"id":"wh_1","url":"https://x.example","events":["PAYMENT_RECEIVED"],
                "createdAt":"2026-11-26T09:30:00+08:00"}"#,
        )
        .unwrap();
        assert!(w.enabled);
        assert_eq!(w.events, vec![EventType::PaymentReceived]);
    }

    #[test]
    fn unknown_event_type_is_refused() {
        assert!(
            serde_json::from_str::<CreateWebhook>(r#"{"url":"https://x","events":["NOPE"]}"#)
                .is_err()
        );
    }
}
