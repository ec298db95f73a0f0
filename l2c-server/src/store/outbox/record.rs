//! Recording attempts: many finished attempts in one transaction, each written only while its
//! dispatcher still holds the delivery's lease.

use std::collections::HashSet;

use sqlx::Row;

use super::WebhookStore;
use super::queue::{AttemptRecord, Job, NextStep};
use crate::store::StoreError;
use crate::store::sql::{begin_write, bind_all, placeholders};

/// The most outcomes [`WebhookStore::finish_all`] writes in one statement (bind parameters stay
/// far below SQLite's and PostgreSQL's limits).
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

/// `($1, $2, $3), ($4, $5, $6), …`: `rows` tuples of `width` placeholders, numbered from
/// `first`.
fn value_rows(rows: usize, width: usize, first: usize) -> String {
    (0..rows)
        .map(|r| {
            let cols = (0..width)
                .map(|c| format!("${}", first + r * width + c))
                .collect::<Vec<_>>()
                .join(", ");
            format!("({cols})")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl WebhookStore<'_> {
    /// Records `outcomes` (at most [`MAX_FINISH_BATCH`]) in one transaction: each delivery moves
    /// on ([`NextStep`]) and `owner`'s lease on it is released, its attempt is stored with the
    /// next attempt number, and on [`NextStep::Gone`] its subscription is disabled. A delivery
    /// whose lease `owner` no longer holds gets nothing written (neither its update nor its
    /// attempt nor the disabling). Returns the ids of the deliveries recorded.
    ///
    /// Three statements whatever the batch size: one `UPDATE … FROM (VALUES …)` for the
    /// deliveries (guarded by the lease), one multi-row `INSERT … SELECT` for the attempts of
    /// the rows it updated (the attempt number read from the primary key index in the same
    /// statement), and one `UPDATE` of the subscriptions that answered 410, if any.
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
        let mut tx = begin_write(self.db).await?;
        let sql = format!(
            "WITH v (did, st, nat, fl, ts, lu) AS (VALUES {}) \
             UPDATE webhook_deliveries SET status = v.st, next_attempt_at = v.nat, \
             failures = v.fl, lease_owner = NULL, lease_until = NULL, updated_at = v.ts \
             FROM v WHERE webhook_deliveries.id = v.did AND webhook_deliveries.lease_owner = ${} \
             AND webhook_deliveries.lease_until = v.lu \
             RETURNING id",
            value_rows(outcomes.len(), 6, 1),
            outcomes.len() * 6 + 1
        );
        let query = outcomes.iter().fold(sqlx::query(&sql), |q, o| {
            let (status, next_at, failures) = o.delivery_update();
            q.bind(&o.job.delivery_id)
                .bind(status)
                .bind(next_at)
                .bind(failures)
                .bind(o.now)
                .bind(o.job.lease_until)
        });
        let recorded = query
            .bind(owner)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>("id"))
            .collect::<Result<HashSet<_>, _>>()?;
        let ours = |o: &&&Outcome| recorded.contains(&o.job.delivery_id);
        let attempts: Vec<(&str, &AttemptRecord)> = outcomes
            .iter()
            .filter(ours)
            .filter_map(|o| Some((o.job.delivery_id.as_str(), o.attempt.as_ref()?)))
            .collect();
        if !attempts.is_empty() {
            let sql = format!(
                "WITH v (did, at, rs, lat, err, body, hdrs) AS (VALUES {}) \
                 INSERT INTO webhook_attempts (delivery_id, attempt_no, attempted_at, \
                 response_status, latency_ms, error, response_body, request_headers) \
                 SELECT v.did, COALESCE((SELECT MAX(a.attempt_no) FROM webhook_attempts a \
                 WHERE a.delivery_id = v.did), 0) + 1, v.at, v.rs, v.lat, v.err, v.body, v.hdrs \
                 FROM v",
                value_rows(attempts.len(), 7, 1)
            );
            attempts
                .iter()
                .fold(sqlx::query(&sql), |q, (id, a)| {
                    q.bind(*id)
                        .bind(a.attempted_at)
                        .bind(a.response_status.map(i64::from))
                        .bind(a.latency_ms)
                        .bind(a.error.as_deref())
                        .bind(a.response_body.as_deref())
                        .bind(a.headers_json())
                })
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
