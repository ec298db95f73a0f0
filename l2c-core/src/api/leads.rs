//! `POST /api/mobile/leads/hook`: a lead pushed by a channel (Douyin, Xiaohongshu, WeCom, …).
//!
//! ```
//! use l2c_core::api::leads::{LeadSource, PushLead};
//!
//! let lead: PushLead = serde_json::from_str(r#"{
//!     "source": "DOUYIN",
//!     "externalLeadId": "dy-7301",
//!     "name": "张三",
//!     "mobile": "138 0013 8000",
//!     "city": "杭州市",
//!     "formFields": [{"label": "户型", "value": "三室两厅"}],
//!     "submittedAt": "2026-11-20T10:15:00+08:00"
//! }"#).unwrap();
//! assert_eq!(lead.source, LeadSource::Douyin);
//! assert_eq!(lead.form_fields[0].label, "户型");
//! ```

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use super::ids::{CustomerId, LeadId};

/// The channel a lead came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum LeadSource {
    /// 抖音 (Douyin lead forms).
    Douyin,
    /// 小红书.
    Xiaohongshu,
    /// 企业微信.
    Wecom,
    /// 微信 (official account, mini program).
    Wechat,
    /// 百度.
    Baidu,
    /// 快手.
    Kuaishou,
    /// A walk-in at a showroom.
    Showroom,
    /// A referral by an existing customer.
    Referral,
    /// Anything else.
    Other,
}

impl LeadSource {
    /// Every source, in a stable order.
    pub const ALL: [LeadSource; 9] = [
        LeadSource::Douyin,
        LeadSource::Xiaohongshu,
        LeadSource::Wecom,
        LeadSource::Wechat,
        LeadSource::Baidu,
        LeadSource::Kuaishou,
        LeadSource::Showroom,
        LeadSource::Referral,
        LeadSource::Other,
    ];

    /// The wire name, e.g. `DOUYIN`.
    pub const fn as_str(self) -> &'static str {
        match self {
            LeadSource::Douyin => "DOUYIN",
            LeadSource::Xiaohongshu => "XIAOHONGSHU",
            LeadSource::Wecom => "WECOM",
            LeadSource::Wechat => "WECHAT",
            LeadSource::Baidu => "BAIDU",
            LeadSource::Kuaishou => "KUAISHOU",
            LeadSource::Showroom => "SHOWROOM",
            LeadSource::Referral => "REFERRAL",
            LeadSource::Other => "OTHER",
        }
    }
}

impl fmt::Display for LeadSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not a known [`LeadSource`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown lead source `{0}`")]
pub struct UnknownLeadSource(pub String);

impl FromStr for LeadSource {
    type Err = UnknownLeadSource;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LeadSource::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownLeadSource(s.to_owned()))
    }
}

/// One question and answer of the channel's lead form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct FormField {
    /// The question as shown to the user, e.g. `户型`.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*[^\\s\\u0000-\\u001F][^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*$",
            min_length = 1,
            max_length = 64,
            example = "户型"
        )
    )]
    pub label: String,
    /// The answer, e.g. `三室两厅`.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*$",
            max_length = 1000,
            example = "三室两厅"
        )
    )]
    pub value: String,
}

impl FormField {
    /// A form field.
    pub fn new(label: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            value: value.into(),
        }
    }
}

/// Advertising attribution ids, as the channel reports them.
///
/// Only a JSON object is accepted (serde's derive would also take an array of the values).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", from = "AttributionObject")]
#[non_exhaustive]
pub struct Attribution {
    /// The campaign (计划) id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*$",
            max_length = 128
        )
    )]
    pub campaign_id: Option<String>,
    /// The ad group (广告组) id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*$",
            max_length = 128
        )
    )]
    pub ad_group_id: Option<String>,
    /// The creative (创意) id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*$",
            max_length = 128
        )
    )]
    pub creative_id: Option<String>,
    /// The click id the channel assigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*$",
            max_length = 256
        )
    )]
    pub click_id: Option<String>,
}

/// The object form of [`Attribution`], read through a map-only visitor.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AttributionFields {
    #[serde(default)]
    campaign_id: Option<String>,
    #[serde(default)]
    ad_group_id: Option<String>,
    #[serde(default)]
    creative_id: Option<String>,
    #[serde(default)]
    click_id: Option<String>,
}

#[doc(hidden)]
#[derive(Debug)]
pub struct AttributionObject(AttributionFields);

impl<'de> Deserialize<'de> for AttributionObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjectOnly;
        impl<'de> serde::de::Visitor<'de> for ObjectOnly {
            type Value = AttributionFields;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                AttributionFields::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(ObjectOnly).map(AttributionObject)
    }
}

impl From<AttributionObject> for Attribution {
    fn from(AttributionObject(f): AttributionObject) -> Self {
        Self {
            campaign_id: f.campaign_id,
            ad_group_id: f.ad_group_id,
            creative_id: f.creative_id,
            click_id: f.click_id,
        }
    }
}

/// The body of `POST /api/mobile/leads/hook`.
///
/// `(source, externalLeadId)` identifies a lead: pushing the same pair again is answered with the
/// original ids and `duplicate: true`, and nothing is overwritten. The mobile number is normalized
/// (spaces, dashes and a `+86` / `0086` prefix removed) and must be a mainland mobile number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PushLead {
    /// The channel.
    pub source: LeadSource,
    /// The channel's id of the lead (1–128 characters).
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*[^\\s\\u0000-\\u001F][^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*$",
            min_length = 1,
            max_length = 128,
            example = "dy-7301"
        )
    )]
    pub external_lead_id: String,
    /// The person's name (1–64 characters).
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*[^\\s\\u0000-\\u001F][^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*$",
            min_length = 1,
            max_length = 64,
            example = "张三"
        )
    )]
    pub name: String,
    /// Mainland mobile number; `+86`/`0086`, spaces and dashes are accepted.
    #[cfg_attr(
        feature = "openapi",
        schema(
            example = "+86 138-0013-8000",
            pattern = r"^[ -]*(\+[ -]*8[ -]*6|0[ -]*0[ -]*8[ -]*6)?[ -]*1[ -]*[3-9]([ -]*[0-9]){9}[ -]*$"
        )
    )]
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = "^[ -]*(\\+[ -]*8[ -]*6|0[ -]*0[ -]*8[ -]*6)?[ -]*1[ -]*[3-9]([ -]*[0-9]){9}[ -]*$"
        )
    )]
    pub mobile: String,
    /// Province, e.g. `浙江省`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*$",
            max_length = 32,
            example = "浙江省"
        )
    )]
    pub province: Option<String>,
    /// City, e.g. `杭州市`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*$",
            max_length = 32,
            example = "杭州市"
        )
    )]
    pub city: Option<String>,
    /// What the person wants, in their words, e.g. `全屋定制 120㎡`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*$",
            max_length = 1000,
            example = "全屋定制，120㎡，预算 10 万"
        )
    )]
    pub intent: Option<String>,
    /// The channel's form, question by question.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 50))]
    pub form_fields: Vec<FormField>,
    /// Advertising attribution ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<Attribution>,
    /// When the person submitted the form (RFC 3339 with offset).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime, example = "2026-11-20T10:15:00+08:00"))]
    pub submitted_at: DateTime<FixedOffset>,
}

impl PushLead {
    /// A lead with the required fields; the optional ones start empty.
    pub fn new(
        source: LeadSource,
        external_lead_id: impl Into<String>,
        name: impl Into<String>,
        mobile: impl Into<String>,
        submitted_at: DateTime<FixedOffset>,
    ) -> Self {
        Self {
            source,
            external_lead_id: external_lead_id.into(),
            name: name.into(),
            mobile: mobile.into(),
            province: None,
            city: None,
            intent: None,
            form_fields: Vec::new(),
            attribution: None,
            submitted_at,
        }
    }
}

/// The answer to `POST /api/mobile/leads/hook`: 201 for a new lead, 200 for a duplicate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PushLeadResponse {
    /// The lead's id (the original one for a duplicate).
    pub lead_id: LeadId,
    /// The customer the lead created or was linked to (by mobile number).
    pub customer_id: CustomerId,
    /// Whether `(source, externalLeadId)` had been pushed before.
    pub duplicate: bool,
}

impl PushLeadResponse {
    /// A response.
    pub fn new(lead_id: LeadId, customer_id: CustomerId, duplicate: bool) -> Self {
        Self {
            lead_id,
            customer_id,
            duplicate,
        }
    }
}

/// A stored lead as `GET /api/mobile/leads/{leadId}` and `GET /api/mobile/leads` show it to the
/// client that owns it: the name and mobile number masked like a customer's (`张*`,
/// `138****8000`), a form answer that is a mobile number masked the same way, never the raw
/// payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Lead {
    /// The lead's id.
    pub id: LeadId,
    /// The channel.
    pub source: LeadSource,
    /// The channel's id of the lead (the platform's lead id for a pushed lead).
    pub external_lead_id: String,
    /// The lead source (`lsrc_…`) the platform pushed it through, if it came that way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead_source_id: Option<String>,
    /// The customer the lead was linked to.
    pub customer_id: CustomerId,
    /// The name, masked (`张*`).
    #[cfg_attr(feature = "openapi", schema(example = "张*"))]
    pub name: String,
    /// The mobile number, masked (`138****8000`).
    #[cfg_attr(feature = "openapi", schema(example = "138****8000"))]
    pub mobile: String,
    /// Province.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub province: Option<String>,
    /// City.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// What the person wants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    /// The form, question by question (mobile numbers masked).
    pub form_fields: Vec<FormField>,
    /// Advertising attribution ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<Attribution>,
    /// When the person submitted the form.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime, example = "2026-11-20T10:15:00+08:00"))]
    pub submitted_at: DateTime<FixedOffset>,
    /// When the platform received it.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime, example = "2026-11-20T10:15:01+08:00"))]
    pub created_at: DateTime<FixedOffset>,
}

impl Lead {
    /// A lead view with no optional field set; the caller passes already-masked `name` and
    /// `mobile`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: LeadId,
        source: LeadSource,
        external_lead_id: impl Into<String>,
        customer_id: CustomerId,
        name: impl Into<String>,
        mobile: impl Into<String>,
        submitted_at: DateTime<FixedOffset>,
        created_at: DateTime<FixedOffset>,
    ) -> Self {
        Self {
            id,
            source,
            external_lead_id: external_lead_id.into(),
            lead_source_id: None,
            customer_id,
            name: name.into(),
            mobile: mobile.into(),
            province: None,
            city: None,
            intent: None,
            form_fields: Vec::new(),
            attribution: None,
            submitted_at,
            created_at,
        }
    }
}

/// The query of `GET /api/mobile/leads`: filters and paging, newest first.
///
/// ```
/// use l2c_core::api::leads::{LeadQuery, LeadSource};
///
/// let q = LeadQuery::new().source(LeadSource::Xiaohongshu).page_size(50);
/// let v = serde_json::to_value(&q).unwrap();
/// assert_eq!(v["source"], "XIAOHONGSHU");
/// assert_eq!(v["pageSize"], 50);
/// assert!(v.get("externalLeadId").is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[non_exhaustive]
pub struct LeadQuery {
    /// Only leads of this channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<LeadSource>,
    /// Only the lead with this channel id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        param(
            max_length = 128,
            pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*$"
        )
    )]
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 128,
            pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*$"
        )
    )]
    pub external_lead_id: Option<String>,
    /// Only leads pushed through this lead source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        param(
            max_length = 128,
            pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*$"
        )
    )]
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 128,
            pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*$"
        )
    )]
    pub lead_source_id: Option<String>,
    /// Only leads received at or after this time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    #[cfg_attr(feature = "openapi", param(value_type = Option<String>, format = DateTime))]
    pub created_since: Option<DateTime<FixedOffset>>,
    /// The page, from 1 (default 1), at most 1,000,000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 1000000))]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1000000))]
    pub page: Option<u32>,
    /// Items per page, 1–100 (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 100))]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100))]
    pub page_size: Option<u32>,
}

impl LeadQuery {
    /// Every lead, first page, default size.
    pub fn new() -> Self {
        Self::default()
    }

    /// Filters by channel.
    #[must_use]
    pub fn source(mut self, source: LeadSource) -> Self {
        self.source = Some(source);
        self
    }

    /// Filters by the channel's lead id.
    #[must_use]
    pub fn external_lead_id(mut self, id: impl Into<String>) -> Self {
        self.external_lead_id = Some(id.into());
        self
    }

    /// Filters by lead source.
    #[must_use]
    pub fn lead_source_id(mut self, id: impl Into<String>) -> Self {
        self.lead_source_id = Some(id.into());
        self
    }

    /// Only leads received at or after `since`.
    #[must_use]
    pub fn created_since(mut self, since: DateTime<FixedOffset>) -> Self {
        self.created_since = Some(since);
        self
    }

    /// Sets the page (from 1).
    #[must_use]
    pub fn page(mut self, page: u32) -> Self {
        self.page = Some(page);
        self
    }

    /// Sets the page size (1–100).
    #[must_use]
    pub fn page_size(mut self, page_size: u32) -> Self {
        self.page_size = Some(page_size);
        self
    }
}
