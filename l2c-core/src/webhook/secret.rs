//! The per-subscription signing secret.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore as _;
use sha2::Sha256;

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// The prefix of every secret (Standard Webhooks' convention).
pub const SECRET_PREFIX: &str = "whsec_";

/// Shortest decoded key [`WebhookSecret::parse`] accepts (Standard Webhooks: 24 bytes).
pub const MIN_KEY_BYTES: usize = 24;
/// Longest decoded key [`WebhookSecret::parse`] accepts (Standard Webhooks: 64 bytes).
pub const MAX_KEY_BYTES: usize = 64;

/// A webhook signing secret: `whsec_` followed by the standard base64 of 24–64 random bytes
/// (32 when [generated](Self::generate)).
///
/// One string yields the two HMAC keys, deliberately different so that neither signature can
/// stand in for the other:
///
/// - [`legacy_key`](Self::legacy_key): the UTF-8 bytes of the whole string, `whsec_` included —
///   what the spec's Node.js snippet uses when handed the secret (`X-L2C-Signature`);
/// - [`sw_key`](Self::sw_key): the base64-decoded bytes after `whsec_`, as every Standard
///   Webhooks library expects (`webhook-signature`).
///
/// `Debug` never prints the secret; [`expose_secret`](Self::expose_secret) does, to show it once.
///
/// ```
/// use l2c_core::webhook::WebhookSecret;
///
/// let secret = WebhookSecret::generate();
/// assert!(secret.expose_secret().starts_with("whsec_"));
/// assert_eq!(secret.sw_key().len(), 32);
/// assert_eq!(secret.legacy_key(), secret.expose_secret().as_bytes());
/// assert!(!format!("{secret:?}").contains(&secret.expose_secret()[6..]));
///
/// let again: WebhookSecret = secret.expose_secret().parse().unwrap();
/// assert_eq!(again.sw_key(), secret.sw_key());
/// assert!("sk_live_abc".parse::<WebhookSecret>().is_err());
/// ```
#[derive(Clone)]
pub struct WebhookSecret {
    text: String,
    key: Vec<u8>,
    legacy_mac: HmacSha256,
    sw_mac: HmacSha256,
}

/// Why a string is not a [`WebhookSecret`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// It does not start with `whsec_`.
    #[error("a webhook secret starts with `whsec_`")]
    MissingPrefix,
    /// The part after `whsec_` is not standard base64.
    #[error("the part after `whsec_` is not standard base64")]
    NotBase64,
    /// The decoded key is shorter than 24 or longer than 64 bytes.
    #[error("the decoded key is {0} bytes; a webhook secret holds 24 to 64")]
    BadLength(usize),
}

fn keyed(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length (longer ones are hashed first), so this cannot fail.
    #[allow(clippy::expect_used)]
    <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

impl WebhookSecret {
    /// A new secret: `whsec_` + base64 of 32 bytes from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut key = vec![0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        let text = format!("{SECRET_PREFIX}{}", STANDARD.encode(&key));
        Self::from_parts(text, key)
    }

    /// Parses `whsec_<base64>`.
    ///
    /// # Errors
    ///
    /// [`SecretError`] if the prefix is missing, the rest is not standard (padded) base64, or it
    /// decodes to fewer than 24 or more than 64 bytes.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let encoded = text
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SecretError::MissingPrefix)?;
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| SecretError::NotBase64)?;
        if !(MIN_KEY_BYTES..=MAX_KEY_BYTES).contains(&key.len()) {
            return Err(SecretError::BadLength(key.len()));
        }
        Ok(Self::from_parts(text.to_owned(), key))
    }

    fn from_parts(text: String, key: Vec<u8>) -> Self {
        let legacy_mac = keyed(text.as_bytes());
        let sw_mac = keyed(&key);
        Self {
            text,
            key,
            legacy_mac,
            sw_mac,
        }
    }

    /// The secret string, to show the subscriber once or to store (encrypted) server-side.
    pub fn expose_secret(&self) -> &str {
        &self.text
    }

    /// The `X-L2C-Signature` HMAC key: the secret string's UTF-8 bytes.
    pub fn legacy_key(&self) -> &[u8] {
        self.text.as_bytes()
    }

    /// The Standard Webhooks HMAC key: the base64-decoded bytes after `whsec_`.
    pub fn sw_key(&self) -> &[u8] {
        &self.key
    }

    /// An HMAC already keyed with [`legacy_key`](Self::legacy_key).
    pub(crate) fn legacy_mac(&self) -> HmacSha256 {
        self.legacy_mac.clone()
    }

    /// An HMAC already keyed with [`sw_key`](Self::sw_key).
    pub(crate) fn sw_mac(&self) -> HmacSha256 {
        self.sw_mac.clone()
    }
}

impl FromStr for WebhookSecret {
    type Err = SecretError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(whsec_<redacted>)")
    }
}
