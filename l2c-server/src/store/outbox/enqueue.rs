//! The outbox write: the events of a state change and their deliveries, in the caller's
//! transaction; and the test event (`PING`) queued for one subscription on request.

use l2c_core::ClientId;
use l2c_core::api::events::{EventData, EventType, Ping, WebhookEvent};
use l2c_core::api::webhooks::{Delivery, DeliveryStatus};
use sqlx::{AnyConnection, Row};

use super::{Subscription, WebhookStore, parse_events};
use crate::domain::new_id;
use crate::store::StoreError;
use crate::store::sql::{begin_write, millis_to_cst};

/// Writes one event row.
async fn insert_event(
    conn: &mut AnyConnection,
    client: &str,
    event: &WebhookEvent,
    now: i64,
) -> Result<(), StoreError> {
    let payload = serde_json::to_string(event)
        .map_err(|e| StoreError::Invalid(format!("event not serialisable: {e}")))?;
    sqlx::query(
        "INSERT INTO webhook_events (id, client_id, event_type, payload, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&event.id)
    .bind(client)
    .bind(event.event_type().as_str())
    .bind(&payload)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Writes one pending delivery, due at `now`; returns its id.
async fn insert_delivery(
    conn: &mut AnyConnection,
    subscription_id: &str,
    event_id: &str,
    now: i64,
) -> Result<String, StoreError> {
    let id = new_id("dlv");
    sqlx::query(
        "INSERT INTO webhook_deliveries (id, subscription_id, event_id, status, failures, \
         next_attempt_at, created_at, updated_at) VALUES ($1, $2, $3, 'PENDING', 0, $4, $4, $4)",
    )
    .bind(&id)
    .bind(subscription_id)
    .bind(event_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(id)
}

impl WebhookStore<'_> {
    /// Queues a `PING` test event ([`Ping`]) for `sub` alone, due now: one event and one
    /// delivery in one transaction. The dispatcher signs, sends, records and retries it like
    /// any other. Returns the pending delivery.
    ///
    /// # Errors
    ///
    /// [`StoreError`].
    pub async fn enqueue_ping(&self, sub: &Subscription, now: i64) -> Result<Delivery, StoreError> {
        let event = WebhookEvent::new(
            WebhookEvent::new_id(),
            millis_to_cst(now),
            EventData::Ping(Ping::new(sub.id.as_str(), sub.client_id.as_str())),
        );
        let mut tx = begin_write(self.db).await?;
        insert_event(&mut tx, &sub.client_id, &event, now).await?;
        let id = insert_delivery(&mut tx, &sub.id, &event.id, now).await?;
        tx.commit().await?;
        let mut d = Delivery::new(
            id,
            event.id,
            EventType::Ping,
            DeliveryStatus::Pending,
            millis_to_cst(now),
        );
        d.next_attempt_at = Some(millis_to_cst(now));
        Ok(d)
    }
}

/// Writes `events` (the data of one state change of an order owned by `client`) to the outbox:
/// one event row each, and one pending delivery per enabled subscription of `client` that
/// subscribed to the event's type. Call it with the transaction that applies the change.
///
/// Returns the number of deliveries queued.
///
/// # Errors
///
/// [`StoreError::Database`]; the caller then rolls the whole change back.
pub async fn enqueue_in(
    conn: &mut AnyConnection,
    client: &ClientId,
    events: &[EventData],
    now: i64,
) -> Result<u64, StoreError> {
    if events.is_empty() {
        return Ok(0);
    }
    let subs = sqlx::query(
        "SELECT id, events FROM webhook_subscriptions WHERE client_id = $1 AND enabled = 1",
    )
    .bind(client.as_str())
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| -> Result<(String, Vec<EventType>), StoreError> {
        Ok((
            r.try_get("id")?,
            parse_events(&r.try_get::<String, _>("events")?)?,
        ))
    })
    .collect::<Result<Vec<_>, _>>()?;
    let mut queued = 0;
    for data in events {
        let event = WebhookEvent::new(WebhookEvent::new_id(), millis_to_cst(now), data.clone());
        insert_event(conn, client.as_str(), &event, now).await?;
        for (sub_id, types) in &subs {
            if !types.contains(&event.event_type()) {
                continue;
            }
            insert_delivery(conn, sub_id, &event.id, now).await?;
            queued += 1;
        }
    }
    Ok(queued)
}
