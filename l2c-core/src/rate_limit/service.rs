//! [`KeyedRateLimit`]: the service made by [`KeyedRateLimitLayer`](super::KeyedRateLimitLayer).

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Extensions, HeaderValue, Request, Response};
use tower_service::Service;

use super::future::ResponseFuture;
use super::layer::{ALLOWED_SLOTS, Shared, state_value};
use super::{Decision, GcraParams};
use crate::limits::response::{LimitHeaders, ceil_secs, seconds_value};
use crate::limits::{Decided, StoreError};

/// Rate-limits the requests to `S` per partition key.
#[derive(Debug, Clone)]
pub struct KeyedRateLimit<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> KeyedRateLimit<S> {
    pub(crate) fn new(inner: S, shared: Arc<Shared>) -> Self {
        Self { inner, shared }
    }

    /// Requests let through so far because the store failed (shared with the layer).
    pub fn fail_open_total(&self) -> u64 {
        self.shared.limits.fail_open.get()
    }
}

pub(crate) enum Outcome<B> {
    Pass(Option<LimitHeaders>),
    Reject(Response<B>),
}

impl Shared {
    /// The `RateLimit` and `Retry-After` values of a rejection `secs` seconds away.
    ///
    /// Up to two minutes come from tables; longer delays (an hourly quota) from a one-entry cache
    /// of the last one, which a 429 storm hits until the delay ticks down a second.
    fn rejected_values(&self, secs: u64) -> (HeaderValue, HeaderValue) {
        if let Some(cached) = self
            .rejected_states
            .get(usize::try_from(secs).unwrap_or(usize::MAX))
        {
            return (cached.clone(), seconds_value(secs));
        }
        let build = || {
            (
                state_value(&self.limits.policy, 0, secs),
                seconds_value(secs),
            )
        };
        // Never wait for the cache: a contended slot just means building the values.
        let Ok(mut last) = self.last_rejection.try_lock() else {
            return build();
        };
        match &*last {
            Some((cached_secs, state, retry_after)) if *cached_secs == secs => {
                (state.clone(), retry_after.clone())
            }
            _ => {
                let (state, retry_after) = build();
                *last = Some((secs, state.clone(), retry_after.clone()));
                (state, retry_after)
            }
        }
    }

    /// The `RateLimit` value of an allowed response.
    ///
    /// A client under its rate sees the same `r` and `t` request after request (a full bucket
    /// less one), so the last values of a few slots are kept: a hit clones a shared header value
    /// instead of formatting and allocating one per request.
    fn allowed_value(&self, remaining: u64, secs: u64) -> HeaderValue {
        let index = usize::try_from((remaining ^ secs.rotate_left(7)) % ALLOWED_SLOTS as u64)
            .unwrap_or_default();
        // Never wait for the cache: a contended slot just means building the value.
        let Ok(mut slot) = self.allowed_states[index].try_lock() else {
            return state_value(&self.limits.policy, remaining, secs);
        };
        match &*slot {
            Some((r, t, value)) if *r == remaining && *t == secs => value.clone(),
            _ => {
                let value = state_value(&self.limits.policy, remaining, secs);
                *slot = Some((remaining, secs, value.clone()));
                value
            }
        }
    }

    pub(crate) fn outcome<B: From<Bytes>>(
        &self,
        result: Result<Decision, StoreError>,
        policy_header: &HeaderValue,
        extensions: &Extensions,
    ) -> Outcome<B> {
        match result {
            Ok(d) if d.allowed => {
                self.limits.decided(Decided::Allowed);
                Outcome::Pass(Some(LimitHeaders {
                    policy: policy_header.clone(),
                    state: self.allowed_value(d.remaining, ceil_secs(d.reset_after_nanos)),
                }))
            }
            Ok(d) => {
                self.limits.decided(Decided::Rejected);
                // Retry-After and `t` are the same rounded-up delay, so Retry-After is never
                // earlier than `t` (draft-ietf-httpapi-ratelimit-headers-10 §"Server Behavior").
                let secs = ceil_secs(d.reset_after_nanos).max(1);
                let (state, retry_after) = self.rejected_values(secs);
                let mut res = self.rejection.response_with(extensions, retry_after);
                LimitHeaders {
                    policy: policy_header.clone(),
                    state,
                }
                .apply(res.headers_mut());
                Outcome::Reject(res)
            }
            Err(error) => match self.limits.store_failed(&error, extensions) {
                Some(res) => Outcome::Reject(res),
                None => Outcome::Pass(None),
            },
        }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for KeyedRateLimit<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: From<Bytes> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let shared = &self.shared;
        let Some(key) = shared.limits.key(&req) else {
            shared.limits.decided(Decided::Allowed);
            return ResponseFuture::inner(self.inner.call(req), None);
        };
        let custom = shared
            .overrides
            .get(&key)
            .map(|quota| shared.resolve(quota));
        let resolved = custom.as_ref().unwrap_or(&shared.default);
        let params: GcraParams = resolved.params;

        if let Some(result) = shared.limits.store.check_now(&key, params) {
            drop(key);
            return match shared.outcome(result, &resolved.policy_header, req.extensions()) {
                Outcome::Pass(headers) => ResponseFuture::inner(self.inner.call(req), headers),
                Outcome::Reject(res) => ResponseFuture::ready(res),
            };
        }

        // A store that needs I/O: check, then call a ready clone of the inner service.
        let key = key.into_owned();
        let policy_header = resolved.policy_header.clone();
        let shared = self.shared.clone();
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::boxed(Box::pin(async move {
            let result = shared.limits.store.check(&key, params).await;
            match shared.outcome(result, &policy_header, req.extensions()) {
                Outcome::Pass(headers) => {
                    let mut res = inner.call(req).await?;
                    if let Some(headers) = headers {
                        headers.apply(res.headers_mut());
                    }
                    Ok(res)
                }
                Outcome::Reject(res) => Ok(res),
            }
        }))
    }
}
