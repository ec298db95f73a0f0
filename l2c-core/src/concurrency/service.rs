//! [`ConcurrencyCap`]: the service made by [`ConcurrencyCapLayer`](super::ConcurrencyCapLayer).

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Extensions, Request, Response};
use tower_service::Service;

use super::future::ResponseFuture;
use super::layer::{Shared, state_value};
use super::{Acquire, PermitBody};
use crate::limits::response::LimitHeaders;
use crate::limits::{Decided, StoreError};

/// Caps the requests in flight to `S` per partition key; the slot lives in the response body.
#[derive(Debug, Clone)]
pub struct ConcurrencyCap<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> ConcurrencyCap<S> {
    pub(crate) fn new(inner: S, shared: Arc<Shared>) -> Self {
        Self { inner, shared }
    }

    /// Requests let through so far because the store failed (shared with the layer).
    pub fn fail_open_total(&self) -> u64 {
        self.shared.limits.fail_open.get()
    }
}

pub(crate) enum Outcome<B> {
    Pass(Option<super::Permit>, Option<LimitHeaders>),
    Reject(Response<PermitBody<B>>),
}

impl Shared {
    /// The cap's headers with `free` slots left; the values are built once per layer.
    fn headers(&self, free: u32) -> LimitHeaders {
        let state = usize::try_from(free)
            .ok()
            .and_then(|i| self.states.get(i))
            .cloned()
            .unwrap_or_else(|| state_value(&self.limits.policy, free));
        LimitHeaders {
            policy: self.policy_header.clone(),
            state,
        }
    }

    pub(crate) fn outcome<B: From<Bytes>>(
        &self,
        result: Result<Acquire, StoreError>,
        extensions: &Extensions,
    ) -> Outcome<B> {
        match result {
            Ok(Acquire::Granted { permit, available }) => {
                self.limits.decided(Decided::Allowed);
                Outcome::Pass(Some(permit), Some(self.headers(available)))
            }
            Ok(Acquire::Full) => {
                self.limits.decided(Decided::Rejected);
                let res = self.rejection.response::<B>(extensions, 1);
                let mut res = res.map(PermitBody::without_permit);
                self.headers(0).apply(res.headers_mut());
                Outcome::Reject(res)
            }
            Err(error) => match self.limits.store_failed::<B>(&error, extensions) {
                Some(res) => Outcome::Reject(res.map(PermitBody::without_permit)),
                None => Outcome::Pass(None, None),
            },
        }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ConcurrencyCap<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: From<Bytes> + Send + 'static,
{
    type Response = Response<PermitBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let shared = &self.shared;
        let Some(key) = shared.limits.key(&req) else {
            shared.limits.decided(Decided::Allowed);
            return ResponseFuture::inner(self.inner.call(req), None, None);
        };
        if let Some(result) = shared.limits.store.try_acquire_now(&key, shared.limit) {
            drop(key);
            return match shared.outcome(result, req.extensions()) {
                Outcome::Pass(permit, headers) => {
                    ResponseFuture::inner(self.inner.call(req), permit, headers)
                }
                Outcome::Reject(res) => ResponseFuture::ready(res),
            };
        }

        let key = key.into_owned();
        let shared = self.shared.clone();
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::boxed(Box::pin(async move {
            let result = shared.limits.store.acquire(&key, shared.limit).await;
            match shared.outcome(result, req.extensions()) {
                Outcome::Pass(permit, headers) => {
                    // An error from the inner service drops the permit here.
                    let res = inner.call(req).await?;
                    Ok(super::future::finish(res, permit, headers))
                }
                Outcome::Reject(res) => Ok(res),
            }
        }))
    }
}
