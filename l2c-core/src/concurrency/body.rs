//! [`PermitBody`]: a response body that holds a concurrency slot until it is done.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::Permit;

pin_project! {
    /// A response body holding a concurrency [`Permit`]: the slot is freed when the body ends,
    /// fails, or is dropped (the client went away).
    #[derive(Debug)]
    pub struct PermitBody<B> {
        #[pin]
        inner: B,
        permit: Option<Permit>,
    }
}

impl<B> PermitBody<B> {
    /// A body holding `permit`.
    pub fn new(inner: B, permit: Permit) -> Self {
        Self {
            inner,
            permit: Some(permit),
        }
    }

    /// A body holding no permit (rejections, requests without a key, fail-open).
    pub fn without_permit(inner: B) -> Self {
        Self {
            inner,
            permit: None,
        }
    }

    /// Whether the body still holds its slot.
    pub fn holds_permit(&self) -> bool {
        self.permit.is_some()
    }
}

impl<B: Body> Body for PermitBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        match &frame {
            Some(Ok(_)) => {}
            // The end, or an error (after which nothing more is read): free the slot now.
            None | Some(Err(_)) => drop(this.permit.take()),
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
