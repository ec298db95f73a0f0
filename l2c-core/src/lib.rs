//! Framework-agnostic building blocks for the L2C open platform.
//!
//! `l2c-core` holds the pieces every L2C deployment shares: tower [`Layer`]s that a platform team
//! drops in front of its own services, the webhook signature scheme, and the wire types that the
//! reference server and the SDK both speak. It depends on `tower`, `http` and `http-body` only —
//! never on axum or reqwest — so the layers work with any tower-based stack.
//!
//! | module | feature | what it gives you |
//! |---|---|---|
//! | [`auth`] | `auth` | JWT access tokens (issuing, verification, JWKS) and `JwtAuthLayer` / `RequireScopeLayer` |
//! | [`rate_limit`] | `rate-limit` | `KeyedRateLimitLayer`: per-client GCRA quota, 429 + `Retry-After` |
//! | [`concurrency`] | `concurrency` | `ConcurrencyCapLayer`: per-client cap on in-flight long requests |
//! | [`idempotency`] | `idempotency` | `IdempotencyLayer`: replay by `X-Request-Id` / `Idempotency-Key` |
//! | [`deprecation`] | `deprecation` | `DeprecationLayer`: `Deprecation` / `Sunset` / `Link` headers, 410 after sunset |
//! | [`grpc`] | `grpc` | `GrpcRefusalLayer`: the layers' refusals as `grpc-status` for gRPC requests |
//! | [`webhook`] | `webhook` | `X-L2C-Signature` and Standard Webhooks signing and verification |
//! | [`api`] | `api` | request, response and event types of the open platform |
//! | [`limits`] | `rate-limit` or `concurrency` | partition keys, store failure policy, the Redis connection shared by both |
//! | [`problem`] | always | RFC 9457 problem details, the error body of every layer |
//! | [`request_id`] | always | `RequestIdLayer`: a request id for logs and error bodies that never invents an idempotency key |
//!
//! The `redis` feature adds Redis-backed stores so many replicas enforce one quota. The `openapi`
//! feature derives utoipa schemas for [`problem::Problem`] and the [`api`] types, for servers
//! that publish an OpenAPI document (off by default: utoipa is not needed to run the layers).
//!
//! [`Layer`]: tower_layer::Layer
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

pub mod clock;
pub mod identity;
pub mod outcome;
pub mod problem;
pub mod request_id;
pub mod retry_after;

#[cfg(feature = "api")]
pub mod api;
#[cfg(feature = "auth")]
pub mod auth;
#[cfg(feature = "concurrency")]
pub mod concurrency;
#[cfg(feature = "deprecation")]
pub mod deprecation;
#[cfg(feature = "grpc")]
pub mod grpc;
#[cfg(feature = "idempotency")]
pub mod idempotency;
#[cfg(any(feature = "rate-limit", feature = "concurrency"))]
pub mod limits;
#[cfg(feature = "rate-limit")]
pub mod rate_limit;
#[cfg(feature = "webhook")]
pub mod webhook;

pub use clock::{Clock, SystemClock};
pub use identity::{AuthenticatedClient, ClientId, Scope, Scopes};
pub use outcome::NotExecuted;
pub use problem::Problem;
pub use request_id::{RequestId, RequestIdLayer};
