//! The fault suite: each test runs its own throw-away PostgreSQL and Redis ([`fault::Services`])
//! and stops them under load, to show what the server does while a dependency is down and that
//! it comes back by itself. Skipped (with a `skipping:` line) when `pg_config`, `initdb`,
//! `pg_ctl` or `redis-server` is missing. Every test is bounded by a timeout, and every load
//! loop by a count and a deadline.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod fault;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::routing::post;
use fault::Services;
use http::StatusCode;
use l2c_core::Scopes;
use l2c_server::ExtraRoutes;
use l2c_server::testing::{TestDb, TestOptions, TestServer};
use serde_json::{Value, json};

/// How many times the counting handler ran for each key.
type Runs = Arc<Mutex<HashMap<String, u32>>>;

/// `POST /api/mobile/fault/run` `{"key": k}`: counts a run of `k` (after a short pause, so
/// requests are in flight when a dependency dies) and answers 201. It sits behind the same
/// auth, rate limit and idempotency layers as every write.
fn counting_route(runs: &Runs) -> ExtraRoutes {
    let runs = Arc::clone(runs);
    ExtraRoutes::new().routes(axum::Router::new().route(
        "/fault/run",
        post(move |Json(body): Json<Value>| {
            let runs = Arc::clone(&runs);
            async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let key = body["key"].as_str().unwrap_or_default().to_owned();
                *runs.lock().unwrap().entry(key.clone()).or_default() += 1;
                (StatusCode::CREATED, Json(json!({ "key": key })))
            }
        }),
    ))
}

/// One answer seen by the load.
#[derive(Debug, Clone)]
struct Seen {
    sent: Instant,
    took: Duration,
    status: u16,
    retry_after: Option<String>,
    code: Option<String>,
    rate_limit_headers: bool,
    replayed: bool,
}

async fn send(req: reqwest::RequestBuilder) -> Seen {
    let sent = Instant::now();
    match req.send().await {
        Ok(res) => {
            let status = res.status().as_u16();
            let header = |n: &str| {
                res.headers()
                    .get(n)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let retry_after = header("retry-after");
            let rate_limit_headers = header("ratelimit").is_some();
            let replayed = header("idempotent-replayed").as_deref() == Some("true");
            let body: Value = res.json().await.unwrap_or(Value::Null);
            Seen {
                sent,
                took: sent.elapsed(),
                status,
                retry_after,
                code: body["code"].as_str().map(str::to_owned),
                rate_limit_headers,
                replayed,
            }
        }
        // A transport error (the request timed out or the connection failed) is recorded as
        // status 0, which every assertion treats as a failure.
        Err(_) => Seen {
            sent,
            took: sent.elapsed(),
            status: 0,
            retry_after: None,
            code: None,
            rate_limit_headers: false,
            replayed: false,
        },
    }
}

/// `l2c_rate_limit_fail_open_total{limiter="api"}` from the metrics listener.
async fn api_fail_open(server: &TestServer) -> u64 {
    let text = server
        .http()
        .get(server.metrics_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("l2c_rate_limit_fail_open_total{limiter=\"api\"} "))
        .expect("the api fail-open counter")
        .trim()
        .parse()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Redis stopped under load.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_fails_open_for_limits_closed_for_idempotency_and_recovers() {
    let Some(mut services) = Services::start("redis_outage") else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(120), redis_outage(&mut services))
        .await
        .expect("the Redis fault test finishes within 120 s");
}

async fn redis_outage(services: &mut Services) {
    let runs: Runs = Arc::default();
    let mut options = TestOptions::redis(&services.redis_url(), "fault");
    options.extra_routes = counting_route(&runs);
    // Room for the load and the final pass over every key; the limiter still runs (its
    // headers and its fail-open counter are what the test watches).
    options.config.rate_limit = l2c_core::rate_limit::Quota::per_second(10_000);
    let test_db = TestDb::create_on_postgres(&services.pg_url()).await;
    let server = TestServer::start_on(test_db, options).await;
    let client = server.create_client(Scopes::all()).await;
    let token = server.token(&client).await;
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    // Load: two writers, each sending fresh keys and retrying a key answered 503 with the same
    // key until it gets an answer, plus one reader. All of it until `stop`, bounded in count.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writes: Arc<Mutex<Vec<(String, Seen)>>> = Arc::default();
    let reads: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let mut workers = Vec::new();
    for w in 0..2 {
        let (http, token, url) = (
            http.clone(),
            token.clone(),
            server.url("/api/mobile/fault/run"),
        );
        let (stop, writes) = (Arc::clone(&stop), Arc::clone(&writes));
        workers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 5_000 {
                let key = format!("w{w}-{n}");
                n += 1;
                loop {
                    let seen = send(
                        http.post(&url)
                            .bearer_auth(&token)
                            .header("idempotency-key", &key)
                            .json(&json!({ "key": key })),
                    )
                    .await;
                    let again = seen.status == 503;
                    writes.lock().unwrap().push((key.clone(), seen));
                    if !again || stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }));
    }
    {
        let (http, token, url) = (
            http.clone(),
            token.clone(),
            server.url("/api/mobile/webhooks"),
        );
        let (stop, reads) = (Arc::clone(&stop), Arc::clone(&reads));
        workers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 5_000 {
                n += 1;
                let seen = send(http.get(&url).bearer_auth(&token)).await;
                reads.lock().unwrap().push(seen);
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }));
    }

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let fail_open_before = api_fail_open(&server).await;
    let killed = Instant::now();
    tokio::task::block_in_place(|| services.kill_redis());
    tokio::time::sleep(Duration::from_secs(5)).await;
    let fail_open_during = api_fail_open(&server).await;
    tokio::task::block_in_place(|| services.start_redis());
    let restarted = Instant::now();
    // Load goes on for 5 s of recovery and 2 s after it.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let fail_open_recovered = api_fail_open(&server).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let fail_open_after = api_fail_open(&server).await;
    let recovered_by = restarted + Duration::from_secs(5);
    let writes = writes.lock().unwrap().clone();
    let reads = reads.lock().unwrap().clone();

    // No request hung: the Redis operations are bounded by their timeout.
    for (key, seen) in &writes {
        assert!(
            seen.status != 0,
            "write {key} failed at the transport: {seen:?}"
        );
        assert!(
            seen.took < Duration::from_secs(3),
            "write {key} took too long: {seen:?}"
        );
    }
    for seen in &reads {
        assert!(
            seen.status != 0 && seen.took < Duration::from_secs(3),
            "read: {seen:?}"
        );
    }
    // Before the outage: every write ran.
    let before: Vec<_> = writes
        .iter()
        .filter(|(_, s)| s.sent + s.took < killed)
        .collect();
    assert!(!before.is_empty(), "load before the outage");
    assert!(before.iter().all(|(_, s)| s.status == 201), "{before:?}");
    // While Redis is down (a second after the kill until the restart): writes answer 503 with
    // `Retry-After` and a stable code, reads pass (the limiter fails open) without RateLimit
    // headers.
    let down = |s: &Seen| s.sent > killed + Duration::from_secs(1) && s.sent + s.took < restarted;
    let down_writes: Vec<_> = writes.iter().filter(|(_, s)| down(s)).collect();
    assert!(
        down_writes.len() >= 4,
        "load during the outage: {down_writes:?}"
    );
    for (key, s) in &down_writes {
        assert_eq!(s.status, 503, "write {key} while Redis is down: {s:?}");
        assert!(s.retry_after.is_some(), "503 without Retry-After: {s:?}");
        assert_eq!(s.code.as_deref(), Some("idempotency_store_unavailable"));
    }
    let down_reads: Vec<_> = reads.iter().filter(|s| down(s)).collect();
    assert!(
        down_reads.len() >= 4,
        "reads during the outage: {}",
        down_reads.len()
    );
    for s in &down_reads {
        assert_eq!(
            s.status, 200,
            "a read while Redis is down fails open: {s:?}"
        );
    }
    // ...and the fail-open is counted.
    assert!(
        fail_open_during >= fail_open_before + down_reads.len() as u64,
        "fail-open counted: {fail_open_before} -> {fail_open_during}, {} reads",
        down_reads.len()
    );
    // Within 5 s of Redis returning, without restarting the server, everything works again:
    // writes run, reads carry the limiter's headers, nothing fails open any more.
    let after_writes: Vec<_> = writes
        .iter()
        .filter(|(_, s)| s.sent > recovered_by)
        .collect();
    let after_reads: Vec<_> = reads.iter().filter(|s| s.sent > recovered_by).collect();
    assert!(
        !after_writes.is_empty() && !after_reads.is_empty(),
        "load after recovery"
    );
    assert!(
        after_writes.iter().all(|(_, s)| s.status == 201),
        "{after_writes:?}"
    );
    assert!(
        after_reads
            .iter()
            .all(|s| s.status == 200 && s.rate_limit_headers),
        "{after_reads:?}"
    );
    assert_eq!(
        fail_open_after, fail_open_recovered,
        "nothing fails open once Redis is back"
    );

    // No key ran twice across the outage, and every key that was answered 201 ran exactly
    // once: sending every key again replays its stored answer.
    let mut keys: Vec<String> = writes.iter().map(|(k, _)| k.clone()).collect();
    keys.sort();
    keys.dedup();
    let mut held = 0;
    for key in &keys {
        let seen = send(
            http.post(server.url("/api/mobile/fault/run"))
                .bearer_auth(&token)
                .header("idempotency-key", key)
                .json(&json!({ "key": key })),
        )
        .await;
        let answered = writes.iter().any(|(k, s)| k == key && s.status == 201);
        if answered {
            assert!(
                seen.status == 201 && seen.replayed,
                "{key} replays: {seen:?}"
            );
        } else if seen.status == 409 && seen.code.as_deref() == Some("idempotency_key_in_use") {
            // Only 503s, the last one while Redis came back: its claim reached Redis but the
            // answer did not (an ambiguous write), so the key stays held until its lease ends
            // (then it runs, once), like the keys of the killed replica below.
            held += 1;
        } else {
            // Only 503s (the load stopped while it was retrying): it runs now, once.
            assert_eq!(seen.status, 201, "{key}: {seen:?}");
        }
    }
    // A writer retries a 503'd key until it is answered: only its last key can end that way.
    assert!(held <= 2, "{held} keys held");
    let runs = runs.lock().unwrap().clone();
    let twice: Vec<_> = runs.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "keys whose handler ran more than once: {twice:?}"
    );
    // A held key may or may not have run (its handler may have finished before the record
    // could be stored); every other key ran once.
    assert!(
        runs.len() <= keys.len() && runs.len() + held >= keys.len(),
        "{} keys ran, of {} ({held} held)",
        runs.len(),
        keys.len()
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL stopped under load.

/// Webhook receivers on one local server: `/a` and `/b`, each collecting the `webhook-id` of
/// every request (answered 200 after `delay`).
struct Receivers {
    base: String,
    hits: Arc<Mutex<Vec<(String, String)>>>,
    delay: Arc<Mutex<Duration>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receivers {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receivers {
    async fn start() -> Receivers {
        let hits: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let delay: Arc<Mutex<Duration>> = Arc::default();
        let record = |name: &'static str, hits: &Arc<Mutex<Vec<(String, String)>>>| {
            let hits = Arc::clone(hits);
            let delay = Arc::clone(&delay);
            post(move |headers: http::HeaderMap| {
                let hits = Arc::clone(&hits);
                let delay = *delay.lock().unwrap();
                async move {
                    let id = headers
                        .get("webhook-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    hits.lock().unwrap().push((name.to_owned(), id));
                    tokio::time::sleep(delay).await;
                    StatusCode::OK
                }
            })
        };
        let app = axum::Router::new()
            .route("/a", record("a", &hits))
            .route("/b", record("b", &hits));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receivers {
            base,
            hits,
            delay,
            task,
        }
    }

    /// How many requests each (receiver, event id) got.
    fn counts(&self) -> HashMap<(String, String), usize> {
        let mut counts = HashMap::new();
        for hit in self.hits.lock().unwrap().iter() {
            *counts.entry(hit.clone()).or_default() += 1;
        }
        counts
    }
}

fn order(no: &str) -> Value {
    json!({
        "externalOrderNo": no,
        "status": "DEPOSIT_PAID",
        "paymentStatus": "DEPOSIT_PAID",
        "amounts": {"total": 3_980_000, "deposit": 500_000, "paid": 500_000, "currency": "CNY"},
        "items": [{"name": "主卧衣柜", "quantity": 1, "unitPrice": 3_980_000}],
        "customer": {"name": "李四", "mobile": "+86 139-1234-5678"},
        "version": 1
    })
}

fn webhook_options() -> TestOptions {
    let mut o = TestOptions::default();
    o.config.webhooks.allow_private = true;
    o.config.webhooks.retry_schedule = "300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,\
                                        300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms"
        .parse()
        .unwrap();
    o.config.webhooks.poll_interval = Duration::from_millis(50);
    // A lease (twice this plus 1 s) outlasting the 5 s outage, so an attempt sent just before
    // the database stopped is recorded once it is back instead of sent again.
    o.config.webhooks.attempt_timeout = Duration::from_secs(5);
    o.config.rate_limit = l2c_core::rate_limit::Quota::per_second(10_000);
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_is_503_with_retry_after_and_every_event_is_delivered_once() {
    let Some(mut services) = Services::start("postgres_outage") else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(120), postgres_outage(&mut services))
        .await
        .expect("the PostgreSQL fault test finishes within 120 s");
}

async fn postgres_outage(services: &mut Services) {
    let mut options = webhook_options();
    // While the database is down, each request waits this long for a connection, then 503.
    options.config.db_acquire_timeout = Duration::from_secs(1);
    let test_db = TestDb::create_on_postgres(&services.pg_url()).await;
    let server = TestServer::start_on(test_db, options).await;
    let client = server.create_client(Scopes::all()).await;
    let token = server.token(&client).await;
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let receivers = Receivers::start().await;
    for path in ["/a", "/b"] {
        let res = http
            .post(server.url("/api/mobile/webhooks"))
            .bearer_auth(&token)
            .header("idempotency-key", path)
            .json(&json!({"url": format!("{}{path}", receivers.base), "events": ["ORDER_CREATED"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writes: Arc<Mutex<Vec<(String, Seen)>>> = Arc::default();
    let ready: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let mut workers = Vec::new();
    for w in 0..2 {
        let (http, token, url) = (
            http.clone(),
            token.clone(),
            server.url("/api/mobile/orders/sync"),
        );
        let (stop, writes) = (Arc::clone(&stop), Arc::clone(&writes));
        workers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 2_000 {
                let no = format!("PG-{w}-{n}");
                n += 1;
                loop {
                    let seen = send(
                        http.post(&url)
                            .bearer_auth(&token)
                            .header("idempotency-key", &no)
                            .json(&order(&no)),
                    )
                    .await;
                    let again = seen.status == 503;
                    writes.lock().unwrap().push((no.clone(), seen));
                    if !again || stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    {
        let (http, url) = (http.clone(), server.url("/readyz"));
        let (stop, ready) = (Arc::clone(&stop), Arc::clone(&ready));
        workers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 2_000 {
                n += 1;
                let seen = send(http.get(&url)).await;
                ready.lock().unwrap().push(seen);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }));
    }

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stopping = Instant::now();
    tokio::task::block_in_place(|| services.stop_pg("fast"));
    let stopped = Instant::now();
    // The token endpoint cannot check credentials: 503 in the RFC 6749 shape, with Retry-After.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let res = http
        .post(server.url("/api/oauth/token"))
        .json(
            &json!({"grant_type": "client_credentials", "client_id": client.id,
                      "client_secret": client.secret}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503, "token request while PostgreSQL is down");
    assert!(res.headers().contains_key("retry-after"));
    let body: Value = res.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");
    tokio::time::sleep(Duration::from_secs(5).saturating_sub(stopped.elapsed())).await;
    let restarting = Instant::now();
    tokio::task::block_in_place(|| services.start_pg());
    let restarted = Instant::now();
    tokio::time::sleep(Duration::from_secs(7)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let recovered_by = restarted + Duration::from_secs(5);
    let writes = writes.lock().unwrap().clone();
    let ready = ready.lock().unwrap().clone();

    // Never a 500, never a hang: every answer within a few acquire timeouts.
    for (no, s) in &writes {
        assert!(
            s.status != 0 && s.status != 500 && s.took < Duration::from_secs(8),
            "order {no}: {s:?}"
        );
    }
    for s in &ready {
        assert!(
            s.status != 0 && s.took < Duration::from_secs(8),
            "readyz: {s:?}"
        );
    }
    let before: Vec<_> = writes
        .iter()
        .filter(|(_, s)| s.sent + s.took < stopping)
        .collect();
    assert!(!before.is_empty(), "load before the outage");
    assert!(before.iter().all(|(_, s)| s.status == 201), "{before:?}");
    // While it is down: 503 `database_unavailable` with Retry-After; /readyz 503.
    let down = |s: &Seen| s.sent > stopped && s.sent + s.took < restarting;
    let down_writes: Vec<_> = writes.iter().filter(|(_, s)| down(s)).collect();
    assert!(
        down_writes.len() >= 4,
        "writes during the outage: {down_writes:?}"
    );
    for (no, s) in &down_writes {
        assert_eq!(s.status, 503, "order {no} while PostgreSQL is down: {s:?}");
        assert!(s.retry_after.is_some(), "503 without Retry-After: {s:?}");
        assert_eq!(s.code.as_deref(), Some("database_unavailable"), "{s:?}");
    }
    let down_ready: Vec<_> = ready.iter().filter(|s| down(s)).collect();
    assert!(
        down_ready.len() >= 2,
        "readyz during the outage: {down_ready:?}"
    );
    assert!(down_ready.iter().all(|s| s.status == 503), "{down_ready:?}");
    // Back by itself within 5 s of PostgreSQL returning.
    let after: Vec<_> = writes
        .iter()
        .filter(|(_, s)| s.sent > recovered_by)
        .collect();
    assert!(!after.is_empty(), "load after recovery");
    assert!(after.iter().all(|(_, s)| s.status == 201), "{after:?}");
    let after_ready: Vec<_> = ready.iter().filter(|s| s.sent > recovered_by).collect();
    assert!(!after_ready.is_empty() && after_ready.iter().all(|s| s.status == 200));

    // Every order answered 201 was committed once, with one ORDER_CREATED event; orders only
    // ever answered 503 were not committed.
    let created: std::collections::HashSet<&String> = writes
        .iter()
        .filter(|(_, s)| s.status == 201)
        .map(|(no, _)| no)
        .collect();
    let events: Vec<String> =
        sqlx::query_scalar("SELECT id FROM webhook_events WHERE event_type = 'ORDER_CREATED'")
            .fetch_all(server.db.pool())
            .await
            .unwrap();
    assert_eq!(events.len(), created.len(), "one event per created order");
    // Every event reaches each subscription's receiver exactly once.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let counts = receivers.counts();
        let all = events.iter().all(|id| {
            ["a", "b"]
                .iter()
                .all(|r| counts.contains_key(&((*r).to_owned(), id.clone())))
        });
        if all {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "events not delivered within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A moment for any duplicate to show up.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let counts = receivers.counts();
    assert_eq!(
        counts.len(),
        events.len() * 2,
        "no unknown event ids: {counts:?}"
    );
    let dupes: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dupes.is_empty(), "delivered more than once: {dupes:?}");
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// One of two replicas SIGKILLed under a mixed load.

/// A replica: the real `l2c-server` binary, on the shared throw-away PostgreSQL and Redis.
struct Replica {
    child: tokio::process::Child,
    base_url: String,
}

async fn spawn_replica(database_url: &str, redis_url: &str) -> Replica {
    use tokio::io::AsyncBufReadExt as _;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_l2c-server"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            database_url,
        ])
        .args(["--redis-url", redis_url, "--redis-prefix", "replicas"])
        .args([
            "--no-demo-client",
            "--allow-private-webhooks",
            "--metrics-listen",
            "off",
        ])
        .args(["--rate-limit", "10000/s"])
        .args([
            "--webhook-retry-schedule",
            "300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms",
        ])
        // A killed replica's delivery leases lapse after twice this plus 1 s.
        .args(["--webhook-timeout", "2s"])
        .env("RUST_LOG", "info,sqlx=warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start l2c-server");
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let address = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("l2c-server listening") {
                return line
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("address="))
                    .map(str::to_owned);
            }
        }
        None
    })
    .await
    .expect("the replica starts within 30 s")
    .expect("the replica logs its address");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Replica {
        child,
        base_url: format!("http://{address}"),
    }
}

fn lead(id: &str) -> Value {
    json!({
        "source": "DOUYIN",
        "externalLeadId": id,
        "name": "张三丰",
        "mobile": "13812345678",
        "city": "杭州市",
        "submittedAt": "2026-11-20T10:15:00+08:00"
    })
}

/// What a writer saw for one key: every answer, in order.
type Answers = Arc<Mutex<Vec<(String, Seen, bool)>>>;

/// Every export: (replica, sent, status, body read to the end).
type Exports = Arc<Mutex<Vec<(usize, Instant, u16, bool)>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_replica_loses_no_event_and_runs_no_key_twice() {
    let Some(services) = Services::start("replica_kill") else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(150), replica_kill(&services))
        .await
        .expect("the replica fault test finishes within 150 s");
}

async fn replica_kill(services: &Services) {
    let test_db = TestDb::create_on_postgres(&services.pg_url()).await;
    let db = l2c_server::store::Db::connect(&test_db.url).await.unwrap();
    let (client, secret) = db
        .clients()
        .create(&l2c_server::store::NewClient::new(
            "replicas",
            Scopes::all(),
        ))
        .await
        .unwrap();
    let (client_id, secret) = (client.id.to_string(), secret.expose().to_owned());
    let mut a = spawn_replica(&test_db.url, &services.redis_url()).await;
    let b = spawn_replica(&test_db.url, &services.redis_url()).await;
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let token = {
        let res = http
            .post(format!("{}/api/oauth/token", b.base_url))
            .json(
                &json!({"grant_type": "client_credentials", "client_id": client_id,
                          "client_secret": secret}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let receivers = Receivers::start().await;
    // Slow receivers: the replica killed has deliveries in flight.
    *receivers.delay.lock().unwrap() = Duration::from_millis(300);
    for path in ["/a", "/b"] {
        let res = http
            .post(format!("{}/api/mobile/webhooks", a.base_url))
            .bearer_auth(&token)
            .header("idempotency-key", path)
            .json(&json!({"url": format!("{}{path}", receivers.base), "events": ["ORDER_CREATED"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }

    // Writers alternate between the replicas; an answer that never came (the replica died) is
    // retried with the same key on the survivor, as a client behind a load balancer would. So is
    // a 503 `idempotency_store_unavailable` (Redis slower than the store's 1 s timeout, seen once
    // when the suite shared two cores with a build): the request did not run, and the answer
    // asks for the retry. One left after ten tries is kept and fails the checks below.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let answers: Answers = Arc::default();
    let bases = [a.base_url.clone(), b.base_url.clone()];
    let mut workers = Vec::new();
    for w in 0..3 {
        let (http, token, bases) = (http.clone(), token.clone(), bases.clone());
        let (stop, answers) = (Arc::clone(&stop), Arc::clone(&answers));
        workers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 1_000 {
                let (key, path, body) = if w == 2 {
                    let key = format!("lead-{n}");
                    (key.clone(), "/api/mobile/leads/hook", lead(&key))
                } else {
                    let key = format!("ord-{w}-{n}");
                    (key.clone(), "/api/mobile/orders/sync", order(&key))
                };
                let mut base = &bases[n % 2];
                n += 1;
                for attempt in 1..=10 {
                    let res = http
                        .post(format!("{base}{path}"))
                        .bearer_auth(&token)
                        .header("idempotency-key", &key)
                        .json(&body)
                        .send()
                        .await;
                    let Ok(res) = res else {
                        // The replica is gone: the same key, on the survivor.
                        base = &bases[1];
                        continue;
                    };
                    let status = res.status().as_u16();
                    let replayed = res.headers().get("idempotent-replayed").is_some();
                    let body: Value = res.json().await.unwrap_or(Value::Null);
                    let seen = Seen {
                        sent: Instant::now(),
                        took: Duration::ZERO,
                        status,
                        retry_after: None,
                        code: body["code"].as_str().map(str::to_owned),
                        rate_limit_headers: false,
                        replayed,
                    };
                    if status == 503
                        && seen.code.as_deref() == Some("idempotency_store_unavailable")
                        && attempt < 10
                    {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                    answers
                        .lock()
                        .unwrap()
                        .push((key.clone(), seen, body["duplicate"] == true));
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    // Exports on both replicas all along: those on the killed one are cut, the survivor's finish.
    let exports: Exports = Arc::default();
    for (r, base) in bases.iter().enumerate() {
        let (http, token, base) = (http.clone(), token.clone(), base.clone());
        let (stop, exports) = (Arc::clone(&stop), Arc::clone(&exports));
        workers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 200 {
                n += 1;
                let sent = Instant::now();
                let res = http
                    .get(format!("{base}/api/mobile/reports/orders/export"))
                    .bearer_auth(&token)
                    .send()
                    .await;
                let (status, complete) = match res {
                    Ok(res) => (res.status().as_u16(), res.bytes().await.is_ok()),
                    Err(_) => (0, false),
                };
                exports.lock().unwrap().push((r, sent, status, complete));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }));
    }

    tokio::time::sleep(Duration::from_secs(3)).await;
    a.child.kill().await.unwrap(); // SIGKILL
    let _ = a.child.wait().await;
    let killed = Instant::now();
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let answers = answers.lock().unwrap().clone();
    let exports = exports.lock().unwrap().clone();

    // No key ran twice: a second run would answer 200 (`duplicate: true` for a lead, an
    // unchanged order) without `Idempotent-Replayed`. Keys the dead replica was running stay
    // held (409 `idempotency_key_in_use`) until their lease ends; nothing else fails.
    let mut in_flight = 0;
    for (key, seen, duplicate) in &answers {
        match seen.status {
            201 => {}
            200 => assert!(
                seen.replayed,
                "{key} ran twice: {seen:?} duplicate={duplicate}"
            ),
            409 if seen.code.as_deref() == Some("idempotency_key_in_use") => in_flight += 1,
            _ => panic!("{key}: {seen:?}"),
        }
    }
    assert!(
        in_flight <= 3,
        "at most one held key per writer: {in_flight}"
    );
    let after: Vec<_> = answers.iter().filter(|(_, s, _)| s.sent > killed).collect();
    assert!(
        after.len() >= 10,
        "the survivor served the load: {}",
        after.len()
    );
    // Each key's business write happened once: one lead per lead key answered 201.
    let leads_created = answers
        .iter()
        .filter(|(k, s, _)| k.starts_with("lead-") && s.status == 201)
        .count();
    let leads: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM leads")
        .fetch_one(db.pool())
        .await
        .unwrap();
    let leads = usize::try_from(leads).unwrap();
    assert!(
        leads >= leads_created && leads <= leads_created + in_flight,
        "{leads} leads for {leads_created} created"
    );
    // And no answered key runs again on the survivor, whichever replica ran it: sent again
    // (a client that never saw the answer), each is replayed from the shared record.
    let mut answered: Vec<&String> = answers
        .iter()
        .filter(|(_, s, _)| s.status == 201)
        .map(|(k, ..)| k)
        .collect();
    answered.sort();
    answered.dedup();
    for key in answered {
        let (path, body) = if key.starts_with("lead-") {
            ("/api/mobile/leads/hook", lead(key))
        } else {
            ("/api/mobile/orders/sync", order(key))
        };
        let res = http
            .post(format!("{}{path}", b.base_url))
            .bearer_auth(&token)
            .header("idempotency-key", key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "{key} sent again");
        assert_eq!(
            res.headers()
                .get("idempotent-replayed")
                .map(|v| v.as_bytes()),
            Some(&b"true"[..]),
            "{key} ran again on the survivor"
        );
    }
    // Exports on the survivor finish, before and after the kill.
    assert!(
        exports
            .iter()
            .filter(|(r, ..)| *r == 1)
            .all(|(_, _, status, complete)| *status == 200 && *complete),
        "{exports:?}"
    );
    assert!(
        exports
            .iter()
            .any(|(r, sent, ..)| *r == 1 && *sent > killed)
    );

    // No event lost: the survivor delivers every ORDER_CREATED event, the dead replica's leased
    // deliveries included, to both subscriptions.
    let events: Vec<String> =
        sqlx::query_scalar("SELECT id FROM webhook_events WHERE event_type = 'ORDER_CREATED'")
            .fetch_all(db.pool())
            .await
            .unwrap();
    assert!(!events.is_empty());
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let pending: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM webhook_deliveries WHERE status <> 'SUCCEEDED'",
        )
        .fetch_one(db.pool())
        .await
        .unwrap();
        let counts = receivers.counts();
        let all = events.iter().all(|id| {
            ["a", "b"]
                .iter()
                .all(|r| counts.contains_key(&((*r).to_owned(), id.clone())))
        });
        if all && pending == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{pending} deliveries pending after 40 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let counts = receivers.counts();
    assert_eq!(counts.len(), events.len() * 2, "no unknown event ids");
    // A second send only for what the dead replica had in flight (same `webhook-id`).
    let repeated = counts.values().filter(|n| **n > 1).count();
    eprintln!(
        "replica kill: {} answers ({} after the kill, {in_flight} keys held), {leads} leads, \
         {} exports, {} events, {repeated} deliveries sent again",
        answers.len(),
        after.len(),
        exports.len(),
        events.len()
    );
    assert!(repeated <= 2 * 20, "{repeated} repeated deliveries");
    drop(b);
    db.close().await;
}
