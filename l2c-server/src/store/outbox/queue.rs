//! The delivery queue the dispatcher works from: claim due deliveries under a lease, load what
//! an attempt needs, record the attempt and move the delivery on ([`NextStep`]).

use std::collections::BTreeMap;

use l2c_core::api::events::EventType;
use sqlx::Row;

use super::subscriptions::SUB_COLUMNS;
use super::{Subscription, WebhookStore, corrupt};
use crate::store::sql::begin_write;
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

impl WebhookStore<'_> {
    /// Claims up to `limit` due deliveries for `owner` until `lease_until` (unix ms): pending,
    /// due at `now`, and not leased by anyone else (or whose lease expired). Several dispatchers
    /// may call this concurrently; each row goes to one of them (`FOR UPDATE SKIP LOCKED` on
    /// PostgreSQL, the single writer lock on SQLite). Returns the claimed delivery ids.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub async fn claim(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        let sql = match self.db.backend() {
            // The due rows are picked and locked once, in a materialised CTE, and then updated
            // by primary key. As `WHERE id IN (SELECT … LIMIT … FOR UPDATE SKIP LOCKED)` the
            // planner may run the subquery again for every outer row (a semi join over a table
            // whose statistics lag behind a filled outbox), each run locking the next rows: one
            // claim then took the whole backlog (5,000 rows in 3.5 s). `LockRows` re-checks the
            // condition on the row version it locks, so the rows returned are due and ours.
            Backend::Postgres => {
                "WITH due AS MATERIALIZED (SELECT id FROM webhook_deliveries \
                 WHERE status = 'PENDING' AND next_attempt_at <= $3 \
                 AND (lease_until IS NULL OR lease_until <= $3) \
                 ORDER BY next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED) \
                 UPDATE webhook_deliveries d SET lease_owner = $1, lease_until = $2 \
                 FROM due WHERE d.id = due.id RETURNING d.id"
            }
            // One writer at a time: the subquery runs once.
            Backend::Sqlite => {
                "UPDATE webhook_deliveries SET lease_owner = $1, lease_until = $2 \
                 WHERE id IN (SELECT id FROM webhook_deliveries WHERE status = 'PENDING' \
                   AND next_attempt_at <= $3 AND (lease_until IS NULL OR lease_until <= $3) \
                   ORDER BY next_attempt_at LIMIT $4) \
                 AND status = 'PENDING' AND (lease_until IS NULL OR lease_until <= $3) \
                 RETURNING id"
            }
        };
        let rows = sqlx::query(sql)
            .bind(owner)
            .bind(lease_until)
            .bind(now)
            .bind(limit)
            .fetch_all(self.db.pool())
            .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("id").map_err(StoreError::from))
            .collect()
    }

    /// What a claimed delivery needs for its attempt (`None` if the row is gone).
    ///
    /// # Errors
    ///
    /// [`StoreError`].
    pub async fn job(&self, delivery_id: &str) -> Result<Option<Job>, StoreError> {
        let Some(r) = sqlx::query(
            "SELECT d.id, d.failures, d.subscription_id, e.id AS event_id, e.event_type, e.payload, \
             e.created_at AS event_created_at \
             FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id WHERE d.id = $1",
        )
        .bind(delivery_id)
        .fetch_optional(self.db.pool())
        .await?
        else {
            return Ok(None);
        };
        let sub_id: String = r.try_get("subscription_id")?;
        let subscription = sqlx::query(&format!(
            "SELECT {SUB_COLUMNS} FROM webhook_subscriptions WHERE id = $1"
        ))
        .bind(&sub_id)
        .fetch_optional(self.db.pool())
        .await?
        .as_ref()
        .map(|r| Subscription::from_row(self.db.data_keys(), r))
        .transpose()?;
        Ok(Some(Job {
            delivery_id: r.try_get("id")?,
            failures: u32::try_from(r.try_get::<i64, _>("failures")?).unwrap_or(u32::MAX),
            event_id: r.try_get("event_id")?,
            event_type: r
                .try_get::<String, _>("event_type")?
                .parse()
                .map_err(|_| corrupt("event type"))?,
            payload: r.try_get("payload")?,
            subscription,
            event_created_at: r.try_get("event_created_at")?,
        }))
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

    /// Records an attempt (if any) and moves the delivery on, releasing `owner`'s lease; on
    /// [`NextStep::Gone`] also disables the subscription. Returns `false` (and writes nothing)
    /// when `owner` no longer holds the lease.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub async fn finish(
        &self,
        owner: &str,
        job: &Job,
        attempt: Option<&AttemptRecord>,
        next: NextStep,
        now: i64,
    ) -> Result<bool, StoreError> {
        let (status, next_at, failures) = match next {
            NextStep::Succeeded => ("SUCCEEDED", now, job.failures),
            NextStep::RetryAt(at) => ("PENDING", at, job.failures.saturating_add(1)),
            NextStep::Failed | NextStep::Gone => ("FAILED", now, job.failures.saturating_add(1)),
        };
        let mut tx = begin_write(self.db).await?;
        let updated = sqlx::query(
            "UPDATE webhook_deliveries SET status = $1, next_attempt_at = $2, failures = $3, \
             lease_owner = NULL, lease_until = NULL, updated_at = $4 \
             WHERE id = $5 AND lease_owner = $6",
        )
        .bind(status)
        .bind(next_at)
        .bind(i64::from(failures))
        .bind(now)
        .bind(&job.delivery_id)
        .bind(owner)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Ok(false);
        }
        if let Some(a) = attempt {
            let n: i64 =
                sqlx::query("SELECT COUNT(*) AS n FROM webhook_attempts WHERE delivery_id = $1")
                    .bind(&job.delivery_id)
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get("n")?;
            sqlx::query(
                "INSERT INTO webhook_attempts (delivery_id, attempt_no, attempted_at, \
                 response_status, latency_ms, error, response_body, request_headers) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&job.delivery_id)
            .bind(n + 1)
            .bind(a.attempted_at)
            .bind(a.response_status.map(i64::from))
            .bind(a.latency_ms)
            .bind(a.error.as_deref())
            .bind(a.response_body.as_deref())
            .bind(a.headers_json())
            .execute(&mut *tx)
            .await?;
        }
        if next == NextStep::Gone {
            if let Some(sub) = &job.subscription {
                sqlx::query(
                    "UPDATE webhook_subscriptions SET enabled = 0, \
                     disabled_reason = 'receiver answered 410 Gone' WHERE id = $1",
                )
                .bind(&sub.id)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(true)
    }
}
