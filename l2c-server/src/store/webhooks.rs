//! Webhook subscriptions, the event outbox, deliveries and their attempts (migration 0003).
//!
//! - [`enqueue_in`] writes the events of a state change **inside the caller's transaction**: one
//!   `webhook_events` row per event and one `webhook_deliveries` row per matching enabled
//!   subscription of the client whose order changed. Committing the change commits its events;
//!   rolling back loses both.
//! - [`WebhookStore`] (`db.webhooks()`) serves the `/api/mobile/webhooks` routes (always scoped to
//!   one client) and the dispatcher ([`WebhookStore::claim`], [`WebhookStore::job`],
//!   [`WebhookStore::finish`]).
//!
//! Secrets are stored as is (`whsec_…` text): the server needs the key itself to sign, so it
//! cannot keep a hash. Anyone who can read `webhook_subscriptions` can forge deliveries.
//!
//! ```no_run
//! # async fn demo(db: &l2c_server::store::Db, client: &l2c_core::ClientId,
//! #   events: Vec<l2c_core::api::events::EventData>) -> Result<(), l2c_server::store::StoreError> {
//! use l2c_server::store::{sql::begin_write, webhooks::enqueue_in};
//!
//! let mut tx = begin_write(db).await?;
//! // … apply the state change with `&mut tx` …
//! enqueue_in(&mut tx, client, &events, db.now_millis()).await?;
//! tx.commit().await?;
//! # Ok(()) }
//! ```

use crate::seal::{DataKeys, Field};
use std::collections::HashMap;

use l2c_core::ClientId;
use l2c_core::api::events::{EventData, EventType, WebhookEvent};
use l2c_core::api::webhooks::{Delivery, DeliveryAttempt, DeliveryStatus, Webhook};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::sql::{begin_write, millis_to_cst};
use super::{Backend, Db, StoreError};
use crate::domain::new_id;

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

fn corrupt(detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        table: "webhook_subscriptions",
        detail: detail.into(),
    }
}

/// `ORDER_CREATED,PAYMENT_RECEIVED` → the types.
fn parse_events(s: &str) -> Result<Vec<EventType>, StoreError> {
    s.split(',')
        .filter(|t| !t.is_empty())
        .map(|t| t.parse().map_err(|_| corrupt(format!("event type `{t}`"))))
        .collect()
}

fn join_events(events: &[EventType]) -> String {
    events
        .iter()
        .map(|e| e.as_str())
        .collect::<Vec<_>>()
        .join(",")
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

/// A stored subscription.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Subscription {
    /// `wh_…`.
    pub id: String,
    /// The owner.
    pub client_id: String,
    /// The receiver's URL.
    pub url: String,
    /// The subscribed types.
    pub events: Vec<EventType>,
    /// The current secret (`whsec_…`).
    pub secret: String,
    /// The previous secret while a rotation window is open.
    pub previous_secret: Option<String>,
    /// When the previous secret stops signing (unix ms).
    pub previous_secret_expires_at: Option<i64>,
    /// Whether events are delivered.
    pub enabled: bool,
    /// Created (unix ms).
    pub created_at: i64,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .field("client_id", &self.client_id)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

impl Subscription {
    /// The secrets that sign at `now` (unix ms): the current one, then the previous one while
    /// its window is open.
    pub fn signing_secrets(&self, now: i64) -> Vec<&str> {
        let mut v = vec![self.secret.as_str()];
        if let (Some(prev), Some(until)) = (&self.previous_secret, self.previous_secret_expires_at)
        {
            if now < until {
                v.push(prev);
            }
        }
        v
    }

    /// The wire view (no secret). The rotation expiry is shown only while it is in the future.
    pub fn to_wire(&self, now: i64) -> Webhook {
        let mut w = Webhook::new(
            self.id.as_str(),
            self.url.clone(),
            self.events.clone(),
            millis_to_cst(self.created_at),
        );
        w.enabled = self.enabled;
        w.previous_secret_expires_at = self
            .previous_secret_expires_at
            .filter(|t| *t > now && self.previous_secret.is_some())
            .map(millis_to_cst);
        w
    }

    fn from_row(keys: &DataKeys, r: &AnyRow) -> Result<Self, StoreError> {
        let id: String = r.try_get("id")?;
        let secret: String = r.try_get("secret")?;
        let previous: Option<String> = r.try_get("previous_secret")?;
        Ok(Self {
            secret: keys.open(Field::WebhookSecret, &id, &secret)?,
            previous_secret: keys.open_opt(Field::WebhookSecret, &id, previous.as_deref())?,
            id,
            client_id: r.try_get("client_id")?,
            url: r.try_get("url")?,
            events: parse_events(&r.try_get::<String, _>("events")?)?,
            previous_secret_expires_at: r.try_get("previous_secret_expires_at")?,
            enabled: r.try_get::<i64, _>("enabled")? != 0,
            created_at: r.try_get("created_at")?,
        })
    }
}

const SUB_COLUMNS: &str = "id, client_id, url, events, secret, previous_secret, \
                           previous_secret_expires_at, enabled, created_at";

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
}

impl AttemptRecord {
    /// A record.
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
        }
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

/// `$1, $2, …, $n`.
fn placeholders(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `query` with every id bound in order (for [`placeholders`]).
fn bind_all<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ids: &'q [String],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    ids.iter().fold(query, |query, id| query.bind(id))
}

/// What one [`WebhookStore::purge`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Finished deliveries (with their attempts).
    pub deliveries: u64,
    /// Events no delivery referred to any more.
    pub events: u64,
}

/// Webhook reads and writes. Get one with [`Db::webhooks`].
#[derive(Debug, Clone, Copy)]
pub struct WebhookStore<'a> {
    db: &'a Db,
}

impl Db {
    /// Webhook subscriptions and deliveries.
    pub fn webhooks(&self) -> WebhookStore<'_> {
        WebhookStore { db: self }
    }
}

impl WebhookStore<'_> {
    /// Creates a subscription unless the client already holds `max` of them; `None` then.
    ///
    /// The count and the insert are one transaction that holds the client's write lock: on
    /// PostgreSQL a transaction-scoped advisory lock keyed by the client id (taken whether or
    /// not the client row still exists), on SQLite `BEGIN IMMEDIATE`, which serialises writers.
    /// Parallel creates of one client therefore never end above `max`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub async fn create(
        &self,
        client: &ClientId,
        url: &str,
        events: &[EventType],
        secret: &str,
        now: i64,
        max: usize,
    ) -> Result<Option<Subscription>, StoreError> {
        let sub = Subscription {
            id: new_id("wh"),
            client_id: client.as_str().to_owned(),
            url: url.to_owned(),
            events: events.to_vec(),
            secret: secret.to_owned(),
            previous_secret: None,
            previous_secret_expires_at: None,
            enabled: true,
            created_at: now,
        };
        let mut tx = begin_write(self.db).await?;
        if self.db.backend() == Backend::Postgres {
            // Held until commit or rollback; a second create of this client waits here.
            sqlx::query(
                "SELECT COUNT(*) AS locked FROM \
                 (SELECT pg_advisory_xact_lock(hashtextextended($1, 0))) AS l",
            )
            .bind(&sub.client_id)
            .fetch_one(&mut *tx)
            .await?;
        }
        let held: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM webhook_subscriptions WHERE client_id = $1")
                .bind(&sub.client_id)
                .fetch_one(&mut *tx)
                .await?
                .try_get("n")?;
        if usize::try_from(held).unwrap_or(usize::MAX) >= max {
            tx.rollback().await?;
            return Ok(None);
        }
        sqlx::query(
            "INSERT INTO webhook_subscriptions (id, client_id, url, events, secret, enabled, \
             created_at) VALUES ($1, $2, $3, $4, $5, 1, $6)",
        )
        .bind(&sub.id)
        .bind(&sub.client_id)
        .bind(&sub.url)
        .bind(join_events(&sub.events))
        .bind(
            self.db
                .data_keys()
                .seal(Field::WebhookSecret, &sub.id, &sub.secret),
        )
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(sub))
    }

    /// The client's subscriptions, oldest first.
    ///
    /// # Errors
    ///
    /// [`StoreError`].
    pub async fn list(&self, client: &ClientId) -> Result<Vec<Subscription>, StoreError> {
        sqlx::query(&format!(
            "SELECT {SUB_COLUMNS} FROM webhook_subscriptions WHERE client_id = $1 \
             ORDER BY created_at, id"
        ))
        .bind(client.as_str())
        .fetch_all(self.db.pool())
        .await?
        .iter()
        .map(|r| Subscription::from_row(self.db.data_keys(), r))
        .collect()
    }

    /// One of the client's subscriptions (`None` for another client's or an unknown id).
    ///
    /// # Errors
    ///
    /// [`StoreError`].
    pub async fn get(
        &self,
        client: &ClientId,
        id: &str,
    ) -> Result<Option<Subscription>, StoreError> {
        sqlx::query(&format!(
            "SELECT {SUB_COLUMNS} FROM webhook_subscriptions WHERE client_id = $1 AND id = $2"
        ))
        .bind(client.as_str())
        .bind(id)
        .fetch_optional(self.db.pool())
        .await?
        .as_ref()
        .map(|r| Subscription::from_row(self.db.data_keys(), r))
        .transpose()
    }

    /// Deletes one of the client's subscriptions with its deliveries and attempts. Returns
    /// whether it existed.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub async fn delete(&self, client: &ClientId, id: &str) -> Result<bool, StoreError> {
        let mut tx = begin_write(self.db).await?;
        let owned =
            sqlx::query("SELECT id FROM webhook_subscriptions WHERE client_id = $1 AND id = $2")
                .bind(client.as_str())
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
        if !owned {
            return Ok(false);
        }
        if self.db.backend() == Backend::Postgres {
            // Deliveries before attempts, the order the purge and `finish` lock them in: taking
            // the attempts first could deadlock with a purge of the same deliveries.
            sqlx::query("SELECT id FROM webhook_deliveries WHERE subscription_id = $1 FOR UPDATE")
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
        }
        sqlx::query(
            "DELETE FROM webhook_attempts WHERE delivery_id IN \
             (SELECT id FROM webhook_deliveries WHERE subscription_id = $1)",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        // Attempts a dispatcher commits meanwhile go with their delivery (ON DELETE CASCADE).
        sqlx::query("DELETE FROM webhook_deliveries WHERE subscription_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM webhook_subscriptions WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Replaces the secret of one of the client's subscriptions with `new_secret`; the current
    /// one keeps signing until `previous_expires_at`. Returns the updated subscription.
    ///
    /// # Errors
    ///
    /// [`StoreError`].
    pub async fn rotate(
        &self,
        client: &ClientId,
        id: &str,
        new_secret: &str,
        previous_expires_at: i64,
    ) -> Result<Option<Subscription>, StoreError> {
        let updated = sqlx::query(
            "UPDATE webhook_subscriptions SET previous_secret = secret, secret = $1, \
             previous_secret_expires_at = $2 WHERE client_id = $3 AND id = $4",
        )
        .bind(
            self.db
                .data_keys()
                .seal(Field::WebhookSecret, id, new_secret),
        )
        .bind(previous_expires_at)
        .bind(client.as_str())
        .bind(id)
        .execute(self.db.pool())
        .await?
        .rows_affected();
        if updated == 0 {
            return Ok(None);
        }
        self.get(client, id).await
    }

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
            "SELECT delivery_id, attempted_at, response_status, latency_ms, error \
             FROM webhook_attempts WHERE delivery_id IN ({}) \
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

    /// Deletes up to `limit` finished deliveries (succeeded or failed) last updated before
    /// `cutoff` (unix ms) with their attempts, then up to `limit` events created before `cutoff`
    /// that no delivery refers to any more. Pending deliveries and their events are never
    /// touched, however old. Safe to run from several dispatchers at once.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub async fn purge(&self, cutoff: i64, limit: i64) -> Result<Purged, StoreError> {
        let lock = match self.db.backend() {
            // A concurrent redeliver waits for this transaction instead of requeueing a row
            // that is being deleted.
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let mut tx = begin_write(self.db).await?;
        let ids: Vec<String> = sqlx::query(&format!(
            "SELECT id FROM webhook_deliveries WHERE status IN ('SUCCEEDED', 'FAILED') \
             AND updated_at < $1 ORDER BY updated_at LIMIT $2{lock}"
        ))
        .bind(cutoff)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>("id"))
        .collect::<Result<_, _>>()?;
        let mut deliveries = 0;
        if !ids.is_empty() {
            let list = placeholders(ids.len());
            // Attempts first: SQLite enforces ON DELETE CASCADE only with `foreign_keys` on.
            let sql = format!("DELETE FROM webhook_attempts WHERE delivery_id IN ({list})");
            bind_all(sqlx::query(&sql), &ids).execute(&mut *tx).await?;
            let sql = format!("DELETE FROM webhook_deliveries WHERE id IN ({list})");
            deliveries = bind_all(sqlx::query(&sql), &ids)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        let events = sqlx::query(
            "DELETE FROM webhook_events WHERE id IN (SELECT e.id FROM webhook_events e \
             WHERE e.created_at < $1 AND NOT EXISTS \
             (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id) \
             ORDER BY e.created_at LIMIT $2)",
        )
        .bind(cutoff)
        .bind(limit)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(Purged { deliveries, events })
    }

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
        let lock = match self.db.backend() {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        // The due/lease condition is repeated outside the subquery so PostgreSQL re-checks it on
        // the row version it finally locks.
        let sql = format!(
            "UPDATE webhook_deliveries SET lease_owner = $1, lease_until = $2 \
             WHERE id IN (SELECT id FROM webhook_deliveries WHERE status = 'PENDING' \
               AND next_attempt_at <= $3 AND (lease_until IS NULL OR lease_until <= $3) \
               ORDER BY next_attempt_at LIMIT $4{lock}) \
             AND status = 'PENDING' AND (lease_until IS NULL OR lease_until <= $3) \
             RETURNING id"
        );
        let rows = sqlx::query(&sql)
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
                 response_status, latency_ms, error) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&job.delivery_id)
            .bind(n + 1)
            .bind(a.attempted_at)
            .bind(a.response_status.map(i64::from))
            .bind(a.latency_ms)
            .bind(a.error.as_deref())
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
