//! A per-client cap on requests in flight: [`ConcurrencyCapLayer`].
//!
//! Meant for long-running routes such as a streamed report export. Each request takes one of
//! `limit` slots of its partition key (the authenticated `client_id` by default, derived as in
//! [`limits`](crate::limits)) and holds it **in the response body**: the slot is freed when the
//! body ends, fails or is dropped (client disconnect), not when the handler returns its response
//! head, which is where `tower::limit::ConcurrencyLimit` would release it. That layer also queues;
//! this one never does.
//!
//! # Responses
//!
//! - Admitted: the response, body wrapped in [`PermitBody`], plus
//!   `RateLimit-Policy: "concurrency";q=5;qu="concurrent-requests"` and
//!   `RateLimit: "concurrency";r=<free slots>`.
//! - Over the cap: `429 Too Many Requests` at once, with `Retry-After: 1`,
//!   `Cache-Control: no-store`, the same headers with `r=0`, and a problem+json body of type
//!   [`QUOTA_EXCEEDED_TYPE`](crate::problem::QUOTA_EXCEEDED_TYPE) with
//!   `"violated-policies": ["concurrency"]`.
//! - Store failure: as for the rate limiter ([`FailurePolicy`]).
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use http::{Request, Response};
//! use http_body_util::Full;
//! use l2c_core::concurrency::ConcurrencyCapLayer;
//! use l2c_core::{AuthenticatedClient, Scopes};
//! use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let mut svc = ServiceBuilder::new()
//!     .layer(ConcurrencyCapLayer::new(1))
//!     .service(service_fn(|_req: Request<()>| async {
//!         Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from("report"))))
//!     }));
//! let request = || {
//!     let mut req = Request::new(());
//!     req.extensions_mut().insert(AuthenticatedClient::new("acme", Scopes::all()));
//!     req
//! };
//! let first = svc.ready().await.unwrap().call(request()).await.unwrap();
//! // The first body has not been read yet, so its slot is still taken.
//! let second = svc.ready().await.unwrap().call(request()).await.unwrap();
//! assert_eq!(second.status(), 429);
//! assert_eq!(second.headers()["retry-after"], "1");
//! drop(first);
//! let third = svc.ready().await.unwrap().call(request()).await.unwrap();
//! assert_eq!(third.status(), 200);
//! # }
//! ```

mod body;
mod future;
mod layer;
mod memory;
#[cfg(feature = "redis")]
mod redis;
mod service;
mod store;

#[cfg(test)]
mod tests;

pub use self::body::PermitBody;
pub use self::future::ResponseFuture;
pub use self::layer::ConcurrencyCapLayer;
pub use self::memory::MemoryConcurrencyStore;
#[cfg(feature = "redis")]
pub use self::redis::RedisConcurrencyStore;
pub use self::service::ConcurrencyCap;
pub use self::store::{Acquire, ConcurrencyStore, Permit};
pub use crate::limits::{FailurePolicy, KeyExtractor, StoreError};
