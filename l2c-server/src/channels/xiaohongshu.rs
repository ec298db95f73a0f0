//! 小红书 聚光 landing-page form leads (落地页 → 数据推送).
//!
//! ```json
//! {"timestamp": 1721800000000, "source": "…",
//!  "data": {"leads_id": "65f0c1…", "submitted_time": "2024-07-24 13:46:40",
//!           "campaign_id": 1, "unit_id": 1, "creative_id": 1, …,
//!           "data": [{"label": "姓名", "value": "张三"}, {"label": "电话", "value": "13800138000"}]}}
//! ```
//!
//! - With a token configured, `X-Red-Signature: sha1=<hex>` must be HMAC-SHA1(token, raw body),
//!   checked before anything is parsed; without one, the URL's token is the only credential.
//! - The form answers are found by label ([`DEFAULT_LABELS`], each field's list replaceable in the
//!   source's `labels` setting); every answer is kept in `formFields`.
//! - `leads_id` is the platform's lead id; `submitted_time` is China time (UTC+8); without it,
//!   the envelope's millisecond `timestamp`, else the time of receipt.
//! - `campaign_id`, `unit_id` and `creative_id` become the attribution's campaign, ad group and
//!   creative.

use hmac::{Hmac, Mac};
use l2c_core::api::leads::{Attribution, FormField, LeadSource, PushLead};
use serde::Deserialize;
use serde_json::Value;
use sha1::Sha1;

use super::{ChannelError, Inbound, Outcome, UNNAMED, check_names, header, parse_time, text};
use crate::domain::FieldError;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-red-signature";

/// The default labels of each lead field (exact matches after trimming and a trailing colon).
pub const DEFAULT_LABELS: [(&str, &[&str]); 5] = [
    ("name", &["姓名", "称呼", "联系人", "名字", "您的姓名"]),
    (
        "mobile",
        &[
            "电话",
            "手机",
            "手机号",
            "手机号码",
            "联系电话",
            "联系方式",
            "电话号码",
            "您的电话",
        ],
    ),
    (
        "city",
        &["城市", "所在城市", "地区", "所在地区", "城市/地区"],
    ),
    ("province", &["省份", "所在省份", "省"]),
    ("intent", &["需求", "意向", "装修需求", "备注", "留言"]),
];

/// The label synonyms a source replaces, per lead field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Labels {
    /// Labels of the name.
    #[serde(default)]
    pub name: Option<Vec<String>>,
    /// Labels of the mobile number.
    #[serde(default)]
    pub mobile: Option<Vec<String>>,
    /// Labels of the city.
    #[serde(default)]
    pub city: Option<Vec<String>>,
    /// Labels of the province.
    #[serde(default)]
    pub province: Option<Vec<String>>,
    /// Labels of the intent.
    #[serde(default)]
    pub intent: Option<Vec<String>>,
}

/// A 聚光 source's settings (its token is the source's secret).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// Label synonyms replacing the defaults, per field.
    #[serde(default)]
    pub labels: Labels,
}

impl Settings {
    /// Checks the label lists.
    ///
    /// # Errors
    ///
    /// An empty or oversized list or label.
    pub fn validate(&self) -> Result<(), FieldError> {
        for (field, list) in self.overrides() {
            if let Some(list) = list {
                check_names(&format!("settings.labels.{field}"), list)?;
            }
        }
        Ok(())
    }

    fn overrides(&self) -> [(&'static str, Option<&Vec<String>>); 5] {
        let l = &self.labels;
        [
            ("name", l.name.as_ref()),
            ("mobile", l.mobile.as_ref()),
            ("city", l.city.as_ref()),
            ("province", l.province.as_ref()),
            ("intent", l.intent.as_ref()),
        ]
    }

    /// The labels of `field`: the source's own, else the defaults.
    pub fn labels(&self, field: &str) -> Vec<String> {
        if let Some((_, Some(list))) = self.overrides().into_iter().find(|(f, _)| *f == field) {
            return list.clone();
        }
        DEFAULT_LABELS
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, l)| l.iter().map(|s| (*s).to_owned()).collect())
            .unwrap_or_default()
    }
}

fn normalise_label(label: &str) -> String {
    label
        .trim()
        .trim_end_matches([':', '：', '*'])
        .trim()
        .to_lowercase()
}

/// hex(HMAC-SHA1(token, body)).
pub fn sign(token: &str, body: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(token.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// Verifies and maps a 聚光 push.
///
/// # Errors
///
/// [`ChannelError`].
pub fn handle(
    settings: &Settings,
    token: Option<&str>,
    inbound: &Inbound<'_>,
) -> Result<Outcome, ChannelError> {
    if let Some(token) = token {
        let Some(given) = header(inbound.headers, SIGNATURE_HEADER) else {
            return Err(ChannelError::BadSignature(
                "X-Red-Signature is required: this source has a token".into(),
            ));
        };
        if !super::hex_matches(given, "sha1=", &sign(token, inbound.body)) {
            return Err(ChannelError::BadSignature(
                "X-Red-Signature does not match the body under this source's token".into(),
            ));
        }
    }
    let body = super::parse_body(inbound.body)?;
    map(settings, &body, inbound).map(|lead| Outcome::Lead(Box::new(lead)))
}

fn map(settings: &Settings, body: &Value, inbound: &Inbound<'_>) -> Result<PushLead, ChannelError> {
    let Some(envelope) = body.as_object() else {
        return Err(ChannelError::Malformed(
            "the body must be a JSON object".into(),
        ));
    };
    // The record is under `data`; accept it at the top level too.
    let record = match envelope.get("data") {
        Some(Value::Object(d)) => d,
        _ if envelope.contains_key("leads_id") => envelope,
        _ => {
            return Err(ChannelError::Malformed(
                "expected a 聚光 push: `data` must be the lead object".into(),
            ));
        }
    };
    let leads_id = record.get("leads_id").and_then(text).ok_or_else(|| {
        ChannelError::unmappable("externalLeadId", "`data.leads_id` is missing or empty")
    })?;
    let answers = match record.get("data") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let label = item.get("label").and_then(text);
                let value = item.get("value").map_or(Some(String::new()), |v| {
                    text(v).or_else(|| v.is_null().then(String::new))
                });
                match (label, value) {
                    (Some(l), Some(v)) => Ok(FormField::new(l, v)),
                    _ => Err(ChannelError::Malformed(format!(
                        "`data.data[{i}]` must be {{\"label\": text, \"value\": text}}"
                    ))),
                }
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => {
            return Err(ChannelError::Malformed(
                "`data.data` must be the list of {label, value} answers".into(),
            ));
        }
    };
    let find = |field: &str| -> Option<String> {
        let wanted: Vec<String> = settings
            .labels(field)
            .iter()
            .map(|l| normalise_label(l))
            .collect();
        answers
            .iter()
            .find(|a| wanted.contains(&normalise_label(&a.label)) && !a.value.trim().is_empty())
            .map(|a| a.value.trim().to_owned())
    };
    let mobile = find("mobile").ok_or_else(|| {
        ChannelError::unmappable(
            "mobile",
            format!(
                "no form answer labelled {} holds a value; set the source's \
                 `settings.labels.mobile` to the form's label",
                settings.labels("mobile").join(" / ")
            ),
        )
    })?;
    let submitted_at = match record.get("submitted_time") {
        Some(v) if !v.is_null() => parse_time(v).map_err(|e| {
            ChannelError::unmappable("submittedAt", format!("`submitted_time`: {e}"))
        })?,
        _ => match envelope.get("timestamp") {
            Some(v) if !v.is_null() => parse_time(v).map_err(|e| {
                ChannelError::unmappable("submittedAt", format!("`timestamp`: {e}"))
            })?,
            _ => inbound.now,
        },
    };
    let name = find("name").unwrap_or_else(|| UNNAMED.to_owned());
    let mut lead = PushLead::new(
        LeadSource::Xiaohongshu,
        leads_id,
        name,
        mobile,
        submitted_at,
    );
    lead.city = find("city");
    lead.province = find("province");
    lead.intent = find("intent");
    lead.form_fields = answers;
    let mut attribution = Attribution::default();
    attribution.campaign_id = record.get("campaign_id").and_then(text);
    attribution.ad_group_id = record.get("unit_id").and_then(text);
    attribution.creative_id = record.get("creative_id").and_then(text);
    if attribution != Attribution::default() {
        lead.attribution = Some(attribution);
    }
    Ok(lead)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use http::HeaderMap;
    use serde_json::json;

    use super::*;
    use crate::store::sql::CST;

    fn inbound<'a>(headers: &'a HeaderMap, body: &'a [u8]) -> Inbound<'a> {
        Inbound {
            headers,
            body,
            peer: None,
            now: CST.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        }
    }

    fn sample() -> Vec<u8> {
        serde_json::to_vec(&json!({
            "timestamp": 1721800000000_i64,
            "data": {"leads_id": "65f0c1", "submitted_time": "2024-07-24 13:46:40",
                     "campaign_id": 11, "unit_id": 12, "creative_id": 13,
                     "data": [{"label": "称呼", "value": "张三"},
                              {"label": "手机号：", "value": "138 0013 8000"},
                              {"label": "所在城市", "value": "杭州"},
                              {"label": "装修需求", "value": "全屋定制"}]}
        }))
        .unwrap()
    }

    #[test]
    fn answers_are_found_by_synonym() {
        let body = sample();
        let headers = HeaderMap::new();
        let Outcome::Lead(lead) =
            handle(&Settings::default(), None, &inbound(&headers, &body)).unwrap()
        else {
            panic!("not a lead")
        };
        assert_eq!(lead.external_lead_id, "65f0c1");
        assert_eq!(lead.name, "张三");
        assert_eq!(lead.mobile, "138 0013 8000");
        assert_eq!(lead.city.as_deref(), Some("杭州"));
        assert_eq!(lead.intent.as_deref(), Some("全屋定制"));
        assert_eq!(lead.form_fields.len(), 4);
        assert_eq!(lead.submitted_at.to_rfc3339(), "2024-07-24T13:46:40+08:00");
        let a = lead.attribution.unwrap();
        assert_eq!(a.campaign_id.as_deref(), Some("11"));
        assert_eq!(a.ad_group_id.as_deref(), Some("12"));
    }

    #[test]
    fn configured_labels_replace_the_defaults() {
        let settings: Settings =
            serde_json::from_value(json!({"labels": {"mobile": ["微信手机"]}})).unwrap();
        let body = sample();
        let headers = HeaderMap::new();
        let err = handle(&settings, None, &inbound(&headers, &body)).unwrap_err();
        assert!(
            matches!(&err, ChannelError::Unmappable { field, reason } if field == "mobile" && reason.contains("微信手机")),
            "{err}"
        );
    }

    #[test]
    fn a_token_makes_the_signature_required() {
        let body = sample();
        let mut headers = HeaderMap::new();
        let err = handle(&Settings::default(), Some("tok"), &inbound(&headers, &body)).unwrap_err();
        assert!(matches!(err, ChannelError::BadSignature(_)));
        let sig = format!("sha1={}", hex::encode(sign("tok", &body)));
        headers.insert(SIGNATURE_HEADER, sig.parse().unwrap());
        assert!(handle(&Settings::default(), Some("tok"), &inbound(&headers, &body)).is_ok());
        assert!(matches!(
            handle(
                &Settings::default(),
                Some("other"),
                &inbound(&headers, &body)
            ),
            Err(ChannelError::BadSignature(_))
        ));
    }

    #[test]
    fn hmac_sha1_matches_rfc_2202() {
        // RFC 2202 test case 2.
        assert_eq!(
            hex::encode(sign("Jefe", b"what do ya want for nothing?")),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }
}
