//! The delivery queue the dispatcher works from: claim due deliveries under a lease, with what
//! their attempts need; what an attempt leads to ([`NextStep`]) is recorded by [`super::record`].

use std::collections::BTreeMap;

use l2c_core::api::events::EventType;
use sqlx::Row;

use super::subscriptions::SUB_COLUMNS;
use super::{Subscription, WebhookStore, corrupt};
use crate::store::sql::{begin_bookkeeping, bind_all, placeholders};
use crate::store::{Backend, StoreError};

/// A delivery claimed by a dispatcher, with what it needs to make the attempt.
#[derive(Clone)]
#[non_exhaustive]
pub struct Job {
    /// `dlv_…`.
    pub delivery_id: String,
    /// Failed attempts since (re)queueing.
    pub failures: u32,
    /// The event id (`webhook-id`).
    pub event_id: String,
    /// The event type.
    pub event_type: EventType,
    /// The exact body.
    pub payload: String,
    /// The subscription, `None` if it was deleted meanwhile.
    pub subscription: Option<Subscription>,
    /// When the event was created (unix ms).
    pub event_created_at: i64,
    /// The end of this claim's lease (unix ms), as written by the claim: the claim's token. An
    /// outcome is recorded only while the row still carries it, so an attempt whose lease
    /// lapsed cannot be recorded against a later claim of the same row (even by the same
    /// dispatcher).
    pub lease_until: i64,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("delivery_id", &self.delivery_id)
            .field("event_id", &self.event_id)
            .field("failures", &self.failures)
            .finish_non_exhaustive()
    }
}

/// The pending webhook deliveries, for `/metrics` ([`WebhookStore::queue_stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueStats {
    /// Deliveries pending (due now or waiting for a retry).
    pub pending: i64,
    /// When the oldest of them was created (unix ms), `None` when there are none.
    pub oldest_created_at: Option<i64>,
}

/// The result of one attempt, as recorded.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AttemptRecord {
    /// When it started (unix ms).
    pub attempted_at: i64,
    /// The receiver's status, if it answered.
    pub response_status: Option<u16>,
    /// Duration in ms.
    pub latency_ms: i64,
    /// Why it failed.
    pub error: Option<String>,
    /// The start of the receiver's answer (at most
    /// [`MAX_RECORDED_RESPONSE`](l2c_core::api::webhooks::MAX_RECORDED_RESPONSE) bytes).
    pub response_body: Option<String>,
    /// The request headers as sent, empty when no request was made.
    pub request_headers: BTreeMap<String, String>,
}

impl AttemptRecord {
    /// A record of an attempt that exchanged nothing worth keeping (see
    /// [`with_exchange`](Self::with_exchange)).
    pub fn new(
        attempted_at: i64,
        response_status: Option<u16>,
        latency_ms: i64,
        error: Option<String>,
    ) -> Self {
        Self {
            attempted_at,
            response_status,
            latency_ms,
            error,
            response_body: None,
            request_headers: BTreeMap::new(),
        }
    }

    /// The same record with the start of the answer and the headers as sent.
    #[must_use]
    pub fn with_exchange(
        mut self,
        response_body: Option<String>,
        request_headers: BTreeMap<String, String>,
    ) -> Self {
        self.response_body = response_body;
        self.request_headers = request_headers;
        self
    }

    /// The headers as the JSON object stored in `webhook_attempts.request_headers`, `None` when
    /// empty.
    pub(crate) fn headers_json(&self) -> Option<String> {
        (!self.request_headers.is_empty())
            .then(|| serde_json::to_string(&self.request_headers).unwrap_or_default())
    }
}

/// What happens to a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// 2xx: done.
    Succeeded,
    /// Try again at this time (unix ms).
    RetryAt(i64),
    /// No more attempts.
    Failed,
    /// The receiver answered 410: fail the delivery and disable the subscription.
    Gone,
}

/// The claim on PostgreSQL (`$1` owner, `$2` lease end, `$3` now, `$4` limit). Run it only in
/// a [`begin_bookkeeping`] transaction: its plan is pinned to the indexes there, and a prepared
/// statement keeps the plan it got (outside, a new database's plan reads the whole backlog).
///
/// The due rows are picked and locked once, in an `ARRAY(…)` subquery (an init plan: run once,
/// before the update), then updated by primary key. Two shapes were worse: as `WHERE id IN
/// (SELECT … LIMIT … FOR UPDATE SKIP LOCKED)` the planner may run the subquery again for every
/// outer row (a semi join over a table whose statistics lag behind a filled outbox), each run
/// locking the next rows: one claim then took the whole backlog (5,000 rows in 3.5 s); as a
/// join with a materialised CTE, the generic plan of the prepared statement (which cannot see
/// the limit) hash-joined the whole table once statistics were there. Even this shape, left to
/// the statistics of a table not analysed yet, read every pending row by bitmap and sorted
/// them (19 ms to claim 128 of 20,000 pending); planned by index only it walks the due index
/// in order and stops at the limit (1.7 ms). `LockRows` re-checks the condition on the row
/// version it locks, so the rows returned are due and ours.
pub const CLAIM_POSTGRES: &str = "WITH claimed AS (UPDATE webhook_deliveries d \
     SET lease_owner = $1, lease_until = $2 \
     WHERE d.id = ANY(ARRAY(SELECT id FROM webhook_deliveries \
       WHERE status = 'PENDING' AND next_attempt_at <= $3 \
       AND (lease_until IS NULL OR lease_until <= $3) \
       ORDER BY next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED)) \
     RETURNING d.id, d.failures, d.subscription_id, d.event_id) \
     SELECT c.id, c.failures, c.subscription_id, c.event_id, e.event_type, e.payload, \
     e.created_at AS event_created_at \
     FROM claimed c JOIN webhook_events e ON e.id = c.event_id";

/// The claim on SQLite (the parameters of [`CLAIM_POSTGRES`]).
///
/// One writer at a time: the subquery runs once. RETURNING sees only the updated table, so the
/// event's columns come from subqueries on its primary key. The outer `+status` keeps the
/// status indexes out of the outer search: with `status =` the planner walked every pending row
/// by `(status, updated_at)` and tested each against the list, so a claim's cost grew with the
/// backlog (5.4 ms for 128 of 20,000 pending, against 0.9 ms by primary key: draining a
/// backlog was quadratic).
pub const CLAIM_SQLITE: &str = "UPDATE webhook_deliveries SET lease_owner = $1, lease_until = $2 \
     WHERE id IN (SELECT id FROM webhook_deliveries WHERE status = 'PENDING' \
       AND next_attempt_at <= $3 AND (lease_until IS NULL OR lease_until <= $3) \
       ORDER BY next_attempt_at LIMIT $4) \
     AND +status = 'PENDING' AND (lease_until IS NULL OR lease_until <= $3) \
     RETURNING id, failures, subscription_id, event_id, \
     (SELECT e.event_type FROM webhook_events e \
       WHERE e.id = webhook_deliveries.event_id) AS event_type, \
     (SELECT e.payload FROM webhook_events e \
       WHERE e.id = webhook_deliveries.event_id) AS payload, \
     (SELECT e.created_at FROM webhook_events e \
       WHERE e.id = webhook_deliveries.event_id) AS event_created_at";

impl WebhookStore<'_> {
    /// Claims up to `limit` due deliveries for `owner` until `lease_until` (unix ms): pending,
    /// due at `now`, and not leased by anyone else (or whose lease expired). Several dispatchers
    /// may call this concurrently; each row goes to one of them (`FOR UPDATE SKIP LOCKED` on
    /// PostgreSQL, the single writer lock on SQLite).
    ///
    /// Returns the claimed jobs with everything their attempts need: the deliveries with their
    /// events come back from the claiming statement itself, and their subscriptions (usually one)
    /// are read once for the whole claim.
    ///
    /// # Errors
    ///
    /// [`StoreError`].
    pub async fn claim(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<Job>, StoreError> {
        let sql = match self.db.backend() {
            Backend::Postgres => CLAIM_POSTGRES,
            Backend::Sqlite => CLAIM_SQLITE,
        };
        // On the write connection (SQLite's single writer: no busy-waiting on the lock beside
        // it), committed without waiting for a disk flush, planned by index only on PostgreSQL
        // (the due index in order, the events by primary key: see `begin_bookkeeping`).
        let mut tx = begin_bookkeeping(self.db).await?;
        let rows = sqlx::query(sql)
            .bind(owner)
            .bind(lease_until)
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let subscriptions = self.subscriptions_by_id(&rows).await?;
        rows.iter()
            .map(|r| {
                let sub_id: String = r.try_get("subscription_id")?;
                Ok(Job {
                    delivery_id: r.try_get("id")?,
                    failures: u32::try_from(r.try_get::<i64, _>("failures")?).unwrap_or(u32::MAX),
                    event_id: r.try_get("event_id")?,
                    event_type: r
                        .try_get::<String, _>("event_type")?
                        .parse()
                        .map_err(|_| corrupt("event type"))?,
                    payload: r.try_get("payload")?,
                    subscription: subscriptions.iter().find(|s| s.id == sub_id).cloned(),
                    event_created_at: r.try_get("event_created_at")?,
                    lease_until,
                })
            })
            .collect()
    }

    /// The subscriptions of the claimed `rows`, each read once (a claim's deliveries mostly
    /// share one or a few); a deleted one is missing.
    async fn subscriptions_by_id(
        &self,
        rows: &[sqlx::any::AnyRow],
    ) -> Result<Vec<Subscription>, StoreError> {
        let mut ids: Vec<String> = rows
            .iter()
            .map(|r| r.try_get::<String, _>("subscription_id"))
            .collect::<Result<_, _>>()?;
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {SUB_COLUMNS} FROM webhook_subscriptions WHERE id IN ({})",
            placeholders(ids.len())
        );
        bind_all(sqlx::query(&sql), &ids)
            .fetch_all(self.db.pool())
            .await?
            .iter()
            .map(|r| Subscription::from_row(self.db.data_keys(), r))
            .collect()
    }

    /// The pending deliveries: how many, and the creation time (unix ms) of the oldest. Served
    /// by the `(status, next_attempt_at)` index.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub async fn queue_stats(&self) -> Result<QueueStats, StoreError> {
        let r = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM webhook_deliveries \
             WHERE status = 'PENDING'",
        )
        .fetch_one(self.db.pool())
        .await?;
        Ok(QueueStats {
            pending: r.try_get("n")?,
            oldest_created_at: r.try_get("oldest")?,
        })
    }
}
