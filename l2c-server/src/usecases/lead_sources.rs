//! Lead source management (`/lead-sources`): create (capped per client), update, rotate the
//! push token, delete. A source is an ad platform's way in: a push URL carrying a random token
//! (stored hashed, [`token_hash`]), the channel's settings checked by its adapter
//! ([`crate::channels`]) and, for a GENERIC source without one, a signing secret the server
//! generates. Tokens and generated secrets are returned once, to be shown once.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use l2c_core::ClientId;
use l2c_core::api::lead_sources::{Channel, CreateLeadSource, UpdateLeadSource};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::channels::{self, SecretField};
use crate::domain::{FieldError, validate};
use crate::store::lead_sources::{NewSource, SecretUpdate, StoredSource};
use crate::store::{Db, StoreError};

/// The most lead sources one client may hold.
pub const MAX_LEAD_SOURCES: i64 = 50;

/// The prefix of push-URL tokens.
pub const TOKEN_PREFIX: &str = "lst_";

/// Why a lead source change was refused. Nothing is written in any of these cases.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LeadSourceError {
    /// The name or the settings break a rule (named in the error's field).
    #[error("{0}")]
    Invalid(FieldError),
    /// The client already holds [`MAX_LEAD_SOURCES`].
    #[error("a client may hold at most {MAX_LEAD_SOURCES} lead sources; delete one first")]
    TooMany,
    /// No such source of this client.
    #[error("no lead source `{0}`")]
    NotFound(String),
    /// A database failure.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<FieldError> for LeadSourceError {
    fn from(e: FieldError) -> Self {
        LeadSourceError::Invalid(e)
    }
}

/// A source with a fresh push token (and the secret to show, if the server generated one).
/// `Debug` shows neither.
pub struct Issued {
    /// The stored source.
    pub source: StoredSource,
    /// The push URL's token, shown this once (only its hash is stored).
    pub token: String,
    /// The secret the server generated, shown this once; `None` when the caller supplied one
    /// or the channel has none.
    pub secret: Option<String>,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("source", &self.source)
            .field("token", &"<redacted>")
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A new push token (`lst_` + 128 random bits, base64url) and its SHA-256 hex.
pub fn new_token() -> (String, String) {
    let mut bytes = [0_u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = token_hash(&token);
    (token, hash)
}

/// Lowercase hex SHA-256 of a push token, the form it is stored and looked up in.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether `s` has the shape of a push token (checked before any lookup).
pub fn looks_like_token(s: &str) -> bool {
    s.strip_prefix(TOKEN_PREFIX).is_some_and(|rest| {
        rest.len() == 22
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// A signing key the server generates for a GENERIC source: `lsk_` + 256 random bits.
fn new_secret() -> String {
    let mut bytes = [0_u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("lsk_{}", URL_SAFE_NO_PAD.encode(bytes))
}

fn check_name(name: &str) -> Result<(), FieldError> {
    validate::printable("name", name)?;
    let n = name.trim().chars().count();
    if n == 0 || name.chars().count() > 64 {
        return Err(FieldError::new("name", "must be 1 to 64 characters"));
    }
    Ok(())
}

/// Creates a source for `client` with a new push token.
///
/// # Errors
///
/// [`LeadSourceError::Invalid`], [`LeadSourceError::TooMany`], [`LeadSourceError::Store`].
pub async fn create(
    db: &Db,
    client: &ClientId,
    req: &CreateLeadSource,
) -> Result<Issued, LeadSourceError> {
    check_name(&req.name)?;
    let (settings, secret) = channels::split_secret(req.channel, &req.settings)?;
    let (secret, generated) = match secret {
        SecretField::Value(s) => (Some(s), false),
        SecretField::Absent | SecretField::Null if req.channel == Channel::Generic => {
            (Some(new_secret()), true)
        }
        SecretField::Absent | SecretField::Null => (None, false),
    };
    channels::parse_settings(req.channel, &settings, secret.is_some())?;
    let store = db.lead_sources();
    if store.count(client).await? >= MAX_LEAD_SOURCES {
        return Err(LeadSourceError::TooMany);
    }
    let (token, hash) = new_token();
    let source = store
        .create(NewSource {
            client,
            channel: req.channel,
            name: req.name.trim(),
            settings: &settings,
            secret: secret.as_deref(),
            secret_generated: generated,
            token_hash: &hash,
        })
        .await?;
    Ok(Issued {
        source,
        token,
        secret: if generated { secret } else { None },
    })
}

/// Changes the name and/or the settings (with the secret) of one of `client`'s sources. A
/// GENERIC source keeps a secret.
///
/// # Errors
///
/// [`LeadSourceError::NotFound`], [`LeadSourceError::Invalid`], [`LeadSourceError::Store`].
pub async fn update(
    db: &Db,
    client: &ClientId,
    id: &str,
    req: &UpdateLeadSource,
) -> Result<StoredSource, LeadSourceError> {
    let not_found = || LeadSourceError::NotFound(id.to_owned());
    let store = db.lead_sources();
    let Some(existing) = store.get(client, id).await? else {
        return Err(not_found());
    };
    if let Some(name) = &req.name {
        check_name(name)?;
    }
    let mut secret = SecretField::Absent;
    let mut new_settings = None;
    if let Some(settings) = &req.settings {
        let (rest, given) = channels::split_secret(existing.channel, settings)?;
        secret = given;
        let has_secret = match &secret {
            SecretField::Absent => existing.secret.is_some(),
            SecretField::Null => false,
            SecretField::Value(_) => true,
        };
        if existing.channel == Channel::Generic && !has_secret {
            return Err(FieldError::new(
                "settings.secret",
                "a GENERIC source must keep a secret; rotate the source for a new generated one",
            )
            .into());
        }
        channels::parse_settings(existing.channel, &rest, has_secret)?;
        new_settings = Some(rest);
    }
    let secret_update = match &secret {
        SecretField::Absent => SecretUpdate::Keep,
        SecretField::Null => SecretUpdate::Remove,
        SecretField::Value(s) => SecretUpdate::Set {
            secret: s,
            generated: false,
        },
    };
    store
        .update(
            client,
            id,
            req.name.as_deref().map(str::trim),
            new_settings.as_ref(),
            secret_update,
        )
        .await?
        .ok_or_else(not_found)
}

/// Issues a new push token for one of `client`'s sources (the old one stops working at once)
/// and, for a secret the server generated, a new secret.
///
/// # Errors
///
/// [`LeadSourceError::NotFound`], [`LeadSourceError::Store`].
pub async fn rotate(db: &Db, client: &ClientId, id: &str) -> Result<Issued, LeadSourceError> {
    let not_found = || LeadSourceError::NotFound(id.to_owned());
    let store = db.lead_sources();
    let Some(existing) = store.get(client, id).await? else {
        return Err(not_found());
    };
    let (token, hash) = new_token();
    let secret = existing.secret_generated.then(new_secret);
    let source = store
        .rotate(client, id, &hash, secret.as_deref())
        .await?
        .ok_or_else(not_found)?;
    Ok(Issued {
        source,
        token,
        secret,
    })
}

/// Deletes one of `client`'s sources: its push URL stops working; the leads it delivered stay.
///
/// # Errors
///
/// [`LeadSourceError::NotFound`], [`LeadSourceError::Store`].
pub async fn remove(db: &Db, client: &ClientId, id: &str) -> Result<(), LeadSourceError> {
    if db.lead_sources().delete(client, id).await? {
        Ok(())
    } else {
        Err(LeadSourceError::NotFound(id.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_128_random_bits_and_are_stored_hashed() {
        let (a, ha) = new_token();
        let (b, _) = new_token();
        assert_ne!(a, b);
        assert!(looks_like_token(&a), "{a}");
        assert_eq!(ha, token_hash(&a));
        assert_eq!(ha.len(), 64);
        assert!(!looks_like_token("lst_short"));
        assert!(!looks_like_token(&format!("{a}x")));
        assert!(!looks_like_token(&a.replace("lst_", "lsx_")));
    }
}
