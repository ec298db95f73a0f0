//! Partner applications and their credentials.
//!
//! A client secret is 256 random bits, shown once at creation and stored only as its SHA-256
//! hash. Because the secret is high-entropy, a fast hash is enough (no password stretching);
//! verification compares hashes in constant time and does the same work for unknown ids.

use std::fmt;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use l2c_core::{ClientId, Scopes};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;
use subtle::ConstantTimeEq;

use super::{Db, StoreError, from_unix_millis};
use l2c_core::rate_limit::Quota;

/// The shortest secret [`ClientStore::create_with_secret`] accepts, in bytes.
pub const MIN_SECRET_LEN: usize = 32;

/// A registered client.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Client {
    /// The `client_id`.
    pub id: ClientId,
    /// A human-readable name.
    pub name: String,
    /// The scopes the client may request.
    pub scopes: Scopes,
    /// Its own quota; the server default when `None`.
    pub rate_limit: Option<Quota>,
    /// Whether it may read every customer rather than only those linked to its leads and orders.
    pub all_customers: bool,
    /// Whether it is barred from obtaining tokens.
    pub disabled: bool,
    /// When it was created.
    pub created_at: SystemTime,
    /// Until when the secret before the last roll still works (`None` when none does).
    pub previous_secret_expires_at: Option<SystemTime>,
}

/// What a new client is allowed to do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewClient {
    /// A human-readable name (not unique).
    pub name: String,
    /// The scopes it may request.
    pub scopes: Scopes,
    /// Its own quota; the server default when `None`.
    pub rate_limit: Option<Quota>,
    /// Whether it may read every customer.
    pub all_customers: bool,
}

impl NewClient {
    /// A client named `name` with the given scopes, the default quota and no all-customers grant.
    pub fn new(name: impl Into<String>, scopes: Scopes) -> Self {
        Self {
            name: name.into(),
            scopes,
            rate_limit: None,
            all_customers: false,
        }
    }

    /// Sets the client's own quota.
    #[must_use]
    pub fn rate_limit(mut self, rate: Quota) -> Self {
        self.rate_limit = Some(rate);
        self
    }

    /// Grants reading every customer.
    #[must_use]
    pub fn all_customers(mut self, yes: bool) -> Self {
        self.all_customers = yes;
        self
    }
}

/// A client secret in clear text, as returned once by [`ClientStore::create`].
///
/// `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(String);

impl ClientSecret {
    /// A fresh secret: 256 random bits, base64url without padding (43 characters, no `+`/`/`).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The secret, to show to the operator once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret(<redacted>)")
    }
}

/// The outcome of checking a client's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// The id exists and the secret matches.
    Valid(Client),
    /// Unknown id or wrong secret (deliberately not told apart).
    Invalid,
}

/// A hex SHA-256 no secret has, compared against when there is nothing to compare.
const NO_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn generate_client_id() -> ClientId {
    let mut bytes = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    ClientId::new(format!("l2c_{}", hex::encode(bytes)))
}

/// Queries on the `clients` table; get one from [`Db::clients`].
#[derive(Debug, Clone, Copy)]
pub struct ClientStore<'a> {
    db: &'a Db,
}

const COLUMNS: &str = "id, name, scopes, rate_limit, all_customers, disabled, created_at, \
                       previous_secret_hash, previous_secret_expires_at";

impl<'a> ClientStore<'a> {
    pub(super) fn new(db: &'a Db) -> Self {
        Self { db }
    }

    /// Registers a client with a freshly generated secret, returned here and never again.
    ///
    /// # Errors
    ///
    /// [`StoreError::Invalid`] for an empty name; [`StoreError::Database`] on a database failure.
    pub async fn create(&self, new: &NewClient) -> Result<(Client, ClientSecret), StoreError> {
        let secret = ClientSecret::generate();
        let client = self.insert(new, &secret).await?;
        Ok((client, secret))
    }

    /// Registers a client with a secret chosen by the caller (importing existing credentials).
    ///
    /// The secret must be at least [`MIN_SECRET_LEN`] bytes: it is hashed without stretching, so
    /// it has to be high-entropy.
    ///
    /// # Errors
    ///
    /// [`StoreError::Invalid`] for a short secret or an empty name; [`StoreError::Database`] on a
    /// database failure.
    pub async fn create_with_secret(
        &self,
        new: &NewClient,
        secret: &str,
    ) -> Result<Client, StoreError> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(StoreError::Invalid(format!(
                "a client secret must be at least {MIN_SECRET_LEN} bytes"
            )));
        }
        self.insert(new, &ClientSecret(secret.to_owned())).await
    }

    async fn insert(&self, new: &NewClient, secret: &ClientSecret) -> Result<Client, StoreError> {
        let name = new.name.trim();
        if name.is_empty() {
            return Err(StoreError::Invalid(
                "a client name must not be empty".into(),
            ));
        }
        let id = generate_client_id();
        let created_at = self.db.now_millis();
        sqlx::query(
            "INSERT INTO clients (id, name, secret_hash, scopes, rate_limit, all_customers, disabled, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 0, $7)",
        )
        .bind(id.as_str())
        .bind(name)
        .bind(hash_secret(secret.expose()))
        .bind(new.scopes.to_string())
        .bind(new.rate_limit.map(|r| r.to_string()))
        .bind(i64::from(new.all_customers))
        .bind(created_at)
        .execute(self.db.pool())
        .await?;
        Ok(Client {
            id,
            name: name.to_owned(),
            scopes: new.scopes,
            rate_limit: new.rate_limit,
            all_customers: new.all_customers,
            disabled: false,
            created_at: from_unix_millis(created_at),
            previous_secret_expires_at: None,
        })
    }

    /// Checks `secret` against the stored hash of client `id`, in constant time.
    ///
    /// After [`roll_secret`](Self::roll_secret), the previous secret is accepted too until its
    /// overlap ends. An unknown id costs the same hash-and-compare as a known one, so timing does
    /// not reveal which client ids exist.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] on a database failure.
    pub async fn verify(&self, id: &str, secret: &str) -> Result<Verified, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS}, secret_hash FROM clients WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.db.pool())
        .await?;
        let presented = hash_secret(secret);
        let Some(row) = row else {
            // Same work as the real comparison, against a hash no secret has.
            let _ = presented.as_bytes().ct_eq(NO_HASH.as_bytes());
            return Ok(Verified::Invalid);
        };
        let stored: String = row.try_get("secret_hash")?;
        let previous: Option<String> = row.try_get("previous_secret_hash")?;
        let previous_until: Option<i64> = row.try_get("previous_secret_expires_at")?;
        // Both comparisons always run (against a hash no secret has when there is none).
        let previous_ok = presented
            .as_bytes()
            .ct_eq(previous.as_deref().unwrap_or(NO_HASH).as_bytes());
        let previous_ok = bool::from(previous_ok)
            && previous.is_some()
            && previous_until.is_some_and(|t| self.db.now_millis() < t);
        let current_ok = bool::from(presented.as_bytes().ct_eq(stored.as_bytes()));
        if current_ok || previous_ok {
            Ok(Verified::Valid(client_from_row(&row)?))
        } else {
            Ok(Verified::Invalid)
        }
    }

    /// The client with this id.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] on a database failure.
    pub async fn get(&self, id: &str) -> Result<Option<Client>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM clients WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?;
        row.as_ref().map(client_from_row).transpose()
    }

    /// Every client, oldest first.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] on a database failure.
    pub async fn list(&self) -> Result<Vec<Client>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM clients ORDER BY created_at, id"
        ))
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(client_from_row).collect()
    }

    /// How many clients exist.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] on a database failure.
    pub async fn count(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM clients")
            .fetch_one(self.db.pool())
            .await?;
        Ok(row.try_get::<i64, _>("n")?)
    }

    /// Replaces the secret of client `id` with a fresh one, returned here and never again. The
    /// current secret keeps working for `overlap` (zero: it stops at once); a secret rolled
    /// before that is replaced. `None` if no such client.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] on a database failure.
    pub async fn roll_secret(
        &self,
        id: &str,
        overlap: std::time::Duration,
    ) -> Result<Option<(ClientSecret, SystemTime)>, StoreError> {
        let secret = ClientSecret::generate();
        let overlap_ms = i64::try_from(overlap.as_millis()).unwrap_or(i64::MAX / 4);
        let until = self.db.now_millis().saturating_add(overlap_ms);
        let done = sqlx::query(
            "UPDATE clients SET previous_secret_hash = secret_hash, secret_hash = $1, \
             previous_secret_expires_at = $2 WHERE id = $3",
        )
        .bind(hash_secret(secret.expose()))
        .bind(until)
        .bind(id)
        .execute(self.db.pool())
        .await?;
        Ok((done.rows_affected() > 0).then(|| (secret, from_unix_millis(until))))
    }

    /// Changes what client `id` may do: its scopes, and its own quota (`Some(None)`: back to the
    /// server default; `None`: unchanged). Running servers apply the quota within
    /// `--quota-refresh-secs`; new tokens carry the new scopes. `false` if no such client.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] on a database failure.
    pub async fn update(
        &self,
        id: &str,
        scopes: Option<Scopes>,
        rate_limit: Option<Option<Quota>>,
    ) -> Result<bool, StoreError> {
        let Some(current) = self.get(id).await? else {
            return Ok(false);
        };
        let scopes = scopes.unwrap_or(current.scopes);
        let rate_limit = rate_limit.unwrap_or(current.rate_limit);
        let done = sqlx::query("UPDATE clients SET scopes = $1, rate_limit = $2 WHERE id = $3")
            .bind(scopes.to_string())
            .bind(rate_limit.map(|r| r.to_string()))
            .bind(id)
            .execute(self.db.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Bars or re-allows a client from obtaining tokens; `false` if no such client.
    ///
    /// Tokens issued before remain valid until they expire.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] on a database failure.
    pub async fn set_disabled(&self, id: &str, disabled: bool) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE clients SET disabled = $1 WHERE id = $2")
            .bind(i64::from(disabled))
            .bind(id)
            .execute(self.db.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

fn client_from_row(row: &sqlx::any::AnyRow) -> Result<Client, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        table: "clients",
        detail,
    };
    let id: String = row.try_get("id")?;
    let scopes: String = row.try_get("scopes")?;
    let rate_limit: Option<String> = row.try_get("rate_limit")?;
    Ok(Client {
        scopes: scopes
            .parse()
            .map_err(|e| corrupt(format!("client {id}: {e}")))?,
        rate_limit: rate_limit
            .map(|r| r.parse::<Quota>())
            .transpose()
            .map_err(|e| corrupt(format!("client {id}: {e}")))?,
        name: row.try_get("name")?,
        all_customers: row.try_get::<i64, _>("all_customers")? != 0,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        created_at: from_unix_millis(row.try_get("created_at")?),
        previous_secret_expires_at: row
            .try_get::<Option<i64>, _>("previous_secret_expires_at")?
            .filter(|_| {
                row.try_get::<Option<String>, _>("previous_secret_hash")
                    .is_ok_and(|h| h.is_some())
            })
            .map(from_unix_millis),
        id: ClientId::new(id),
    })
}
