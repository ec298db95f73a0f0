//! `Deprecation` / `Sunset` / `Link` headers for a deprecated API version, and `410 Gone` after
//! its sunset (spec §6: old versions stay compatible for at least six months).
//!
//! Wrap the routes of the deprecated version (for example everything under `/api/v1/showroom`)
//! in a [`DeprecationLayer`]. Every response then carries
//!
//! - `Deprecation: @<unix seconds>` — a Structured Field Date (RFC 9745 §2.1), never an
//!   HTTP-date or `true`; it may lie in the future (announced ahead) or the past;
//! - `Sunset: <IMF-fixdate>` in GMT (RFC 8594);
//! - `Link: <…>; rel="deprecation"; type="text/html"` and `Link: <…>; rel="successor-version"`
//!   when configured, appended to any `Link` the handler set.
//!
//! Behaviour is otherwise unchanged until the sunset (RFC 9745 §5); from then on the layer
//! answers `410 Gone` with problem+json naming the successor, without calling the handler.
//! [`Deprecation::new`] refuses a sunset less than six months after the deprecation, defined
//! exactly in [`Deprecation::minimum_sunset`]. One layer covers exactly the routes it wraps.
//!
//! Browsers can read these headers only if CORS exposes them
//! (`Access-Control-Expose-Headers: Deprecation, Sunset, Link`).
//!
//! ```
//! use std::convert::Infallible;
//! use chrono::{TimeZone, Utc};
//! use http::{Request, Response, StatusCode};
//! use l2c_core::clock::MockClock;
//! use l2c_core::deprecation::{Deprecation, DeprecationLayer};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let clock = MockClock::at_unix(1_796_083_200); // 2026-12-01T00:00:00Z
//! let deprecation = Deprecation::new(
//!     Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap(),
//!     Utc.with_ymd_and_hms(2027, 6, 2, 0, 0, 0).unwrap(),
//! )
//! .unwrap()
//! .successor("/api/v2/showroom/items")
//! .unwrap()
//! .with_clock(clock.clone());
//!
//! let app = ServiceBuilder::new()
//!     .layer(DeprecationLayer::new(deprecation))
//!     .service(service_fn(|_req: Request<()>| async {
//!         Ok::<_, Infallible>(Response::new(bytes::Bytes::from_static(b"items")))
//!     }));
//!
//! let res = app.clone().oneshot(Request::new(())).await.unwrap();
//! assert_eq!(res.status(), StatusCode::OK);
//! assert_eq!(res.headers()["deprecation"], "@1796083200");
//! assert_eq!(res.headers()["sunset"], "Wed, 02 Jun 2027 00:00:00 GMT");
//! assert_eq!(res.headers()["link"], r#"</api/v2/showroom/items>; rel="successor-version""#);
//!
//! clock.set_unix(1_811_894_400); // the sunset
//! let res = app.oneshot(Request::new(())).await.unwrap();
//! assert_eq!(res.status(), StatusCode::GONE);
//! # });
//! ```
//!
//! A sunset too close to the deprecation is refused when the layer is built — here six calendar
//! months, but only 182 days:
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use l2c_core::deprecation::{ConfigError, Deprecation};
//!
//! let err = Deprecation::new(
//!     Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap(),
//!     Utc.with_ymd_and_hms(2027, 6, 1, 0, 0, 0).unwrap(),
//! )
//! .unwrap_err();
//! assert!(matches!(err, ConfigError::SunsetTooEarly { .. }));
//! ```

mod config;
mod future;
mod layer;
mod service;

#[cfg(test)]
mod tests;

pub use config::{ConfigError, Deprecation, MIN_WINDOW_DAYS};
pub use future::ResponseFuture;
pub use layer::DeprecationLayer;
pub use service::Deprecated;
