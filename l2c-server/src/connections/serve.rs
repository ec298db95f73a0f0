//! The accept loops and the task that drives each connection.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::Response;
use bytes::Bytes;
use http_body::Body as HttpBody;
use http_body_util::BodyExt as _;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tower::Service;

use crate::config::ConnectionConfig;

use super::{activity::*, metrics::*};

/// How long an idle connection gets to close cleanly (HTTP/2 GOAWAY) before it is dropped.
pub(super) const IDLE_CLOSE_GRACE: Duration = Duration::from_secs(1);
/// Pause after a failed `accept` (out of file descriptors and the like), instead of spinning.
pub(super) const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

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

pub(super) struct Shared {
    builder: auto::Builder<TokioExecutor>,
    config: ConnectionConfig,
    metrics: Arc<ConnectionMetrics>,
    send_stall_timeout: Duration,
}

pub(super) fn builder(config: &ConnectionConfig) -> auto::Builder<TokioExecutor> {
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

pub(super) async fn connection(
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
pub(super) async fn serve_io<S>(
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

pub(super) async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The application as one connection sees it: the peer address as
/// [`ConnectInfo<SocketAddr>`] (the per-peer limits read it) and every request counted in the
/// connection's [`Activity`] until its response body is done.
#[derive(Clone)]
pub(super) struct ConnService {
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
