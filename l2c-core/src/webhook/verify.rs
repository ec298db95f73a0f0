//! The receiver side: checking a delivery's signature and returning the typed event.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::Mac;
use http::{HeaderMap, StatusCode};
use subtle::ConstantTimeEq;

use super::sign::standard_tag;
use super::{ReplayGuard, WebhookSecret};
use crate::api::events::WebhookEvent;
use crate::clock::{Clock, SystemClock};
use crate::problem::Problem;

/// The default timestamp tolerance: ±300 s, as the Standard Webhooks libraries use.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);
/// The default body cap: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// Which signature a delivery was accepted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scheme {
    /// `webhook-id` / `webhook-timestamp` / `webhook-signature`.
    StandardWebhooks,
    /// The body-only `X-L2C-Signature` (only when [`Verifier::allow_legacy`] is on).
    Legacy,
}

/// Checks deliveries for one subscription: signatures, freshness, size, and optionally replays.
///
/// - If any Standard Webhooks header is present, all three must be, the timestamp must lie
///   within the tolerance (±300 s by default, both directions), and one of the listed `v1`
///   signatures must verify with one of the secrets; other versions are ignored.
///   `X-L2C-Signature` is then **not** consulted, so a request cannot be downgraded to it by
///   corrupting the Standard Webhooks headers.
/// - A request with only `X-L2C-Signature` is refused unless [`allow_legacy`](Self::allow_legacy)
///   is on. Then the hex (any case, exactly 32 bytes) must verify, and because that signature
///   covers neither a time nor an id, the body's own `id` and `createdAt` stand in: `createdAt`
///   must be no older than [`legacy_max_age`](Self::legacy_max_age) (default: the tolerance) and
///   no further ahead than the tolerance.
/// - Comparisons are constant-time; the body is capped before anything is hashed.
/// - With a [`ReplayGuard`], an event id seen before is refused as [`VerifyError::Duplicate`].
///
/// ```
/// use l2c_core::api::events::WebhookEvent;
/// use l2c_core::clock::MockClock;
/// use l2c_core::webhook::{Verifier, VerifyError, WebhookSecret, sign_headers};
///
/// let secret = WebhookSecret::generate();
/// let body = br#"{"id":"evt_1","type":"PAYMENT_RECEIVED","createdAt":"2026-11-26T09:00:00+08:00",
///   "data":{"orderId":"ord_1","externalOrderNo":"ERP-1","paymentId":"pay_1","kind":"FINAL",
///   "method":"BANK_TRANSFER","amount":100,"currency":"CNY","channelTransactionId":"tx1",
///   "paidAt":"2026-11-26T09:00:00+08:00"}}"#;
/// let now = 1_795_654_800; // 2026-11-26T01:00:00Z
/// let mut headers = http::HeaderMap::new();
/// let event_type = l2c_core::api::events::EventType::PaymentReceived;
/// for (name, value) in sign_headers(&[&secret], "evt_1", event_type, now, body).unwrap() {
///     headers.insert(name, value);
/// }
///
/// let clock = MockClock::at_unix(now + 10);
/// let verifier = Verifier::new(secret).with_clock(clock.clone()).deduplicate(10_000);
/// let event: WebhookEvent = verifier.verify(&headers, body).unwrap();
/// assert_eq!(event.id, "evt_1");
/// assert!(matches!(verifier.verify(&headers, body), Err(VerifyError::Duplicate { .. })));
///
/// clock.advance(std::time::Duration::from_secs(600));
/// assert_eq!(verifier.verify(&headers, body).unwrap_err(), VerifyError::TimestampTooOld);
/// ```
#[derive(Debug, Clone)]
pub struct Verifier {
    secrets: Vec<WebhookSecret>,
    tolerance: Duration,
    legacy_max_age: Option<Duration>,
    allow_legacy: bool,
    max_body_bytes: usize,
    clock: Arc<dyn Clock>,
    replay: Option<ReplayGuard>,
}

impl Verifier {
    /// A verifier for one secret, with ±300 s tolerance, a 1 MiB body cap, no legacy-only
    /// requests and no de-duplication.
    pub fn new(secret: WebhookSecret) -> Self {
        Self {
            secrets: vec![secret],
            tolerance: DEFAULT_TOLERANCE,
            legacy_max_age: None,
            allow_legacy: false,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            clock: Arc::new(SystemClock),
            replay: None,
        }
    }

    /// Also accepts signatures made with `secret` (the other side of a rotation).
    #[must_use]
    pub fn with_secret(mut self, secret: WebhookSecret) -> Self {
        self.secrets.push(secret);
        self
    }

    /// The timestamp tolerance, both into the past and into the future (default 300 s).
    #[must_use]
    pub fn tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Whether a request signed only with `X-L2C-Signature` is accepted (default `false`).
    #[must_use]
    pub fn allow_legacy(mut self, allow: bool) -> Self {
        self.allow_legacy = allow;
        self
    }

    /// How old a legacy-only event's `createdAt` may be (default: the tolerance).
    ///
    /// Retries keep the event's `createdAt`, so a receiver that must accept late retries of
    /// legacy-only deliveries raises this, trading replay exposure for it.
    #[must_use]
    pub fn legacy_max_age(mut self, max_age: Duration) -> Self {
        self.legacy_max_age = Some(max_age);
        self
    }

    /// The body cap in bytes (default 1 MiB); larger bodies are refused before hashing.
    #[must_use]
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
    }

    /// The clock used for the freshness checks (default: the system clock).
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Refuses event ids seen before, remembering them in `guard`.
    ///
    /// Each id is kept at least as long as its signature could still verify, whatever the
    /// guard's own TTL.
    #[must_use]
    pub fn with_replay_guard(mut self, guard: ReplayGuard) -> Self {
        self.replay = Some(guard);
        self
    }

    /// Refuses event ids seen before, remembering up to `capacity` of them for twice the
    /// tolerance.
    #[must_use]
    pub fn deduplicate(self, capacity: usize) -> Self {
        let ttl = self.tolerance.saturating_mul(2);
        self.with_replay_guard(ReplayGuard::new(capacity, ttl))
    }

    /// The body cap in bytes.
    pub fn body_limit(&self) -> usize {
        self.max_body_bytes
    }

    pub(crate) fn replay_guard(&self) -> Option<&ReplayGuard> {
        self.replay.as_ref()
    }

    /// Verifies one delivery and returns its event.
    ///
    /// `body` must be the raw bytes as received, before any parsing or decompression.
    ///
    /// # Errors
    ///
    /// A [`VerifyError`] saying what failed; [`VerifyError::status`] and
    /// [`VerifyError::to_problem`] turn it into a response.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<WebhookEvent, VerifyError> {
        self.verify_with(headers, body, true)
            .map(|(event, _)| event)
    }

    /// Like [`verify`](Self::verify), also saying which signature was accepted.
    ///
    /// # Errors
    ///
    /// As [`verify`](Self::verify).
    pub fn verify_scheme(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(WebhookEvent, Scheme), VerifyError> {
        self.verify_with(headers, body, true)
    }

    /// `settle: false` records a new id as still being handled (the layer settles or forgets it).
    pub(crate) fn verify_with(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        settle: bool,
    ) -> Result<(WebhookEvent, Scheme), VerifyError> {
        if body.len() > self.max_body_bytes {
            return Err(VerifyError::BodyTooLarge {
                limit: self.max_body_bytes,
            });
        }
        let now = self.clock.unix_seconds();
        let tolerance = self.tolerance.as_secs();

        let sw_id = single(headers, "webhook-id")?;
        let sw_ts = single(headers, "webhook-timestamp")?;
        let sw_sig = single(headers, "webhook-signature")?;

        let (event, scheme, window) = if sw_id.is_some() || sw_ts.is_some() || sw_sig.is_some() {
            let id = sw_id.ok_or(VerifyError::MissingHeader("webhook-id"))?;
            let ts = sw_ts.ok_or(VerifyError::MissingHeader("webhook-timestamp"))?;
            let sigs = sw_sig.ok_or(VerifyError::MissingHeader("webhook-signature"))?;
            let ts = parse_timestamp(ts)?;
            check_window(ts, now, tolerance, tolerance)?;
            self.check_standard(id, ts, sigs, body)?;
            let event = parse_event(body)?;
            if event.id != id {
                return Err(VerifyError::IdMismatch);
            }
            (event, Scheme::StandardWebhooks, 2 * tolerance)
        } else {
            let sig = single(headers, "x-l2c-signature")?.ok_or(VerifyError::MissingSignature)?;
            if !self.allow_legacy {
                return Err(VerifyError::LegacyNotAllowed);
            }
            self.check_legacy(sig, body)?;
            let event = parse_event(body)?;
            if event.id.is_empty() {
                return Err(VerifyError::InvalidPayload(PayloadError(
                    "`id` is empty".into(),
                )));
            }
            let max_age = self.legacy_max_age.unwrap_or(self.tolerance).as_secs();
            let created = u64::try_from(event.created_at.timestamp()).unwrap_or(0);
            check_window(created, now, max_age, tolerance)?;
            (event, Scheme::Legacy, max_age.saturating_add(tolerance))
        };

        if let Some(guard) = &self.replay {
            guard
                .insert_for(&event.id, now, Duration::from_secs(window), settle)
                .map_err(|seen| VerifyError::Duplicate {
                    settled: seen.settled,
                })?;
        }
        Ok((event, scheme))
    }

    fn check_standard(
        &self,
        id: &str,
        ts: u64,
        signatures: &str,
        body: &[u8],
    ) -> Result<(), VerifyError> {
        let candidates: Vec<Vec<u8>> = signatures
            .split_ascii_whitespace()
            .filter_map(|entry| entry.split_once(','))
            .filter(|(version, _)| *version == "v1")
            .map(|(_, sig)| STANDARD.decode(sig).unwrap_or_default())
            .collect();
        if candidates.is_empty() {
            return Err(VerifyError::NoSupportedSignature);
        }
        for secret in &self.secrets {
            let expected = standard_tag(secret, id, ts, body);
            for candidate in &candidates {
                // Different lengths compare unequal (in time independent of the contents).
                if bool::from(expected.as_slice().ct_eq(candidate)) {
                    return Ok(());
                }
            }
        }
        Err(VerifyError::SignatureMismatch)
    }

    fn check_legacy(&self, signature: &str, body: &[u8]) -> Result<(), VerifyError> {
        if signature.len() != 64 {
            return Err(VerifyError::MalformedHeader("x-l2c-signature"));
        }
        // `hex` accepts upper, lower and mixed case.
        let raw =
            hex::decode(signature).map_err(|_| VerifyError::MalformedHeader("x-l2c-signature"))?;
        for secret in &self.secrets {
            let mut mac = secret.legacy_mac();
            mac.update(body);
            if mac.verify_slice(&raw).is_ok() {
                return Ok(());
            }
        }
        Err(VerifyError::SignatureMismatch)
    }
}

/// One header's value, or `None`; a repeated or non-ASCII header is malformed.
fn single<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<Option<&'a str>, VerifyError> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(VerifyError::MalformedHeader(name));
    }
    first
        .to_str()
        .map(Some)
        .map_err(|_| VerifyError::MalformedHeader(name))
}

fn parse_timestamp(ts: &str) -> Result<u64, VerifyError> {
    if ts.is_empty() || ts.len() > 19 || !ts.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::MalformedHeader("webhook-timestamp"));
    }
    ts.parse()
        .map_err(|_| VerifyError::MalformedHeader("webhook-timestamp"))
}

fn check_window(ts: u64, now: u64, past: u64, future: u64) -> Result<(), VerifyError> {
    if ts.saturating_add(past) < now {
        Err(VerifyError::TimestampTooOld)
    } else if ts > now.saturating_add(future) {
        Err(VerifyError::TimestampTooNew)
    } else {
        Ok(())
    }
}

fn parse_event(body: &[u8]) -> Result<WebhookEvent, VerifyError> {
    serde_json::from_slice(body)
        .map_err(|e| VerifyError::InvalidPayload(PayloadError(e.to_string())))
}

/// Why a delivery was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The body is larger than the cap.
    #[error("the body is larger than {limit} bytes")]
    BodyTooLarge {
        /// The cap in bytes.
        limit: usize,
    },
    /// Neither Standard Webhooks headers nor `X-L2C-Signature` are present.
    #[error("the request carries no webhook signature")]
    MissingSignature,
    /// Some but not all of the Standard Webhooks headers are present.
    #[error("the `{0}` header is missing")]
    MissingHeader(&'static str),
    /// A signature header is repeated, not ASCII, or not in its format.
    #[error("the `{0}` header is malformed")]
    MalformedHeader(&'static str),
    /// The timestamp is further in the past than the tolerance allows.
    #[error("the webhook timestamp is too old")]
    TimestampTooOld,
    /// The timestamp is further in the future than the tolerance allows.
    #[error("the webhook timestamp is too far in the future")]
    TimestampTooNew,
    /// `webhook-signature` lists no `v1` signature.
    #[error("`webhook-signature` lists no supported (`v1`) signature")]
    NoSupportedSignature,
    /// No signature matches any of the secrets.
    #[error("no signature matches")]
    SignatureMismatch,
    /// Only `X-L2C-Signature` is present and legacy-only requests are not accepted.
    #[error("requests signed only with `X-L2C-Signature` are not accepted here")]
    LegacyNotAllowed,
    /// The signature is valid but the body is not a valid event.
    #[error("the body is not a valid event: {0}")]
    InvalidPayload(PayloadError),
    /// The body's event `id` differs from `webhook-id`.
    #[error("the body's `id` differs from `webhook-id`")]
    IdMismatch,
    /// The event id was seen before.
    #[error("event already received")]
    Duplicate {
        /// `false` while the earlier delivery is still being handled.
        settled: bool,
    },
}

/// What was wrong with the JSON of a correctly signed body.
#[derive(Clone, PartialEq, Eq)]
pub struct PayloadError(String);

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl VerifyError {
    /// The HTTP status a receiver answers with: 413 for an oversize body, 400 for malformed
    /// headers or payloads, 409 for a duplicate, 401 for every signature or freshness failure.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::MissingHeader(_)
            | Self::MalformedHeader(_)
            | Self::InvalidPayload(_)
            | Self::IdMismatch => StatusCode::BAD_REQUEST,
            Self::Duplicate { .. } => StatusCode::CONFLICT,
            Self::MissingSignature
            | Self::TimestampTooOld
            | Self::TimestampTooNew
            | Self::NoSupportedSignature
            | Self::SignatureMismatch
            | Self::LegacyNotAllowed => StatusCode::UNAUTHORIZED,
        }
    }

    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BodyTooLarge { .. } => "payload_too_large",
            Self::MissingSignature => "missing_signature",
            Self::MissingHeader(_) => "missing_signature_header",
            Self::MalformedHeader(_) => "malformed_signature_header",
            Self::TimestampTooOld => "timestamp_too_old",
            Self::TimestampTooNew => "timestamp_too_new",
            Self::NoSupportedSignature => "no_supported_signature",
            Self::SignatureMismatch => "invalid_signature",
            Self::LegacyNotAllowed => "legacy_signature_not_accepted",
            Self::InvalidPayload(_) => "invalid_event",
            Self::IdMismatch => "event_id_mismatch",
            Self::Duplicate { .. } => "duplicate_event",
        }
    }

    /// The problem details body (RFC 9457).
    pub fn to_problem(&self) -> Problem {
        let status = self.status();
        let title = status.canonical_reason().unwrap_or("Bad Request");
        Problem::new(status, self.code(), title).with_detail(Cow::Owned(self.to_string()))
    }
}
