use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, RETRY_AFTER};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::BodyExt;
use tokio::time::Instant;
use tower_service::Service;

use super::body::{ReadBodyError, read_body};
use super::future::ResponseFuture;
use super::key::{KeyError, MAX_KEY_LEN, read_key};
use super::layer::Config;
use super::record::{Fingerprint, LeaseToken, RecordKey, StoredResponse};
use super::store::{Claim, IdempotencyStore};
pub use crate::outcome::NotExecuted;

use crate::identity::AuthenticatedClient;
use crate::problem::Problem;
use crate::request_id::RequestId;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The `Idempotent-Replayed` response header set on replays.
pub static IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// Why the layer answered a request itself; found in the response's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdempotencyRejection {
    /// 400: a key is required and none of the key headers was sent.
    MissingKey,
    /// 400: a key header is not 1–255 visible ASCII characters.
    InvalidKey,
    /// 400: the key headers carry different values.
    ConflictingKeys,
    /// 413: the body is over the buffering limit.
    BodyTooLarge,
    /// 400: the request body could not be read.
    UnreadableBody,
    /// 409: a request with this key is still running.
    InFlight,
    /// 422: the key was used for a different request.
    KeyReused,
    /// 503: the store failed; the handler did not run.
    StoreUnavailable,
}

/// Middleware that makes keyed POST/PUT/PATCH requests idempotent; see [`IdempotencyLayer`].
///
/// [`IdempotencyLayer`]: super::IdempotencyLayer
#[derive(Clone)]
pub struct Idempotency<S> {
    pub(crate) inner: S,
    pub(crate) config: Arc<Config>,
    pub(crate) store: Arc<dyn IdempotencyStore>,
}

impl<S> Idempotency<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Consumes the middleware, returning the wrapped service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: fmt::Debug> fmt::Debug for Idempotency<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Idempotency")
            .field("inner", &self.inner)
            .field("config", &self.config)
            .field("store", &self.store)
            .finish()
    }
}

fn applies_to(method: &Method) -> bool {
    *method == Method::POST || *method == Method::PUT || *method == Method::PATCH
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Idempotency<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Body + From<Bytes> + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<BoxError>,
    ResBody: Body + From<Bytes> + Send + 'static,
    ResBody::Data: Send,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        if !applies_to(req.method()) {
            return ResponseFuture::inner(self.inner.call(req));
        }
        let record_key = match read_key(req.headers(), &self.config.key_headers) {
            // Hashed here, while the key still borrows the headers: no copy of it is kept.
            Ok(Some(key)) => {
                let client = req
                    .extensions()
                    .get::<AuthenticatedClient>()
                    .map(|c| c.client_id.as_str());
                RecordKey::new(client, req.method(), req.uri().path(), &key)
            }
            Ok(None) if !self.config.required => {
                return ResponseFuture::inner(self.inner.call(req));
            }
            Ok(None) => {
                let names = self
                    .config
                    .key_headers
                    .iter()
                    .map(|n| format!("`{}`", display_name(n)))
                    .collect::<Vec<_>>()
                    .join(" or ");
                let detail = format!(
                    "{} requests need an idempotency key: send the {names} header with 1–{MAX_KEY_LEN} \
                     visible ASCII characters (a UUID is best) and reuse it when you retry",
                    req.method()
                );
                return reject(
                    Problem::bad_request("idempotency_key_missing", detail),
                    IdempotencyRejection::MissingKey,
                    req.extensions(),
                );
            }
            Err(KeyError::Invalid(name)) => {
                let detail = format!(
                    "the `{}` header must be 1–{MAX_KEY_LEN} visible ASCII characters, optionally \
                     as a quoted string (\"…\")",
                    display_name(&name)
                );
                return reject(
                    Problem::bad_request("idempotency_key_invalid", detail),
                    IdempotencyRejection::InvalidKey,
                    req.extensions(),
                );
            }
            Err(KeyError::Conflicting) => {
                let names = self
                    .config
                    .key_headers
                    .iter()
                    .map(|n| format!("`{}`", display_name(n)))
                    .collect::<Vec<_>>()
                    .join(", ");
                let detail =
                    format!("the idempotency key headers ({names}) carry different values");
                return reject(
                    Problem::bad_request("idempotency_key_conflict", detail),
                    IdempotencyRejection::ConflictingKeys,
                    req.extensions(),
                );
            }
        };
        let declared_too_large = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|len| len > self.config.max_body_bytes as u64);
        if declared_too_large {
            return reject(
                too_large(self.config.max_body_bytes),
                IdempotencyRejection::BodyTooLarge,
                req.extensions(),
            );
        }
        // The ready service goes into the future; a fresh clone stays for the next call.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::keyed(Box::pin(run(
            Arc::clone(&self.config),
            Arc::clone(&self.store),
            inner,
            req,
            record_key,
        )))
    }
}

/// Header names are stored lower-case; show the usual capitalisation of the known ones.
fn display_name(name: &HeaderName) -> &str {
    match name.as_str() {
        "idempotency-key" => "Idempotency-Key",
        "x-request-id" => "X-Request-Id",
        other => other,
    }
}

fn too_large(limit: usize) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "Content Too Large",
    )
    .with_detail(format!(
        "the request body is over {limit} bytes, the most an idempotent request may carry"
    ))
}

fn problem_response<B: From<Bytes>>(
    problem: Problem,
    reason: IdempotencyRejection,
    request_id: Option<&RequestId>,
) -> Response<B> {
    let problem = match request_id {
        Some(id) => problem.with_request_id(id.as_str()),
        None => problem,
    };
    let mut response = problem.into_response::<B>();
    if matches!(
        reason,
        IdempotencyRejection::InFlight | IdempotencyRejection::StoreUnavailable
    ) {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response.extensions_mut().insert(reason);
    // Answered by this layer: the handler never ran (the rejection contract of every layer).
    response.extensions_mut().insert(NotExecuted);
    response
}

fn reject<F, B: From<Bytes>, E>(
    problem: Problem,
    reason: IdempotencyRejection,
    extensions: &http::Extensions,
) -> ResponseFuture<F, B, E> {
    ResponseFuture::rejected(problem_response(
        problem,
        reason,
        extensions.get::<RequestId>(),
    ))
}

/// The replay of a stored response: its status, stored headers and body, plus
/// `Idempotent-Replayed: true`.
fn replay<B: From<Bytes>>(record: &StoredResponse) -> Response<B> {
    let mut response = Response::new(B::from(record.body().clone()));
    *response.status_mut() = record.status();
    // Sized for the outer layers' headers too (`RateLimit`, `X-Request-Id`, ...), so the map is
    // not grown on the way out.
    let stored = record.headers();
    let mut headers = HeaderMap::with_capacity(stored.len() + REPLAY_HEADROOM);
    for (name, value) in stored {
        headers.append(name.clone(), value.clone());
    }
    headers.insert(
        IDEMPOTENT_REPLAYED.clone(),
        HeaderValue::from_static("true"),
    );
    *response.headers_mut() = headers;
    response
}

/// Headers a replay leaves room for: `Idempotent-Replayed` and what the layers around this one
/// usually add (`RateLimit-Policy`, `RateLimit`, `X-Request-Id`, `Deprecation`, `Sunset`, `Link`).
const REPLAY_HEADROOM: usize = 7;

/// Frees the claimed key unless disarmed: on a dropped future (client gone), a panic in the
/// handler, or an error before the response was stored.
struct LeaseGuard {
    store: Option<Arc<dyn IdempotencyStore>>,
    key: RecordKey,
    token: LeaseToken,
}

impl LeaseGuard {
    fn disarm(&mut self) {
        self.store = None;
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        if let Some(store) = self.store.take() {
            store.release_on_drop(self.key, self.token);
        }
    }
}

async fn run<S, ReqBody, ResBody>(
    config: Arc<Config>,
    store: Arc<dyn IdempotencyStore>,
    mut inner: S,
    req: Request<ReqBody>,
    record_key: RecordKey,
) -> Result<Response<ResBody>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ReqBody: Body + From<Bytes>,
    ReqBody::Error: Into<BoxError>,
    ResBody: Body + From<Bytes>,
    ResBody::Error: Into<BoxError>,
{
    let (parts, body) = req.into_parts();
    let request_id = parts.extensions.get::<RequestId>().cloned();
    let reject = |problem: Problem, reason: IdempotencyRejection| {
        Ok(problem_response(problem, reason, request_id.as_ref()))
    };

    let body = match read_body(body, config.max_body_bytes).await {
        Ok(body) => body,
        Err(ReadBodyError::TooLarge) => {
            return reject(
                too_large(config.max_body_bytes),
                IdempotencyRejection::BodyTooLarge,
            );
        }
        Err(ReadBodyError::Unreadable) => {
            return reject(
                Problem::bad_request(
                    "unreadable_body",
                    "the request body could not be read to the end",
                ),
                IdempotencyRejection::UnreadableBody,
            );
        }
    };

    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let fingerprint = Fingerprint::new(&parts.method, path_and_query, &body);

    let claimed_at = Instant::now();
    let claim = match store.claim_now(&record_key, &fingerprint, config.lease) {
        Some(claim) => claim,
        None => store.claim(&record_key, &fingerprint, config.lease).await,
    };
    let token = match claim {
        Ok(Claim::Claimed(token)) => token,
        Ok(Claim::Completed(record)) if *record.fingerprint() == fingerprint => {
            return Ok(replay(&record));
        }
        Ok(Claim::InFlight { fingerprint: held }) if held == fingerprint => {
            return reject(
                Problem::new(
                    StatusCode::CONFLICT,
                    "idempotency_key_in_use",
                    "Request In Progress",
                )
                .with_detail(
                    "a request with this idempotency key is still being processed; retry later \
                     with the same key to get its result",
                ),
                IdempotencyRejection::InFlight,
            );
        }
        Ok(Claim::Completed(_) | Claim::InFlight { .. }) => {
            return reject(
                Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "idempotency_key_reused",
                    "Idempotency Key Reused",
                )
                .with_detail(
                    "this idempotency key was already used for a different request (method, path, \
                     query or body); use a new key for a new request",
                ),
                IdempotencyRejection::KeyReused,
            );
        }
        Err(error) => {
            tracing::error!(%error, "idempotency store failed; refusing the request");
            return reject(
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "idempotency_store_unavailable",
                    "Service Unavailable",
                )
                .with_detail(
                    "the request was not processed because its idempotency key could not be \
                     checked; retry with the same key",
                ),
                IdempotencyRejection::StoreUnavailable,
            );
        }
    };
    let mut guard = LeaseGuard {
        store: Some(Arc::clone(&store)),
        key: record_key,
        token,
    };

    let response = inner
        .call(Request::from_parts(parts, ReqBody::from(body)))
        .await?;
    let (mut parts, body) = response.into_parts();
    let redacted = parts.extensions.remove::<StoreRedacted>();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            let error: BoxError = error.into();
            tracing::error!(%error, "response body failed; idempotency key released");
            let problem = match &request_id {
                Some(id) => Problem::internal().with_request_id(id.as_str()),
                None => Problem::internal(),
            };
            return Ok(problem.into_response());
        }
    };

    let not_recorded = (parts.status.is_server_error() && !config.store_server_errors)
        || rejected_before_handler(&parts.extensions);
    if not_recorded {
        // Disarmed only afterwards: if this future is dropped mid-release the guard still frees
        // the key.
        if let Err(error) = store.release(&record_key, &token).await {
            tracing::warn!(%error, "failed to release an idempotency lease; it will expire");
        }
        guard.disarm();
    } else {
        let mut headers = HeaderMap::new();
        for name in &config.stored_headers {
            for value in parts.headers.get_all(name) {
                headers.append(name.clone(), value.clone());
            }
        }
        // A response carrying a secret stores a redacted body instead: the replay answers the
        // same request without showing the secret a second time.
        let stored_body = match redacted {
            Some(StoreRedacted(redacted)) => redacted,
            None => body.clone(),
        };
        let record = Arc::new(StoredResponse::new(
            fingerprint,
            parts.status,
            headers,
            stored_body,
        ));
        match store
            .complete(&record_key, &token, Arc::clone(&record), config.ttl)
            .await
        {
            Ok(true) => guard.disarm(),
            Ok(false) => {
                guard.disarm();
                tracing::warn!(
                    "idempotency lease expired before the handler finished; response not stored"
                );
            }
            Err(error) => {
                // The handler ran and its answer goes to the client: releasing the key now would
                // let a retry run it a second time. Keep the lease and store the answer as soon
                // as the store is back (see `complete_later`).
                tracing::error!(%error, "failed to store an idempotent response; retrying");
                if tokio::runtime::Handle::try_current().is_ok() {
                    guard.disarm();
                    let deadline = claimed_at + config.lease;
                    tokio::spawn(complete_later(
                        store, record_key, token, record, config.ttl, deadline,
                    ));
                }
                // Without a runtime to retry on, the guard releases the key instead.
            }
        }
    }
    Ok(Response::from_parts(parts, ResBody::from(body)))
}

/// The first and the longest pause between attempts of [`complete_later`].
const COMPLETE_RETRY_FIRST: Duration = Duration::from_millis(100);
const COMPLETE_RETRY_MAX: Duration = Duration::from_secs(1);

/// Stores the answer of a handler that ran after the store failed to record it (e.g. Redis
/// went down while the handler ran), retrying with a growing pause until it is stored or the
/// lease ends. Meanwhile the lease keeps the key in flight, so a retry is answered 409 (or 503
/// while the store is down) and never runs the handler again; once stored, it is replayed. Only
/// if the store stays down for the whole lease is the key left to expire (logged).
async fn complete_later(
    store: Arc<dyn IdempotencyStore>,
    key: RecordKey,
    token: LeaseToken,
    record: Arc<StoredResponse>,
    ttl: Duration,
    deadline: Instant,
) {
    let mut pause = COMPLETE_RETRY_FIRST;
    loop {
        if Instant::now() + pause >= deadline {
            tracing::error!(
                "the idempotency store stayed down for the whole lease; response not stored"
            );
            return;
        }
        tokio::time::sleep(pause).await;
        match store.complete(&key, &token, Arc::clone(&record), ttl).await {
            Ok(true) => {
                tracing::info!("idempotent response stored after the store came back");
                return;
            }
            Ok(false) => {
                tracing::warn!(
                    "idempotency lease expired before the response could be stored; not stored"
                );
                return;
            }
            Err(_) => pause = (pause * 2).min(COMPLETE_RETRY_MAX),
        }
    }
}

/// Whether `extensions` mark a response that a layer *inside* this one (the auth layer's
/// 401/403, a route's `RequireScopeLayer`, a rate limit's or concurrency cap's 429/503) or the
/// handler sent without executing the request: [`NotExecuted`], the one mark every refusing
/// layer of this crate sets. Such responses are not recorded, so a retry with the same key
/// after fixing the token (or waiting) runs the request rather than replaying the refusal.
/// Status codes are not consulted: a 409 or 429 the handler sent after writing is recorded.
fn rejected_before_handler(extensions: &http::Extensions) -> bool {
    extensions.get::<NotExecuted>().is_some()
}

/// Response extension: record this body instead of the one sent.
///
/// For a response that shows a secret once (a webhook signing secret): the client gets the real
/// body, the record holds this redacted one, so a replay with the same key answers with the same
/// status and headers and `Idempotent-Replayed: true` but without the secret — and the handler
/// does not run again (no duplicate resource). The secret never reaches the store. The
/// extension is removed from the response before it goes out.
///
/// ```
/// use bytes::Bytes;
/// use http::Response;
/// use l2c_core::idempotency::StoreRedacted;
///
/// let mut res = Response::new(Bytes::from_static(br#"{"id":"w-1","secret":"whsec_x"}"#));
/// res.extensions_mut()
///     .insert(StoreRedacted(Bytes::from_static(br#"{"id":"w-1"}"#)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreRedacted(pub Bytes);
