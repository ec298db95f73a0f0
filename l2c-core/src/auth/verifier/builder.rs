//! [`TokenVerifierBuilder`]: the keys, claims and limits of a [`TokenVerifier`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::auth::cache::VerifiedCache;
use crate::auth::keys::{Ed25519PublicKey, HmacKey, SigningKey, checked_kid};
use crate::clock::Clock;

use super::{errors::*, verify::*};

#[derive(Clone)]
pub(super) enum KeyMaterial {
    Hs256(HmacKey),
    EdDsa(Ed25519PublicKey),
}

/// A key as configured on the builder.
#[derive(Clone)]
pub(super) struct KeySpec {
    pub(super) kid: Option<Arc<str>>,
    pub(super) material: KeyMaterial,
}

impl KeySpec {
    pub(super) fn alg(&self) -> &'static str {
        match self.material {
            KeyMaterial::Hs256(_) => "HS256",
            KeyMaterial::EdDsa(_) => "EdDSA",
        }
    }
}

/// A key ready for [`jsonwebtoken::decode`]: its decoding key and a [`Validation`] pinned to
/// the key's one algorithm, built once.
pub(super) struct VerificationKey {
    pub(super) spec: KeySpec,
    pub(super) decoding: DecodingKey,
    pub(super) validation: Validation,
}

impl VerificationKey {
    fn new(spec: KeySpec, issuer: &str, audience: &str) -> Self {
        let (algorithm, decoding) = match &spec.material {
            KeyMaterial::Hs256(secret) => (
                Algorithm::HS256,
                DecodingKey::from_secret(secret.as_bytes()),
            ),
            // jsonwebtoken reads the 32 raw bytes of the public key.
            KeyMaterial::EdDsa(public) => (
                Algorithm::EdDSA,
                DecodingKey::from_ed_der(&public.to_bytes()),
            ),
        };
        let mut validation = Validation::new(algorithm);
        // Time claims are checked by `check_claims` against the verifier's injected clock
        // (jsonwebtoken reads the system clock), with the same leeway for every one of them.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        Self {
            spec,
            decoding,
            validation,
        }
    }
}

/// Builds a [`TokenVerifier`]; start with [`TokenVerifier::builder`].
#[must_use]
pub struct TokenVerifierBuilder {
    pub(super) issuer: String,
    pub(super) audience: String,
    pub(super) keys: Vec<KeySpec>,
    pub(super) error: Option<ConfigError>,
    pub(super) leeway: Duration,
    pub(super) max_lifetime: Duration,
    pub(super) max_token_len: usize,
    pub(super) cache_capacity: usize,
    pub(super) clock: Arc<dyn Clock>,
}

impl TokenVerifierBuilder {
    /// Accepts HS256 tokens without a `kid`, signed with `key`.
    pub fn hmac_key(mut self, key: HmacKey) -> Self {
        self.push_hmac(None, &key);
        self
    }

    /// Accepts HS256 tokens whose header names `kid`, signed with `key`.
    pub fn hmac_key_with_kid(mut self, kid: impl Into<String>, key: HmacKey) -> Self {
        match checked_kid(kid) {
            Ok(kid) => self.push_hmac(Some(kid), &key),
            Err(e) => self.fail(e.into()),
        }
        self
    }

    /// Accepts EdDSA tokens whose header names this key's `kid`. Call it once per key to accept
    /// several during a rotation; a token's `kid` picks the one key that is tried.
    pub fn ed25519_public_key(mut self, key: Ed25519PublicKey) -> Self {
        self.keys.push(KeySpec {
            kid: Some(key.kid_arc().clone()),
            material: KeyMaterial::EdDsa(key),
        });
        self
    }

    /// Accepts the EdDSA tokens of every key in `keys`.
    pub fn ed25519_public_keys(self, keys: impl IntoIterator<Item = Ed25519PublicKey>) -> Self {
        keys.into_iter()
            .fold(self, |builder, key| builder.ed25519_public_key(key))
    }

    /// Accepts the tokens a [`TokenIssuer`](crate::auth::TokenIssuer) signs with `key`.
    pub fn signing_key(mut self, key: &SigningKey) -> Self {
        match key {
            SigningKey::Hmac(secret, None) => self.push_hmac(None, secret),
            SigningKey::Hmac(secret, Some(kid)) => {
                return self.hmac_key_with_kid(kid.clone(), secret.clone());
            }
            SigningKey::Ed25519(pair) => return self.ed25519_public_key(pair.public_key()),
        }
        self
    }

    /// The clock-skew allowance for `exp`, `nbf` and `iat`: 60 s by default, at most 60 s.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The longest accepted `exp - iat` (leeway added): 7200 s by default.
    pub fn max_lifetime(mut self, max_lifetime: Duration) -> Self {
        self.max_lifetime = max_lifetime;
        self
    }

    /// Tokens longer than this are refused before any decoding: 8 KiB by default.
    pub fn max_token_len(mut self, max_token_len: usize) -> Self {
        self.max_token_len = max_token_len;
        self
    }

    /// How many verified tokens to remember (10 000 by default; 0 turns the cache off).
    ///
    /// A remembered token costs one hash lookup instead of a signature check, and is refused
    /// from the moment the cold path would refuse it (`exp` plus leeway).
    pub fn cache_capacity(mut self, capacity: usize) -> Self {
        self.cache_capacity = capacity;
        self
    }

    /// Uses `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Builds the verifier.
    ///
    /// # Errors
    ///
    /// See [`ConfigError`]: no key, an empty issuer or audience, a leeway above 60 s, two keys
    /// with the same algorithm and `kid`, or an invalid `kid`.
    pub fn build(self) -> Result<TokenVerifier, ConfigError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        if self.keys.is_empty() {
            return Err(ConfigError::NoKeys);
        }
        if self.issuer.is_empty() || self.audience.is_empty() {
            return Err(ConfigError::EmptyIssuerOrAudience);
        }
        if self.leeway > MAX_LEEWAY {
            return Err(ConfigError::LeewayTooLarge);
        }
        for (i, a) in self.keys.iter().enumerate() {
            if self.keys[..i]
                .iter()
                .any(|b| a.alg() == b.alg() && a.kid == b.kid)
            {
                return Err(ConfigError::DuplicateKey {
                    alg: a.alg(),
                    kid: a.kid.as_deref().map(str::to_owned),
                });
            }
        }
        let keys = self
            .keys
            .into_iter()
            .map(|spec| VerificationKey::new(spec, &self.issuer, &self.audience))
            .collect();
        Ok(TokenVerifier {
            issuer: self.issuer.into(),
            audience: self.audience.into(),
            keys: std::sync::RwLock::new(keys),
            leeway: self.leeway.as_secs(),
            max_lifetime: self.max_lifetime.as_secs(),
            max_token_len: self.max_token_len,
            cache: (self.cache_capacity > 0).then(|| VerifiedCache::new(self.cache_capacity)),
            clock: self.clock,
        })
    }

    fn push_hmac(&mut self, kid: Option<Arc<str>>, key: &HmacKey) {
        self.keys.push(KeySpec {
            kid,
            material: KeyMaterial::Hs256(key.clone()),
        });
    }

    fn fail(&mut self, error: ConfigError) {
        self.error.get_or_insert(error);
    }
}

impl fmt::Debug for TokenVerifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenVerifierBuilder")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("keys", &self.keys.len())
            .field("leeway", &self.leeway)
            .finish_non_exhaustive()
    }
}
