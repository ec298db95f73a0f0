//! Reading leads back: a client's own leads, masked like customers (`GET /api/mobile/leads`,
//! `GET /api/mobile/leads/{leadId}`).

use l2c_core::ClientId;
use l2c_core::api::leads::{Attribution, FormField, Lead, LeadSource};
use l2c_core::api::{CustomerId, LeadId};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::sql::{millis_to_cst, parse_stored_time};
use super::{Db, StoreError};
use crate::domain::Mobile;
use crate::domain::mask::mask_name;
use crate::seal::{DataKeys, Field};

/// Lead reads. Get one with [`Db::lead_views`].
#[derive(Debug, Clone, Copy)]
pub struct LeadViewStore<'a> {
    db: &'a Db,
}

impl Db {
    /// The masked lead reads.
    pub fn lead_views(&self) -> LeadViewStore<'_> {
        LeadViewStore { db: self }
    }
}

/// The filters of a lead list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeadFilter {
    /// Only this channel.
    pub source: Option<LeadSource>,
    /// Only this channel id.
    pub external_lead_id: Option<String>,
    /// Only leads pushed through this lead source.
    pub lead_source_id: Option<String>,
    /// Only leads stored at or after this time (unix milliseconds).
    pub created_since: Option<i64>,
    /// The page, from 1.
    pub page: u32,
    /// Items per page.
    pub page_size: u32,
}

const COLUMNS: &str = "id, source, external_lead_id, lead_source_id, customer_id, name, \
                       mobile_e164, province, city, intent, form_fields, attribution, \
                       submitted_at, created_at";

/// A form answer that is a mobile number, masked; anything else as is.
fn mask_answer(value: &str) -> String {
    match Mobile::parse(value) {
        Ok(m) => m.masked(),
        Err(_) => value.to_owned(),
    }
}

fn from_row(keys: &DataKeys, r: &AnyRow) -> Result<Lead, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        table: "leads",
        detail,
    };
    let source: String = r.try_get("source")?;
    let source: LeadSource = source.parse().map_err(|e| corrupt(format!("{e}")))?;
    let id: String = r.try_get("id")?;
    let mobile = keys.open(
        Field::LeadMobile,
        &id,
        &r.try_get::<String, _>("mobile_e164")?,
    )?;
    let mobile = Mobile::from_e164(&mobile)
        .map_err(|_| corrupt("mobile_e164 is not a valid number".into()))?;
    let name = keys.open(Field::LeadName, &id, &r.try_get::<String, _>("name")?)?;
    let submitted: String = r.try_get("submitted_at")?;
    let mut lead = Lead::new(
        LeadId::new(id.clone()),
        source,
        r.try_get::<String, _>("external_lead_id")?,
        CustomerId::new(r.try_get::<String, _>("customer_id")?),
        mask_name(&name),
        mobile.masked(),
        parse_stored_time("leads", &submitted)?,
        millis_to_cst(r.try_get("created_at")?),
    );
    lead.lead_source_id = r.try_get("lead_source_id")?;
    lead.province = r.try_get("province")?;
    lead.city = r.try_get("city")?;
    lead.intent = r.try_get("intent")?;
    let form = keys.open(
        Field::LeadFormFields,
        &id,
        &r.try_get::<String, _>("form_fields")?,
    )?;
    let form: Vec<FormField> =
        serde_json::from_str(&form).map_err(|e| corrupt(format!("form_fields: {e}")))?;
    lead.form_fields = form
        .into_iter()
        .map(|f| {
            let value = mask_answer(&f.value);
            FormField::new(f.label, value)
        })
        .collect();
    let attribution: Option<String> = r.try_get("attribution")?;
    lead.attribution = attribution
        .map(|a| serde_json::from_str::<Attribution>(&a))
        .transpose()
        .map_err(|e| corrupt(format!("attribution: {e}")))?;
    Ok(lead)
}

impl LeadViewStore<'_> {
    /// `client`'s lead `id`, masked; `None` when it does not exist or is another client's.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the query fails or the row is corrupt.
    pub async fn get(&self, client: &ClientId, id: &str) -> Result<Option<Lead>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM leads WHERE id = $1 AND client_id = $2"
        ))
        .bind(id)
        .bind(client.as_str())
        .fetch_optional(self.db.pool())
        .await?;
        row.as_ref()
            .map(|r| from_row(self.db.data_keys(), r))
            .transpose()
    }

    /// One page of `client`'s leads matching `filter`, newest first, and the total.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when a query fails or a row is corrupt.
    pub async fn list(
        &self,
        client: &ClientId,
        filter: &LeadFilter,
    ) -> Result<(Vec<Lead>, u64), StoreError> {
        let mut conditions = vec!["client_id = $1".to_owned()];
        let mut texts: Vec<String> = Vec::new();
        if let Some(s) = filter.source {
            texts.push(s.as_str().to_owned());
            conditions.push(format!("source = ${}", texts.len() + 1));
        }
        if let Some(e) = &filter.external_lead_id {
            texts.push(e.clone());
            conditions.push(format!("external_lead_id = ${}", texts.len() + 1));
        }
        if let Some(l) = &filter.lead_source_id {
            texts.push(l.clone());
            conditions.push(format!("lead_source_id = ${}", texts.len() + 1));
        }
        let since_param = texts.len() + 2;
        if filter.created_since.is_some() {
            conditions.push(format!("created_at >= ${since_param}"));
        }
        let where_clause = conditions.join(" AND ");
        let next = since_param + usize::from(filter.created_since.is_some());
        let count_sql = format!("SELECT COUNT(*) AS n FROM leads WHERE {where_clause}");
        let page_sql = format!(
            "SELECT {COLUMNS} FROM leads WHERE {where_clause} \
             ORDER BY created_at DESC, id DESC LIMIT ${next} OFFSET ${}",
            next + 1
        );
        let mut count = sqlx::query(&count_sql).bind(client.as_str());
        let mut page = sqlx::query(&page_sql).bind(client.as_str());
        for t in &texts {
            count = count.bind(t.as_str());
            page = page.bind(t.as_str());
        }
        if let Some(since) = filter.created_since {
            count = count.bind(since);
            page = page.bind(since);
        }
        let total: i64 = count.fetch_one(self.db.pool()).await?.try_get("n")?;
        let offset = i64::from(filter.page.saturating_sub(1)) * i64::from(filter.page_size);
        let rows = page
            .bind(i64::from(filter.page_size))
            .bind(offset)
            .fetch_all(self.db.pool())
            .await?;
        let items = rows
            .iter()
            .map(|r| from_row(self.db.data_keys(), r))
            .collect::<Result<_, _>>()?;
        Ok((items, u64::try_from(total).unwrap_or(0)))
    }
}

#[cfg(test)]
mod tests {
    use super::mask_answer;

    #[test]
    fn mobile_answers_are_masked() {
        assert_eq!(mask_answer("+86 138-0013-8000"), "138****8000");
        assert_eq!(mask_answer("全屋定制"), "全屋定制");
    }
}
