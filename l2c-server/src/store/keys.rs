//! Token signing keys the server generates for itself.
//!
//! When `L2C_JWT_SECRET` is unset, the first server to start on a database generates the HS256 key
//! and stores it; every later start and every replica sharing the database reads the same key, so
//! tokens keep verifying across restarts and load-balanced instances. Creation is race-safe:
//! each contender inserts its own candidate under the same fixed id with `ON CONFLICT DO NOTHING`,
//! then everyone reads back the one row that won.
//!
//! `l2c-server keys rotate` adds a successor ([`KeyStore::rotate`]): published at once (in the
//! JWKS and every replica's verifier, which re-read this table), signing from its
//! `activates_at`, while the keys before it get a `retires_at` after which no token they signed
//! is still valid. [`KeyState`] names where a key stands at a given time.

use std::fmt;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::sql::begin_write;
use super::{Backend, Db, StoreError, from_unix_millis};
use crate::seal::Field;

/// The id (`kid`) of the generated HS256 key.
pub const DEFAULT_HS256_KEY_ID: &str = "l2c-hs256-1";
/// The id (`kid`) of the generated Ed25519 key pair (stored as PKCS#8 DER).
pub const DEFAULT_ED25519_KEY_ID: &str = "l2c-ed25519-1";

/// A stored signing key.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredKey {
    /// The key id (`kid`).
    pub id: String,
    /// The JWS algorithm (`HS256`, `EdDSA`).
    pub algorithm: String,
    /// The secret key bytes.
    pub material: Vec<u8>,
    /// When it was generated.
    pub created_at: SystemTime,
    /// When it starts signing (unix ms).
    pub activates_at: i64,
    /// When it leaves the JWKS and stops verifying (unix ms); `None` until a successor exists.
    pub retires_at: Option<i64>,
}

/// Where a key stands at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyState {
    /// Published (JWKS, verifiers) but not signing yet.
    Next,
    /// Signing new tokens.
    Active,
    /// Superseded: verifies the tokens it signed until `retires_at`.
    Retiring,
    /// Gone from the JWKS and the verifiers.
    Retired,
}

impl KeyState {
    /// The lowercase name (`next`, `active`, `retiring`, `retired`).
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retiring => "retiring",
            KeyState::Retired => "retired",
        }
    }
}

impl StoredKey {
    /// Whether the key verifies (and is published) at `now` (unix ms).
    pub fn is_published(&self, now: i64) -> bool {
        self.retires_at.is_none_or(|t| now < t)
    }
}

/// The state of each of `keys` (of one algorithm) at `now` (unix ms): the published key that
/// activated last is active, the earlier published ones are retiring.
pub fn key_states(keys: &[StoredKey], now: i64) -> Vec<KeyState> {
    let active = keys
        .iter()
        .enumerate()
        .filter(|(_, k)| k.is_published(now) && k.activates_at <= now)
        .max_by_key(|(_, k)| k.activates_at)
        .map(|(i, _)| i);
    keys.iter()
        .enumerate()
        .map(|(i, k)| {
            if !k.is_published(now) {
                KeyState::Retired
            } else if k.activates_at > now {
                KeyState::Next
            } else if Some(i) == active {
                KeyState::Active
            } else {
                KeyState::Retiring
            }
        })
        .collect()
}

/// The result of [`KeyStore::rotate`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Rotation {
    /// The new key, and how many keys now retire.
    Added(StoredKey, u64),
    /// A successor is already waiting to activate: this one.
    Pending(StoredKey),
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredKey")
            .field("id", &self.id)
            .field("algorithm", &self.algorithm)
            .field("material", &"<redacted>")
            .field("created_at", &self.created_at)
            .field("activates_at", &self.activates_at)
            .field("retires_at", &self.retires_at)
            .finish()
    }
}

/// Queries on the `signing_keys` table; get one from [`Db::keys`].
#[derive(Debug, Clone, Copy)]
pub struct KeyStore<'a> {
    db: &'a Db,
}

impl<'a> KeyStore<'a> {
    pub(super) fn new(db: &'a Db) -> Self {
        Self { db }
    }

    /// The HS256 key `l2c-hs256-1`, generated (256 random bits) if no server has stored it yet.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] on a database failure.
    pub async fn hs256_or_generate(&self) -> Result<StoredKey, StoreError> {
        self.get_or_insert(DEFAULT_HS256_KEY_ID, "HS256", || {
            let mut bytes = vec![0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            bytes
        })
        .await
    }

    /// The key `id`, or — when absent — the one made by `generate`, stored under that id.
    ///
    /// Concurrent callers all get the same key: the first insert wins and the others read it.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] on a database failure; [`StoreError::Corrupt`] if the stored
    /// row's algorithm differs from `algorithm` or its material is not base64.
    pub async fn get_or_insert(
        &self,
        id: &str,
        algorithm: &str,
        generate: impl FnOnce() -> Vec<u8>,
    ) -> Result<StoredKey, StoreError> {
        if let Some(key) = self.get(id).await? {
            return check_algorithm(key, algorithm);
        }
        sqlx::query(
            "INSERT INTO signing_keys (id, algorithm, key_material, created_at, activates_at) \
             VALUES ($1, $2, $3, $4, $4) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(algorithm)
        .bind(
            self.db
                .data_keys()
                .seal(Field::SigningKey, id, &STANDARD.encode(generate())),
        )
        .bind(self.db.now_millis())
        .execute(self.db.pool())
        .await?;
        let key = self.get(id).await?.ok_or_else(|| StoreError::Corrupt {
            table: "signing_keys",
            detail: format!("key {id} vanished right after insertion"),
        })?;
        check_algorithm(key, algorithm)
    }

    /// The key `id`, if stored.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] on a database failure; [`StoreError::Corrupt`] for material that
    /// is not base64.
    pub async fn get(&self, id: &str) -> Result<Option<StoredKey>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM signing_keys WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|r| self.read_row(&r)).transpose()
    }

    /// The keys of `algorithm` (every algorithm with `None`), oldest activation first.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub async fn list(&self, algorithm: Option<&str>) -> Result<Vec<StoredKey>, StoreError> {
        sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM signing_keys WHERE $1 IS NULL OR algorithm = $1 \
             ORDER BY COALESCE(activates_at, created_at), id"
        ))
        .bind(algorithm)
        .fetch_all(self.db.pool())
        .await?
        .iter()
        .map(|r| self.read_row(r))
        .collect()
    }

    /// Adds key `id` of `algorithm` (its secret bytes `material`) that activates at
    /// `activates_at` (unix ms), and gives every published key of that algorithm without a
    /// retirement `retires_at`. Refused ([`Rotation::Pending`]) while another key waits to
    /// activate. One transaction, holding the write lock on SQLite.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub async fn rotate(
        &self,
        id: &str,
        algorithm: &str,
        material: &[u8],
        activates_at: i64,
        retires_at: i64,
    ) -> Result<Rotation, StoreError> {
        let now = self.db.now_millis();
        let mut tx = begin_write(self.db).await?;
        if self.db.backend() == Backend::Postgres {
            sqlx::query("LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await?;
        }
        let pending: Option<String> = sqlx::query(
            "SELECT id FROM signing_keys WHERE algorithm = $1 AND activates_at > $2 \
             AND (retires_at IS NULL OR retires_at > $2)",
        )
        .bind(algorithm)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| r.try_get("id"))
        .transpose()?;
        if let Some(pending) = pending {
            tx.rollback().await?;
            let key = self
                .get(&pending)
                .await?
                .ok_or_else(|| StoreError::Corrupt {
                    table: "signing_keys",
                    detail: format!("key {pending} vanished"),
                })?;
            return Ok(Rotation::Pending(key));
        }
        let retiring = sqlx::query(
            "UPDATE signing_keys SET retires_at = $1 WHERE algorithm = $2 AND retires_at IS NULL",
        )
        .bind(retires_at)
        .bind(algorithm)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query(
            "INSERT INTO signing_keys (id, algorithm, key_material, created_at, activates_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(algorithm)
        .bind(
            self.db
                .data_keys()
                .seal(Field::SigningKey, id, &STANDARD.encode(material)),
        )
        .bind(now)
        .bind(activates_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let key = self.get(id).await?.ok_or_else(|| StoreError::Corrupt {
            table: "signing_keys",
            detail: format!("key {id} vanished right after insertion"),
        })?;
        Ok(Rotation::Added(key, retiring))
    }

    fn read_row(&self, row: &AnyRow) -> Result<StoredKey, StoreError> {
        let id: String = row.try_get("id")?;
        let material: String = row.try_get("key_material")?;
        let material = self
            .db
            .data_keys()
            .open(Field::SigningKey, &id, &material)?;
        let created_at: i64 = row.try_get("created_at")?;
        Ok(StoredKey {
            algorithm: row.try_get("algorithm")?,
            material: STANDARD.decode(material).map_err(|_| StoreError::Corrupt {
                table: "signing_keys",
                detail: format!("key {id}: material is not base64"),
            })?,
            created_at: from_unix_millis(created_at),
            activates_at: row
                .try_get::<Option<i64>, _>("activates_at")?
                .unwrap_or(created_at),
            retires_at: row.try_get("retires_at")?,
            id,
        })
    }
}

const KEY_COLUMNS: &str = "id, algorithm, key_material, created_at, activates_at, retires_at";

fn check_algorithm(key: StoredKey, algorithm: &str) -> Result<StoredKey, StoreError> {
    if key.algorithm == algorithm {
        Ok(key)
    } else {
        Err(StoreError::Corrupt {
            table: "signing_keys",
            detail: format!("key {} is {}, expected {algorithm}", key.id, key.algorithm),
        })
    }
}
