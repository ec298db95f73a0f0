//! Lead sources (渠道接入): a client's push URLs for the ad platforms, with their channel
//! settings and secrets.
//!
//! The push URL's token is never stored: only its SHA-256 (lowercase hex), which is what a push
//! is looked up by, so the table alone does not let anyone push. The channel's own secret (聚光
//! token, 抖音 client secret, GENERIC key) is stored as given, since verifying a signature needs
//! it, and never returned by the API.

use std::fmt;

use l2c_core::ClientId;
use l2c_core::api::lead_sources::{Channel, LeadSourceView};
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::sql::millis_to_cst;
use super::{Db, StoreError};
use crate::domain::new_id;
use crate::seal::{DataKeys, Field};

/// Lead source queries. Get one with [`Db::lead_sources`].
#[derive(Debug, Clone, Copy)]
pub struct LeadSourceStore<'a> {
    db: &'a Db,
}

impl Db {
    /// The lead sources.
    pub fn lead_sources(&self) -> LeadSourceStore<'_> {
        LeadSourceStore { db: self }
    }
}

/// A stored lead source. `Debug` never shows the secret.
#[derive(Clone, PartialEq)]
pub struct StoredSource {
    /// `lsrc_…`.
    pub id: String,
    /// The owning client.
    pub client_id: ClientId,
    /// The platform.
    pub channel: Channel,
    /// The name.
    pub name: String,
    /// The settings, without the secret.
    pub settings: Value,
    /// The channel's signing secret.
    pub secret: Option<String>,
    /// Whether the server generated `secret` (a rotation then replaces it).
    pub secret_generated: bool,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds.
    pub updated_at: i64,
}

impl fmt::Debug for StoredSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredSource")
            .field("id", &self.id)
            .field("client_id", &self.client_id)
            .field("channel", &self.channel)
            .field("name", &self.name)
            .field("settings", &self.settings)
            .field("has_secret", &self.secret.is_some())
            .finish_non_exhaustive()
    }
}

impl StoredSource {
    /// The API view (no secret).
    pub fn to_view(&self) -> LeadSourceView {
        LeadSourceView::new(
            self.id.clone(),
            self.channel,
            self.name.clone(),
            self.settings.clone(),
            self.secret.is_some(),
            millis_to_cst(self.created_at),
            millis_to_cst(self.updated_at),
        )
    }
}

/// A new source to store.
#[derive(Debug, Clone, Copy)]
pub struct NewSource<'a> {
    /// The owning client.
    pub client: &'a ClientId,
    /// The platform.
    pub channel: Channel,
    /// The name.
    pub name: &'a str,
    /// The validated settings, without the secret.
    pub settings: &'a Value,
    /// The channel's secret.
    pub secret: Option<&'a str>,
    /// Whether the server generated it.
    pub secret_generated: bool,
    /// SHA-256 hex of the push URL's token.
    pub token_hash: &'a str,
}

/// What an update does to the stored secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretUpdate<'a> {
    /// Leave it.
    Keep,
    /// Replace it (`generated`: by the server).
    Set {
        /// The new secret.
        secret: &'a str,
        /// Whether the server generated it.
        generated: bool,
    },
    /// Remove it.
    Remove,
}

const COLUMNS: &str = "id, client_id, channel, name, settings, secret, secret_generated, \
                       created_at, updated_at";

fn from_row(keys: &DataKeys, r: &AnyRow) -> Result<StoredSource, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        table: "lead_sources",
        detail,
    };
    let channel: String = r.try_get("channel")?;
    let settings: String = r.try_get("settings")?;
    let id: String = r.try_get("id")?;
    let secret: Option<String> = r.try_get("secret")?;
    Ok(StoredSource {
        secret: keys.open_opt(Field::LeadSourceSecret, &id, secret.as_deref())?,
        id,
        client_id: ClientId::new(r.try_get::<String, _>("client_id")?),
        channel: channel.parse().map_err(|e| corrupt(format!("{e}")))?,
        name: r.try_get("name")?,
        settings: serde_json::from_str(&settings).map_err(|e| corrupt(format!("settings: {e}")))?,
        secret_generated: r.try_get::<i64, _>("secret_generated")? == 1,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

impl LeadSourceStore<'_> {
    /// Stores a new source.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] when the insert fails.
    pub async fn create(&self, new: NewSource<'_>) -> Result<StoredSource, StoreError> {
        let now = self.db.now_millis();
        let id = new_id("lsrc");
        sqlx::query(
            "INSERT INTO lead_sources (id, client_id, channel, name, settings, secret, \
             secret_generated, token_hash, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
        )
        .bind(&id)
        .bind(new.client.as_str())
        .bind(new.channel.as_str())
        .bind(new.name)
        .bind(new.settings.to_string())
        .bind(
            self.db
                .data_keys()
                .seal_opt(Field::LeadSourceSecret, &id, new.secret),
        )
        .bind(i64::from(new.secret_generated))
        .bind(new.token_hash)
        .bind(now)
        .execute(self.db.pool())
        .await?;
        Ok(StoredSource {
            id,
            client_id: new.client.clone(),
            channel: new.channel,
            name: new.name.to_owned(),
            settings: new.settings.clone(),
            secret: new.secret.map(str::to_owned),
            secret_generated: new.secret_generated,
            created_at: now,
            updated_at: now,
        })
    }

    /// How many sources `client` holds.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] when the query fails.
    pub async fn count(&self, client: &ClientId) -> Result<i64, StoreError> {
        Ok(
            sqlx::query("SELECT COUNT(*) AS n FROM lead_sources WHERE client_id = $1")
                .bind(client.as_str())
                .fetch_one(self.db.pool())
                .await?
                .try_get("n")?,
        )
    }

    /// One page of `client`'s sources, oldest first, and the total.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when a query fails or a row is corrupt.
    pub async fn list(
        &self,
        client: &ClientId,
        page: u32,
        page_size: u32,
    ) -> Result<(Vec<StoredSource>, u64), StoreError> {
        let total = self.count(client).await?;
        let offset = i64::from(page.saturating_sub(1)) * i64::from(page_size);
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM lead_sources WHERE client_id = $1 \
             ORDER BY created_at, id LIMIT $2 OFFSET $3"
        ))
        .bind(client.as_str())
        .bind(i64::from(page_size))
        .bind(offset)
        .fetch_all(self.db.pool())
        .await?;
        let items = rows
            .iter()
            .map(|r| from_row(self.db.data_keys(), r))
            .collect::<Result<_, _>>()?;
        Ok((items, u64::try_from(total).unwrap_or(0)))
    }

    /// `client`'s source `id`; `None` when it does not exist or is another client's.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the query fails or the row is corrupt.
    pub async fn get(
        &self,
        client: &ClientId,
        id: &str,
    ) -> Result<Option<StoredSource>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM lead_sources WHERE id = $1 AND client_id = $2"
        ))
        .bind(id)
        .bind(client.as_str())
        .fetch_optional(self.db.pool())
        .await?;
        row.as_ref()
            .map(|r| from_row(self.db.data_keys(), r))
            .transpose()
    }

    /// The source whose push token hashes to `token_hash`.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the query fails or the row is corrupt.
    pub async fn by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<StoredSource>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM lead_sources WHERE token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(self.db.pool())
        .await?;
        row.as_ref()
            .map(|r| from_row(self.db.data_keys(), r))
            .transpose()
    }

    /// Changes `client`'s source `id`: the name and settings when given, the secret as `secret`
    /// says. `None` when there is no such source for the client.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when a query fails.
    pub async fn update(
        &self,
        client: &ClientId,
        id: &str,
        name: Option<&str>,
        settings: Option<&Value>,
        secret: SecretUpdate<'_>,
    ) -> Result<Option<StoredSource>, StoreError> {
        let now = self.db.now_millis();
        let (set_secret, secret_value, generated) = match secret {
            SecretUpdate::Keep => (0_i64, None, 0_i64),
            SecretUpdate::Set { secret, generated } => (1, Some(secret), i64::from(generated)),
            SecretUpdate::Remove => (1, None, 0),
        };
        let n = sqlx::query(
            "UPDATE lead_sources SET \
               name = COALESCE($3, name), \
               settings = COALESCE($4, settings), \
               secret = CASE WHEN $5 = 1 THEN $6 ELSE secret END, \
               secret_generated = CASE WHEN $5 = 1 THEN $7 ELSE secret_generated END, \
               updated_at = $8 \
             WHERE id = $1 AND client_id = $2",
        )
        .bind(id)
        .bind(client.as_str())
        .bind(name)
        .bind(settings.map(Value::to_string))
        .bind(set_secret)
        .bind(
            self.db
                .data_keys()
                .seal_opt(Field::LeadSourceSecret, id, secret_value),
        )
        .bind(generated)
        .bind(now)
        .execute(self.db.pool())
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(None);
        }
        self.get(client, id).await
    }

    /// Replaces the push token (the old URL stops working at once) and, when given, the
    /// generated secret. `None` when there is no such source for the client.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when a query fails.
    pub async fn rotate(
        &self,
        client: &ClientId,
        id: &str,
        token_hash: &str,
        generated_secret: Option<&str>,
    ) -> Result<Option<StoredSource>, StoreError> {
        let now = self.db.now_millis();
        let n = sqlx::query(
            "UPDATE lead_sources SET token_hash = $3, \
               secret = CASE WHEN $4 = 1 THEN $5 ELSE secret END, \
               updated_at = $6 \
             WHERE id = $1 AND client_id = $2",
        )
        .bind(id)
        .bind(client.as_str())
        .bind(token_hash)
        .bind(i64::from(generated_secret.is_some()))
        .bind(
            self.db
                .data_keys()
                .seal_opt(Field::LeadSourceSecret, id, generated_secret),
        )
        .bind(now)
        .execute(self.db.pool())
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(None);
        }
        self.get(client, id).await
    }

    /// Deletes `client`'s source `id` (its leads stay, still naming it); whether it existed.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] when the query fails.
    pub async fn delete(&self, client: &ClientId, id: &str) -> Result<bool, StoreError> {
        let n = sqlx::query("DELETE FROM lead_sources WHERE id = $1 AND client_id = $2")
            .bind(id)
            .bind(client.as_str())
            .execute(self.db.pool())
            .await?
            .rows_affected();
        Ok(n == 1)
    }
}
