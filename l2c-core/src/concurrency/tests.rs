//! Tests of the concurrency cap: exactly N streaming bodies run, the slot follows the body, other
//! clients are unaffected, store failure, and the Redis store.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
#[cfg(feature = "redis")]
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::join_all;
use http::{Request, Response, StatusCode};
use sfv::{BareItem, List, ListEntry, Parser};
use tokio::sync::mpsc;
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};

use super::*;
use crate::limits::test_util::{TestBody, collect, request_from};
#[cfg(feature = "redis")]
use crate::limits::test_util::{random_prefix, redis_url, unused_local_addr};
#[cfg(feature = "redis")]
use crate::limits::{RedisConnection, RedisConnectionConfig};

type Senders = Arc<std::sync::Mutex<Vec<mpsc::Sender<Result<Bytes, std::io::Error>>>>>;

/// A handler whose bodies stream until the test sends to (or drops) their channel.
fn streaming_service(
    senders: Senders,
    calls: Arc<AtomicUsize>,
) -> impl Service<
    Request<()>,
    Response = Response<TestBody>,
    Error = Infallible,
    Future = impl Send + 'static,
> + Clone
+ Send
+ 'static {
    service_fn(move |_req: Request<()>| {
        let senders = senders.clone();
        calls.fetch_add(1, Ordering::SeqCst);
        async move {
            let (tx, rx) = mpsc::channel(4);
            senders.lock().unwrap().push(tx);
            Ok::<_, Infallible>(Response::new(TestBody::Stream(rx)))
        }
    })
}

fn sf_params(value: &http::HeaderValue) -> (String, Vec<(String, BareItem)>) {
    let list: List = Parser::new(value.as_bytes()).parse().unwrap();
    let ListEntry::Item(item) = &list[0] else {
        panic!("inner list")
    };
    let BareItem::String(name) = &item.bare_item else {
        panic!("name is not an SF String")
    };
    let params = item
        .params
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
        .collect();
    (name.as_str().to_owned(), params)
}

fn int(params: &[(String, BareItem)], name: &str) -> Option<i64> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| v.as_integer())
        .map(i64::from)
}

#[tokio::test]
async fn eight_concurrent_streams_five_run_three_rejected_and_a_drop_frees_a_slot() {
    let senders = Senders::default();
    let calls = Arc::new(AtomicUsize::new(0));
    let store = MemoryConcurrencyStore::new();
    let svc = ServiceBuilder::new()
        .layer(ConcurrencyCapLayer::new(5).with_store(store.clone()))
        .service(streaming_service(senders.clone(), calls.clone()));

    let results: Vec<_> = join_all((0..8).map(|_| svc.clone().oneshot(request_from("acme"))))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let (mut running, rejected): (Vec<_>, Vec<_>) = results
        .into_iter()
        .partition(|r| r.status() == StatusCode::OK);
    assert_eq!(running.len(), 5);
    assert_eq!(rejected.len(), 3);
    // Rejected requests never reached the handler: never queued.
    assert_eq!(calls.load(Ordering::SeqCst), 5);
    assert_eq!(store.in_flight("acme"), 5);

    for r in &rejected {
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        // Never ran: an idempotency layer around the cap must not record it.
        assert!(r.extensions().get::<crate::NotExecuted>().is_some());
        let h = r.headers();
        assert_eq!(h["retry-after"], "1");
        assert_eq!(h["cache-control"], "no-store");
        assert_eq!(h["content-type"], "application/problem+json");
        let (name, params) = sf_params(&h["ratelimit-policy"]);
        assert_eq!(name, "concurrency");
        assert_eq!(int(&params, "q"), Some(5));
        let qu = params.iter().find(|(k, _)| k == "qu").unwrap();
        assert_eq!(qu.1.as_string().unwrap().as_str(), "concurrent-requests");
        let (_, state) = sf_params(&h["ratelimit"]);
        assert_eq!(int(&state, "r"), Some(0));
    }
    let body = rejected.into_iter().next().unwrap().into_body();
    let body: serde_json::Value = serde_json::from_slice(&collect(body).await.unwrap()).unwrap();
    assert_eq!(
        body["violated-policies"],
        serde_json::json!(["concurrency"])
    );
    assert_eq!(body["type"], crate::problem::QUOTA_EXCEEDED_TYPE);

    // Another client is unaffected.
    let other = svc.clone().oneshot(request_from("globex")).await.unwrap();
    assert_eq!(other.status(), 200);
    assert!(other.extensions().get::<crate::NotExecuted>().is_none());
    let (_, state) = sf_params(&other.headers()["ratelimit"]);
    assert_eq!(int(&state, "r"), Some(4));

    // Still full for acme...
    let sixth = svc.clone().oneshot(request_from("acme")).await.unwrap();
    assert_eq!(sixth.status(), 429);
    // ...until one in-flight body is dropped (client disconnect).
    drop(running.pop());
    assert_eq!(store.in_flight("acme"), 4);
    let again = svc.clone().oneshot(request_from("acme")).await.unwrap();
    assert_eq!(again.status(), 200);
    running.push(again);
    assert_eq!(store.in_flight("acme"), 5);
}

#[tokio::test]
async fn the_slot_is_freed_when_the_body_ends_or_fails_not_when_headers_are_sent() {
    let senders = Senders::default();
    let calls = Arc::new(AtomicUsize::new(0));
    let store = MemoryConcurrencyStore::new();
    let svc = ServiceBuilder::new()
        .layer(ConcurrencyCapLayer::new(2).with_store(store.clone()))
        .service(streaming_service(senders.clone(), calls));

    let ends = svc.clone().oneshot(request_from("acme")).await.unwrap();
    let fails = svc.clone().oneshot(request_from("acme")).await.unwrap();
    // Both response heads are out, but both bodies are still streaming.
    assert_eq!(store.in_flight("acme"), 2);
    let (tx_end, tx_fail) = {
        let mut s = senders.lock().unwrap();
        (s.remove(0), s.remove(0))
    };

    tx_end.send(Ok(Bytes::from("a,b\n"))).await.unwrap();
    drop(tx_end);
    let text = collect(ends.into_body()).await.unwrap();
    assert_eq!(text, "a,b\n");
    assert_eq!(store.in_flight("acme"), 1);

    tx_fail
        .send(Err(std::io::Error::other("disk gone")))
        .await
        .unwrap();
    let mut body = fails.into_body();
    assert!(collect(&mut body).await.is_err());
    assert!(!body.holds_permit());
    assert_eq!(store.in_flight("acme"), 0);
    assert!(store.is_empty(), "the entry is removed at zero");
}

#[tokio::test]
async fn an_inner_error_frees_the_slot() {
    let store = MemoryConcurrencyStore::new();
    let svc = ServiceBuilder::new()
        .layer(ConcurrencyCapLayer::new(1).with_store(store.clone()))
        .service(service_fn(|_req: Request<()>| async {
            Err::<Response<TestBody>, _>(std::io::Error::other("boom"))
        }));
    assert!(svc.clone().oneshot(request_from("acme")).await.is_err());
    assert_eq!(store.in_flight("acme"), 0);
}

#[tokio::test]
async fn requests_without_a_key_pass_uncapped() {
    let senders = Senders::default();
    let svc = ServiceBuilder::new()
        .layer(ConcurrencyCapLayer::new(1))
        .service(streaming_service(senders, Arc::default()));
    let a = svc.clone().oneshot(Request::new(())).await.unwrap();
    let b = svc.clone().oneshot(Request::new(())).await.unwrap();
    assert_eq!((a.status(), b.status()), (StatusCode::OK, StatusCode::OK));
    assert!(!a.body().holds_permit());
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_unavailable_fails_open_or_closed_within_the_timeout() {
    let url = format!("redis://{}", unused_local_addr());
    let config = RedisConnectionConfig::default().timeout(Duration::from_millis(300));
    let redis = RedisConnection::with_config(&url, config).unwrap();
    let open = ConcurrencyCapLayer::new(1)
        .with_store(RedisConcurrencyStore::new(redis.clone(), random_prefix()));
    let counter = open.fail_open_counter().clone();
    let senders = Senders::default();
    let open = ServiceBuilder::new()
        .layer(open)
        .service(streaming_service(senders.clone(), Arc::default()));
    let closed = ServiceBuilder::new()
        .layer(
            ConcurrencyCapLayer::new(1)
                .with_store(RedisConcurrencyStore::new(redis, random_prefix()))
                .failure_policy(FailurePolicy::Closed),
        )
        .service(streaming_service(senders, Arc::default()));
    let started = Instant::now();
    let a = open.clone().oneshot(request_from("acme")).await.unwrap();
    let b = open.clone().oneshot(request_from("acme")).await.unwrap();
    assert_eq!((a.status(), b.status()), (StatusCode::OK, StatusCode::OK));
    assert_eq!(counter.get(), 2);
    let c = closed.clone().oneshot(request_from("acme")).await.unwrap();
    assert_eq!(c.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[cfg(feature = "redis")]
async fn wait_for_in_flight(redis_url: &str, key: &str, expected: usize) {
    let client = ::redis::Client::open(redis_url).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    // The release runs on a spawned task over the network: poll, bounded.
    for _ in 0..200 {
        let n: usize = ::redis::cmd("ZCARD")
            .arg(key)
            .query_async(&mut con)
            .await
            .unwrap();
        if n == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{key} never reached {expected} leases");
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_two_stores_share_the_cap_and_a_drop_frees_a_slot() {
    let Some(url) = redis_url() else { return };
    let prefix = random_prefix();
    let senders = Senders::default();
    // Two connections and two layers, as two server processes would have.
    let make = |prefix: &str| {
        ServiceBuilder::new()
            .layer(
                ConcurrencyCapLayer::new(5).with_store(RedisConcurrencyStore::new(
                    RedisConnection::new(&url).unwrap(),
                    prefix,
                )),
            )
            .service(streaming_service(senders.clone(), Arc::default()))
    };
    let (a, b) = (make(&prefix), make(&prefix));
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let svc = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(svc.oneshot(request_from("acme")))
        })
        .collect();
    let results: Vec<_> = join_all(handles)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    let (mut running, rejected): (Vec<_>, Vec<_>) = results
        .into_iter()
        .partition(|r| r.status() == StatusCode::OK);
    assert_eq!((running.len(), rejected.len()), (5, 3));
    assert!(running.iter().all(|r| r.body().holds_permit()));
    let other = b.clone().oneshot(request_from("globex")).await.unwrap();
    assert_eq!(other.status(), 200);

    let key = format!("{prefix}cc:acme");
    drop(running.pop());
    wait_for_in_flight(&url, &key, 4).await;
    let again = a.clone().oneshot(request_from("acme")).await.unwrap();
    assert_eq!(again.status(), 200);
    drop(running);
    drop(again);
    wait_for_in_flight(&url, &key, 0).await;
}

#[cfg(feature = "redis")]
#[test]
fn redis_leases_of_a_crashed_server_expire() {
    let Some(url) = redis_url() else { return };
    let prefix = random_prefix();
    let store = RedisConcurrencyStore::new(RedisConnection::new(&url).unwrap(), &*prefix)
        .lease(Duration::from_secs(1));
    // The "crashed server": a runtime that takes a slot and dies without releasing it.
    let crashed = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let permit = crashed.block_on(async {
        match store.acquire("acme", 1).await.unwrap() {
            Acquire::Granted { permit, .. } => permit,
            Acquire::Full => panic!("fresh key is full"),
        }
    });
    std::mem::forget(permit);
    drop(crashed);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let fresh = RedisConcurrencyStore::new(RedisConnection::new(&url).unwrap(), &*prefix);
        assert!(matches!(
            fresh.acquire("acme", 1).await.unwrap(),
            Acquire::Full
        ));
        // Redis keeps the time, so this test waits for the 1 s lease for real (bounded).
        let started = Instant::now();
        loop {
            if let Acquire::Granted { .. } = fresh.acquire("acme", 1).await.unwrap() {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "lease never expired"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}

/// The layer counts its own decisions: a slot taken is `allowed`, a full cap `rejected`, a
/// request without a key `allowed` (it went on); every service built from the layer shares them.
#[tokio::test]
async fn decisions_are_counted_by_the_layer() {
    let layer = ConcurrencyCapLayer::new(1);
    let decisions = layer.decisions().clone();
    let senders = Senders::default();
    let svc = ServiceBuilder::new()
        .layer(layer.clone())
        .service(streaming_service(senders.clone(), Arc::default()));
    let other = ServiceBuilder::new()
        .layer(layer)
        .service(streaming_service(senders, Arc::default()));
    let holding = svc.clone().oneshot(request_from("acme")).await.unwrap();
    let full = other.clone().oneshot(request_from("acme")).await.unwrap();
    let anonymous = other.oneshot(Request::new(())).await.unwrap();
    assert_eq!(full.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(anonymous.status(), StatusCode::OK);
    assert_eq!(
        decisions.by_outcome(),
        [("allowed", 2), ("rejected", 1), ("unavailable", 0)]
    );
    drop(holding);
    let again = svc.oneshot(request_from("acme")).await.unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(decisions.allowed(), 3);
}
