//! The request body timeout: 408 `request_timeout` when a body does not arrive in time.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, StatusCode, Version, header};
use http_body::{Body as HttpBody, Frame, SizeHint};
use l2c_core::Problem;

use crate::error::problem_response;

/// Answers 408 `request_timeout` (and closes an HTTP/1.1 connection) when the request body has
/// not fully arrived `limit` after the request head, whichever extractor reads it; a handler
/// still working on a complete body is not cut. Requests without a body pass untouched.
pub async fn body_timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match watch(req) {
        (req, None) => next.run(req).await,
        (req, Some(finished)) => {
            let version = req.version();
            within(limit, finished, version, next.run(req)).await
        }
    }
}

/// [`body_timeout`] as an [`Around`](crate::inplace::Around) middleware, which [`crate::app`]
/// runs without cloning the route it wraps.
#[derive(Debug, Clone, Copy)]
pub struct BodyTimeout(pub Duration);

impl crate::inplace::Around for BodyTimeout {
    fn around<S: crate::inplace::Route>(
        &self,
        inner: &mut S,
        req: Request,
    ) -> crate::inplace::InPlaceFuture {
        let limit = self.0;
        match watch(req) {
            (req, None) => {
                let answer = crate::inplace::call(inner, req);
                Box::pin(async move { Ok(answer.await) })
            }
            (req, Some(finished)) => {
                let version = req.version();
                let answer = crate::inplace::call(inner, req);
                Box::pin(async move { Ok(within(limit, finished, version, answer).await) })
            }
        }
    }
}

/// `req` with its body watched, and the flag its last frame sets; no flag for a request
/// without a body.
fn watch(req: Request) -> (Request, Option<Arc<AtomicBool>>) {
    if req.body().is_end_stream() {
        return (req, None);
    }
    let finished = Arc::new(AtomicBool::new(false));
    let watched = Arc::clone(&finished);
    let req = req.map(|inner| {
        Body::new(WatchedBody {
            inner,
            finished: watched,
        })
    });
    (req, Some(finished))
}

/// `response`, or 408 when `limit` passes before the body was read to its end (`finished`).
async fn within(
    limit: Duration,
    finished: Arc<AtomicBool>,
    version: Version,
    response: impl std::future::Future<Output = Response>,
) -> Response {
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
pub(super) struct WatchedBody {
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
