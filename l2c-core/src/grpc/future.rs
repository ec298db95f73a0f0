use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};
use pin_project_lite::pin_project;

use super::{code_for, percent_encode};
use crate::problem::CONTENT_TYPE as PROBLEM_JSON;

pin_project! {
    /// The future of [`GrpcRefusal`](super::GrpcRefusal).
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        pub(super) inner: F,
        pub(super) grpc: bool,
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Default,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let res = ready!(this.inner.poll(cx))?;
        Poll::Ready(Ok(if *this.grpc && is_problem(&res) {
            to_grpc(res)
        } else {
            res
        }))
    }
}

fn is_problem<B>(res: &Response<B>) -> bool {
    res.headers()
        .get(CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().eq_ignore_ascii_case(PROBLEM_JSON.as_bytes()))
}

/// A Trailers-Only gRPC response for a problem response: the status and message in the
/// headers, no body.
pub(super) fn to_grpc<B: Default>(res: Response<B>) -> Response<B> {
    let status = res.status();
    let retry_after = res.headers().get(RETRY_AFTER).cloned();
    let mut message = status.canonical_reason().unwrap_or("Refused").to_owned();
    if let Some(secs) = retry_after.as_ref().and_then(|v| v.to_str().ok()) {
        message.push_str(&format!("; retry after {secs} s"));
    }
    let mut out = Response::new(B::default());
    *out.status_mut() = StatusCode::OK;
    let headers = out.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert(
        "grpc-status",
        HeaderValue::from_static(code_for(status).as_str()),
    );
    if let Ok(v) = HeaderValue::from_str(&percent_encode(&message)) {
        headers.insert("grpc-message", v);
    }
    if let Some(v) = retry_after {
        headers.insert(RETRY_AFTER, v);
    }
    for (name, value) in res.headers() {
        if name == WWW_AUTHENTICATE || name.as_str().starts_with("ratelimit") {
            headers.append(name.clone(), value.clone());
        }
    }
    *out.extensions_mut() = res.into_parts().0.extensions;
    out
}
