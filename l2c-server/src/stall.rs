//! Cutting connections whose peer stopped reading (`--export-stall-timeout`).
//!
//! A response body cannot notice on its own that its reader went quiet: once the socket's send
//! buffer and hyper's write buffer are full, hyper stops polling the body altogether and waits
//! for the socket to become writable, which it never does while the peer reads nothing. The
//! connection, and whatever the body holds (a report export's per-client slot), would stay
//! until the peer goes away.
//!
//! So the watch sits on the connection itself: [`StallCutListener`] wraps every accepted stream
//! in a [`StallCutIo`], which starts a timer when a write (or flush) cannot proceed and fails
//! the write with [`io::ErrorKind::TimedOut`] when no byte has been accepted for the whole
//! timeout. hyper then closes the connection and drops the response body, which releases what
//! it holds. Any write that makes progress disarms the timer.
//!
//! A response only waits on the socket when it is larger than the socket buffers and its reader
//! is not taking it, so in practice only report exports are ever cut; an idle keep-alive
//! connection writes nothing and is left alone.
//!
//! HTTP/2 is covered when the peer stops reading the connection; a peer that keeps reading it
//! but leaves one stream's flow-control window shut is not (the socket never blocks, and hyper
//! offers no way to reset that stream from outside). Such a stream holds its client's export
//! slot until the connection closes, but nothing else: the export's reading task stops after
//! the stall timeout and holds no database connection while it waits.
//!
//! ```
//! use std::time::Duration;
//! use axum::serve::ListenerExt;
//! use l2c_server::stall::StallCutListener;
//!
//! # async fn demo() -> std::io::Result<()> {
//! let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let listener = StallCutListener::new(tcp, Duration::from_secs(30)).tap_io(|io| {
//!     let _ = io.get_ref().set_nodelay(true);
//! });
//! # let _ = listener; Ok(()) }
//! ```

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::serve::Listener;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// A [`Listener`] whose connections are cut when a write makes no progress for `timeout`.
#[derive(Debug)]
pub struct StallCutListener<L> {
    inner: L,
    timeout: Duration,
}

impl<L> StallCutListener<L> {
    /// Wraps `inner`, cutting its connections after `timeout` without write progress.
    pub fn new(inner: L, timeout: Duration) -> Self {
        Self { inner, timeout }
    }
}

impl<L: Listener> Listener for StallCutListener<L> {
    type Io = StallCutIo<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = self.inner.accept().await;
        (StallCutIo::new(io, self.timeout), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A stream whose writes fail with [`io::ErrorKind::TimedOut`] once they have been blocked,
/// without a single byte accepted, for the timeout.
#[derive(Debug)]
pub struct StallCutIo<T> {
    inner: T,
    timeout: Duration,
    /// Created on the first blocked write and reused; `armed` says whether it is running.
    timer: Option<Pin<Box<Sleep>>>,
    armed: bool,
}

impl<T> StallCutIo<T> {
    /// Wraps `inner`.
    pub fn new(inner: T, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            timer: None,
            armed: false,
        }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The wrapped stream, mutably.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// Called after the inner write returned `Pending`: arms the timer if it is not running and
    /// fails once it has run out.
    fn poll_stall<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        let deadline = Instant::now() + self.timeout;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !self.armed {
            timer.as_mut().reset(deadline);
            self.armed = true;
        }
        ready!(timer.as_mut().poll(cx));
        self.armed = false;
        tracing::info!(
            timeout_ms = u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
            "peer took no response bytes within the stall timeout; closing the connection"
        );
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the peer took no response bytes within the stall timeout",
        )))
    }

    /// Passes a write result through, disarming the timer on progress and running it while
    /// the write is blocked.
    fn watch<R>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<R>>,
        progressed: impl FnOnce(&R) -> bool,
    ) -> Poll<io::Result<R>> {
        match polled {
            Poll::Pending => self.poll_stall(cx),
            Poll::Ready(Ok(r)) => {
                if progressed(&r) {
                    self.armed = false;
                }
                Poll::Ready(Ok(r))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for StallCutIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for StallCutIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.watch(cx, polled, |n| *n > 0)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.watch(cx, polled, |n| *n > 0)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        this.watch(cx, polled, |()| true)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.watch(cx, polled, |()| true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A write blocked on a full pipe fails after the timeout; one the peer drains does not.
    #[tokio::test(start_paused = true)]
    async fn a_blocked_write_times_out_and_progress_disarms() {
        let (a, mut b) = tokio::io::duplex(64);
        let mut io = StallCutIo::new(a, Duration::from_secs(30));
        // Fill the pipe, then let 20 s pass with the reader draining a little: no cut.
        io.write_all(&[1; 64]).await.unwrap();
        let write = async {
            io.write_all(&[2; 128]).await.unwrap();
            io
        };
        let read = async {
            let mut buf = [0; 64];
            for _ in 0..3 {
                tokio::time::sleep(Duration::from_secs(20)).await;
                b.read_exact(&mut buf).await.unwrap();
            }
            b
        };
        let (mut io, b) = tokio::join!(write, read);
        // Now nobody reads: the next write that blocks fails after 30 s, not before.
        let started = Instant::now();
        let err = io.write_all(&[3; 128]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(30) && waited < Duration::from_secs(31),
            "{waited:?}"
        );
        drop(b);
    }
}
