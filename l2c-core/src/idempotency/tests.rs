//! Behaviour tests of the idempotency layer: tower `oneshot`, a mock handler counting its calls,
//! paused Tokio time where time matters. Redis tests need `L2C_TEST_REDIS_URL`.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tokio::sync::{Semaphore, mpsc};
use tower::{Layer, Service, ServiceExt, service_fn};

use super::*;
use crate::identity::{AuthenticatedClient, Scopes};
use crate::request_id::RequestId;

type Req = Request<Full<Bytes>>;
type Res = Response<Full<Bytes>>;

const BODY: &str = r#"{"source":"DOUYIN","externalLeadId":"dy-1","mobile":"13812345678"}"#;

/// A handler that counts its calls and lets `f` decide how call `n` answers.
fn handler<F, Fut>(
    calls: &Arc<AtomicUsize>,
    f: F,
) -> impl Service<Req, Response = Res, Error = Infallible, Future: Send> + Clone + Send + 'static
where
    F: Fn(usize, Req) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Res> + Send + 'static,
{
    let calls = Arc::clone(calls);
    service_fn(move |req: Req| {
        let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
        let fut = f(n, req);
        async move { Ok::<_, Infallible>(fut.await) }
    })
}

/// 201 with an allow-listed `content-type` and `location`, a per-call header that must not be
/// replayed, and a body that differs on every call.
async fn created(n: usize, req: Req) -> Res {
    let body = req.into_body().collect().await.unwrap().to_bytes();
    Response::builder()
        .status(StatusCode::CREATED)
        .header("content-type", "application/json")
        .header("location", format!("/api/mobile/leads/{n}"))
        .header("x-handler-call", n.to_string())
        .body(Full::from(format!(
            "{{\"leadId\":{n},\"echoLen\":{}}}",
            body.len()
        )))
        .unwrap()
}

fn post(key: Option<&str>, body: &str, client: Option<&str>) -> Req {
    request(Method::POST, "/api/mobile/leads/hook", key, body, client)
}

fn request(method: Method, path: &str, key: Option<&str>, body: &str, client: Option<&str>) -> Req {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(key) = key {
        builder = builder.header("x-request-id", key);
    }
    let mut req = builder.body(Full::from(body.to_owned())).unwrap();
    if let Some(client) = client {
        req.extensions_mut()
            .insert(AuthenticatedClient::new(client, Scopes::all()));
    }
    req
}

#[derive(Debug, Clone, PartialEq)]
struct Snapshot {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    rejection: Option<IdempotencyRejection>,
}

impl Snapshot {
    fn replayed(&self) -> bool {
        self.headers
            .get(&IDEMPOTENT_REPLAYED)
            .is_some_and(|v| v == "true")
    }

    fn problem(&self) -> serde_json::Value {
        assert_eq!(self.headers["content-type"], "application/problem+json");
        serde_json::from_slice(&self.body).unwrap()
    }

    /// A replay carries exactly the original's status, allow-listed headers and body.
    fn assert_replay_of(&self, original: &Snapshot) {
        assert!(self.replayed(), "not a replay: {self:?}");
        assert_eq!(self.status, original.status);
        assert_eq!(self.body, original.body, "replayed body differs");
        for name in DEFAULT_STORED_HEADERS.iter() {
            let replayed: Vec<_> = self.headers.get_all(name).iter().collect();
            let first: Vec<_> = original.headers.get_all(name).iter().collect();
            assert_eq!(replayed, first, "header {name} differs");
        }
        assert!(self.headers.get("x-handler-call").is_none());
        // Nothing but the allow-list and the replay marker.
        assert_eq!(
            self.headers.len(),
            original
                .headers
                .keys()
                .filter(|n| DEFAULT_STORED_HEADERS.contains(n))
                .map(|n| original.headers.get_all(n).iter().count())
                .sum::<usize>()
                + 1
        );
    }
}

async fn snapshot(res: Res) -> Snapshot {
    let rejection = res.extensions().get::<IdempotencyRejection>().copied();
    let (parts, body) = res.into_parts();
    Snapshot {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
        rejection,
    }
}

fn send<S>(svc: &S, req: Req) -> impl Future<Output = Snapshot> + Send + use<S>
where
    S: Service<Req, Response = Res, Error = Infallible> + Clone + Send,
    S::Future: Send,
{
    let response = svc.clone().oneshot(req);
    async move { snapshot(response.await.unwrap()).await }
}

/// A store that counts its calls, to prove pass-through requests never touch it.
#[derive(Debug, Default)]
struct CountingStore {
    inner: MemoryIdempotencyStore,
    calls: AtomicUsize,
}

#[async_trait]
impl IdempotencyStore for CountingStore {
    async fn claim(
        &self,
        key: &RecordKey,
        fingerprint: &Fingerprint,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.claim(key, fingerprint, lease).await
    }

    async fn complete(
        &self,
        key: &RecordKey,
        token: &LeaseToken,
        response: Arc<StoredResponse>,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.complete(key, token, response, ttl).await
    }

    async fn release(&self, key: &RecordKey, token: &LeaseToken) -> Result<(), StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.release(key, token).await
    }
}

/// 100 identical requests (same client, key and body) split over `a` and `b` (one service, or
/// two replicas sharing a store) against a handler held at `gate`: the handler runs once, the
/// other 99 get 409, and every retry afterwards replays the first response byte for byte.
async fn hundred_identical_requests<S>(a: S, b: S, calls: Arc<AtomicUsize>, gate: Arc<Semaphore>)
where
    S: Service<Req, Response = Res, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    let (tx, mut rx) = mpsc::unbounded_channel();
    for i in 0..100 {
        let svc = if i % 2 == 0 { a.clone() } else { b.clone() };
        let tx = tx.clone();
        tokio::spawn(async move {
            let res = send(&svc, post(Some("lead-dy-1"), BODY, Some("client-a"))).await;
            tx.send(res).unwrap();
        });
    }
    for _ in 0..99 {
        let res = rx.recv().await.unwrap();
        assert_eq!(res.status, StatusCode::CONFLICT, "{res:?}");
        assert_eq!(res.headers["retry-after"], "1");
        assert_eq!(res.problem()["code"], "idempotency_key_in_use");
        assert_eq!(res.rejection, Some(IdempotencyRejection::InFlight));
    }
    assert!(calls.load(Ordering::SeqCst) <= 1);
    gate.add_permits(1);
    let first = rx.recv().await.unwrap();
    assert_eq!(first.status, StatusCode::CREATED);
    assert!(!first.replayed());
    assert_eq!(first.headers["x-handler-call"], "1");
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    let mut replays = Vec::new();
    for i in 0..10 {
        let svc = if i % 2 == 0 { &a } else { &b };
        let res = send(svc, post(Some("lead-dy-1"), BODY, Some("client-a"))).await;
        res.assert_replay_of(&first);
        replays.push(res);
    }
    assert!(replays.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the handler ran again");
}

fn gated(
    calls: &Arc<AtomicUsize>,
    gate: &Arc<Semaphore>,
) -> impl Service<Req, Response = Res, Error = Infallible, Future: Send> + Clone + Send + 'static {
    let gate = Arc::clone(gate);
    handler(calls, move |n, req| {
        let gate = Arc::clone(&gate);
        async move {
            let _permit = gate.acquire().await.unwrap();
            created(n, req).await
        }
    })
}

#[tokio::test]
async fn memory_store_runs_100_concurrent_identical_requests_once() {
    let calls = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(0));
    let svc = IdempotencyLayer::new().layer(gated(&calls, &gate));
    hundred_identical_requests(svc.clone(), svc, calls, gate).await;
}

#[tokio::test(start_paused = true)]
async fn memory_store_with_a_sleeping_handler_answers_replay_or_409() {
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = IdempotencyLayer::new().layer(handler(&calls, |n, req| async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        created(n, req).await
    }));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let svc = svc.clone();
            tokio::spawn(async move { send(&svc, post(Some("k-1"), BODY, Some("c"))).await })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let originals: Vec<_> = results
        .iter()
        .filter(|r| r.status == StatusCode::CREATED && !r.replayed())
        .collect();
    assert_eq!(originals.len(), 1);
    let first = originals[0].clone();
    for r in &results {
        assert!(
            r == &first || r.status == StatusCode::CONFLICT || r.replayed(),
            "unexpected {r:?}"
        );
        if r.replayed() {
            r.assert_replay_of(&first);
        }
    }
    send(&svc, post(Some("k-1"), BODY, Some("c")))
        .await
        .assert_replay_of(&first);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn one_clients_key_never_replays_for_another() {
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = IdempotencyLayer::new().layer(handler(&calls, created));
    let a = send(&svc, post(Some("shared-key"), BODY, Some("client-a"))).await;
    let b = send(&svc, post(Some("shared-key"), BODY, Some("client-b"))).await;
    let anonymous = send(&svc, post(Some("shared-key"), BODY, None)).await;
    for res in [&a, &b, &anonymous] {
        assert_eq!(res.status, StatusCode::CREATED);
        assert!(!res.replayed());
    }
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    // Each still replays for its own owner.
    send(&svc, post(Some("shared-key"), BODY, Some("client-b")))
        .await
        .assert_replay_of(&b);
    send(&svc, post(Some("shared-key"), BODY, None))
        .await
        .assert_replay_of(&anonymous);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn same_key_on_another_route_or_method_is_another_record() {
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = IdempotencyLayer::new().layer(handler(&calls, created));
    let path = "/api/mobile/orders/sync";
    for method in [Method::POST, Method::PUT, Method::PATCH] {
        let res = send(
            &svc,
            request(method.clone(), path, Some("k"), BODY, Some("c")),
        )
        .await;
        assert_eq!(res.status, StatusCode::CREATED, "{method}");
        assert!(!res.replayed());
        let again = send(
            &svc,
            request(method.clone(), path, Some("k"), BODY, Some("c")),
        )
        .await;
        again.assert_replay_of(&res);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn changed_body_or_query_with_the_same_key_is_422() {
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = IdempotencyLayer::new().layer(handler(&calls, created));
    send(&svc, post(Some("k"), BODY, Some("c"))).await;
    let res = send(&svc, post(Some("k"), "{\"other\":1}", Some("c"))).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(res.problem()["code"], "idempotency_key_reused");
    assert_eq!(res.rejection, Some(IdempotencyRejection::KeyReused));
    let path = "/api/mobile/leads/hook?dryRun=true";
    let res = send(
        &svc,
        request(Method::POST, path, Some("k"), BODY, Some("c")),
    )
    .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn changed_body_while_the_first_is_running_is_422_not_409() {
    let calls = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(0));
    let svc = IdempotencyLayer::new().layer(gated(&calls, &gate));
    let running = tokio::spawn({
        let svc = svc.clone();
        async move { send(&svc, post(Some("k"), BODY, Some("c"))).await }
    });
    while calls.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    let res = send(&svc, post(Some("k"), "{}", Some("c"))).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    gate.add_permits(1);
    assert_eq!(running.await.unwrap().status, StatusCode::CREATED);
}

#[tokio::test]
async fn bad_keys_are_400_and_never_reach_the_handler_or_the_store() {
    let calls = Arc::new(AtomicUsize::new(0));
    let store = Arc::new(CountingStore::default());
    let svc = IdempotencyLayer::new()
        .with_store(store.clone())
        .layer(handler(&calls, created));

    let mut missing = post(None, BODY, Some("c"));
    missing.extensions_mut().insert(RequestId::new("req-123"));
    let res = send(&svc, missing).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    let problem = res.problem();
    assert_eq!(problem["code"], "idempotency_key_missing");
    assert_eq!(problem["requestId"], "req-123");
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("Idempotency-Key") && detail.contains("X-Request-Id"),
        "{detail}"
    );
    assert_eq!(res.rejection, Some(IdempotencyRejection::MissingKey));

    let long = "a".repeat(256);
    let res = send(&svc, post(Some(&long), BODY, Some("c"))).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.problem()["code"], "idempotency_key_invalid");
    assert!(
        res.problem()["detail"]
            .as_str()
            .unwrap()
            .contains("X-Request-Id")
    );

    let mut both = post(Some("key-one"), BODY, Some("c"));
    both.headers_mut()
        .insert("idempotency-key", "key-two".parse().unwrap());
    let res = send(&svc, both).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.problem()["code"], "idempotency_key_conflict");

    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert_eq!(store.calls.load(Ordering::SeqCst), 0);

    // 255 characters are fine, and the quoted and raw forms name the same key.
    let max = "b".repeat(255);
    assert_eq!(
        send(&svc, post(Some(&max), BODY, Some("c"))).await.status,
        StatusCode::CREATED
    );
    let mut both = post(Some("same"), BODY, Some("c"));
    both.headers_mut()
        .insert("idempotency-key", "\"same\"".parse().unwrap());
    let first = send(&svc, both).await;
    assert_eq!(first.status, StatusCode::CREATED);
    send(&svc, post(Some("same"), BODY, Some("c")))
        .await
        .assert_replay_of(&first);
}

#[tokio::test]
async fn a_missing_key_passes_through_when_not_required() {
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = IdempotencyLayer::new()
        .required(false)
        .layer(handler(&calls, created));
    for _ in 0..2 {
        let res = send(&svc, post(None, BODY, Some("c"))).await;
        assert_eq!(res.status, StatusCode::CREATED);
        assert!(!res.replayed());
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // A bad key is still refused.
    let res = send(&svc, post(Some("a b"), BODY, Some("c"))).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_whether_declared_or_streamed() {
    let calls = Arc::new(AtomicUsize::new(0));
    let store = Arc::new(CountingStore::default());
    let svc = IdempotencyLayer::new()
        .max_body_bytes(16)
        .with_store(store.clone())
        .layer(handler(&calls, created));
    // No content-length: found while buffering.
    let res = send(&svc, post(Some("k"), &"x".repeat(17), Some("c"))).await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(res.problem()["code"], "payload_too_large");
    assert_eq!(res.rejection, Some(IdempotencyRejection::BodyTooLarge));
    // Declared: refused before reading.
    let mut req = post(Some("k"), "tiny", Some("c"));
    req.headers_mut()
        .insert("content-length", "1000000".parse().unwrap());
    let res = send(&svc, req).await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert_eq!(store.calls.load(Ordering::SeqCst), 0);
    // At the limit the same key then works: nothing was recorded.
    let res = send(&svc, post(Some("k"), &"x".repeat(16), Some("c"))).await;
    assert_eq!(res.status, StatusCode::CREATED);
    assert_eq!(res.body, Bytes::from("{\"leadId\":1,\"echoLen\":16}"));
}

#[tokio::test(start_paused = true)]
async fn lease_expiry_unblocks_a_handler_that_never_finishes() {
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = IdempotencyLayer::new()
        .lease(Duration::from_secs(60))
        .unwrap()
        .layer(handler(&calls, |n, req| async move {
            if n == 1 {
                std::future::pending::<()>().await;
            }
            created(n, req).await
        }));
    let stuck = tokio::spawn({
        let svc = svc.clone();
        async move { send(&svc, post(Some("k"), BODY, Some("c"))).await }
    });
    while calls.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    tokio::time::advance(Duration::from_secs(59)).await;
    assert_eq!(
        send(&svc, post(Some("k"), BODY, Some("c"))).await.status,
        StatusCode::CONFLICT
    );
    tokio::time::advance(Duration::from_secs(2)).await;
    let res = send(&svc, post(Some("k"), BODY, Some("c"))).await;
    assert_eq!(res.status, StatusCode::CREATED);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // The stuck request gives up later; its release must not free the new record.
    stuck.abort();
    assert!(stuck.await.unwrap_err().is_cancelled());
    send(&svc, post(Some("k"), BODY, Some("c")))
        .await
        .assert_replay_of(&res);
}

/// A memory store whose first `failures` completions fail, like Redis going down while a
/// handler runs and coming back.
#[derive(Debug, Default)]
struct FlakyCompleteStore {
    inner: MemoryIdempotencyStore,
    failures: AtomicUsize,
    completes: AtomicUsize,
}

#[async_trait]
impl IdempotencyStore for FlakyCompleteStore {
    async fn claim(
        &self,
        key: &RecordKey,
        fingerprint: &Fingerprint,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        self.inner.claim(key, fingerprint, lease).await
    }

    async fn complete(
        &self,
        key: &RecordKey,
        token: &LeaseToken,
        response: Arc<StoredResponse>,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        self.completes.fetch_add(1, Ordering::SeqCst);
        let failing = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(StoreError::new(StoreErrorKind::Unavailable, "down"));
        }
        self.inner.complete(key, token, response, ttl).await
    }

    async fn release(&self, key: &RecordKey, token: &LeaseToken) -> Result<(), StoreError> {
        self.inner.release(key, token).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_response_the_store_failed_to_record_is_stored_later_and_never_rerun() {
    let store = Arc::new(FlakyCompleteStore {
        failures: AtomicUsize::new(3),
        ..FlakyCompleteStore::default()
    });
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = IdempotencyLayer::new()
        .with_store(Arc::clone(&store) as Arc<dyn IdempotencyStore>)
        .layer(handler(&calls, created));
    // The handler ran: the client gets its answer even though recording it failed.
    let first = send(&svc, post(Some("k"), BODY, Some("c"))).await;
    assert_eq!(first.status, StatusCode::CREATED);
    // The key is not released: a retry while the store is still failing does not run again.
    let retry = send(&svc, post(Some("k"), BODY, Some("c"))).await;
    assert_eq!(retry.status, StatusCode::CONFLICT, "{retry:?}");
    // Once the store answers again, the response is stored and replayed.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(store.completes.load(Ordering::SeqCst), 4);
    let replay = send(&svc, post(Some("k"), BODY, Some("c"))).await;
    replay.assert_replay_of(&first);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_store_down_for_the_whole_lease_lets_the_key_expire() {
    let store = Arc::new(FlakyCompleteStore {
        failures: AtomicUsize::new(usize::MAX),
        ..FlakyCompleteStore::default()
    });
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = IdempotencyLayer::new()
        .lease(Duration::from_secs(10))
        .unwrap()
        .with_store(Arc::clone(&store) as Arc<dyn IdempotencyStore>)
        .layer(handler(&calls, created));
    assert_eq!(
        send(&svc, post(Some("k"), BODY, Some("c"))).await.status,
        StatusCode::CREATED
    );
    // Retries are bounded by the lease (about one a second at most)...
    tokio::time::sleep(Duration::from_secs(30)).await;
    let attempts = store.completes.load(Ordering::SeqCst);
    assert!((5..=20).contains(&attempts), "{attempts} attempts");
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(
        store.completes.load(Ordering::SeqCst),
        attempts,
        "retries stopped"
    );
    // ...and the expired lease frees the key.
    assert_eq!(
        send(&svc, post(Some("k"), BODY, Some("c"))).await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn a_dropped_request_frees_the_key_at_once() {
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = IdempotencyLayer::new().layer(handler(&calls, |n, req| async move {
        if n == 1 {
            std::future::pending::<()>().await;
        }
        created(n, req).await
    }));
    let mut first = Box::pin(svc.clone().oneshot(post(Some("k"), BODY, Some("c"))));
    // Drive the first request into the handler, then drop it like a disconnected client.
    while calls.load(Ordering::SeqCst) == 0 {
        assert!(
            std::future::poll_fn(|cx| std::task::Poll::Ready(first.as_mut().poll(cx)))
                .await
                .is_pending()
        );
        tokio::task::yield_now().await;
    }
    assert_eq!(
        send(&svc, post(Some("k"), BODY, Some("c"))).await.status,
        StatusCode::CONFLICT
    );
    drop(first);
    let res = send(&svc, post(Some("k"), BODY, Some("c"))).await;
    assert_eq!(res.status, StatusCode::CREATED);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_panicking_handler_frees_the_key() {
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = IdempotencyLayer::new().layer(handler(&calls, |n, req| async move {
        assert!(n != 1, "handler failure on purpose");
        created(n, req).await
    }));
    let panicked = tokio::spawn({
        let svc = svc.clone();
        async move { send(&svc, post(Some("k"), BODY, Some("c"))).await }
    })
    .await;
    assert!(panicked.unwrap_err().is_panic());
    let res = send(&svc, post(Some("k"), BODY, Some("c"))).await;
    assert_eq!(res.status, StatusCode::CREATED);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn other_methods_pass_through_without_touching_the_store() {
    let calls = Arc::new(AtomicUsize::new(0));
    let store = Arc::new(CountingStore::default());
    let svc = IdempotencyLayer::new()
        .with_store(store.clone())
        .layer(handler(&calls, |n, _req| async move {
            Response::new(Full::from(format!("call {n}")))
        }));
    for method in [Method::GET, Method::DELETE, Method::HEAD, Method::OPTIONS] {
        for _ in 0..2 {
            let res = send(
                &svc,
                request(method.clone(), "/api/mobile/x", Some("k"), "", Some("c")),
            )
            .await;
            assert_eq!(res.status, StatusCode::OK);
            assert!(!res.replayed());
        }
        // No key at all is fine too.
        send(&svc, request(method, "/api/mobile/x", None, "", Some("c"))).await;
    }
    assert_eq!(calls.load(Ordering::SeqCst), 12);
    assert_eq!(store.calls.load(Ordering::SeqCst), 0);
}

fn flaky()
-> impl Fn(usize, Req) -> std::pin::Pin<Box<dyn Future<Output = Res> + Send>> + Clone + Send + 'static
{
    |n, req| {
        Box::pin(async move {
            if n == 1 {
                let mut res = Response::new(Full::from("{\"error\":\"db down\"}"));
                *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                res
            } else {
                created(n, req).await
            }
        })
    }
}

#[tokio::test]
async fn server_errors_are_not_stored_by_default() {
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = IdempotencyLayer::new().layer(handler(&calls, flaky()));
    let first = send(&svc, post(Some("k"), BODY, Some("c"))).await;
    assert_eq!(first.status, StatusCode::INTERNAL_SERVER_ERROR);
    let retry = send(&svc, post(Some("k"), BODY, Some("c"))).await;
    assert_eq!(retry.status, StatusCode::CREATED);
    assert!(!retry.replayed());
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn server_errors_are_replayed_when_configured() {
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = IdempotencyLayer::new()
        .store_server_errors(true)
        .layer(handler(&calls, flaky()));
    let first = send(&svc, post(Some("k"), BODY, Some("c"))).await;
    assert_eq!(first.status, StatusCode::INTERNAL_SERVER_ERROR);
    send(&svc, post(Some("k"), BODY, Some("c")))
        .await
        .assert_replay_of(&first);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn client_errors_from_the_handler_are_replayed() {
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = IdempotencyLayer::new().layer(handler(&calls, |_n, _req| async move {
        crate::Problem::bad_request("invalid_field", "`mobile` is not a mobile number")
            .into_response::<Full<Bytes>>()
    }));
    let first = send(&svc, post(Some("k"), BODY, Some("c"))).await;
    assert_eq!(first.status, StatusCode::BAD_REQUEST);
    send(&svc, post(Some("k"), BODY, Some("c")))
        .await
        .assert_replay_of(&first);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn client_errors_marked_not_executed_are_not_stored() {
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = IdempotencyLayer::new().layer(handler(&calls, |n, req| async move {
        if n == 1 {
            let mut res = crate::Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported Media Type",
            )
            .into_response::<Full<Bytes>>();
            res.extensions_mut().insert(NotExecuted);
            res
        } else {
            created(n, req).await
        }
    }));
    let first = send(&svc, post(Some("k"), BODY, Some("c"))).await;
    assert_eq!(first.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let retry = send(&svc, post(Some("k"), BODY, Some("c"))).await;
    assert_eq!(retry.status, StatusCode::CREATED);
    assert!(!retry.replayed());
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // The successful retry is recorded as usual.
    send(&svc, post(Some("k"), BODY, Some("c")))
        .await
        .assert_replay_of(&retry);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn store_redacted_sends_the_real_body_and_replays_the_redacted_one() {
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = IdempotencyLayer::new().layer(handler(&calls, |n, _req| async move {
        let mut res = Response::builder()
            .status(StatusCode::CREATED)
            .header("content-type", "application/json")
            .body(Full::from(format!(r#"{{"id":{n},"secret":"whsec_s{n}"}}"#)))
            .unwrap();
        res.extensions_mut()
            .insert(StoreRedacted(Bytes::from(format!(r#"{{"id":{n}}}"#))));
        res
    }));
    let res = svc
        .clone()
        .oneshot(post(Some("k"), BODY, Some("c")))
        .await
        .unwrap();
    assert!(res.extensions().get::<StoreRedacted>().is_none());
    let first = snapshot(res).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(first.body, r#"{"id":1,"secret":"whsec_s1"}"#);
    let replay = send(&svc, post(Some("k"), BODY, Some("c"))).await;
    assert!(replay.replayed());
    assert_eq!(replay.status, StatusCode::CREATED);
    assert_eq!(replay.headers["content-type"], "application/json");
    assert_eq!(replay.body, r#"{"id":1}"#);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn records_expire_after_the_ttl() {
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = IdempotencyLayer::new()
        .ttl(Duration::from_secs(3600))
        .unwrap()
        .layer(handler(&calls, created));
    send(&svc, post(Some("k"), BODY, Some("c"))).await;
    tokio::time::advance(Duration::from_secs(3599)).await;
    assert!(
        send(&svc, post(Some("k"), BODY, Some("c")))
            .await
            .replayed()
    );
    tokio::time::advance(Duration::from_secs(2)).await;
    let res = send(&svc, post(Some("k"), "{\"new\":true}", Some("c"))).await;
    assert_eq!(res.status, StatusCode::CREATED);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn invalid_configuration_is_refused() {
    assert_eq!(
        IdempotencyLayer::new().key_headers([]).unwrap_err(),
        ConfigError::NoKeyHeader
    );
    assert!(IdempotencyLayer::new().ttl(Duration::ZERO).is_err());
    assert!(IdempotencyLayer::new().lease(Duration::ZERO).is_err());
}

#[tokio::test]
async fn custom_key_header_names_are_honoured() {
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = IdempotencyLayer::new()
        .key_headers([http::HeaderName::from_static("x-idem")])
        .unwrap()
        .layer(handler(&calls, created));
    // X-Request-Id is now just a tracing header.
    let res = send(&svc, post(Some("k"), BODY, Some("c"))).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert!(
        res.problem()["detail"]
            .as_str()
            .unwrap()
            .contains("`x-idem`")
    );
    let mut req = post(None, BODY, Some("c"));
    req.headers_mut().insert("x-idem", "abc".parse().unwrap());
    assert_eq!(send(&svc, req).await.status, StatusCode::CREATED);
}

#[cfg(feature = "redis")]
mod redis_store {
    use std::time::Instant;

    use ::redis::AsyncCommands;

    use super::*;

    fn url() -> Option<String> {
        let url = std::env::var("L2C_TEST_REDIS_URL").ok();
        if url.is_none() {
            eprintln!("skipping: L2C_TEST_REDIS_URL not set");
        }
        url
    }

    fn prefix() -> String {
        format!("l2c-test-{}", uuid::Uuid::new_v4())
    }

    fn store(url: &str, prefix: &str) -> Arc<dyn IdempotencyStore> {
        Arc::new(RedisIdempotencyStore::open(url, prefix).unwrap())
    }

    async fn cleanup(url: &str, prefix: &str) {
        let client = ::redis::Client::open(url).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> = conn.keys(format!("{prefix}:*")).await.unwrap();
        if !keys.is_empty() {
            let _: () = conn.del(keys).await.unwrap();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_replicas_run_100_concurrent_identical_requests_once() {
        let Some(url) = url() else { return };
        let prefix = prefix();
        let calls = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Semaphore::new(0));
        // Two stores with their own connections, as two server processes would have.
        let a = IdempotencyLayer::new()
            .with_store(store(&url, &prefix))
            .layer(gated(&calls, &gate));
        let b = IdempotencyLayer::new()
            .with_store(store(&url, &prefix))
            .layer(gated(&calls, &gate));
        hundred_identical_requests(a, b, calls, gate).await;
        cleanup(&url, &prefix).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_scopes_keys_rejects_changed_bodies_and_skips_5xx() {
        let Some(url) = url() else { return };
        let prefix = prefix();
        let calls = Arc::new(AtomicUsize::new(0));
        let svc = IdempotencyLayer::new()
            .with_store(store(&url, &prefix))
            .layer(handler(&calls, flaky()));
        // 5xx: not stored, the retry runs.
        let res = send(&svc, post(Some("k"), BODY, Some("client-a"))).await;
        assert_eq!(res.status, StatusCode::INTERNAL_SERVER_ERROR);
        let first = send(&svc, post(Some("k"), BODY, Some("client-a"))).await;
        assert_eq!(first.status, StatusCode::CREATED);
        send(&svc, post(Some("k"), BODY, Some("client-a")))
            .await
            .assert_replay_of(&first);
        // Another client's identical request executes.
        let b = send(&svc, post(Some("k"), BODY, Some("client-b"))).await;
        assert_eq!(b.status, StatusCode::CREATED);
        assert!(!b.replayed());
        // Changed body: 422.
        let res = send(&svc, post(Some("k"), "{}", Some("client-a"))).await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        cleanup(&url, &prefix).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_records_and_leases_carry_their_ttls() {
        let Some(url) = url() else { return };
        let prefix = prefix();
        let store = RedisIdempotencyStore::open(&url, prefix.clone()).unwrap();
        store.connect().await.unwrap();
        let key = RecordKey::new(Some("c"), &Method::POST, "/p", "k");
        let fp = Fingerprint::new(&Method::POST, "/p", b"body");
        let redis_key = format!("{prefix}:idem:{}", key.to_hex());
        let mut raw = ::redis::Client::open(url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();

        let Claim::Claimed(token) = store
            .claim(&key, &fp, Duration::from_secs(60))
            .await
            .unwrap()
        else {
            panic!("not claimed")
        };
        let pttl: i64 = raw.pttl(&redis_key).await.unwrap();
        assert!((59_000..=60_000).contains(&pttl), "lease pttl {pttl}");
        assert!(matches!(
            store.claim(&key, &fp, Duration::from_secs(60)).await.unwrap(),
            Claim::InFlight { fingerprint } if fingerprint == fp
        ));
        // Another token cannot release or complete.
        let other = LeaseToken::generate();
        store.release(&key, &other).await.unwrap();
        let record = Arc::new(StoredResponse::new(
            fp,
            StatusCode::CREATED,
            HeaderMap::new(),
            Bytes::from_static(b"{}"),
        ));
        let day = Duration::from_secs(86_400);
        assert!(
            !store
                .complete(&key, &other, record.clone(), day)
                .await
                .unwrap()
        );
        assert!(
            store
                .complete(&key, &token, record.clone(), day)
                .await
                .unwrap()
        );
        let pttl: i64 = raw.pttl(&redis_key).await.unwrap();
        assert!(
            (86_399_000..=86_400_000).contains(&pttl),
            "record pttl {pttl}"
        );
        match store
            .claim(&key, &fp, Duration::from_secs(60))
            .await
            .unwrap()
        {
            Claim::Completed(stored) => assert_eq!(*stored, *record),
            other => panic!("expected the record, got {other:?}"),
        }
        // Releasing with the old token after completion leaves the record alone.
        store.release(&key, &token).await.unwrap();
        assert!(matches!(
            store
                .claim(&key, &fp, Duration::from_secs(60))
                .await
                .unwrap(),
            Claim::Completed(_)
        ));

        // A lease that is released frees the key for the next claim.
        let key2 = RecordKey::new(Some("c"), &Method::POST, "/p", "k2");
        let Claim::Claimed(t2) = store
            .claim(&key2, &fp, Duration::from_secs(60))
            .await
            .unwrap()
        else {
            panic!("not claimed")
        };
        store.release(&key2, &t2).await.unwrap();
        assert!(matches!(
            store
                .claim(&key2, &fp, Duration::from_secs(60))
                .await
                .unwrap(),
            Claim::Claimed(_)
        ));
        cleanup(&url, &prefix).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_dropped_request_is_released_by_a_spawned_task() {
        let Some(url) = url() else { return };
        let prefix = prefix();
        let calls = Arc::new(AtomicUsize::new(0));
        let svc = IdempotencyLayer::new()
            .with_store(store(&url, &prefix))
            .layer(handler(&calls, |n, req| async move {
                if n == 1 {
                    std::future::pending::<()>().await;
                }
                created(n, req).await
            }));
        let first = tokio::spawn({
            let svc = svc.clone();
            async move { send(&svc, post(Some("k"), BODY, Some("c"))).await }
        });
        while calls.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        first.abort();
        assert!(first.await.unwrap_err().is_cancelled());
        // The release is one round trip away; bounded wait, far below the 60 s lease.
        let started = Instant::now();
        let res = loop {
            let res = send(&svc, post(Some("k"), BODY, Some("c"))).await;
            if res.status != StatusCode::CONFLICT || started.elapsed() > Duration::from_secs(5) {
                break res;
            }
            tokio::task::yield_now().await;
        };
        assert_eq!(res.status, StatusCode::CREATED);
        assert!(started.elapsed() < Duration::from_secs(5));
        cleanup(&url, &prefix).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_down_is_a_quick_503_and_the_handler_never_runs() {
        // Nothing listens on port 1: connection refused.
        let refused = RedisIdempotencyStore::open("redis://127.0.0.1:1", "x")
            .unwrap()
            .timeout(Duration::from_millis(300));
        // A listener that accepts and never answers: every round trip times out.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let black_hole = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let silent = RedisIdempotencyStore::open(&format!("redis://{addr}"), "x")
            .unwrap()
            .timeout(Duration::from_millis(300));

        for store in [refused, silent] {
            let calls = Arc::new(AtomicUsize::new(0));
            let svc = IdempotencyLayer::new()
                .with_store(Arc::new(store))
                .layer(handler(&calls, created));
            for _ in 0..2 {
                let started = Instant::now();
                let res = send(&svc, post(Some("k"), BODY, Some("c"))).await;
                assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
                assert_eq!(res.headers["retry-after"], "1");
                assert_eq!(res.problem()["code"], "idempotency_store_unavailable");
                assert_eq!(res.rejection, Some(IdempotencyRejection::StoreUnavailable));
                assert!(
                    started.elapsed() < Duration::from_secs(2),
                    "{:?}",
                    started.elapsed()
                );
            }
            assert_eq!(calls.load(Ordering::SeqCst), 0);
        }
        black_hole.abort();
    }
}

/// A refusal by an auth layer inside this one (a route's `RequireScopeLayer`) is not recorded:
/// after the client gets the scope, the same key runs the request.
#[cfg(feature = "auth")]
#[tokio::test]
async fn auth_rejections_from_inner_layers_are_not_recorded() {
    let calls = Arc::new(AtomicUsize::new(0));
    let inner = {
        let calls = calls.clone();
        service_fn(move |_req: Request<Full<Bytes>>| {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                let mut res = Response::new(Full::new(Bytes::from(format!("call {n}"))));
                *res.status_mut() = StatusCode::CREATED;
                Ok::<_, Infallible>(res)
            }
        })
    };
    let svc = IdempotencyLayer::new().layer(
        crate::auth::RequireScopeLayer::one(crate::identity::Scope::LeadsWrite).layer(inner),
    );
    let request = |scopes: Scopes| {
        let mut req = Request::post("/leads")
            .header("x-request-id", "k-403")
            .body(Full::from("{}"))
            .unwrap();
        req.extensions_mut()
            .insert(AuthenticatedClient::new("acme", scopes));
        req
    };
    let first = svc.clone().oneshot(request(Scopes::empty())).await.unwrap();
    assert_eq!(first.status(), StatusCode::FORBIDDEN);
    let second = svc.clone().oneshot(request(Scopes::all())).await.unwrap();
    assert_eq!(second.status(), StatusCode::CREATED);
    assert!(second.headers().get(&IDEMPOTENT_REPLAYED).is_none());
    let third = svc.oneshot(request(Scopes::all())).await.unwrap();
    assert_eq!(third.headers()[&IDEMPOTENT_REPLAYED], "true");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// A request body delivered in the given frames (an `Err` is a broken connection), the way a
/// server hands over a chunked or slowly arriving upload.
struct Chunked {
    frames: std::collections::VecDeque<Result<Bytes, std::io::Error>>,
}

impl Chunked {
    fn new(frames: impl IntoIterator<Item = Result<&'static str, &'static str>>) -> Self {
        Self {
            frames: frames
                .into_iter()
                .map(|f| {
                    f.map(|s| Bytes::from_static(s.as_bytes()))
                        .map_err(std::io::Error::other)
                })
                .collect(),
        }
    }
}

impl From<Bytes> for Chunked {
    fn from(bytes: Bytes) -> Self {
        Self {
            frames: [Ok(bytes)].into(),
        }
    }
}

impl http_body::Body for Chunked {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        std::task::Poll::Ready(
            self.frames
                .pop_front()
                .map(|f| f.map(http_body::Frame::data)),
        )
    }
}

/// The idempotency layer over a handler that counts its calls and answers 201 with the body it
/// received, so a test sees exactly what the layer handed on.
fn echo_service(
    calls: &Arc<AtomicUsize>,
    max_body_bytes: usize,
) -> impl Service<Request<Chunked>, Response = Res, Error = Infallible, Future: Send + 'static>
+ Clone
+ Send
+ 'static {
    let calls = Arc::clone(calls);
    IdempotencyLayer::new()
        .max_body_bytes(max_body_bytes)
        .layer(service_fn(move |req: Request<Chunked>| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move {
                let body = req.into_body().collect().await.unwrap().to_bytes();
                Ok::<_, Infallible>(
                    Response::builder()
                        .status(StatusCode::CREATED)
                        .header("content-type", "text/plain")
                        .body(Full::new(body))
                        .unwrap(),
                )
            }
        }))
}

fn chunked_post(key: &str, body: Chunked) -> Request<Chunked> {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri("/api/mobile/leads/hook")
        .header("x-request-id", key)
        .body(body)
        .unwrap();
    req.extensions_mut()
        .insert(AuthenticatedClient::new("c", Scopes::all()));
    req
}

async fn send_chunked<S>(svc: &S, req: Request<Chunked>) -> Snapshot
where
    S: Service<Request<Chunked>, Response = Res, Error = Infallible> + Clone,
{
    snapshot(svc.clone().oneshot(req).await.unwrap()).await
}

#[tokio::test]
async fn a_body_in_several_frames_reaches_the_handler_whole_and_replays_however_it_is_split() {
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = echo_service(&calls, 1024);
    // Tried: the same JSON in three frames (with an empty one between), then in one frame, then
    // in two frames split elsewhere; and one byte changed.
    let first = send_chunked(
        &svc,
        chunked_post(
            "k-frames",
            Chunked::new([
                Ok(r#"{"name":"#),
                Ok(""),
                Ok(r#""张三","city":"#),
                Ok(r#""上海"}"#),
            ]),
        ),
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(first.body, r#"{"name":"张三","city":"上海"}"#);
    assert!(!first.replayed());
    let whole = send_chunked(
        &svc,
        chunked_post(
            "k-frames",
            Chunked::new([Ok(r#"{"name":"张三","city":"上海"}"#)]),
        ),
    )
    .await;
    whole.assert_replay_of(&first);
    let split = send_chunked(
        &svc,
        chunked_post(
            "k-frames",
            Chunked::new([Ok(r#"{"name":"张三","#), Ok(r#""city":"上海"}"#)]),
        ),
    )
    .await;
    split.assert_replay_of(&first);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let changed = send_chunked(
        &svc,
        chunked_post(
            "k-frames",
            Chunked::new([Ok(r#"{"name":"张三","#), Ok(r#""city":"北京"}"#)]),
        ),
    )
    .await;
    assert_eq!(changed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(changed.rejection, Some(IdempotencyRejection::KeyReused));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_streamed_body_over_the_limit_or_broken_midway_is_refused_and_frees_the_key() {
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = echo_service(&calls, 16);
    // Tried: 9 + 8 bytes in two frames with no Content-Length (one over the limit of 16).
    let res = send_chunked(
        &svc,
        chunked_post("k-big", Chunked::new([Ok("123456789"), Ok("abcdefgh")])),
    )
    .await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(res.rejection, Some(IdempotencyRejection::BodyTooLarge));
    // Tried: a connection that breaks after the first frame.
    let res = send_chunked(
        &svc,
        chunked_post("k-broken", Chunked::new([Ok("1234"), Err("reset")])),
    )
    .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.problem()["code"], "unreadable_body");
    assert_eq!(res.rejection, Some(IdempotencyRejection::UnreadableBody));
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the handler must not run");
    // Neither key was used up: the complete requests run now.
    for key in ["k-big", "k-broken"] {
        let res = send_chunked(
            &svc,
            chunked_post(key, Chunked::new([Ok("12345678"), Ok("abcdefgh")])),
        )
        .await;
        assert_eq!(res.status, StatusCode::CREATED, "{key}");
        assert_eq!(res.body, "12345678abcdefgh");
        assert!(!res.replayed());
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// A rate limiter inside the idempotency layer: its 429 is marked [`NotExecuted`], so it is not
/// recorded and the retry with the same key runs once the quota allows it.
#[cfg(feature = "rate-limit")]
#[tokio::test]
async fn a_429_from_a_limiter_inside_is_not_recorded() {
    use crate::clock::MockClock;
    use crate::rate_limit::{KeyedRateLimitLayer, MemoryStore, Quota};

    let clock = MockClock::at_unix(1_700_000_000);
    let calls = Arc::new(AtomicUsize::new(0));
    let limiter = KeyedRateLimitLayer::new(Quota::per_minute(1))
        .with_store(MemoryStore::with_clock(clock.clone()));
    let svc = IdempotencyLayer::new().layer(limiter.layer(handler(&calls, created)));

    let first = send(&svc, post(Some("k-1"), BODY, Some("acme"))).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let limited = send(&svc, post(Some("k-2"), BODY, Some("acme"))).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(!limited.replayed());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // Still limited: a fresh 429, not a replay of the first one.
    let again = send(&svc, post(Some("k-2"), BODY, Some("acme"))).await;
    assert_eq!(again.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(!again.replayed());

    clock.advance(Duration::from_secs(61));
    let retried = send(&svc, post(Some("k-2"), BODY, Some("acme"))).await;
    assert_eq!(retried.status, StatusCode::CREATED, "the retry runs");
    assert!(!retried.replayed());
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // …and that success is what is recorded.
    clock.advance(Duration::from_secs(61));
    let replay = send(&svc, post(Some("k-2"), BODY, Some("acme"))).await;
    replay.assert_replay_of(&retried);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}
