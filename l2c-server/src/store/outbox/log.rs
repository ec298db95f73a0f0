//! The delivery log of a subscription (deliveries with their attempts, paged and filtered),
//! the signed bodies, redelivery of one delivery and recovery of every failed one since a time.

use std::collections::HashMap;

use l2c_core::ClientId;
use l2c_core::api::events::EventType;
use l2c_core::api::webhooks::{Delivery, DeliveryAttempt, DeliveryStatus};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Subscription, WebhookStore, corrupt};
use crate::store::StoreError;
use crate::store::sql::millis_to_cst;
use crate::store::sql::{bind_all, placeholders, placeholders_from};

/// Which deliveries a log page shows; `None` members do not filter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryFilter {
    /// Only deliveries in this status.
    pub status: Option<DeliveryStatus>,
    /// Only deliveries of this event type.
    pub event_type: Option<EventType>,
}

/// The stored name of a status (`PENDING`, `SUCCEEDED`, `FAILED`).
pub fn status_name(status: DeliveryStatus) -> &'static str {
    match status {
        DeliveryStatus::Succeeded => "SUCCEEDED",
        DeliveryStatus::Failed => "FAILED",
        _ => "PENDING",
    }
}

const DELIVERY_COLUMNS: &str = "d.id, d.event_id, e.event_type, d.status, d.next_attempt_at, \
                                d.created_at FROM webhook_deliveries d \
                                JOIN webhook_events e ON e.id = d.event_id";

/// A delivery row (`id, event_id, event_type, status, next_attempt_at, created_at`), without
/// its attempts.
fn delivery_from_row(r: &AnyRow) -> Result<Delivery, StoreError> {
    let status = match r.try_get::<String, _>("status")?.as_str() {
        "PENDING" => DeliveryStatus::Pending,
        "SUCCEEDED" => DeliveryStatus::Succeeded,
        "FAILED" => DeliveryStatus::Failed,
        other => return Err(corrupt(format!("delivery status `{other}`"))),
    };
    let event_type: EventType = r
        .try_get::<String, _>("event_type")?
        .parse()
        .map_err(|_| corrupt("event type"))?;
    let mut d = Delivery::new(
        r.try_get::<String, _>("id")?,
        r.try_get::<String, _>("event_id")?,
        event_type,
        status,
        millis_to_cst(r.try_get("created_at")?),
    );
    if status == DeliveryStatus::Pending {
        d.next_attempt_at = Some(millis_to_cst(r.try_get("next_attempt_at")?));
    }
    Ok(d)
}

impl WebhookStore<'_> {
    /// One page (from 1) of the deliveries of `sub` (a subscription the caller has already
    /// read as its owner's) that match `filter`, newest first, each with all its attempts, and
    /// how many match in all. Three queries whatever the page size: the count, the page, and
    /// the attempts of the whole page.
    ///
    /// # Errors
    ///
    /// [`StoreError`].
    pub async fn deliveries(
        &self,
        sub: &Subscription,
        filter: &DeliveryFilter,
        page: u32,
        page_size: u32,
    ) -> Result<(Vec<Delivery>, u64), StoreError> {
        let subscription_id = sub.id.as_str();
        // Only the filters given become conditions (a NULL parameter has no type on PostgreSQL).
        let mut conditions = String::from("d.subscription_id = $1");
        let mut args = vec![subscription_id.to_owned()];
        if let Some(s) = filter.status {
            args.push(status_name(s).to_owned());
            conditions.push_str(&format!(" AND d.status = ${}", args.len()));
        }
        if let Some(t) = filter.event_type {
            args.push(t.as_str().to_owned());
            conditions.push_str(&format!(" AND e.event_type = ${}", args.len()));
        }
        let count_sql = format!(
            "SELECT COUNT(*) AS n FROM webhook_deliveries d \
             JOIN webhook_events e ON e.id = d.event_id WHERE {conditions}"
        );
        let total: i64 = bind_all(sqlx::query(&count_sql), &args)
            .fetch_one(self.db.pool())
            .await?
            .try_get("n")?;
        let page_sql = format!(
            "SELECT {DELIVERY_COLUMNS} WHERE {conditions} \
             ORDER BY d.created_at DESC, d.id DESC LIMIT {} OFFSET {}",
            page_size,
            u64::from(page.saturating_sub(1)) * u64::from(page_size)
        );
        let rows = bind_all(sqlx::query(&page_sql), &args)
            .fetch_all(self.db.pool())
            .await?;
        let items = self.with_attempts(&rows).await?;
        Ok((items, u64::try_from(total).unwrap_or(0)))
    }

    /// The deliveries of `rows` with their attempts, loaded in one query.
    async fn with_attempts(&self, rows: &[AnyRow]) -> Result<Vec<Delivery>, StoreError> {
        let ids = rows
            .iter()
            .map(|r| r.try_get::<String, _>("id"))
            .collect::<Result<Vec<_>, _>>()?;
        let mut attempts = self.attempts_of(&ids).await?;
        rows.iter()
            .zip(&ids)
            .map(|(r, id)| {
                let mut d = delivery_from_row(r)?;
                d.attempts = attempts.remove(id).unwrap_or_default();
                Ok(d)
            })
            .collect()
    }

    /// The attempts of each of `ids`, in order, in one query (not one per delivery).
    async fn attempts_of(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, Vec<DeliveryAttempt>>, StoreError> {
        let mut by_delivery: HashMap<String, Vec<DeliveryAttempt>> = HashMap::new();
        if ids.is_empty() {
            return Ok(by_delivery);
        }
        let sql = format!(
            "SELECT delivery_id, attempted_at, response_status, latency_ms, error, \
             response_body, request_headers FROM webhook_attempts WHERE delivery_id IN ({}) \
             ORDER BY delivery_id, attempt_no",
            placeholders(ids.len())
        );
        for a in bind_all(sqlx::query(&sql), ids)
            .fetch_all(self.db.pool())
            .await?
        {
            let attempt = DeliveryAttempt::new(
                millis_to_cst(a.try_get("attempted_at")?),
                a.try_get::<Option<i64>, _>("response_status")?
                    .and_then(|s| u16::try_from(s).ok()),
                u64::try_from(a.try_get::<i64, _>("latency_ms")?).unwrap_or(0),
                a.try_get("error")?,
            )
            .with_exchange(
                a.try_get("response_body")?,
                a.try_get::<Option<String>, _>("request_headers")?
                    .map(|h| serde_json::from_str(&h))
                    .transpose()
                    .map_err(|_| corrupt("attempt request headers"))?
                    .unwrap_or_default(),
            );
            by_delivery
                .entry(a.try_get("delivery_id")?)
                .or_default()
                .push(attempt);
        }
        Ok(by_delivery)
    }

    /// The exact bodies (as signed and sent) of the client's events `event_ids`, by event id, in
    /// one query. Another client's events are left out.
    ///
    /// # Errors
    ///
    /// [`StoreError`].
    pub async fn payloads(
        &self,
        client: &ClientId,
        event_ids: &[String],
    ) -> Result<HashMap<String, String>, StoreError> {
        if event_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!(
            "SELECT id, payload FROM webhook_events WHERE client_id = $1 AND id IN ({})",
            placeholders_from(2, event_ids.len())
        );
        bind_all(sqlx::query(&sql).bind(client.as_str()), event_ids)
            .fetch_all(self.db.pool())
            .await?
            .iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("payload")?)))
            .collect()
    }

    /// Queues a delivery of `sub` (a subscription the caller has already read as its owner's)
    /// again: pending, due now, with a fresh retry schedule (a delivery already pending keeps
    /// its place). `Ok(None)` when `sub` has no such delivery.
    ///
    /// # Errors
    ///
    /// [`StoreError`].
    pub async fn redeliver(
        &self,
        sub: &Subscription,
        delivery_id: &str,
        now: i64,
    ) -> Result<Option<Delivery>, StoreError> {
        sqlx::query(
            "UPDATE webhook_deliveries SET status = 'PENDING', failures = 0, next_attempt_at = $1, \
             updated_at = $1 WHERE id = $2 AND subscription_id = $3 AND status <> 'PENDING'",
        )
        .bind(now)
        .bind(delivery_id)
        .bind(&sub.id)
        .execute(self.db.pool())
        .await?;
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} WHERE d.id = $1 AND d.subscription_id = $2"
        ))
        .bind(delivery_id)
        .bind(&sub.id)
        .fetch_all(self.db.pool())
        .await?;
        Ok(self.with_attempts(&rows).await?.into_iter().next())
    }

    /// Queues every failed delivery of `sub` created at or after `since` (unix ms) again, as
    /// [`redeliver`](Self::redeliver) does one, `batch` at a time (walking the deliveries once
    /// by creation time, so a delivery that fails again meanwhile is not requeued twice).
    /// Returns how many were queued.
    ///
    /// # Errors
    ///
    /// [`StoreError`]; the batches already requeued stay queued.
    pub async fn recover(
        &self,
        sub: &Subscription,
        since: i64,
        now: i64,
        batch: u32,
    ) -> Result<u64, StoreError> {
        let mut queued = 0;
        let mut after: (i64, String) = (since, String::new());
        loop {
            let rows = sqlx::query(
                "SELECT id, created_at FROM webhook_deliveries WHERE subscription_id = $1 \
                 AND status = 'FAILED' AND created_at >= $2 \
                 AND (created_at > $3 OR (created_at = $3 AND id > $4)) \
                 ORDER BY created_at, id LIMIT $5",
            )
            .bind(&sub.id)
            .bind(since)
            .bind(after.0)
            .bind(&after.1)
            .bind(i64::from(batch))
            .fetch_all(self.db.pool())
            .await?;
            let Some(last) = rows.last() else {
                return Ok(queued);
            };
            after = (last.try_get("created_at")?, last.try_get("id")?);
            let ids = rows
                .iter()
                .map(|r| r.try_get::<String, _>("id"))
                .collect::<Result<Vec<_>, _>>()?;
            let sql = format!(
                "UPDATE webhook_deliveries SET status = 'PENDING', failures = 0, \
                 next_attempt_at = $1, updated_at = $1 \
                 WHERE status = 'FAILED' AND id IN ({})",
                placeholders_from(2, ids.len())
            );
            queued += bind_all(sqlx::query(&sql).bind(now), &ids)
                .execute(self.db.pool())
                .await?
                .rows_affected();
            if rows.len() < usize::try_from(batch).unwrap_or(usize::MAX) {
                return Ok(queued);
            }
        }
    }
}
