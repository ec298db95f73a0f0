//! Prebuilt rejection responses: the 429 path must cost no more than serving a request.

use std::sync::LazyLock;

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use http::{Extensions, HeaderMap, HeaderName, HeaderValue, Response, StatusCode};

use crate::problem::{self, Problem};
use crate::request_id::RequestId;

/// `RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers-10).
pub(crate) static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit` (draft-ietf-httpapi-ratelimit-headers-10).
pub(crate) static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// The problem type of a 503 sent because the limit store is unavailable (fail-closed).
pub(crate) const TEMPORARY_REDUCED_CAPACITY_TYPE: &str =
    "https://iana.org/assignments/http-problem-types#temporary-reduced-capacity";

/// The `RateLimit-Policy` and `RateLimit` values of one limited response, added on the way out.
#[derive(Debug, Clone)]
pub(crate) struct LimitHeaders {
    pub(crate) policy: HeaderValue,
    pub(crate) state: HeaderValue,
}

impl LimitHeaders {
    pub(crate) fn apply(self, headers: &mut HeaderMap) {
        // `append`: a route behind several limiters lists every policy (SF lists combine).
        headers.append(RATELIMIT_POLICY.clone(), self.policy);
        headers.append(RATELIMIT.clone(), self.state);
    }
}

const CACHED_SECONDS: usize = 121;

static SECONDS: LazyLock<Vec<HeaderValue>> =
    LazyLock::new(|| (0..CACHED_SECONDS as u64).map(HeaderValue::from).collect());

/// A header value holding `n` as decimal; values up to two minutes come from a table.
pub(crate) fn seconds_value(n: u64) -> HeaderValue {
    match SECONDS.get(usize::try_from(n).unwrap_or(usize::MAX)) {
        Some(v) => v.clone(),
        None => HeaderValue::from(n),
    }
}

#[cfg(feature = "rate-limit")]
/// Nanoseconds to whole seconds, rounded up.
pub(crate) fn ceil_secs(nanos: u64) -> u64 {
    nanos.div_ceil(1_000_000_000)
}

/// A problem body serialized once; only a request id is spliced in per request.
#[derive(Debug, Clone)]
pub(crate) struct PrebuiltProblem {
    status: StatusCode,
    /// The whole body, without a request id.
    body: Bytes,
}

impl PrebuiltProblem {
    pub(crate) fn new(problem: &Problem) -> Self {
        Self {
            status: problem.status(),
            body: problem.to_bytes(),
        }
    }

    /// The 429 of a quota or concurrency policy.
    pub(crate) fn quota_exceeded(policy: &str, detail: &'static str) -> Self {
        Self::new(
            &Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "Too Many Requests",
            )
            .with_type(problem::QUOTA_EXCEEDED_TYPE)
            .with_detail(detail)
            .with_extension("violated-policies", vec![policy.to_owned()]),
        )
    }

    /// The 503 sent when the store is down and the policy is fail-closed.
    pub(crate) fn store_unavailable() -> Self {
        Self::new(
            &Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "limit_store_unavailable",
                "Service Unavailable",
            )
            .with_type(TEMPORARY_REDUCED_CAPACITY_TYPE)
            .with_detail("The limit store is unavailable; retry shortly."),
        )
    }

    /// The body for a request: the prebuilt bytes (no copy), or a copy with `requestId` added.
    pub(crate) fn body(&self, extensions: &Extensions) -> Bytes {
        let Some(id) = extensions.get::<RequestId>() else {
            return self.body.clone();
        };
        let text = id.as_str();
        // The prebuilt body is a JSON object: replace its closing brace.
        let head = &self.body[..self.body.len().saturating_sub(1)];
        let mut out = BytesMut::with_capacity(self.body.len() + text.len() + 16);
        out.put_slice(head);
        out.put_slice(b",\"requestId\":");
        if id.needs_json_escape() {
            // A string always serializes.
            let quoted = serde_json::to_vec(text).unwrap_or_else(|_| b"\"\"".to_vec());
            out.put_slice(&quoted);
        } else {
            // Nothing to escape (every generated id and nearly every client-sent one): the
            // text goes in as is, and the body is the one allocation.
            out.put_u8(b'"');
            out.put_slice(text.as_bytes());
            out.put_u8(b'"');
        }
        out.put_u8(b'}');
        out.freeze()
    }

    /// The response: status, `Content-Type`, `Cache-Control: no-store` and `Retry-After`.
    pub(crate) fn response<B: From<Bytes>>(
        &self,
        extensions: &Extensions,
        retry_after_secs: u64,
    ) -> Response<B> {
        self.response_with(extensions, seconds_value(retry_after_secs.max(1)))
    }

    /// [`response`](Self::response) with a ready `Retry-After` value (at least one second).
    pub(crate) fn response_with<B: From<Bytes>>(
        &self,
        extensions: &Extensions,
        retry_after: HeaderValue,
    ) -> Response<B> {
        let mut res = Response::new(B::from(self.body(extensions)));
        *res.status_mut() = self.status;
        // Room for these three, the limiter's two, `X-Request-Id` and `Content-Length` without
        // growing the map on the way out.
        let mut headers = HeaderMap::with_capacity(8);
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(problem::CONTENT_TYPE),
        );
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(RETRY_AFTER, retry_after);
        *res.headers_mut() = headers;
        // The handler never ran: an idempotency layer around the limiter must not record it.
        res.extensions_mut().insert(crate::NotExecuted);
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_id_is_spliced_into_valid_json() {
        let p = PrebuiltProblem::quota_exceeded("default", "slow down");
        let mut ext = Extensions::new();
        let plain: serde_json::Value = serde_json::from_slice(&p.body(&ext)).unwrap();
        assert!(plain.get("requestId").is_none());
        ext.insert(RequestId::new("a\"b\\c"));
        let v: serde_json::Value = serde_json::from_slice(&p.body(&ext)).unwrap();
        assert_eq!(v["requestId"], "a\"b\\c");
        assert_eq!(v["violated-policies"][0], "default");
        assert_eq!(v["status"], 429);
        for id in [
            "req-1",
            "0f8fad5b-d9cb-469f-a165-70867728950e",
            "é/ü\u{7f}",
            "tab\there",
            "</script>",
        ] {
            let mut ext = Extensions::new();
            ext.insert(RequestId::new(id));
            let v: serde_json::Value = serde_json::from_slice(&p.body(&ext)).unwrap();
            assert_eq!(v["requestId"], id);
        }
    }

    #[cfg(feature = "rate-limit")]
    #[test]
    fn seconds_are_rounded_up() {
        assert_eq!(ceil_secs(0), 0);
        assert_eq!(ceil_secs(1), 1);
        assert_eq!(ceil_secs(1_000_000_000), 1);
        assert_eq!(ceil_secs(1_000_000_001), 2);
        assert_eq!(seconds_value(7), "7");
        assert_eq!(seconds_value(100_000), "100000");
    }
}
