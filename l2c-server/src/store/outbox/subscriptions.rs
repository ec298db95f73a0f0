//! Webhook subscriptions of one client: create (capped), list, get, delete, rotate the secret
//! (staged) and promote the new one.

use l2c_core::ClientId;
use l2c_core::api::events::EventType;
use l2c_core::api::webhooks::{RotationStage, SecretRotation, Webhook};
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
    /// When the new secret was promoted to sign `X-L2C-Signature` (unix ms); `None` while a
    /// rotation is staged.
    pub secret_promoted_at: Option<i64>,
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

/// A rotation under way at some instant: its stage and when the previous secret stops signing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rotation {
    /// Which secret signs `X-L2C-Signature`.
    pub stage: RotationStage,
    /// When the previous secret stops signing (unix ms).
    pub previous_expires_at: i64,
    /// When the new secret was promoted (unix ms).
    pub promoted_at: Option<i64>,
}

impl Subscription {
    /// The rotation under way at `now` (unix ms): `None` once the previous secret's overlap
    /// has ended (or when there was never a rotation).
    pub fn rotation(&self, now: i64) -> Option<Rotation> {
        let until = self.previous_secret_expires_at?;
        if self.previous_secret.is_none() || now >= until {
            return None;
        }
        Some(Rotation {
            stage: if self.secret_promoted_at.is_some() {
                RotationStage::Promoted
            } else {
                RotationStage::Staged
            },
            previous_expires_at: until,
            promoted_at: self.secret_promoted_at,
        })
    }

    /// The secrets that sign at `now` (unix ms), the one for `X-L2C-Signature` first (see
    /// [`l2c_core::webhook::sign_headers`]): while a rotation is staged the previous secret,
    /// then the new one; once promoted the new one, then the previous one until its overlap
    /// ends; otherwise the current secret alone.
    pub fn signing_secrets(&self, now: i64) -> Vec<&str> {
        match (self.rotation(now), &self.previous_secret) {
            (Some(r), Some(prev)) if r.stage == RotationStage::Staged => {
                vec![prev.as_str(), self.secret.as_str()]
            }
            (Some(_), Some(prev)) => vec![self.secret.as_str(), prev.as_str()],
            _ => vec![self.secret.as_str()],
        }
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
        let rotation = self.rotation(now);
        w.previous_secret_expires_at = rotation.map(|r| millis_to_cst(r.previous_expires_at));
        w.secret_rotation = rotation.map(|r| {
            SecretRotation::new(
                r.stage,
                millis_to_cst(r.previous_expires_at),
                r.promoted_at.map(millis_to_cst),
            )
        });
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
            secret_promoted_at: r.try_get("secret_promoted_at")?,
            enabled: r.try_get::<i64, _>("enabled")? != 0,
            disabled_reason: r.try_get("disabled_reason")?,
            created_at: r.try_get("created_at")?,
        })
    }
}

pub(super) const SUB_COLUMNS: &str = "id, client_id, url, events, secret, previous_secret, \
                           previous_secret_expires_at, secret_promoted_at, enabled, \
                           disabled_reason, created_at";

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
            secret_promoted_at: None,
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

    /// Replaces the secret of one of the client's subscriptions with `new_secret`, staged: the
    /// secret `X-L2C-Signature` signs with at `now` becomes the previous one and keeps signing
    /// until `previous_expires_at` (or a promote). Rotating again while a rotation is staged
    /// keeps the previous secret (the one receivers of `X-L2C-Signature` still verify with)
    /// and discards the never-promoted new one. Returns the updated subscription.
    ///
    /// # Errors
    ///
    /// [`StoreError`].
    pub async fn rotate(
        &self,
        client: &ClientId,
        id: &str,
        new_secret: &str,
        now: i64,
        previous_expires_at: i64,
    ) -> Result<Option<Subscription>, StoreError> {
        // One statement: the stage is read and replaced atomically.
        let updated = sqlx::query(
            "UPDATE webhook_subscriptions SET previous_secret = CASE \
             WHEN previous_secret IS NOT NULL AND previous_secret_expires_at > $1 \
                  AND secret_promoted_at IS NULL THEN previous_secret ELSE secret END, \
             secret = $2, previous_secret_expires_at = $3, secret_promoted_at = NULL \
             WHERE client_id = $4 AND id = $5",
        )
        .bind(now)
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

    /// Promotes the new secret of a staged rotation at `now`: `X-L2C-Signature` signs with it
    /// from then on. `Ok(true)` when promoted; `Ok(false)` when the subscription has no staged
    /// rotation (none under way, already promoted, or another client's or an unknown id — the
    /// caller tells these apart with [`get`](Self::get)).
    ///
    /// # Errors
    ///
    /// [`StoreError`].
    pub async fn promote(&self, client: &ClientId, id: &str, now: i64) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE webhook_subscriptions SET secret_promoted_at = $1 \
             WHERE client_id = $2 AND id = $3 AND previous_secret IS NOT NULL \
             AND previous_secret_expires_at > $1 AND secret_promoted_at IS NULL",
        )
        .bind(now)
        .bind(client.as_str())
        .bind(id)
        .execute(self.db.pool())
        .await?
        .rows_affected();
        Ok(updated > 0)
    }
}
