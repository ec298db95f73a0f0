//! Serving connections: the accept loops of the public listener (plain or TLS) and of the
//! metrics listener, and the limits every connection lives under.
//!
//! | limit | flag (default) | past it |
//! |---|---|---|
//! | request head | `--header-read-timeout` (10 s) | the socket is closed |
//! | no request in flight | `--idle-timeout` (60 s) | closed (HTTP/2 with a GOAWAY first) |
//! | a response the client stops reading | `--export-stall-timeout` (30 s without a byte accepted) | closed |
//! | request body | `--body-timeout` (30 s) | 408 `request_timeout`, then closed |
//! | TLS handshake | `--tls-handshake-timeout` (10 s) | the socket is closed |
//! | open connections | `--max-connections` ([`derive_max_connections`]) | new ones are closed at once |
//! | HTTP/2 | `--http2-max-concurrent-streams` (100), `--http2-max-header-list-size` (16 KiB), `--http2-keep-alive-interval`/`-timeout` (30 s / 20 s) | refused stream / closed |
//! | shutdown | `--drain-timeout` (30 s) | the remaining connections are closed |
//!
//! The head timeout runs from accept, and on a kept-alive HTTP/1.1 connection from the first
//! byte of the next request, to the end of the head: bytes trickling in one at a time do not
//! extend it. hyper's own `header_read_timeout` is not used, because it starts as soon as a
//! kept-alive connection goes idle and would close idle connections at the head timeout.
//! Instead each connection's phase (head, busy, idle) is tracked from its reads and its
//! requests, and the task driving the connection closes it at the phase's deadline.
//!
//! The cap counts every accepted socket until it closes, TLS handshakes included; past it the
//! listener keeps accepting and closes the new socket at once, so a flood never stops the
//! server from accepting once slots free up (the head timeout frees them).
//!
//! [`ConnectionMetrics`] counts what the public listener does, on `/metrics`:
//! `l2c_connections_open` and `l2c_connections_closed_total{reason}` with the reasons
//! `over_capacity`, `header_timeout`, `idle_timeout`, `send_stalled`, `tls_handshake` and
//! `drain_timeout`
//! (connections ending normally are not counted there).
//!
//! ```
//! use l2c_server::connections::derive_max_connections;
//!
//! // `ulimit -n 300`, a reserve of 64 descriptors for the pools, Redis and webhooks:
//! assert_eq!(derive_max_connections(Some(300), 64), 236);
//! // Never less than half the limit, never zero.
//! assert_eq!(derive_max_connections(Some(100), 80), 50);
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, StatusCode, Version, header};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt as _;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use l2c_core::Problem;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tower::Service;

use crate::config::ConnectionConfig;
use crate::error::problem_response;

/// The fewest file descriptors kept out of the connection cap.
pub const MIN_FD_RESERVE: u64 = 64;
/// The soft `RLIMIT_NOFILE` assumed where it cannot be read.
pub const FALLBACK_OPEN_FILES: u64 = 1024;
/// The largest derived cap (an unlimited `RLIMIT_NOFILE` is taken as this many).
pub const MAX_DERIVED_CONNECTIONS: u64 = 1 << 20;
/// Connections the metrics listener serves at once (a scraper or two).
pub const METRICS_MAX_CONNECTIONS: usize = 16;
/// How long an idle connection gets to close cleanly (HTTP/2 GOAWAY) before it is dropped.
const IDLE_CLOSE_GRACE: Duration = Duration::from_secs(1);
/// Pause after a failed `accept` (out of file descriptors and the like), instead of spinning.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// The soft `RLIMIT_NOFILE` of this process, read from `/proc/self/limits` (no `unsafe`
/// `getrlimit` call); `None` where that file does not exist. `unlimited` reads as
/// [`MAX_DERIVED_CONNECTIONS`].
pub fn open_files_soft_limit() -> Option<u64> {
    parse_open_files_limit(&std::fs::read_to_string("/proc/self/limits").ok()?)
}

fn parse_open_files_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    if soft == "unlimited" {
        return Some(MAX_DERIVED_CONNECTIONS);
    }
    soft.parse().ok()
}

/// The default `--max-connections`: the soft open-files limit (or [`FALLBACK_OPEN_FILES`])
/// minus `reserve` descriptors (at least [`MIN_FD_RESERVE`]) for the database pool, Redis,
/// webhook deliveries, listeners and files, but never less than half the limit, and at least 1.
pub fn derive_max_connections(soft_limit: Option<u64>, reserve: u64) -> usize {
    let limit = soft_limit
        .unwrap_or(FALLBACK_OPEN_FILES)
        .min(MAX_DERIVED_CONNECTIONS);
    let cap = limit
        .saturating_sub(reserve.max(MIN_FD_RESERVE))
        .max(limit / 2)
        .max(1);
    usize::try_from(cap).unwrap_or(usize::MAX)
}

/// Answers 408 `request_timeout` (and closes an HTTP/1.1 connection) when the request body has
/// not fully arrived `limit` after the request head, whichever extractor reads it; a handler
/// still working on a complete body is not cut. Requests without a body pass untouched.
pub async fn body_timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    if req.body().is_end_stream() {
        return next.run(req).await;
    }
    let finished = Arc::new(AtomicBool::new(false));
    let version = req.version();
    let watched = Arc::clone(&finished);
    let req = req.map(|inner| {
        Body::new(WatchedBody {
            inner,
            finished: watched,
        })
    });
    let response = next.run(req);
    let deadline = tokio::time::sleep(limit);
    tokio::pin!(response, deadline);
    tokio::select! {
        biased;
        res = &mut response => return res,
        () = &mut deadline => {}
    }
    if finished.load(Ordering::Acquire) {
        return response.await;
    }
    tracing::debug!("request body not received within the body timeout");
    let mut res = problem_response(
        Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "Request Timeout",
        )
        .with_detail(format!(
            "the request body did not arrive within {} ms",
            limit.as_millis()
        )),
    );
    if version < Version::HTTP_2 {
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    res
}

/// A request body that records when its last frame has been read.
struct WatchedBody {
    inner: Body,
    finished: Arc<AtomicBool>,
}

impl HttpBody for WatchedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        let done = match &polled {
            Poll::Ready(None) => true,
            Poll::Ready(Some(Ok(_))) => self.inner.is_end_stream(),
            Poll::Ready(Some(Err(_))) | Poll::Pending => false,
        };
        if done {
            self.finished.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// What a listener's connections did, rendered on `/metrics` (see the module docs).
#[derive(Debug, Default)]
pub struct ConnectionMetrics {
    open: AtomicU64,
    over_capacity: AtomicU64,
    header_timeout: AtomicU64,
    idle_timeout: AtomicU64,
    send_stalled: AtomicU64,
    tls_handshake: AtomicU64,
    drain_timeout: AtomicU64,
}

impl ConnectionMetrics {
    fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

impl Collector for ConnectionMetrics {
    /// `l2c_connections_open` and `l2c_connections_closed_total{reason}`, read at each scrape.
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
        let open = ConstGauge::new(i64::try_from(load(&self.open)).unwrap_or(i64::MAX));
        let metric = encoder.encode_descriptor(
            "l2c_connections_open",
            "Connections open on the public listener",
            None,
            open.metric_type(),
        )?;
        open.encode(metric)?;
        let mut family = encoder.encode_descriptor(
            "l2c_connections_closed",
            "Connections the server closed, by reason",
            None,
            MetricType::Counter,
        )?;
        for (reason, n) in [
            ("over_capacity", &self.over_capacity),
            ("header_timeout", &self.header_timeout),
            ("idle_timeout", &self.idle_timeout),
            ("send_stalled", &self.send_stalled),
            ("tls_handshake", &self.tls_handshake),
            ("drain_timeout", &self.drain_timeout),
        ] {
            let labels = [("reason", reason)];
            ConstCounter::new(load(n)).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// One open connection in [`ConnectionMetrics::open`], until dropped (aborted tasks too).
struct OpenGuard(Arc<ConnectionMetrics>);

impl OpenGuard {
    fn new(metrics: &Arc<ConnectionMetrics>) -> Self {
        metrics.open.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(metrics))
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A bound listener and what its connections are served with.
pub(crate) struct Endpoint {
    /// The listening socket.
    pub(crate) tcp: TcpListener,
    /// TLS termination, or plain HTTP.
    pub(crate) tls: Option<TlsAcceptor>,
    /// The application.
    pub(crate) router: Router,
    /// Most open connections.
    pub(crate) max_connections: usize,
    /// For the logs.
    pub(crate) name: &'static str,
    /// Where its connections are counted.
    pub(crate) metrics: Arc<ConnectionMetrics>,
    /// How long a response may go without the client taking a byte before the connection is
    /// closed (`--export-stall-timeout` on the public listener: only a report export is large
    /// enough to fill the socket buffers, so in practice this frees a stalled export's slot).
    pub(crate) send_stall_timeout: Duration,
}

struct Shared {
    builder: auto::Builder<TokioExecutor>,
    config: ConnectionConfig,
    metrics: Arc<ConnectionMetrics>,
    send_stall_timeout: Duration,
}

fn builder(config: &ConnectionConfig) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // The head and idle timeouts are the connection task's (see the module docs).
        .header_read_timeout(None::<Duration>)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(config.http2_max_concurrent_streams)
        .max_header_list_size(config.http2_max_header_list_size)
        .keep_alive_interval(config.http2_keep_alive_interval)
        .keep_alive_timeout(config.http2_keep_alive_timeout);
    builder
}

/// Accepts connections on `endpoint` until `shutdown` turns true (or its sender is dropped),
/// then lets the open connections finish for up to the drain timeout and closes the rest.
pub(crate) async fn serve(
    endpoint: Endpoint,
    config: ConnectionConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let shared = Arc::new(Shared {
        builder: builder(&config),
        config,
        metrics: endpoint.metrics,
        send_stall_timeout: endpoint.send_stall_timeout,
    });
    let cap = Arc::new(Semaphore::new(endpoint.max_connections));
    let mut tasks = JoinSet::new();
    let name = endpoint.name;
    loop {
        tokio::select! {
            accepted = endpoint.tcp.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Ok(permit) = Arc::clone(&cap).try_acquire_owned() else {
                        ConnectionMetrics::count(&shared.metrics.over_capacity);
                        tracing::debug!(%peer, listener = name, "connection cap reached: closing the new connection");
                        drop(stream);
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    tasks.spawn(connection(
                        stream,
                        peer,
                        permit,
                        endpoint.tls.clone(),
                        endpoint.router.clone(),
                        Arc::clone(&shared),
                        shutdown.clone(),
                    ));
                }
                Err(e) => {
                    tracing::warn!(listener = name, error = %e, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    drop(endpoint.tcp);
    let drain = tokio::time::timeout(shared.config.drain_timeout, async {
        while tasks.join_next().await.is_some() {}
    });
    if drain.await.is_err() {
        tracing::warn!(
            listener = name,
            connections = tasks.len(),
            "drain timeout reached: closing the remaining connections"
        );
        let cut = u64::try_from(tasks.len()).unwrap_or(u64::MAX);
        shared
            .metrics
            .drain_timeout
            .fetch_add(cut, Ordering::Relaxed);
        tasks.shutdown().await;
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    permit: OwnedSemaphorePermit,
    tls: Option<TlsAcceptor>,
    router: Router,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) {
    let _open = (permit, OpenGuard::new(&shared.metrics));
    let Some(acceptor) = tls else {
        return serve_io(stream, peer, router, &shared, shutdown).await;
    };
    let handshake = acceptor.accept(stream);
    match tokio::time::timeout(shared.config.tls_handshake_timeout, handshake).await {
        Ok(Ok(stream)) => serve_io(stream, peer, router, &shared, shutdown).await,
        Ok(Err(e)) => {
            ConnectionMetrics::count(&shared.metrics.tls_handshake);
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
        }
        Err(_) => {
            ConnectionMetrics::count(&shared.metrics.tls_handshake);
            tracing::debug!(%peer, "TLS handshake timed out");
        }
    }
}

/// Serves one connection, closing it at the deadline of its phase.
async fn serve_io<S>(
    io: S,
    peer: SocketAddr,
    router: Router,
    shared: &Shared,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Activity::new(&shared.config, shared.send_stall_timeout);
    let io = TokioIo::new(TrackedIo {
        inner: io,
        activity: Arc::clone(&activity),
    });
    let service = TowerToHyperService::new(ConnService {
        router,
        peer,
        activity: Arc::clone(&activity),
    });
    let conn = shared.builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut draining = *shutdown.borrow_and_update();
    if draining {
        conn.as_mut().graceful_shutdown();
    }
    // Set once the connection is being closed for idleness: dropped at this instant.
    let mut hard_stop: Option<Instant> = None;
    loop {
        let deadline = hard_stop.or_else(|| activity.deadline());
        let changed = activity.changed.notified();
        tokio::select! {
            biased;
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection closed with an error");
                }
                return;
            }
            () = sleep_until(deadline) => {
                let now = Instant::now();
                if hard_stop.is_some() {
                    return;
                }
                match activity.expired(now) {
                    Some(Phase::Head { .. }) => {
                        ConnectionMetrics::count(&shared.metrics.header_timeout);
                        tracing::debug!(%peer, "request head not received in time: closing");
                        return;
                    }
                    Some(Phase::Busy { .. }) => {
                        // The client stopped reading: nothing more can be sent, not even a
                        // GOAWAY.
                        ConnectionMetrics::count(&shared.metrics.send_stalled);
                        tracing::debug!(%peer, "response not read by the client in time: closing");
                        return;
                    }
                    Some(Phase::Idle { .. }) => {
                        ConnectionMetrics::count(&shared.metrics.idle_timeout);
                        conn.as_mut().graceful_shutdown();
                        hard_stop = Some(now + IDLE_CLOSE_GRACE);
                    }
                    None => {}
                }
            }
            () = changed => {}
            _ = shutdown.changed(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Where a connection is, and until when it may stay there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for (the rest of) a request head.
    Head { deadline: Instant },
    /// Requests in flight: no deadline here (the body timeout bounds uploads), unless the
    /// client has stopped accepting response bytes since `stalled`.
    Busy {
        requests: usize,
        stalled: Option<Instant>,
    },
    /// No request in flight.
    Idle { deadline: Instant },
}

/// The phase of one connection, updated by its reads and its requests.
#[derive(Debug)]
struct Activity {
    phase: Mutex<Phase>,
    /// Whether the connection speaks HTTP/2, whose reads (pings, window updates) say nothing
    /// about a request head.
    http2: AtomicBool,
    /// Whether a write is blocked (the `Busy` phase has `stalled` set): the fast path of writes.
    write_blocked: AtomicBool,
    changed: Notify,
    header_read_timeout: Duration,
    idle_timeout: Duration,
    send_stall_timeout: Duration,
}

impl Activity {
    fn new(config: &ConnectionConfig, send_stall_timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            phase: Mutex::new(Phase::Head {
                deadline: Instant::now() + config.header_read_timeout,
            }),
            http2: AtomicBool::new(false),
            write_blocked: AtomicBool::new(false),
            changed: Notify::new(),
            header_read_timeout: config.header_read_timeout,
            idle_timeout: config.idle_timeout,
            send_stall_timeout,
        })
    }

    fn phase(&self) -> MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, mut phase: MutexGuard<'_, Phase>, next: Phase) {
        *phase = next;
        drop(phase);
        self.changed.notify_one();
    }

    fn deadline(&self) -> Option<Instant> {
        match *self.phase() {
            Phase::Head { deadline } | Phase::Idle { deadline } => Some(deadline),
            Phase::Busy { stalled, .. } => stalled.map(|since| since + self.send_stall_timeout),
        }
    }

    /// The phase whose deadline has passed, if any.
    fn expired(&self, now: Instant) -> Option<Phase> {
        let phase = *self.phase();
        match phase {
            Phase::Head { deadline } | Phase::Idle { deadline } if deadline <= now => Some(phase),
            Phase::Busy {
                stalled: Some(since),
                ..
            } if since + self.send_stall_timeout <= now => Some(phase),
            _ => None,
        }
    }

    /// A write could not proceed: while busy, the response stalls from now on (unless it
    /// already did).
    fn write_blocked(&self) {
        if self.write_blocked.load(Ordering::Relaxed) {
            return;
        }
        let phase = self.phase();
        if let Phase::Busy {
            requests,
            stalled: None,
        } = *phase
        {
            self.write_blocked.store(true, Ordering::Relaxed);
            let stalled = Some(Instant::now());
            self.set(phase, Phase::Busy { requests, stalled });
        }
    }

    /// A write went through: the client reads again.
    fn write_progressed(&self) {
        if !self.write_blocked.load(Ordering::Relaxed) {
            return;
        }
        let mut phase = self.phase();
        self.write_blocked.store(false, Ordering::Relaxed);
        if let Phase::Busy { stalled, .. } = &mut *phase {
            // A later deadline: the connection task finds it when the old one fires.
            *stalled = None;
        }
    }

    /// Bytes arrived: on an idle HTTP/1.1 connection, the next request head has started.
    fn bytes_read(&self) {
        if self.http2.load(Ordering::Relaxed) {
            return;
        }
        let phase = self.phase();
        if matches!(*phase, Phase::Idle { .. }) {
            let deadline = Instant::now() + self.header_read_timeout;
            self.set(phase, Phase::Head { deadline });
        }
    }

    /// A request head was parsed; the connection is busy until the guard is dropped.
    fn request_started(self: &Arc<Self>, version: Version) -> RequestGuard {
        if version == Version::HTTP_2 {
            self.http2.store(true, Ordering::Relaxed);
        }
        let phase = self.phase();
        let next = match *phase {
            Phase::Busy { requests, stalled } => Phase::Busy {
                requests: requests + 1,
                stalled,
            },
            Phase::Head { .. } | Phase::Idle { .. } => Phase::Busy {
                requests: 1,
                stalled: None,
            },
        };
        self.set(phase, next);
        RequestGuard(Arc::clone(self))
    }

    fn request_finished(&self) {
        let phase = self.phase();
        let next = match *phase {
            Phase::Busy { requests, stalled } if requests > 1 => Phase::Busy {
                requests: requests - 1,
                stalled,
            },
            _ => {
                self.write_blocked.store(false, Ordering::Relaxed);
                Phase::Idle {
                    deadline: Instant::now() + self.idle_timeout,
                }
            }
        };
        self.set(phase, next);
    }
}

/// Held from a request's head until its response body is done (or dropped).
struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// The connection's socket, reporting reads and blocked writes to its [`Activity`].
struct TrackedIo<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for TrackedIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_read();
        }
        polled
    }
}

impl<S> TrackedIo<S> {
    fn wrote(&self, polled: &Poll<io::Result<usize>>) {
        match polled {
            Poll::Pending => self.activity.write_blocked(),
            Poll::Ready(Ok(n)) if *n > 0 => self.activity.write_progressed(),
            Poll::Ready(_) => {}
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TrackedIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.wrote(&polled);
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.wrote(&polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The application as one connection sees it: the peer address as
/// [`ConnectInfo<SocketAddr>`] (the per-peer limits read it) and every request counted in the
/// connection's [`Activity`] until its response body is done.
#[derive(Clone)]
struct ConnService {
    router: Router,
    peer: SocketAddr,
    activity: Arc<Activity>,
}

impl<B> Service<http::Request<B>> for ConnService
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        req.extensions_mut().insert(ConnectInfo(self.peer));
        let guard = self.activity.request_started(req.version());
        let response = self.router.call(req);
        Box::pin(async move {
            let res = response.await?;
            Ok(res.map(|body| {
                Body::new(body.map_frame(move |frame| {
                    let _in_flight = &guard;
                    frame
                }))
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_open_files_limit_is_read_from_proc_limits() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max cpu time              unlimited            unlimited            seconds   \n\
                      Max open files            300                  524288               files     \n";
        assert_eq!(parse_open_files_limit(limits), Some(300));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(
            parse_open_files_limit(unlimited),
            Some(MAX_DERIVED_CONNECTIONS)
        );
        assert_eq!(parse_open_files_limit("Max processes 10 10\n"), None);
        if cfg!(target_os = "linux") {
            assert!(open_files_soft_limit().is_some_and(|n| n > 0));
        }
    }

    #[test]
    fn the_derived_cap_leaves_a_reserve() {
        assert_eq!(derive_max_connections(Some(1024), 40), 960);
        assert_eq!(derive_max_connections(Some(1024), 200), 824);
        assert_eq!(derive_max_connections(Some(300), 64), 236);
        assert_eq!(derive_max_connections(Some(64), 64), 32);
        assert_eq!(derive_max_connections(Some(1), 64), 1);
        assert_eq!(derive_max_connections(None, 64), 960);
        assert_eq!(
            derive_max_connections(Some(u64::MAX), 64),
            usize::try_from(MAX_DERIVED_CONNECTIONS - 64).unwrap()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn phases_follow_reads_and_requests() {
        let config = ConnectionConfig {
            header_read_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(5),
            ..ConnectionConfig::default()
        };
        let start = Instant::now();
        let a = Activity::new(&config, Duration::from_secs(5));
        assert_eq!(a.deadline(), Some(start + Duration::from_secs(2)));
        // Bytes of the first head do not extend its deadline.
        tokio::time::advance(Duration::from_secs(1)).await;
        a.bytes_read();
        assert_eq!(a.deadline(), Some(start + Duration::from_secs(2)));
        let first = a.request_started(Version::HTTP_11);
        let second = a.request_started(Version::HTTP_11);
        assert_eq!(a.deadline(), None);
        drop(first);
        assert_eq!(a.deadline(), None, "one request still in flight");
        tokio::time::advance(Duration::from_secs(10)).await;
        drop(second);
        let idle_since = Instant::now();
        assert_eq!(a.deadline(), Some(idle_since + Duration::from_secs(5)));
        assert_eq!(a.expired(idle_since), None);
        // The next request's first byte starts its head timeout.
        tokio::time::advance(Duration::from_secs(1)).await;
        a.bytes_read();
        let head = Instant::now() + Duration::from_secs(2);
        assert_eq!(a.deadline(), Some(head));
        assert!(matches!(a.expired(head), Some(Phase::Head { .. })));

        // A response the client stops reading: the idle timeout runs from the blocked write,
        // and a write that goes through stops it.
        let busy = a.request_started(Version::HTTP_11);
        assert_eq!(a.deadline(), None);
        a.write_blocked();
        let stalled = Instant::now() + Duration::from_secs(5);
        assert_eq!(a.deadline(), Some(stalled));
        tokio::time::advance(Duration::from_secs(1)).await;
        a.write_blocked();
        assert_eq!(
            a.deadline(),
            Some(stalled),
            "a second block does not extend it"
        );
        assert!(matches!(a.expired(stalled), Some(Phase::Busy { .. })));
        a.write_progressed();
        assert_eq!(a.deadline(), None);
        drop(busy);

        // HTTP/2: reads on an idle connection are pings and window updates, not a head.
        let h2 = Activity::new(&config, Duration::from_secs(5));
        drop(h2.request_started(Version::HTTP_2));
        let idle = h2.deadline().unwrap();
        h2.bytes_read();
        assert_eq!(h2.deadline(), Some(idle));
        assert!(matches!(h2.expired(idle), Some(Phase::Idle { .. })));
    }
}
