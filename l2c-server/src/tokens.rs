//! The token issuer and verifier the server uses, built from the configuration and the database.
//!
//! With `L2C_JWT_SECRET` set, tokens are HS256-signed with its UTF-8 bytes (`kid`
//! `l2c-env-<first 8 hex digits of its SHA-256>`, so a changed secret is visible in token
//! headers without revealing anything). Without it, the key `l2c-hs256-1` is generated once and
//! kept in the `signing_keys` table (see [`store::keys`](crate::store::keys)), so restarts and
//! replicas sharing the database agree. With `--jwt-algorithm eddsa`, an Ed25519 key pair
//! `l2c-ed25519-1` is generated and kept the same way, and its public half is served in the JWKS.
//!
//! Stored keys rotate (`l2c-server keys rotate`): every replica re-reads them every
//! `--quota-refresh-secs` ([`Tokens::refresh`]) and verifies with every published key — a
//! successor from the moment it is stored, before it signs — while each token is signed with
//! the key that activated last **at the time of issue**, so the switch happens by the clock on
//! every replica, not by a restart. A superseded key keeps verifying until its `retires_at`
//! (when the last token it signed has expired), then leaves the verifier and the JWKS.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use l2c_core::auth::{Ed25519Key, HmacKey, IssuedToken, SigningKey, TokenIssuer, TokenVerifier};
use l2c_core::clock::Clock;
use l2c_core::{ClientId, Scopes};
use sha2::{Digest, Sha256};

use crate::config::{Config, JwtAlgorithm};
use crate::store::keys::{DEFAULT_ED25519_KEY_ID, StoredKey};
use crate::store::{Db, StoreError, unix_millis};

/// Why the token machinery could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokensError {
    /// Loading or creating the stored key failed.
    #[error("signing key: {0}")]
    Store(#[from] StoreError),
    /// The key was refused by the auth library.
    #[error("signing key: {0}")]
    Key(String),
}

/// The algorithm name stored keys of `algorithm` carry.
pub fn stored_algorithm(algorithm: JwtAlgorithm) -> &'static str {
    match algorithm {
        JwtAlgorithm::EdDsa => "EdDSA",
        _ => "HS256",
    }
}

/// The signing key made of a stored key.
///
/// # Errors
///
/// [`TokensError::Key`] for material the auth library refuses.
pub fn signing_key(stored: &StoredKey) -> Result<SigningKey, TokensError> {
    let refused = |e: l2c_core::auth::KeyError| TokensError::Key(e.to_string());
    Ok(match stored.algorithm.as_str() {
        "EdDSA" => SigningKey::Ed25519(
            Ed25519Key::from_pkcs8_der(stored.id.clone(), &stored.material).map_err(refused)?,
        ),
        _ => SigningKey::Hmac(
            HmacKey::new(&stored.material).map_err(refused)?,
            Some(stored.id.clone()),
        ),
    })
}

/// Fresh key material for a stored key of `algorithm` (`EdDSA`: PKCS#8 DER; else 32 random
/// bytes for HS256).
pub fn generate_material(algorithm: &str, kid: &str) -> Vec<u8> {
    match algorithm {
        "EdDSA" => Ed25519Key::generate(kid)
            .map(|k| k.to_pkcs8_der())
            .unwrap_or_default(),
        _ => HmacKey::generate().as_bytes().to_vec(),
    }
}

/// Issues and verifies access tokens.
#[derive(Clone)]
pub struct Tokens {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: String,
    audience: String,
    clock: Arc<dyn Clock>,
    /// The stored keys' algorithm; `None` with `L2C_JWT_SECRET` (nothing to re-read).
    stored: Option<&'static str>,
    /// Kept for the life of the server (the auth layer holds it); its keys are swapped.
    verifier: Arc<TokenVerifier>,
    /// `(activates_at unix ms, issuer)`, oldest activation first.
    issuers: RwLock<Arc<[(i64, TokenIssuer)]>>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens").finish_non_exhaustive()
    }
}

impl Tokens {
    /// Builds the issuer and verifier for `config`, loading or generating the key in `db`.
    ///
    /// # Errors
    ///
    /// [`TokensError`] when the stored key cannot be read or created, or is refused.
    pub async fn load(
        config: &Config,
        db: &Db,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, TokensError> {
        if let (Some(secret), JwtAlgorithm::Hs256) = (&config.jwt_secret, config.jwt_algorithm) {
            let kid = format!(
                "l2c-env-{}",
                &hex::encode(Sha256::digest(secret.as_bytes()))[..8]
            );
            let key =
                HmacKey::new(secret.as_bytes()).map_err(|e| TokensError::Key(e.to_string()))?;
            return Self::from_key(
                &config.issuer,
                &config.audience,
                SigningKey::Hmac(key, Some(kid)),
                clock,
            );
        }
        let algorithm = stored_algorithm(config.jwt_algorithm);
        let keys = published_or_first(db, algorithm).await?;
        let (verifier, issuers) = build(&config.issuer, &config.audience, &keys, &clock)?;
        Ok(Self {
            inner: Arc::new(Inner {
                issuer: config.issuer.clone(),
                audience: config.audience.clone(),
                clock,
                stored: Some(algorithm),
                verifier: Arc::new(verifier),
                issuers: RwLock::new(issuers.into()),
            }),
        })
    }

    /// Builds the issuer and verifier around one signing key.
    ///
    /// # Errors
    ///
    /// [`TokensError::Key`] when the verifier refuses the key.
    pub fn from_key(
        issuer: &str,
        audience: &str,
        key: SigningKey,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, TokensError> {
        let verifier = verifier(issuer, audience, std::slice::from_ref(&key), &clock)?;
        let signer = TokenIssuer::new(issuer, audience, key).with_clock(Arc::clone(&clock));
        Ok(Self {
            inner: Arc::new(Inner {
                issuer: issuer.to_owned(),
                audience: audience.to_owned(),
                clock,
                stored: None,
                verifier: Arc::new(verifier),
                issuers: RwLock::new(vec![(0, signer)].into()),
            }),
        })
    }

    /// Re-reads the stored keys: a successor joins the verifier (and the JWKS) now and signs
    /// from its activation; a retired key leaves both. Nothing to do with `L2C_JWT_SECRET`.
    ///
    /// # Errors
    ///
    /// [`TokensError`] when the keys cannot be read or are refused; the keys in use stay.
    pub async fn refresh(&self, db: &Db) -> Result<(), TokensError> {
        let Some(algorithm) = self.inner.stored else {
            return Ok(());
        };
        let keys = published_or_first(db, algorithm).await?;
        let inner = &self.inner;
        let (verifier, issuers) = build(&inner.issuer, &inner.audience, &keys, &inner.clock)?;
        inner.verifier.adopt_keys(&verifier);
        *inner
            .issuers
            .write()
            .unwrap_or_else(PoisonError::into_inner) = issuers.into();
        Ok(())
    }

    /// Calls [`refresh`](Self::refresh) every `every` until dropped (failures are logged).
    pub async fn refresh_every(self, db: Db, every: Duration) {
        let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = self.refresh(&db).await {
                tracing::warn!(error = %e, "re-reading the token signing keys failed");
            }
        }
    }

    /// Issues a token for `client` with `scopes`, signed with the key that activated last.
    pub fn issue(&self, client: &ClientId, scopes: Scopes) -> IssuedToken {
        let now = unix_millis(self.inner.clock.now());
        let issuers = Arc::clone(
            &self
                .inner
                .issuers
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        );
        // Oldest activation first: the last one already active, else (a clock behind the
        // database's) the first.
        let signer = issuers
            .iter()
            .rev()
            .find(|(at, _)| *at <= now)
            .or(issuers.first())
            .map(|(_, s)| s);
        match signer {
            Some(s) => s.issue(client, scopes),
            // `build` never yields an empty list.
            None => unreachable!("a Tokens has at least one signing key"),
        }
    }

    /// The verifier, for `JwtAuthLayer` and the JWKS document.
    pub fn verifier(&self) -> &Arc<TokenVerifier> {
        &self.inner.verifier
    }
}

/// The published keys of `algorithm`, generating the first one when there is none.
async fn published_or_first(db: &Db, algorithm: &str) -> Result<Vec<StoredKey>, StoreError> {
    let now = db.now_millis();
    let keys: Vec<StoredKey> = db
        .keys()
        .list(Some(algorithm))
        .await?
        .into_iter()
        .filter(|k| k.is_published(now))
        .collect();
    if !keys.is_empty() {
        return Ok(keys);
    }
    let first = match algorithm {
        "EdDSA" => DEFAULT_ED25519_KEY_ID,
        _ => crate::store::keys::DEFAULT_HS256_KEY_ID,
    };
    let key = db
        .keys()
        .get_or_insert(first, algorithm, || generate_material(algorithm, first))
        .await?;
    Ok(vec![key])
}

fn verifier(
    issuer: &str,
    audience: &str,
    keys: &[SigningKey],
    clock: &Arc<dyn Clock>,
) -> Result<TokenVerifier, TokensError> {
    keys.iter()
        .fold(TokenVerifier::builder(issuer, audience), |b, k| {
            b.signing_key(k)
        })
        .with_clock(Arc::clone(clock))
        .build()
        .map_err(|e| TokensError::Key(e.to_string()))
}

type Issuers = Vec<(i64, TokenIssuer)>;

fn build(
    issuer: &str,
    audience: &str,
    stored: &[StoredKey],
    clock: &Arc<dyn Clock>,
) -> Result<(TokenVerifier, Issuers), TokensError> {
    let keys = stored
        .iter()
        .map(signing_key)
        .collect::<Result<Vec<_>, _>>()?;
    let verifier = verifier(issuer, audience, &keys, clock)?;
    let issuers = stored
        .iter()
        .zip(keys)
        .map(|(s, k)| {
            let signer = TokenIssuer::new(issuer, audience, k).with_clock(Arc::clone(clock));
            (s.activates_at, signer)
        })
        .collect();
    Ok((verifier, issuers))
}
