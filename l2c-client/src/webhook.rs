//! Receiving webhooks: verify a delivery and get the typed event.
//!
//! This is `l2c_core`'s verifier, re-exported so a receiver needs only this crate. Hand it the
//! request headers and the **raw** body exactly as received. It checks the Standard Webhooks
//! headers (`webhook-id`, `webhook-timestamp`, `webhook-signature`, ±300 s) strictly when they
//! are present, and accepts the spec's body-only `X-L2C-Signature` alone only when configured to
//! ([`Verifier::allow_legacy`]). During a secret rotation `webhook-signature` carries a
//! signature with each secret, and `X-L2C-Signature` the previous secret's until the new one is
//! promoted ([`WebhooksHandler::promote_secret`](crate::resources::webhooks::WebhooksHandler::promote_secret))
//! or the overlap ends: give the verifier both secrets with [`Verifier::with_secret`].
//!
//! ```
//! use l2c_client::webhook::{self, EventData, VerifyError, WebhookSecret};
//!
//! # let secret = WebhookSecret::generate();
//! # let event = l2c_client::test_util::sample_order_created();
//! # let (headers, body) = l2c_client::test_util::signed_webhook(&secret, &event).into_parts();
//! // `secret` is the `whsec_…` string shown when the subscription was created.
//! match webhook::verify(&secret, &headers, &body) {
//!     Ok(event) => match event.payload {
//!         EventData::OrderCreated(order) => println!("new order {}", order.external_order_no),
//!         other => println!("{:?}", other.event_type()),
//!     },
//!     // Answer with err.status() (401 for a bad signature) and log err.code().
//!     Err(err) => eprintln!("refused: {} ({})", err, err.code()),
//! }
//! # let _: Option<VerifyError> = None;
//! ```
//!
//! For a long-lived receiver, build a [`Verifier`] once (with de-duplication by event id if you
//! want it) or put [`VerifyWebhookLayer`] in front of your tower/axum handler.

use http::HeaderMap;

pub use l2c_core::api::events::{
    EventData, EventType, OrderCreated, OrderStatusChanged, PaymentReceived, WebhookEvent,
};
pub use l2c_core::webhook::{
    ReplayGuard, Scheme, SecretError, Verifier, VerifyError, VerifyWebhook, VerifyWebhookLayer,
    WebhookSecret, X_L2C_DELIVERY, X_L2C_EVENT, X_L2C_SIGNATURE, X_L2C_TIMESTAMP,
};

/// Verifies one delivery with one secret and the default settings (±300 s, 1 MiB, Standard
/// Webhooks headers required) and returns its event.
///
/// # Errors
///
/// A [`VerifyError`]; [`VerifyError::status`] is the status to answer with.
pub fn verify(
    secret: &WebhookSecret,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<WebhookEvent, VerifyError> {
    Verifier::new(secret.clone()).verify(headers, body)
}
