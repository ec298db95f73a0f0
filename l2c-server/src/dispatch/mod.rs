//! The webhook outbox dispatcher: a background task that delivers queued events.
//!
//! Every round it claims due deliveries with a lease
//! ([`WebhookStore::claim`](crate::store::outbox::WebhookStore::claim)), sends them
//! concurrently and records each attempt
//! ([`WebhookStore::finish`](crate::store::outbox::WebhookStore::finish)), after asking
//! [`retry::next_step`] what comes next. All state is in the database, so several replicas can
//! run dispatchers on one PostgreSQL database (each row goes to
//! one of them) and a restarted server picks up whatever was pending; a lease left behind by a
//! killed process expires after twice the attempt timeout (plus a second).
//!
//! When the database goes away between sending an attempt and recording it (the receiver has
//! the event), the dispatcher keeps retrying the record, with a growing pause, for as long as
//! its lease lasts, so the event is not sent again once the database is back. Only a database
//! down for longer than the lease leads to a second send (same `webhook-id`: receivers
//! deduplicate on it).
//!
//! One attempt (PROTOCOLS.md H9):
//!
//! - the destination is vetted again: the URL and an IP-literal host before the attempt
//!   ([`crate::ssrf::check_url`]), a host name when a connection is opened (the dispatcher's one
//!   HTTP client resolves through [`crate::ssrf::VettingResolver`] and connects only to the
//!   addresses it vetted); connections to a receiver are kept alive between deliveries;
//! - `POST` of the stored body with the headers of [`l2c_core::webhook::sign_headers`] (both
//!   secrets sign during a rotation), a fresh timestamp per attempt, the same event id on all;
//! - only 2xx is success; redirects are not followed (a 3xx is a failure); `410 Gone` fails the
//!   delivery and disables the subscription; `Retry-After` on 429/502/503/504 (throttling) sets
//!   the next attempt's time (capped at a day);
//!   anything else (timeout, refused connection, other status) is retried after the next delay
//!   of the [`RetrySchedule`] with ±10 % jitter, until the schedule runs out.
//!
//! [`Server`](crate::Server) starts one with the server and stops it on shutdown:
//!
//! ```no_run
//! # async fn demo(state: l2c_server::AppState) {
//! use l2c_server::dispatch::Dispatcher;
//!
//! let handle = Dispatcher::from_state(&state).spawn();
//! // … serve …
//! handle.shutdown().await; // lets the attempts in flight finish
//! # }
//! ```

pub mod retry;

pub use crate::config::webhooks::{
    DEFAULT_RETENTION, DEFAULT_RETRY_SCHEDULE, Retention, RetentionError, RetrySchedule,
    ScheduleError, WebhookConfig, parse_duration,
};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use l2c_core::api::webhooks::MAX_RECORDED_RESPONSE;

use l2c_core::clock::Clock;
use l2c_core::webhook::{WebhookSecret, sign_headers};
use rand::Rng as _;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::ssrf;

/// The first and the longest pause between tries to record an attempt while the database is
/// unreachable (within the lease).
const FINISH_RETRY_FIRST: Duration = Duration::from_millis(100);
const FINISH_RETRY_MAX: Duration = Duration::from_secs(1);
use crate::state::AppState;
use crate::store::outbox::{AttemptRecord, Job, NextStep, Purged};
use crate::store::{Db, StoreError, unix_millis};
use retry::Answer;

pub use retry::MAX_RETRY_AFTER;

/// Largest response body read from a receiver; the first
/// [`MAX_RECORDED_RESPONSE`] bytes are kept with the attempt.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// The `User-Agent` of every attempt.
const USER_AGENT: &str = concat!("l2c-webhooks/", env!("CARGO_PKG_VERSION"));

/// How often a dispatcher removes what the retention period let expire.
const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

/// Rows deleted per statement (and transaction) while purging, so the database lock is held
/// briefly.
const PURGE_BATCH: i64 = 500;

/// The first purge runs this long after start, plus up to as long again at random (so replicas
/// started together do not purge together, and a start-up is not slowed by it).
const PURGE_FIRST_DELAY: Duration = Duration::from_secs(300);

/// How long one purge pass may run; the next pass goes on where it stopped.
const PURGE_PASS_TIME: Duration = Duration::from_secs(60);

/// Delivers queued webhook events; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Dispatcher {
    db: Db,
    config: Arc<WebhookConfig>,
    /// One client for every attempt: its pool keeps connections (and TLS sessions) to receivers
    /// alive. `Err` if it could not be built; every attempt then fails with that message.
    http: Result<reqwest::Client, String>,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    owner: String,
    /// Where attempts are counted (`l2c_webhook_attempts_total`, …), if anywhere.
    metrics: Option<Arc<crate::observe::Metrics>>,
}

/// A running dispatcher. Dropping it aborts the task; [`shutdown`](Self::shutdown) stops it
/// cleanly.
#[derive(Debug)]
pub struct DispatcherHandle {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    /// The retention purge, in a task of its own so it never delays a delivery.
    purger: Option<JoinHandle<()>>,
}

impl DispatcherHandle {
    /// Stops claiming, lets the attempts in flight finish, and waits for the task.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for task in [self.task.take(), self.purger.take()].into_iter().flatten() {
            let _ = task.await;
        }
    }
}

impl Drop for DispatcherHandle {
    fn drop(&mut self) {
        for task in [self.task.take(), self.purger.take()].into_iter().flatten() {
            task.abort();
        }
    }
}

impl Dispatcher {
    /// A dispatcher over `db` with `config`, reading time from `clock`, woken early by `wake`.
    pub fn new(db: Db, config: WebhookConfig, clock: Arc<dyn Clock>, wake: Arc<Notify>) -> Self {
        // One pool per dispatcher, built for its one `allow_private` setting (server-wide): a
        // connection vetted under one setting is never reused under another.
        let http = ssrf::client_builder(config.allow_private)
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| {
                tracing::error!(error = %e, "cannot build the webhook HTTP client");
                format!("http client: {e}")
            });
        Self {
            db,
            config: Arc::new(config),
            http,
            clock,
            wake,
            owner: format!("dsp_{}", uuid::Uuid::new_v4().simple()),
            metrics: None,
        }
    }

    /// Counts attempts and delivery latency in `metrics`.
    #[must_use]
    pub fn with_metrics(mut self, metrics: Arc<crate::observe::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    fn count_attempt(&self, job: &Job, next: NextStep, now: i64) {
        let Some(metrics) = &self.metrics else {
            return;
        };
        let outcome = match next {
            NextStep::Succeeded => {
                let ms = u64::try_from(now.saturating_sub(job.event_created_at)).unwrap_or(0);
                metrics.record_webhook_delivered(Duration::from_millis(ms));
                "delivered"
            }
            NextStep::RetryAt(_) => "retry",
            NextStep::Failed => "failed",
            NextStep::Gone => "gone",
        };
        metrics.record_webhook_attempt(outcome);
    }

    /// The dispatcher of a server's state (its database, webhook config, clock and wake-up).
    pub fn from_state(state: &AppState) -> Self {
        Self::new(
            state.db.clone(),
            state.config.webhooks.clone(),
            Arc::clone(&state.clock),
            Arc::clone(&state.webhook_wake),
        )
        .with_metrics(Arc::clone(&state.metrics))
    }

    /// This dispatcher's lease owner id.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    fn now(&self) -> i64 {
        unix_millis(self.clock.now())
    }

    /// How long a claim lasts: twice the attempt timeout plus a second, ample to resolve, send
    /// and record one attempt. A killed dispatcher's claims become available again after that.
    fn lease(&self) -> Duration {
        self.config.attempt_timeout * 2 + Duration::from_secs(1)
    }

    /// Starts the loop on the current Tokio runtime.
    pub fn spawn(self) -> DispatcherHandle {
        let (stop, mut stopped) = watch::channel(false);
        let purger = self.config.retention.duration().is_some().then(|| {
            let purger = self.clone();
            let stopped = stop.subscribe();
            tokio::spawn(async move { purger.purge_periodically(stopped).await })
        });
        let task = tokio::spawn(async move {
            loop {
                if *stopped.borrow() {
                    break;
                }
                let claimed = match self.run_once().await {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::warn!(error = %e, source = ?std::error::Error::source(&e), "webhook dispatcher round failed");
                        0
                    }
                };
                // A full batch: more may be due right away.
                if claimed >= self.config.batch_size as usize {
                    continue;
                }
                tokio::select! {
                    _ = stopped.changed() => {}
                    () = self.wake.notified() => {}
                    () = tokio::time::sleep(self.config.poll_interval) => {}
                }
            }
        });
        DispatcherHandle {
            stop,
            task: Some(task),
            purger,
        }
    }

    /// Removes finished deliveries (with their attempts) and events older than the retention
    /// period ([`WebhookConfig::retention`]); pending deliveries stay. Runs in batches of
    /// [`PURGE_BATCH`] rows for at most [`PURGE_PASS_TIME`]; a spawned dispatcher runs it a few
    /// minutes after start and then hourly, in a task of its own.
    ///
    /// # Errors
    ///
    /// [`StoreError`] from the database (what was deleted before stays deleted).
    pub async fn purge(&self) -> Result<Purged, StoreError> {
        self.purge_pass(None).await
    }

    async fn purge_pass(
        &self,
        stopped: Option<&watch::Receiver<bool>>,
    ) -> Result<Purged, StoreError> {
        let mut total = Purged::default();
        let Some(retention) = self.config.retention.duration() else {
            return Ok(total);
        };
        let retention = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        let cutoff = self.now().saturating_sub(retention);
        let started = Instant::now();
        loop {
            let batch = self.db.webhooks().purge(cutoff, PURGE_BATCH).await?;
            total.deliveries += batch.deliveries;
            total.events += batch.events;
            let full = batch.deliveries >= PURGE_BATCH.unsigned_abs()
                || batch.events >= PURGE_BATCH.unsigned_abs();
            if !full || started.elapsed() >= PURGE_PASS_TIME || stopped.is_some_and(|s| *s.borrow())
            {
                return Ok(total);
            }
        }
    }

    /// The purge schedule of a spawned dispatcher: a first pass [`PURGE_FIRST_DELAY`] (plus
    /// jitter) after start, then every [`PURGE_INTERVAL`], until stopped.
    async fn purge_periodically(&self, mut stopped: watch::Receiver<bool>) {
        let jitter = PURGE_FIRST_DELAY.mul_f64(rand::thread_rng().gen_range(0.0..1.0));
        let mut delay = PURGE_FIRST_DELAY + jitter;
        loop {
            tokio::select! {
                _ = stopped.changed() => return,
                () = tokio::time::sleep(delay) => {}
            }
            match self.purge_pass(Some(&stopped)).await {
                Ok(p) if p.deliveries + p.events > 0 => {
                    tracing::info!(
                        deliveries = p.deliveries,
                        events = p.events,
                        "purged expired webhook deliveries"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "purging expired webhook deliveries failed"),
            }
            delay = PURGE_INTERVAL;
        }
    }

    /// One round: claims the due deliveries (up to the batch size), attempts them concurrently
    /// and records the results. Returns how many were claimed.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when claiming fails (errors recording single attempts are logged).
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let leased_until = Instant::now() + self.lease();
        let now = self.now();
        let lease_until = now + i64::try_from(self.lease().as_millis()).unwrap_or(i64::MAX / 2);
        let ids = self
            .db
            .webhooks()
            .claim(
                &self.owner,
                now,
                lease_until,
                i64::from(self.config.batch_size),
            )
            .await?;
        let n = ids.len();
        let rounds = ids.into_iter().map(|id| async move {
            if let Err(e) = self.deliver(&id, leased_until).await {
                tracing::warn!(delivery = %id, error = %e, "recording a webhook attempt failed");
            }
        });
        futures_util::future::join_all(rounds).await;
        Ok(n)
    }

    async fn deliver(&self, delivery_id: &str, leased_until: Instant) -> Result<(), StoreError> {
        let store = self.db.webhooks();
        let Some(job) = store.job(delivery_id).await? else {
            return Ok(());
        };
        let Some(sub) = job.subscription.as_ref().filter(|s| s.enabled) else {
            let record = AttemptRecord::new(
                self.now(),
                None,
                0,
                Some("not sent: the subscription is disabled or deleted".to_owned()),
            );
            if let Some(metrics) = &self.metrics {
                metrics.record_webhook_attempt("not_sent");
            }
            store
                .finish(
                    &self.owner,
                    &job,
                    Some(&record),
                    NextStep::Failed,
                    self.now(),
                )
                .await?;
            return Ok(());
        };
        let started_at = self.now();
        let started = Instant::now();
        let mut exchange = Exchange::default();
        let result = self.attempt(&job, sub, started_at, &mut exchange).await;
        let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let now = self.now();
        let (answer, error) = match result {
            Ok(answer @ Answer::Status { status, .. }) => {
                let why = match status {
                    200..300 => None,
                    410 => Some("410 Gone: the subscription is disabled".to_owned()),
                    300..400 => Some(format!("HTTP {status}: redirects are not followed")),
                    _ => Some(format!("HTTP {status}")),
                };
                (answer, why)
            }
            Ok(Answer::NoAnswer) => (Answer::NoAnswer, None),
            Err(why) => (Answer::NoAnswer, Some(why)),
        };
        let status = match answer {
            Answer::Status { status, .. } => Some(status),
            Answer::NoAnswer => None,
        };
        let next = retry::next_step(
            answer,
            job.failures,
            &self.config.retry_schedule,
            rand::thread_rng().gen_range(retry::JITTER),
            now,
        );
        tracing::info!(
            delivery = %job.delivery_id,
            event = %job.event_id,
            status = ?status,
            latency_ms,
            next = ?next,
            "webhook attempt"
        );
        self.count_attempt(&job, next, now);
        let record = AttemptRecord::new(started_at, status, latency_ms, error)
            .with_exchange(exchange.response_body, exchange.request_headers);
        let mut pause = FINISH_RETRY_FIRST;
        loop {
            match store
                .finish(&self.owner, &job, Some(&record), next, now)
                .await
            {
                Ok(_) => return Ok(()),
                // The attempt was made: record it once the database is back rather than let the
                // lease lapse and send the event again.
                Err(e)
                    if crate::error::is_unavailable(&e)
                        && Instant::now() + pause < leased_until =>
                {
                    tracing::warn!(delivery = %job.delivery_id, error = %e, "recording a webhook attempt failed; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(FINISH_RETRY_MAX);
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn attempt(
        &self,
        job: &Job,
        sub: &crate::store::outbox::Subscription,
        now_ms: i64,
        exchange: &mut Exchange,
    ) -> Result<Answer, String> {
        let url = ssrf::check_url(&sub.url, self.config.allow_private)
            .map_err(|e| format!("destination refused: {e}"))?;
        let secrets = sub
            .signing_secrets(now_ms)
            .into_iter()
            .map(WebhookSecret::parse)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("stored secret unusable: {e}"))?;
        let refs: Vec<&WebhookSecret> = secrets.iter().collect();
        let ts = u64::try_from(now_ms / 1000).unwrap_or(0);
        let headers = sign_headers(
            &refs,
            &job.event_id,
            job.event_type,
            ts,
            job.payload.as_bytes(),
        )
        .map_err(|e| format!("cannot sign: {e}"))?;
        let client = self.http.as_ref().map_err(Clone::clone)?;
        let mut req = client
            .post(url)
            .timeout(self.config.attempt_timeout)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(job.payload.clone());
        exchange.sent(&headers);
        for (name, value) in headers {
            req = req.header(name, value);
        }
        let mut res = req.send().await.map_err(describe)?;
        let status = res.status().as_u16();
        let retry_after = res
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| l2c_core::retry_after::parse(v.as_bytes(), self.clock.now()));
        // Drain a bounded amount so the connection can be reused; the start is kept for the
        // delivery log.
        let mut read = 0usize;
        let mut start = Vec::new();
        while read < MAX_RESPONSE_BYTES {
            match res.chunk().await {
                Ok(Some(c)) => {
                    let room = MAX_RECORDED_RESPONSE.saturating_sub(start.len());
                    start.extend_from_slice(&c[..c.len().min(room)]);
                    read += c.len();
                }
                _ => break,
            }
        }
        exchange.response_body = (!start.is_empty()).then(|| recorded_text(start));
        Ok(Answer::Status {
            status,
            retry_after,
        })
    }
}

/// What one attempt exchanged with the receiver, for the delivery log.
#[derive(Debug, Default)]
struct Exchange {
    /// The request headers as sent.
    request_headers: BTreeMap<String, String>,
    /// The start of the answer.
    response_body: Option<String>,
}

impl Exchange {
    /// Notes the signed headers plus the two the request adds (content type, user agent).
    fn sent(&mut self, signed: &[(http::HeaderName, http::HeaderValue)]) {
        let text = |v: &http::HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned();
        self.request_headers = signed
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), text(v)))
            .collect();
        self.request_headers.insert(
            http::header::CONTENT_TYPE.as_str().to_owned(),
            "application/json".to_owned(),
        );
        self.request_headers.insert(
            http::header::USER_AGENT.as_str().to_owned(),
            USER_AGENT.to_owned(),
        );
    }
}

/// The kept start of an answer as text: a character cut by the 4 KiB limit is dropped, other
/// invalid UTF-8 replaced.
fn recorded_text(mut bytes: Vec<u8>) -> String {
    if let Err(e) = std::str::from_utf8(&bytes) {
        if e.error_len().is_none() {
            bytes.truncate(e.valid_up_to());
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn describe(e: reqwest::Error) -> String {
    // The resolver refused the addresses of the host name.
    if let Some(refused) = ssrf::refusal(&e) {
        return format!("destination refused: {refused}");
    }
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else {
        let mut s = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(inner) = src {
            s.push_str(": ");
            s.push_str(&inner.to_string());
            src = inner.source();
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let parse = l2c_core::retry_after::parse;
        let now = std::time::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(parse(b"120", now), Some(Duration::from_secs(120)));
        assert_eq!(
            parse(b"Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse(b"Sun, 06 Nov 1994 08:51:37 GMT", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse(b"soon", now), None);
    }

    #[test]
    fn recorded_text_drops_a_cut_character_and_replaces_bad_bytes() {
        // "订单" is 6 bytes; cut after 4 the second character is incomplete and dropped.
        assert_eq!(recorded_text("订单".as_bytes()[..4].to_vec()), "订");
        assert_eq!(recorded_text(b"ok \xff!".to_vec()), "ok \u{fffd}!");
        assert_eq!(recorded_text(b"plain".to_vec()), "plain");
    }

    #[test]
    fn schedule_positions() {
        let s: RetrySchedule = "1s,2s".parse().unwrap();
        assert_eq!(s.delay_after(0), None);
        assert_eq!(s.delay_after(1), Some(Duration::from_secs(1)));
        assert_eq!(s.delay_after(2), Some(Duration::from_secs(2)));
        assert_eq!(s.delay_after(3), None);
    }
}
