//! Webhook signatures: signing deliveries and verifying them on the receiving side.
//!
//! Every delivery carries two independent signatures made from one `whsec_…`
//! [`WebhookSecret`] (DESIGN.md "Webhooks", PROTOCOLS.md H, conflicts 7 and 8):
//!
//! | header | value | key |
//! |---|---|---|
//! | `X-L2C-Signature` | lowercase hex HMAC-SHA256 of the raw body (the spec's header) | the secret string's UTF-8 bytes |
//! | `webhook-id`, `webhook-timestamp`, `webhook-signature` | [Standard Webhooks]: `v1,<base64>` over `id.timestamp.body`, one per secret during a rotation | the base64-decoded bytes after `whsec_` |
//! | `X-L2C-Event`, `X-L2C-Delivery`, `X-L2C-Timestamp` | event type, event id, attempt time | — (not signed) |
//!
//! Senders call [`sign_headers`] (or a [`Signer`]); receivers call [`Verifier::verify`] or put
//! [`VerifyWebhookLayer`] in front of their handler. The verifier checks the Standard Webhooks
//! headers strictly whenever they are present and never falls back to the body-only header; it
//! accepts `X-L2C-Signature` alone only when told to ([`Verifier::allow_legacy`]).
//!
//! ```
//! use l2c_core::api::events::{EventType, WebhookEvent};
//! use l2c_core::webhook::{Verifier, WebhookSecret, sign_headers};
//!
//! let secret = WebhookSecret::generate();
//! let now = 1_795_654_800;
//! let body = r#"{"id":"evt_7","type":"ORDER_STATUS_CHANGED","createdAt":"2026-11-26T09:00:00+08:00",
//!   "data":{"orderId":"ord_1","externalOrderNo":"ERP-1","fromStatus":"PRODUCTION_PENDING",
//!   "fromStatusLabel":"待排产","toStatus":"SCHEDULING","toStatusLabel":"正在排产",
//!   "paymentStatus":"FULLY_PAID","paymentStatusLabel":"已付全款","version":3,
//!   "changedAt":"2026-11-26T09:00:00+08:00"}}"#.as_bytes();
//!
//! // Sender.
//! let mut request = http::Request::new(body.to_vec());
//! for (name, value) in sign_headers(&[&secret], "evt_7", EventType::OrderStatusChanged, now, body).unwrap() {
//!     request.headers_mut().insert(name, value);
//! }
//!
//! // Receiver (with the same clock reading, for the example).
//! let clock = l2c_core::clock::MockClock::at_unix(now);
//! let verifier = Verifier::new(secret).with_clock(clock);
//! let event: WebhookEvent = verifier.verify(request.headers(), request.body()).unwrap();
//! assert_eq!(event.event_type(), EventType::OrderStatusChanged);
//! ```
//!
//! [Standard Webhooks]: https://www.standardwebhooks.com/

mod future;
mod layer;
mod replay;
mod secret;
mod service;
mod sign;
mod verify;

#[cfg(test)]
mod tests;

pub use future::ResponseFuture;
pub use layer::VerifyWebhookLayer;
pub use replay::{ReplayGuard, Seen};
pub use secret::{MAX_KEY_BYTES, MIN_KEY_BYTES, SECRET_PREFIX, SecretError, WebhookSecret};
pub use service::VerifyWebhook;
pub use sign::{
    MAX_EVENT_ID_LEN, SignError, Signer, WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP,
    X_L2C_DELIVERY, X_L2C_EVENT, X_L2C_SIGNATURE, X_L2C_TIMESTAMP, sign_headers, sign_legacy,
    sign_standard,
};
pub use verify::{
    DEFAULT_MAX_BODY_BYTES, DEFAULT_TOLERANCE, PayloadError, Scheme, Verifier, VerifyError,
};
