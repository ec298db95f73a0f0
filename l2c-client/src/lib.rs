//! Typed Rust SDK for the L2C open platform.
//!
//! One [`Client`] holds your application's credentials. It fetches an access token the first
//! time it needs one, caches it and refreshes it before it expires (one token request however
//! many calls run at once), retries what is safe to retry, and turns every failure into an
//! [`Error`] you can match on.
//!
//! ```no_run
//! use l2c_client::Client;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let client = Client::builder()
//!         .base_url("http://127.0.0.1:8080")
//!         .credentials("my-client-id", "my-client-secret")
//!         .build()?;
//!     // Fails early if the credentials are wrong (otherwise the first call fetches the token).
//!     client.authenticate().await?;
//!     Ok(())
//! }
//! ```
//!
//! | module | what it gives you |
//! |---|---|
//! | [`client`] | [`Client`], [`ClientBuilder`]: base URL, credentials, timeouts, user agent, your own `reqwest::Client` |
//! | [`retry`] | [`RetryPolicy`] and the pure retry decision |
//! | [`error`] | [`Error`], with `status()`, `code()`, `request_id()`, `retry_after()`, `is_retryable()` |
//! | [`pagination`] | page requests and a `Stream` over every page |
//! | [`resources`] | one module per resource: leads, customers, orders, showroom, reports, webhooks |
//! | [`webhook`] | verify a delivery's signatures and get the typed event |
//! | `test_util` (feature `test-util`) | a mock platform and signed webhook fixtures for your tests |
//! | [`types`] | the wire types (re-export of `l2c_core::api`) |
//!
//! # Retries and idempotency
//!
//! `429` and `503` are retried after their `Retry-After`; connection failures, timeouts and other
//! `5xx` with exponential backoff and jitter, within [`RetryPolicy`]'s attempt and time budget.
//! Every POST, PUT and PATCH carries one `X-Request-Id` (a UUID v4 unless you set one), the same
//! on every retry, so the platform executes a retried write once. A `401 invalid_token` refreshes
//! the token and retries once.
//!
//! # TLS
//!
//! HTTPS uses rustls with the bundled Mozilla roots; there is no OpenSSL dependency.
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

mod auth;
pub mod client;
pub mod error;
pub mod pagination;
pub mod resources;
pub mod retry;
#[cfg(feature = "test-util")]
pub mod test_util;
pub mod webhook;

/// The platform's wire types (requests, responses, events, ids), shared with the server.
pub use l2c_core::api as types;
pub use l2c_core::api::{CustomerId, DeliveryId, LeadId, OrderId, ShowroomItemId, WebhookId};

pub use client::{Client, ClientBuilder};
pub use error::{BuildError, Error};
pub use retry::RetryPolicy;

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
