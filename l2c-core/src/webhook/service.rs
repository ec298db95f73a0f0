use std::error::Error as StdError;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, header};
use http_body::Body;
use http_body_util::{BodyExt as _, Limited};
use tower_service::Service;

use super::future::ResponseFuture;
use super::{Verifier, VerifyError};

/// The service made by [`VerifyWebhookLayer`](super::VerifyWebhookLayer).
///
/// For each request it:
///
/// 1. refuses a declared `Content-Length` above the verifier's body cap (413) and otherwise
///    buffers the body, stopping at the cap (413);
/// 2. verifies the raw bytes with the [`Verifier`]; a failure is answered with problem+json
///    (400 malformed, 401 signature or freshness, 413 size) and the [`VerifyError`] in the
///    response extensions, and the inner service is not called;
/// 3. calls the inner service with the verified [`WebhookEvent`](crate::api::events::WebhookEvent)
///    and [`Scheme`](super::Scheme) in the request extensions and the body rebuilt from the
///    **same bytes**, unchanged, so the handler can still read or store the raw payload.
///
/// With de-duplication on, a repeated event id is not passed on: while the first delivery is
/// still being handled the answer is 409 (the sender retries later); once the inner service has
/// answered it with a 2xx, a repeat is acknowledged with `200 {"duplicate":true}` so the
/// sender stops retrying. If the inner service fails (non-2xx, error, or the request is
/// dropped), the id is forgotten so the sender's retry is handled again.
#[derive(Debug, Clone)]
pub struct VerifyWebhook<S> {
    inner: S,
    verifier: Arc<Verifier>,
}

impl<S> VerifyWebhook<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, verifier: Arc<Verifier>) -> Self {
        Self { inner, verifier }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for VerifyWebhook<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    ReqBody: Body + From<Bytes>,
    ReqBody::Error: Into<Box<dyn StdError + Send + Sync>>,
    ResBody: From<Bytes>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let limit = self.verifier.body_limit();
        let (parts, body) = req.into_parts();
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            let error = VerifyError::BodyTooLarge { limit };
            return ResponseFuture::respond(super::future::reject(&error, &parts.extensions));
        }
        // The ready service goes into the future; a fresh clone stays for the next call.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::collecting(
            Limited::new(body, limit).collect(),
            parts,
            inner,
            Arc::clone(&self.verifier),
        )
    }
}
