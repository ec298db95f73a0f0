//! Lead sources (线索来源) as the console manages them: create a GENERIC source, rotate its push
//! URL, delete it — through [`crate::usecases::lead_sources`], as the API's `/lead-sources`
//! routes do, plus the audit record.

use l2c_core::ClientId;
use l2c_core::api::lead_sources::CreateLeadSource;
use serde_json::json;

use super::Actor;
use crate::state::AppState;
use crate::usecases::lead_sources::{self as uc, Issued};

pub use crate::usecases::lead_sources::LeadSourceError;

/// Creates a GENERIC source named `name` that reads the lead id and the mobile at the JSON
/// pointers given; the server generates its signing key. The push token and the key are in the
/// answer, shown once.
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
) -> Result<Issued, LeadSourceError> {
    let req: CreateLeadSource = serde_json::from_value(json!({
        "channel": "GENERIC",
        "name": name,
        "settings": {"fields": {"externalLeadId": id_pointer.trim(), "mobile": mobile_pointer.trim()}},
    }))
    .map_err(|e| {
        LeadSourceError::Invalid(crate::domain::validate::FieldError::new("name", e.to_string()))
    })?;
    let issued = uc::create(&state.db, client, &req).await?;
    actor
        .audit(
            &state.db,
            "lead_source.create",
            Some(client.as_str()),
            Some(&issued.source.id),
        )
        .await?;
    Ok(issued)
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
) -> Result<Issued, LeadSourceError> {
    let issued = uc::rotate(&state.db, client, id).await?;
    actor
        .audit(
            &state.db,
            "lead_source.rotate",
            Some(client.as_str()),
            Some(id),
        )
        .await?;
    Ok(issued)
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
    uc::remove(&state.db, client, id).await?;
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
