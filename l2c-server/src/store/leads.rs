//! Leads pushed by channels, kept with their raw payload.
//!
//! Persistence only: [`existing`] and [`insert`] run inside the transaction of the lead intake
//! use case ([`crate::usecases::lead_intake`]), which decides what a duplicate is answered with.

use l2c_core::ClientId;
use l2c_core::api::leads::PushLead;
use l2c_core::api::{CustomerId, LeadId};
use sqlx::{AnyConnection, Row};

use super::sql::{backend_of, planned_each_run};
use super::{Db, StoreError};
use crate::domain::Mobile;
use crate::seal::{DataKeys, Field};

/// [`existing`]: run with [`existing_lead_query`].
pub const EXISTING_LEAD_SQL: &str = "SELECT id, customer_id, name, province, city FROM leads \
     WHERE client_id = $1 AND source = $2 AND external_lead_id = $3";
/// [`insert`].
pub const INSERT_LEAD_SQL: &str = "INSERT INTO leads (id, client_id, source, external_lead_id, \
     customer_id, name, mobile_e164, province, city, intent, form_fields, attribution, \
     submitted_at, raw_payload, created_at, lead_source_id, push_headers) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
     ON CONFLICT (client_id, source, external_lead_id) DO NOTHING";

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

/// The lead a client already stored with a `(source, externalLeadId)`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredLead {
    /// The lead.
    pub lead_id: LeadId,
    /// Its customer.
    pub customer_id: CustomerId,
    /// The name it was stored with.
    pub name: String,
    /// The province it was stored with.
    pub province: Option<String>,
    /// The city it was stored with.
    pub city: Option<String>,
}

/// [`EXISTING_LEAD_SQL`] as [`existing`] runs it on `conn`: planned at each run on PostgreSQL
/// ([`planned_each_run`]).
pub fn existing_lead_query<'q>(
    conn: &AnyConnection,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    planned_each_run(EXISTING_LEAD_SQL, backend_of(conn))
}

/// The lead `client` already stored with `lead`'s `(source, externalLeadId)`, if any.
///
/// # Errors
///
/// [`StoreError`] when the query fails.
pub async fn existing(
    conn: &mut AnyConnection,
    keys: &DataKeys,
    client: &ClientId,
    lead: &PushLead,
) -> Result<Option<StoredLead>, StoreError> {
    let row = existing_lead_query(conn)
        .bind(client.as_str())
        .bind(lead.source.as_str())
        .bind(&lead.external_lead_id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(match row {
        Some(r) => {
            let id: String = r.try_get("id")?;
            let name = keys.open(Field::LeadName, &id, &r.try_get::<String, _>("name")?)?;
            Some(StoredLead {
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

/// Inserts lead `id` of `new.client` for `customer_id`; `false` (nothing written) when the
/// client already stored its `(source, externalLeadId)` (see [`existing`]).
///
/// # Errors
///
/// [`StoreError`].
pub async fn insert(
    conn: &mut AnyConnection,
    keys: &DataKeys,
    id: &str,
    customer_id: &CustomerId,
    new: &NewLead<'_>,
    now: i64,
) -> Result<bool, StoreError> {
    let lead = new.lead;
    let form_fields = serde_json::to_string(&lead.form_fields)
        .map_err(|e| StoreError::Invalid(format!("formFields: {e}")))?;
    let attribution = lead
        .attribution
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| StoreError::Invalid(format!("attribution: {e}")))?;
    let inserted = sqlx::query(INSERT_LEAD_SQL)
        .bind(id)
        .bind(new.client.as_str())
        .bind(lead.source.as_str())
        .bind(&lead.external_lead_id)
        .bind(customer_id.as_str())
        .bind(keys.seal(Field::LeadName, id, lead.name.trim()))
        .bind(keys.seal(Field::LeadMobile, id, new.mobile.e164()))
        .bind(lead.province.as_deref())
        .bind(lead.city.as_deref())
        .bind(lead.intent.as_deref())
        .bind(keys.seal(Field::LeadFormFields, id, &form_fields))
        .bind(attribution)
        .bind(lead.submitted_at.to_rfc3339())
        .bind(keys.seal(Field::LeadRawPayload, id, new.raw_payload))
        .bind(now)
        .bind(new.pushed_via.map(|v| v.lead_source_id))
        .bind(new.pushed_via.map(|v| v.headers))
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok(inserted == 1)
}

impl LeadStore<'_> {
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
