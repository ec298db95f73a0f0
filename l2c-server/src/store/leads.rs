//! Leads pushed by channels, kept with their raw payload.

use l2c_core::ClientId;
use l2c_core::api::leads::{PushLead, PushLeadResponse};
use l2c_core::api::{CustomerId, LeadId};
use sqlx::{AnyConnection, Row};

use super::customers::{self, CustomerContact};
use super::domain_util::begin_write;
use super::{Db, StoreError};
use crate::domain::{Mobile, new_id};

/// Lead writes. Get one with [`Db::leads`].
#[derive(Debug, Clone, Copy)]
pub struct LeadStore<'a> {
    db: &'a Db,
}

impl Db {
    /// The leads.
    pub fn leads(&self) -> LeadStore<'_> {
        LeadStore { db: self }
    }
}

/// A validated lead ready to store.
#[derive(Debug, Clone, Copy)]
pub struct NewLead<'a> {
    /// The client that pushed it.
    pub client: &'a ClientId,
    /// The parsed body.
    pub lead: &'a PushLead,
    /// The normalized mobile number.
    pub mobile: &'a Mobile,
    /// The body exactly as received.
    pub raw_payload: &'a str,
    /// The lead source a platform pushed it through; `None` for `leads/hook`.
    pub pushed_via: Option<PushedVia<'a>>,
}

/// How a lead pushed by an ad platform arrived (`POST /api/hooks/leads/{token}`).
#[derive(Debug, Clone, Copy)]
pub struct PushedVia<'a> {
    /// The lead source (`lsrc_…`).
    pub lead_source_id: &'a str,
    /// The platform's delivery headers worth keeping (e.g. 飞鱼's `SIGNATURE` / `TIMESTAMP`,
    /// 抖音's `Msg-Id`) as a JSON object.
    pub headers: &'a str,
}

/// Why a lead push failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PushLeadError {
    /// Another client already pushed a lead with this `(source, externalLeadId)`; its ids are
    /// not the caller's to see, and the caller is not linked to its customer.
    #[error("the lead is already stored for another client")]
    OwnedByAnother,
    /// A database failure.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for PushLeadError {
    fn from(e: sqlx::Error) -> Self {
        PushLeadError::Store(StoreError::Database(e))
    }
}

/// A stored lead with the same `(source, externalLeadId)`: its ids and whether `client` owns it.
struct Existing {
    lead_id: LeadId,
    customer_id: CustomerId,
    owned: bool,
}

async fn existing(
    conn: &mut AnyConnection,
    client: &ClientId,
    lead: &PushLead,
) -> Result<Option<Existing>, StoreError> {
    let row = sqlx::query(
        "SELECT id, customer_id, client_id FROM leads \
         WHERE source = $1 AND external_lead_id = $2",
    )
    .bind(lead.source.as_str())
    .bind(&lead.external_lead_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match row {
        Some(r) => Some(Existing {
            lead_id: LeadId::new(r.try_get::<String, _>("id")?),
            customer_id: CustomerId::new(r.try_get::<String, _>("customer_id")?),
            owned: r.try_get::<String, _>("client_id")? == client.as_str(),
        }),
        None => None,
    })
}

/// Answers a push that found `found` already stored: the original ids when the caller owns it
/// (re-linking the caller to its customer), [`PushLeadError::OwnedByAnother`] otherwise.
async fn duplicate(
    conn: &mut AnyConnection,
    client: &ClientId,
    found: Existing,
    now: i64,
) -> Result<PushLeadResponse, PushLeadError> {
    if !found.owned {
        return Err(PushLeadError::OwnedByAnother);
    }
    customers::link(conn, client, &found.customer_id, now).await?;
    Ok(PushLeadResponse::new(
        found.lead_id,
        found.customer_id,
        true,
    ))
}

impl LeadStore<'_> {
    /// Stores a lead in one transaction: finds or creates the customer by mobile number, links
    /// the client to it and keeps the raw payload. A lead whose `(source, externalLeadId)` is
    /// already stored by the same client is answered with the original ids and
    /// `duplicate: true`; nothing of it is overwritten. One stored by another client is refused
    /// without revealing any of its ids, and the caller is not linked to its customer.
    ///
    /// # Errors
    ///
    /// [`PushLeadError::OwnedByAnother`] when another client pushed this
    /// `(source, externalLeadId)`; [`PushLeadError::Store`] when a query fails. Nothing is
    /// written then.
    pub async fn push(&self, new: NewLead<'_>) -> Result<PushLeadResponse, PushLeadError> {
        let now = self.db.now_millis();
        let mut tx = begin_write(self.db).await?;
        if let Some(found) = existing(&mut tx, new.client, new.lead).await? {
            let answer = duplicate(&mut tx, new.client, found, now).await;
            if answer.is_ok() {
                tx.commit().await?;
            } else {
                tx.rollback().await?;
            }
            return answer;
        }
        let lead = new.lead;
        let (customer_id, _) = customers::find_or_create(
            &mut tx,
            CustomerContact {
                mobile: new.mobile,
                name: &lead.name,
                province: lead.province.as_deref(),
                city: lead.city.as_deref(),
            },
            now,
        )
        .await?;
        let lead_id = new_id("lead");
        let form_fields = serde_json::to_string(&lead.form_fields)
            .map_err(|e| StoreError::Invalid(format!("formFields: {e}")))?;
        let attribution = lead
            .attribution
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StoreError::Invalid(format!("attribution: {e}")))?;
        let inserted = sqlx::query(
            "INSERT INTO leads (id, client_id, source, external_lead_id, customer_id, name, \
             mobile_e164, province, city, intent, form_fields, attribution, submitted_at, \
             raw_payload, created_at, lead_source_id, push_headers) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
             ON CONFLICT (source, external_lead_id) DO NOTHING",
        )
        .bind(&lead_id)
        .bind(new.client.as_str())
        .bind(lead.source.as_str())
        .bind(&lead.external_lead_id)
        .bind(customer_id.as_str())
        .bind(lead.name.trim())
        .bind(new.mobile.e164())
        .bind(lead.province.as_deref())
        .bind(lead.city.as_deref())
        .bind(lead.intent.as_deref())
        .bind(form_fields)
        .bind(attribution)
        .bind(lead.submitted_at.to_rfc3339())
        .bind(new.raw_payload)
        .bind(now)
        .bind(new.pushed_via.map(|v| v.lead_source_id))
        .bind(new.pushed_via.map(|v| v.headers))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            // Another request stored the same lead between our check and our insert (possible
            // on PostgreSQL): drop what we wrote and answer like any duplicate.
            tx.rollback().await?;
            let mut tx = begin_write(self.db).await?;
            let found = existing(&mut tx, new.client, lead).await?;
            let Some(found) = found else {
                return Err(StoreError::Corrupt {
                    table: "leads",
                    detail: "conflicting lead vanished".into(),
                }
                .into());
            };
            let answer = duplicate(&mut tx, new.client, found, now).await;
            if answer.is_ok() {
                tx.commit().await?;
            } else {
                tx.rollback().await?;
            }
            return answer;
        }
        customers::link(&mut tx, new.client, &customer_id, now).await?;
        tx.commit().await?;
        Ok(PushLeadResponse::new(
            LeadId::new(lead_id),
            customer_id,
            false,
        ))
    }

    /// The raw payload a lead was received with (operators and tests).
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] when the query fails.
    pub async fn raw_payload(&self, id: &LeadId) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT raw_payload FROM leads WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(self.db.pool())
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("raw_payload")?),
            None => None,
        })
    }

    /// How many leads are stored (tests check that a refused request wrote nothing).
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] when the query fails.
    pub async fn count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM leads")
            .fetch_one(self.db.pool())
            .await?
            .try_get("n")?)
    }
}
