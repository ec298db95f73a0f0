//! Each connection's phase (head, busy, idle), tracked from its reads and requests.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use http::Version;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::config::ConnectionConfig;

/// Where a connection is, and until when it may stay there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
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
pub(super) struct Activity {
    phase: Mutex<Phase>,
    /// Whether the connection speaks HTTP/2, whose reads (pings, window updates) say nothing
    /// about a request head.
    http2: AtomicBool,
    /// Whether a write is blocked (the `Busy` phase has `stalled` set): the fast path of writes.
    write_blocked: AtomicBool,
    pub(super) changed: Notify,
    header_read_timeout: Duration,
    idle_timeout: Duration,
    send_stall_timeout: Duration,
}

impl Activity {
    pub(super) fn new(config: &ConnectionConfig, send_stall_timeout: Duration) -> Arc<Self> {
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

    pub(super) fn deadline(&self) -> Option<Instant> {
        match *self.phase() {
            Phase::Head { deadline } | Phase::Idle { deadline } => Some(deadline),
            Phase::Busy { stalled, .. } => stalled.map(|since| since + self.send_stall_timeout),
        }
    }

    /// The phase whose deadline has passed, if any.
    pub(super) fn expired(&self, now: Instant) -> Option<Phase> {
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
    pub(super) fn write_blocked(&self) {
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
    pub(super) fn write_progressed(&self) {
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
    pub(super) fn bytes_read(&self) {
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
    pub(super) fn request_started(self: &Arc<Self>, version: Version) -> RequestGuard {
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
pub(super) struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// The connection's socket, reporting reads and blocked writes to its [`Activity`].
pub(super) struct TrackedIo<S> {
    pub(super) inner: S,
    pub(super) activity: Arc<Activity>,
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
