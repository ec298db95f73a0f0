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
mod driver;
mod quota;
mod receiver;

use driver::*;
use quota::*;
use receiver::*;

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
