//! Request ids for logs and error bodies that never invent an idempotency key.
//!
//! [`RequestIdLayer`] reads `X-Request-Id` as the client sent it or generates a fresh one, puts it
//! in the request's extensions as a [`RequestId`] and echoes it on the response. Unlike
//! tower-http's `SetRequestIdLayer`, it never writes the header into the *request*, so an
//! idempotency layer further in still sees only what the client sent (the spec uses
//! `X-Request-Id` as the idempotency key; a generated one would make every request look unique).
//!
//! ```
//! use http::{Request, Response};
//! use l2c_core::{RequestId, RequestIdLayer};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let svc = ServiceBuilder::new().layer(RequestIdLayer::new()).service(service_fn(
//!     |req: Request<String>| async move {
//!         // The header is not invented on the request...
//!         assert!(req.headers().get("x-request-id").is_none());
//!         // ...but the id is there for logs and problem bodies.
//!         assert!(req.extensions().get::<RequestId>().is_some());
//!         Ok::<_, std::convert::Infallible>(Response::new(String::new()))
//!     },
//! ));
//! let res = svc.oneshot(Request::new(String::new())).await.unwrap();
//! assert!(res.headers().contains_key("x-request-id"));
//! # }
//! ```

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response};
use pin_project_lite::pin_project;
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};
use tower_layer::Layer;
use tower_service::Service;

/// The `x-request-id` header name.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of one request, as found in the request's extensions.
#[derive(Clone)]
pub struct RequestId(Repr);

#[derive(Clone)]
enum Repr {
    Text(Arc<str>),
    /// A generated id: ASCII, in the same shared buffer as its `X-Request-Id` header value.
    Generated(Bytes),
}

thread_local! {
    /// The generator of request ids on this thread (see [`RequestId::generate_into`]).
    static ID_RNG: RefCell<SmallRng> = RefCell::new(
        SmallRng::from_rng(rand::thread_rng())
            .unwrap_or_else(|_| SmallRng::seed_from_u64(rand::random())),
    );
}

/// 16 random bytes from this thread's id generator.
fn random_bytes() -> [u8; 16] {
    ID_RNG.with(|rng| {
        let mut rng = rng.borrow_mut();
        let hi = rng.next_u64();
        let lo = rng.next_u64();
        ((u128::from(hi) << 64) | u128::from(lo)).to_be_bytes()
    })
}

/// The two lower-case hex digits of every byte value.
static HEX_PAIRS: [[u8; 2]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut table = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = [DIGITS[i >> 4], DIGITS[i & 0x0f]];
        i += 1;
    }
    table
};

/// Where the hex digits of each of the 16 bytes start in `8-4-4-4-12` text.
const HYPHENATED_AT: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];

/// `bytes` as `8-4-4-4-12` lower-case hex: one table read per byte, fixed positions, no branch.
fn encode_hyphenated(bytes: &[u8; 16], out: &mut [u8; uuid::fmt::Hyphenated::LENGTH]) {
    for (b, at) in bytes.iter().zip(HYPHENATED_AT) {
        out[at..at + 2].copy_from_slice(&HEX_PAIRS[usize::from(*b)]);
    }
    for at in [8, 13, 18, 23] {
        out[at] = b'-';
    }
}

/// A generated UUID's text, owned by a [`Bytes`] without another copy.
struct UuidText([u8; uuid::fmt::Hyphenated::LENGTH]);

impl AsRef<[u8]> for UuidText {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl RequestId {
    /// Wraps an id.
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        Self(Repr::Text(id.into()))
    }

    /// A fresh random id (UUID v4).
    pub fn generate() -> Self {
        Self::generate_with_header().0
    }

    /// A fresh id and its header value, sharing one allocation.
    fn generate_with_header() -> (Self, HeaderValue) {
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        Self::generate_into(&mut buf);
        let bytes = Bytes::from_owner(UuidText(buf));
        // A hyphenated UUID is always a valid header value.
        let header = HeaderValue::from_maybe_shared(bytes.clone())
            .unwrap_or_else(|_| HeaderValue::from_static("invalid"));
        (Self(Repr::Generated(bytes)), header)
    }

    /// A fresh UUID v4, hyphenated and lower case, encoded into `buf`.
    ///
    /// Request ids must be unique, not secret (a generated one is never an idempotency key), so
    /// the 122 random bits come from a per-thread xoshiro256++ generator seeded once from the OS
    /// CSPRNG: two 64-bit draws instead of a ChaCha block-buffer read through `thread_rng`. The
    /// text lives on the caller's stack: no allocation.
    fn generate_into(buf: &mut [u8; uuid::fmt::Hyphenated::LENGTH]) {
        let bytes = uuid::Builder::from_random_bytes(random_bytes())
            .into_uuid()
            .into_bytes();
        encode_hyphenated(&bytes, buf);
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Text(text) => text,
            // Only ever built from a hyphenated UUID's ASCII text.
            Repr::Generated(bytes) => std::str::from_utf8(bytes).unwrap_or_default(),
        }
    }

    /// Whether the id must be escaped inside a JSON string: never for a generated one (hex and
    /// hyphens), only for client-sent text with `"` or `\\` (control bytes are not valid ids).
    #[cfg(any(feature = "rate-limit", feature = "concurrency"))]
    pub(crate) fn needs_json_escape(&self) -> bool {
        match &self.0 {
            Repr::Text(text) => text.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\'),
            Repr::Generated(_) => false,
        }
    }

    /// Whether `value` is acceptable as a client-sent id: 1–255 visible ASCII characters.
    pub fn is_valid(value: &[u8]) -> bool {
        !value.is_empty() && value.len() <= 255 && value.iter().all(|b| (0x21..=0x7e).contains(b))
    }
}

impl PartialEq for RequestId {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for RequestId {}

impl std::hash::Hash for RequestId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Adds a [`RequestId`] to every request's extensions and echoes it as `X-Request-Id`.
///
/// A client-sent `X-Request-Id` of 1–255 visible ASCII characters is kept as is; otherwise a UUID
/// v4 is generated. The response header is only set when the inner service did not set one.
#[derive(Debug, Clone, Copy, Default)]
#[must_use]
pub struct RequestIdLayer {
    _priv: (),
}

impl RequestIdLayer {
    /// The layer.
    pub fn new() -> Self {
        Self { _priv: () }
    }
}

impl<S> Layer<S> for RequestIdLayer {
    type Service = RequestIdService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestIdService { inner }
    }
}

/// The service made by [`RequestIdLayer`].
#[derive(Debug, Clone)]
pub struct RequestIdService<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequestIdService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = RequestIdFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let sent = req
            .headers()
            .get(&X_REQUEST_ID)
            .filter(|v| RequestId::is_valid(v.as_bytes()));
        let (id, header) = match sent {
            Some(value) => (
                // Visible ASCII is valid UTF-8.
                RequestId::new(value.to_str().unwrap_or_default()),
                value.clone(),
            ),
            None => RequestId::generate_with_header(),
        };
        req.extensions_mut().insert(id);
        RequestIdFuture {
            inner: self.inner.call(req),
            header: Some(header),
        }
    }
}

pin_project! {
    /// Response future of [`RequestIdService`].
    #[derive(Debug)]
    pub struct RequestIdFuture<F> {
        #[pin]
        inner: F,
        header: Option<HeaderValue>,
    }
}

impl<F, B, E> Future for RequestIdFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut res = std::task::ready!(this.inner.poll(cx))?;
        if let Some(header) = this.header.take() {
            res.headers_mut()
                .entry(X_REQUEST_ID.clone())
                .or_insert(header);
        }
        Poll::Ready(Ok(res))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use tower::{ServiceBuilder, ServiceExt, service_fn};

    async fn echo(req: Request<()>) -> Result<Response<String>, Infallible> {
        let id = req.extensions().get::<RequestId>().map(|id| id.to_string());
        Ok(Response::new(id.unwrap_or_default()))
    }

    #[tokio::test]
    async fn client_sent_id_is_kept_and_echoed() {
        let svc = ServiceBuilder::new()
            .layer(RequestIdLayer::new())
            .service(service_fn(echo));
        let req = Request::builder()
            .header("x-request-id", "abc-123")
            .body(())
            .unwrap();
        let res = svc.oneshot(req).await.unwrap();
        assert_eq!(res.headers()["x-request-id"], "abc-123");
        assert_eq!(res.body(), "abc-123");
    }

    #[tokio::test]
    async fn invalid_id_is_replaced_with_a_generated_one() {
        let svc = ServiceBuilder::new()
            .layer(RequestIdLayer::new())
            .service(service_fn(echo));
        let req = Request::builder()
            .header("x-request-id", "has space")
            .body(())
            .unwrap();
        let res = svc.oneshot(req).await.unwrap();
        let echoed = res.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_ne!(echoed, "has space");
        assert_eq!(res.body(), &echoed);
        assert_eq!(echoed.len(), 36);
    }

    #[test]
    fn hyphenated_encoding_matches_the_uuid_crate() {
        for bytes in [[0u8; 16], [0xff; 16], *b"0123456789abcdef", rand::random()] {
            let mut ours = [0u8; uuid::fmt::Hyphenated::LENGTH];
            encode_hyphenated(&bytes, &mut ours);
            let theirs = uuid::Uuid::from_bytes(bytes).hyphenated().to_string();
            assert_eq!(std::str::from_utf8(&ours).unwrap(), theirs);
        }
    }

    #[test]
    fn generated_ids_do_not_repeat_within_or_across_threads() {
        let batch = || {
            (0..5_000)
                .map(|_| RequestId::generate())
                .collect::<Vec<_>>()
        };
        let other = std::thread::spawn(batch).join().unwrap();
        let mut seen = std::collections::HashSet::new();
        for id in batch().into_iter().chain(other) {
            assert!(seen.insert(id.as_str().to_owned()), "repeated id {id}");
        }
        assert_eq!(seen.len(), 10_000);
    }

    #[cfg(any(feature = "rate-limit", feature = "concurrency"))]
    #[test]
    fn only_client_text_with_quotes_or_backslashes_needs_escaping() {
        assert!(!RequestId::new("req-1").needs_json_escape());
        assert!(RequestId::new("a\"b").needs_json_escape());
        assert!(RequestId::new("a\\b").needs_json_escape());
    }

    #[test]
    fn validity_rule_is_one_to_255_visible_ascii() {
        assert!(RequestId::is_valid(b"a"));
        assert!(RequestId::is_valid(&[b'x'; 255]));
        assert!(!RequestId::is_valid(&[b'x'; 256]));
        assert!(!RequestId::is_valid(b""));
        assert!(!RequestId::is_valid("é".as_bytes()));
    }

    #[test]
    fn generated_ids_are_distinct_lower_case_v4_uuids() {
        let a = RequestId::generate();
        let b = RequestId::generate();
        assert_ne!(a, b);
        for id in [&a, &b] {
            let parsed = uuid::Uuid::parse_str(id.as_str()).unwrap();
            assert_eq!(parsed.get_version_num(), 4);
            assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122);
            assert_eq!(id.as_str(), parsed.hyphenated().to_string());
            assert_eq!(format!("{id}"), id.as_str());
            assert_eq!(format!("{id:?}"), format!("{:?}", id.as_str()));
        }
        let (id, header) = RequestId::generate_with_header();
        #[cfg(any(feature = "rate-limit", feature = "concurrency"))]
        assert!(!id.needs_json_escape());
        assert_eq!(header, id.as_str());
        assert_eq!(id, RequestId::new(id.as_str()));
    }
}
