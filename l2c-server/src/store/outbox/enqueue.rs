//! The outbox write: the events of a state change and their deliveries, in the caller's
//! transaction.

use l2c_core::ClientId;
use l2c_core::api::events::{EventData, EventType, WebhookEvent};
use sqlx::{AnyConnection, Row};

use super::parse_events;
use crate::domain::new_id;
use crate::store::StoreError;
use crate::store::sql::millis_to_cst;

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
        let payload = serde_json::to_string(&event)
            .map_err(|e| StoreError::Invalid(format!("event not serialisable: {e}")))?;
        sqlx::query(
            "INSERT INTO webhook_events (id, client_id, event_type, payload, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&event.id)
        .bind(client.as_str())
        .bind(event.event_type().as_str())
        .bind(&payload)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        for (sub_id, types) in &subs {
            if !types.contains(&event.event_type()) {
                continue;
            }
            sqlx::query(
                "INSERT INTO webhook_deliveries (id, subscription_id, event_id, status, failures, \
                 next_attempt_at, created_at, updated_at) VALUES ($1, $2, $3, 'PENDING', 0, $4, $4, $4)",
            )
            .bind(new_id("dlv"))
            .bind(sub_id)
            .bind(&event.id)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            queued += 1;
        }
    }
    Ok(queued)
}
