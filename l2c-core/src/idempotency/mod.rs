//! Idempotent POST/PUT/PATCH by `Idempotency-Key` / `X-Request-Id` (spec §6).
//!
//! [`IdempotencyLayer`] makes a retried request safe: the first request with a key runs the
//! handler, and every later request with the same key gets the stored response back, byte for
//! byte, with `Idempotent-Replayed: true` — the handler does not run again.
//!
//! ```
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::{BodyExt, Full};
//! use l2c_core::idempotency::IdempotencyLayer;
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let calls = Arc::new(AtomicUsize::new(0));
//! let handler = {
//!     let calls = calls.clone();
//!     service_fn(move |_req: Request<Full<Bytes>>| {
//!         let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
//!         async move {
//!             let body = Bytes::from(format!("{{\"leadId\":{n}}}"));
//!             let mut res = Response::new(Full::new(body));
//!             *res.status_mut() = StatusCode::CREATED;
//!             Ok::<_, std::convert::Infallible>(res)
//!         }
//!     })
//! };
//! let svc = IdempotencyLayer::new().layer(handler);
//!
//! let request = || {
//!     Request::post("/api/mobile/leads/hook")
//!         .header("Idempotency-Key", "\"8e03978e-40d5-43e8-bc93-6894a57f9324\"")
//!         .body(Full::from("{\"name\":\"张三\"}"))
//!         .unwrap()
//! };
//! let first = svc.clone().oneshot(request()).await.unwrap();
//! let retry = svc.clone().oneshot(request()).await.unwrap();
//! assert_eq!(retry.status(), StatusCode::CREATED);
//! assert_eq!(retry.headers()["idempotent-replayed"], "true");
//! assert_eq!(
//!     first.into_body().collect().await.unwrap().to_bytes(),
//!     retry.into_body().collect().await.unwrap().to_bytes(),
//! );
//! assert_eq!(calls.load(Ordering::SeqCst), 1);
//!
//! // Without a key the request is refused before the handler.
//! let res = svc
//!     .oneshot(Request::post("/api/mobile/leads/hook").body(Full::from("{}")).unwrap())
//!     .await
//!     .unwrap();
//! assert_eq!(res.status(), StatusCode::BAD_REQUEST);
//! assert_eq!(res.headers()["content-type"], "application/problem+json");
//! # }
//! ```
//!
//! # Behaviour
//!
//! Only POST, PUT and PATCH are handled; every other method goes straight to the inner service
//! (no allocation, no store call), with or without a key.
//!
//! | situation | response |
//! |---|---|
//! | no key (and [`required`](IdempotencyLayer::required), the default) | 400 `idempotency_key_missing`, naming the headers |
//! | key not 1–255 visible ASCII | 400 `idempotency_key_invalid` |
//! | `Idempotency-Key` and `X-Request-Id` (or repeats) differ | 400 `idempotency_key_conflict` |
//! | body over [`max_body_bytes`](IdempotencyLayer::max_body_bytes) (default 1 MiB) | 413 `payload_too_large` |
//! | new key | the handler runs; its response is stored, then returned |
//! | same key, same request, completed | the stored response, `Idempotent-Replayed: true` |
//! | same key, same request, still running | 409 `idempotency_key_in_use`, `Retry-After: 1` |
//! | same key, different method/path/query/body | 422 `idempotency_key_reused` |
//! | the store fails (e.g. Redis down) | 503 `idempotency_store_unavailable`, `Retry-After: 1`; the handler does not run |
//! | the store fails after the handler ran | the handler's response; the key stays in flight and the response is stored as soon as the store answers again (within the lease), so a retry never runs the handler twice |
//!
//! Every rejection is `application/problem+json` carrying the [`RequestId`](crate::RequestId)
//! from the extensions, has an [`IdempotencyRejection`] in its extensions, and is never stored:
//! the client fixes the request and retries with the same key.
//!
//! **Keys.** Read from [`key_headers`](IdempotencyLayer::key_headers) (default `Idempotency-Key`,
//! then the spec's `X-Request-Id`). A value starting with `"` is parsed as an RFC 8941 sf-string
//! (the IETF draft's form, `"abc"`), anything else is taken as is (Stripe's form, `abc`).
//!
//! **Scope.** A record belongs to (client id, method, path, key): the client is the
//! [`AuthenticatedClient`](crate::AuthenticatedClient) the auth layer put in the extensions; a
//! request without one is recorded under the shared scope [`ANONYMOUS_SCOPE`] (`"anonymous"`), so
//! put the auth layer first on any route where callers must not share keys. One client's key
//! never replays for another client.
//!
//! **Fingerprint.** SHA-256 over the method, the path with its query and the raw body. The body is
//! buffered (up to the limit) for that, and handed on unchanged.
//!
//! **What is stored.** Status, body and the response headers in
//! [`stored_headers`](IdempotencyLayer::stored_headers) (default [`DEFAULT_STORED_HEADERS`]:
//! `content-type`, `content-language`, `content-location`, `content-encoding`, `location`,
//! `etag`, `last-modified`, `cache-control`). Per-request headers (`date`, `x-request-id`,
//! `set-cookie`, …) are not replayed; headers added by layers outside this one (request-id echo,
//! deprecation) are added to replays by those layers as usual. The first response goes out with
//! all its headers. 5xx responses are not stored unless
//! [`store_server_errors(true)`](IdempotencyLayer::store_server_errors), so a retry after a
//! server error runs again. A response carrying [`NotExecuted`] in its extensions (the
//! request was refused before it did anything: extractor rejections, field and business-rule
//! refusals made before any write, a retryable conflict that rolled back, and every refusal of
//! this crate's auth, rate-limit and concurrency layers placed inside this one) is not stored
//! either, so the corrected retry with the same key runs. A response carrying [`StoreRedacted`] is sent as is but stored with the
//! redacted body it holds: use it for responses that show a secret once, so a replay neither
//! shows the secret again nor runs the handler a second time. Records live [`ttl`](IdempotencyLayer::ttl) (default 24 h); after
//! that a reuse of the key is a new request.
//!
//! **Leases.** The claim of a running request is a lease ([`lease`](IdempotencyLayer::lease),
//! default 60 s). If the request future is dropped (client disconnect) or the handler panics, the
//! key is released at once (the memory store synchronously, the Redis store by a spawned
//! release); if even that fails (process crash), the lease expires. A handler still running when
//! its lease expires no longer holds the key: a retry then runs it again and the late response is
//! not stored, so keep the lease above the handler's own timeout.
//!
//! # Body types
//!
//! The layer keeps the request body type: `Idempotency<S>` serves `Request<B>` and calls `S` with
//! `Request<B>` rebuilt from the buffered bytes, so `B: From<Bytes>` is required (axum's `Body`,
//! `http_body_util::Full<Bytes>`). The response body is collected for storage and rebuilt the
//! same way (`ResBody: From<Bytes>`). Both hold for axum, so `Router::layer(IdempotencyLayer::…)`
//! and `route_layer` work as is. Streaming responses of keyed requests are buffered in full.
//!
//! # Where it goes
//!
//! Auth → rate limit → **idempotency** → handler. Requests refused before it (401, 403, 429) are
//! never recorded, so they can be retried with the same key. Nothing in front of it may invent an
//! `X-Request-Id` on the request (tower-http's `SetRequestIdLayer` would make every request look
//! unique); [`RequestIdLayer`](crate::RequestIdLayer) is safe anywhere since it only puts the id
//! in the extensions.
//!
//! In axum (the body types fit, see above), with the token endpoint on a router of its own:
//!
//! ```text
//! let store: Arc<dyn IdempotencyStore> = match redis_url {
//!     Some(url) => {
//!         let redis = RedisIdempotencyStore::open(url, "l2c-prod")?; // one key space per prefix
//!         redis.connect().await?;                                    // fail at start-up, not later
//!         Arc::new(redis)
//!     }
//!     None => Arc::new(MemoryIdempotencyStore::new()),
//! };
//! let mobile = Router::new()
//!     .route("/leads/hook", post(leads::hook))
//!     .route("/orders/sync", post(orders::sync))
//!     .layer(
//!         ServiceBuilder::new()                // outermost first
//!             .layer(jwt_auth)                 // puts AuthenticatedClient in the extensions
//!             .layer(rate_limit)
//!             .layer(IdempotencyLayer::new().with_store(store)),
//!     );
//! let app = Router::new()
//!     .nest("/api/mobile", mobile)
//!     .route("/api/oauth/token", post(token))   // exempt
//!     .layer(RequestIdLayer::new());            // echo only; never writes the request header
//! ```
//!
//! # Stores
//!
//! [`MemoryIdempotencyStore`] (the default) for one process; with the `redis` feature,
//! `RedisIdempotencyStore` for many replicas. Any [`IdempotencyStore`] works.

mod body;
mod future;
mod key;
mod layer;
mod memory;
mod record;
#[cfg(feature = "redis")]
mod redis;
mod service;
mod store;

#[cfg(test)]
mod tests;

pub use future::ResponseFuture;
pub use layer::{
    ConfigError, DEFAULT_LEASE, DEFAULT_MAX_BODY_BYTES, DEFAULT_STORED_HEADERS, DEFAULT_TTL,
    IdempotencyLayer,
};
pub use memory::{DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES, MemoryIdempotencyStore};
pub use record::{ANONYMOUS_SCOPE, Fingerprint, LeaseToken, RecordKey, StoredResponse};
#[cfg(feature = "redis")]
pub use redis::RedisIdempotencyStore;
pub use service::{
    IDEMPOTENT_REPLAYED, Idempotency, IdempotencyRejection, NotExecuted, StoreRedacted,
};
pub use store::{Claim, IdempotencyStore, StoreError, StoreErrorKind};
