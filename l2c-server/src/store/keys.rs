//! Token signing keys the server generates for itself.
//!
//! When `L2C_JWT_SECRET` is unset, the first server to start on a database generates the HS256 key
//! and stores it; every later start and every replica sharing the database reads the same key, so
//! tokens keep verifying across restarts and load-balanced instances. Creation is race-safe:
//! each contender inserts its own candidate under the same fixed id with `ON CONFLICT DO NOTHING`,
//! then everyone reads back the one row that won.

use std::fmt;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use sqlx::Row;

use super::{Db, StoreError, from_unix_millis};
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
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredKey")
            .field("id", &self.id)
            .field("algorithm", &self.algorithm)
            .field("material", &"<redacted>")
            .field("created_at", &self.created_at)
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
            "INSERT INTO signing_keys (id, algorithm, key_material, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
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
        let row = sqlx::query(
            "SELECT id, algorithm, key_material, created_at FROM signing_keys WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.db.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let material: String = row.try_get("key_material")?;
        let material = self.db.data_keys().open(Field::SigningKey, id, &material)?;
        Ok(Some(StoredKey {
            id: row.try_get("id")?,
            algorithm: row.try_get("algorithm")?,
            material: STANDARD.decode(material).map_err(|_| StoreError::Corrupt {
                table: "signing_keys",
                detail: format!("key {id}: material is not base64"),
            })?,
            created_at: from_unix_millis(row.try_get("created_at")?),
        }))
    }
}

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
