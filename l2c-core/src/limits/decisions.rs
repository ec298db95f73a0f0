//! [`LimitDecisions`]: what a limit layer decided, counted in the layer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The decisions of one limit layer so far, counted as its services make them and shared by
/// every service the layer builds; read it at scrape time for a metric.
///
/// - `allowed`: the request went on to the inner service — under the limit, without a partition
///   key, or let through unchecked because the store failed (fail-open, also counted by the
///   [`FailOpenCounter`](super::FailOpenCounter));
/// - `rejected`: the layer answered 429;
/// - `unavailable`: the store failed and the layer answered 503
///   ([`FailurePolicy::Closed`](super::FailurePolicy::Closed)).
///
/// ```
/// use http::{Request, Response, StatusCode};
/// use l2c_core::rate_limit::{KeyedRateLimitLayer, Quota};
/// use tower::{Layer, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let layer = KeyedRateLimitLayer::new("1/min".parse::<Quota>().unwrap())
///     .key_fn(|_| Some("everyone".to_owned()));
/// let decisions = layer.decisions().clone();
/// let svc = layer.layer(service_fn(|_req: Request<()>| async {
///     Ok::<_, std::convert::Infallible>(Response::new(bytes::Bytes::new()))
/// }));
/// assert_eq!(svc.clone().oneshot(Request::new(())).await.unwrap().status(), StatusCode::OK);
/// let res = svc.oneshot(Request::new(())).await.unwrap();
/// assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
/// assert_eq!((decisions.allowed(), decisions.rejected(), decisions.unavailable()), (1, 1, 0));
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct LimitDecisions(Arc<Counts>);

#[derive(Debug, Default)]
struct Counts {
    allowed: AtomicU64,
    rejected: AtomicU64,
    unavailable: AtomicU64,
}

/// One decision of a limit layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decided {
    Allowed,
    Rejected,
    Unavailable,
}

impl LimitDecisions {
    /// Every count at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests that went on to the inner service.
    pub fn allowed(&self) -> u64 {
        self.0.allowed.load(Ordering::Relaxed)
    }

    /// Requests answered 429.
    pub fn rejected(&self) -> u64 {
        self.0.rejected.load(Ordering::Relaxed)
    }

    /// Requests answered 503 because the store failed (fail-closed).
    pub fn unavailable(&self) -> u64 {
        self.0.unavailable.load(Ordering::Relaxed)
    }

    /// The three counts with their usual label values, for a metric exporter.
    pub fn by_outcome(&self) -> [(&'static str, u64); 3] {
        [
            ("allowed", self.allowed()),
            ("rejected", self.rejected()),
            ("unavailable", self.unavailable()),
        ]
    }

    pub(crate) fn record(&self, decided: Decided) {
        let counter = match decided {
            Decided::Allowed => &self.0.allowed,
            Decided::Rejected => &self.0.rejected,
            Decided::Unavailable => &self.0.unavailable,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
