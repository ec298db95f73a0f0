//! The webhook outbox dispatcher: a background task that delivers queued events.
//!
//! It keeps up to [`WebhookConfig::batch_size`] attempts in flight: it claims
//! due deliveries with a lease
//! ([`WebhookStore::claim`](crate::store::outbox::WebhookStore::claim), one statement
//! returning what the attempts need), sends each in a task of its own, asks [`retry::next_step`]
//! what comes next, and hands the outcome to a recorder task that writes whatever has finished
//! meanwhile in one transaction
//! ([`WebhookStore::finish_all`](crate::store::outbox::WebhookStore::finish_all)); more are
//! claimed as slots free. All state is in the database, so several replicas can run
//! dispatchers on one PostgreSQL database (each row goes to one of them, and a replica whose
//! slots are full wakes the others with `NOTIFY`) and a restarted server picks
//! up whatever was pending; a lease left behind by a killed process expires after twice the
//! attempt timeout (plus a second).
//!
//! When the database goes away between sending an attempt and recording it (the receiver has
//! the event), the dispatcher keeps retrying the record, with a growing pause, for as long as
//! its lease lasts, so the event is not sent again once the database is back. Only a database
//! down for longer than the lease leads to a second send (same `webhook-id`: receivers
//! deduplicate on it). A delivery whose lease was lost meanwhile gets nothing recorded.
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

mod pipeline;
mod record;
pub mod retry;
mod send;
mod wake;

pub use crate::config::webhooks::{
    DEFAULT_RETENTION, DEFAULT_RETRY_SCHEDULE, Retention, RetentionError, RetrySchedule,
    ScheduleError, WebhookConfig, parse_duration,
};

use std::sync::Arc;
use std::time::{Duration, Instant};

use l2c_core::clock::Clock;
use rand::Rng as _;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::ssrf;
use crate::state::AppState;
use crate::store::outbox::{Job, NextStep, Purged};
use crate::store::{Db, StoreError, unix_millis};
use record::Finished;

pub use pipeline::CLAIM_AHEAD;
pub use record::record_writes_in_flight;
pub use retry::MAX_RETRY_AFTER;
pub use send::recorded_request_headers;

/// Largest response body read from a receiver; the first
/// [`MAX_RECORDED_RESPONSE`](l2c_core::api::webhooks::MAX_RECORDED_RESPONSE) bytes are kept
/// with the attempt.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// The `User-Agent` of every attempt.
pub const USER_AGENT: &str = concat!("l2c-webhooks/", env!("CARGO_PKG_VERSION"));

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
        let (stop, _) = watch::channel(false);
        let purger = self.config.retention.duration().is_some().then(|| {
            let purger = self.clone();
            let stopped = stop.subscribe();
            tokio::spawn(async move { purger.purge_periodically(stopped).await })
        });
        let task = tokio::spawn(Arc::new(self).run(stop.subscribe()));
        DispatcherHandle {
            stop,
            task: Some(task),
            purger,
        }
    }

    /// Removes finished deliveries (with their attempts) and events older than the retention
    /// period ([`WebhookConfig::retention`]); pending deliveries stay. Runs in batches of
    /// 500 rows for at most a minute per pass; a spawned dispatcher runs it a few
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
    /// and records the results in one batch. Returns how many were claimed. (The spawned
    /// dispatcher does not work in rounds: it keeps its slots busy, see [`Dispatcher::spawn`].)
    ///
    /// # Errors
    ///
    /// [`StoreError`] when claiming fails (errors recording attempts are logged).
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let (jobs, leased_until) = self.claim(self.config.batch_size as usize).await?;
        let n = jobs.len();
        let outcomes =
            futures_util::future::join_all(jobs.into_iter().map(|job| self.deliver(job))).await;
        let batch = outcomes
            .into_iter()
            .map(|outcome| Finished {
                outcome,
                leased_until,
            })
            .collect();
        self.record(batch).await;
        Ok(n)
    }

    /// Claims up to `limit` due deliveries under this dispatcher's lease; returns them with the
    /// instant the lease ends.
    async fn claim(&self, limit: usize) -> Result<(Vec<Job>, Instant), StoreError> {
        let leased_until = Instant::now() + self.lease();
        let now = self.now();
        let lease_until = now + i64::try_from(self.lease().as_millis()).unwrap_or(i64::MAX / 2);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let started = std::time::Instant::now();
        let jobs = self
            .db
            .webhooks()
            .claim(&self.owner, now, lease_until, limit)
            .await?;
        tracing::debug!(
            limit,
            n = jobs.len(),
            ms = started.elapsed().as_secs_f64() * 1e3,
            "webhook deliveries claimed"
        );
        Ok((jobs, leased_until))
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
    fn schedule_positions() {
        let s: RetrySchedule = "1s,2s".parse().unwrap();
        assert_eq!(s.delay_after(0), None);
        assert_eq!(s.delay_after(1), Some(Duration::from_secs(1)));
        assert_eq!(s.delay_after(2), Some(Duration::from_secs(2)));
        assert_eq!(s.delay_after(3), None);
    }
}
