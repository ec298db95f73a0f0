//! The request log (请求日志): every API request recorded off the request path, in batches.
//!
//! [`observe`](super::observe) hands each request under `/api/` to [`RequestLog::push`], which
//! puts a small record ([`NewRequestLog`]: shared strings, no formatting) into a bounded
//! channel and returns at once: it never awaits the database. When the channel is full the
//! record is dropped and counted in `l2c_request_log_dropped_total{reason="full"}`; a request
//! is never slowed down or refused because of its log.
//!
//! A [`RequestLogWriter`], spawned by [`Server`](crate::Server), takes the records out and writes
//! them as multi-row `INSERT`s ([`RequestLogStore::insert_many`](crate::store::request_logs::RequestLogStore::insert_many))
//! every [`flush_interval`](crate::config::RequestLogConfig::flush_interval) or
//! [`batch_rows`](crate::config::RequestLogConfig::batch_rows) rows, whichever comes first: on
//! SQLite through the single write connection ([`crate::store::sql::begin_write`]), one
//! transaction per batch instead of one per request. A batch the database refuses is dropped
//! and counted (`reason="write_failed"`). On shutdown the writer drains the channel and writes
//! what is left, after the last request has been answered. A task of its own deletes rows
//! older than `--request-log-retention` (7 days by default), in batches, hourly.
//!
//! # What is kept, and for whom
//!
//! Time, method, the matched route template (never the raw path with its ids and query), status,
//! request id (the client's `X-Request-Id`, or the one the server generated and echoed), latency,
//! the rate-limit state (`r` of the `RateLimit` header: requests left in the window; a 429 is
//! shown as limited) and the app. Never headers, bodies, tokens or secrets.
//!
//! A request is attributed to an app only when a credential was verified: a bearer token whose
//! signature, issuer, audience, expiry and revocation checks passed (the auth layer's client,
//! copied to the response by [`expose_client`](super::expose_client)), or a client secret the
//! token endpoint verified. Refusals after that point — 403 for a missing scope, 429, 413,
//! 4xx from validation — land in the app's log. A 401 does not: its token's `sub` is whatever
//! the sender wrote, and attributing it would let anyone write rows (with request ids of
//! their choosing) into another app's log. Such requests are kept without an app
//! (`client_id` NULL); operators see them with every other request on the console's
//! 请求日志 page and find a partner's 401 by the request id the partner quotes (the id is in
//! the 401's problem body and `X-Request-Id` header).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use l2c_core::clock::Clock;
use rand::Rng;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::Metrics;
use crate::config::RequestLogConfig;
use crate::store::request_logs::NewRequestLog;
use crate::store::{Db, StoreError, unix_millis};

/// How often expired rows are deleted.
const PURGE_INTERVAL: Duration = Duration::from_secs(3600);
/// Rows deleted per statement (and transaction) while purging.
const PURGE_BATCH: i64 = 2_000;
/// Statements of one purge pass at most; the next pass goes on where it stopped.
const PURGE_MAX_BATCHES: u32 = 500;
/// The first purge runs this long after start, plus up to as long again at random.
const PURGE_FIRST_DELAY: Duration = Duration::from_secs(300);

/// Why [`RequestLog::push`] dropped a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Dropped {
    /// The channel is full: the writer is behind.
    #[error("request log channel full")]
    Full,
    /// No writer will ever read the channel (stopped).
    #[error("request log writer stopped")]
    Closed,
}

impl Dropped {
    /// The `reason` label of `l2c_request_log_dropped_total`.
    pub fn reason(self) -> &'static str {
        match self {
            Dropped::Full => "full",
            Dropped::Closed => "closed",
        }
    }
}

/// The request side of the request log: a bounded channel. Cheap to clone (one reference
/// count: it sits in [`AppState`](crate::AppState), which is cloned several times a request).
#[derive(Clone)]
pub struct RequestLog(Arc<Channel>);

struct Channel {
    tx: mpsc::Sender<NewRequestLog>,
    /// The receiving end, until a writer takes it.
    rx: Mutex<Option<mpsc::Receiver<NewRequestLog>>>,
}

impl std::fmt::Debug for RequestLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestLog")
            .field("capacity", &self.0.tx.max_capacity())
            .field("free", &self.0.tx.capacity())
            .finish()
    }
}

impl RequestLog {
    /// A channel holding at most `capacity` records (at least one).
    pub fn new(capacity: usize) -> Self {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        Self(Arc::new(Channel {
            tx,
            rx: Mutex::new(Some(rx)),
        }))
    }

    /// Queues `record` without waiting.
    ///
    /// # Errors
    ///
    /// [`Dropped`] when the record was not queued (the caller counts it).
    pub fn push(&self, record: NewRequestLog) -> Result<(), Dropped> {
        self.0.tx.try_send(record).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Dropped::Full,
            mpsc::error::TrySendError::Closed(_) => Dropped::Closed,
        })
    }

    /// The writer of this log over `db`, or `None` when one was already taken (one writer per
    /// log; a second server over the same state leaves the writing to the first).
    pub fn writer(
        &self,
        db: Db,
        config: RequestLogConfig,
        metrics: Option<Arc<Metrics>>,
    ) -> Option<RequestLogWriter> {
        let rx = self.0.rx.lock().unwrap_or_else(|e| e.into_inner()).take()?;
        Some(RequestLogWriter {
            rx,
            db,
            config,
            metrics,
        })
    }
}

/// Writes the queued records in batches; see the [module docs](self).
#[derive(Debug)]
pub struct RequestLogWriter {
    rx: mpsc::Receiver<NewRequestLog>,
    db: Db,
    config: RequestLogConfig,
    metrics: Option<Arc<Metrics>>,
}

/// A running writer. Dropping it aborts the tasks; [`shutdown`](Self::shutdown) writes what is
/// queued first.
#[derive(Debug)]
pub struct RequestLogHandle {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RequestLogHandle {
    /// Stops the writer after it has written every queued record, and stops the purge.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

impl Drop for RequestLogHandle {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Deletes request-log rows older than `retention` (as of `db`'s clock), oldest first, in
/// batches; the number deleted.
///
/// # Errors
///
/// [`StoreError`] from the database (what was deleted before stays deleted).
pub async fn purge_expired(db: &Db, retention: Duration) -> Result<u64, StoreError> {
    let retention = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    let cutoff = db.now_millis().saturating_sub(retention);
    let mut total = 0;
    for _ in 0..PURGE_MAX_BATCHES {
        let n = db.request_logs().purge(cutoff, PURGE_BATCH).await?;
        total += n;
        if n < PURGE_BATCH.unsigned_abs() {
            break;
        }
    }
    Ok(total)
}

impl RequestLogWriter {
    /// Starts the writer (and, unless the retention is `off`, the hourly purge) on the current
    /// Tokio runtime.
    pub fn spawn(self) -> RequestLogHandle {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::with_capacity(2);
        if let Some(retention) = self.config.retention.duration() {
            let db = self.db.clone();
            tasks.push(tokio::spawn(purge_periodically(
                db,
                retention,
                stop.subscribe(),
            )));
        }
        tasks.push(tokio::spawn(self.run(stopped)));
        RequestLogHandle { stop, tasks }
    }

    async fn run(mut self, mut stopped: watch::Receiver<bool>) {
        let rows = self.config.batch_rows.max(1);
        let mut batch = Vec::with_capacity(rows);
        while !*stopped.borrow() {
            tokio::select! {
                _ = stopped.changed() => break,
                n = self.rx.recv_many(&mut batch, rows) => if n == 0 { break },
            }
            // The first record waits at most `flush_interval` for the rest of its batch.
            let deadline = Instant::now() + self.config.flush_interval;
            while batch.len() < rows {
                let room = rows - batch.len();
                tokio::select! {
                    _ = stopped.changed() => break,
                    n = self.rx.recv_many(&mut batch, room) => if n == 0 { break },
                    () = tokio::time::sleep_until(deadline) => break,
                }
            }
            self.write(&mut batch).await;
        }
        // Shutting down: every request has been answered, so what is queued is all there is.
        while let Ok(record) = self.rx.try_recv() {
            batch.push(record);
            if batch.len() >= rows {
                self.write(&mut batch).await;
            }
        }
        self.write(&mut batch).await;
    }

    /// Writes `batch` and empties it; a refused batch is dropped and counted.
    async fn write(&self, batch: &mut Vec<NewRequestLog>) {
        if batch.is_empty() {
            return;
        }
        if let Err(e) = self.db.request_logs().insert_many(batch).await {
            tracing::warn!(error = %e, rows = batch.len(), "writing the request log failed");
            if let Some(m) = &self.metrics {
                m.record_request_log_dropped("write_failed", batch.len() as u64);
            }
        }
        batch.clear();
    }
}

/// A first purge [`PURGE_FIRST_DELAY`] to twice that after start (replicas started together
/// do not purge together), then every [`PURGE_INTERVAL`], until stopped.
async fn purge_periodically(db: Db, retention: Duration, mut stopped: watch::Receiver<bool>) {
    let first = PURGE_FIRST_DELAY.mul_f64(1.0 + rand::thread_rng().gen_range(0.0..1.0));
    let mut ticks = tokio::time::interval_at(Instant::now() + first, PURGE_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stopped.changed() => return,
            _ = ticks.tick() => {}
        }
        match purge_expired(&db, retention).await {
            Ok(0) => {}
            Ok(rows) => tracing::info!(rows, "purged expired request-log rows"),
            Err(e) => tracing::warn!(error = %e, "purging the request log failed"),
        }
    }
}

/// The `at` of a record made now by `clock`.
pub(crate) fn now_millis(clock: &dyn Clock) -> i64 {
    unix_millis(clock.now())
}

/// `r` of the first `RateLimit` member (`"default";r=97;t=1`): requests left in the window.
pub(crate) fn rate_remaining(headers: &http::HeaderMap) -> Option<u32> {
    let value = headers.get("ratelimit")?.as_bytes();
    let at = value.windows(3).position(|w| w == b";r=")? + 3;
    let digits = &value[at..];
    let end = digits
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests;
