//! One rejection contract: every layer of this crate that answers instead of calling the inner
//! service marks its answer [`NotExecuted`], and [`IdempotencyLayer`] trusts only that mark.
//!
//! Each case puts one refusing layer under an `IdempotencyLayer`, sends a write with an
//! idempotency key and gets the refusal (marked), clears the cause, and sends the same key
//! again: the handler runs (the refusal was not stored), and a third send replays the handler's
//! answer. The opposite holds too: a 429 the *handler* sends is stored and replayed.
#![cfg(all(
    feature = "auth",
    feature = "rate-limit",
    feature = "concurrency",
    feature = "idempotency",
    feature = "webhook"
))]
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full};
use l2c_core::auth::{
    HmacKey, JwtAuthLayer, RequireScopeLayer, RevocationCheck, SigningKey, TokenIssuer,
    TokenVerifier,
};
use l2c_core::concurrency::{Acquire, ConcurrencyCapLayer, ConcurrencyStore, Permit};
use l2c_core::idempotency::{IDEMPOTENT_REPLAYED, IdempotencyLayer};
use l2c_core::limits::{FailurePolicy, StoreError};
use l2c_core::rate_limit::{Decision, GcraParams, KeyedRateLimitLayer, Quota, RateLimitStore};
use l2c_core::webhook::{Verifier, VerifyWebhookLayer, WebhookSecret, sign_headers};
use l2c_core::{AuthenticatedClient, ClientId, NotExecuted, Scope, Scopes};
use tower::{Layer, Service, ServiceExt, service_fn};

type Req = Request<Full<Bytes>>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A switch the test flips to clear the cause of a refusal.
#[derive(Debug, Clone, Default)]
struct Cleared(Arc<AtomicBool>);

impl Cleared {
    fn get(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
    fn set(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// The handler: counts its calls and answers 201.
fn handler(
    calls: Arc<AtomicUsize>,
) -> impl Service<Req, Response = Response<Full<Bytes>>, Error = Infallible, Future: Send>
+ Clone
+ Send
+ 'static {
    service_fn(move |_req: Req| {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        async move {
            let mut res = Response::new(Full::new(Bytes::from(format!("created {n}"))));
            *res.status_mut() = StatusCode::CREATED;
            Ok::<_, Infallible>(res)
        }
    })
}

/// Sends a write with key `k-1` three times to `svc` (an `IdempotencyLayer` over the refusing
/// layer): the first is refused with `status` and marked, `cleared` is then set, the second runs
/// the handler, the third replays it.
async fn refusal_is_not_replayed<S, B>(
    svc: S,
    request: impl Fn() -> Req,
    cleared: &Cleared,
    calls: &AtomicUsize,
    status: StatusCode,
) where
    S: Service<Req, Response = Response<B>, Error = Infallible> + Clone,
{
    let first = svc.clone().oneshot(request()).await.unwrap();
    assert_eq!(first.status(), status);
    assert!(first.extensions().get::<NotExecuted>().is_some());
    assert!(first.headers().get(&IDEMPOTENT_REPLAYED).is_none());
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "the refusal ran the handler"
    );

    cleared.set();
    let second = svc.clone().oneshot(request()).await.unwrap();
    assert_eq!(
        second.status(),
        StatusCode::CREATED,
        "the refusal was replayed"
    );
    assert!(second.headers().get(&IDEMPOTENT_REPLAYED).is_none());
    let third = svc.oneshot(request()).await.unwrap();
    assert_eq!(third.status(), StatusCode::CREATED);
    assert_eq!(third.headers()[&IDEMPOTENT_REPLAYED], "true");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// A write from `acme` (as an auth layer outside would have put it) with key `k-1`.
fn write(headers: HeaderMap, body: Bytes) -> Req {
    let mut req = Request::post("/orders").body(Full::new(body)).unwrap();
    *req.headers_mut() = headers;
    req.headers_mut()
        .insert("x-request-id", "k-1".parse().unwrap());
    req.extensions_mut()
        .insert(AuthenticatedClient::new("acme", Scopes::all()));
    req
}

fn issuer_and_verifier() -> (TokenIssuer, Arc<TokenVerifier>) {
    let key = HmacKey::generate();
    let issuer = TokenIssuer::new(
        "https://l2c.example",
        "l2c",
        SigningKey::Hmac(key.clone(), None),
    );
    let verifier = TokenVerifier::builder("https://l2c.example", "l2c")
        .hmac_key(key)
        .build()
        .unwrap();
    (issuer, Arc::new(verifier))
}

fn bearer(issuer: &TokenIssuer, scopes: Scopes) -> HeaderMap {
    let token = issuer.issue(&ClientId::new("acme"), scopes).access_token;
    let mut headers = HeaderMap::new();
    headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
    headers
}

#[tokio::test]
async fn the_auth_layers_401_without_a_token_is_not_replayed() {
    let (issuer, verifier) = issuer_and_verifier();
    let (cleared, calls) = (Cleared::default(), Arc::new(AtomicUsize::new(0)));
    let svc = IdempotencyLayer::new()
        .layer(JwtAuthLayer::new(verifier).layer(handler(Arc::clone(&calls))));
    let request = || {
        let headers = if cleared.get() {
            bearer(&issuer, Scopes::all())
        } else {
            HeaderMap::new()
        };
        write(headers, Bytes::from_static(b"{}"))
    };
    refusal_is_not_replayed(svc, request, &cleared, &calls, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn a_revoked_clients_401_is_not_replayed() {
    let (issuer, verifier) = issuer_and_verifier();
    let (cleared, calls) = (Cleared::default(), Arc::new(AtomicUsize::new(0)));
    let hook = {
        let cleared = cleared.clone();
        move |_: &AuthenticatedClient| {
            if cleared.get() {
                RevocationCheck::Active
            } else {
                RevocationCheck::Revoked
            }
        }
    };
    let svc = IdempotencyLayer::new().layer(
        JwtAuthLayer::new(verifier)
            .with_revocation(hook)
            .layer(handler(Arc::clone(&calls))),
    );
    let request = || write(bearer(&issuer, Scopes::all()), Bytes::from_static(b"{}"));
    refusal_is_not_replayed(svc, request, &cleared, &calls, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn a_401_after_a_revocation_lookup_is_not_replayed() {
    let (issuer, verifier) = issuer_and_verifier();
    let (cleared, calls) = (Cleared::default(), Arc::new(AtomicUsize::new(0)));
    let hook = {
        let cleared = cleared.clone();
        move |_: &AuthenticatedClient| {
            let cleared = cleared.clone();
            RevocationCheck::lookup(async move {
                tokio::task::yield_now().await;
                cleared.get()
            })
        }
    };
    let svc = IdempotencyLayer::new().layer(
        JwtAuthLayer::new(verifier)
            .with_revocation(hook)
            .layer(handler(Arc::clone(&calls))),
    );
    let request = || write(bearer(&issuer, Scopes::all()), Bytes::from_static(b"{}"));
    refusal_is_not_replayed(svc, request, &cleared, &calls, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn a_scope_403_is_not_replayed() {
    let (cleared, calls) = (Cleared::default(), Arc::new(AtomicUsize::new(0)));
    let svc = IdempotencyLayer::new()
        .layer(RequireScopeLayer::one(Scope::OrdersWrite).layer(handler(Arc::clone(&calls))));
    let request = || {
        let mut req = write(HeaderMap::new(), Bytes::from_static(b"{}"));
        let scopes = if cleared.get() {
            Scopes::all()
        } else {
            Scopes::one(Scope::OrdersRead)
        };
        req.extensions_mut()
            .insert(AuthenticatedClient::new("acme", scopes));
        req
    };
    refusal_is_not_replayed(svc, request, &cleared, &calls, StatusCode::FORBIDDEN).await;
}

/// A limit store that refuses (`Full`/denied) or fails until cleared.
#[derive(Debug, Clone)]
struct SwitchStore {
    cleared: Cleared,
    fail: bool,
}

#[async_trait]
impl RateLimitStore for SwitchStore {
    async fn check(&self, _key: &str, _params: GcraParams) -> Result<Decision, StoreError> {
        match (self.cleared.get(), self.fail) {
            (true, _) => Ok(Decision::allowed(9, 1_000_000_000)),
            (false, false) => Ok(Decision {
                allowed: false,
                remaining: 0,
                reset_after_nanos: 1_000_000_000,
            }),
            (false, true) => Err(StoreError::Timeout),
        }
    }
}

#[async_trait]
impl ConcurrencyStore for SwitchStore {
    async fn acquire(&self, _key: &str, _limit: u32) -> Result<Acquire, StoreError> {
        match (self.cleared.get(), self.fail) {
            (true, _) => Ok(Acquire::Granted {
                permit: Permit::new(()),
                available: 0,
            }),
            (false, false) => Ok(Acquire::Full),
            (false, true) => Err(StoreError::Timeout),
        }
    }
}

#[tokio::test]
async fn the_rate_limits_429_and_503_are_not_replayed() {
    for (fail, status) in [
        (false, StatusCode::TOO_MANY_REQUESTS),
        (true, StatusCode::SERVICE_UNAVAILABLE),
    ] {
        let (cleared, calls) = (Cleared::default(), Arc::new(AtomicUsize::new(0)));
        let store = SwitchStore {
            cleared: cleared.clone(),
            fail,
        };
        let limit = KeyedRateLimitLayer::new("10/s".parse::<Quota>().unwrap())
            .with_store(store)
            .failure_policy(FailurePolicy::Closed);
        let decisions = limit.decisions().clone();
        let svc = IdempotencyLayer::new().layer(limit.layer(handler(Arc::clone(&calls))));
        let request = || write(HeaderMap::new(), Bytes::from_static(b"{}"));
        refusal_is_not_replayed(svc, request, &cleared, &calls, status).await;
        // The limiter saw the refused request and the one that ran (the replay never reached it).
        assert_eq!(decisions.allowed(), 1);
        assert_eq!(decisions.rejected(), u64::from(!fail));
        assert_eq!(decisions.unavailable(), u64::from(fail));
    }
}

/// Any body, buildable from bytes (what a framework's body type is).
struct AnyBody(UnsyncBoxBody<Bytes, BoxError>);

impl AnyBody {
    fn new<B>(body: B) -> Self
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        Self(body.map_err(Into::into).boxed_unsync())
    }
}

impl From<Bytes> for AnyBody {
    fn from(bytes: Bytes) -> Self {
        Self::new(Full::new(bytes))
    }
}

impl http_body::Body for AnyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        std::pin::Pin::new(&mut self.0).poll_frame(cx)
    }
}

#[tokio::test]
async fn the_concurrency_caps_429_and_503_are_not_replayed() {
    for (fail, status) in [
        (false, StatusCode::TOO_MANY_REQUESTS),
        (true, StatusCode::SERVICE_UNAVAILABLE),
    ] {
        let (cleared, calls) = (Cleared::default(), Arc::new(AtomicUsize::new(0)));
        let store = SwitchStore {
            cleared: cleared.clone(),
            fail,
        };
        let cap = ConcurrencyCapLayer::new(1)
            .with_store(store)
            .failure_policy(FailurePolicy::Closed);
        let decisions = cap.decisions().clone();
        // The cap's body holds the slot; box it into a body the idempotency layer can build.
        let capped = cap
            .layer(handler(Arc::clone(&calls)))
            .map_response(|res| res.map(AnyBody::new));
        let svc = IdempotencyLayer::new().layer(capped);
        let request = || write(HeaderMap::new(), Bytes::from_static(b"{}"));
        refusal_is_not_replayed(svc, request, &cleared, &calls, status).await;
        assert_eq!(decisions.allowed(), 1);
        assert_eq!(decisions.rejected(), u64::from(!fail));
        assert_eq!(decisions.unavailable(), u64::from(fail));
    }
}

#[tokio::test]
async fn a_webhook_verification_refusal_is_not_replayed() {
    let secret: WebhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwIPv1S6yHkZY="
        .parse()
        .unwrap();
    let now = 1_795_654_800;
    let body = Bytes::from_static(
        r#"{"id":"evt_1","type":"ORDER_CREATED","createdAt":"2026-11-26T09:00:00+08:00","data":{"orderId":"ord_1","externalOrderNo":"ERP-2026-0001","status":"DEPOSIT_PAID","statusLabel":"已下定金","paymentStatus":"DEPOSIT_PAID","paymentStatusLabel":"已付定金","amounts":{"total":1990000,"deposit":200000,"paid":200000,"currency":"CNY"},"customerId":"cus_1","version":1}}"#
            .as_bytes(),
    );
    let (cleared, calls) = (Cleared::default(), Arc::new(AtomicUsize::new(0)));
    let verifier =
        Verifier::new(secret.clone()).with_clock(l2c_core::clock::MockClock::at_unix(now));
    let svc = IdempotencyLayer::new()
        .layer(VerifyWebhookLayer::new(verifier).layer(handler(Arc::clone(&calls))));
    let request = || {
        let mut headers = HeaderMap::new();
        if cleared.get() {
            let events = l2c_core::api::events::EventType::OrderCreated;
            for (name, value) in sign_headers(&[&secret], "evt_1", events, now, &body).unwrap() {
                headers.insert(name, value);
            }
        }
        write(headers, body.clone())
    };
    refusal_is_not_replayed(svc, request, &cleared, &calls, StatusCode::UNAUTHORIZED).await;
}

/// The other side of the contract: status codes alone mean nothing. A 429 the handler sends
/// after doing its work carries no mark, so it is stored and replayed.
#[tokio::test]
async fn an_unmarked_429_from_the_handler_is_replayed() {
    let calls = Arc::new(AtomicUsize::new(0));
    let inner = {
        let calls = Arc::clone(&calls);
        service_fn(move |_req: Req| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move {
                let mut res = Response::new(Full::new(Bytes::from_static(b"busy")));
                *res.status_mut() = StatusCode::TOO_MANY_REQUESTS;
                Ok::<_, Infallible>(res)
            }
        })
    };
    let svc = IdempotencyLayer::new().layer(inner);
    let request = || write(HeaderMap::new(), Bytes::from_static(b"{}"));
    let first = svc.clone().oneshot(request()).await.unwrap();
    assert_eq!(first.status(), StatusCode::TOO_MANY_REQUESTS);
    let second = svc.oneshot(request()).await.unwrap();
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(second.headers()[&IDEMPOTENT_REPLAYED], "true");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// The idempotency layer's own refusals carry the mark too, so an idempotency layer further out
/// (or any other consumer of the contract) treats them alike.
#[tokio::test]
async fn the_idempotency_layers_own_refusals_are_marked() {
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = IdempotencyLayer::new().layer(handler(Arc::clone(&calls)));
    // Missing key.
    let mut req = write(HeaderMap::new(), Bytes::from_static(b"{}"));
    req.headers_mut().remove("x-request-id");
    let res = svc.clone().oneshot(req).await.unwrap();
    assert!(res.status().is_client_error());
    assert!(res.extensions().get::<NotExecuted>().is_some());
    // The same key with another body.
    let res = svc
        .clone()
        .oneshot(write(HeaderMap::new(), Bytes::from_static(b"{}")))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert!(res.extensions().get::<NotExecuted>().is_none());
    let res = svc
        .oneshot(write(HeaderMap::new(), Bytes::from_static(b"{\"x\":1}")))
        .await
        .unwrap();
    assert!(res.status().is_client_error(), "{}", res.status());
    assert!(res.extensions().get::<NotExecuted>().is_some());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}
