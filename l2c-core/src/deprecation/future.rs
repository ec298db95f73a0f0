use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::{HeaderName, Response, header};
use pin_project_lite::pin_project;

use super::Deprecation;

const DEPRECATION: HeaderName = HeaderName::from_static("deprecation");
const SUNSET: HeaderName = HeaderName::from_static("sunset");

pin_project! {
    /// The response future of [`Deprecated`](super::Deprecated).
    pub struct ResponseFuture<F, B> {
        #[pin]
        kind: Kind<F, B>,
        config: Arc<Deprecation>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B> {
        Inner { #[pin] future: F },
        Gone { response: Option<Response<B>> },
    }
}

impl<F, B> std::fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, B> ResponseFuture<F, B> {
    pub(super) fn inner(future: F, config: Arc<Deprecation>) -> Self {
        Self {
            kind: Kind::Inner { future },
            config,
        }
    }

    pub(super) fn gone(response: Response<B>, config: Arc<Deprecation>) -> Self {
        Self {
            kind: Kind::Gone {
                response: Some(response),
            },
            config,
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: From<bytes::Bytes>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = match this.kind.project() {
            KindProj::Inner { future } => ready!(future.poll(cx))?,
            KindProj::Gone { response } => match response.take() {
                Some(response) => response,
                // Polled after completion: answer again rather than panic.
                None => crate::problem::Problem::internal().into_response(),
            },
        };
        let headers = response.headers_mut();
        headers.insert(DEPRECATION, this.config.deprecation_value.clone());
        headers.insert(SUNSET, this.config.sunset_value.clone());
        for link in &this.config.links {
            headers.append(header::LINK, link.clone());
        }
        Poll::Ready(Ok(response))
    }
}
