//! Request logging and Prometheus metrics.
//!
//! [`observe`] runs around every route: it writes one log line per request (method, matched
//! route, status, latency, client id, request id — never headers, bodies, secrets or tokens) and
//! counts the request in [`Metrics`], which `GET /metrics` (on the metrics listener) renders in
//! the OpenMetrics text format through the Prometheus client library (`prometheus-client`).
//! The series, with their labels, are listed in the server README; among them:
//!
//! - `l2c_http_requests_total{method,route,status}` — a counter;
//! - `l2c_http_request_duration_seconds{method,route}` — a histogram (time to response headers);
//! - `l2c_connections_open` and `l2c_connections_closed_total{reason}` — the public listener's
//!   connections (see [`crate::connections`]);
//! - webhook attempts, delivery latency and queue, limit decisions, token requests, idempotency
//!   outcomes and database pool connections;
//! - `l2c_request_log_dropped_total{reason}` — request-log records not written (the channel was
//!   full, or the database refused a batch; see [`request_log`]).
//!
//! Every label value is a word the server chose: the `route` label is the route template
//! (`/api/mobile/orders/{id}/status`), or `unmatched`, so the number of series stays bounded
//! whatever paths clients send.
//!
//! Every API request (under `/api/`) is also kept in the request log that the console shows
//! (请求日志), written off the request path in batches by [`request_log`].
//!
//! [`log_subscriber`] builds the process's log subscriber (`--log-format text|json`). Log fields
//! that carry client input (a `client_id` sent to the token endpoint, …) are recorded with `?`
//! (Debug) or as `&str` values, which the text format writes quoted with newlines and control
//! characters escaped and the JSON format escapes as JSON: a client cannot forge a log line or
//! send terminal escapes. ANSI colours are written only when asked for (a terminal).

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::Method;
use l2c_core::clock::Clock;
use l2c_core::idempotency::IdempotencyRejection;
use l2c_core::{AuthenticatedClient, ClientId, RequestId};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub mod request_log;

use crate::store::request_logs::NewRequestLog;
use request_log::RequestLog;

/// The log subscriber the binary installs: `format` lines to `writer`, filtered by `RUST_LOG`
/// (default `info,sqlx=warn`), ANSI colours only when `ansi` (pass whether the output is a
/// terminal).
///
/// ```
/// use l2c_server::config::LogFormat;
/// use l2c_server::observe::log_subscriber;
///
/// let subscriber = log_subscriber(LogFormat::Json, false, std::io::sink);
/// tracing::subscriber::with_default(subscriber, || tracing::info!(client_id = "a\nb", "hello"));
/// ```
pub fn log_subscriber<W>(
    format: crate::config::LogFormat,
    ansi: bool,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        crate::config::LogFormat::Json => Box::new(builder.json().with_ansi(false).finish()),
        _ => Box::new(builder.with_ansi(ansi).finish()),
    }
}

/// Upper bounds (seconds) of the latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The token endpoint's route, whose requests are also counted by outcome.
const TOKEN_ROUTE: &str = "/api/oauth/token";

/// The `route` label of requests that matched no route.
pub const UNMATCHED: &str = "unmatched";

/// `l2c_http_requests_total` labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: Arc<String>,
    status: u16,
}

/// `l2c_http_request_duration_seconds` labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: Arc<String>,
}

/// A single `outcome` label (a fixed word chosen by the server, never client input).
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// A single `reason` label (a fixed word chosen by the server).
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// `l2c_db_pool_connections` labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PoolLabels {
    pool: &'static str,
    state: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Upper bounds (seconds) of `l2c_webhook_delivery_seconds`: event creation to a 2xx, which
/// spans retries (minutes to days).
pub const DELIVERY_BUCKETS: [f64; 12] = [
    0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 43200.0, 86400.0,
];

/// Every series `GET /metrics` serves, in one [`Registry`].
///
/// Request series are counted by [`observe`]; the other modules count through the `record_*`
/// methods; values that live elsewhere (connections, fail-open counters) are read at scrape
/// time by collectors registered with [`Metrics::register_collector`] (the limit layers' own
/// decision and fail-open counters among them, see [`crate::limits::LimitsCollector`]), and the
/// database pool
/// and queue gauges are set by the handler before [`Metrics::render`].
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    webhook_attempts: Family<OutcomeLabels, Counter>,
    webhook_delivery: Histogram,
    webhook_queue_depth: Gauge,
    webhook_oldest_pending: Gauge<f64, AtomicU64>,
    token_requests: Family<OutcomeLabels, Counter>,
    idempotency: Family<OutcomeLabels, Counter>,
    db_pool: Family<PoolLabels, Gauge>,
    request_log_dropped: Family<ReasonLabels, Counter>,
    connections: Arc<crate::connections::ConnectionMetrics>,
    /// Route templates seen so far, shared by their series: counting a request allocates
    /// nothing once its series exist.
    routes: RwLock<HashMap<String, Arc<String>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

impl Metrics {
    /// The registry with every series registered (and no samples yet).
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "l2c_http_requests",
            "HTTP requests by method, route template and status",
            requests.clone(),
        );
        let latency = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "l2c_http_request_duration_seconds",
            "Time from request to response headers, by method and route template",
            latency.clone(),
        );
        let webhook_attempts = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "l2c_webhook_attempts",
            "Webhook delivery attempts by outcome (delivered, retry, failed, gone, not_sent)",
            webhook_attempts.clone(),
        );
        let webhook_delivery = Histogram::new(DELIVERY_BUCKETS);
        registry.register(
            "l2c_webhook_delivery_seconds",
            "Time from an event's creation to its successful receipt",
            webhook_delivery.clone(),
        );
        let webhook_queue_depth = Gauge::default();
        registry.register(
            "l2c_webhook_queue_depth",
            "Webhook deliveries pending (due or waiting for a retry), read at scrape time",
            webhook_queue_depth.clone(),
        );
        let webhook_oldest_pending = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "l2c_webhook_oldest_pending_seconds",
            "Age of the oldest pending webhook delivery (0 when none), read at scrape time",
            webhook_oldest_pending.clone(),
        );
        let token_requests = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "l2c_token_requests",
            "Token endpoint requests by outcome",
            token_requests.clone(),
        );
        let idempotency = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "l2c_idempotency",
            "Requests the idempotency layer answered itself, by outcome (replayed, conflict, in_use, ...)",
            idempotency.clone(),
        );
        let db_pool = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "l2c_db_pool_connections",
            "Database pool connections by pool (main, exports) and state (in_use, idle), read at scrape time",
            db_pool.clone(),
        );
        let request_log_dropped = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "l2c_request_log_dropped",
            "Request-log records not written, by reason (full: the writer was behind; write_failed: the database refused the batch; closed)",
            request_log_dropped.clone(),
        );
        let connections = Arc::new(crate::connections::ConnectionMetrics::default());
        registry.register_collector(Box::new(Arc::clone(&connections)));
        Self {
            registry,
            requests,
            latency,
            webhook_attempts,
            webhook_delivery,
            webhook_queue_depth,
            webhook_oldest_pending,
            token_requests,
            idempotency,
            db_pool,
            request_log_dropped,
            connections,
            routes: RwLock::default(),
        }
    }

    /// The shared label value of `route` (a template, or [`UNMATCHED`]).
    fn route(&self, route: &str) -> Arc<String> {
        if let Some(r) = self
            .routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(route)
        {
            return Arc::clone(r);
        }
        let mut write = self.routes.write().unwrap_or_else(|e| e.into_inner());
        Arc::clone(
            write
                .entry(route.to_owned())
                .or_insert_with(|| Arc::new(route.to_owned())),
        )
    }

    /// Adds series read from elsewhere at each scrape (call before sharing the metrics).
    pub fn register_collector(&mut self, collector: Box<dyn Collector>) {
        self.registry.register_collector(collector);
    }

    /// The public listener's connection counters (rendered with the request series).
    pub fn connections(&self) -> &Arc<crate::connections::ConnectionMetrics> {
        &self.connections
    }

    /// Counts one request; the shared route label (for the request log).
    pub fn record(
        &self,
        method: &Method,
        route: &str,
        status: u16,
        latency: Duration,
    ) -> Arc<String> {
        let method = method_label(method);
        let route = self.route(route);
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route: Arc::clone(&route),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                method,
                route: Arc::clone(&route),
            })
            .observe(latency.as_secs_f64());
        route
    }

    /// Counts `n` request-log records not written, for `reason` (`full`, `write_failed`,
    /// `closed`).
    pub fn record_request_log_dropped(&self, reason: &'static str, n: u64) {
        self.request_log_dropped
            .get_or_create(&ReasonLabels { reason })
            .inc_by(n);
    }

    /// Counts one webhook attempt; `outcome` is one of the fixed words of
    /// `l2c_webhook_attempts_total`.
    pub fn record_webhook_attempt(&self, outcome: &'static str) {
        self.webhook_attempts
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Records the time from an event's creation to its successful receipt.
    pub fn record_webhook_delivered(&self, since_created: Duration) {
        self.webhook_delivery.observe(since_created.as_secs_f64());
    }

    /// Sets the webhook queue gauges (at scrape time).
    pub fn set_webhook_queue(&self, depth: i64, oldest_pending: Duration) {
        self.webhook_queue_depth.set(depth);
        self.webhook_oldest_pending
            .set(oldest_pending.as_secs_f64());
    }

    /// Sets `l2c_db_pool_connections{pool}` (at scrape time).
    pub fn set_db_pool(&self, pool: &'static str, in_use: i64, idle: i64) {
        for (state, n) in [("in_use", in_use), ("idle", idle)] {
            self.db_pool
                .get_or_create(&PoolLabels { pool, state })
                .set(n);
        }
    }

    /// Counts one token endpoint request by outcome.
    pub fn record_token_request(&self, outcome: &'static str) {
        self.token_requests
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Counts one request the idempotency layer answered itself.
    pub fn record_idempotency(&self, outcome: &'static str) {
        self.idempotency
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// The OpenMetrics text exposition of every series (ends with `# EOF`).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a `String` cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The token endpoint's outcome from its status (RFC 6749 §5.2 errors are 400/401).
fn token_outcome(status: u16) -> &'static str {
    match status {
        200 => "issued",
        400 => "invalid_request",
        401 => "invalid_client",
        405 => "method_not_allowed",
        429 => "rate_limited",
        503 => "unavailable",
        _ => "error",
    }
}

fn idempotency_outcome(rejection: IdempotencyRejection) -> &'static str {
    match rejection {
        IdempotencyRejection::MissingKey => "missing_key",
        IdempotencyRejection::InvalidKey => "invalid_key",
        IdempotencyRejection::ConflictingKeys => "conflicting_keys",
        IdempotencyRejection::BodyTooLarge => "body_too_large",
        IdempotencyRejection::UnreadableBody => "unreadable_body",
        IdempotencyRejection::InFlight => "in_use",
        IdempotencyRejection::KeyReused => "conflict",
        IdempotencyRejection::StoreUnavailable => "store_unavailable",
        _ => "other",
    }
}

/// What [`observe`] counts and records into: the metrics, the request log and the clock that
/// stamps its records.
pub struct Observer {
    metrics: Arc<Metrics>,
    log: RequestLog,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observer")
            .field("log", &self.log)
            .finish_non_exhaustive()
    }
}

impl Observer {
    /// Counts into `metrics`, records API requests into `log` stamped by `clock`.
    pub fn new(metrics: Arc<Metrics>, log: RequestLog, clock: Arc<dyn Clock>) -> Self {
        Self {
            metrics,
            log,
            clock,
        }
    }
}

/// The token endpoint, the API and the lead sources' push URLs (not the OpenAPI document).
fn is_api(route: &str) -> bool {
    route.starts_with("/api/") && route != "/api/openapi.json"
}

/// Middleware: one log line and one metrics sample per request, and one request-log record
/// per API request (see [`request_log`]).
pub async fn observe(State(observer): State<Arc<Observer>>, req: Request, next: Next) -> Response {
    let seen = Seen::of(&req);
    let res = next.run(req).await;
    observer.record(seen, res)
}

/// What [`observe`] notes of a request before it runs.
struct Seen {
    start: Instant,
    method: Method,
    matched: Option<MatchedPath>,
    api: bool,
    request_id: Option<RequestId>,
}

impl Seen {
    fn of(req: &Request) -> Self {
        // `MatchedPath` is a shared string: cloning it allocates nothing.
        let matched = req.extensions().get::<MatchedPath>().cloned();
        let api = match &matched {
            Some(m) => is_api(m.as_str()),
            None => req.uri().path().starts_with("/api/"),
        };
        Self {
            start: Instant::now(),
            method: req.method().clone(),
            matched,
            api,
            request_id: req.extensions().get::<RequestId>().cloned(),
        }
    }
}

/// [`observe`] as an [`Around`](crate::inplace::Around) middleware, which [`crate::app`] runs
/// without cloning the route it wraps.
#[derive(Debug, Clone)]
pub struct Observe(pub Arc<Observer>);

impl crate::inplace::Around for Observe {
    fn around<S: crate::inplace::Route>(
        &self,
        inner: &mut S,
        req: Request,
    ) -> crate::inplace::InPlaceFuture {
        let seen = Seen::of(&req);
        let answer = crate::inplace::call(inner, req);
        let observer = Arc::clone(&self.0);
        Box::pin(async move { Ok(observer.record(seen, answer.await)) })
    }
}

impl Observer {
    /// Counts, logs and records the answered request.
    fn record(&self, seen: Seen, res: Response) -> Response {
        let observer = self;
        let Seen {
            start,
            method,
            matched,
            api,
            request_id,
        } = seen;
        let metrics = &observer.metrics;
        let route = matched.as_ref().map_or(UNMATCHED, MatchedPath::as_str);
        let latency = start.elapsed();
        let status = res.status().as_u16();
        let route_label = metrics.record(&method, route, status, latency);
        if route == TOKEN_ROUTE {
            metrics.record_token_request(token_outcome(status));
        }
        if res
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|v| v == "true")
        {
            metrics.record_idempotency("replayed");
        } else if let Some(rejection) = res.extensions().get::<IdempotencyRejection>() {
            metrics.record_idempotency(idempotency_outcome(*rejection));
        }
        let client = res.extensions().get::<ClientId>();
        if api && let Some(id) = &request_id {
            let record = NewRequestLog::new(
                request_log::now_millis(&*observer.clock),
                client.cloned(),
                method_label(&method),
                route_label,
                status,
                id.clone(),
                u32::try_from(latency.as_micros()).unwrap_or(u32::MAX),
                request_log::rate_remaining(res.headers()),
            );
            if let Err(dropped) = observer.log.push(record) {
                metrics.record_request_log_dropped(dropped.reason(), 1);
            }
        }
        let client_id = client.map(ClientId::as_str).unwrap_or("-");
        tracing::info!(
            target: "l2c_server::request",
            method = %method,
            route = %route,
            status,
            latency_ms = latency.as_secs_f64() * 1000.0,
            client_id,
            request_id = request_id.as_ref().map_or("-", RequestId::as_str),
            "request"
        );
        res
    }
}

/// Middleware for authenticated route groups: copies the caller's [`ClientId`] from the request
/// (where the auth layer put an [`AuthenticatedClient`]) to the response, for [`observe`].
///
/// [`crate::app`] uses the same as a plain tower layer, [`ExposeClientLayer`], which calls the
/// route in place instead of cloning it per request as `from_fn` does.
pub async fn expose_client(req: Request, next: Next) -> Response {
    let client = req
        .extensions()
        .get::<AuthenticatedClient>()
        .map(|c| c.client_id.clone());
    let mut res = next.run(req).await;
    if let Some(id) = client {
        res.extensions_mut().insert(id);
    }
    res
}

/// [`expose_client`] as a tower layer, for the authenticated route groups of [`crate::app`].
///
/// axum's `from_fn` clones the whole inner service (the route with its layers, handler and
/// state) on every request to hand it to `Next`; this service calls its inner one in place.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExposeClientLayer;

impl<S> tower::Layer<S> for ExposeClientLayer {
    type Service = ExposeClient<S>;

    fn layer(&self, inner: S) -> ExposeClient<S> {
        ExposeClient { inner }
    }
}

/// The service of [`ExposeClientLayer`].
#[derive(Debug, Clone)]
pub struct ExposeClient<S> {
    inner: S,
}

impl<S> tower::Service<Request> for ExposeClient<S>
where
    S: tower::Service<Request, Response = Response>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Response, S::Error>> + Send + 'static>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let client = req
            .extensions()
            .get::<AuthenticatedClient>()
            .map(|c| c.client_id.clone());
        let future = self.inner.call(req);
        Box::pin(async move {
            let mut res = future.await?;
            if let Some(id) = client {
                res.extensions_mut().insert(id);
            }
            Ok(res)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The library writes `le` before the other labels (label order carries no meaning).
    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::new();
        m.record(&Method::GET, "/healthz", 200, Duration::from_millis(3));
        m.record(&Method::GET, "/healthz", 200, Duration::from_millis(300));
        m.record(&Method::GET, "/healthz", 503, Duration::from_millis(1));
        let text = m.render();
        assert!(text.contains(
            "l2c_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 2"
        ));
        assert!(text.contains(
            "l2c_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"503\"} 1"
        ));
        assert!(text.contains(
            "l2c_http_request_duration_seconds_bucket{le=\"0.005\",method=\"GET\",route=\"/healthz\"} 2"
        ));
        assert!(text.contains(
            "l2c_http_request_duration_seconds_bucket{le=\"0.5\",method=\"GET\",route=\"/healthz\"} 3"
        ));
        assert!(text.contains(
            "l2c_http_request_duration_seconds_count{method=\"GET\",route=\"/healthz\"} 3"
        ));
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::new();
        m.record(&Method::GET, "/a\"b\\c", 200, Duration::from_millis(1));
        assert!(m.render().contains(r#"route="/a\"b\\c""#), "{}", m.render());
    }

    /// The layer copies the verified client to the response (what the request log attributes
    /// the request by), and copies nothing when the request carries none.
    #[tokio::test]
    async fn expose_client_layer_copies_the_verified_client_to_the_response() {
        use tower::{Layer, ServiceExt};
        let inner = tower::service_fn(|_req: Request| async {
            Ok::<_, std::convert::Infallible>(Response::new(axum::body::Body::empty()))
        });
        let svc = ExposeClientLayer.layer(inner);
        let mut req = Request::new(axum::body::Body::empty());
        req.extensions_mut()
            .insert(AuthenticatedClient::new("cli_a", l2c_core::Scopes::all()));
        let res = svc.clone().oneshot(req).await.unwrap();
        assert_eq!(
            res.extensions().get::<ClientId>().map(ClientId::as_str),
            Some("cli_a")
        );
        let res = svc
            .oneshot(Request::new(axum::body::Body::empty()))
            .await
            .unwrap();
        assert!(res.extensions().get::<ClientId>().is_none());
    }

    #[test]
    fn ends_with_eof() {
        assert!(Metrics::new().render().ends_with("# EOF\n"));
    }

    #[test]
    fn idempotency_rejections_and_token_statuses_map_to_bounded_outcomes() {
        assert_eq!(
            idempotency_outcome(IdempotencyRejection::KeyReused),
            "conflict"
        );
        assert_eq!(
            idempotency_outcome(IdempotencyRejection::InFlight),
            "in_use"
        );
        assert_eq!(token_outcome(200), "issued");
        assert_eq!(token_outcome(418), "error");
    }
}
