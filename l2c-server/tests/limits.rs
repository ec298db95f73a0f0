//! The rate limiter, the export concurrency cap and idempotency as wired into the server, over
//! real HTTP: in memory and in Redis (`L2C_TEST_REDIS_URL`, a random key prefix per test), on
//! SQLite and (with `L2C_TEST_DATABASE_URL`) PostgreSQL, with one server and with two servers
//! sharing a database and a Redis.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::routing::{get, post};
use futures_util::future::join_all;
use http::StatusCode;
use l2c_core::Scopes;
use l2c_core::rate_limit::Quota;
use l2c_server::ExtraRoutes;
use l2c_server::testing::{
    Backend, TestClient, TestOptions, TestServer, random_redis_prefix, redis_url,
};
use tokio::sync::watch;

/// Where the limiter state lives in a test run.
#[derive(Debug, Clone)]
enum Store {
    Memory,
    Redis { url: String, prefix: String },
}

impl Store {
    /// Memory always; Redis (under a fresh prefix) when `L2C_TEST_REDIS_URL` is set.
    fn available(what: &str) -> Vec<Store> {
        let mut v = vec![Store::Memory];
        if let Some(url) = redis_url(what) {
            v.push(Store::Redis {
                url,
                prefix: random_redis_prefix(),
            });
        }
        v
    }

    fn options(&self) -> TestOptions {
        match self {
            Store::Memory => TestOptions::default(),
            Store::Redis { url, prefix } => TestOptions::redis(url, prefix),
        }
    }
}

fn ping_routes() -> ExtraRoutes {
    ExtraRoutes::new().routes(Router::new().route("/test/ping", get(|| async { "pong" })))
}

fn options(store: &Store, quota: &str) -> TestOptions {
    let mut o = store.options();
    o.config.rate_limit = quota.parse().unwrap();
    o.extra_routes = ping_routes();
    o
}

/// Fires `n` GETs at once, alternating between `servers`; returns (2xx, 429) counts and one 429.
async fn fire(
    servers: &[&TestServer],
    token: &str,
    path: &str,
    n: usize,
) -> (usize, usize, Option<reqwest::Response>) {
    let requests = (0..n).map(|i| {
        let s = servers[i % servers.len()];
        s.http().get(s.url(path)).bearer_auth(token).send()
    });
    let mut ok = 0;
    let mut limited = 0;
    let mut sample = None;
    for res in join_all(requests).await {
        let res = res.unwrap();
        match res.status() {
            s if s.is_success() => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                limited += 1;
                sample = Some(res);
            }
            other => panic!("unexpected {other}"),
        }
    }
    (ok, limited, sample)
}

/// Parses an RFC 9651 list of one item: (name, integer parameters).
fn parse_member(value: &http::HeaderValue) -> (String, Vec<(String, i64)>) {
    let list: sfv::List = sfv::Parser::new(value.as_bytes())
        .parse()
        .unwrap_or_else(|e| panic!("`{value:?}` is not an SF list: {e}"));
    assert_eq!(list.len(), 1, "{value:?}");
    let sfv::ListEntry::Item(item) = &list[0] else {
        panic!("inner list in {value:?}")
    };
    let sfv::BareItem::String(name) = &item.bare_item else {
        panic!("the policy name must be an SF String: {value:?}")
    };
    let params = item
        .params
        .iter()
        .filter_map(|(k, v)| match v {
            sfv::BareItem::Integer(i) => Some((k.as_str().to_owned(), i64::from(*i))),
            _ => None,
        })
        .collect();
    (name.as_str().to_owned(), params)
}

fn all(headers: &http::HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn exactly_q_of_4q_concurrent_requests_pass() {
    const Q: usize = 12;
    for backend in Backend::available() {
        for store in Store::available("the Redis rate-limit store") {
            // Per minute: no cell comes back while the burst is being fired.
            let s = TestServer::start_with(backend, options(&store, &format!("{Q}/min"))).await;
            let c = s.create_client(Scopes::all()).await;
            let token = s.token(&c).await;

            // Requests the auth layer refuses never consume the client's quota.
            for _ in 0..Q {
                let res = s
                    .http()
                    .get(s.url("/test/ping"))
                    .header("authorization", "Bearer not-a-token")
                    .send()
                    .await
                    .unwrap();
                assert_eq!(
                    res.status(),
                    404,
                    "unauthenticated path outside /api/mobile"
                );
                let res = s
                    .http()
                    .get(s.url("/api/mobile/test/ping"))
                    .header("authorization", "Bearer not-a-token")
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 401);
            }

            let (ok, limited, sample) = fire(&[&s], &token, "/api/mobile/test/ping", 4 * Q).await;
            assert_eq!((ok, limited), (Q, 3 * Q), "{backend:?} {store:?}");

            let res = sample.unwrap();
            let h = res.headers();
            let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
            assert_eq!(retry, 5, "one cell every 60/{Q} s");
            assert_eq!(h["cache-control"], "no-store");
            assert_eq!(h["content-type"], "application/problem+json");
            assert_eq!(h["ratelimit-policy"], format!("\"default\";q={Q};w=60"));
            let (name, params) = parse_member(&h["ratelimit-policy"]);
            assert_eq!(name, "default");
            assert_eq!(
                params,
                [
                    ("q".to_owned(), i64::try_from(Q).unwrap()),
                    ("w".to_owned(), 60)
                ]
            );
            let (name, params) = parse_member(&h["ratelimit"]);
            assert_eq!(name, "default");
            assert_eq!(
                params,
                [
                    ("r".to_owned(), 0),
                    ("t".to_owned(), i64::try_from(retry).unwrap())
                ],
                "t is the Retry-After delay"
            );
            assert!(h.contains_key("x-request-id"));
            let body: serde_json::Value = res.json().await.unwrap();
            assert_eq!(body["status"], 429);
            assert_eq!(body["violated-policies"], serde_json::json!(["default"]));
            assert!(body["requestId"].is_string(), "{body}");

            // Another client has its own quota.
            let other = s.create_client(Scopes::all()).await;
            let other_token = s.token(&other).await;
            let res = s
                .http()
                .get(s.url("/api/mobile/test/ping"))
                .bearer_auth(&other_token)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            assert_eq!(
                res.headers()["ratelimit"],
                format!("\"default\";r={};t=5", Q - 1)
            );
            s.stop().await;
        }
    }
}

#[tokio::test]
async fn two_servers_sharing_redis_enforce_one_quota() {
    const Q: usize = 10;
    let Some(url) = redis_url("two servers sharing Redis") else {
        return;
    };
    for backend in Backend::available() {
        let store = Store::Redis {
            url: url.clone(),
            prefix: random_redis_prefix(),
        };
        let a = TestServer::start_with(backend, options(&store, &format!("{Q}/min"))).await;
        let b = TestServer::start_on(a.test_db.clone(), options(&store, &format!("{Q}/min"))).await;
        let c = a.create_client(Scopes::all()).await;
        let token = a.token(&c).await;
        let (ok, limited, _) = fire(&[&a, &b], &token, "/api/mobile/test/ping", 4 * Q).await;
        assert_eq!((ok, limited), (Q, 3 * Q), "{backend:?}");
        // And sequentially alternating: still nothing left on either.
        for s in [&a, &b] {
            let res = s
                .http()
                .get(s.url("/api/mobile/test/ping"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 429);
        }

        // A server with another prefix is another deployment: its own quota.
        let other = Store::Redis {
            url: url.clone(),
            prefix: random_redis_prefix(),
        };
        let d = TestServer::start_on(a.test_db.clone(), options(&other, &format!("{Q}/min"))).await;
        let res = d
            .http()
            .get(d.url("/api/mobile/test/ping"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        d.shutdown().await;
        b.shutdown().await;
        a.stop().await;
    }
}

#[tokio::test]
async fn the_next_request_after_retry_after_succeeds() {
    for store in Store::available("Retry-After against Redis") {
        let s = TestServer::start_with(Backend::Sqlite, options(&store, "2/s")).await;
        let c = s.create_client(Scopes::all()).await;
        let token = s.token(&c).await;
        let get = || {
            s.http()
                .get(s.url("/api/mobile/test/ping"))
                .bearer_auth(&token)
                .send()
        };
        assert_eq!(get().await.unwrap().status(), 200);
        assert_eq!(get().await.unwrap().status(), 200);
        let res = get().await.unwrap();
        assert_eq!(res.status(), 429);
        let retry: u64 = res.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(retry, 1, "{store:?}");
        // Redis keeps its own clock, so this one test really waits (1 s).
        tokio::time::sleep(Duration::from_secs(retry)).await;
        let res = get().await.unwrap();
        assert_eq!(res.status(), 200, "{store:?}");
        s.stop().await;
    }
}

#[tokio::test]
async fn a_clients_own_quota_takes_effect() {
    for backend in Backend::available() {
        for store in Store::available("per-client quotas in Redis") {
            let s = TestServer::start_with(backend, options(&store, "100/s")).await;
            // Created while the server runs, through the CLI code path.
            let db_url = s.test_db.url.clone();
            let cli = <l2c_server::cli::Cli as clap::Parser>::try_parse_from([
                "l2c-server",
                "client",
                "create",
                "--name",
                "small",
                "--rate-limit",
                "3/min",
                "--json",
                "--database-url",
                &db_url,
            ])
            .unwrap();
            let Some(l2c_server::cli::Command::Client {
                database_url,
                action,
            }) = &cli.command
            else {
                panic!("client command")
            };
            let mut out = Vec::new();
            l2c_server::cli::run_client_command(database_url, action, &mut out)
                .await
                .unwrap();
            let created: serde_json::Value = serde_json::from_slice(&out).unwrap();
            let small = TestClient {
                id: created["client_id"].as_str().unwrap().to_owned(),
                secret: created["client_secret"].as_str().unwrap().to_owned(),
                scopes: Scopes::all(),
            };
            // What the periodic refresh does (every --quota-refresh-secs).
            assert_eq!(s.state.limits.load_quotas(&s.db).await.unwrap(), 1);
            let token = s.token(&small).await;
            let (ok, limited, sample) = fire(&[&s], &token, "/api/mobile/test/ping", 6).await;
            assert_eq!((ok, limited), (3, 3), "{backend:?} {store:?}");
            assert_eq!(
                sample.unwrap().headers()["ratelimit-policy"],
                "\"default\";q=3;w=60"
            );

            // A partner tier above the default.
            let big = s
                .create_client_with_quota(Scopes::all(), Quota::per_minute(1000))
                .await;
            s.state.limits.load_quotas(&s.db).await.unwrap();
            let token = s.token(&big).await;
            let res = s
                .http()
                .get(s.url("/api/mobile/test/ping"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(res.headers()["ratelimit-policy"], "\"default\";q=1000;w=60");
            s.stop().await;
        }
    }
}

#[tokio::test]
async fn quotas_are_loaded_at_start() {
    let first = TestServer::start_with(Backend::Sqlite, options(&Store::Memory, "100/s")).await;
    let c = first
        .create_client_with_quota(Scopes::all(), Quota::per_minute(2))
        .await;
    let test_db = first.shutdown().await;
    let s = TestServer::start_on(test_db, options(&Store::Memory, "100/s")).await;
    let token = s.token(&c).await;
    let (ok, limited, _) = fire(&[&s], &token, "/api/mobile/test/ping", 4).await;
    assert_eq!((ok, limited), (2, 2));
    s.stop().await;
}

#[tokio::test]
async fn token_endpoint_is_limited_per_peer_in_redis_across_servers() {
    let Some(url) = redis_url("the token limiter in Redis") else {
        return;
    };
    let store = Store::Redis {
        url,
        prefix: random_redis_prefix(),
    };
    let mut o = store.options();
    o.config.token_rate_limit = "4/min".parse().unwrap();
    let a = TestServer::start_with(Backend::Sqlite, o.clone()).await;
    let b = TestServer::start_on(a.test_db.clone(), o).await;
    let c = a.create_client(Scopes::all()).await;
    let mut statuses = Vec::new();
    for i in 0..6 {
        let s = if i % 2 == 0 { &a } else { &b };
        let res = s
            .http()
            .post(s.url("/api/oauth/token"))
            .json(&serde_json::json!({"grant_type": "client_credentials", "client_id": c.id, "client_secret": c.secret}))
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
        if res.status() == 429 {
            assert!(res.headers().contains_key("retry-after"));
            let body: serde_json::Value = res.json().await.unwrap();
            assert_eq!(body["error"], "slow_down");
        }
    }
    assert_eq!(statuses, [200, 200, 200, 200, 429, 429]);
    b.shutdown().await;
    a.stop().await;
}

/// A slow streaming route: counts handler calls, streams a byte every 20 ms until released
/// (at most 10 s), and counts live bodies.
#[derive(Clone)]
struct Slow {
    calls: Arc<AtomicUsize>,
    live: Arc<AtomicUsize>,
    release: watch::Receiver<bool>,
}

struct LiveGuard(Arc<AtomicUsize>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Slow {
    fn routes(&self) -> ExtraRoutes {
        let slow = self.clone();
        ExtraRoutes::new().long_running(Router::new().route(
            "/test/slow-export",
            get(move || {
                let slow = slow.clone();
                async move {
                    slow.calls.fetch_add(1, Ordering::SeqCst);
                    slow.live.fetch_add(1, Ordering::SeqCst);
                    let guard = LiveGuard(slow.live.clone());
                    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
                    let stream = futures_util::stream::unfold(
                        (slow.release.clone(), guard),
                        move |(mut release, guard)| async move {
                            if *release.borrow() || tokio::time::Instant::now() > deadline {
                                return None;
                            }
                            tokio::select! {
                                _ = release.changed() => {}
                                () = tokio::time::sleep(Duration::from_millis(20)) => {}
                            }
                            Some((
                                Ok::<_, std::io::Error>(Bytes::from_static(b".")),
                                (release, guard),
                            ))
                        },
                    );
                    ([("content-type", "text/csv")], Body::from_stream(stream))
                }
            }),
        ))
    }
}

#[tokio::test]
async fn at_most_five_exports_per_client_run_at_once() {
    for store in Store::available("the Redis concurrency store") {
        let (release_tx, release) = watch::channel(false);
        let slow = Slow {
            calls: Arc::default(),
            live: Arc::default(),
            release,
        };
        let mut o = store.options();
        o.extra_routes = slow.routes();
        let s = TestServer::start_with(Backend::Sqlite, o).await;
        let a = s.create_client(Scopes::all()).await;
        let b = s.create_client(Scopes::all()).await;
        let (ta, tb) = (s.token(&a).await, s.token(&b).await);
        let url = s.url("/api/mobile/test/slow-export");
        // One connection per request, so dropping a response really disconnects.
        let send = |token: &str| {
            let client = reqwest::Client::builder().no_proxy().build().unwrap();
            client.get(&url).bearer_auth(token.to_owned()).send()
        };

        let responses: Vec<_> = join_all((0..8).map(|_| send(&ta)))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let (mut running, rejected): (Vec<_>, Vec<_>) =
            responses.into_iter().partition(|r| r.status() == 200);
        assert_eq!((running.len(), rejected.len()), (5, 3), "{store:?}");
        for r in &rejected {
            assert_eq!(r.status(), 429);
            assert_eq!(r.headers()["retry-after"], "1");
            assert_eq!(
                r.headers()["ratelimit-policy"],
                "\"concurrency\";q=5;qu=\"concurrent-requests\""
            );
        }
        assert_eq!(
            slow.calls.load(Ordering::SeqCst),
            5,
            "429s never reach the handler"
        );
        // Both policies are advertised on an admitted export.
        let mut policies = all(running[0].headers(), "ratelimit-policy");
        policies.sort();
        assert_eq!(
            policies,
            [
                "\"concurrency\";q=5;qu=\"concurrent-requests\"",
                "\"default\";q=100;w=1"
            ]
        );

        // Another client is unaffected.
        let other = send(&tb).await.unwrap();
        assert_eq!(other.status(), 200);
        drop(other);

        // Dropping one in-flight connection frees its slot (the server notices at its next
        // write, within ~20 ms; bounded wait).
        drop(running.pop());
        let mut freed = None;
        for _ in 0..100 {
            let res = send(&ta).await.unwrap();
            if res.status() == 200 {
                freed = Some(res);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let freed = freed.expect("a slot is freed after a disconnect");
        running.push(freed);
        assert_eq!(send(&ta).await.unwrap().status(), 429, "five again");

        // Bodies that complete free their slots too.
        release_tx.send(true).unwrap();
        for r in running {
            assert!(!r.bytes().await.unwrap().is_empty());
        }
        assert_eq!(send(&ta).await.unwrap().status(), 200);
        s.stop().await;
    }
}

/// A POST route that counts its calls, takes 300 ms, and answers 201 with a body unique to the
/// call (so a replay is recognisable byte for byte).
#[derive(Clone, Default)]
struct Counted {
    calls: Arc<AtomicUsize>,
}

impl Counted {
    fn routes(&self) -> ExtraRoutes {
        let counted = self.clone();
        ExtraRoutes::new().routes(Router::new().route(
            "/test/leads",
            post(move |body: Bytes| {
                let counted = counted.clone();
                async move {
                    let n = counted.calls.fetch_add(1, Ordering::SeqCst) + 1;
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    let body = serde_json::json!({
                        "call": n,
                        "nonce": uuid::Uuid::new_v4().to_string(),
                        "len": body.len(),
                    });
                    (StatusCode::CREATED, axum::Json(body))
                }
            }),
        ))
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

fn idem_options(store: &Store, counted: &Counted) -> TestOptions {
    let mut o = store.options();
    o.config.rate_limit = "1000/s".parse().unwrap();
    o.extra_routes = counted.routes();
    o
}

async fn post_lead(
    s: &TestServer,
    token: &str,
    key: Option<&str>,
    body: &'static str,
) -> reqwest::Response {
    let mut req = s
        .http()
        .post(s.url("/api/mobile/test/leads"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body);
    if let Some(key) = key {
        req = req.header("x-request-id", key);
    }
    req.send().await.unwrap()
}

/// 100 identical POSTs at once, alternating over `servers`: the handler runs once, every other
/// answer is the replay or a 409, and later retries replay the same bytes.
async fn hundred_identical_posts(servers: &[&TestServer], counted: &Counted, token: &str) {
    const BODY: &str = r#"{"name":"张三","mobile":"13800138000"}"#;
    let key = format!("lead-{}", uuid::Uuid::new_v4());
    let responses = join_all((0..100).map(|i| {
        let s = servers[i % servers.len()];
        let key = key.clone();
        async move {
            let res = post_lead(s, token, Some(&key), BODY).await;
            let status = res.status();
            let replayed = res.headers().get("idempotent-replayed").cloned();
            let retry_after = res.headers().get("retry-after").cloned();
            (status, replayed, retry_after, res.bytes().await.unwrap())
        }
    }))
    .await;
    assert_eq!(counted.calls(), 1, "the handler ran exactly once");
    let mut original = None;
    let mut created = Vec::new();
    for (status, replayed, retry_after, body) in responses {
        match status {
            StatusCode::CREATED if replayed.is_none() => {
                assert!(original.replace(body).is_none(), "one original response");
            }
            StatusCode::CREATED => {
                assert_eq!(replayed.unwrap(), "true");
                created.push(body);
            }
            StatusCode::CONFLICT => assert_eq!(retry_after.unwrap(), "1"),
            other => panic!("unexpected {other}: {body:?}"),
        }
    }
    let original = original.expect("the first response");
    for body in created {
        assert_eq!(body, original, "replays are byte-identical");
    }
    for s in servers {
        for _ in 0..3 {
            let res = post_lead(s, token, Some(&key), BODY).await;
            assert_eq!(res.status(), StatusCode::CREATED);
            assert_eq!(res.headers()["idempotent-replayed"], "true");
            assert_eq!(res.bytes().await.unwrap(), original);
        }
    }
    assert_eq!(counted.calls(), 1);
}

#[tokio::test]
async fn a_hundred_identical_posts_run_the_handler_once() {
    for backend in Backend::available() {
        for store in Store::available("idempotency in Redis") {
            let counted = Counted::default();
            let s = TestServer::start_with(backend, idem_options(&store, &counted)).await;
            let c = s.create_client(Scopes::all()).await;
            let token = s.token(&c).await;
            hundred_identical_posts(&[&s], &counted, &token).await;
            s.stop().await;
        }
    }
}

#[tokio::test]
async fn a_hundred_identical_posts_across_two_servers_sharing_redis() {
    let Some(url) = redis_url("idempotency across two servers") else {
        return;
    };
    for backend in Backend::available() {
        let store = Store::Redis {
            url: url.clone(),
            prefix: random_redis_prefix(),
        };
        // One handler counter for both servers: "exactly once" across the deployment.
        let counted = Counted::default();
        let a = TestServer::start_with(backend, idem_options(&store, &counted)).await;
        let b = TestServer::start_on(a.test_db.clone(), idem_options(&store, &counted)).await;
        let c = a.create_client(Scopes::all()).await;
        let token = a.token(&c).await;
        hundred_identical_posts(&[&a, &b], &counted, &token).await;
        b.shutdown().await;
        a.stop().await;
    }
}

#[tokio::test]
async fn idempotency_keys_are_per_client_and_bad_requests_are_4xx() {
    for store in Store::available("idempotency errors in Redis") {
        let counted = Counted::default();
        let s = TestServer::start_with(Backend::Sqlite, idem_options(&store, &counted)).await;
        let (a, b) = (
            s.create_client(Scopes::all()).await,
            s.create_client(Scopes::all()).await,
        );
        let (ta, tb) = (s.token(&a).await, s.token(&b).await);

        let first = post_lead(&s, &ta, Some("shared-key"), "{}").await;
        assert_eq!(first.status(), 201);
        // Client B with the same key and body: its own request, executed.
        let other = post_lead(&s, &tb, Some("shared-key"), "{}").await;
        assert_eq!(other.status(), 201);
        assert!(other.headers().get("idempotent-replayed").is_none());
        assert_eq!(counted.calls(), 2);

        let problem = |res: reqwest::Response, status: u16| async move {
            assert_eq!(res.status().as_u16(), status);
            assert_eq!(res.headers()["content-type"], "application/problem+json");
            let body: serde_json::Value = res.json().await.unwrap();
            assert!(body["requestId"].is_string(), "{body}");
            body
        };
        // Same key, other body: 422.
        problem(
            post_lead(&s, &ta, Some("shared-key"), "{\"x\":1}").await,
            422,
        )
        .await;
        // Missing key: 400 naming the header.
        let body = problem(post_lead(&s, &ta, None, "{}").await, 400).await;
        assert!(
            body["detail"].as_str().unwrap().contains("X-Request-Id"),
            "{body}"
        );
        // Oversized key, and two different keys.
        problem(post_lead(&s, &ta, Some(&"k".repeat(256)), "{}").await, 400).await;
        let res = s
            .http()
            .post(s.url("/api/mobile/test/leads"))
            .bearer_auth(&ta)
            .header("x-request-id", "one")
            .header("idempotency-key", "two")
            .body("{}")
            .send()
            .await
            .unwrap();
        problem(res, 400).await;
        // Over the 1 MiB body limit: 413, not a silent bypass.
        let res = s
            .http()
            .post(s.url("/api/mobile/test/leads"))
            .bearer_auth(&ta)
            .header("x-request-id", "big")
            .body(vec![b'x'; 1024 * 1024 + 1])
            .send()
            .await
            .unwrap();
        problem(res, 413).await;
        assert_eq!(
            counted.calls(),
            2,
            "no rejected request reached the handler"
        );

        // A wrong method is 405 (not a missing-key 400), an unknown path 404.
        let res = s
            .http()
            .put(s.url("/api/mobile/test/leads"))
            .bearer_auth(&ta)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 405);
        assert_eq!(res.headers()["allow"], "POST");
        let res = s
            .http()
            .post(s.url("/api/mobile/test/nowhere"))
            .bearer_auth(&ta)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404);
        // Unauthenticated: 401, and the key stays unused for the real request.
        let res = s
            .http()
            .post(s.url("/api/mobile/test/leads"))
            .header("x-request-id", "after-401")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
        let res = post_lead(&s, &ta, Some("after-401"), "{}").await;
        assert_eq!(res.status(), 201);
        assert!(res.headers().get("idempotent-replayed").is_none());
        // The request id echo is the client's key, never a generated one.
        assert_eq!(res.headers()["x-request-id"], "after-401");
        s.stop().await;
    }
}

/// The real export route is under the cap (its responses advertise the concurrency policy).
#[tokio::test]
async fn the_report_export_route_is_under_the_concurrency_cap() {
    let s = TestServer::start(Backend::Sqlite).await;
    let c = s.create_client(Scopes::all()).await;
    let token = s.token(&c).await;
    for prefix in ["/api/mobile", "/api/v1"] {
        let res = s
            .http()
            .get(s.url(&format!("{prefix}/reports/orders/export")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let policies = all(res.headers(), "ratelimit-policy");
        assert!(
            policies.contains(&"\"concurrency\";q=5;qu=\"concurrent-requests\"".to_owned()),
            "{policies:?}"
        );
        assert!(
            policies.contains(&"\"default\";q=100;w=1".to_owned()),
            "{policies:?}"
        );
    }
    // Other routes are not capped.
    let res = s
        .http()
        .get(s.url("/api/mobile/showroom/items"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        all(res.headers(), "ratelimit-policy"),
        ["\"default\";q=100;w=1"]
    );
    s.stop().await;
}

/// Redis down: the limiters let requests through and count them on /metrics (fail-open);
/// idempotency refuses with 503 and never runs the handler (fail-closed).
#[tokio::test]
async fn redis_down_fails_open_for_limits_and_closed_for_idempotency() {
    let counted = Counted::default();
    // Nothing listens on port 1.
    let store = Store::Redis {
        url: "redis://127.0.0.1:1".to_owned(),
        prefix: random_redis_prefix(),
    };
    let mut o = idem_options(&store, &counted);
    o.config.rate_limit = "1/min".parse().unwrap();
    let s = TestServer::start_with(Backend::Sqlite, o).await;
    let c = s.create_client(Scopes::all()).await;
    let token = s.token(&c).await;
    for _ in 0..3 {
        let res = s
            .http()
            .get(s.url("/api/mobile/showroom/items"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            200,
            "over a 1/min quota, but the store is down"
        );
    }
    let res = post_lead(&s, &token, Some("k-down"), "{}").await;
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert_eq!(counted.calls(), 0);

    let metrics = s
        .http()
        .get(s.metrics_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let api = metrics
        .lines()
        .find(|l| l.starts_with("l2c_rate_limit_fail_open_total{limiter=\"api\"}"))
        .unwrap();
    // Three GETs and the POST (the limiter runs before idempotency).
    assert!(api.ends_with(" 4"), "{api}");
    let token_line = metrics
        .lines()
        .find(|l| l.starts_with("l2c_rate_limit_fail_open_total{limiter=\"token\"}"))
        .unwrap();
    assert!(token_line.ends_with(" 1"), "{token_line}");
    s.stop().await;
}

/// The cap is one per deployment: 8 slow exports alternating over two servers sharing Redis.
#[tokio::test]
async fn the_export_cap_is_shared_by_two_servers_on_one_redis() {
    let Some(url) = redis_url("the concurrency cap across two servers") else {
        return;
    };
    let store = Store::Redis {
        url,
        prefix: random_redis_prefix(),
    };
    let (release_tx, release) = watch::channel(false);
    let slow = Slow {
        calls: Arc::default(),
        live: Arc::default(),
        release,
    };
    let mut o = store.options();
    o.extra_routes = slow.routes();
    let a = TestServer::start_with(Backend::Sqlite, o.clone()).await;
    let b = TestServer::start_on(a.test_db.clone(), o).await;
    let c = a.create_client(Scopes::all()).await;
    let token = a.token(&c).await;
    let responses = join_all((0..8).map(|i| {
        let s = if i % 2 == 0 { &a } else { &b };
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        client
            .get(s.url("/api/mobile/test/slow-export"))
            .bearer_auth(&token)
            .send()
    }))
    .await;
    let statuses: Vec<u16> = responses
        .iter()
        .map(|r| r.as_ref().unwrap().status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(slow.calls.load(Ordering::SeqCst), 5);
    release_tx.send(true).unwrap();
    for r in responses {
        let _ = r.unwrap().bytes().await;
    }
    b.shutdown().await;
    a.stop().await;
}

/// Runs `l2c-server client <args…> --database-url <url>` through the CLI code path.
async fn client_cli(db_url: &str, args: &[&str]) {
    let mut argv = vec!["l2c-server", "client"];
    argv.extend_from_slice(args);
    argv.extend_from_slice(&["--database-url", db_url]);
    let cli = <l2c_server::cli::Cli as clap::Parser>::try_parse_from(argv).unwrap();
    let Some(l2c_server::cli::Command::Client {
        database_url,
        action,
    }) = &cli.command
    else {
        panic!("client command")
    };
    let mut out = Vec::new();
    l2c_server::cli::run_client_command(database_url, action, &mut out)
        .await
        .unwrap();
}

/// `client disable` revokes the client's live tokens on a running server at the next quota
/// reload (every `--quota-refresh-secs`), with the auth layer's own 401; `client enable`
/// restores them. The refused requests consume no quota.
#[tokio::test]
async fn disabling_a_client_refuses_its_live_tokens_after_the_reload() {
    for backend in Backend::available() {
        let s = TestServer::start_with(backend, options(&Store::Memory, "3/min")).await;
        let db_url = s.test_db.url.clone();
        let c = s.create_client(Scopes::all()).await;
        let other = s.create_client(Scopes::all()).await;
        let token = s.token(&c).await;
        let other_token = s.token(&other).await;
        let get = |token: &str| {
            s.http()
                .get(s.url("/api/mobile/test/ping"))
                .bearer_auth(token)
                .send()
        };
        assert_eq!(get(&token).await.unwrap().status(), 200, "{backend:?}");

        client_cli(&db_url, &["disable", &c.id]).await;
        // What the periodic refresh does (every --quota-refresh-secs).
        s.state.limits.load_quotas(&s.db).await.unwrap();
        assert_eq!(s.state.limits.disabled.len(), 1);

        // The auth layer's answer to a bad token, to compare with.
        let bad = get("not-a-token").await.unwrap();
        assert_eq!(bad.status(), 401);
        let bad_challenge = bad.headers()["www-authenticate"].clone();
        let mut bad_body: serde_json::Value = bad.json().await.unwrap();

        for _ in 0..5 {
            let res = get(&token).await.unwrap();
            assert_eq!(res.status(), 401, "{backend:?}");
            assert_eq!(
                res.headers()["www-authenticate"],
                "Bearer realm=\"l2c\", error=\"invalid_token\""
            );
            assert_eq!(res.headers()["www-authenticate"], bad_challenge);
            assert_eq!(res.headers()["cache-control"], "no-store");
            assert_eq!(res.headers()["content-type"], "application/problem+json");
            assert!(
                res.headers().get("ratelimit").is_none(),
                "never reached the limiter"
            );
            let mut body: serde_json::Value = res.json().await.unwrap();
            assert!(body["requestId"].is_string(), "{body}");
            body.as_object_mut().unwrap().remove("requestId");
            bad_body.as_object_mut().unwrap().remove("requestId");
            assert_eq!(body, bad_body);
        }
        // Other clients are unaffected.
        assert_eq!(get(&other_token).await.unwrap().status(), 200);

        client_cli(&db_url, &["enable", &c.id]).await;
        s.state.limits.load_quotas(&s.db).await.unwrap();
        assert!(s.state.limits.disabled.is_empty());
        // The five refusals consumed none of the 3/min quota: two more pass, then 429.
        assert_eq!(get(&token).await.unwrap().status(), 200, "{backend:?}");
        assert_eq!(get(&token).await.unwrap().status(), 200);
        assert_eq!(get(&token).await.unwrap().status(), 429);
        s.stop().await;
    }
}
