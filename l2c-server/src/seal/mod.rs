//! Personal data and secrets sealed at rest (`L2C_DATA_KEY`).
//!
//! With a data key, every column listed in [`COLUMNS`] — customers' mobiles, names and street
//! addresses, leads' names, mobiles, form answers and raw payloads, webhook and lead-source
//! secrets, generated token signing keys — is stored as a text envelope
//!
//! ```text
//! l2cenc:v1:<kid>:<base64url(nonce ‖ ciphertext ‖ tag)>
//! ```
//!
//! sealed with XChaCha20-Poly1305 under a random 24-byte nonce. `kid` is derived from the key
//! (never the key itself), so values sealed under an older key stay readable while
//! `l2c-server keys rotate-data-key` re-seals them. The associated data binds each value to its
//! column and row (`customers.name` of `cus_…`): a sealed value copied into another row or
//! column no longer opens.
//!
//! Lookups by mobile number go through a keyed blind index (HMAC-SHA256 under a key derived
//! from the data key, `customers.mobile_index`), never the plain number; during a rotation a
//! lookup tries the index under every known key.
//!
//! Without a data key values are stored as given ([`DataKeys::plain`]) and the blind index is
//! the plain number.
//!
//! ```
//! use l2c_server::seal::{DataKeys, Field};
//!
//! let key = DataKeys::generate_key();
//! let keys = DataKeys::new(&key, &[]).unwrap();
//! let sealed = keys.seal(Field::CustomerName, "cus_1", "张三");
//! assert!(sealed.starts_with("l2cenc:v1:"));
//! assert_eq!(keys.open(Field::CustomerName, "cus_1", &sealed).unwrap(), "张三");
//! // Bound to its row: the same envelope does not open as another customer's name.
//! assert!(keys.open(Field::CustomerName, "cus_2", &sealed).is_err());
//! ```

mod columns;
mod keys;
#[cfg(test)]
mod tests;

pub use columns::{COLUMNS, Field, SealedColumn, link_row};
pub use keys::{DataKeys, KeyId};

/// The prefix of every sealed value.
pub const ENVELOPE_PREFIX: &str = "l2cenc:";

/// The prefix of every keyed blind index value (`bi1:<kid>:<hex>`).
pub const INDEX_PREFIX: &str = "bi1:";

/// Why a data key or a sealed value was refused. `Display` never contains key material or the
/// value's plain text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// `L2C_DATA_KEY` (or an old key) is not base64 of exactly 32 bytes.
    #[error(
        "{which} must be base64 of exactly 32 random bytes (generate one with \
         `l2c-server keys generate-data-key` or `openssl rand -base64 32`)"
    )]
    MalformedKey {
        /// Which setting (`L2C_DATA_KEY`, `L2C_OLD_DATA_KEYS[1]`).
        which: String,
    },
    /// A value is sealed under a key this server was not given.
    #[error(
        "a value in {field} is sealed under data key `{kid}`, which is not configured: set \
         L2C_DATA_KEY (or L2C_OLD_DATA_KEYS during a rotation) to that key"
    )]
    UnknownKey {
        /// The column.
        field: &'static str,
        /// The key id the value names.
        kid: String,
    },
    /// A value looks like an envelope but is not a well-formed one.
    #[error("a value in {field} is not a well-formed sealed envelope")]
    Malformed {
        /// The column.
        field: &'static str,
    },
    /// The envelope names a known key but does not open: tampered with, truncated, or moved
    /// from another row or column.
    #[error(
        "a value in {field} does not open under its key (tampered with or moved from another row)"
    )]
    Tampered {
        /// The column.
        field: &'static str,
    },
    /// The sealed plain text is not UTF-8 (only possible with a forged key).
    #[error("a value in {field} opened to bytes that are not UTF-8")]
    NotUtf8 {
        /// The column.
        field: &'static str,
    },
    /// Sealed values were found but no data key is configured.
    #[error(
        "the database holds values sealed under data key `{kid}` (in {field}) but L2C_DATA_KEY is \
         not set: start with the data key the database was sealed with"
    )]
    KeyRequired {
        /// The column.
        field: &'static str,
        /// The key id the value names.
        kid: String,
    },
    /// `L2C_OLD_DATA_KEYS` was given without `L2C_DATA_KEY`.
    #[error(
        "L2C_OLD_DATA_KEYS needs L2C_DATA_KEY: the old keys are only read, the current one seals"
    )]
    OldKeysWithoutCurrent,
    /// `keys rotate-data-key` was run without `L2C_DATA_KEY`.
    #[error("rotating needs the new key in L2C_DATA_KEY (and the old ones in L2C_OLD_DATA_KEYS)")]
    NoCurrentKey,
}

/// Whether `stored` is a sealed envelope (as opposed to a plain value written without a key).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(ENVELOPE_PREFIX)
}
