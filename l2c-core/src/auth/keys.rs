//! Signing and verification keys, and the JWK Set of the public ones.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// The shortest HMAC key accepted: 256 bits, the size of the SHA-256 output (RFC 7518 §3.2).
pub const MIN_HMAC_KEY_LEN: usize = 32;

/// The longest `kid` accepted.
pub const MAX_KID_LEN: usize = 64;

/// Why a key or key id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// An HMAC key shorter than [`MIN_HMAC_KEY_LEN`] bytes.
    #[error("an HS256 key must be at least {MIN_HMAC_KEY_LEN} bytes, got {0}")]
    HmacKeyTooShort(usize),
    /// A `kid` that is empty, longer than [`MAX_KID_LEN`] or not made of `A-Z a-z 0-9 - _ .`.
    #[error("a key id must be 1-{MAX_KID_LEN} characters of A-Z, a-z, 0-9, '-', '_' or '.'")]
    InvalidKid,
    /// Bytes that are not a PKCS#8 DER Ed25519 private key.
    #[error("not a PKCS#8 DER Ed25519 private key")]
    InvalidPkcs8,
    /// Bytes that are not a valid Ed25519 public key.
    #[error("not a valid Ed25519 public key")]
    InvalidPublicKey,
}

/// Checks a key id: 1-64 characters of `A-Z a-z 0-9 - _ .` (RFC 8725 §3.10: treat `kid` as
/// untrusted input; this alphabet is safe in logs, paths and JSON without escaping).
pub(crate) fn is_valid_kid(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= MAX_KID_LEN
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

pub(crate) fn checked_kid(kid: impl Into<String>) -> Result<Arc<str>, KeyError> {
    let kid = kid.into();
    if is_valid_kid(&kid) {
        Ok(kid.into())
    } else {
        Err(KeyError::InvalidKid)
    }
}

/// An HS256 secret of at least 256 bits. Its `Debug` output never shows the bytes.
///
/// ```
/// use l2c_core::auth::HmacKey;
///
/// assert!(HmacKey::new(b"too short").is_err());
/// let key = HmacKey::generate();
/// assert_eq!(key.as_bytes().len(), 32);
/// assert_eq!(format!("{key:?}"), "HmacKey(<redacted>)");
/// ```
#[derive(Clone)]
pub struct HmacKey(Arc<[u8]>);

impl HmacKey {
    /// Wraps a secret.
    ///
    /// # Errors
    ///
    /// [`KeyError::HmacKeyTooShort`] when `bytes` is shorter than 32 bytes.
    pub fn new(bytes: impl AsRef<[u8]>) -> Result<Self, KeyError> {
        let bytes = bytes.as_ref();
        if bytes.len() < MIN_HMAC_KEY_LEN {
            return Err(KeyError::HmacKeyTooShort(bytes.len()));
        }
        Ok(Self(bytes.into()))
    }

    /// 32 fresh bytes from the operating system's random source.
    pub fn generate() -> Self {
        let mut bytes = [0u8; MIN_HMAC_KEY_LEN];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(bytes.as_slice().into())
    }

    /// The secret bytes, for persisting the key.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacKey(<redacted>)")
    }
}

/// An Ed25519 key pair with its key id, for EdDSA tokens. `Debug` shows only the `kid`.
///
/// ```
/// use l2c_core::auth::Ed25519Key;
///
/// let key = Ed25519Key::generate("2026-01").unwrap();
/// let der = key.to_pkcs8_der();
/// let again = Ed25519Key::from_pkcs8_der("2026-01", &der).unwrap();
/// assert_eq!(again.public_key(), key.public_key());
/// assert_eq!(key.public_jwk().kty, "OKP");
/// ```
#[derive(Clone)]
pub struct Ed25519Key {
    kid: Arc<str>,
    key: ed25519_dalek::SigningKey,
}

impl Ed25519Key {
    /// A fresh key pair from the operating system's random source.
    ///
    /// # Errors
    ///
    /// [`KeyError::InvalidKid`] when `kid` is not 1-64 characters of `A-Z a-z 0-9 - _ .`.
    pub fn generate(kid: impl Into<String>) -> Result<Self, KeyError> {
        Ok(Self {
            kid: checked_kid(kid)?,
            key: ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng),
        })
    }

    /// Loads a key pair saved with [`to_pkcs8_der`](Self::to_pkcs8_der).
    ///
    /// # Errors
    ///
    /// [`KeyError::InvalidKid`] or [`KeyError::InvalidPkcs8`].
    pub fn from_pkcs8_der(kid: impl Into<String>, der: &[u8]) -> Result<Self, KeyError> {
        let kid = checked_kid(kid)?;
        let key =
            ed25519_dalek::SigningKey::from_pkcs8_der(der).map_err(|_| KeyError::InvalidPkcs8)?;
        Ok(Self { kid, key })
    }

    /// The private key as PKCS#8 DER, for persisting it. Treat the bytes as a secret.
    pub fn to_pkcs8_der(&self) -> Vec<u8> {
        // Encoding a 32-byte seed into a fixed PKCS#8 structure only fails on allocation.
        self.key
            .to_pkcs8_der()
            .map(|doc| doc.as_bytes().to_vec())
            .unwrap_or_default()
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half, for a [`TokenVerifier`](super::TokenVerifier) or a JWKS.
    pub fn public_key(&self) -> Ed25519PublicKey {
        Ed25519PublicKey {
            kid: self.kid.clone(),
            key: self.key.verifying_key(),
        }
    }

    /// The public key as a JWK (`kty: OKP, crv: Ed25519, alg: EdDSA, use: sig`).
    pub fn public_jwk(&self) -> PublicJwk {
        self.public_key().to_jwk()
    }
}

impl fmt::Debug for Ed25519Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ed25519Key")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// An Ed25519 public key with its key id: what a verifier needs for EdDSA tokens.
#[derive(Clone, PartialEq, Eq)]
pub struct Ed25519PublicKey {
    kid: Arc<str>,
    key: ed25519_dalek::VerifyingKey,
}

impl Ed25519PublicKey {
    /// A public key from its 32 raw bytes.
    ///
    /// # Errors
    ///
    /// [`KeyError::InvalidKid`] or [`KeyError::InvalidPublicKey`] (not a point on the curve, or
    /// a weak key of small order).
    pub fn from_bytes(kid: impl Into<String>, bytes: &[u8]) -> Result<Self, KeyError> {
        let kid = checked_kid(kid)?;
        let bytes: &[u8; 32] = bytes.try_into().map_err(|_| KeyError::InvalidPublicKey)?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(bytes)
            .map_err(|_| KeyError::InvalidPublicKey)?;
        if key.is_weak() {
            return Err(KeyError::InvalidPublicKey);
        }
        Ok(Self { kid, key })
    }

    /// A public key from a JWK of a JWK Set.
    ///
    /// # Errors
    ///
    /// [`KeyError::InvalidPublicKey`] unless the JWK is `kty: OKP`, `crv: Ed25519` with a valid
    /// `x` (and `alg`, `use`, when present, are `EdDSA` and `sig`); [`KeyError::InvalidKid`].
    pub fn from_jwk(jwk: &PublicJwk) -> Result<Self, KeyError> {
        let usable = jwk.kty == "OKP"
            && jwk.crv == "Ed25519"
            && jwk.alg.as_deref().is_none_or(|a| a == "EdDSA")
            && jwk.use_.as_deref().is_none_or(|u| u == "sig");
        if !usable {
            return Err(KeyError::InvalidPublicKey);
        }
        let kid = jwk.kid.clone().ok_or(KeyError::InvalidKid)?;
        let x = URL_SAFE_NO_PAD
            .decode(&jwk.x)
            .map_err(|_| KeyError::InvalidPublicKey)?;
        Self::from_bytes(kid, &x)
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The 32 raw bytes of the key.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The key as a JWK (`kty: OKP, crv: Ed25519, alg: EdDSA, use: sig`, RFC 8037).
    pub fn to_jwk(&self) -> PublicJwk {
        PublicJwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: URL_SAFE_NO_PAD.encode(self.key.as_bytes()),
            kid: Some(self.kid.to_string()),
            alg: Some("EdDSA".into()),
            use_: Some("sig".into()),
        }
    }

    pub(crate) fn kid_arc(&self) -> &Arc<str> {
        &self.kid
    }
}

impl fmt::Debug for Ed25519PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ed25519PublicKey")
            .field("kid", &self.kid)
            .field("x", &URL_SAFE_NO_PAD.encode(self.key.as_bytes()))
            .finish()
    }
}

/// The key a [`TokenIssuer`](super::TokenIssuer) signs with.
#[derive(Debug, Clone)]
pub enum SigningKey {
    /// HS256 with a shared secret and an optional `kid` put in the token header.
    Hmac(HmacKey, Option<String>),
    /// EdDSA (Ed25519); the key's `kid` is put in the token header.
    Ed25519(Ed25519Key),
}

impl SigningKey {
    /// The `kid` the tokens carry, if any.
    pub fn kid(&self) -> Option<&str> {
        match self {
            SigningKey::Hmac(_, kid) => kid.as_deref(),
            SigningKey::Ed25519(key) => Some(key.kid()),
        }
    }

    /// The JWS `alg` the tokens carry: `HS256` or `EdDSA`.
    pub fn algorithm(&self) -> &'static str {
        match self {
            SigningKey::Hmac(..) => "HS256",
            SigningKey::Ed25519(_) => "EdDSA",
        }
    }
}

impl From<HmacKey> for SigningKey {
    fn from(key: HmacKey) -> Self {
        SigningKey::Hmac(key, None)
    }
}

impl From<Ed25519Key> for SigningKey {
    fn from(key: Ed25519Key) -> Self {
        SigningKey::Ed25519(key)
    }
}

/// One public key of a JWK Set (RFC 7517 §4, RFC 8037 for `OKP`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicJwk {
    /// Key type; `OKP` for Ed25519.
    pub kty: String,
    /// Curve; `Ed25519`.
    #[serde(default)]
    pub crv: String,
    /// The base64url public key bytes.
    #[serde(default)]
    pub x: String,
    /// Key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Algorithm; `EdDSA`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// Public key use; `sig`.
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
}

/// A JWK Set (RFC 7517 §5): the document served at `/.well-known/jwks.json`.
///
/// Only public Ed25519 keys are ever in it; HMAC secrets are never published.
///
/// ```
/// use l2c_core::auth::{Ed25519Key, Jwks};
///
/// let key = Ed25519Key::generate("k1").unwrap();
/// let jwks = Jwks::from_keys([key.public_key()]);
/// let json = serde_json::to_value(&jwks).unwrap();
/// assert_eq!(json["keys"][0]["crv"], "Ed25519");
/// assert_eq!(json["keys"][0]["use"], "sig");
/// // A reader keeps the usable keys and skips the rest (RFC 7517 §5).
/// let keys = Jwks::from_json(&serde_json::to_vec(&jwks).unwrap()).unwrap().ed25519_keys();
/// assert_eq!(keys, vec![key.public_key()]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Jwks {
    /// The keys.
    pub keys: Vec<PublicJwk>,
}

impl Jwks {
    /// The set of the given public keys.
    pub fn from_keys(keys: impl IntoIterator<Item = Ed25519PublicKey>) -> Self {
        Self {
            keys: keys.into_iter().map(|k| k.to_jwk()).collect(),
        }
    }

    /// Parses a JWK Set, dropping members that are not well-formed JWKs instead of failing.
    ///
    /// # Errors
    ///
    /// When the document is not a JSON object with a `keys` array.
    pub fn from_json(json: &[u8]) -> Result<Self, serde_json::Error> {
        #[derive(Deserialize)]
        struct Raw {
            keys: Vec<serde_json::Value>,
        }
        let raw: Raw = serde_json::from_slice(json)?;
        Ok(Self {
            keys: raw
                .keys
                .into_iter()
                .filter_map(|v| serde_json::from_value(v).ok())
                .collect(),
        })
    }

    /// The usable Ed25519 keys of the set; other key types and invalid keys are skipped.
    pub fn ed25519_keys(&self) -> Vec<Ed25519PublicKey> {
        self.keys
            .iter()
            .filter_map(|jwk| Ed25519PublicKey::from_jwk(jwk).ok())
            .collect()
    }
}
