//! Recording attempts: many finished attempts in one transaction, each written only while its
//! dispatcher still holds the delivery's lease.

use std::collections::{HashMap, HashSet};

use sqlx::Row;

use super::WebhookStore;
use super::queue::{AttemptRecord, Job, NextStep};
use crate::store::sql::{begin_bookkeeping, bind_all, placeholders};
use crate::store::{Backend, StoreError};

/// The most outcomes [`WebhookStore::finish_all`] writes in one transaction (a few hundred
/// rows: the write lock is held for a few milliseconds).
pub const MAX_FINISH_BATCH: usize = 256;

/// A finished attempt (or a decision without one) to record: what
/// [`WebhookStore::finish_all`] writes for a claimed delivery.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Outcome {
    /// The claimed delivery.
    pub job: Job,
    /// The attempt, `None` when the delivery is settled without sending.
    pub attempt: Option<AttemptRecord>,
    /// What happens to the delivery next.
    pub next: NextStep,
    /// When it was decided (unix ms): the delivery's `updated_at`.
    pub now: i64,
}

impl Outcome {
    /// An outcome.
    pub fn new(job: Job, attempt: Option<AttemptRecord>, next: NextStep, now: i64) -> Self {
        Self {
            job,
            attempt,
            next,
            now,
        }
    }

    /// The delivery's status, next attempt time and failure count after this outcome.
    fn delivery_update(&self) -> (&'static str, i64, i64) {
        let failures = i64::from(self.job.failures);
        match self.next {
            NextStep::Succeeded => ("SUCCEEDED", self.now, failures),
            NextStep::RetryAt(at) => ("PENDING", at, failures + 1),
            NextStep::Failed | NextStep::Gone => ("FAILED", self.now, failures + 1),
        }
    }
}

/// The deliveries' update, one row per outcome from the JSON array bound as `$1`
/// (`[[id, status, next_attempt_at, failures, updated_at, lease_until], …]`), guarded by the
/// lease (`$2` the owner, the claim's `lease_until` per row).
///
/// One statement text whatever the batch size, so it is prepared once per connection (a
/// `VALUES` list of the batch's size was a new statement for most batches); on PostgreSQL its
/// plan is pinned to the primary key by [`begin_bookkeeping`]: run it only in such a
/// transaction (a new database's generic plan outside hash-joins a sequential scan of the
/// deliveries).
pub const FINISH_DELIVERIES_PG: &str = "WITH v AS (SELECT x->>0 AS did, x->>1 AS st, \
     (x->>2)::bigint AS nat, (x->>3)::bigint AS fl, (x->>4)::bigint AS ts, (x->>5)::bigint AS lu \
     FROM jsonb_array_elements($1::jsonb) AS x) \
     UPDATE webhook_deliveries SET status = v.st, next_attempt_at = v.nat, failures = v.fl, \
     lease_owner = NULL, lease_until = NULL, updated_at = v.ts \
     FROM v WHERE webhook_deliveries.id = v.did AND webhook_deliveries.lease_owner = $2 \
     AND webhook_deliveries.lease_until = v.lu RETURNING webhook_deliveries.id";
/// [`FINISH_DELIVERIES_PG`] for SQLite (`json_each`).
const FINISH_DELIVERIES_SQLITE: &str = "WITH v (did, st, nat, fl, ts, lu) AS (SELECT \
     value->>0, value->>1, value->>2, value->>3, value->>4, value->>5 FROM json_each($1)) \
     UPDATE webhook_deliveries SET status = v.st, next_attempt_at = v.nat, failures = v.fl, \
     lease_owner = NULL, lease_until = NULL, updated_at = v.ts \
     FROM v WHERE webhook_deliveries.id = v.did AND webhook_deliveries.lease_owner = $2 \
     AND webhook_deliveries.lease_until = v.lu RETURNING webhook_deliveries.id";

/// The attempts of the updated deliveries, one row per attempt from the JSON array bound as
/// `$1` (`[[delivery_id, attempted_at, status, latency_ms, error, body, headers], …]`), each
/// numbered after the delivery's last attempt (read from the primary key index). Run it only
/// in a [`begin_bookkeeping`] transaction, like [`FINISH_DELIVERIES_PG`].
pub const INSERT_ATTEMPTS_PG: &str = "WITH v AS (SELECT x->>0 AS did, (x->>1)::bigint AS at, \
     (x->>2)::bigint AS rs, (x->>3)::bigint AS lat, x->>4 AS err, x->>5 AS body, x->>6 AS hdrs \
     FROM jsonb_array_elements($1::jsonb) AS x) \
     INSERT INTO webhook_attempts (delivery_id, attempt_no, attempted_at, response_status, \
     latency_ms, error, response_body, request_headers) \
     SELECT v.did, COALESCE((SELECT MAX(a.attempt_no) FROM webhook_attempts a \
     WHERE a.delivery_id = v.did), 0) + 1, v.at, v.rs, v.lat, v.err, v.body, v.hdrs FROM v";
/// [`INSERT_ATTEMPTS_PG`] for SQLite (`json_each`).
const INSERT_ATTEMPTS_SQLITE: &str = "WITH v (did, at, rs, lat, err, body, hdrs) AS (SELECT \
     value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6 \
     FROM json_each($1)) \
     INSERT INTO webhook_attempts (delivery_id, attempt_no, attempted_at, response_status, \
     latency_ms, error, response_body, request_headers) \
     SELECT v.did, COALESCE((SELECT MAX(a.attempt_no) FROM webhook_attempts a \
     WHERE a.delivery_id = v.did), 0) + 1, v.at, v.rs, v.lat, v.err, v.body, v.hdrs FROM v";

impl WebhookStore<'_> {
    /// Records `outcomes` (at most [`MAX_FINISH_BATCH`]) in one transaction: each delivery moves
    /// on ([`NextStep`]) and `owner`'s lease on it is released, its attempt is stored with the
    /// next attempt number, and on [`NextStep::Gone`] its subscription is disabled. A delivery
    /// whose lease `owner` no longer holds gets nothing written (neither its update nor its
    /// attempt nor the disabling). Returns the ids of the deliveries recorded.
    ///
    /// Three statements whatever the batch size, each with the same text for every batch (the
    /// rows travel as one JSON array parameter): one `UPDATE … FROM` for the deliveries
    /// (guarded by the lease), one `INSERT … SELECT` for the attempts of the rows it updated
    /// (the attempt number read from the primary key index in the same statement), and one
    /// `UPDATE` of the subscriptions that answered 410, if any.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`]; nothing is written then.
    pub async fn finish_all(
        &self,
        owner: &str,
        outcomes: &[&Outcome],
    ) -> Result<HashSet<String>, StoreError> {
        if outcomes.is_empty() {
            return Ok(HashSet::new());
        }
        if outcomes.len() > MAX_FINISH_BATCH {
            return Err(StoreError::Invalid(format!(
                "{} outcomes in one batch (at most {MAX_FINISH_BATCH})",
                outcomes.len()
            )));
        }
        // One outcome per delivery, the latest claim's: an earlier claim's outcome of a delivery
        // claimed again (its lease lapsed) cannot be recorded — the row carries the later lease
        // — and offered beside the later one it would put two attempts under one number.
        let mut latest: HashMap<&str, i64> = HashMap::with_capacity(outcomes.len());
        for o in outcomes {
            let lease = latest.entry(o.job.delivery_id.as_str()).or_insert(i64::MIN);
            *lease = (*lease).max(o.job.lease_until);
        }
        let outcomes: Vec<&Outcome> = outcomes
            .iter()
            .copied()
            .filter(|o| latest[o.job.delivery_id.as_str()] == o.job.lease_until)
            .collect();
        let outcomes = outcomes.as_slice();
        let (finish_sql, attempts_sql) = match self.db.backend() {
            Backend::Postgres => (FINISH_DELIVERIES_PG, INSERT_ATTEMPTS_PG),
            Backend::Sqlite => (FINISH_DELIVERIES_SQLITE, INSERT_ATTEMPTS_SQLITE),
        };
        let rows: Vec<_> = outcomes
            .iter()
            .map(|o| {
                let (status, next_at, failures) = o.delivery_update();
                (
                    &o.job.delivery_id,
                    status,
                    next_at,
                    failures,
                    o.now,
                    o.job.lease_until,
                )
            })
            .collect();
        let rows = serde_json::to_string(&rows).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let mut tx = begin_bookkeeping(self.db).await?;
        // Prepared; on PostgreSQL planned by index only ([`begin_bookkeeping`]): a generic plan
        // made on a new database hash-joined a sequential scan of the deliveries.
        let recorded = sqlx::query(finish_sql)
            .bind(rows)
            .bind(owner)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<HashSet<_>, _>>()?;
        let ours = |o: &&&Outcome| recorded.contains(&o.job.delivery_id);
        let attempts: Vec<_> = outcomes
            .iter()
            .filter(ours)
            .filter_map(|o| {
                let a = o.attempt.as_ref()?;
                Some((
                    &o.job.delivery_id,
                    a.attempted_at,
                    a.response_status,
                    a.latency_ms,
                    a.error.as_deref(),
                    a.response_body.as_deref(),
                    a.headers_json(),
                ))
            })
            .collect();
        if !attempts.is_empty() {
            let attempts =
                serde_json::to_string(&attempts).map_err(|e| StoreError::Invalid(e.to_string()))?;
            sqlx::query(attempts_sql)
                .bind(attempts)
                .execute(&mut *tx)
                .await?;
        }
        let mut gone: Vec<String> = outcomes
            .iter()
            .filter(ours)
            .filter(|o| o.next == NextStep::Gone)
            .filter_map(|o| Some(o.job.subscription.as_ref()?.id.clone()))
            .collect();
        gone.sort_unstable();
        gone.dedup();
        if !gone.is_empty() {
            let sql = format!(
                "UPDATE webhook_subscriptions SET enabled = 0, \
                 disabled_reason = 'receiver answered 410 Gone' WHERE id IN ({})",
                placeholders(gone.len())
            );
            bind_all(sqlx::query(&sql), &gone).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(recorded)
    }
}
