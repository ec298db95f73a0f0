//! [`ResponseFuture`] of [`ConcurrencyCap`](super::ConcurrencyCap).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::Response;
use pin_project_lite::pin_project;

use super::{Permit, PermitBody};
use crate::limits::response::LimitHeaders;

type BoxFuture<B, E> = Pin<Box<dyn Future<Output = Result<Response<PermitBody<B>>, E>> + Send>>;

pin_project! {
    /// Response future of [`ConcurrencyCap`](super::ConcurrencyCap). Dropping it before the
    /// response is ready frees the slot.
    pub struct ResponseFuture<F, B, E> {
        #[pin]
        kind: Kind<F, B, E>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B, E> {
        Inner { #[pin] fut: F, permit: Option<Permit>, headers: Option<LimitHeaders> },
        Ready { res: Option<Response<PermitBody<B>>> },
        Boxed { fut: BoxFuture<B, E> },
    }
}

impl<F, B, E> ResponseFuture<F, B, E> {
    pub(crate) fn inner(fut: F, permit: Option<Permit>, headers: Option<LimitHeaders>) -> Self {
        Self {
            kind: Kind::Inner {
                fut,
                permit,
                headers,
            },
        }
    }

    pub(crate) fn ready(res: Response<PermitBody<B>>) -> Self {
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

/// Moves the permit into the response body and adds the headers.
pub(crate) fn finish<B>(
    res: Response<B>,
    permit: Option<Permit>,
    headers: Option<LimitHeaders>,
) -> Response<PermitBody<B>> {
    let mut res = res.map(|body| match permit {
        Some(permit) => PermitBody::new(body, permit),
        None => PermitBody::without_permit(body),
    });
    if let Some(headers) = headers {
        headers.apply(res.headers_mut());
    }
    res
}

impl<F, B, E> Future for ResponseFuture<F, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<PermitBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner {
                fut,
                permit,
                headers,
            } => {
                // On an inner error the permit stays here and is freed with the future.
                let res = ready!(fut.poll(cx))?;
                Poll::Ready(Ok(finish(res, permit.take(), headers.take())))
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
            Kind::Boxed { .. } => "acquiring",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}
