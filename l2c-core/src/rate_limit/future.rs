//! [`ResponseFuture`] of [`KeyedRateLimit`](super::KeyedRateLimit).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::Response;
use pin_project_lite::pin_project;

use crate::limits::response::LimitHeaders;

type BoxFuture<B, E> = Pin<Box<dyn Future<Output = Result<Response<B>, E>> + Send>>;

pin_project! {
    /// Response future of [`KeyedRateLimit`](super::KeyedRateLimit).
    pub struct ResponseFuture<F, B, E> {
        #[pin]
        kind: Kind<F, B, E>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B, E> {
        // Allowed (or not limited): the inner service's future, headers added on the way out.
        Inner { #[pin] fut: F, headers: Option<LimitHeaders> },
        // Rejected without calling the inner service.
        Ready { res: Option<Response<B>> },
        // A store that needs I/O (Redis): check and call in one boxed future.
        Boxed { fut: BoxFuture<B, E> },
    }
}

impl<F, B, E> ResponseFuture<F, B, E> {
    pub(crate) fn inner(fut: F, headers: Option<LimitHeaders>) -> Self {
        Self {
            kind: Kind::Inner { fut, headers },
        }
    }

    pub(crate) fn ready(res: Response<B>) -> Self {
        Self {
            kind: Kind::Ready { res: Some(res) },
        }
    }

    pub(crate) fn boxed(fut: BoxFuture<B, E>) -> Self {
        Self {
            kind: Kind::Boxed { fut },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { fut, headers } => {
                let mut res = ready!(fut.poll(cx))?;
                if let Some(headers) = headers.take() {
                    headers.apply(res.headers_mut());
                }
                Poll::Ready(Ok(res))
            }
            KindProj::Ready { res } => {
                Poll::Ready(Ok(res.take().expect("future polled after completion")))
            }
            KindProj::Boxed { fut } => fut.as_mut().poll(cx),
        }
    }
}

impl<F, B, E> fmt::Debug for ResponseFuture<F, B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.kind {
            Kind::Inner { .. } => "inner",
            Kind::Ready { .. } => "rejected",
            Kind::Boxed { .. } => "checking",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}
