//! Tests of the rate limiter: exactness, headers (parsed as Structured Fields), Retry-After,
//! overrides, keys, store failure and the memory bound.

use std::convert::Infallible;
use std::time::Duration;
#[cfg(feature = "redis")]
use std::time::Instant;

use futures_util::future::join_all;
use http::{Request, Response, StatusCode};
use sfv::{BareItem, List, ListEntry, Parser};
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};

use super::*;
use crate::clock::MockClock;
use crate::limits::test_util::request_from;
#[cfg(feature = "redis")]
use crate::limits::test_util::{random_prefix, redis_url, unused_local_addr};
use crate::problem::QUOTA_EXCEEDED_TYPE;
use crate::request_id::RequestId;

type Body = Vec<u8>;

fn ok_service()
-> impl Service<Request<()>, Response = Response<Body>, Error = Infallible, Future = impl Send + 'static>
+ Clone
+ Send
+ 'static {
    service_fn(|_req: Request<()>| async { Ok::<_, Infallible>(Response::new(b"ok".to_vec())) })
}

fn memory_layer(quota: Quota, clock: &MockClock) -> KeyedRateLimitLayer {
    KeyedRateLimitLayer::new(quota).with_store(MemoryStore::with_clock(clock.clone()))
}

/// One SF list member: (name, parameters as (key, integer-or-string)).
fn parse_member(value: &http::HeaderValue) -> (String, Vec<(String, String)>) {
    let list: List = Parser::new(value.as_bytes())
        .parse()
        .unwrap_or_else(|e| panic!("`{value:?}` is not an SF list: {e}"));
    assert_eq!(list.len(), 1, "{value:?}");
    let ListEntry::Item(item) = &list[0] else {
        panic!("inner list in {value:?}")
    };
    let BareItem::String(name) = &item.bare_item else {
        panic!("the policy name must be an SF String: {value:?}")
    };
    let params = item
        .params
        .iter()
        .map(|(k, v)| {
            let v = match v {
                BareItem::Integer(i) => i64::from(*i).to_string(),
                BareItem::String(s) => format!("\"{}\"", s.as_str()),
                other => panic!("unexpected parameter {other:?} in {value:?}"),
            };
            (k.as_str().to_owned(), v)
        })
        .collect();
    (name.as_str().to_owned(), params)
}

fn param(params: &[(String, String)], name: &str) -> Option<i64> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.parse().unwrap())
}

async fn count_ok(results: Vec<Response<Body>>) -> (usize, usize) {
    let ok = results
        .iter()
        .filter(|r| r.status() == StatusCode::OK)
        .count();
    let limited = results
        .iter()
        .filter(|r| r.status() == StatusCode::TOO_MANY_REQUESTS)
        .count();
    (ok, limited)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_exactly_q_of_4q_concurrent_requests_pass() {
    const Q: u32 = 50;
    let clock = MockClock::at_unix(1_700_000_000);
    let svc = ServiceBuilder::new()
        .layer(memory_layer(Quota::per_minute(Q), &clock))
        .service(ok_service());
    let handles: Vec<_> = (0..4 * Q)
        .map(|_| tokio::spawn(svc.clone().oneshot(request_from("acme"))))
        .collect();
    let results: Vec<_> = join_all(handles)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    assert_eq!(count_ok(results).await, (Q as usize, 3 * Q as usize));
}

#[tokio::test]
async fn allowed_responses_carry_draft_10_headers() {
    let clock = MockClock::at_unix(1_700_000_000);
    let svc = ServiceBuilder::new()
        .layer(memory_layer("100/s".parse().unwrap(), &clock))
        .service(ok_service());
    let res = svc.clone().oneshot(request_from("acme")).await.unwrap();
    assert_eq!(res.status(), 200);
    let (name, params) = parse_member(&res.headers()["ratelimit-policy"]);
    assert_eq!(name, "default");
    assert_eq!(param(&params, "q"), Some(100));
    assert_eq!(param(&params, "w"), Some(1));
    let (name, params) = parse_member(&res.headers()["ratelimit"]);
    assert_eq!(name, "default");
    assert_eq!(param(&params, "r"), Some(99));
    assert_eq!(param(&params, "t"), Some(1));
    assert!(res.headers().get("retry-after").is_none());
}

#[tokio::test]
async fn allowed_state_values_follow_every_request_through_the_value_cache() {
    // The allowed path reuses the last `RateLimit` value per slot: it must never hand out one
    // that belongs to another `r`/`t`, while `r` counts down and `t` grows, with two clients
    // interleaved (b one step behind a, so each value is asked for twice in a row).
    let clock = MockClock::at_unix(1_700_000_000);
    let svc = ServiceBuilder::new()
        .layer(memory_layer(Quota::per_minute(40), &clock))
        .service(ok_service());
    let state = |res: &Response<Body>| {
        let (_, params) = parse_member(&res.headers()["ratelimit"]);
        (param(&params, "r").unwrap(), param(&params, "t").unwrap())
    };
    for n in 1..=30_i64 {
        // After n requests at one instant: 40 - n left, full again in n x 1.5 s (rounded up).
        let expected = (40 - n, (3 * n + 1) / 2);
        let a = svc.clone().oneshot(request_from("a")).await.unwrap();
        assert_eq!(state(&a), expected, "client a, request {n}");
        let b = svc.clone().oneshot(request_from("b")).await.unwrap();
        assert_eq!(state(&b), expected, "client b, request {n}");
    }
    // 3 s later two emission intervals have refilled two requests; this one uses one of them.
    clock.advance(Duration::from_secs(3));
    let a = svc.clone().oneshot(request_from("a")).await.unwrap();
    assert_eq!(state(&a), (11, 44));
}

#[tokio::test]
async fn rejection_is_a_cacheless_problem_with_retry_after_not_before_t() {
    let clock = MockClock::at_unix(1_700_000_000);
    // 10 per hour: one request every 6 minutes.
    let svc = ServiceBuilder::new()
        .layer(memory_layer(Quota::per_hour(10), &clock))
        .service(ok_service());
    for _ in 0..10 {
        let res = svc.clone().oneshot(request_from("acme")).await.unwrap();
        assert_eq!(res.status(), 200);
    }
    clock.advance(Duration::from_millis(1_500));
    let mut req = request_from("acme");
    req.extensions_mut().insert(RequestId::new("req-42"));
    let res = svc.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    // The handler never ran: an idempotency layer around the limiter must not record it.
    assert!(res.extensions().get::<crate::NotExecuted>().is_some());
    let h = res.headers();
    assert_eq!(h["content-type"], "application/problem+json");
    assert_eq!(h["cache-control"], "no-store");
    // 360 s minus the 1.5 s that passed, rounded up.
    let retry_after: i64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert_eq!(retry_after, 359);
    let (_, params) = parse_member(&h["ratelimit"]);
    assert_eq!(param(&params, "r"), Some(0));
    assert!(retry_after >= param(&params, "t").unwrap());
    let (_, policy) = parse_member(&h["ratelimit-policy"]);
    assert_eq!(param(&policy, "q"), Some(10));
    assert_eq!(param(&policy, "w"), Some(3600));
    let body: serde_json::Value = serde_json::from_slice(res.body()).unwrap();
    assert_eq!(body["type"], QUOTA_EXCEEDED_TYPE);
    assert_eq!(body["status"], 429);
    assert_eq!(body["violated-policies"], serde_json::json!(["default"]));
    assert_eq!(body["requestId"], "req-42");
}

#[tokio::test]
async fn long_delays_stay_exact_through_the_last_rejection_cache() {
    let clock = MockClock::at_unix(1_700_000_000);
    let svc = ServiceBuilder::new()
        .layer(memory_layer(Quota::per_hour(1), &clock))
        .service(ok_service());
    let headers = |res: Response<Body>| {
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        let h = res.headers();
        (
            h["retry-after"].to_str().unwrap().to_owned(),
            h["ratelimit"].to_str().unwrap().to_owned(),
        )
    };
    for client in ["a", "b"] {
        let res = svc.clone().oneshot(request_from(client)).await.unwrap();
        assert_eq!(res.status(), 200);
    }
    let expect = |secs: u64| (secs.to_string(), format!("\"default\";r=0;t={secs}"));
    // The same delay twice (a cache hit), then another key one second further off.
    for _ in 0..2 {
        let res = svc.clone().oneshot(request_from("a")).await.unwrap();
        assert_eq!(headers(res), expect(3600));
    }
    clock.advance(Duration::from_millis(1_500));
    let res = svc.clone().oneshot(request_from("a")).await.unwrap();
    assert_eq!(headers(res), expect(3599));
    let res = svc.clone().oneshot(request_from("b")).await.unwrap();
    assert_eq!(headers(res), expect(3599));
    clock.advance(Duration::from_secs(3_598 - 60));
    let res = svc.clone().oneshot(request_from("b")).await.unwrap();
    assert_eq!(headers(res), expect(61));
}

#[tokio::test]
async fn waiting_the_advertised_retry_after_is_enough_and_not_more_than_needed() {
    let clock = MockClock::at_unix(1_700_000_000);
    let svc = ServiceBuilder::new()
        .layer(memory_layer(Quota::per_minute(3), &clock))
        .service(ok_service());
    for _ in 0..3 {
        svc.clone().oneshot(request_from("acme")).await.unwrap();
    }
    let res = svc.clone().oneshot(request_from("acme")).await.unwrap();
    assert_eq!(res.status(), 429);
    let secs: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(secs, 20);
    clock.advance(Duration::from_secs(secs - 1));
    let early = svc.clone().oneshot(request_from("acme")).await.unwrap();
    assert_eq!(early.status(), 429);
    assert_eq!(early.headers()["retry-after"], "1");
    clock.advance(Duration::from_secs(1));
    let res = svc.clone().oneshot(request_from("acme")).await.unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn clients_do_not_share_a_quota() {
    let clock = MockClock::at_unix(1_700_000_000);
    let svc = ServiceBuilder::new()
        .layer(memory_layer(Quota::per_minute(1), &clock))
        .service(ok_service());
    assert_eq!(
        svc.clone()
            .oneshot(request_from("a"))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        svc.clone()
            .oneshot(request_from("a"))
            .await
            .unwrap()
            .status(),
        429
    );
    assert_eq!(
        svc.clone()
            .oneshot(request_from("b"))
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn overrides_apply_per_request_and_keep_the_state() {
    let clock = MockClock::at_unix(1_700_000_000);
    let overrides = QuotaOverrides::new();
    let svc = ServiceBuilder::new()
        .layer(memory_layer(Quota::per_minute(2), &clock).with_overrides(overrides.clone()))
        .service(ok_service());
    let call = || svc.clone().oneshot(request_from("gold"));
    assert_eq!(call().await.unwrap().status(), 200);
    assert_eq!(call().await.unwrap().status(), 200);
    assert_eq!(call().await.unwrap().status(), 429);

    // A bigger tier at runtime: the used-up quota is remembered (no fresh burst), and the new
    // rate applies from the next emission interval (60 s / 10 = 6 s).
    overrides.set("gold", Quota::per_minute(10));
    assert_eq!(call().await.unwrap().status(), 429);
    clock.advance(Duration::from_secs(6));
    let res = call().await.unwrap();
    assert_eq!(res.status(), 200);
    let (_, policy) = parse_member(&res.headers()["ratelimit-policy"]);
    assert_eq!(param(&policy, "q"), Some(10));

    // Back to the default.
    assert_eq!(overrides.remove("gold"), Some(Quota::per_minute(10)));
    clock.advance(Duration::from_secs(60));
    let res = call().await.unwrap();
    let (_, policy) = parse_member(&res.headers()["ratelimit-policy"]);
    assert_eq!(param(&policy, "q"), Some(2));

    // A tighter override for a fresh client.
    overrides.set("trial", Quota::per_hour(1));
    let trial = || svc.clone().oneshot(request_from("trial"));
    assert_eq!(trial().await.unwrap().status(), 200);
    assert_eq!(trial().await.unwrap().status(), 429);
}

#[tokio::test]
async fn requests_without_a_key_pass_unless_an_anonymous_key_is_set() {
    let clock = MockClock::at_unix(1_700_000_000);
    let open = ServiceBuilder::new()
        .layer(memory_layer(Quota::per_minute(1), &clock))
        .service(ok_service());
    for _ in 0..3 {
        let res = open.clone().oneshot(Request::new(())).await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.headers().get("ratelimit").is_none());
    }
    let shared = ServiceBuilder::new()
        .layer(memory_layer(Quota::per_minute(1), &clock).anonymous_key("anonymous"))
        .service(ok_service());
    assert_eq!(
        shared
            .clone()
            .oneshot(Request::new(()))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        shared
            .clone()
            .oneshot(Request::new(()))
            .await
            .unwrap()
            .status(),
        429
    );
}

#[tokio::test]
async fn key_fn_can_key_by_peer_address() {
    use std::net::SocketAddr;
    let clock = MockClock::at_unix(1_700_000_000);
    let layer = memory_layer(Quota::per_minute(1), &clock)
        .key_fn(|req| {
            req.extensions()
                .get::<SocketAddr>()
                .map(|a| a.ip().to_string())
        })
        .policy_name("token")
        .unwrap();
    let svc = ServiceBuilder::new().layer(layer).service(ok_service());
    let from = |addr: &str| {
        let mut req = Request::new(());
        req.extensions_mut()
            .insert(addr.parse::<SocketAddr>().unwrap());
        req
    };
    assert_eq!(
        svc.clone()
            .oneshot(from("10.0.0.1:1000"))
            .await
            .unwrap()
            .status(),
        200
    );
    // Same IP, other port: same key.
    let res = svc.clone().oneshot(from("10.0.0.1:2000")).await.unwrap();
    assert_eq!(res.status(), 429);
    let body: serde_json::Value = serde_json::from_slice(res.body()).unwrap();
    assert_eq!(body["violated-policies"], serde_json::json!(["token"]));
    assert_eq!(
        svc.clone()
            .oneshot(from("10.0.0.2:1000"))
            .await
            .unwrap()
            .status(),
        200
    );
}

#[test]
fn memory_store_stays_bounded_over_a_million_distinct_keys() {
    let clock = MockClock::at_unix(1_700_000_000);
    let store = MemoryStore::with_clock(clock.clone());
    let params = GcraParams::of(&Quota::per_second(100));
    let mut key = String::new();
    let mut peak = 0;
    for i in 0..1_000_000u32 {
        use std::fmt::Write;
        key.clear();
        write!(key, "client-{i}").unwrap();
        assert!(store.check_key(&key, params).allowed);
        // 1 µs per new key: a key is idle 10 ms (10,000 keys) after its request.
        clock.advance(Duration::from_micros(1));
        if i % 50_000 == 0 {
            peak = peak.max(store.len());
        }
    }
    peak = peak.max(store.len());
    // About 10,000 keys are active at any time; sweeps keep the table within a small multiple.
    assert!(peak < 60_000, "tracked {peak} keys");
    let bytes = store.table_bytes();
    assert!(bytes < 4 * 1024 * 1024, "{bytes} bytes of tables");
}

#[test]
fn memory_store_never_tracks_more_than_max_keys() {
    let clock = MockClock::at_unix(1_700_000_000);
    let store = MemoryStore::with_clock(clock.clone()).max_keys(20_000);
    let bound = store.max_keys_bound();
    assert!((20_000..=20_000 + 64 * 256).contains(&bound), "{bound}");
    // An hourly quota: nothing goes idle during the test.
    let params = GcraParams::of(&Quota::per_hour(10));
    for i in 0..1_000_000u32 {
        store.check_key(&format!("k{i}"), params);
    }
    assert!(store.len() <= bound, "{} > {bound}", store.len());
    // Bytes per tracked key at the bound: well under the 80-byte target.
    let per_key = store.table_bytes() / store.len();
    assert!(per_key <= 80, "{per_key} bytes per key");
}

#[test]
fn evicting_an_idle_key_changes_no_answer() {
    let clock = MockClock::at_unix(1_700_000_000);
    let store = MemoryStore::with_clock(clock.clone());
    let params = GcraParams::of(&Quota::per_second(2));
    assert!(store.check_key("a", params).allowed);
    assert!(store.check_key("a", params).allowed);
    assert!(!store.check_key("a", params).allowed);
    clock.advance(Duration::from_secs(1));
    // "a" is idle now. Enough fresh (busy) keys make every shard reach its sweep mark, which
    // evicts the idle key and nothing else.
    const FRESH: usize = 4096;
    for i in 0..FRESH {
        assert!(store.check_key(&format!("fresh-{i}"), params).allowed);
    }
    assert_eq!(
        store.len(),
        FRESH,
        "the idle key was swept, every busy one kept"
    );
    // Evicted: the same answers as a key never seen.
    let d = store.check_key("a", params);
    assert_eq!(d, store.check_key("never-seen", params));
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_unavailable_fails_open_by_default_and_counts_it() {
    let url = format!("redis://{}", unused_local_addr());
    let config =
        crate::limits::RedisConnectionConfig::default().timeout(Duration::from_millis(300));
    let redis = crate::limits::RedisConnection::with_config(&url, config).unwrap();
    let layer = KeyedRateLimitLayer::new(Quota::per_minute(1))
        .with_store(RedisStore::new(redis, random_prefix()));
    let counter = layer.fail_open_counter().clone();
    let svc = ServiceBuilder::new().layer(layer).service(ok_service());
    let started = Instant::now();
    for _ in 0..3 {
        let res = svc.clone().oneshot(request_from("acme")).await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.headers().get("ratelimit").is_none());
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(counter.get(), 3);
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_unavailable_fails_closed_with_503_when_configured() {
    let url = format!("redis://{}", unused_local_addr());
    let config =
        crate::limits::RedisConnectionConfig::default().timeout(Duration::from_millis(300));
    let redis = crate::limits::RedisConnection::with_config(&url, config).unwrap();
    let layer = KeyedRateLimitLayer::new(Quota::per_minute(1))
        .with_store(RedisStore::new(redis, random_prefix()))
        .failure_policy(FailurePolicy::Closed);
    let svc = ServiceBuilder::new().layer(layer).service(ok_service());
    let started = Instant::now();
    let res = svc.clone().oneshot(request_from("acme")).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.extensions().get::<crate::NotExecuted>().is_some());
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = serde_json::from_slice(res.body()).unwrap();
    assert_eq!(body["status"], 503);
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_check_never_hangs_on_a_silent_server() {
    // A listener that accepts and never answers: the timeout must end the wait.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _accepting = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    let config =
        crate::limits::RedisConnectionConfig::default().timeout(Duration::from_millis(200));
    let redis =
        crate::limits::RedisConnection::with_config(&format!("redis://{addr}"), config).unwrap();
    let store = RedisStore::new(redis, random_prefix());
    let started = Instant::now();
    let err = store
        .check("acme", GcraParams::of(&Quota::per_second(1)))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(err, StoreError::Timeout | StoreError::Unavailable(_)),
        "{err}"
    );
}

#[cfg(feature = "redis")]
async fn redis_exactness(q: u32, stores: Vec<RedisStore>) -> (usize, usize) {
    let services: Vec<_> = stores
        .into_iter()
        .map(|store| {
            ServiceBuilder::new()
                .layer(KeyedRateLimitLayer::new(Quota::per_hour(q)).with_store(store))
                .service(ok_service())
        })
        .collect();
    let handles: Vec<_> = (0..4 * q as usize)
        .map(|i| {
            let svc = services[i % services.len()].clone();
            tokio::spawn(svc.oneshot(request_from("acme")))
        })
        .collect();
    let results: Vec<_> = join_all(handles)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    for r in &results {
        // A store error would fail open and show up as a 200 without headers.
        assert!(r.headers().contains_key("ratelimit"), "{r:?}");
    }
    count_ok(results).await
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_exactly_q_of_4q_concurrent_requests_pass() {
    let Some(url) = redis_url() else { return };
    let redis = crate::limits::RedisConnection::new(&url).unwrap();
    let store = RedisStore::new(redis, random_prefix());
    assert_eq!(redis_exactness(40, vec![store]).await, (40, 120));
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_sharing_redis_enforce_one_quota() {
    let Some(url) = redis_url() else { return };
    // Two connections and two stores, as two server processes would have.
    let prefix = random_prefix();
    let a = RedisStore::new(crate::limits::RedisConnection::new(&url).unwrap(), &*prefix);
    let b = RedisStore::new(crate::limits::RedisConnection::new(&url).unwrap(), &*prefix);
    assert_eq!(redis_exactness(40, vec![a, b]).await, (40, 120));
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_headers_and_retry_after_match_the_memory_store() {
    let Some(url) = redis_url() else { return };
    let redis = crate::limits::RedisConnection::new(&url).unwrap();
    let svc = ServiceBuilder::new()
        .layer(
            KeyedRateLimitLayer::new(Quota::per_hour(2))
                .with_store(RedisStore::new(redis, random_prefix())),
        )
        .service(ok_service());
    let first = svc.clone().oneshot(request_from("acme")).await.unwrap();
    let (_, params) = parse_member(&first.headers()["ratelimit"]);
    assert_eq!(param(&params, "r"), Some(1));
    assert_eq!(param(&params, "t"), Some(1800));
    svc.clone().oneshot(request_from("acme")).await.unwrap();
    let res = svc.clone().oneshot(request_from("acme")).await.unwrap();
    assert_eq!(res.status(), 429);
    let retry_after: i64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    // 1800 s minus the few milliseconds the test took, rounded up.
    assert_eq!(retry_after, 1800);
    let (_, params) = parse_member(&res.headers()["ratelimit"]);
    assert!(retry_after >= param(&params, "t").unwrap());
}

#[test]
fn parse_member_refuses_a_policy_name_that_is_not_an_sf_string() {
    // Guard the helper itself: a bare token where the draft requires an sf-string name must be
    // caught (integer-typed parameters are checked by `param`, which parses them as integers).
    let bad = http::HeaderValue::from_static("default;q=1");
    assert!(std::panic::catch_unwind(|| parse_member(&bad)).is_err());
}

/// The layer counts its own decisions, shared by every service it builds and by its clones:
/// under the quota and without a key `allowed`, over it `rejected`.
#[tokio::test]
async fn decisions_are_counted_by_the_layer() {
    let clock = MockClock::at_unix(1_800_000_000);
    let layer = memory_layer(Quota::per_minute(2), &clock);
    let decisions = layer.decisions().clone();
    let a = ServiceBuilder::new()
        .layer(layer.clone())
        .service(ok_service());
    let b = ServiceBuilder::new().layer(layer).service(ok_service());
    let mut statuses = Vec::new();
    for svc in [&a, &b, &a] {
        statuses.push(
            svc.clone()
                .oneshot(request_from("acme"))
                .await
                .unwrap()
                .status(),
        );
    }
    assert_eq!(statuses, [200, 200, 429]);
    let anonymous = b.oneshot(Request::new(())).await.unwrap();
    assert_eq!(anonymous.status(), 200);
    assert_eq!(
        (
            decisions.allowed(),
            decisions.rejected(),
            decisions.unavailable()
        ),
        (3, 1, 0)
    );
}
