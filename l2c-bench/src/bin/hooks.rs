//! Webhook dispatch measurements of `scripts/bench-work.sh`.
//!
//! One process holds a keep-alive receiver (signatures verified, receipt times recorded) and
//! drives two measurements against running `l2c-server` replicas (started with
//! `--allow-private-webhooks`, so a loopback receiver is allowed):
//!
//! - **throughput**: `--events` `ORDER_CREATED` events are written to the server's outbox with
//!   the server's own statement ([`enqueue_in`], one transaction), and the replicas' dispatchers
//!   deliver them (signed, each attempt recorded). Events per second = deliveries between the
//!   first and the last receipt over that time. The baseline is a bare loop (a child process of
//!   this binary, `send`, pinned with `taskset` to `--base-cpu`, the server's core) that signs
//!   the same bodies with [`sign_headers`] and POSTs them with reqwest at the dispatcher's
//!   concurrency (its batch size, 16), measured the same way at the receiver. Rounds alternate
//!   the two; the ratio printed is the median of per-round ratios.
//!   With `--recorded-database-url` a third side runs in each round, the **recorded loop**: the
//!   bare loop once more, on the same core, but reading its bodies from an outbox of its own
//!   (a database the script made, filled the same way) and recording every attempt with the
//!   server's own store calls: [`WebhookStore::claim`] under the dispatcher's policy (at most
//!   [`CLAIM_AHEAD`] times the concurrency held, in flight or waiting; a claim for the
//!   difference once a sender's worth is free), the same signing and `User-Agent`, and
//!   [`WebhookStore::finish_all`] on what finished meanwhile ([`record_writes_in_flight`]
//!   writes at once, as the dispatcher does). No
//!   leases to watch, no retry schedule, no metrics, no log: the physical limit of delivering
//!   *and* recording on this machine, printed as `recorded_ratio` and
//!   `base_recorded_events_per_s`. It runs third in every round, after the server and the bare
//!   loop.
//! - **latency**: order syncs (each one `ORDER_CREATED`) at a steady `--rate` per second for
//!   `--seconds`, spread over the replicas; commit-to-receipt latency is measured from sending
//!   the sync request to the receiver getting the event (an upper bound: it includes the sync's
//!   own time).
//!
//! It prints `work=dispatch …` and `work=dispatch-latency …` lines on stdout.
//!
//! [`WebhookStore::claim`]: l2c_server::store::outbox::WebhookStore::claim
//! [`WebhookStore::finish_all`]: l2c_server::store::outbox::WebhookStore::finish_all

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use clap::{Parser, Subcommand};
use l2c_core::ClientId;
use l2c_core::api::events::EventType;
use l2c_core::api::events::{EventData, OrderAmounts, OrderCreated, WebhookEvent};
use l2c_core::api::status::{OrderStatus, PaymentStatus};
use l2c_core::webhook::{Verifier, WebhookSecret, sign_headers};
use l2c_server::config::webhooks::WebhookConfig;
use l2c_server::dispatch::{
    CLAIM_AHEAD, USER_AGENT, record_writes_in_flight, recorded_request_headers,
};
use l2c_server::store::Db;
use l2c_server::store::outbox::{
    AttemptRecord, Job, MAX_FINISH_BATCH, NextStep, Outcome, enqueue_in,
};
use l2c_server::store::sql::{begin_write, millis_to_cst};
use serde_json::{Value, json};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The dispatcher's concurrency: its default batch size ([`WebhookConfig::batch_size`]).
fn dispatch_concurrency() -> usize {
    WebhookConfig::default().batch_size as usize
}

#[derive(Debug, Parser)]
#[command(
    name = "l2c-hooks",
    about = "Webhook dispatch measurements of scripts/bench-work.sh"
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Throughput against the bare loop, and latency at a steady rate.
    Run(Run),
    /// The bare loop: sign and POST `--events` bodies to `--url` at `--concurrency`; with
    /// `--database-url`, the recorded loop (bodies from that outbox, each attempt recorded).
    Send(SendArgs),
}

#[derive(Debug, clap::Args)]
struct Run {
    /// A replica's base URL (repeat for several sharing one database).
    #[arg(long = "server", required = true)]
    servers: Vec<String>,
    /// The replicas' database (the outbox is filled with the server's own statement).
    #[arg(long)]
    database_url: String,
    /// Client credentials.
    #[arg(long)]
    client_id: String,
    #[arg(long)]
    client_secret: String,
    /// Events per throughput round (0 skips the throughput).
    #[arg(long, default_value_t = 5000)]
    events: usize,
    /// Throughput rounds (server and bare loop alternate).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Core of the bare loop (the server's core).
    #[arg(long, default_value = "0")]
    base_cpu: String,
    /// Order syncs per second of the latency run (0 skips it).
    #[arg(long, default_value_t = 200)]
    rate: u32,
    /// Seconds of the latency run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Labels of the printed lines.
    #[arg(long, default_value = "postgres")]
    db_label: String,
    /// The recorded loop's own database (migrated, holding `--recorded-client-id`); omitted:
    /// no recorded loop.
    #[arg(long, requires = "recorded_client_id")]
    recorded_database_url: Option<String>,
    /// The client of the recorded loop's outbox.
    #[arg(long)]
    recorded_client_id: Option<String>,
}

#[derive(Debug, clap::Args)]
struct SendArgs {
    #[arg(long)]
    url: String,
    #[arg(long)]
    secret: String,
    #[arg(long)]
    events: usize,
    #[arg(long, default_value_t = dispatch_concurrency())]
    concurrency: usize,
    /// Record as well: take the bodies from this database's outbox and record each attempt
    /// there (the recorded loop).
    #[arg(long)]
    database_url: Option<String>,
}

/// What the receiver saw since the last reset.
#[derive(Default)]
struct Seen {
    first: Option<Instant>,
    last: Option<Instant>,
    /// Receipt time by external order number.
    by_order: HashMap<String, Instant>,
}

struct Receiver {
    verifier: Verifier,
    count: AtomicU64,
    bad: AtomicU64,
    seen: Mutex<Seen>,
}

impl Receiver {
    fn reset(&self) {
        self.count.store(0, Ordering::SeqCst);
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Seen::default();
    }
}

async fn receive(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let now = Instant::now();
    let Ok(event) = r.verifier.verify(&headers, &body) else {
        r.bad.fetch_add(1, Ordering::Relaxed);
        return StatusCode::UNAUTHORIZED;
    };
    {
        let mut seen = r.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.first.get_or_insert(now);
        seen.last = Some(now);
        if let EventData::OrderCreated(o) = &event.payload {
            seen.by_order
                .entry(o.external_order_no.clone())
                .or_insert(now);
        }
    }
    r.count.fetch_add(1, Ordering::SeqCst);
    StatusCode::NO_CONTENT
}

/// The event of order `i` of a run, as the server would write it.
fn event_data(run: &str, i: usize) -> EventData {
    EventData::OrderCreated(OrderCreated::new(
        format!("ord_{run}{i:08}"),
        format!("hook-{run}-{i}"),
        OrderStatus::DepositPaid,
        PaymentStatus::DepositPaid,
        OrderAmounts::cny(3_980_000, 500_000, 500_000),
        "cus_0000000000000000000000000000000",
        1,
    ))
}

fn now_millis() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(0)
}

/// Runs this binary with `args` pinned to `cpu` (the bare or the recorded loop), killed if it
/// has not finished in five minutes.
async fn child(cpu: &str, args: &[&str], name: &str) -> Result<(), BoxError> {
    let mut cmd = tokio::process::Command::new("taskset");
    cmd.args(["-c", cpu])
        .arg(std::env::current_exe()?)
        .args(args)
        .kill_on_drop(true);
    let status = tokio::time::timeout(Duration::from_secs(300), cmd.status())
        .await
        .map_err(|_| format!("the {name} loop did not finish in 5 minutes"))??;
    if !status.success() {
        return Err(format!("the {name} loop failed: {status}").into());
    }
    Ok(())
}

/// Waits until the receiver counted `n` (or `limit` passed); returns events per second between
/// the first and the last receipt.
async fn drained(r: &Receiver, n: usize, limit: Duration) -> Result<f64, BoxError> {
    let until = Instant::now() + limit;
    while (r.count.load(Ordering::SeqCst) as usize) < n {
        if Instant::now() > until {
            return Err(format!(
                "only {} of {n} events received in {limit:?}",
                r.count.load(Ordering::SeqCst)
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let seen = r.seen.lock().unwrap_or_else(|e| e.into_inner());
    let (Some(a), Some(b)) = (seen.first, seen.last) else {
        return Err("nothing received".into());
    };
    Ok((n.saturating_sub(1)) as f64 / (b - a).as_secs_f64().max(1e-9))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn run(a: Run) -> Result<(), BoxError> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let base = a.servers[0].trim_end_matches('/').to_owned();
    let token: Value = http
        .post(format!("{base}/api/oauth/token"))
        .json(
            &json!({"client_id": a.client_id, "client_secret": a.client_secret,
            "grant_type": "client_credentials"}),
        )
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let token = token["access_token"]
        .as_str()
        .ok_or("no access_token")?
        .to_owned();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr: SocketAddr = listener.local_addr()?;
    let hook_url = format!("http://{addr}/hook");
    let sub: Value = http
        .post(format!("{base}/api/mobile/webhooks"))
        .bearer_auth(&token)
        .header("X-Request-Id", format!("hooks-subscribe-{}", now_millis()))
        .json(&json!({"url": hook_url, "events": ["ORDER_CREATED"]}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let secret_text = sub["secret"].as_str().ok_or("no secret")?.to_owned();
    let secret = WebhookSecret::parse(&secret_text)?;
    let receiver = Arc::new(Receiver {
        verifier: Verifier::new(secret),
        count: AtomicU64::new(0),
        bad: AtomicU64::new(0),
        seen: Mutex::default(),
    });
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(Arc::clone(&receiver));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("l2c-hooks: receiver stopped: {e}");
        }
    });
    let replicas = a.servers.len();
    let client = ClientId::new(a.client_id.as_str());
    // The recorded loop's outbox: a database of its own (the servers would drain a shared one),
    // subscribed to the same receiver with the same secret.
    let recorded = match (&a.recorded_database_url, &a.recorded_client_id) {
        (Some(url), Some(id)) if a.events > 0 => {
            let db = Db::connect(url).await?;
            let rc = ClientId::new(id.as_str());
            db.webhooks()
                .create(
                    &rc,
                    &hook_url,
                    &[EventType::OrderCreated],
                    &secret_text,
                    now_millis(),
                    10,
                )
                .await?
                .ok_or("the recorded loop's database refused its subscription")?;
            Some((db, rc, url.clone()))
        }
        _ => None,
    };

    if a.events > 0 {
        let db = Db::connect(&a.database_url).await?;
        let (mut server, mut bare, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        let (mut rec, mut rec_ratios) = (Vec::new(), Vec::new());
        for round in 0..a.rounds {
            let run_id = format!("r{}x{round}", now_millis() % 1_000_000);
            // Server: fill the outbox in one transaction; the dispatchers drain it.
            receiver.reset();
            let data: Vec<EventData> = (0..a.events).map(|i| event_data(&run_id, i)).collect();
            let mut tx = begin_write(&db).await?;
            let queued = enqueue_in(&mut tx, &client, &data, now_millis()).await?;
            tx.commit().await?;
            if queued as usize != a.events {
                return Err(format!("{queued} deliveries queued for {} events", a.events).into());
            }
            let s = drained(&receiver, a.events, Duration::from_secs(300)).await?;
            // The bare loop, on the server's core.
            receiver.reset();
            let send = ["send", "--url", &hook_url, "--secret", &secret_text];
            let events = a.events.to_string();
            child(
                &a.base_cpu,
                &[&send[..], &["--events", &events]].concat(),
                "bare",
            )
            .await?;
            let b = drained(&receiver, a.events, Duration::from_secs(10)).await?;
            // The recorded loop, on the server's core, on its own outbox.
            let r = match &recorded {
                Some((rdb, rclient, rurl)) => {
                    receiver.reset();
                    let mut tx = begin_write(rdb).await?;
                    let queued = enqueue_in(&mut tx, rclient, &data, now_millis()).await?;
                    tx.commit().await?;
                    if queued as usize != a.events {
                        return Err(format!(
                            "{queued} deliveries queued for {} events (recorded loop)",
                            a.events
                        )
                        .into());
                    }
                    let args = [&send[..], &["--events", &events, "--database-url", rurl]].concat();
                    child(&a.base_cpu, &args, "recorded").await?;
                    Some(drained(&receiver, a.events, Duration::from_secs(10)).await?)
                }
                None => None,
            };
            eprintln!(
                "round {}/{} dispatch {} replica(s): server {s:.0} events/s, bare loop {b:.0} events/s{}",
                round + 1,
                a.rounds,
                replicas,
                r.map(|r| format!(", recorded loop {r:.0} events/s"))
                    .unwrap_or_default()
            );
            server.push(s);
            bare.push(b);
            ratios.push(s / b);
            if let Some(r) = r {
                rec.push(r);
                rec_ratios.push(s / r);
            }
        }
        let recorded_part = if rec.is_empty() {
            String::new()
        } else {
            format!(
                " recorded_ratio={:.2} base_recorded_events_per_s={:.0}",
                median(rec_ratios),
                median(rec)
            )
        };
        println!(
            "work=dispatch db={} replicas={replicas} ratio={:.2} events_per_s={:.0} base_events_per_s={:.0}{recorded_part} events={} concurrency={}",
            a.db_label,
            median(ratios),
            median(server),
            median(bare),
            a.events,
            dispatch_concurrency()
        );
    }

    if a.rate > 0 {
        receiver.reset();
        let run_id = format!("l{}", now_millis() % 1_000_000_000);
        let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
        let failed = Arc::new(AtomicU64::new(0));
        let total = usize::try_from(u64::from(a.rate) * a.seconds)?;
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(a.rate)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut tasks = Vec::with_capacity(total);
        for i in 0..total {
            tick.tick().await;
            let url = format!(
                "{}/api/mobile/orders/sync",
                a.servers[i % replicas].trim_end_matches('/')
            );
            let (http, token, sent, failed) = (
                http.clone(),
                token.clone(),
                Arc::clone(&sent),
                Arc::clone(&failed),
            );
            let no = format!("lat-{run_id}-{i}");
            tasks.push(tokio::spawn(async move {
                let body = json!({"externalOrderNo": no, "status": "DEPOSIT_PAID",
                    "paymentStatus": "DEPOSIT_PAID",
                    "amounts": {"total": 3_980_000, "deposit": 500_000, "paid": 500_000, "currency": "CNY"},
                    "items": [{"name": "主卧衣柜", "quantity": 1, "unitPrice": 3_980_000}],
                    "customer": {"name": "王五", "mobile": format!("136{:08}", i % 100_000_000)},
                    "version": 1});
                sent.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(no.clone(), Instant::now());
                let ok = http
                    .post(&url)
                    .bearer_auth(&token)
                    .header("X-Request-Id", format!("{no}-req"))
                    .json(&body)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if !ok {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        for t in tasks {
            t.await?;
        }
        let want = total - failed.load(Ordering::Relaxed) as usize;
        let until = Instant::now() + Duration::from_secs(30);
        while (receiver.count.load(Ordering::SeqCst) as usize) < want && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let sent = sent.lock().unwrap_or_else(|e| e.into_inner());
        let seen = receiver.seen.lock().unwrap_or_else(|e| e.into_inner());
        let mut lat: Vec<f64> = seen
            .by_order
            .iter()
            .filter_map(|(no, got)| {
                sent.get(no)
                    .map(|s| got.saturating_duration_since(*s).as_secs_f64() * 1000.0)
            })
            .collect();
        lat.sort_by(f64::total_cmp);
        println!(
            "work=dispatch-latency db={} replicas={replicas} rate={} p50_ms={:.2} p99_ms={:.2} max_ms={:.2} sent={total} failed={} received={}",
            a.db_label,
            a.rate,
            percentile(&lat, 50.0),
            percentile(&lat, 99.0),
            lat.last().copied().unwrap_or(f64::NAN),
            failed.load(Ordering::Relaxed),
            lat.len()
        );
        if lat.len() < want {
            return Err(format!("only {} of {want} events received", lat.len()).into());
        }
    }
    let bad = receiver.bad.load(Ordering::Relaxed);
    if bad > 0 {
        return Err(format!("{bad} deliveries failed signature verification").into());
    }
    Ok(())
}

/// The recorded loop (see the module docs): claims from `db`'s outbox in batches, signs and
/// POSTs at `a.concurrency`, and records every attempt with [`WebhookStore::finish_all`] until
/// `a.events` are recorded.
///
/// [`WebhookStore::finish_all`]: l2c_server::store::outbox::WebhookStore::finish_all
async fn send_recorded(a: SendArgs, db: Db) -> Result<(), BoxError> {
    let secret = Arc::new(WebhookSecret::parse(&a.secret)?);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()?;
    let owner: Arc<str> = format!("bench-recorded-{}", std::process::id()).into();
    let deadline = Instant::now() + Duration::from_secs(120);
    // Claimed jobs wait here for a sender. With the senders' jobs in flight, at most
    // CLAIM_AHEAD times the concurrency are held; the claimer asks for the difference once a
    // sender's worth of room is free, as the dispatcher does.
    let concurrency = a.concurrency.max(1);
    let (job_tx, job_rx) = tokio::sync::mpsc::channel::<Job>((CLAIM_AHEAD - 1) * concurrency);
    let job_rx = Arc::new(tokio::sync::Mutex::new(job_rx));
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<Outcome>(MAX_FINISH_BATCH);
    let events = a.events;
    let claimer = {
        let (db, owner) = (db.clone(), Arc::clone(&owner));
        tokio::spawn(async move {
            let mut claimed = 0;
            while claimed < events {
                if Instant::now() > deadline {
                    return Err(format!("claimed {claimed} of {events} in time"));
                }
                // Room for a sender's worth (the permits are only a wait: this task alone sends).
                drop(
                    job_tx
                        .reserve_many(concurrency)
                        .await
                        .map_err(|_| "the senders stopped")?,
                );
                let now = now_millis();
                let want = (events - claimed).min(job_tx.capacity());
                let jobs = db
                    .webhooks()
                    .claim(&owner, now, now + 60_000, want as i64)
                    .await
                    .map_err(|e| e.to_string())?;
                if jobs.is_empty() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                claimed += jobs.len();
                for job in jobs {
                    job_tx.send(job).await.map_err(|_| "the senders stopped")?;
                }
            }
            Ok::<(), String>(())
        })
    };
    let mut senders = Vec::new();
    for _ in 0..concurrency {
        let (http, secret, url, job_rx, done_tx) = (
            http.clone(),
            Arc::clone(&secret),
            a.url.clone(),
            Arc::clone(&job_rx),
            done_tx.clone(),
        );
        senders.push(tokio::spawn(async move {
            loop {
                let Some(job) = job_rx.lock().await.recv().await else {
                    return Ok::<(), String>(());
                };
                let started_at = now_millis();
                let started = Instant::now();
                let ts = u64::try_from(started_at / 1000).unwrap_or(0);
                let headers = sign_headers(
                    &[&secret],
                    &job.event_id,
                    job.event_type,
                    ts,
                    job.payload.as_bytes(),
                )
                .map_err(|e| e.to_string())?;
                // The request headers go into the attempt's record, as the dispatcher keeps them.
                let sent = recorded_request_headers(&headers);
                let mut req = http.post(&url);
                for (name, value) in headers {
                    req = req.header(name, value);
                }
                let resp = req
                    .header("content-type", "application/json")
                    .header("user-agent", USER_AGENT)
                    .body(job.payload.clone())
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let status = resp.status().as_u16();
                let body = resp.text().await.map_err(|e| e.to_string())?;
                if !(200..300).contains(&status) {
                    return Err(format!("receiver answered {status}"));
                }
                let latency = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
                let record = AttemptRecord::new(started_at, Some(status), latency, None)
                    .with_exchange((!body.is_empty()).then_some(body), sent);
                let outcome = Outcome::new(job, Some(record), NextStep::Succeeded, now_millis());
                done_tx
                    .send(outcome)
                    .await
                    .map_err(|_| "the recorder stopped")?;
            }
        }));
    }
    // Only the senders hold the jobs' receiver and the outcomes' sender now: once they are
    // gone (done, or all failed) the claimer's sends fail and the recorder's receive ends.
    drop(job_rx);
    drop(done_tx);
    // What finished meanwhile is written as one batch, as many at once as the dispatcher writes.
    let parallel = record_writes_in_flight(db.backend());
    let mut writing = tokio::task::JoinSet::new();
    let mut batch = Vec::with_capacity(MAX_FINISH_BATCH);
    let mut recorded = 0;
    loop {
        if writing.len() >= parallel {
            if let Some(joined) = writing.join_next().await {
                recorded += joined??;
            }
            continue;
        }
        tokio::select! {
            n = done_rx.recv_many(&mut batch, MAX_FINISH_BATCH) => {
                if n == 0 {
                    break;
                }
                let (db, owner, batch) = (db.clone(), Arc::clone(&owner), std::mem::take(&mut batch));
                writing.spawn(async move {
                    let outcomes: Vec<&Outcome> = batch.iter().collect();
                    db.webhooks().finish_all(&owner, &outcomes).await.map(|ids| ids.len())
                });
            }
            Some(joined) = writing.join_next(), if !writing.is_empty() => recorded += joined??,
        }
    }
    while let Some(joined) = writing.join_next().await {
        recorded += joined??;
    }
    // A sender's error first: the claimer then only says the senders stopped.
    for s in senders {
        s.await??;
    }
    claimer.await??;
    if recorded != events {
        return Err(format!("recorded {recorded} of {events} attempts").into());
    }
    Ok(())
}

async fn send(a: SendArgs) -> Result<(), BoxError> {
    if let Some(url) = &a.database_url {
        let db = Db::connect(url).await?;
        return send_recorded(a, db).await;
    }
    let secret = WebhookSecret::parse(&a.secret)?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()?;
    let run_id = format!("b{}", now_millis() % 1_000_000);
    let next = Arc::new(AtomicU64::new(0));
    let secret = Arc::new(secret);
    let mut tasks = Vec::new();
    for _ in 0..a.concurrency.max(1) {
        let (http, next, secret, url, run_id) = (
            http.clone(),
            Arc::clone(&next),
            Arc::clone(&secret),
            a.url.clone(),
            run_id.clone(),
        );
        let events = a.events;
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= events {
                    return Ok::<(), String>(());
                }
                let event = WebhookEvent::new(
                    WebhookEvent::new_id(),
                    millis_to_cst(now_millis()),
                    event_data(&run_id, i),
                );
                let body = serde_json::to_vec(&event).map_err(|e| e.to_string())?;
                let ts = u64::try_from(now_millis() / 1000).unwrap_or(0);
                let headers = sign_headers(&[&secret], &event.id, event.event_type(), ts, &body)
                    .map_err(|e| e.to_string())?;
                let mut req = http.post(&url);
                for (name, value) in headers {
                    req = req.header(name, value);
                }
                let resp = req
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                if !resp.status().is_success() {
                    return Err(format!("receiver answered {}", resp.status()));
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?
        .block_on(async move {
            match args.command {
                Command::Run(a) => run(a).await,
                Command::Send(a) => send(a).await,
            }
        })
}
