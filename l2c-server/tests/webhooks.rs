//! Webhooks end to end: subscriptions, the outbox written by order sync, the dispatcher against
//! real local receivers, verification by our verifier and by third-party code (the spec's
//! Node.js snippet, the `standardwebhooks` Python library), retries, 410, redirects, restart
//! resume, two dispatchers on one database, SSRF refusals and secret rotation. SQLite always,
//! PostgreSQL when `L2C_TEST_DATABASE_URL` is set.
//!
//! The Python check needs `pip install standardwebhooks`; without it that check prints a
//! `skipping:` line and the rest of the test still runs.
//!
//! Tests run on several threads: the Node.js and Python checks block the test's thread, and the
//! server under test must keep running meanwhile.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::serve::ListenerExt;
use http::{HeaderMap, StatusCode};
use l2c_core::api::events::{EventData, EventType};
use l2c_core::clock::MockClock;
use l2c_core::webhook::{Verifier, WebhookSecret};
use l2c_core::{Scope, Scopes};
use l2c_server::dispatch::{Dispatcher, Retention};
use l2c_server::store::outbox::Purged;
use l2c_server::testing::{Backend, TestDb, TestOptions, TestServer};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// A local receiver.

#[derive(Clone)]
struct Hit {
    headers: HeaderMap,
    body: Bytes,
    at: Instant,
    answered: u16,
}

#[derive(Clone, Default)]
struct ReceiverState {
    hits: Arc<Mutex<Vec<Hit>>>,
    /// Statuses to answer, in order; 200 once empty (302 redirects to `/elsewhere`, 429 comes
    /// with `Retry-After: 1`).
    plan: Arc<Mutex<VecDeque<u16>>>,
    /// While set, every request is answered 503 (no `Retry-After`).
    down: Arc<Mutex<bool>>,
    elsewhere: Arc<Mutex<usize>>,
    /// TCP connections accepted, whether or not a request followed (a TLS attempt on this
    /// plain-HTTP receiver still counts).
    connections: Arc<AtomicUsize>,
}

struct Receiver {
    url: String,
    state: ReceiverState,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn hook(State(st): State<ReceiverState>, headers: HeaderMap, body: Bytes) -> Response {
    let answer = if *st.down.lock().unwrap() {
        503
    } else {
        st.plan.lock().unwrap().pop_front().unwrap_or(200)
    };
    st.hits.lock().unwrap().push(Hit {
        headers,
        body,
        at: Instant::now(),
        answered: answer,
    });
    if answer == 302 {
        return (StatusCode::FOUND, [("location", "/elsewhere")]).into_response();
    }
    if answer == 429 {
        return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")]).into_response();
    }
    if answer == 500 {
        // A long answer: the delivery log keeps its first 4 KiB. A NUL (which PostgreSQL's
        // text cannot hold), quotes and a backslash (the rows travel as JSON) on the way.
        let body = format!("库存服务不可用 \0 \"忙\" \\ {}", "x".repeat(6000));
        return (StatusCode::INTERNAL_SERVER_ERROR, body).into_response();
    }
    StatusCode::from_u16(answer).unwrap().into_response()
}

async fn elsewhere(State(st): State<ReceiverState>) -> StatusCode {
    *st.elsewhere.lock().unwrap() += 1;
    StatusCode::OK
}

impl Receiver {
    async fn start(plan: &[u16]) -> Receiver {
        let state = ReceiverState::default();
        state.plan.lock().unwrap().extend(plan.iter().copied());
        let app = Router::new()
            .route("/hook", post(hook))
            .route("/elsewhere", any(elsewhere))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::clone(&state.connections);
        let listener = listener.tap_io(move |_| {
            connections.fetch_add(1, Ordering::SeqCst);
        });
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver {
            url: format!("http://{addr}/hook"),
            state,
            task,
        }
    }

    fn hits(&self) -> Vec<Hit> {
        self.state.hits.lock().unwrap().clone()
    }

    fn ok_hits(&self) -> Vec<Hit> {
        self.hits()
            .into_iter()
            .filter(|h| (200..300).contains(&h.answered))
            .collect()
    }
}

fn header<'a>(h: &'a Hit, name: &str) -> &'a str {
    h.headers
        .get(name)
        .unwrap_or_else(|| panic!("missing {name}"))
        .to_str()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// The server side.

fn options(schedule: &str) -> TestOptions {
    let mut o = TestOptions::default();
    o.config.webhooks.allow_private = true;
    o.config.webhooks.retry_schedule = schedule.parse().unwrap();
    o.config.webhooks.poll_interval = Duration::from_millis(50);
    o.config.webhooks.attempt_timeout = Duration::from_secs(2);
    o
}

struct Api<'a> {
    server: &'a TestServer,
    token: String,
}

impl Api<'_> {
    async fn send(&self, method: http::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .server
            .http()
            .request(method, self.server.url(path))
            .bearer_auth(&self.token)
            // Every write under /api/mobile carries an idempotency key (spec §6).
            .header("x-request-id", uuid::Uuid::new_v4().to_string());
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn subscribe(&self, url: &str, events: &[&str]) -> (String, String) {
        let (status, body) = self
            .send(
                http::Method::POST,
                "/api/mobile/webhooks",
                Some(json!({"url": url, "events": events})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        (
            body["id"].as_str().unwrap().to_owned(),
            body["secret"].as_str().unwrap().to_owned(),
        )
    }

    async fn sync(&self, no: &str) {
        let (status, body) = self
            .send(
                http::Method::POST,
                "/api/mobile/orders/sync",
                Some(order(no)),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }

    async fn deliveries(&self, sub: &str) -> Vec<Value> {
        let (status, body) = self
            .send(
                http::Method::GET,
                &format!("/api/mobile/webhooks/{sub}/deliveries"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["items"].as_array().unwrap().clone()
    }
}

async fn api(server: &TestServer, scopes: Scopes) -> Api<'_> {
    let client = server.create_client(scopes).await;
    Api {
        server,
        token: server.token(&client).await,
    }
}

fn order(no: &str) -> Value {
    json!({
        "externalOrderNo": no,
        "status": "DEPOSIT_PAID",
        "paymentStatus": "DEPOSIT_PAID",
        "amounts": {"total": 3_980_000, "deposit": 500_000, "paid": 500_000, "currency": "CNY"},
        "items": [{"name": "主卧衣柜", "quantity": 1, "unitPrice": 3_980_000}],
        "milestones": [{"name": "MEASURE", "plannedAt": "2026-11-25T14:00:00+08:00"}],
        "customer": {"name": "李四", "mobile": "+86 139-1234-5678"},
        "version": 1,
        "payments": [{"kind": "DEPOSIT", "method": "WECHAT_PAY", "amount": 500_000,
                      "channelTransactionId": format!("wx-{no}-1"),
                      "paidAt": "2026-11-20T10:15:00+08:00"}]
    })
}

/// Polls `check` every 20 ms for at most `limit`.
async fn wait_for(limit: Duration, what: &str, mut check: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

// ---------------------------------------------------------------------------------------------
// Third-party verifiers.

/// The spec's own Node.js snippet (§5.3), run on the captured body, header and secret.
fn node_verifies(body: &[u8], secret: &str, signature: &str) -> bool {
    let dir = std::env::temp_dir().join(format!("l2c-wh-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let body_path = dir.join("body");
    std::fs::write(&body_path, body).unwrap();
    let script = r#"
const crypto = require('crypto');
function verifySignature(payloadRef, secret, signatureHeader) {
  const hash = crypto.createHmac('sha256', secret).update(payloadRef).digest('hex');
  return hash === signatureHeader;
}
const payload = require('fs').readFileSync(process.env.BODY_FILE);
process.stdout.write(String(verifySignature(payload, process.env.SECRET, process.env.SIG)));
"#;
    let out = std::process::Command::new("node")
        .arg("-e")
        .arg(script)
        .env("BODY_FILE", &body_path)
        .env("SECRET", secret)
        .env("SIG", signature)
        .output()
        .expect("node is installed");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "node failed: {:?}", out);
    match String::from_utf8_lossy(&out.stdout).as_ref() {
        "true" => true,
        "false" => false,
        other => panic!("node printed {other:?}"),
    }
}

fn python_has_standardwebhooks() -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import standardwebhooks"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!(
            "skipping: the standardwebhooks check needs `pip install standardwebhooks` \
             (python3 -c 'import standardwebhooks' failed)"
        );
    }
    ok
}

/// The official Standard Webhooks Python library on the captured request: `Some(verified)`, or
/// `None` when the library is not installed.
fn python_verifies(hit: &Hit, secret: &str) -> Option<bool> {
    if !python_has_standardwebhooks() {
        return None;
    }
    let dir = std::env::temp_dir().join(format!("l2c-wh-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let body_path = dir.join("body");
    std::fs::write(&body_path, &hit.body).unwrap();
    let headers: HashMap<&str, &str> = ["webhook-id", "webhook-timestamp", "webhook-signature"]
        .into_iter()
        .map(|n| (n, header(hit, n)))
        .collect();
    let script = r#"
import json, os, sys
from standardwebhooks.webhooks import Webhook
body = open(os.environ["BODY_FILE"], "rb").read()
headers = json.loads(os.environ["HEADERS"])
try:
    Webhook(os.environ["SECRET"]).verify(body, headers)
    sys.stdout.write("true")
except Exception as e:
    sys.stdout.write("false")
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .env("BODY_FILE", &body_path)
        .env("HEADERS", serde_json::to_string(&headers).unwrap())
        .env("SECRET", secret)
        .output()
        .expect("python3 runs");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "python failed: {:?}", out);
    Some(String::from_utf8_lossy(&out.stdout) == "true")
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_sync_delivers_order_created_verified_by_ours_node_and_standardwebhooks() {
    for backend in Backend::available() {
        let receiver = Receiver::start(&[]).await;
        let server = TestServer::start_with(backend, options("1s")).await;
        let api = api(&server, Scopes::all()).await;
        let (sub, secret) = api.subscribe(&receiver.url, &["ORDER_CREATED"]).await;
        api.sync("ERP-WH-1").await;
        wait_for(Duration::from_secs(10), "the delivery", async || {
            !receiver.hits().is_empty()
        })
        .await;
        let hit = receiver.hits()[0].clone();

        // Ours.
        let parsed = WebhookSecret::parse(&secret).unwrap();
        let event = Verifier::new(parsed)
            .verify(&hit.headers, &hit.body)
            .unwrap();
        assert_eq!(event.event_type(), EventType::OrderCreated);
        let EventData::OrderCreated(data) = &event.payload else {
            panic!("not ORDER_CREATED")
        };
        assert_eq!(data.external_order_no, "ERP-WH-1");
        assert_eq!(data.amounts.deposit, 500_000);
        assert_eq!(header(&hit, "x-l2c-event"), "ORDER_CREATED");
        assert_eq!(header(&hit, "x-l2c-delivery"), event.id);
        assert_eq!(header(&hit, "webhook-id"), event.id);
        assert_eq!(
            header(&hit, "x-l2c-timestamp"),
            header(&hit, "webhook-timestamp")
        );
        // No raw PII in the payload.
        let text = String::from_utf8(hit.body.to_vec()).unwrap();
        assert!(!text.contains("李四") && !text.contains("1234"), "{text}");

        // The spec's Node.js snippet, with the secret string as the key.
        let sig = header(&hit, "x-l2c-signature");
        assert!(node_verifies(&hit.body, &secret, sig));
        assert!(!node_verifies(b"{\"tampered\":true}", &secret, sig));
        // The official Standard Webhooks library.
        if let Some(ok) = python_verifies(&hit, &secret) {
            assert!(ok, "standardwebhooks refused our signature");
            let other = WebhookSecret::generate();
            assert_eq!(python_verifies(&hit, other.expose_secret()), Some(false));
        }

        // The delivery log: one delivery (only ORDER_CREATED was subscribed), one 200 attempt.
        wait_for(Duration::from_secs(5), "SUCCEEDED", async || {
            api.deliveries(&sub).await[0]["status"] == "SUCCEEDED"
        })
        .await;
        let log = api.deliveries(&sub).await;
        assert_eq!(log.len(), 1, "{log:?}");
        assert_eq!(log[0]["eventId"], event.id.as_str());
        assert_eq!(log[0]["eventType"], "ORDER_CREATED");
        let attempts = log[0]["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0]["responseStatus"], 200);
        assert!(attempts[0]["latencyMs"].is_u64());
        assert!(attempts[0]["attemptedAt"].is_string());
        assert_eq!(receiver.hits().len(), 1);
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_changes_and_payments_produce_their_events() {
    for backend in Backend::available() {
        let receiver = Receiver::start(&[]).await;
        let server = TestServer::start_with(backend, options("1s")).await;
        let api = api(&server, Scopes::all()).await;
        let (secret_sub, secret) = api
            .subscribe(&receiver.url, &["ORDER_STATUS_CHANGED", "PAYMENT_RECEIVED"])
            .await;
        api.sync("ERP-WH-FLOW").await; // created: one PAYMENT_RECEIVED (the deposit)
        let mut next = order("ERP-WH-FLOW");
        next["version"] = json!(3);
        next["status"] = json!("SCHEDULING");
        next["paymentStatus"] = json!("PARTIALLY_PAID");
        next["amounts"]["paid"] = json!(2_000_000);
        next["payments"].as_array_mut().unwrap().push(json!({
            "kind": "PROGRESS", "method": "ALIPAY", "amount": 1_500_000,
            "channelTransactionId": "ali-wh-1", "paidAt": "2026-12-01T09:00:00+08:00"}));
        let (status, body) = api
            .send(
                http::Method::POST,
                "/api/mobile/orders/sync",
                Some(next.clone()),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        // The same body again is not applied: no new events.
        let (status, _) = api
            .send(http::Method::POST, "/api/mobile/orders/sync", Some(next))
            .await;
        assert_eq!(status, 200);
        wait_for(Duration::from_secs(10), "three deliveries", async || {
            receiver.ok_hits().len() >= 3
        })
        .await;
        let verifier = Verifier::new(WebhookSecret::parse(&secret).unwrap());
        let mut kinds = Vec::new();
        for hit in receiver.ok_hits() {
            let event = verifier.verify(&hit.headers, &hit.body).unwrap();
            match &event.payload {
                EventData::OrderStatusChanged(c) => {
                    assert_eq!(c.from_status.as_str(), "DEPOSIT_PAID");
                    assert_eq!(c.to_status.as_str(), "SCHEDULING");
                    assert_eq!(c.version, 3);
                    assert!(!c.to_status_label.is_empty());
                    kinds.push("status".to_owned());
                }
                EventData::PaymentReceived(p) => kinds.push(format!("payment {}", p.amount)),
                other => panic!("{other:?} was not subscribed"),
            }
        }
        kinds.sort();
        assert_eq!(kinds, ["payment 1500000", "payment 500000", "status"]);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            receiver.hits().len(),
            3,
            "the unapplied repeat sent nothing"
        );
        assert_eq!(api.deliveries(&secret_sub).await.len(), 3);
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destinations_are_checked_again_at_delivery_time() {
    // Tried: an IP literal (checked before the attempt) and a host name resolving to loopback
    // (refused by the dispatcher's resolver before any connection).
    for (host, refused_at) in [
        ("127.0.0.1", "ERP-WH-SSRF-IP"),
        ("localhost", "ERP-WH-SSRF-NAME"),
    ] {
        for backend in Backend::available() {
            let receiver = Receiver::start(&[]).await;
            // Subscribed while private destinations were allowed …
            let server = TestServer::start_with(backend, options("1s")).await;
            let (token, sub) = {
                let api = api(&server, Scopes::all()).await;
                let (sub, _) = api.subscribe(&receiver.url, &["ORDER_CREATED"]).await;
                (api.token, sub)
            };
            // (and switched to https, so only the address rule can refuse it) …
            sqlx::query(
                "UPDATE webhook_subscriptions SET url = replace(replace(url, 'http://', 'https://'), '127.0.0.1', $1)",
            )
            .bind(host)
            .execute(server.db.pool())
            .await
            .unwrap();
            let test_db = server.shutdown().await;
            // … then the server runs without the flag: the attempt is refused and recorded.
            let mut strict = options("1s");
            strict.config.webhooks.allow_private = false;
            let server = TestServer::start_on(test_db, strict).await;
            let api = Api {
                server: &server,
                token,
            };
            api.sync(refused_at).await;
            wait_for(Duration::from_secs(10), "a refused attempt", async || {
                api.deliveries(&sub)
                    .await
                    .first()
                    .is_some_and(|d| !d["attempts"].as_array().unwrap().is_empty())
            })
            .await;
            let log = api.deliveries(&sub).await;
            let attempt = &log[0]["attempts"][0];
            assert!(attempt.get("responseStatus").is_none(), "{host}: {attempt}");
            assert!(
                attempt["error"]
                    .as_str()
                    .unwrap()
                    .starts_with("destination refused: the host resolves to a non-public address"),
                "{host}: {attempt}"
            );
            assert!(receiver.hits().is_empty(), "{host}: something was sent");
            assert_eq!(
                receiver.state.connections.load(Ordering::SeqCst),
                0,
                "{host}: the dispatcher connected to a refused destination"
            );
            server.stop().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_to_one_receiver_reuse_the_connection() {
    for backend in Backend::available() {
        let receiver = Receiver::start(&[]).await;
        let server = TestServer::start_with(backend, options("1s")).await;
        let api = api(&server, Scopes::all()).await;
        let (_sub, _) = api.subscribe(&receiver.url, &["ORDER_CREATED"]).await;
        // One delivery at a time, so each finds the previous one's connection idle in the pool.
        for (i, no) in ["ERP-WH-KA-1", "ERP-WH-KA-2", "ERP-WH-KA-3"]
            .iter()
            .enumerate()
        {
            api.sync(no).await;
            wait_for(Duration::from_secs(10), "the delivery", async || {
                receiver.hits().len() > i
            })
            .await;
        }
        assert_eq!(receiver.hits().len(), 3);
        assert_eq!(
            receiver.state.connections.load(Ordering::SeqCst),
            1,
            "each delivery opened a connection"
        );
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_receiver_gets_three_attempts_with_growing_gaps() {
    for backend in Backend::available() {
        let receiver = Receiver::start(&[500, 500]).await;
        let server = TestServer::start_with(backend, options("300ms,900ms,5s")).await;
        let api = api(&server, Scopes::all()).await;
        let (sub, _) = api.subscribe(&receiver.url, &["ORDER_CREATED"]).await;
        api.sync("ERP-WH-RETRY").await;
        wait_for(Duration::from_secs(10), "three attempts", async || {
            receiver.hits().len() >= 3
        })
        .await;
        let hits = receiver.hits();
        let statuses: Vec<u16> = hits.iter().map(|h| h.answered).collect();
        assert_eq!(statuses, [500, 500, 200]);
        let ids: HashSet<&str> = hits.iter().map(|h| header(h, "webhook-id")).collect();
        assert_eq!(ids.len(), 1, "one event id across retries");
        let g1 = hits[1].at - hits[0].at;
        let g2 = hits[2].at - hits[1].at;
        assert!(g1 >= Duration::from_millis(250), "first gap {g1:?}");
        assert!(
            g2 > g1 + Duration::from_millis(300),
            "gaps {g1:?} then {g2:?}"
        );
        wait_for(Duration::from_secs(5), "SUCCEEDED", async || {
            api.deliveries(&sub).await[0]["status"] == "SUCCEEDED"
        })
        .await;
        let log = api.deliveries(&sub).await;
        let codes: Vec<&Value> = log[0]["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| &a["responseStatus"])
            .collect();
        assert_eq!(codes, [&json!(500), &json!(500), &json!(200)]);
        assert_eq!(log[0]["attempts"][0]["error"], "HTTP 500");
        // Each attempt keeps the start of the answer (4 KiB at most, whole characters) and the
        // headers exactly as that attempt sent them.
        let first = &log[0]["attempts"][0];
        let answer = first["responseBody"].as_str().unwrap();
        assert!(
            answer.starts_with("库存服务不可用 \u{fffd} \"忙\" \\ xxx"),
            "{answer:.40}"
        );
        assert!(
            answer.len() <= 4096 && answer.len() > 4000,
            "{}",
            answer.len()
        );
        assert!(
            log[0]["attempts"][2].get("responseBody").is_none(),
            "200 had no body"
        );
        for (attempt, hit) in log[0]["attempts"].as_array().unwrap().iter().zip(&hits) {
            let sent = &attempt["requestHeaders"];
            for name in [
                "webhook-id",
                "webhook-signature",
                "webhook-timestamp",
                "x-l2c-signature",
            ] {
                assert_eq!(sent[name], header(hit, name), "{name} as received");
            }
            assert_eq!(sent["content-type"], "application/json");
            assert!(
                sent["user-agent"]
                    .as_str()
                    .unwrap()
                    .starts_with("l2c-webhooks/")
            );
        }
        // No fourth attempt.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(receiver.hits().len(), 3);
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_on_429_is_honoured() {
    for backend in Backend::available() {
        let receiver = Receiver::start(&[429]).await;
        let server = TestServer::start_with(backend, options("100ms,100ms")).await;
        let api = api(&server, Scopes::all()).await;
        api.subscribe(&receiver.url, &["ORDER_CREATED"]).await;
        api.sync("ERP-WH-429").await;
        wait_for(Duration::from_secs(10), "two attempts", async || {
            receiver.hits().len() >= 2
        })
        .await;
        let hits = receiver.hits();
        assert_eq!(hits[0].answered, 429);
        assert_eq!(hits[1].answered, 200);
        let gap = hits[1].at - hits[0].at;
        assert!(
            gap >= Duration::from_millis(950),
            "Retry-After: 1 overrides the 100 ms schedule step, waited {gap:?}"
        );
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_disables_redirects_fail_and_redeliver_requeues() {
    for backend in Backend::available() {
        let gone = Receiver::start(&[410]).await;
        let redirecting = Receiver::start(&[302, 302]).await;
        let server = TestServer::start_with(backend, options("200ms")).await;
        let api = api(&server, Scopes::all()).await;
        let (sub_gone, _) = api.subscribe(&gone.url, &["ORDER_CREATED"]).await;
        let (sub_redirect, _) = api.subscribe(&redirecting.url, &["ORDER_CREATED"]).await;
        api.sync("ERP-WH-GONE-1").await;

        wait_for(
            Duration::from_secs(10),
            "both deliveries to fail",
            async || {
                api.deliveries(&sub_gone).await[0]["status"] == "FAILED"
                    && api.deliveries(&sub_redirect).await[0]["status"] == "FAILED"
            },
        )
        .await;
        // 410: one attempt, the subscription is disabled and gets no new events.
        let log = api.deliveries(&sub_gone).await;
        assert_eq!(log[0]["attempts"].as_array().unwrap().len(), 1);
        assert_eq!(log[0]["attempts"][0]["responseStatus"], 410);
        let (_, list) = api
            .send(http::Method::GET, "/api/mobile/webhooks", None)
            .await;
        let listed = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["id"] == sub_gone.as_str())
            .unwrap()
            .clone();
        assert_eq!(listed["enabled"], false);
        // 302: not followed, a failure each time; the schedule "200ms" allows two attempts.
        let log = api.deliveries(&sub_redirect).await;
        let attempts = log[0]["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 2);
        assert_eq!(attempts[0]["responseStatus"], 302);
        assert!(
            attempts[0]["error"]
                .as_str()
                .unwrap()
                .contains("redirects are not followed")
        );
        assert_eq!(*redirecting.state.elsewhere.lock().unwrap(), 0);

        api.sync("ERP-WH-GONE-2").await;
        wait_for(Duration::from_secs(10), "the second event", async || {
            redirecting.ok_hits().len() == 1
        })
        .await;
        assert_eq!(
            gone.hits().len(),
            1,
            "a disabled subscription receives nothing"
        );
        assert_eq!(api.deliveries(&sub_gone).await.len(), 1);

        // Redeliver the failed (redirected) first event: queued again, now answered 200.
        let first = api.deliveries(&sub_redirect).await;
        let failed = first.iter().find(|d| d["status"] == "FAILED").unwrap();
        let (status, body) = api
            .send(
                http::Method::POST,
                &format!(
                    "/api/mobile/webhooks/{sub_redirect}/deliveries/{}/redeliver",
                    failed["id"].as_str().unwrap()
                ),
                None,
            )
            .await;
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["status"], "PENDING");
        wait_for(Duration::from_secs(10), "the redelivery", async || {
            redirecting.ok_hits().len() == 2
        })
        .await;
        let event_id = failed["eventId"].as_str().unwrap();
        assert!(
            redirecting
                .ok_hits()
                .iter()
                .any(|h| header(h, "webhook-id") == event_id)
        );
        wait_for(Duration::from_secs(5), "SUCCEEDED", async || {
            api.deliveries(&sub_redirect)
                .await
                .iter()
                .all(|d| d["status"] == "SUCCEEDED")
        })
        .await;
        // Redelivering on a disabled subscription is refused.
        let (status, _) = api
            .send(
                http::Method::POST,
                &format!(
                    "/api/mobile/webhooks/{sub_gone}/deliveries/{}/redeliver",
                    api.deliveries(&sub_gone).await[0]["id"].as_str().unwrap()
                ),
                None,
            )
            .await;
        assert_eq!(status, 409);
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_deliveries_survive_a_crash_and_restart() {
    for backend in Backend::available() {
        let receiver = Receiver::start(&[]).await;
        *receiver.state.down.lock().unwrap() = true;
        let schedule = "200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms";
        let server = TestServer::start_with(backend, options(schedule)).await;
        let test_db: TestDb = server.test_db.clone();
        let (sub, expected) = {
            let api = api(&server, Scopes::all()).await;
            let (sub, _) = api
                .subscribe(&receiver.url, &["ORDER_CREATED", "PAYMENT_RECEIVED"])
                .await;
            for i in 0..3 {
                api.sync(&format!("ERP-WH-CRASH-{i}")).await;
            }
            wait_for(Duration::from_secs(10), "failed attempts", async || {
                receiver.hits().len() >= 6
            })
            .await;
            let ids: HashSet<String> = api
                .deliveries(&sub)
                .await
                .iter()
                .map(|d| d["eventId"].as_str().unwrap().to_owned())
                .collect();
            (sub, ids)
        };
        assert_eq!(expected.len(), 6, "3 ORDER_CREATED + 3 PAYMENT_RECEIVED");
        // Crash: the server task is aborted, no graceful shutdown, leases may be left behind.
        drop(server);

        *receiver.state.down.lock().unwrap() = false;
        let server = TestServer::start_on(test_db, options(schedule)).await;
        wait_for(
            Duration::from_secs(15),
            "every event after the restart",
            async || {
                let got: HashSet<String> = receiver
                    .ok_hits()
                    .iter()
                    .map(|h| header(h, "webhook-id").to_owned())
                    .collect();
                got == expected
            },
        )
        .await;
        // Duplicates, if any, carry the same event id (the set equality above); none is lost,
        // and every delivery ends SUCCEEDED.
        let statuses: Vec<String> = sqlx::query_scalar::<_, String>(
            "SELECT status FROM webhook_deliveries WHERE subscription_id = $1",
        )
        .bind(&sub)
        .fetch_all(server.db.pool())
        .await
        .unwrap();
        assert_eq!(statuses.len(), 6);
        wait_for(Duration::from_secs(5), "all SUCCEEDED", async || {
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM webhook_deliveries WHERE subscription_id = $1 \
                 AND status = 'SUCCEEDED'",
            )
            .bind(&sub)
            .fetch_one(server.db.pool())
            .await
            .unwrap()
                == 6
        })
        .await;
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_database_deliver_each_event_once() {
    for backend in Backend::available() {
        let receiver = Receiver::start(&[]).await;
        let a = TestServer::start_with(backend, options("1s")).await;
        let b = TestServer::start_on(a.test_db.clone(), options("1s")).await;
        let api_a = api(&a, Scopes::all()).await;
        let api_b = Api {
            server: &b,
            token: api_a.token.clone(),
        };
        let (sub, _) = api_a
            .subscribe(&receiver.url, &["ORDER_CREATED", "PAYMENT_RECEIVED"])
            .await;
        for i in 0..10 {
            let api = if i % 2 == 0 { &api_a } else { &api_b };
            api.sync(&format!("ERP-WH-TWO-{i}")).await;
        }
        wait_for(Duration::from_secs(20), "20 deliveries", async || {
            let log = api_a.deliveries(&sub).await;
            log.len() == 20 && log.iter().all(|d| d["status"] == "SUCCEEDED")
        })
        .await;
        // Settle, then count: exactly one request per event.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let hits = receiver.hits();
        let ids: HashSet<&str> = hits.iter().map(|h| header(h, "webhook-id")).collect();
        assert_eq!(ids.len(), 20);
        assert_eq!(hits.len(), 20, "no event was sent twice");
        for d in api_a.deliveries(&sub).await {
            assert_eq!(d["attempts"].as_array().unwrap().len(), 1, "{d}");
        }
        let _ = b.shutdown().await;
        a.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_destinations_and_bad_bodies_are_refused_without_the_flag() {
    for backend in Backend::available() {
        let server = TestServer::start(backend).await; // no --allow-private-webhooks
        let api = api(&server, Scopes::all()).await;
        for url in [
            "https://127.0.0.1/hook",
            "https://10.0.0.1/hook",
            "https://169.254.169.254/latest/meta-data/",
            "https://[::1]/hook",
            "https://localhost/hook",
            "https://[::ffff:10.0.0.1]/hook",
            "https://100.64.0.1/hook",
            "http://93.184.215.14/hook",
            "https://user:pw@93.184.215.14/hook",
            "not a url",
        ] {
            let (status, body) = api
                .send(
                    http::Method::POST,
                    "/api/mobile/webhooks",
                    Some(json!({"url": url, "events": ["ORDER_CREATED"]})),
                )
                .await;
            assert_eq!(status, 400, "{url}: {body}");
            assert_eq!(body["field"], "url", "{url}: {body}");
            assert_eq!(body["code"], "invalid_field");
        }
        for (events, why) in [
            (json!([]), "empty"),
            (json!(["NOPE"]), "unknown"),
            (json!("ORDER_CREATED"), "not an array"),
        ] {
            let (status, body) = api
                .send(
                    http::Method::POST,
                    "/api/mobile/webhooks",
                    Some(json!({"url": "https://93.184.215.14/hook", "events": events})),
                )
                .await;
            assert_eq!(status, 400, "{why}: {body}");
            assert_eq!(body["field"], "events", "{why}: {body}");
        }
        let (status, body) = api
            .send(
                http::Method::POST,
                "/api/mobile/webhooks",
                Some(json!({"events": ["ORDER_CREATED"]})),
            )
            .await;
        assert_eq!((status, &body["field"]), (400, &json!("url")));
        // The scope is required.
        let reader = self::api(&server, Scopes::one(Scope::OrdersRead)).await;
        let (status, _) = reader
            .send(http::Method::GET, "/api/mobile/webhooks", None)
            .await;
        assert_eq!(status, 403);
        let (_, list) = api
            .send(http::Method::GET, "/api/mobile/webhooks", None)
            .await;
        assert_eq!(list["items"], json!([]), "nothing was written");
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_signs_with_both_secrets_and_subscriptions_are_private() {
    for backend in Backend::available() {
        let receiver = Receiver::start(&[]).await;
        let server = TestServer::start_with(backend, options("1s")).await;
        let owner = api(&server, Scopes::all()).await;
        let other = api(&server, Scopes::all()).await;
        let (sub, old_secret) = owner.subscribe(&receiver.url, &["ORDER_CREATED"]).await;

        // Another client cannot see or touch it.
        let (_, list) = other
            .send(http::Method::GET, "/api/mobile/webhooks", None)
            .await;
        assert_eq!(list["items"], json!([]));
        for (method, path) in [
            (http::Method::DELETE, format!("/api/mobile/webhooks/{sub}")),
            (
                http::Method::POST,
                format!("/api/mobile/webhooks/{sub}/rotate-secret"),
            ),
            (
                http::Method::POST,
                format!("/api/mobile/webhooks/{sub}/promote-secret"),
            ),
            (
                http::Method::GET,
                format!("/api/mobile/webhooks/{sub}/deliveries"),
            ),
        ] {
            let (status, _) = other.send(method.clone(), &path, None).await;
            assert_eq!(status, 404, "{method} {path}");
        }

        let (status, rotated) = owner
            .send(
                http::Method::POST,
                &format!("/api/mobile/webhooks/{sub}/rotate-secret"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{rotated}");
        let new_secret = rotated["secret"].as_str().unwrap().to_owned();
        assert_ne!(new_secret, old_secret);
        assert!(rotated["previousSecretExpiresAt"].is_string());
        // The list shows the window but never a secret.
        let res = server
            .http()
            .get(server.url("/api/mobile/webhooks"))
            .bearer_auth(&owner.token)
            .send()
            .await
            .unwrap();
        let text = res.text().await.unwrap();
        assert!(!text.contains("whsec_"), "{text}");
        let list: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            list["items"][0]["previousSecretExpiresAt"],
            rotated["previousSecretExpiresAt"]
        );

        owner.sync("ERP-WH-ROT").await;
        wait_for(Duration::from_secs(10), "the delivery", async || {
            !receiver.hits().is_empty()
        })
        .await;
        let hit = receiver.hits()[0].clone();
        let sigs: Vec<&str> = header(&hit, "webhook-signature").split(' ').collect();
        assert_eq!(sigs.len(), 2, "both secrets sign during the window");
        for secret in [&new_secret, &old_secret] {
            let parsed = WebhookSecret::parse(secret).unwrap();
            Verifier::new(parsed)
                .verify(&hit.headers, &hit.body)
                .expect("each secret verifies");
            if let Some(ok) = python_verifies(&hit, secret) {
                assert!(ok);
            }
        }
        // X-L2C-Signature carries one value: the previous secret's until a promote (staged).
        let sig = header(&hit, "x-l2c-signature");
        assert!(node_verifies(&hit.body, &old_secret, sig));
        assert!(!node_verifies(&hit.body, &new_secret, sig));

        wait_for(Duration::from_secs(5), "SUCCEEDED", async || {
            owner.deliveries(&sub).await[0]["status"] == "SUCCEEDED"
        })
        .await;
        // The owner deletes it, with its delivery log.
        let (status, _) = owner
            .send(
                http::Method::DELETE,
                &format!("/api/mobile/webhooks/{sub}"),
                None,
            )
            .await;
        assert_eq!(status, 204);
        let (_, list) = owner
            .send(http::Method::GET, "/api/mobile/webhooks", None)
            .await;
        assert_eq!(list["items"], json!([]));
        server.stop().await;
    }
}

/// Whether `secret` made the hit's `X-L2C-Signature` (the spec's hex HMAC of the body).
fn spec_header_signed_by(hit: &Hit, secret: &str) -> bool {
    let secret = WebhookSecret::parse(secret).unwrap();
    l2c_core::webhook::sign_legacy(&secret, &hit.body) == header(hit, "x-l2c-signature")
}

/// Whether `secret` verifies the hit's Standard Webhooks `webhook-signature` at the test clock.
fn standard_header_signed_by(hit: &Hit, secret: &str, clock: &MockClock) -> bool {
    Verifier::new(WebhookSecret::parse(secret).unwrap())
        .with_clock(clock.clone())
        .verify(&hit.headers, &hit.body)
        .is_ok()
}

/// Syncs order `no` and returns the hit it produced at `receiver` (its `n`-th).
async fn delivered(api: &Api<'_>, receiver: &Receiver, no: &str, n: usize) -> Hit {
    api.sync(no).await;
    wait_for(Duration::from_secs(10), no, async || {
        receiver.ok_hits().len() > n
    })
    .await;
    receiver.ok_hits()[n].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staged_rotation_keeps_the_spec_header_on_the_old_secret_until_promoted() {
    for backend in Backend::available() {
        let clock = MockClock::at_unix(1_790_000_000);
        let receiver = Receiver::start(&[]).await;
        let mut o = options("1s");
        o.clock = Some(Arc::new(clock.clone()));
        let server = TestServer::start_with(backend, o).await;
        let owner = api(&server, Scopes::all()).await;
        let other = api(&server, Scopes::all()).await;
        let (sub, first) = owner.subscribe(&receiver.url, &["ORDER_CREATED"]).await;
        let rotate = format!("/api/mobile/webhooks/{sub}/rotate-secret");
        let promote = format!("/api/mobile/webhooks/{sub}/promote-secret");
        let stage = async || {
            let (_, list) = owner
                .send(http::Method::GET, "/api/mobile/webhooks", None)
                .await;
            list["items"][0]["secretRotation"].clone()
        };

        // Nothing to promote yet.
        let (status, problem) = owner.send(http::Method::POST, &promote, None).await;
        assert_eq!(
            (status, &problem["code"]),
            (409, &json!("no_secret_rotation"))
        );
        // Bad overlaps are refused and change nothing.
        for (bad, want) in [
            (json!({"overlapSeconds": 604_801}), 422),
            (json!({"overlapSecond": 60}), 422),
            (json!({"overlapSeconds": -1}), 422),
            (json!({"overlapSeconds": 1.5}), 422),
            (json!({"overlapSeconds": -0.0}), 422),
            (json!([]), 400),
        ] {
            let (status, problem) = owner
                .send(http::Method::POST, &rotate, Some(bad.clone()))
                .await;
            assert_eq!(status, want, "{bad}: {problem}");
        }
        assert_eq!(stage().await, Value::Null);

        // STAGED (default 24 h): the spec's header with the OLD secret only, the Standard
        // Webhooks header with either.
        // (A `null` body is no body: the default overlap.)
        let (status, rotated) = owner
            .send(http::Method::POST, &rotate, Some(Value::Null))
            .await;
        assert_eq!(status, 200, "{rotated}");
        let second = rotated["secret"].as_str().unwrap().to_owned();
        assert_eq!(
            rotated["previousSecretExpiresAt"], "2026-09-22T22:13:20+08:00",
            "24 h after the clock's 2026-09-21T22:13:20+08:00"
        );
        let rotation = stage().await;
        assert_eq!(rotation["stage"], "STAGED");
        assert_eq!(
            rotation["previousSecretExpiresAt"],
            rotated["previousSecretExpiresAt"]
        );
        let hit = delivered(&owner, &receiver, "ERP-STAGE-1", 0).await;
        assert!(spec_header_signed_by(&hit, &first));
        assert!(!spec_header_signed_by(&hit, &second));
        assert!(standard_header_signed_by(&hit, &first, &clock));
        assert!(standard_header_signed_by(&hit, &second, &clock));

        // Another client's token cannot promote it.
        let (status, _) = other.send(http::Method::POST, &promote, None).await;
        assert_eq!(status, 404);
        assert_eq!(stage().await["stage"], "STAGED");

        // Promote: the spec's header with the NEW secret; the Standard header still both.
        clock.advance(Duration::from_secs(60));
        // (With one X-Request-Id, sent twice: the retry replays the first answer.)
        let promote_once = async || {
            let res = server
                .http()
                .post(server.url(&promote))
                .bearer_auth(&owner.token)
                .header("x-request-id", "promote-1")
                .send()
                .await
                .unwrap();
            let replayed = res.headers().get("idempotent-replayed").is_some();
            let status = res.status().as_u16();
            (status, replayed, res.json::<Value>().await.unwrap())
        };
        let (status, replayed, promoted) = promote_once().await;
        assert_eq!((status, replayed), (200, false), "{promoted}");
        assert_eq!(promoted["secretRotation"]["stage"], "PROMOTED");
        assert_eq!(
            promoted["secretRotation"]["promotedAt"],
            "2026-09-21T22:14:20+08:00"
        );
        let (status, replayed, again) = promote_once().await;
        assert_eq!((status, replayed), (200, true));
        assert_eq!(again, promoted);
        let (status, problem) = owner.send(http::Method::POST, &promote, None).await;
        assert_eq!(
            (status, &problem["code"]),
            (409, &json!("secret_already_promoted"))
        );
        let hit = delivered(&owner, &receiver, "ERP-STAGE-2", 1).await;
        assert!(spec_header_signed_by(&hit, &second));
        assert!(!spec_header_signed_by(&hit, &first));
        assert!(standard_header_signed_by(&hit, &first, &clock));
        assert!(standard_header_signed_by(&hit, &second, &clock));

        // A second rotation with a 1 h overlap; rotating again while it is staged keeps the
        // secret the spec's header uses (the second) and drops the never-promoted third.
        // (`3600.0` is the integer 3600, as in JSON Schema.)
        let body = Some(json!({"overlapSeconds": 3600.0}));
        let (status, third) = owner.send(http::Method::POST, &rotate, body.clone()).await;
        assert_eq!(status, 200, "{third}");
        let (status, fourth) = owner.send(http::Method::POST, &rotate, body).await;
        assert_eq!(status, 200, "{fourth}");
        let (third, fourth) = (
            third["secret"].as_str().unwrap(),
            fourth["secret"].as_str().unwrap(),
        );
        let hit = delivered(&owner, &receiver, "ERP-STAGE-3", 2).await;
        assert!(spec_header_signed_by(&hit, &second));
        assert!(standard_header_signed_by(&hit, fourth, &clock));
        assert!(!standard_header_signed_by(&hit, third, &clock));
        assert_eq!(header(&hit, "webhook-signature").split(' ').count(), 2);

        // The overlap ends without a promote: the NEW secret alone, everywhere.
        // (The token, 2 h, is still valid: 3661 s have passed on the clock.)
        clock.advance(Duration::from_secs(3601));
        assert_eq!(stage().await, Value::Null, "no rotation under way any more");
        let (status, problem) = owner.send(http::Method::POST, &promote, None).await;
        assert_eq!(
            (status, &problem["code"]),
            (409, &json!("no_secret_rotation"))
        );
        let hit = delivered(&owner, &receiver, "ERP-STAGE-4", 3).await;
        assert!(spec_header_signed_by(&hit, fourth));
        assert!(standard_header_signed_by(&hit, fourth, &clock));
        assert!(!standard_header_signed_by(&hit, &second, &clock));
        assert_eq!(header(&hit, "webhook-signature").split(' ').count(), 1);
        server.stop().await;
    }
}

// ---------------------------------------------------------------------------------------------
// The real binary, killed with SIGKILL.

struct Process {
    child: tokio::process::Child,
    base_url: String,
}

async fn spawn_binary(database_url: &str, schedule: &str) -> Process {
    use tokio::io::AsyncBufReadExt as _;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_l2c-server"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            database_url,
            "--no-demo-client",
            "--allow-private-webhooks",
            "--webhook-retry-schedule",
            schedule,
            "--webhook-timeout",
            "2s",
            "--metrics-listen",
            "off",
        ])
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
    .expect("the server starts within 30 s")
    .expect("the server logs its address");
    // Keep reading so the pipe never fills up.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Process {
        child,
        base_url: format!("http://{address}"),
    }
}

async fn binary_token(http: &reqwest::Client, base: &str, id: &str, secret: &str) -> String {
    let res = http
        .post(format!("{base}/api/oauth/token"))
        .json(
            &json!({"grant_type": "client_credentials", "client_id": id, "client_secret": secret}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_server_delivers_every_event_after_restart() {
    for backend in Backend::available() {
        let test_db = TestDb::create(backend).await;
        let db = l2c_server::store::Db::connect(&test_db.url).await.unwrap();
        let (client, secret) = db
            .clients()
            .create(&l2c_server::store::NewClient::new("kill", Scopes::all()))
            .await
            .unwrap();
        let (client_id, secret) = (client.id.to_string(), secret.expose().to_owned());
        let http = reqwest::Client::builder().no_proxy().build().unwrap();

        let receiver = Receiver::start(&[]).await;
        *receiver.state.down.lock().unwrap() = true;
        let schedule = "300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms";
        let mut first = spawn_binary(&test_db.url, schedule).await;
        let token = binary_token(&http, &first.base_url, &client_id, &secret).await;
        let post = async |base: &str, path: &str, body: Value| {
            let res = http
                .post(format!("{base}{path}"))
                .bearer_auth(&token)
                .header("x-request-id", uuid::Uuid::new_v4().to_string())
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap())
        };
        let (status, sub) = post(
            &first.base_url,
            "/api/mobile/webhooks",
            json!({"url": receiver.url, "events": ["ORDER_CREATED", "PAYMENT_RECEIVED"]}),
        )
        .await;
        assert_eq!(status, 201, "{sub}");
        for i in 0..3 {
            let (status, body) = post(
                &first.base_url,
                "/api/mobile/orders/sync",
                order(&format!("ERP-WH-KILL-{i}")),
            )
            .await;
            assert_eq!(status, 201, "{body}");
        }
        wait_for(Duration::from_secs(15), "failed attempts", async || {
            receiver.hits().len() >= 8
        })
        .await;
        first.child.kill().await.unwrap(); // SIGKILL
        let _ = first.child.wait().await;

        let expected: HashSet<String> =
            sqlx::query_scalar::<_, String>("SELECT id FROM webhook_events")
                .fetch_all(db.pool())
                .await
                .unwrap()
                .into_iter()
                .collect();
        assert_eq!(expected.len(), 6, "3 ORDER_CREATED + 3 PAYMENT_RECEIVED");
        *receiver.state.down.lock().unwrap() = false;
        let mut second = spawn_binary(&test_db.url, schedule).await;
        wait_for(
            Duration::from_secs(30),
            "every event after the restart",
            async || {
                let got: HashSet<String> = receiver
                    .ok_hits()
                    .iter()
                    .map(|h| header(h, "webhook-id").to_owned())
                    .collect();
                got == expected
            },
        )
        .await;
        wait_for(Duration::from_secs(10), "all SUCCEEDED", async || {
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'SUCCEEDED'",
            )
            .fetch_one(db.pool())
            .await
            .unwrap()
                == 6
        })
        .await;
        // Every request carried one of the six event ids: duplicates, if any, are retries.
        let all: HashSet<String> = receiver
            .hits()
            .iter()
            .map(|h| header(h, "webhook-id").to_owned())
            .collect();
        assert_eq!(all, expected);
        second.child.kill().await.unwrap();
        let _ = second.child.wait().await;
        db.close().await;
        test_db.cleanup().await;
    }
}

/// Rows left in the webhook tables: (deliveries, attempts, events).
async fn webhook_rows(server: &TestServer) -> (i64, i64, i64) {
    let mut counts = [0i64; 3];
    for (n, table) in
        counts
            .iter_mut()
            .zip(["webhook_deliveries", "webhook_attempts", "webhook_events"])
    {
        *n = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(server.db.pool())
            .await
            .unwrap();
    }
    (counts[0], counts[1], counts[2])
}

/// Options on a test clock (which also stamps the rows) with `retention`.
fn retention_options(clock: &MockClock, retention: Retention) -> TestOptions {
    let mut o = options("1h");
    o.clock = Some(Arc::new(clock.clone()));
    o.config.webhooks.retention = retention;
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_deliveries_expire_after_the_retention_and_pending_ones_stay() {
    for backend in Backend::available() {
        let clock = MockClock::at_unix(1_790_000_000);
        let ok = Receiver::start(&[]).await;
        // 410: the delivery fails for good (and the subscription is disabled).
        let gone = Receiver::start(&[410]).await;
        // 503 with a retry an hour later: that delivery stays pending through the test.
        let down = Receiver::start(&[]).await;
        *down.state.down.lock().unwrap() = true;
        let retention = Duration::from_secs(600);
        let server = TestServer::start_with(
            backend,
            retention_options(&clock, Retention::keep_for(retention)),
        )
        .await;
        let api = api(&server, Scopes::all()).await;
        let (ok_sub, _) = api.subscribe(&ok.url, &["ORDER_CREATED"]).await;
        let (gone_sub, _) = api.subscribe(&gone.url, &["ORDER_CREATED"]).await;
        let (down_sub, _) = api.subscribe(&down.url, &["ORDER_CREATED"]).await;
        api.sync("ERP-WH-RET-1").await;
        wait_for(
            Duration::from_secs(10),
            "the three first attempts",
            async || {
                let mut attempted = 0;
                for sub in [&ok_sub, &gone_sub, &down_sub] {
                    let log = api.deliveries(sub).await;
                    if log
                        .first()
                        .is_some_and(|d| !d["attempts"].as_array().unwrap().is_empty())
                    {
                        attempted += 1;
                    }
                }
                attempted == 3
            },
        )
        .await;
        // The sync made two events (ORDER_CREATED and PAYMENT_RECEIVED, the deposit); only the
        // first has deliveries.
        assert_eq!(webhook_rows(&server).await, (3, 3, 2));
        let dispatcher = Dispatcher::from_state(&server.state);

        // Not yet expired: nothing goes.
        assert_eq!(dispatcher.purge().await.unwrap(), Purged::default());
        clock.advance(retention + Duration::from_secs(60));

        // The succeeded and the failed delivery go with their attempts, and so does the event
        // nobody was sent; the pending delivery (and so its event) stay.
        let purged = dispatcher.purge().await.unwrap();
        assert_eq!((purged.deliveries, purged.events), (2, 1));
        assert_eq!(webhook_rows(&server).await, (1, 1, 1));
        assert!(api.deliveries(&ok_sub).await.is_empty());
        assert!(api.deliveries(&gone_sub).await.is_empty());
        let pending = api.deliveries(&down_sub).await;
        assert_eq!(pending[0]["status"], "PENDING", "{pending:?}");
        assert_eq!(pending[0]["attempts"].as_array().unwrap().len(), 1);

        // Once no delivery refers to the old event (its last subscription was deleted), it goes
        // too; what was delivered just now stays.
        let (status, body) = api
            .send(
                http::Method::DELETE,
                &format!("/api/mobile/webhooks/{down_sub}"),
                None,
            )
            .await;
        assert_eq!(status, 204, "{body}");
        api.sync("ERP-WH-RET-2").await;
        wait_for(Duration::from_secs(10), "the new delivery", async || {
            ok.hits().len() == 2
        })
        .await;
        wait_for(
            Duration::from_secs(10),
            "the new delivery's record",
            async || {
                api.deliveries(&ok_sub)
                    .await
                    .first()
                    .is_some_and(|d| d["status"] == "SUCCEEDED")
            },
        )
        .await;
        let purged = dispatcher.purge().await.unwrap();
        assert_eq!((purged.deliveries, purged.events), (0, 1));
        assert_eq!(api.deliveries(&ok_sub).await.len(), 1);
        assert_eq!(webhook_rows(&server).await, (1, 1, 2));
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_off_keeps_everything_and_bad_values_are_refused() {
    for backend in Backend::available() {
        let clock = MockClock::at_unix(1_790_000_000);
        let ok = Receiver::start(&[]).await;
        let server =
            TestServer::start_with(backend, retention_options(&clock, Retention::forever())).await;
        let api = api(&server, Scopes::all()).await;
        let (sub, _) = api.subscribe(&ok.url, &["ORDER_CREATED"]).await;
        api.sync("ERP-WH-RET-OFF").await;
        wait_for(Duration::from_secs(10), "the delivery", async || {
            api.deliveries(&sub)
                .await
                .first()
                .is_some_and(|d| d["status"] == "SUCCEEDED")
        })
        .await;
        let before = webhook_rows(&server).await;
        assert_eq!(before, (1, 1, 2));
        // A year later, nothing is old enough to go.
        clock.advance(Duration::from_secs(400 * 86_400));
        let purged = Dispatcher::from_state(&server.state).purge().await.unwrap();
        assert_eq!(purged, Purged::default());
        assert_eq!(webhook_rows(&server).await, before);
        server.stop().await;
    }
    // Tried: zero, a bare number, a negative number, an unknown unit, empty.
    for bad in ["0s", "0", "30", "-1d", "3w", ""] {
        assert!(bad.parse::<Retention>().is_err(), "{bad:?}");
    }
    assert_eq!(
        "12h".parse::<Retention>().unwrap().duration(),
        Some(Duration::from_secs(12 * 3600))
    );
}
