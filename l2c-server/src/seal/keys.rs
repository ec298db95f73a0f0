//! [`DataKeys`]: the current data key, the old ones still accepted, and what each derives.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{ENVELOPE_PREFIX, Field, INDEX_PREFIX, SealError};

/// The envelope version this build writes (and the only one it reads).
const VERSION: &str = "v1";
/// How a plain value that happens to start with [`ENVELOPE_PREFIX`] is stored without a key,
/// so it is never taken for a sealed one.
const PLAIN_ESCAPE: &str = "l2cenc:plain:";
const NONCE_LEN: usize = 24;
/// Hex characters of a key id (64 bits of HMAC output).
const KID_LEN: usize = 16;

/// A data key's public identifier: 16 lowercase hex characters derived from the key by HMAC,
/// safe to print and store.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyId(String);

impl KeyId {
    /// The 16 hex characters.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One data key and the keys derived from it (by HMAC-SHA256 with distinct labels).
struct DataKey {
    kid: KeyId,
    aead: XChaCha20Poly1305,
    /// HMAC-SHA256 keyed with the blind-index key, cloned for each index (the key schedule
    /// runs once, not per value).
    index_mac: Hmac<Sha256>,
}

fn derive(master: &[u8], label: &str) -> [u8; 32] {
    // HMAC-SHA256 as a PRF over a fixed label (the extract step of HKDF is not needed: the
    // master key is already 32 uniformly random bytes).
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(master)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(label.as_bytes());
    mac.finalize().into_bytes().into()
}

impl DataKey {
    fn from_base64(encoded: &str, which: &str) -> Result<Self, SealError> {
        let malformed = || SealError::MalformedKey {
            which: which.to_owned(),
        };
        let bytes = STANDARD
            .decode(encoded.trim())
            .or_else(|_| URL_SAFE_NO_PAD.decode(encoded.trim()))
            .map_err(|_| malformed())?;
        if bytes.len() != 32 {
            return Err(malformed());
        }
        let kid = hex::encode(&derive(&bytes, "l2c data key v1: key id")[..KID_LEN / 2]);
        let aead = XChaCha20Poly1305::new(&derive(&bytes, "l2c data key v1: seal").into());
        Ok(Self {
            kid: KeyId(kid),
            aead,
            index_mac: <Hmac<Sha256> as Mac>::new_from_slice(&derive(
                &bytes,
                "l2c data key v1: blind index",
            ))
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length")),
        })
    }

    fn blind_index(&self, field: Field, value: &str) -> String {
        let mut mac = self.index_mac.clone();
        mac.update(field.label().as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        format!(
            "{INDEX_PREFIX}{}:{}",
            self.kid,
            hex::encode(mac.finalize().into_bytes())
        )
    }
}

/// The data keys a server runs with: the current one (seals every write, computes every new
/// blind index) and the old ones still accepted while a rotation re-seals (`L2C_OLD_DATA_KEYS`).
/// Without a current key ([`DataKeys::plain`]) values are stored as given.
///
/// Cheap to clone. `Debug` shows key ids only.
#[derive(Clone, Default)]
pub struct DataKeys {
    current: Option<Arc<DataKey>>,
    old: Vec<Arc<DataKey>>,
}

impl fmt::Debug for DataKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataKeys")
            .field("current", &self.current.as_ref().map(|k| &k.kid))
            .field("old", &self.old.iter().map(|k| &k.kid).collect::<Vec<_>>())
            .finish()
    }
}

/// The associated data binding a value to its column and row.
fn associated_data(field: Field, row: &str) -> Vec<u8> {
    let mut ad = Vec::with_capacity(field.label().len() + row.len() + 8);
    ad.extend_from_slice(b"l2c/v1/");
    ad.extend_from_slice(field.label().as_bytes());
    ad.push(0);
    ad.extend_from_slice(row.as_bytes());
    ad
}

impl DataKeys {
    /// No key: values are stored (and read back) as given.
    pub fn plain() -> Self {
        Self::default()
    }

    /// The current key `current` and the `old` keys still accepted, each base64 (standard or
    /// URL-safe) of 32 random bytes.
    ///
    /// # Errors
    ///
    /// [`SealError::MalformedKey`] naming the setting that is not base64 of 32 bytes.
    pub fn new(current: &str, old: &[&str]) -> Result<Self, SealError> {
        let current = DataKey::from_base64(current, "L2C_DATA_KEY")?;
        let mut keys = Vec::new();
        for (i, o) in old.iter().enumerate() {
            let key = DataKey::from_base64(o, &format!("L2C_OLD_DATA_KEYS[{}]", i + 1))?;
            if key.kid != current.kid && keys.iter().all(|k: &Arc<DataKey>| k.kid != key.kid) {
                keys.push(Arc::new(key));
            }
        }
        Ok(Self {
            current: Some(Arc::new(current)),
            old: keys,
        })
    }

    /// The keys of the settings `L2C_DATA_KEY` (`current`) and `L2C_OLD_DATA_KEYS` (`old`,
    /// comma- or whitespace-separated); [`DataKeys::plain`] when neither is set.
    ///
    /// # Errors
    ///
    /// [`SealError::MalformedKey`] for a key that is not base64 of 32 bytes,
    /// [`SealError::OldKeysWithoutCurrent`] for old keys without a current one.
    pub fn from_settings(current: Option<&str>, old: Option<&str>) -> Result<Self, SealError> {
        let old = old.map(Self::split_old).unwrap_or_default();
        match current.map(str::trim).filter(|c| !c.is_empty()) {
            Some(current) => Self::new(current, &old),
            None if old.is_empty() => Ok(Self::plain()),
            None => Err(SealError::OldKeysWithoutCurrent),
        }
    }

    /// Parses `L2C_OLD_DATA_KEYS`: comma- or whitespace-separated keys.
    pub fn split_old(list: &str) -> Vec<&str> {
        list.split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// A fresh key for `L2C_DATA_KEY`: base64 of 32 bytes from the operating system's RNG.
    pub fn generate_key() -> String {
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        STANDARD.encode(key)
    }

    /// Whether values are sealed (a current key is configured).
    pub fn is_enabled(&self) -> bool {
        self.current.is_some()
    }

    /// The current key's id.
    pub fn current_kid(&self) -> Option<&KeyId> {
        self.current.as_deref().map(|k| &k.kid)
    }

    /// Every known key id, the current one first.
    pub fn known_kids(&self) -> Vec<&KeyId> {
        self.current
            .iter()
            .chain(&self.old)
            .map(|k| &k.kid)
            .collect()
    }

    fn key(&self, kid: &str) -> Option<&DataKey> {
        self.current
            .iter()
            .chain(&self.old)
            .map(|k| &**k)
            .find(|k| k.kid.as_str() == kid)
    }

    /// `plain` as stored in `field` of row `row`: sealed under the current key, or as given
    /// without one.
    pub fn seal(&self, field: Field, row: &str, plain: &str) -> String {
        let Some(key) = &self.current else {
            return if plain.starts_with(ENVELOPE_PREFIX) {
                format!("{PLAIN_ESCAPE}{plain}")
            } else {
                plain.to_owned()
            };
        };
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = associated_data(field, row);
        let sealed = key
            .aead
            .encrypt(
                &nonce,
                Payload {
                    msg: plain.as_bytes(),
                    aad: &aad,
                },
            )
            .unwrap_or_else(|_| unreachable!("XChaCha20-Poly1305 seals any message under 256 GiB"));
        let mut bytes = Vec::with_capacity(NONCE_LEN + sealed.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        format!(
            "{ENVELOPE_PREFIX}{VERSION}:{}:{}",
            key.kid,
            URL_SAFE_NO_PAD.encode(bytes)
        )
    }

    /// [`DataKeys::seal`] of an optional value.
    pub fn seal_opt(&self, field: Field, row: &str, plain: Option<&str>) -> Option<String> {
        plain.map(|p| self.seal(field, row, p))
    }

    /// The plain text of `stored`, read from `field` of row `row`: opened under the key its
    /// envelope names, or returned as is when it was stored without a key.
    ///
    /// # Errors
    ///
    /// [`SealError::UnknownKey`] (or [`SealError::KeyRequired`] without any key) for a key
    /// this server was not given, [`SealError::Malformed`] for a broken envelope,
    /// [`SealError::Tampered`] when it does not open (altered, or moved from another row or
    /// column). Never panics, whatever `stored` holds.
    pub fn open(&self, field: Field, row: &str, stored: &str) -> Result<String, SealError> {
        if let Some(plain) = stored.strip_prefix(PLAIN_ESCAPE) {
            return Ok(plain.to_owned());
        }
        let Some(rest) = stored.strip_prefix(ENVELOPE_PREFIX) else {
            return Ok(stored.to_owned());
        };
        let label = field.label();
        let malformed = || SealError::Malformed { field: label };
        let rest = rest.strip_prefix(VERSION).ok_or_else(malformed)?;
        let rest = rest.strip_prefix(':').ok_or_else(malformed)?;
        let (kid, body) = rest.split_once(':').ok_or_else(malformed)?;
        let Some(key) = self.key(kid) else {
            return Err(if self.current.is_none() {
                SealError::KeyRequired {
                    field: label,
                    kid: kid.chars().take(KID_LEN).collect(),
                }
            } else {
                SealError::UnknownKey {
                    field: label,
                    kid: kid.chars().take(KID_LEN).collect(),
                }
            });
        };
        let bytes = URL_SAFE_NO_PAD.decode(body).map_err(|_| malformed())?;
        if bytes.len() < NONCE_LEN + 16 {
            return Err(malformed());
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let aad = associated_data(field, row);
        let plain = key
            .aead
            .decrypt(
                &XNonce::from(<[u8; NONCE_LEN]>::try_from(nonce).map_err(|_| malformed())?),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Tampered { field: label })?;
        String::from_utf8(plain).map_err(|_| SealError::NotUtf8 { field: label })
    }

    /// [`DataKeys::open`] of an optional value.
    ///
    /// # Errors
    ///
    /// As [`DataKeys::open`].
    pub fn open_opt(
        &self,
        field: Field,
        row: &str,
        stored: Option<&str>,
    ) -> Result<Option<String>, SealError> {
        stored.map(|s| self.open(field, row, s)).transpose()
    }

    /// The blind index of `value` in `field` under the current key (`bi1:<kid>:<hex>`), or
    /// `value` itself without a key.
    pub fn blind_index(&self, field: Field, value: &str) -> String {
        match &self.current {
            Some(k) => k.blind_index(field, value),
            None => value.to_owned(),
        }
    }

    /// The blind index of `value` under every known key, the current one first (a lookup
    /// during a rotation finds rows not re-indexed yet); `[value]` without a key.
    pub fn blind_indexes(&self, field: Field, value: &str) -> Vec<String> {
        if self.current.is_none() {
            return vec![value.to_owned()];
        }
        self.current
            .iter()
            .chain(&self.old)
            .map(|k| k.blind_index(field, value))
            .collect()
    }

    /// The key id a stored envelope names, if it is one (`l2cenc:v1:<kid>:…`).
    pub fn kid_of(stored: &str) -> Option<&str> {
        let rest = stored
            .strip_prefix(ENVELOPE_PREFIX)?
            .strip_prefix(VERSION)?;
        let (kid, _) = rest.strip_prefix(':')?.split_once(':')?;
        Some(kid)
    }
}
