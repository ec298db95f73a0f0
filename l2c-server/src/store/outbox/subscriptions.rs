//! Webhook subscriptions of one client: create (capped), list, get, delete, rotate the secret.

use l2c_core::ClientId;
use l2c_core::api::events::EventType;
use l2c_core::api::webhooks::Webhook;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{WebhookStore, join_events, parse_events};
use crate::domain::new_id;
use crate::seal::{DataKeys, Field};
use crate::store::sql::{begin_write, millis_to_cst};
use crate::store::{Backend, StoreError};

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
    /// Why the server disabled it (a receiver's 410 Gone), if it did.
    pub disabled_reason: Option<String>,
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

    pub(super) fn from_row(keys: &DataKeys, r: &AnyRow) -> Result<Self, StoreError> {
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
            disabled_reason: r.try_get("disabled_reason")?,
            created_at: r.try_get("created_at")?,
        })
    }
}

pub(super) const SUB_COLUMNS: &str = "id, client_id, url, events, secret, previous_secret, \
                           previous_secret_expires_at, enabled, disabled_reason, created_at";

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
            disabled_reason: None,
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

    /// One page (from 1) of the client's subscriptions, oldest first, and how many it holds.
    ///
    /// # Errors
    ///
    /// [`StoreError`].
    pub async fn list_page(
        &self,
        client: &ClientId,
        page: u32,
        page_size: u32,
    ) -> Result<(Vec<Subscription>, u64), StoreError> {
        let total: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM webhook_subscriptions WHERE client_id = $1")
                .bind(client.as_str())
                .fetch_one(self.db.pool())
                .await?
                .try_get("n")?;
        let items = sqlx::query(&format!(
            "SELECT {SUB_COLUMNS} FROM webhook_subscriptions WHERE client_id = $1 \
             ORDER BY created_at, id LIMIT $2 OFFSET $3"
        ))
        .bind(client.as_str())
        .bind(i64::from(page_size))
        .bind(i64::from(page.saturating_sub(1)) * i64::from(page_size))
        .fetch_all(self.db.pool())
        .await?
        .iter()
        .map(|r| Subscription::from_row(self.db.data_keys(), r))
        .collect::<Result<_, _>>()?;
        Ok((items, u64::try_from(total).unwrap_or(0)))
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
}
