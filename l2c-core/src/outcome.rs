//! [`NotExecuted`]: the response extension a service sets when it refused a request before the
//! request did anything.
//!
//! Every layer of this crate that answers instead of the handler — the auth layer's 401/403,
//! the rate limiter's and the concurrency cap's 429 (and their 503 when the store is down) —
//! sets it, and so should a handler's own refusals made before any write (validation,
//! business-rule checks). The idempotency layer does not record a response carrying it, so the
//! retry with the same key runs instead of replaying the refusal.

/// Response extension: the request was refused before it did anything, so the response is not
/// recorded by the idempotency layer and a retry with the same key runs again.
///
/// A service inside the idempotency layer puts it in the extensions of a response to a request
/// it never executed: an extractor rejection (415 wrong content type, 400 malformed JSON, 422
/// body of the wrong shape, 413 too large), a field or business-rule refusal made before any
/// write, an auth refusal, a 429 from a rate limit or concurrency cap, or a retryable refusal
/// that rolled back (409 `concurrent_update`). The key is released as for a 5xx; the client
/// fixes the request (or waits) and retries with the same key.
///
/// A response to a request that *did* write (including a 409 reported after a write) must not
/// carry it: that answer is recorded and replayed.
///
/// ```
/// use http::{Response, StatusCode};
/// use l2c_core::NotExecuted;
///
/// let mut res = Response::new(());
/// *res.status_mut() = StatusCode::UNSUPPORTED_MEDIA_TYPE;
/// res.extensions_mut().insert(NotExecuted);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NotExecuted;
