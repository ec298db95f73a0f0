//! The token issuer and verifier the server uses, built from the configuration and the database.
//!
//! With `L2C_JWT_SECRET` set, tokens are HS256-signed with its UTF-8 bytes (`kid`
//! `l2c-env-<first 8 hex digits of its SHA-256>`, so a changed secret is visible in token
//! headers without revealing anything). Without it, the key `l2c-hs256-1` is generated once and
//! kept in the `signing_keys` table (see [`store::keys`](crate::store::keys)), so restarts and
//! replicas sharing the database agree.

use std::fmt;
use std::sync::Arc;

use l2c_core::auth::{HmacKey, IssuedToken, SigningKey, TokenIssuer, TokenVerifier};
use l2c_core::clock::Clock;
use l2c_core::{ClientId, Scopes};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::store::{Db, StoreError};

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

/// Issues and verifies access tokens.
#[derive(Clone)]
pub struct Tokens {
    issuer: Arc<TokenIssuer>,
    verifier: Arc<TokenVerifier>,
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
        let key = match &config.jwt_secret {
            Some(secret) => {
                let kid = format!(
                    "l2c-env-{}",
                    &hex::encode(Sha256::digest(secret.as_bytes()))[..8]
                );
                let key =
                    HmacKey::new(secret.as_bytes()).map_err(|e| TokensError::Key(e.to_string()))?;
                SigningKey::Hmac(key, Some(kid))
            }
            None => {
                let stored = db.keys().hs256_or_generate().await?;
                let key =
                    HmacKey::new(&stored.material).map_err(|e| TokensError::Key(e.to_string()))?;
                SigningKey::Hmac(key, Some(stored.id))
            }
        };
        Self::from_key(&config.issuer, &config.audience, key, clock)
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
        let verifier = TokenVerifier::builder(issuer, audience)
            .signing_key(&key)
            .with_clock(Arc::clone(&clock))
            .build()
            .map_err(|e| TokensError::Key(e.to_string()))?;
        let issuer = TokenIssuer::new(issuer, audience, key).with_clock(clock);
        Ok(Self {
            issuer: Arc::new(issuer),
            verifier: Arc::new(verifier),
        })
    }

    /// Issues a token for `client` with `scopes`.
    pub fn issue(&self, client: &ClientId, scopes: Scopes) -> IssuedToken {
        self.issuer.issue(client, scopes)
    }

    /// The verifier, for `JwtAuthLayer` and the JWKS document.
    pub fn verifier(&self) -> &Arc<TokenVerifier> {
        &self.verifier
    }
}
