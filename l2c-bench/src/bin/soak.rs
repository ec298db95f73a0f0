//! `l2c-soak`: the load driver of `scripts/soak.sh`.
//!
//! The script starts the replicas (several `l2c-server` processes on one PostgreSQL database and
//! one Redis prefix) and creates two clients with `l2c-server client create`; this driver then:
//!
//! 1. takes a token for each client and subscribes two webhooks of the main client to ORDER_CREATED,
//!    ORDER_STATUS_CHANGED and PAYMENT_RECEIVED, each pointing at a receiver it runs on
//!    127.0.0.1:0 that verifies every delivery's signature with [`l2c_core::webhook::Verifier`];
//! 2. for `--duration` seconds drives `--workers` loops of mixed load, every request to the next
//!    replica in turn: lead pushes, order syncs (a creation with its deposit, then a status change
//!    with a progress payment), order status reads, showroom reads and report exports; a share of
//!    the POSTs is retried with the same `X-Request-Id` at another replica, and the retry must be
//!    a replay (`Idempotent-Replayed: true`, same status, same body), never a second execution;
//! 3. meanwhile drives the quota client (`--quota`, e.g. `600/min;burst=20`) at three times its
//!    rate across all replicas and checks that the number of 2xx it got is what one GCRA bucket
//!    in Redis allows over the time between its first and last request (see [`QuotaCheck`]);
//! 4. waits (at most `--drain-timeout` seconds) until the receivers got every event the syncs
//!    emitted, and compares the distinct event ids received with the events expected;
//! 5. samples every replica's resident set (`VmRSS` of `/proc/PID/status`) after `--warmup`
//!    seconds and at the end.
//!
//! It prints exactly one line on stdout,
//! `soak: requests=… 5xx=0 quota_exact=yes events=N/N duplicates_executed=0 rss_growth_mib=…`,
//! progress and details on stderr, and exits 1 when a response was 5xx, an event is missing (or
//! unexpected), a duplicate was executed, the quota was not exact, or anything else went wrong
//! (a transport error, an unexpected status, a delivery with a bad signature).
//!
//! A duplicate executed is either a retry answered other than as a replay of the first answer,
//! or a second event (new event id) for the same change of the same order: ORDER_CREATED twice
//! for one order, ORDER_STATUS_CHANGED twice for one version, PAYMENT_RECEIVED twice for one
//! channel transaction. The same event id delivered twice is a redelivery (allowed by
//! at-least-once delivery) and is only reported on stderr.

use std::collections::{HashMap, HashSet};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use clap::Parser;
use l2c_core::api::events::EventData;
use l2c_core::rate_limit::Quota;
use l2c_core::webhook::{Verifier, WebhookSecret};
use serde_json::{Value, json};

/// Webhook subscriptions of the main client, each with its own receiver.
const SUBSCRIPTIONS: usize = 2;

/// Every how many iterations a worker runs a report export.
const EXPORT_EVERY: u64 = 10;

/// The quota client sends this many requests per request its quota allows.
const QUOTA_OVERDRIVE: u32 = 3;

/// Timeout of one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Most unexpected answers kept for the report.
const MAX_PROBLEMS: usize = 20;

/// The command line.
#[derive(Debug, Parser)]
#[command(name = "l2c-soak", about = "Load driver of scripts/soak.sh")]
struct Args {
    /// A replica: `ADDR@PID` (e.g. `127.0.0.1:41234@5678`); repeat for each.
    #[arg(long = "replica", required = true, value_parser = parse_replica)]
    replicas: Vec<Replica>,
    /// The main client, `ID:SECRET` (a high quota; drives the mixed load).
    #[arg(long)]
    client: Credentials,
    /// The quota client, `ID:SECRET`, created with `--rate-limit` equal to `--quota`.
    #[arg(long)]
    quota_client: Credentials,
    /// The quota client's quota, e.g. `600/min;burst=20`.
    #[arg(long)]
    quota: Quota,
    /// Seconds of load.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Seconds after the start when RSS is first sampled.
    #[arg(long, default_value_t = 10)]
    warmup: u64,
    /// Concurrent loops of mixed load.
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// Longest wait, in seconds, for the webhook deliveries to drain after the load.
    #[arg(long, default_value_t = 120)]
    drain_timeout: u64,
    /// Tag of this run, used in request ids, lead ids and order numbers.
    #[arg(long)]
    run_id: String,
}

#[derive(Debug, Clone)]
struct Replica {
    base: String,
    pid: u32,
}

fn parse_replica(s: &str) -> Result<Replica, String> {
    let (addr, pid) = s
        .split_once('@')
        .ok_or_else(|| format!("`{s}`: expected ADDR@PID"))?;
    let addr: std::net::SocketAddr = addr.parse().map_err(|e| format!("`{addr}`: {e}"))?;
    let pid = pid.parse().map_err(|e| format!("`{pid}`: {e}"))?;
    Ok(Replica {
        base: format!("http://{addr}"),
        pid,
    })
}

#[derive(Debug, Clone)]
struct Credentials {
    id: String,
    secret: String,
}

impl std::str::FromStr for Credentials {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (id, secret) = s
            .split_once(':')
            .ok_or_else(|| "expected ID:SECRET".to_owned())?;
        Ok(Self {
            id: id.to_owned(),
            secret: secret.to_owned(),
        })
    }
}

/// One answer: status, headers, body.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

/// Counters shared by every task.
#[derive(Debug, Default)]
struct Stats {
    requests: AtomicU64,
    server_errors: AtomicU64,
    failures: AtomicU64,
    problems: Mutex<Vec<String>>,
    retries: AtomicU64,
    duplicates_executed: AtomicU64,
    /// Events the syncs emitted, per subscription.
    expected_events: AtomicU64,
    leads: AtomicU64,
    orders_created: AtomicU64,
    orders_updated: AtomicU64,
    reads: AtomicU64,
    exports: AtomicU64,
}

impl Stats {
    fn fail(&self, what: String) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let mut problems = self.problems.lock().unwrap_or_else(|e| e.into_inner());
        if problems.len() < MAX_PROBLEMS {
            problems.push(what);
        }
    }
}

/// The HTTP side of the driver: one client, the replicas in turn.
#[derive(Debug)]
struct Driver {
    http: reqwest::Client,
    replicas: Vec<Replica>,
    next: AtomicUsize,
    stats: Stats,
    run: String,
}

impl Driver {
    /// The next replica's index.
    fn pick(&self) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed) % self.replicas.len()
    }

    /// Sends a request to replica `replica`, counting it; `None` (counted as a failure) when no
    /// answer came.
    async fn send(
        &self,
        replica: usize,
        method: reqwest::Method,
        path: &str,
        token: &str,
        request_id: Option<&str>,
        body: Option<&Value>,
    ) -> Option<Answer> {
        let url = format!("{}{path}", self.replicas[replica].base);
        let mut req = self.http.request(method.clone(), &url).bearer_auth(token);
        if let Some(id) = request_id {
            req = req.header("x-request-id", id);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let result = async {
            let res = req.send().await?;
            let status = res.status();
            let headers = res.headers().clone();
            let body = res.bytes().await?;
            Ok::<_, reqwest::Error>(Answer {
                status,
                headers,
                body,
            })
        }
        .await;
        match result {
            Ok(answer) => {
                if answer.status.is_server_error() {
                    self.stats.server_errors.fetch_add(1, Ordering::Relaxed);
                    self.stats.fail(format!(
                        "{method} {path} on replica {replica}: {} {}",
                        answer.status,
                        String::from_utf8_lossy(&answer.body)
                    ));
                }
                Some(answer)
            }
            Err(e) => {
                self.stats
                    .fail(format!("{method} {path} on replica {replica}: {e}"));
                None
            }
        }
    }

    /// Checks that `answer` has status `expected`; records a failure otherwise.
    fn expect(&self, what: &str, answer: &Answer, expected: &[u16]) -> bool {
        if expected.contains(&answer.status.as_u16()) {
            return true;
        }
        // 5xx are already recorded by `send`.
        if !answer.status.is_server_error() {
            self.stats.fail(format!(
                "{what}: {} {}",
                answer.status,
                String::from_utf8_lossy(&answer.body)
            ));
        }
        false
    }

    /// POSTs `body` with idempotency key `key` to the next replica, then, when `retry`, once more
    /// with the same key to the replica after it, which must replay the first answer.
    async fn post_once(
        &self,
        what: &str,
        path: &str,
        token: &str,
        key: &str,
        body: &Value,
        retry: bool,
    ) -> Option<Answer> {
        let replica = self.pick();
        let first = self
            .send(
                replica,
                reqwest::Method::POST,
                path,
                token,
                Some(key),
                Some(body),
            )
            .await?;
        if retry && first.status.is_success() {
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            let other = (replica + 1) % self.replicas.len();
            let again = self
                .send(
                    other,
                    reqwest::Method::POST,
                    path,
                    token,
                    Some(key),
                    Some(body),
                )
                .await;
            if let Some(again) = again {
                let replayed = again
                    .headers
                    .get("idempotent-replayed")
                    .is_some_and(|v| v == "true");
                if !replayed || again.status != first.status || again.body != first.body {
                    self.stats
                        .duplicates_executed
                        .fetch_add(1, Ordering::Relaxed);
                    self.stats.fail(format!(
                        "{what}: the retry of {key} was not a replay (replayed: {replayed}, {} {} \
                         then {} {})",
                        first.status,
                        String::from_utf8_lossy(&first.body),
                        again.status,
                        String::from_utf8_lossy(&again.body)
                    ));
                }
            }
        }
        Some(first)
    }

    /// One iteration of mixed load (number `n` of the run).
    async fn iteration(&self, token: &str, n: u64) {
        let run = &self.run;
        self.push_lead(token, n).await;
        let order_no = format!("SOAK-{run}-{n}");
        if self.sync_order(token, n, &order_no, 1).await {
            self.sync_order(token, n, &order_no, 2).await;
        }
        let replica = self.pick();
        let path = format!("/api/mobile/orders/{order_no}/status");
        if let Some(a) = self
            .send(replica, reqwest::Method::GET, &path, token, None, None)
            .await
        {
            self.expect("order status", &a, &[200]);
        }
        let replica = self.pick();
        let path = format!("/api/mobile/showroom/items?page={}&pageSize=10", n % 3 + 1);
        if let Some(a) = self
            .send(replica, reqwest::Method::GET, &path, token, None, None)
            .await
        {
            self.expect("showroom", &a, &[200]);
        }
        self.stats.reads.fetch_add(2, Ordering::Relaxed);
        if n % EXPORT_EVERY == 0 {
            let replica = self.pick();
            let path = "/api/mobile/reports/orders/export";
            if let Some(a) = self
                .send(replica, reqwest::Method::GET, path, token, None, None)
                .await
                && self.expect("export", &a, &[200])
            {
                if a.body.is_empty() {
                    self.stats.fail("export: empty body".to_owned());
                }
                self.stats.exports.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    async fn push_lead(&self, token: &str, n: u64) {
        let run = &self.run;
        let body = json!({
            "source": if n % 2 == 0 { "DOUYIN" } else { "XIAOHONGSHU" },
            "externalLeadId": format!("soak-{run}-{n}"),
            "name": "张三",
            "mobile": format!("138{:08}", n % 100_000_000),
            "city": "杭州市",
            "intent": "全屋定制",
            "submittedAt": "2026-11-26T10:00:00+08:00",
        });
        let key = format!("soak-{run}-lead-{n}");
        let answer = self
            .post_once(
                "lead push",
                "/api/mobile/leads/hook",
                token,
                &key,
                &body,
                n % 4 == 0,
            )
            .await;
        if let Some(a) = answer
            && self.expect("lead push", &a, &[201])
        {
            self.stats.leads.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Version 1 creates the order with its deposit (ORDER_CREATED + PAYMENT_RECEIVED); version
    /// 2 moves it to MEASURE_PENDING with a progress payment (ORDER_STATUS_CHANGED +
    /// PAYMENT_RECEIVED; the deposit, sent again, is not recorded twice). Returns whether the
    /// sync was applied as planned.
    async fn sync_order(&self, token: &str, n: u64, order_no: &str, version: u8) -> bool {
        let deposit = json!({"kind": "DEPOSIT", "method": "WECHAT_PAY", "amount": 200_000,
            "channelTransactionId": format!("{order_no}-dep"),
            "paidAt": "2026-11-26T10:05:00+08:00"});
        let (status, paid, payments) = if version == 1 {
            ("DEPOSIT_PAID", 200_000, vec![deposit])
        } else {
            let progress = json!({"kind": "PROGRESS", "method": "ALIPAY", "amount": 1_000_000,
                "channelTransactionId": format!("{order_no}-prog"),
                "paidAt": "2026-11-27T10:05:00+08:00"});
            ("MEASURE_PENDING", 1_200_000, vec![deposit, progress])
        };
        let body = json!({
            "externalOrderNo": order_no,
            "status": status,
            "paymentStatus": if version == 1 { "DEPOSIT_PAID" } else { "PARTIALLY_PAID" },
            "amounts": {"total": 1_990_000, "deposit": 200_000, "paid": paid, "currency": "CNY"},
            "customer": {"name": "李四", "mobile": format!("139{:08}", n % 100_000_000)},
            "version": version,
            "payments": payments,
        });
        let key = format!("soak-{}-order-{n}-v{version}", self.run);
        let retry = n % 3 == u64::from(version) - 1;
        let what = if version == 1 {
            "order create"
        } else {
            "order update"
        };
        let Some(a) = self
            .post_once(what, "/api/mobile/orders/sync", token, &key, &body, retry)
            .await
        else {
            return false;
        };
        if !self.expect(what, &a, &[200, 201]) {
            return false;
        }
        let v: Value = serde_json::from_slice(&a.body).unwrap_or(Value::Null);
        let as_planned = v["applied"] == json!(true)
            && v["created"] == json!(version == 1)
            && v["paymentsRecorded"] == json!(1)
            && v["status"] == json!(status);
        if !as_planned {
            self.stats
                .fail(format!("{what} {order_no}: not applied as planned: {v}"));
            return false;
        }
        // Two events per applied sync, for every subscription.
        self.stats.expected_events.fetch_add(2, Ordering::Relaxed);
        if version == 1 {
            self.stats.orders_created.fetch_add(1, Ordering::Relaxed);
        } else {
            self.stats.orders_updated.fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    async fn token(&self, replica: usize, c: &Credentials) -> Result<String, String> {
        let url = format!("{}/api/oauth/token", self.replicas[replica].base);
        let res = self
            .http
            .post(&url)
            .json(&json!({"grant_type": "client_credentials",
                "client_id": c.id, "client_secret": c.secret}))
            .send()
            .await
            .map_err(|e| format!("token: {e}"))?;
        let status = res.status();
        let v: Value = res.json().await.map_err(|e| format!("token: {e}"))?;
        v["access_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("token: {status} {v}"))
    }
}

/// What one receiver saw.
#[derive(Debug)]
struct Receiver {
    verifier: Verifier,
    /// Distinct event ids.
    ids: Mutex<HashSet<String>>,
    /// What each event is about, to see one change emitted twice under two ids.
    changes: Mutex<HashSet<String>>,
    redeliveries: AtomicU64,
    duplicates_executed: AtomicU64,
    bad_signatures: AtomicU64,
}

impl Receiver {
    fn new(verifier: Verifier) -> Self {
        Self {
            verifier,
            ids: Mutex::default(),
            changes: Mutex::default(),
            redeliveries: AtomicU64::new(0),
            duplicates_executed: AtomicU64::new(0),
            bad_signatures: AtomicU64::new(0),
        }
    }

    fn received(&self) -> u64 {
        self.ids.lock().unwrap_or_else(|e| e.into_inner()).len() as u64
    }
}

/// The change an event reports, the same for every emission of it.
fn change_of(event: &EventData) -> String {
    match event {
        EventData::OrderCreated(o) => format!("created {}", o.external_order_no),
        EventData::OrderStatusChanged(c) => {
            format!("status {} v{}", c.external_order_no, c.version)
        }
        EventData::PaymentReceived(p) => {
            format!("payment {} {}", p.method, p.channel_transaction_id)
        }
    }
}

async fn receive(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let event = match r.verifier.verify(&headers, &body) {
        Ok(event) => event,
        Err(e) => {
            r.bad_signatures.fetch_add(1, Ordering::Relaxed);
            eprintln!("soak: refused a delivery: {e}");
            return StatusCode::UNAUTHORIZED;
        }
    };
    let new_id = r
        .ids
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(event.id.clone());
    if !new_id {
        r.redeliveries.fetch_add(1, Ordering::Relaxed);
        return StatusCode::NO_CONTENT;
    }
    let new_change = r
        .changes
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(change_of(&event.payload));
    if !new_change {
        r.duplicates_executed.fetch_add(1, Ordering::Relaxed);
        eprintln!(
            "soak: event {} repeats a change already received: {}",
            event.id,
            change_of(&event.payload)
        );
    }
    StatusCode::NO_CONTENT
}

/// Binds a receiver on 127.0.0.1:0, subscribes it, then serves it.
async fn subscribe(driver: &Driver, token: &str, i: usize) -> Result<Arc<Receiver>, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("receiver: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("receiver: {e}"))?;
    let body = json!({
        "url": format!("http://{addr}/hook/{i}"),
        "events": ["ORDER_CREATED", "ORDER_STATUS_CHANGED", "PAYMENT_RECEIVED"],
    });
    let key = format!("soak-{}-subscribe-{i}", driver.run);
    let replica = driver.pick();
    let a = driver
        .send(
            replica,
            reqwest::Method::POST,
            "/api/mobile/webhooks",
            token,
            Some(&key),
            Some(&body),
        )
        .await
        .ok_or("subscription: no answer")?;
    let v: Value = serde_json::from_slice(&a.body).unwrap_or(Value::Null);
    if !a.status.is_success() {
        return Err(format!("subscription: {} {v}", a.status));
    }
    let secret = v["secret"]
        .as_str()
        .ok_or_else(|| format!("subscription: no secret in {v}"))?;
    let secret = WebhookSecret::parse(secret).map_err(|e| format!("subscription secret: {e}"))?;
    let receiver = Arc::new(Receiver::new(Verifier::new(secret)));
    let app = Router::new()
        .route(&format!("/hook/{i}"), post(receive))
        .with_state(Arc::clone(&receiver));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("soak: receiver {i} stopped: {e}");
        }
    });
    Ok(receiver)
}

/// The quota client's record: when each request was sent and answered, and whether it was let
/// through.
#[derive(Debug, Default)]
struct QuotaLog {
    /// `(sent, answered, allowed)` relative to the start, in order of sending.
    requests: Vec<(Duration, Duration, bool)>,
    per_replica_allowed: HashMap<usize, u64>,
}

/// Whether the quota client got exactly what one GCRA bucket allows.
///
/// The limiter runs the GCRA in Redis on Redis's clock (`TIME`), one bucket per client for
/// every replica: emission interval `I` = period / count, tolerance `burst * I`; a request at
/// time `t` passes when `tat + I - t <= burst * I`, and then `tat += I` (`tat` starts at the
/// first request's time `T0`). Driven above the quota without a pause as long as `burst * I`,
/// the bucket never refills past its limit, so the number of requests let through up to the
/// last request at `T1` is `K` with `burst - 1 + (T1 - T0) / I < K <= burst + (T1 - T0) / I`.
/// `T0` and `T1` are not seen here, only that each check ran between the sending and the
/// answer of its request; so the bounds use the shortest and longest `T1 - T0` those allow,
/// `lo = burst + floor(min / I)` and `hi = burst + floor(max / I)`, widened by one on each side
/// for the integer microseconds of the script. No other tolerance is needed: one clock, one
/// bucket, and every request is counted.
#[derive(Debug)]
struct QuotaCheck {
    allowed: u64,
    limited: u64,
    lo: u64,
    hi: u64,
    longest_gap: Duration,
    starved: bool,
}

impl QuotaCheck {
    fn new(quota: Quota, log: &QuotaLog) -> Option<Self> {
        let first = log.requests.first()?;
        let last = log.requests.last()?;
        let interval = Duration::from_nanos(quota.emission_interval_nanos());
        let burst = u64::from(quota.burst_size());
        let min = last.0.saturating_sub(first.1);
        let max = last.1.saturating_sub(first.0);
        let per = |d: Duration| (d.as_nanos() / interval.as_nanos()) as u64;
        let allowed = log.requests.iter().filter(|r| r.2).count() as u64;
        let longest_gap = log
            .requests
            .windows(2)
            .map(|w| w[1].0.saturating_sub(w[0].0))
            .max()
            .unwrap_or_default();
        Some(Self {
            allowed,
            limited: log.requests.len() as u64 - allowed,
            lo: (burst + per(min)).saturating_sub(1),
            hi: burst + per(max) + 1,
            longest_gap,
            // A pause as long as the bucket's tolerance lets it refill: the bound above
            // would not hold, so the check cannot say yes.
            starved: longest_gap >= interval * quota.burst_size(),
        })
    }

    fn exact(&self) -> bool {
        !self.starved && self.limited > 0 && (self.lo..=self.hi).contains(&self.allowed)
    }
}

/// Drives the quota client for `duration` at [`QUOTA_OVERDRIVE`] times its rate.
async fn drive_quota(
    driver: Arc<Driver>,
    token: String,
    quota: Quota,
    start: Instant,
    end: Instant,
) -> QuotaLog {
    let interval = Duration::from_nanos(quota.emission_interval_nanos()) / QUOTA_OVERDRIVE;
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut log = QuotaLog::default();
    let path = "/api/mobile/showroom/items?page=1&pageSize=1";
    while Instant::now() < end {
        ticks.tick().await;
        let replica = driver.pick();
        let sent = start.elapsed();
        let Some(a) = driver
            .send(replica, reqwest::Method::GET, path, &token, None, None)
            .await
        else {
            continue;
        };
        let answered = start.elapsed();
        let allowed = match a.status.as_u16() {
            200 => true,
            429 => false,
            _ => {
                driver.expect("quota client", &a, &[200, 429]);
                continue;
            }
        };
        if allowed {
            *log.per_replica_allowed.entry(replica).or_default() += 1;
        }
        log.requests.push((sent, answered, allowed));
    }
    log
}

/// `VmRSS` of a process, in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn rss_all(replicas: &[Replica]) -> Vec<Option<u64>> {
    replicas.iter().map(|r| rss_kib(r.pid)).collect()
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("soak: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<bool, String> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())?;
    let driver = Arc::new(Driver {
        http,
        replicas: args.replicas.clone(),
        next: AtomicUsize::new(0),
        stats: Stats::default(),
        run: args.run_id.clone(),
    });
    let token = driver.token(0, &args.client).await?;
    let quota_token = driver
        .token(1 % args.replicas.len(), &args.quota_client)
        .await?;
    let mut receivers = Vec::new();
    for i in 0..SUBSCRIPTIONS {
        receivers.push(subscribe(&driver, &token, i).await?);
    }
    eprintln!(
        "soak: {} replicas, {} workers, {} s of load, {SUBSCRIPTIONS} webhook receivers, quota \
         client at {QUOTA_OVERDRIVE}x {}",
        args.replicas.len(),
        args.workers,
        args.duration,
        args.quota
    );

    let start = Instant::now();
    let end = start + Duration::from_secs(args.duration);
    let counter = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..args.workers {
        let (driver, token, counter) = (Arc::clone(&driver), token.clone(), Arc::clone(&counter));
        workers.push(tokio::spawn(async move {
            while Instant::now() < end {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                driver.iteration(&token, n).await;
            }
        }));
    }
    let quota_task = tokio::spawn(drive_quota(
        Arc::clone(&driver),
        quota_token,
        args.quota,
        start,
        end,
    ));
    let progress = {
        let driver = Arc::clone(&driver);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                let s = &driver.stats;
                eprintln!(
                    "soak: {:>4.0} s  requests={} leads={} orders={}/{} exports={} failures={}",
                    start.elapsed().as_secs_f64(),
                    s.requests.load(Ordering::Relaxed),
                    s.leads.load(Ordering::Relaxed),
                    s.orders_created.load(Ordering::Relaxed),
                    s.orders_updated.load(Ordering::Relaxed),
                    s.exports.load(Ordering::Relaxed),
                    s.failures.load(Ordering::Relaxed),
                );
            }
        })
    };
    let warmup = Duration::from_secs(args.warmup.min(args.duration));
    tokio::time::sleep_until((start + warmup).into()).await;
    let rss_warm = rss_all(&args.replicas);
    for w in workers {
        w.await.map_err(|e| format!("worker: {e}"))?;
    }
    let quota_log = quota_task.await.map_err(|e| format!("quota task: {e}"))?;
    progress.abort();
    let load_secs = start.elapsed().as_secs_f64();

    // Drain: every subscription must get every event.
    let stats = &driver.stats;
    let expected = stats.expected_events.load(Ordering::Relaxed) * SUBSCRIPTIONS as u64;
    let received = || receivers.iter().map(|r| r.received()).sum::<u64>();
    let drain_start = Instant::now();
    let drain_end = drain_start + Duration::from_secs(args.drain_timeout);
    while received() < expected && Instant::now() < drain_end {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A little longer, so a late extra event (or redelivery) is seen too.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let received = received();
    eprintln!(
        "soak: {received} of {expected} events received {:.1} s after the load{}",
        drain_start.elapsed().as_secs_f64(),
        if received < expected {
            " (drain timeout)"
        } else {
            ""
        }
    );
    let rss_end = rss_all(&args.replicas);

    // RSS growth, summed over the replicas.
    let mut growth_kib: i64 = 0;
    for (i, (w, e)) in rss_warm.iter().zip(&rss_end).enumerate() {
        match (w, e) {
            (Some(w), Some(e)) => {
                eprintln!(
                    "soak: replica {i} (pid {}) VmRSS {:.1} MiB after warm-up, {:.1} MiB at the end",
                    args.replicas[i].pid,
                    *w as f64 / 1024.0,
                    *e as f64 / 1024.0
                );
                growth_kib += *e as i64 - *w as i64;
            }
            _ => stats.fail(format!(
                "replica {i} (pid {}) has no /proc status: did it exit?",
                args.replicas[i].pid
            )),
        }
    }

    let quota = QuotaCheck::new(args.quota, &quota_log);
    let quota_exact = quota.as_ref().is_some_and(QuotaCheck::exact);
    match &quota {
        Some(q) => eprintln!(
            "soak: quota client {}: {} allowed (bounds {}..={}), {} limited, allowed per replica \
             {:?}, longest pause {} ms",
            args.quota,
            q.allowed,
            q.lo,
            q.hi,
            q.limited,
            quota_log.per_replica_allowed,
            q.longest_gap.as_millis()
        ),
        None => eprintln!("soak: the quota client got no answer"),
    }

    let redeliveries: u64 = receivers
        .iter()
        .map(|r| r.redeliveries.load(Ordering::Relaxed))
        .sum();
    let bad_signatures: u64 = receivers
        .iter()
        .map(|r| r.bad_signatures.load(Ordering::Relaxed))
        .sum();
    let duplicates = stats.duplicates_executed.load(Ordering::Relaxed)
        + receivers
            .iter()
            .map(|r| r.duplicates_executed.load(Ordering::Relaxed))
            .sum::<u64>();
    let requests = stats.requests.load(Ordering::Relaxed);
    let server_errors = stats.server_errors.load(Ordering::Relaxed);
    let failures = stats.failures.load(Ordering::Relaxed);
    eprintln!(
        "soak: {requests} requests in {load_secs:.1} s ({:.0}/s): {} leads, {} orders created \
         and {} updated, {} reads, {} exports, {} retries with the same X-Request-Id; {} \
         redeliveries of an event id, {bad_signatures} deliveries with a bad signature",
        requests as f64 / load_secs,
        stats.leads.load(Ordering::Relaxed),
        stats.orders_created.load(Ordering::Relaxed),
        stats.orders_updated.load(Ordering::Relaxed),
        stats.reads.load(Ordering::Relaxed),
        stats.exports.load(Ordering::Relaxed),
        stats.retries.load(Ordering::Relaxed),
        redeliveries
    );
    let problems = stats.problems.lock().unwrap_or_else(|e| e.into_inner());
    if failures > 0 {
        eprintln!("soak: {failures} failures, the first ones:");
        for p in problems.iter() {
            eprintln!("  {p}");
        }
    }
    println!(
        "soak: requests={requests} 5xx={server_errors} quota_exact={} events={received}/{expected} \
         duplicates_executed={duplicates} rss_growth_mib={:+.1}",
        if quota_exact { "yes" } else { "no" },
        growth_kib as f64 / 1024.0
    );
    Ok(server_errors == 0
        && quota_exact
        && received == expected
        && duplicates == 0
        && failures == 0
        && bad_signatures == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Redis script's GCRA, `buckets` of them taking the requests in turn (one bucket: the
    /// shared Redis; three: replicas each limiting on their own), requests every `every`.
    fn simulate(quota: Quota, buckets: usize, every: Duration, total: Duration) -> QuotaLog {
        let emission = Duration::from_nanos(quota.emission_interval_nanos());
        let tolerance = emission * quota.burst_size();
        let mut tats = vec![Duration::ZERO; buckets];
        let mut log = QuotaLog::default();
        let mut now = Duration::ZERO;
        let mut i = 0;
        while now <= total {
            let tat = &mut tats[i % buckets];
            let new_tat = (*tat).max(now) + emission;
            let allowed = new_tat - now <= tolerance;
            if allowed {
                *tat = new_tat;
            }
            // Answered 2 ms after sending: the check ran somewhere in between.
            log.requests
                .push((now, now + Duration::from_millis(2), allowed));
            now += every;
            i += 1;
        }
        log
    }

    fn quota() -> Quota {
        "600/min;burst=20".parse().unwrap()
    }

    #[test]
    fn one_shared_bucket_is_exact() {
        for secs in [10, 60] {
            let log = simulate(
                quota(),
                1,
                Duration::from_millis(33),
                Duration::from_secs(secs),
            );
            let check = QuotaCheck::new(quota(), &log).unwrap();
            assert!(check.exact(), "{secs} s: {check:?}");
            // burst + floor((T1 - T0) / I), T0 = 0.
            let last = log.requests.last().unwrap().0;
            let expected = 20 + (last.as_millis() / 100) as u64;
            assert_eq!(check.allowed, expected, "{check:?}");
        }
    }

    #[test]
    fn replicas_limiting_each_on_their_own_are_not_exact() {
        let log = simulate(
            quota(),
            3,
            Duration::from_millis(33),
            Duration::from_secs(10),
        );
        let check = QuotaCheck::new(quota(), &log).unwrap();
        assert!(!check.exact(), "{check:?}");
        assert!(check.allowed > check.hi, "{check:?}");
    }

    #[test]
    fn one_request_too_many_or_too_few_is_not_exact() {
        let mut log = simulate(
            quota(),
            1,
            Duration::from_millis(33),
            Duration::from_secs(10),
        );
        let check = QuotaCheck::new(quota(), &log).unwrap();
        // One more than the upper slack let through.
        let slack_up = (check.hi - check.allowed) as usize;
        for r in log.requests.iter_mut().filter(|r| !r.2).take(slack_up + 1) {
            r.2 = true;
        }
        assert!(!QuotaCheck::new(quota(), &log).unwrap().exact());

        let mut log = simulate(
            quota(),
            1,
            Duration::from_millis(33),
            Duration::from_secs(10),
        );
        // One more than the lower slack refused.
        let slack_down = (check.allowed - check.lo) as usize;
        for r in log.requests.iter_mut().filter(|r| r.2).take(slack_down + 1) {
            r.2 = false;
        }
        assert!(!QuotaCheck::new(quota(), &log).unwrap().exact());
    }

    #[test]
    fn a_client_that_never_went_over_its_quota_proves_nothing() {
        // Under the rate: every request passes, nothing was limited.
        let log = simulate(
            quota(),
            1,
            Duration::from_millis(150),
            Duration::from_secs(10),
        );
        assert!(!QuotaCheck::new(quota(), &log).unwrap().exact());
        // A pause as long as the bucket's tolerance (20 x 100 ms) lets it refill.
        let mut log = simulate(
            quota(),
            1,
            Duration::from_millis(33),
            Duration::from_secs(5),
        );
        let last = log.requests.last().unwrap().0;
        log.requests.push((
            last + Duration::from_secs(3),
            last + Duration::from_secs(3),
            true,
        ));
        assert!(!QuotaCheck::new(quota(), &log).unwrap().exact());
    }

    #[test]
    fn replicas_and_credentials_parse() {
        let r = parse_replica("127.0.0.1:8080@42").unwrap();
        assert_eq!((r.base.as_str(), r.pid), ("http://127.0.0.1:8080", 42));
        assert!(parse_replica("127.0.0.1:8080").is_err());
        assert!(parse_replica("localhost:8080@42").is_err());
        assert!(parse_replica("127.0.0.1:8080@x").is_err());
        let c: Credentials = "l2c_abc:s3cr:et".parse().unwrap();
        assert_eq!((c.id.as_str(), c.secret.as_str()), ("l2c_abc", "s3cr:et"));
        assert!("no-colon".parse::<Credentials>().is_err());
    }
}
