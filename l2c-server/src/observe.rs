//! Request logging and Prometheus metrics.
//!
//! [`observe`] runs around every route: it writes one log line per request (method, matched
//! route, status, latency, client id, request id — never headers, bodies, secrets or tokens) and
//! counts the request in [`Metrics`], which `GET /metrics` renders in the Prometheus text format:
//!
//! - `l2c_http_requests_total{method,route,status}` — a counter;
//! - `l2c_http_request_duration_seconds{method,route}` — a histogram (time to response headers).
//! - `l2c_connections_open` and `l2c_connections_closed_total{reason}` — the public listener's
//!   connections (see [`crate::connections`]).
//!
//! The `route` label is the route template (`/api/mobile/orders/{id}/status`), or `unmatched`, so
//! the number of series stays bounded whatever paths clients send. The encoder is hand-written
//! (a few dozen lines over atomics) rather than pulling in a metrics framework for two series.
//!
//! [`log_subscriber`] builds the process's log subscriber (`--log-format text|json`). Log fields
//! that carry client input (a `client_id` sent to the token endpoint, …) are recorded with `?`
//! (Debug) or as `&str` values, which the text format writes quoted with newlines and control
//! characters escaped and the JSON format escapes as JSON: a client cannot forge a log line or
//! send terminal escapes. ANSI colours are written only when asked for (a terminal).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::Method;
use l2c_core::{AuthenticatedClient, ClientId, RequestId};

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

/// The `route` label of requests that matched no route.
pub const UNMATCHED: &str = "unmatched";

#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn observe(&self, latency: Duration) {
        let secs = latency.as_secs_f64();
        for (bucket, bound) in self.buckets.iter().zip(LATENCY_BUCKETS) {
            if secs <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

/// The series of one route template: request counters by (method, status), latency by method.
#[derive(Debug, Default)]
struct RouteSeries {
    requests: RwLock<HashMap<(&'static str, u16), Arc<AtomicU64>>>,
    latency: RwLock<HashMap<&'static str, Arc<Histogram>>>,
}

/// Request counters and latency histograms, shared by every request.
///
/// Keyed by route first, so counting a request looks the route up by `&str` and allocates
/// nothing once its series exist (the route's `String` is made once, on its first request).
#[derive(Debug, Default)]
pub struct Metrics {
    routes: RwLock<HashMap<String, Arc<RouteSeries>>>,
    connections: Arc<crate::connections::ConnectionMetrics>,
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

fn get_or_insert<K, V>(map: &RwLock<HashMap<K, Arc<V>>>, key: K) -> Arc<V>
where
    K: std::hash::Hash + Eq,
    V: Default,
{
    if let Some(v) = map.read().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Arc::clone(v);
    }
    let mut write = map.write().unwrap_or_else(|e| e.into_inner());
    Arc::clone(write.entry(key).or_default())
}

impl Metrics {
    /// Empty metrics.
    pub fn new() -> Self {
        Self::default()
    }

    /// The series of `route`, created on its first request.
    fn route(&self, route: &str) -> Arc<RouteSeries> {
        if let Some(series) = self
            .routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(route)
        {
            return Arc::clone(series);
        }
        let mut write = self.routes.write().unwrap_or_else(|e| e.into_inner());
        Arc::clone(write.entry(route.to_owned()).or_default())
    }

    /// The public listener's connection counters (rendered with the request series).
    pub fn connections(&self) -> &Arc<crate::connections::ConnectionMetrics> {
        &self.connections
    }

    /// Counts one request.
    pub fn record(&self, method: &Method, route: &str, status: u16, latency: Duration) {
        let method = method_label(method);
        let series = self.route(route);
        get_or_insert(&series.requests, (method, status)).fetch_add(1, Ordering::Relaxed);
        get_or_insert(&series.latency, method).observe(latency);
    }

    /// The Prometheus text exposition (format 0.0.4), series sorted for stable output.
    pub fn render(&self) -> String {
        // Copy the series out first: (method, route, status, count) and (method, route, histogram).
        let mut requests: Vec<(&'static str, String, u16, u64)> = Vec::new();
        let mut latency: Vec<(&'static str, String, Arc<Histogram>)> = Vec::new();
        for (route, series) in self.routes.read().unwrap_or_else(|e| e.into_inner()).iter() {
            let counters = series.requests.read().unwrap_or_else(|e| e.into_inner());
            for (&(method, status), n) in counters.iter() {
                requests.push((method, route.clone(), status, n.load(Ordering::Relaxed)));
            }
            let histograms = series.latency.read().unwrap_or_else(|e| e.into_inner());
            for (&method, h) in histograms.iter() {
                latency.push((method, route.clone(), Arc::clone(h)));
            }
        }
        requests.sort_by(|a, b| (a.0, &a.1, a.2).cmp(&(b.0, &b.1, b.2)));
        latency.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));

        let mut out = String::new();
        out.push_str("# HELP l2c_http_requests_total HTTP requests by method, route and status.\n");
        out.push_str("# TYPE l2c_http_requests_total counter\n");
        for (method, route, status, n) in requests {
            let _ = writeln!(
                out,
                "l2c_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(&route),
            );
        }

        out.push_str(
            "# HELP l2c_http_request_duration_seconds Time from request to response headers.\n",
        );
        out.push_str("# TYPE l2c_http_request_duration_seconds histogram\n");
        for (method, route, h) in latency {
            let labels = format!("method=\"{method}\",route=\"{}\"", escape(&route));
            for (bucket, bound) in h.buckets.iter().zip(LATENCY_BUCKETS) {
                let _ = writeln!(
                    out,
                    "l2c_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {}",
                    bucket.load(Ordering::Relaxed)
                );
            }
            let count = h.count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "l2c_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}"
            );
            let sum = Duration::from_nanos(h.sum_nanos.load(Ordering::Relaxed)).as_secs_f64();
            let _ = writeln!(
                out,
                "l2c_http_request_duration_seconds_sum{{{labels}}} {sum}"
            );
            let _ = writeln!(
                out,
                "l2c_http_request_duration_seconds_count{{{labels}}} {count}"
            );
        }
        self.connections.render(&mut out);
        out
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Middleware: one log line and one metrics sample per request.
pub async fn observe(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    // `MatchedPath` is a shared string: cloning it allocates nothing.
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or(UNMATCHED, MatchedPath::as_str);
    let request_id = req.extensions().get::<RequestId>().cloned();
    let res = next.run(req).await;
    let latency = start.elapsed();
    let status = res.status().as_u16();
    metrics.record(&method, route, status, latency);
    let client_id = res
        .extensions()
        .get::<ClientId>()
        .map(ClientId::as_str)
        .unwrap_or("-");
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

/// Middleware for authenticated route groups: copies the caller's [`ClientId`] from the request
/// (where the auth layer put an [`AuthenticatedClient`]) to the response, for [`observe`].
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

#[cfg(test)]
mod tests {
    use super::*;

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
            "l2c_http_request_duration_seconds_bucket{method=\"GET\",route=\"/healthz\",le=\"0.005\"} 2"
        ));
        assert!(text.contains(
            "l2c_http_request_duration_seconds_bucket{method=\"GET\",route=\"/healthz\",le=\"0.5\"} 3"
        ));
        assert!(text.contains(
            "l2c_http_request_duration_seconds_count{method=\"GET\",route=\"/healthz\"} 3"
        ));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
