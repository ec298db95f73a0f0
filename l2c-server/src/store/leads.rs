//! Leads pushed by channels, kept with their raw payload.

use l2c_core::ClientId;
use l2c_core::api::leads::{PushLead, PushLeadResponse};
use l2c_core::api::{CustomerId, LeadId};
use sqlx::{AnyConnection, Row};

use super::customers::{self, CustomerContact, LinkDetails};
use super::sql::begin_write;
use super::{Db, StoreError};
use crate::domain::{Mobile, new_id};
use crate::seal::{DataKeys, Field};

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

/// The lead the same client already stored with this `(source, externalLeadId)`.
struct Existing {
    lead_id: LeadId,
    customer_id: CustomerId,
    name: String,
    province: Option<String>,
    city: Option<String>,
}

async fn existing(
    conn: &mut AnyConnection,
    keys: &DataKeys,
    client: &ClientId,
    lead: &PushLead,
) -> Result<Option<Existing>, StoreError> {
    let row = sqlx::query(
        "SELECT id, customer_id, name, province, city FROM leads \
         WHERE client_id = $1 AND source = $2 AND external_lead_id = $3",
    )
    .bind(client.as_str())
    .bind(lead.source.as_str())
    .bind(&lead.external_lead_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match row {
        Some(r) => {
            let id: String = r.try_get("id")?;
            let name = keys.open(Field::LeadName, &id, &r.try_get::<String, _>("name")?)?;
            Some(Existing {
                lead_id: LeadId::new(id),
                customer_id: CustomerId::new(r.try_get::<String, _>("customer_id")?),
                name,
                province: r.try_get("province")?,
                city: r.try_get("city")?,
            })
        }
        None => None,
    })
}

/// Answers a push that found `found` already stored by the caller: the original ids, with the
/// caller (re-)linked to its customer by the stored lead's details, not the retry's.
async fn duplicate(
    conn: &mut AnyConnection,
    keys: &DataKeys,
    client: &ClientId,
    found: Existing,
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

impl LeadStore<'_> {
    /// Stores a lead in one transaction: finds or creates the customer by mobile number, links
    /// the client to it (with the lead's name and region, see
    /// [`CustomerStore::masked_view`](super::customers::CustomerStore::masked_view)) and keeps
    /// the raw payload.
    ///
    /// `(source, externalLeadId)` is unique per client: a lead the same client already stored
    /// is answered with the original ids and `duplicate: true`, nothing of it overwritten; the
    /// same pair pushed by another client is another lead, and nothing about it shows.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when a query fails; nothing is written then.
    pub async fn push(&self, new: NewLead<'_>) -> Result<PushLeadResponse, StoreError> {
        let now = self.db.now_millis();
        let keys = self.db.data_keys();
        let mut tx = begin_write(self.db).await?;
        if let Some(found) = existing(&mut tx, keys, new.client, new.lead).await? {
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
             ON CONFLICT (client_id, source, external_lead_id) DO NOTHING",
        )
        .bind(&lead_id)
        .bind(new.client.as_str())
        .bind(lead.source.as_str())
        .bind(&lead.external_lead_id)
        .bind(customer_id.as_str())
        .bind(keys.seal(Field::LeadName, &lead_id, lead.name.trim()))
        .bind(keys.seal(Field::LeadMobile, &lead_id, new.mobile.e164()))
        .bind(lead.province.as_deref())
        .bind(lead.city.as_deref())
        .bind(lead.intent.as_deref())
        .bind(keys.seal(Field::LeadFormFields, &lead_id, &form_fields))
        .bind(attribution)
        .bind(lead.submitted_at.to_rfc3339())
        .bind(keys.seal(Field::LeadRawPayload, &lead_id, new.raw_payload))
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
            let found = existing(&mut tx, keys, new.client, lead).await?;
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
            Some(r) => Some(self.db.data_keys().open(
                Field::LeadRawPayload,
                id.as_str(),
                &r.try_get::<String, _>("raw_payload")?,
            )?),
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
