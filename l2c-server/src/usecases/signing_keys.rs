//! Token-signing key rotation (`l2c-server keys rotate`, `keys list`).
//!
//! A rotation stores a successor that is **published before it signs**: every replica re-reads
//! the keys every `--quota-refresh-secs` and verifies with (and, for EdDSA, lists in
//! `/.well-known/jwks.json`) every published key at once, while tokens are signed with the key
//! that activated last at the time of issue. The successor activates `publish_lead` after the
//! rotation — longer than the longest key refresh plus the JWKS's `max-age` (300 s) — so every
//! replica and every verifier that caches the JWKS knows it before the first token carries its
//! `kid`. The
//! keys before it retire when the last token they can have signed has expired (activation +
//! token lifetime + leeway), and then leave the verifiers and the JWKS.

use std::time::Duration;

use l2c_core::auth::DEFAULT_TTL;
use rand::RngCore;

use crate::store::keys::{KeyState, Rotation, StoredKey, key_states};
use crate::store::{Db, StoreError};
use crate::tokens::generate_material;

/// The default time between a rotation and its key's first signature (15 minutes).
pub const DEFAULT_PUBLISH_LEAD: Duration = Duration::from_secs(900);
/// The shortest publish lead accepted: the longest key refresh of a replica
/// (`--quota-refresh-secs` ≤ 300 s), then the JWKS `max-age` (300 s) a verifier may cache that
/// replica's answer for, plus 30 s: by then every replica and every verifier knows the new
/// `kid`.
pub const MIN_PUBLISH_LEAD: Duration = Duration::from_secs(630);
/// The clock-skew allowance verifiers give `exp` (the verifier's default leeway).
const LEEWAY: Duration = Duration::from_secs(60);

/// Why a rotation was refused. Nothing is written in any of these cases.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyRotationError {
    /// No stored key to rotate (tokens signed with `L2C_JWT_SECRET`, or no server started yet).
    #[error(
        "no stored token-signing key: start the server once (with L2C_JWT_SECRET, rotate that \
         secret instead)"
    )]
    NoKeys,
    /// Keys of both algorithms are stored; `--algorithm` must say which.
    #[error("keys of several algorithms are stored; choose one with --algorithm")]
    Ambiguous,
    /// An unknown `--algorithm`.
    #[error("unknown algorithm `{0}`: HS256 or EdDSA")]
    UnknownAlgorithm(String),
    /// The publish lead is shorter than [`MIN_PUBLISH_LEAD`].
    #[error("the publish lead must be at least {}s (the longest key refresh plus the JWKS max-age)", MIN_PUBLISH_LEAD.as_secs())]
    LeadTooShort,
    /// A successor already waits to activate.
    #[error("key {0} already waits to activate; rotate again after it has")]
    Pending(String),
    /// A database failure.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A rotation's result.
#[derive(Debug)]
#[non_exhaustive]
pub struct RotatedKey {
    /// The new key (state `next` until `activates_at`).
    pub key: StoredKey,
    /// When the keys before it retire (unix ms): no token they signed is valid after it.
    pub previous_retire_at: i64,
}

/// A key and where it stands.
#[derive(Debug)]
#[non_exhaustive]
pub struct KeyView {
    /// The key.
    pub key: StoredKey,
    /// Its state now.
    pub state: KeyState,
}

/// Every stored key with its state at the database clock's now, by algorithm, oldest first.
///
/// # Errors
///
/// [`StoreError`].
pub async fn list(db: &Db) -> Result<Vec<KeyView>, StoreError> {
    let now = db.now_millis();
    let keys = db.keys().list(None).await?;
    let mut views = Vec::with_capacity(keys.len());
    for algorithm in ["HS256", "EdDSA"] {
        let of: Vec<StoredKey> = keys
            .iter()
            .filter(|k| k.algorithm == algorithm)
            .cloned()
            .collect();
        let states = key_states(&of, now);
        views.extend(
            of.into_iter()
                .zip(states)
                .map(|(key, state)| KeyView { key, state }),
        );
    }
    Ok(views)
}

/// Adds a successor of the `algorithm` keys (`None`: the one algorithm stored) that signs from
/// now + `publish_lead`; the keys before it retire once their tokens have expired.
///
/// # Errors
///
/// [`KeyRotationError`].
pub async fn rotate(
    db: &Db,
    algorithm: Option<&str>,
    publish_lead: Duration,
) -> Result<RotatedKey, KeyRotationError> {
    if publish_lead < MIN_PUBLISH_LEAD {
        return Err(KeyRotationError::LeadTooShort);
    }
    let now = db.now_millis();
    let stored = db.keys().list(None).await?;
    let algorithm = match algorithm {
        Some(a) => ["HS256", "EdDSA"]
            .into_iter()
            .find(|known| known.eq_ignore_ascii_case(a))
            .ok_or_else(|| KeyRotationError::UnknownAlgorithm(a.to_owned()))?,
        None => {
            let mut algs: Vec<&str> = stored
                .iter()
                .filter(|k| k.is_published(now))
                .map(|k| k.algorithm.as_str())
                .collect();
            algs.dedup();
            match algs.as_slice() {
                [] => return Err(KeyRotationError::NoKeys),
                [one] if *one == "EdDSA" => "EdDSA",
                [_] => "HS256",
                _ => return Err(KeyRotationError::Ambiguous),
            }
        }
    };
    if !stored
        .iter()
        .any(|k| k.algorithm == algorithm && k.is_published(now))
    {
        return Err(KeyRotationError::NoKeys);
    }
    let millis = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4);
    let activates_at = now.saturating_add(millis(publish_lead));
    let retires_at = activates_at.saturating_add(millis(DEFAULT_TTL + LEEWAY));
    let kid = new_kid(algorithm);
    let material = generate_material(algorithm, &kid);
    match db
        .keys()
        .rotate(&kid, algorithm, &material, activates_at, retires_at)
        .await?
    {
        Rotation::Added(key, _) => Ok(RotatedKey {
            key,
            previous_retire_at: retires_at,
        }),
        Rotation::Pending(key) => Err(KeyRotationError::Pending(key.id)),
    }
}

/// `l2c-hs256-<16 hex>` / `l2c-ed25519-<16 hex>`.
fn new_kid(algorithm: &str) -> String {
    let mut bytes = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let prefix = if algorithm == "EdDSA" {
        "ed25519"
    } else {
        "hs256"
    };
    format!("l2c-{prefix}-{}", hex::encode(bytes))
}
