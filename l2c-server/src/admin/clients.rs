//! Apps (clients): create, change scopes and quota, roll the secret with an overlap, disable,
//! enable, the all-customers grant. `l2c-server client …` and the console's 应用 page call these.

use std::time::{Duration, SystemTime};

use l2c_core::Scopes;
use l2c_core::rate_limit::Quota;

use super::Actor;
use crate::store::clients::{Client, ClientSecret, NewClient};
use crate::store::{Db, StoreError};

/// How long a rolled secret keeps working by default.
pub const DEFAULT_ROLL_OVERLAP: Duration = Duration::from_secs(24 * 3600);

/// The longest overlap accepted (a week).
pub const MAX_ROLL_OVERLAP: Duration = Duration::from_secs(7 * 24 * 3600);

/// Why an app action failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No such app.
    #[error("no client with id `{0}`")]
    NoSuchClient(String),
    /// A refused value.
    #[error("{0}")]
    Invalid(String),
}

fn audit_err(e: StoreError) -> ClientError {
    ClientError::Store(e)
}

/// Registers an app; its secret is returned here and never again.
///
/// # Errors
///
/// [`ClientError::Invalid`] for an empty name; [`ClientError::Store`].
pub async fn create(
    db: &Db,
    actor: &Actor,
    new: &NewClient,
) -> Result<(Client, ClientSecret), ClientError> {
    let (client, secret) = db.clients().create(new).await.map_err(|e| match e {
        StoreError::Invalid(m) => ClientError::Invalid(m),
        e => ClientError::Store(e),
    })?;
    actor
        .audit(
            db,
            "client.create",
            Some(client.id.as_str()),
            Some(&client.name),
        )
        .await
        .map_err(audit_err)?;
    Ok((client, secret))
}

/// Changes an app's scopes and/or its own quota (`Some(None)`: back to the server default).
/// Every replica applies the quota within `--quota-refresh-secs`.
///
/// # Errors
///
/// [`ClientError::NoSuchClient`], [`ClientError::Store`].
pub async fn update(
    db: &Db,
    actor: &Actor,
    id: &str,
    scopes: Option<Scopes>,
    rate_limit: Option<Option<Quota>>,
) -> Result<Client, ClientError> {
    if !db.clients().update(id, scopes, rate_limit).await? {
        return Err(ClientError::NoSuchClient(id.to_owned()));
    }
    let client = db
        .clients()
        .get(id)
        .await?
        .ok_or_else(|| ClientError::NoSuchClient(id.to_owned()))?;
    let detail = format!(
        "scopes={} rate_limit={}",
        client.scopes,
        client
            .rate_limit
            .map_or_else(|| "default".to_owned(), |q| q.to_string())
    );
    actor
        .audit(db, "client.update", Some(id), Some(&detail))
        .await
        .map_err(audit_err)?;
    Ok(client)
}

/// Replaces an app's secret; the old one keeps working for `overlap` (at most
/// [`MAX_ROLL_OVERLAP`]). Returns the new secret (shown once) and when the old one stops.
///
/// # Errors
///
/// [`ClientError::Invalid`] for too long an overlap, [`ClientError::NoSuchClient`],
/// [`ClientError::Store`].
pub async fn roll_secret(
    db: &Db,
    actor: &Actor,
    id: &str,
    overlap: Duration,
) -> Result<(ClientSecret, SystemTime), ClientError> {
    if overlap > MAX_ROLL_OVERLAP {
        return Err(ClientError::Invalid(
            "the overlap must be at most 7 days (168h)".into(),
        ));
    }
    let rolled = db
        .clients()
        .roll_secret(id, overlap)
        .await?
        .ok_or_else(|| ClientError::NoSuchClient(id.to_owned()))?;
    let detail = format!("overlap={}s", overlap.as_secs());
    actor
        .audit(db, "client.roll_secret", Some(id), Some(&detail))
        .await
        .map_err(audit_err)?;
    Ok(rolled)
}

/// Bars an app from obtaining tokens (every replica also refuses its issued tokens within
/// `--quota-refresh-secs`), or lets it again.
///
/// # Errors
///
/// [`ClientError::NoSuchClient`], [`ClientError::Store`].
pub async fn set_disabled(
    db: &Db,
    actor: &Actor,
    id: &str,
    disabled: bool,
) -> Result<(), ClientError> {
    if !db.clients().set_disabled(id, disabled).await? {
        return Err(ClientError::NoSuchClient(id.to_owned()));
    }
    let action = if disabled {
        "client.disable"
    } else {
        "client.enable"
    };
    actor
        .audit(db, action, Some(id), None)
        .await
        .map_err(audit_err)?;
    Ok(())
}

/// Grants (or withdraws) reading every customer.
///
/// # Errors
///
/// [`ClientError::NoSuchClient`], [`ClientError::Store`].
pub async fn grant_all_customers(
    db: &Db,
    actor: &Actor,
    id: &str,
    yes: bool,
) -> Result<(), ClientError> {
    if db.clients().get(id).await?.is_none() {
        return Err(ClientError::NoSuchClient(id.to_owned()));
    }
    db.customers()
        .grant_all(&l2c_core::ClientId::new(id), yes)
        .await?;
    let action = if yes {
        "client.grant_all_customers"
    } else {
        "client.revoke_all_customers"
    };
    actor
        .audit(db, action, Some(id), None)
        .await
        .map_err(audit_err)?;
    Ok(())
}
