//! The delivery log of a subscription (deliveries with their attempts) and redelivery.

use std::collections::HashMap;

use l2c_core::ClientId;
use l2c_core::api::events::EventType;
use l2c_core::api::webhooks::{Delivery, DeliveryAttempt, DeliveryStatus};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{WebhookStore, corrupt};
use crate::store::StoreError;
use crate::store::sql::millis_to_cst;
use crate::store::sql::{bind_all, placeholders};

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
    /// The newest `limit` deliveries of one of the client's subscriptions with their attempts
    /// (`None` when the subscription is not the client's).
    ///
    /// # Errors
    ///
    /// [`StoreError`].
    pub async fn deliveries(
        &self,
        client: &ClientId,
        subscription_id: &str,
        limit: i64,
    ) -> Result<Option<Vec<Delivery>>, StoreError> {
        if self.get(client, subscription_id).await?.is_none() {
            return Ok(None);
        }
        let rows = sqlx::query(
            "SELECT d.id, d.event_id, e.event_type, d.status, d.next_attempt_at, d.created_at \
             FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id \
             WHERE d.subscription_id = $1 ORDER BY d.created_at DESC, d.id DESC LIMIT $2",
        )
        .bind(subscription_id)
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        let ids = rows
            .iter()
            .map(|r| r.try_get::<String, _>("id"))
            .collect::<Result<Vec<_>, _>>()?;
        let mut attempts = self.attempts_of(&ids).await?;
        let out = rows
            .iter()
            .zip(&ids)
            .map(|(r, id)| {
                let mut d = delivery_from_row(r)?;
                d.attempts = attempts.remove(id).unwrap_or_default();
                Ok(d)
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Some(out))
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

    /// Queues a delivery of one of the client's subscriptions again: pending, due now, with a
    /// fresh retry schedule (a delivery already pending keeps its place). `Ok(None)` when the
    /// subscription or delivery is not the client's.
    ///
    /// # Errors
    ///
    /// [`StoreError`].
    pub async fn redeliver(
        &self,
        client: &ClientId,
        subscription_id: &str,
        delivery_id: &str,
        now: i64,
    ) -> Result<Option<Delivery>, StoreError> {
        if self.get(client, subscription_id).await?.is_none() {
            return Ok(None);
        }
        sqlx::query(
            "UPDATE webhook_deliveries SET status = 'PENDING', failures = 0, next_attempt_at = $1, \
             updated_at = $1 WHERE id = $2 AND subscription_id = $3 AND status <> 'PENDING'",
        )
        .bind(now)
        .bind(delivery_id)
        .bind(subscription_id)
        .execute(self.db.pool())
        .await?;
        let row = sqlx::query(
            "SELECT d.id, d.event_id, e.event_type, d.status, d.next_attempt_at, d.created_at \
             FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id \
             WHERE d.id = $1 AND d.subscription_id = $2",
        )
        .bind(delivery_id)
        .bind(subscription_id)
        .fetch_optional(self.db.pool())
        .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        let mut d = delivery_from_row(&r)?;
        d.attempts = self
            .attempts_of(&[delivery_id.to_owned()])
            .await?
            .remove(delivery_id)
            .unwrap_or_default();
        Ok(Some(d))
    }
}
