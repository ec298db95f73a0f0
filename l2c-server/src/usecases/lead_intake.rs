//! Lead intake: one lead into the store, whoever pushed it. `POST /leads/hook` (a partner with
//! a token) and `POST /api/hooks/leads/{token}` (an ad platform through a lead source, once its
//! channel adapter in [`crate::channels`] has turned the push into a [`PushLead`]) both end
//! here.
//!
//! [`intake`] validates the lead ([`validate::lead`]) and, in one write transaction, finds or
//! creates the customer by mobile number, links the client to it (with the lead's name and
//! region, see
//! [`CustomerStore::masked_view`](crate::store::customers::CustomerStore::masked_view)) and
//! stores the lead with its raw payload.
//!
//! `(source, externalLeadId)` is unique per client: a lead the same client already stored is
//! answered with the original ids and `duplicate: true`, nothing of it overwritten (the client
//! is re-linked to its customer with the stored lead's details, not the retry's); the same pair
//! pushed by another client is another lead, and nothing about it shows.

use l2c_core::ClientId;
use l2c_core::api::LeadId;
use l2c_core::api::leads::{PushLead, PushLeadResponse};
use sqlx::AnyConnection;

use crate::domain::{FieldError, new_id, validate};
use crate::seal::DataKeys;
use crate::store::customers::{self, CustomerContact, LinkDetails};
use crate::store::leads::{self, NewLead, PushedVia, StoredLead};
use crate::store::sql::begin_write;
use crate::store::{Db, StoreError};

/// Why a lead was not taken. Nothing is written in either case.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IntakeError {
    /// The lead breaks a field rule ([`validate::lead`]).
    #[error("{0}")]
    Invalid(FieldError),
    /// A database failure.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One lead to take in.
#[derive(Debug, Clone, Copy)]
pub struct Intake<'a> {
    /// The client the lead belongs to (the caller, or the lead source's owner).
    pub client: &'a ClientId,
    /// The lead.
    pub lead: &'a PushLead,
    /// The body exactly as received.
    pub raw_payload: &'a str,
    /// The lead source a platform pushed it through; `None` for `leads/hook`.
    pub pushed_via: Option<PushedVia<'a>>,
}

/// Takes in one lead (see the module docs).
///
/// # Errors
///
/// [`IntakeError`]; nothing is written then.
pub async fn intake(db: &Db, intake: Intake<'_>) -> Result<PushLeadResponse, IntakeError> {
    let mobile = validate::lead(intake.lead).map_err(IntakeError::Invalid)?;
    let new = NewLead {
        client: intake.client,
        lead: intake.lead,
        mobile: &mobile,
        raw_payload: intake.raw_payload,
        pushed_via: intake.pushed_via,
    };
    Ok(store(db, &new).await?)
}

async fn store(db: &Db, new: &NewLead<'_>) -> Result<PushLeadResponse, StoreError> {
    let now = db.now_millis();
    let keys = db.data_keys();
    let mut tx = begin_write(db).await?;
    if let Some(found) = leads::existing(&mut tx, keys, new.client, new.lead).await? {
        let answer = duplicate(&mut tx, keys, new.client, found, now).await?;
        tx.commit().await?;
        return Ok(answer);
    }
    let lead = new.lead;
    let contact = CustomerContact {
        mobile: new.mobile,
        name: &lead.name,
        province: lead.province.as_deref(),
        city: lead.city.as_deref(),
    };
    let (customer_id, _) = customers::find_or_create(&mut tx, keys, contact, now).await?;
    let lead_id = new_id("lead");
    if !leads::insert(&mut tx, keys, &lead_id, &customer_id, new, now).await? {
        // Another request stored the same lead between our check and our insert (possible
        // on PostgreSQL): drop what we wrote and answer like any duplicate.
        tx.rollback().await?;
        let mut tx = begin_write(db).await?;
        let found = leads::existing(&mut tx, keys, new.client, lead).await?;
        let Some(found) = found else {
            return Err(StoreError::Corrupt {
                table: "leads",
                detail: "conflicting lead vanished".into(),
            });
        };
        let answer = duplicate(&mut tx, keys, new.client, found, now).await?;
        tx.commit().await?;
        return Ok(answer);
    }
    customers::link(&mut tx, keys, new.client, &customer_id, contact.into(), now).await?;
    tx.commit().await?;
    Ok(PushLeadResponse::new(
        LeadId::new(lead_id),
        customer_id,
        false,
    ))
}

/// Answers a push that found `found` already stored by the caller: the original ids, with the
/// caller (re-)linked to its customer by the stored lead's details, not the retry's.
async fn duplicate(
    conn: &mut AnyConnection,
    keys: &DataKeys,
    client: &ClientId,
    found: StoredLead,
    now: i64,
) -> Result<PushLeadResponse, StoreError> {
    let details = LinkDetails {
        name: &found.name,
        province: found.province.as_deref(),
        city: found.city.as_deref(),
    };
    customers::link(conn, keys, client, &found.customer_id, details, now).await?;
    Ok(PushLeadResponse::new(
        found.lead_id,
        found.customer_id,
        true,
    ))
}
