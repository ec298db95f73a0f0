//! The outbox write: the events of a state change and their deliveries, in the caller's
//! transaction; and the test event (`PING`) queued for one subscription on request.

use l2c_core::ClientId;
use l2c_core::api::events::{EventData, EventType, Ping, WebhookEvent};
use l2c_core::api::webhooks::{Delivery, DeliveryStatus};
use sqlx::{AnyConnection, Row};

use super::{Subscription, WebhookStore, parse_events};
use crate::domain::new_id;
use crate::store::StoreError;
use crate::store::sql::{begin_write, bind_all, millis_to_cst};

/// The enabled subscriptions of client `$1`, with the event types each takes.
pub const SUBSCRIPTIONS_SQL: &str =
    "SELECT id, events FROM webhook_subscriptions WHERE client_id = $1 AND enabled = 1";

/// Rows written by one statement of [`enqueue_in`] at most (a sync has one event per payment
/// plus one, and a client few subscriptions, so this is one statement in practice).
const ROWS_PER_STATEMENT: usize = 100;

/// `rows` rows of `row(first placeholder)` joined by `, `, the placeholders numbered from
/// `shared + 1` (`$1` … `$shared` are bound once for every row), `width` per row.
fn values(rows: usize, shared: usize, width: usize, row: impl Fn(usize) -> String) -> String {
    (0..rows)
        .map(|r| row(shared + 1 + r * width))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The insert of `rows` outbox events, one statement: `$1` is `created_at`, `$2` the client,
/// then `(id, event_type, payload)` per event.
pub fn insert_events_sql(rows: usize) -> String {
    format!(
        "INSERT INTO webhook_events (id, client_id, event_type, payload, created_at) VALUES {}",
        values(rows, 2, 3, |p| format!(
            "(${p}, $2, ${}, ${}, $1)",
            p + 1,
            p + 2
        ))
    )
}

/// The insert of `rows` pending deliveries, one statement: `$1` is the time (created, updated
/// and first attempt), then `(id, subscription_id, event_id)` per delivery.
pub fn insert_deliveries_sql(rows: usize) -> String {
    format!(
        "INSERT INTO webhook_deliveries (id, subscription_id, event_id, status, failures, \
         next_attempt_at, created_at, updated_at) VALUES {}",
        values(rows, 1, 3, |p| format!(
            "(${p}, ${}, ${}, 'PENDING', 0, $1, $1, $1)",
            p + 1,
            p + 2
        ))
    )
}

/// Writes `events` (the data of one state change of an order owned by `client`) to the outbox:
/// one event row each, and one pending delivery per enabled subscription of `client` that
/// subscribed to the event's type. Call it with the transaction that applies the change.
///
/// Three round trips whatever the number of events and subscriptions (the subscriptions, the
/// events in one insert, the deliveries in one insert), two when no subscription takes them.
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
    let subs = sqlx::query(SUBSCRIPTIONS_SQL)
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
    let occurred = millis_to_cst(now);
    // (id, type, payload) of each event, and (id, subscription, event) of each delivery.
    let mut rows = Vec::with_capacity(events.len());
    let mut deliveries = Vec::new();
    for data in events {
        let event = WebhookEvent::new(WebhookEvent::new_id(), occurred, data.clone());
        let payload = serde_json::to_string(&event)
            .map_err(|e| StoreError::Invalid(format!("event not serialisable: {e}")))?;
        let event_type = event.event_type();
        for (sub_id, types) in &subs {
            if types.contains(&event_type) {
                deliveries.push([new_id("dlv"), sub_id.clone(), event.id.clone()]);
            }
        }
        rows.push([event.id, event_type.as_str().to_owned(), payload]);
    }
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let sql = insert_events_sql(chunk.len());
        let query = sqlx::query(&sql).bind(now).bind(client.as_str());
        bind_all(query, chunk.as_flattened())
            .execute(&mut *conn)
            .await?;
    }
    for chunk in deliveries.chunks(ROWS_PER_STATEMENT) {
        let sql = insert_deliveries_sql(chunk.len());
        bind_all(sqlx::query(&sql).bind(now), chunk.as_flattened())
            .execute(&mut *conn)
            .await?;
    }
    Ok(u64::try_from(deliveries.len()).unwrap_or(u64::MAX))
}

impl WebhookStore<'_> {
    /// Queues a `PING` test event ([`Ping`]) for `sub` alone, due now: one event and one
    /// delivery in one transaction, written by the same statements as [`enqueue_in`]. The
    /// dispatcher signs, sends, records and retries it like any other. Returns the pending
    /// delivery.
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
        let payload = serde_json::to_string(&event)
            .map_err(|e| StoreError::Invalid(format!("event not serialisable: {e}")))?;
        let id = new_id("dlv");
        let mut tx = begin_write(self.db).await?;
        sqlx::query(&insert_events_sql(1))
            .bind(now)
            .bind(&sub.client_id)
            .bind(&event.id)
            .bind(EventType::Ping.as_str())
            .bind(&payload)
            .execute(&mut *tx)
            .await?;
        sqlx::query(&insert_deliveries_sql(1))
            .bind(now)
            .bind(&id)
            .bind(sub.id.as_str())
            .bind(&event.id)
            .execute(&mut *tx)
            .await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_number_their_rows_after_the_shared_placeholders() {
        assert_eq!(
            insert_events_sql(2),
            "INSERT INTO webhook_events (id, client_id, event_type, payload, created_at) \
             VALUES ($3, $2, $4, $5, $1), ($6, $2, $7, $8, $1)"
        );
        assert_eq!(
            insert_deliveries_sql(2),
            "INSERT INTO webhook_deliveries (id, subscription_id, event_id, status, failures, \
             next_attempt_at, created_at, updated_at) VALUES \
             ($2, $3, $4, 'PENDING', 0, $1, $1, $1), ($5, $6, $7, 'PENDING', 0, $1, $1, $1)"
        );
    }
}
