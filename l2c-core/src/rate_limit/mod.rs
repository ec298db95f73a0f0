//! Keyed GCRA rate limiting: [`KeyedRateLimitLayer`].
//!
//! Every partition key (the authenticated `client_id` by default; see
//! [`limits`](crate::limits) for how keys are derived) gets a [`Quota`], enforced with the generic
//! cell rate algorithm: one stored number per key, exact under concurrency, and a burst equal to
//! the count unless set otherwise. Per-client quotas come from a [`QuotaOverrides`] handle that
//! can change at runtime without losing state.
//!
//! # Responses
//!
//! - Allowed: the inner service's response plus `RateLimit-Policy: "default";q=100;w=1` and
//!   `RateLimit: "default";r=<remaining>;t=<seconds until the quota is full again>`
//!   (draft-ietf-httpapi-ratelimit-headers-10, Structured Fields).
//! - Over quota: `429 Too Many Requests` at once (never queued), with `Retry-After` (whole
//!   seconds, rounded up, at least 1), `Cache-Control: no-store`, the same two headers with
//!   `r=0` and `t` equal to `Retry-After`, and an `application/problem+json` body of type
//!   [`QUOTA_EXCEEDED_TYPE`](crate::problem::QUOTA_EXCEEDED_TYPE) with
//!   `"violated-policies": ["default"]`. The body is serialized once when the layer is built.
//! - Store failure (Redis down or slow): [`FailurePolicy::Open`] (the default) lets the request
//!   through without headers, logs a warning and counts it
//!   ([`KeyedRateLimitLayer::fail_open_total`]); [`FailurePolicy::Closed`] answers 503.
//!
//! Requests without a partition key pass unlimited unless
//! [`anonymous_key`](KeyedRateLimitLayer::anonymous_key) is set. Put the layer after (inside) the
//! auth layer: rejected 401/403 requests then never consume any client's quota.
//!
//! # Stores
//!
//! [`MemoryStore`] (the default) is sharded and bounded with no background task.
//! [`RedisStore`] (feature `redis`) shares one quota between replicas with one Lua round trip.
//!
//! # Example
//!
//! ```
//! use http::{Request, Response};
//! use l2c_core::rate_limit::{KeyedRateLimitLayer, Quota};
//! use l2c_core::{AuthenticatedClient, Scopes};
//! use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let mut svc = ServiceBuilder::new()
//!     .layer(KeyedRateLimitLayer::new(Quota::per_minute(2)))
//!     .service(service_fn(|_req: Request<()>| async {
//!         Ok::<_, std::convert::Infallible>(Response::new(b"ok".to_vec()))
//!     }));
//! let request = || {
//!     let mut req = Request::new(());
//!     req.extensions_mut().insert(AuthenticatedClient::new("acme", Scopes::all()));
//!     req
//! };
//! let first = svc.ready().await.unwrap().call(request()).await.unwrap();
//! assert_eq!(first.headers()["ratelimit-policy"], "\"default\";q=2;w=60");
//! assert_eq!(first.headers()["ratelimit"], "\"default\";r=1;t=30");
//! svc.ready().await.unwrap().call(request()).await.unwrap();
//! let third = svc.ready().await.unwrap().call(request()).await.unwrap();
//! assert_eq!(third.status(), 429);
//! assert_eq!(third.headers()["retry-after"], "30");
//! # }
//! ```

mod clock;
mod future;
mod gcra;
mod layer;
mod memory;
mod overrides;
mod quota;
#[cfg(feature = "redis")]
mod redis;
mod service;
mod store;

#[cfg(test)]
mod tests;

pub use self::clock::{MonotonicClock, NanoClock};
pub use self::future::ResponseFuture;
pub use self::gcra::{Decision, GcraParams, gcra};
pub use self::layer::KeyedRateLimitLayer;
pub use self::memory::{DEFAULT_MAX_KEYS, MemoryStore};
pub use self::overrides::QuotaOverrides;
pub use self::quota::{Quota, QuotaParseError};
#[cfg(feature = "redis")]
pub use self::redis::RedisStore;
pub use self::service::KeyedRateLimit;
pub use self::store::RateLimitStore;
pub use crate::limits::{FailurePolicy, KeyExtractor, StoreError};
