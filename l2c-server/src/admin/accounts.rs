//! Console accounts: create, list, disable, reset the password (`l2c-server admin …`), and the
//! password check of the console's login.
//!
//! Passwords are hashed with argon2id (RustCrypto `argon2`, its default parameters: 19 MiB,
//! 2 passes, 1 lane, the OWASP minimum), off the async threads.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use l2c_core::ClientId;
use rand::RngCore;

use super::Actor;
use crate::store::accounts::{Account, Role};
use crate::store::{Db, StoreError};

/// The shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 12;
/// The longest password accepted (hashing cost grows with it).
pub const MAX_PASSWORD_LEN: usize = 256;

/// Why an account action failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccountError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The username is taken.
    #[error("an account named `{0}` exists")]
    Taken(String),
    /// No such account.
    #[error("no account named `{0}`")]
    NoSuchAccount(String),
    /// No such app for a developer account.
    #[error("no client with id `{0}`")]
    NoSuchClient(String),
    /// A refused value (username, password, role/client combination).
    #[error("{0}")]
    Invalid(String),
    /// Hashing failed.
    #[error("password hashing failed")]
    Hash,
}

/// A generated password: 18 random bytes in base64url (24 characters).
pub fn generate_password() -> String {
    use base64::Engine as _;
    let mut bytes = [0u8; 18];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn check_password(password: &str) -> Result<(), AccountError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_LEN || password.len() > MAX_PASSWORD_LEN {
        return Err(AccountError::Invalid(format!(
            "a password must be {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters"
        )));
    }
    Ok(())
}

fn check_username(username: &str) -> Result<(), AccountError> {
    let ok = (1..=64).contains(&username.len())
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(AccountError::Invalid(
            "a username is 1 to 64 of a-z A-Z 0-9 . _ - @".into(),
        ))
    }
}

/// The argon2id PHC string of `password`, computed on a blocking thread.
///
/// # Errors
///
/// [`AccountError::Hash`] if hashing fails.
pub async fn hash_password(password: &str) -> Result<String, AccountError> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|_| AccountError::Hash)
    })
    .await
    .map_err(|_| AccountError::Hash)?
}

/// Whether `password` matches the PHC string `hash` (constant time inside argon2), computed on
/// a blocking thread. A malformed hash matches nothing.
pub async fn verify_password(password: &str, hash: &str) -> bool {
    let password = password.to_owned();
    let hash = hash.to_owned();
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// The argon2id hash of a random password nobody kept, with the parameters of
/// [`hash_password`] (`Argon2::default()`): checked against on unknown usernames so a login
/// takes as long whether or not the account exists. A constant, so it cannot fail to exist.
pub const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$fFFv+jq0asPa1JQnLvnWiw$OHPHt7DjInF8oY8o79mG3oYrFZqrB7eLme3tk0l9Gc0";

/// Creates an account. A developer account needs an existing app; an operator has none.
///
/// # Errors
///
/// [`AccountError`] for a bad username or password, a taken name, an unknown app.
pub async fn create(
    db: &Db,
    actor: &Actor,
    username: &str,
    password: &str,
    role: Role,
    client: Option<&str>,
) -> Result<Account, AccountError> {
    check_username(username)?;
    check_password(password)?;
    let client = match (role, client) {
        (Role::Developer, Some(id)) => {
            if db.clients().get(id).await?.is_none() {
                return Err(AccountError::NoSuchClient(id.to_owned()));
            }
            Some(ClientId::new(id))
        }
        (Role::Developer, None) => {
            return Err(AccountError::Invalid(
                "a developer account needs --client".into(),
            ));
        }
        (Role::Operator, Some(_)) => {
            return Err(AccountError::Invalid(
                "an operator sees every app: no --client".into(),
            ));
        }
        (Role::Operator, None) => None,
    };
    let hash = hash_password(password).await?;
    let account = db
        .accounts()
        .create(username, &hash, role, client.as_ref())
        .await?
        .ok_or_else(|| AccountError::Taken(username.to_owned()))?;
    actor
        .audit(
            db,
            "account.create",
            client.as_ref().map(ClientId::as_str),
            Some(username),
        )
        .await?;
    Ok(account)
}

/// Disables (ending its sessions) or re-enables an account.
///
/// # Errors
///
/// [`AccountError::NoSuchAccount`], [`AccountError::Store`].
pub async fn set_disabled(
    db: &Db,
    actor: &Actor,
    username: &str,
    disabled: bool,
) -> Result<(), AccountError> {
    if !db.accounts().set_disabled(username, disabled).await? {
        return Err(AccountError::NoSuchAccount(username.to_owned()));
    }
    let action = if disabled {
        "account.disable"
    } else {
        "account.enable"
    };
    actor.audit(db, action, None, Some(username)).await?;
    Ok(())
}

/// Sets a new password (ending the account's sessions).
///
/// # Errors
///
/// [`AccountError`] for a bad password or an unknown account.
pub async fn reset_password(
    db: &Db,
    actor: &Actor,
    username: &str,
    password: &str,
) -> Result<(), AccountError> {
    check_password(password)?;
    let hash = hash_password(password).await?;
    if !db.accounts().set_password_hash(username, &hash).await? {
        return Err(AccountError::NoSuchAccount(username.to_owned()));
    }
    actor
        .audit(db, "account.reset_password", None, Some(username))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify_only_the_password() {
        let hash = hash_password("correct horse battery").await.unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse battery", &hash).await);
        assert!(!verify_password("correct horse batterx", &hash).await);
        assert!(!verify_password("correct horse battery", "not a hash").await);
    }

    #[tokio::test]
    async fn the_dummy_hash_costs_what_a_real_one_costs_and_matches_nothing() {
        let real = hash_password("correct horse battery").await.unwrap();
        let params = |h: &str| {
            let parsed = PasswordHash::new(h).unwrap();
            let p = argon2::Params::try_from(&parsed).unwrap();
            (
                parsed.algorithm.to_string(),
                p.m_cost(),
                p.t_cost(),
                p.p_cost(),
            )
        };
        assert_eq!(params(DUMMY_HASH), params(&real));
        assert!(!verify_password("", DUMMY_HASH).await);
        assert!(!verify_password("correct horse battery", DUMMY_HASH).await);
    }

    #[test]
    fn usernames_and_passwords_are_checked() {
        assert!(check_username("ops.lead@brand").is_ok());
        assert!(check_username("").is_err());
        assert!(check_username("a b").is_err());
        assert!(check_username("<script>").is_err());
        assert!(check_password("short").is_err());
        assert!(check_password(&"x".repeat(300)).is_err());
        assert!(check_password(&generate_password()).is_ok());
    }
}
