//! The sender side: the signature values and the full header set of one delivery attempt.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::Mac;
use http::{HeaderName, HeaderValue};

use super::WebhookSecret;
use crate::api::events::EventType;

/// `X-L2C-Signature`: lowercase hex HMAC-SHA256 of the raw body (the spec's header).
pub const X_L2C_SIGNATURE: HeaderName = HeaderName::from_static("x-l2c-signature");
/// `X-L2C-Event`: the event type (not signed; the type inside the signed body is authoritative).
pub const X_L2C_EVENT: HeaderName = HeaderName::from_static("x-l2c-event");
/// `X-L2C-Delivery`: the event id, the same on every attempt.
pub const X_L2C_DELIVERY: HeaderName = HeaderName::from_static("x-l2c-delivery");
/// `X-L2C-Timestamp`: unix seconds of this attempt (equal to `webhook-timestamp`).
pub const X_L2C_TIMESTAMP: HeaderName = HeaderName::from_static("x-l2c-timestamp");
/// Standard Webhooks `webhook-id`: the event id.
pub const WEBHOOK_ID: HeaderName = HeaderName::from_static("webhook-id");
/// Standard Webhooks `webhook-timestamp`: unix seconds of this attempt.
pub const WEBHOOK_TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
/// Standard Webhooks `webhook-signature`: space-separated `v1,<base64>` values.
pub const WEBHOOK_SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");

/// Longest event id [`sign_headers`] accepts.
pub const MAX_EVENT_ID_LEN: usize = 255;

/// Why a delivery could not be signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// No secret was given.
    #[error("at least one secret is needed to sign")]
    NoSecret,
    /// The event id is empty, longer than 255 bytes, contains `.` (the Standard Webhooks field
    /// separator) or a character outside visible ASCII.
    #[error("an event id is 1-255 visible ASCII characters without `.`")]
    InvalidEventId,
}

/// The `X-L2C-Signature` value: lowercase hex of HMAC-SHA256 over `body`, keyed with the
/// secret string's UTF-8 bytes.
///
/// This is exactly what the spec's snippet computes:
/// `crypto.createHmac('sha256', secret).update(body).digest('hex')`.
///
/// ```
/// use l2c_core::webhook::{WebhookSecret, sign_legacy};
///
/// let secret: WebhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwIPv1S6yHkZY=".parse().unwrap();
/// let sig = sign_legacy(&secret, br#"{"id":"evt_1"}"#);
/// assert_eq!(sig.len(), 64);
/// assert!(sig.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
/// ```
pub fn sign_legacy(secret: &WebhookSecret, body: &[u8]) -> String {
    let mut mac = secret.legacy_mac();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// One Standard Webhooks signature, `v1,<base64>`: HMAC-SHA256 over
/// `<msg_id>.<timestamp>.<body>`, keyed with the base64-decoded secret.
///
/// ```
/// use l2c_core::webhook::{WebhookSecret, sign_standard};
///
/// // The Standard Webhooks reference vector.
/// let secret: WebhookSecret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD".parse().unwrap();
/// let sig = sign_standard(
///     &secret,
///     "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
///     1649367553,
///     br#"{"email":"test@example.com","username":"test_user"}"#,
/// );
/// assert_eq!(sig, "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
/// ```
pub fn sign_standard(secret: &WebhookSecret, msg_id: &str, timestamp: u64, body: &[u8]) -> String {
    let tag = standard_tag(secret, msg_id, timestamp, body);
    format!("v1,{}", STANDARD.encode(tag))
}

pub(crate) fn standard_tag(
    secret: &WebhookSecret,
    msg_id: &str,
    timestamp: u64,
    body: &[u8],
) -> [u8; 32] {
    let mut mac = secret.sw_mac();
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

pub(crate) fn valid_event_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_EVENT_ID_LEN
        && id.bytes().all(|b| b.is_ascii_graphic() && b != b'.')
}

/// Every header of one delivery attempt.
///
/// `secrets` lists every secret that signs this attempt, the one for `X-L2C-Signature` first.
/// `X-L2C-Signature` carries one value, so it uses `secrets[0]`; `webhook-signature` carries
/// one `v1,…` per secret, space-separated. A sender rotating without breaking receivers of the
/// spec's header puts the previous secret first until the receiver has switched (see
/// [`RotationStage`](crate::api::webhooks::RotationStage)), the new one first afterwards. `timestamp` is the attempt's time (unix
/// seconds), fresh on every retry; `event_id` stays the same.
///
/// # Errors
///
/// [`SignError::NoSecret`] for an empty `secrets`, [`SignError::InvalidEventId`] for an id that
/// could break the header or the signed string.
///
/// ```
/// use l2c_core::api::events::EventType;
/// use l2c_core::webhook::{WebhookSecret, sign_headers};
///
/// let current = WebhookSecret::generate();
/// let old = WebhookSecret::generate();
/// let headers = sign_headers(&[&current, &old], "evt_1", EventType::OrderCreated, 1_764_000_000, b"{}")
///     .unwrap();
/// let get = |name: &str| headers.iter().find(|(n, _)| n == name).unwrap().1.to_str().unwrap();
/// assert_eq!(get("x-l2c-event"), "ORDER_CREATED");
/// assert_eq!(get("webhook-id"), "evt_1");
/// assert_eq!(get("webhook-signature").split(' ').count(), 2);
/// ```
pub fn sign_headers(
    secrets: &[&WebhookSecret],
    event_id: &str,
    event_type: EventType,
    timestamp: u64,
    body: &[u8],
) -> Result<Vec<(HeaderName, HeaderValue)>, SignError> {
    let current = secrets.first().ok_or(SignError::NoSecret)?;
    if !valid_event_id(event_id) {
        return Err(SignError::InvalidEventId);
    }
    let id = HeaderValue::from_str(event_id).map_err(|_| SignError::InvalidEventId)?;
    let ts = HeaderValue::from(timestamp);
    let sw = secrets
        .iter()
        .map(|s| sign_standard(s, event_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ");
    // Hex, base64, digits and `,` are all valid header characters.
    let ascii = |s: String| HeaderValue::from_str(&s).map_err(|_| SignError::InvalidEventId);
    Ok(vec![
        (X_L2C_SIGNATURE, ascii(sign_legacy(current, body))?),
        (X_L2C_EVENT, HeaderValue::from_static(event_type.as_str())),
        (X_L2C_DELIVERY, id.clone()),
        (X_L2C_TIMESTAMP, ts.clone()),
        (WEBHOOK_ID, id),
        (WEBHOOK_TIMESTAMP, ts),
        (WEBHOOK_SIGNATURE, ascii(sw)?),
    ])
}

/// The secrets of one subscription, current first, signing every delivery with all of them.
///
/// ```
/// use l2c_core::api::events::EventType;
/// use l2c_core::webhook::{Signer, WebhookSecret};
///
/// let signer = Signer::new(WebhookSecret::generate()).with_previous(WebhookSecret::generate());
/// let headers = signer.sign("evt_1", EventType::PaymentReceived, 1_764_000_000, b"{}").unwrap();
/// assert_eq!(headers.len(), 7);
/// ```
#[derive(Debug, Clone)]
pub struct Signer {
    secrets: Vec<WebhookSecret>,
}

impl Signer {
    /// A signer with one (current) secret.
    pub fn new(current: WebhookSecret) -> Self {
        Self {
            secrets: vec![current],
        }
    }

    /// Adds an old secret that still signs during a rotation window.
    #[must_use]
    pub fn with_previous(mut self, old: WebhookSecret) -> Self {
        self.secrets.push(old);
        self
    }

    /// The secrets, current first.
    pub fn secrets(&self) -> &[WebhookSecret] {
        &self.secrets
    }

    /// The headers of one delivery attempt; see [`sign_headers`].
    ///
    /// # Errors
    ///
    /// [`SignError::InvalidEventId`] for an id that could break the header or the signed string.
    pub fn sign(
        &self,
        event_id: &str,
        event_type: EventType,
        timestamp: u64,
        body: &[u8],
    ) -> Result<Vec<(HeaderName, HeaderValue)>, SignError> {
        let refs: Vec<&WebhookSecret> = self.secrets.iter().collect();
        sign_headers(&refs, event_id, event_type, timestamp, body)
    }
}
