//! Lead sources (线索来源) as the console manages them: create a GENERIC source, rotate its push
//! URL, delete it. The API's `/lead-sources` routes do the same for every channel.

use l2c_core::ClientId;
use l2c_core::api::lead_sources::Channel;
use serde_json::json;

use super::Actor;
use crate::channels;
use crate::routes::lead_sources::{MAX_LEAD_SOURCES, new_secret, new_token};
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::lead_sources::{NewSource, StoredSource};

/// Why a lead-source action failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LeadSourceError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No such source for this app.
    #[error("no such lead source")]
    NotFound,
    /// A refused value (named field and reason).
    #[error("{0}")]
    Invalid(String),
    /// The app holds the most sources allowed.
    #[error("an app may hold at most {MAX_LEAD_SOURCES} lead sources")]
    TooMany,
}

/// A source just created or rotated: its push token (append to `/api/hooks/leads/`) and, when
/// the server generated it, its signing key — both shown once.
#[derive(Debug)]
pub struct Shown {
    /// The source.
    pub source: StoredSource,
    /// The push URL's token.
    pub token: String,
    /// The generated signing key.
    pub secret: Option<String>,
}

/// Creates a GENERIC source named `name` that reads the lead id and mobile at the JSON pointers
/// given; the server generates its signing key.
///
/// # Errors
///
/// [`LeadSourceError::Invalid`] for a bad name or pointer, [`LeadSourceError::TooMany`].
pub async fn create_generic(
    state: &AppState,
    actor: &Actor,
    client: &ClientId,
    name: &str,
    id_pointer: &str,
    mobile_pointer: &str,
) -> Result<Shown, LeadSourceError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(LeadSourceError::Invalid("name: 1 to 100 characters".into()));
    }
    let settings =
        json!({"fields": {"externalLeadId": id_pointer.trim(), "mobile": mobile_pointer.trim()}});
    channels::parse_settings(Channel::Generic, &settings, true)
        .map_err(|e| LeadSourceError::Invalid(e.to_string()))?;
    let store = state.db.lead_sources();
    if store.count(client).await? >= MAX_LEAD_SOURCES {
        return Err(LeadSourceError::TooMany);
    }
    let secret = new_secret();
    let (token, hash) = new_token();
    let source = store
        .create(NewSource {
            client,
            channel: Channel::Generic,
            name,
            settings: &settings,
            secret: Some(&secret),
            secret_generated: true,
            token_hash: &hash,
        })
        .await?;
    actor
        .audit(
            &state.db,
            "lead_source.create",
            Some(client.as_str()),
            Some(&source.id),
        )
        .await?;
    Ok(Shown {
        source,
        token,
        secret: Some(secret),
    })
}

/// A new push URL (the old one stops at once) and, for a generated key, a new key.
///
/// # Errors
///
/// [`LeadSourceError::NotFound`], [`LeadSourceError::Store`].
pub async fn rotate(
    state: &AppState,
    actor: &Actor,
    client: &ClientId,
    id: &str,
) -> Result<Shown, LeadSourceError> {
    let store = state.db.lead_sources();
    let existing = store
        .get(client, id)
        .await?
        .ok_or(LeadSourceError::NotFound)?;
    let (token, hash) = new_token();
    let secret = existing.secret_generated.then(new_secret);
    let source = store
        .rotate(client, id, &hash, secret.as_deref())
        .await?
        .ok_or(LeadSourceError::NotFound)?;
    actor
        .audit(
            &state.db,
            "lead_source.rotate",
            Some(client.as_str()),
            Some(id),
        )
        .await?;
    Ok(Shown {
        source,
        token,
        secret,
    })
}

/// Deletes a source; its push URL answers 404 from now on.
///
/// # Errors
///
/// [`LeadSourceError::NotFound`], [`LeadSourceError::Store`].
pub async fn delete(
    state: &AppState,
    actor: &Actor,
    client: &ClientId,
    id: &str,
) -> Result<(), LeadSourceError> {
    if !state.db.lead_sources().delete(client, id).await? {
        return Err(LeadSourceError::NotFound);
    }
    actor
        .audit(
            &state.db,
            "lead_source.delete",
            Some(client.as_str()),
            Some(id),
        )
        .await?;
    Ok(())
}
