//! 巨量引擎 飞鱼 CRM lead pushes (抖音 / 今日头条 ads; 设置 → API 设置 → 线索推送规则).
//!
//! The advertiser edits, in 飞鱼, which platform field goes to which JSON key, so every lead
//! field is looked up under a list of keys (the first present wins), replaceable per source in
//! the `fields` setting. The defaults follow the platform's own vocabulary:
//!
//! | lead field | default keys |
//! |---|---|
//! | `externalLeadId` | `clue_id`, `id` |
//! | `mobile` | `telphone` (sic), `telephone`, `phone` |
//! | `name` | `name` |
//! | `province` | `province_name` |
//! | `city` | `city_name` |
//! | `createTime` | `create_time` (unix seconds as a string), `create_time_detail` |
//! | `intent` | `remark` |
//! | `formFields` | `remark_dict` (the advertiser's own form fields, a map) |
//!
//! `campaign_id`, `ad_id` / `promotion_id`, `creative_id` and `req_id` become the attribution.
//! A 飞鱼 push is authenticated by the URL's token, optionally by an IP allowlist
//! (`allowedIps`); the `SIGNATURE` / `TIMESTAMP` headers it may carry (their construction is not
//! documented) are recorded with the lead, never required.

use std::net::IpAddr;

use l2c_core::api::leads::{Attribution, FormField, LeadSource, PushLead};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{ChannelError, Inbound, Outcome, UNNAMED, check_names, parse_time, text};
use crate::domain::FieldError;

/// The headers 飞鱼 may sign a push with; recorded, not checked.
pub const SIGNATURE_HEADERS: [&str; 2] = ["signature", "timestamp"];

/// The default keys of each lead field.
pub const DEFAULT_FIELDS: [(&str, &[&str]); 8] = [
    ("externalLeadId", &["clue_id", "id"]),
    ("mobile", &["telphone", "telephone", "phone"]),
    ("name", &["name"]),
    ("province", &["province_name"]),
    ("city", &["city_name"]),
    ("createTime", &["create_time", "create_time_detail"]),
    ("intent", &["remark"]),
    ("formFields", &["remark_dict"]),
];

/// The keys a source replaces, per lead field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fields {
    /// Keys of the platform's lead id.
    #[serde(default)]
    pub external_lead_id: Option<Vec<String>>,
    /// Keys of the mobile number.
    #[serde(default)]
    pub mobile: Option<Vec<String>>,
    /// Keys of the name.
    #[serde(default)]
    pub name: Option<Vec<String>>,
    /// Keys of the province.
    #[serde(default)]
    pub province: Option<Vec<String>>,
    /// Keys of the city.
    #[serde(default)]
    pub city: Option<Vec<String>>,
    /// Keys of the creation time.
    #[serde(default)]
    pub create_time: Option<Vec<String>>,
    /// Keys of the intent.
    #[serde(default)]
    pub intent: Option<Vec<String>>,
    /// Keys of the map of further form answers.
    #[serde(default)]
    pub form_fields: Option<Vec<String>>,
}

/// A 飞鱼 source's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// The field mapping, per lead field.
    #[serde(default)]
    pub fields: Fields,
    /// Addresses or CIDR blocks allowed to push (anyone with the URL when absent).
    #[serde(default)]
    pub allowed_ips: Option<Vec<String>>,
}

/// An IP network `addr/prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Parses `1.2.3.4`, `10.0.0.0/8` or an IPv6 equivalent.
    ///
    /// # Errors
    ///
    /// What is wrong.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{s}` is not an IP address or CIDR block"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}`: the prefix length must be 0 to {max}"))?,
        };
        Ok(Self { addr, prefix })
    }

    /// Whether `ip` is inside (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl Settings {
    /// Checks the key lists and the allowlist.
    ///
    /// # Errors
    ///
    /// The first bad entry.
    pub fn validate(&self) -> Result<(), FieldError> {
        for (field, list) in self.overrides() {
            if let Some(list) = list {
                check_names(&format!("settings.fields.{field}"), list)?;
            }
        }
        if let Some(ips) = &self.allowed_ips {
            if ips.is_empty() || ips.len() > 50 {
                return Err(FieldError::new(
                    "settings.allowedIps",
                    "must list 1 to 50 addresses or CIDR blocks (omit it to allow any)",
                ));
            }
            for (i, ip) in ips.iter().enumerate() {
                IpNet::parse(ip)
                    .map_err(|e| FieldError::new(format!("settings.allowedIps[{i}]"), e))?;
            }
        }
        Ok(())
    }

    fn overrides(&self) -> [(&'static str, Option<&Vec<String>>); 8] {
        let f = &self.fields;
        [
            ("externalLeadId", f.external_lead_id.as_ref()),
            ("mobile", f.mobile.as_ref()),
            ("name", f.name.as_ref()),
            ("province", f.province.as_ref()),
            ("city", f.city.as_ref()),
            ("createTime", f.create_time.as_ref()),
            ("intent", f.intent.as_ref()),
            ("formFields", f.form_fields.as_ref()),
        ]
    }

    /// The keys of `field`: the source's own, else the defaults.
    pub fn keys(&self, field: &str) -> Vec<String> {
        if let Some((_, Some(list))) = self.overrides().into_iter().find(|(f, _)| *f == field) {
            return list.clone();
        }
        DEFAULT_FIELDS
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, l)| l.iter().map(|s| (*s).to_owned()).collect())
            .unwrap_or_default()
    }
}

/// Maps a 飞鱼 push.
///
/// # Errors
///
/// [`ChannelError`].
pub fn handle(settings: &Settings, inbound: &Inbound<'_>) -> Result<Outcome, ChannelError> {
    if let Some(allowed) = &settings.allowed_ips {
        let permitted = inbound.peer.is_some_and(|peer| {
            allowed
                .iter()
                .filter_map(|s| IpNet::parse(s).ok())
                .any(|net| net.contains(peer))
        });
        if !permitted {
            return Err(ChannelError::Forbidden(
                "the sender's address is not in this source's `allowedIps`".into(),
            ));
        }
    }
    let body = super::parse_body(inbound.body)?;
    let Some(record) = body.as_object() else {
        return Err(ChannelError::Malformed(
            "the body must be a JSON object".into(),
        ));
    };
    map(settings, record, inbound).map(|lead| Outcome::Lead(Box::new(lead)))
}

fn first<'v>(record: &'v Map<String, Value>, keys: &[String]) -> Option<(&'v str, &'v Value)> {
    keys.iter().find_map(|k| {
        record
            .get_key_value(k.as_str())
            .filter(|(_, v)| text(v).is_some() || v.is_object())
            .map(|(k, v)| (k.as_str(), v))
    })
}

fn first_text(record: &Map<String, Value>, keys: &[String]) -> Option<String> {
    first(record, keys).and_then(|(_, v)| text(v))
}

fn map(
    settings: &Settings,
    record: &Map<String, Value>,
    inbound: &Inbound<'_>,
) -> Result<PushLead, ChannelError> {
    let keys = |f: &str| settings.keys(f);
    let missing = |field: &str| {
        ChannelError::unmappable(
            field,
            format!(
                "none of the keys {} holds a value; map the 飞鱼 field to one of them, or set \
                 the source's `settings.fields.{field}`",
                keys(field).join(", ")
            ),
        )
    };
    let clue_id =
        first_text(record, &keys("externalLeadId")).ok_or_else(|| missing("externalLeadId"))?;
    let mobile = first_text(record, &keys("mobile")).ok_or_else(|| missing("mobile"))?;
    let submitted_at = match first(record, &keys("createTime")) {
        Some((key, v)) => parse_time(v)
            .map_err(|e| ChannelError::unmappable("submittedAt", format!("`{key}`: {e}")))?,
        None => inbound.now,
    };
    let name = first_text(record, &keys("name")).unwrap_or_else(|| UNNAMED.to_owned());
    let mut lead = PushLead::new(LeadSource::Douyin, clue_id, name, mobile, submitted_at);
    lead.province = first_text(record, &keys("province"));
    lead.city = first_text(record, &keys("city"));
    lead.intent = first_text(record, &keys("intent"));
    if let Some((key, v)) = first(record, &keys("formFields")) {
        let Value::Object(answers) = v else {
            return Err(ChannelError::Malformed(format!(
                "`{key}` must be an object of form answers"
            )));
        };
        lead.form_fields = answers
            .iter()
            .map(|(label, value)| FormField::new(label.trim(), text(value).unwrap_or_default()))
            .collect();
    }
    let mut attribution = Attribution::default();
    let get = |names: &[&str]| names.iter().find_map(|k| record.get(*k).and_then(text));
    attribution.campaign_id = get(&["campaign_id"]);
    attribution.ad_group_id = get(&["ad_id", "promotion_id"]);
    attribution.creative_id = get(&["creative_id"]);
    attribution.click_id = get(&["req_id"]);
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

    fn run(
        settings: &Settings,
        body: &Value,
        peer: Option<IpAddr>,
    ) -> Result<PushLead, ChannelError> {
        let headers = HeaderMap::new();
        let bytes = serde_json::to_vec(body).unwrap();
        let inbound = Inbound {
            headers: &headers,
            body: &bytes,
            peer,
            now: CST.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        };
        match handle(settings, &inbound)? {
            Outcome::Lead(l) => Ok(*l),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_sample_record_maps_with_the_defaults() {
        let lead = run(
            &Settings::default(),
            &json!({"clue_id":"7212","telphone":"13775502308","name":"王女士",
                    "province_name":"江苏","city_name":"镇江","create_time":"1679475637",
                    "remark_dict":{"装修需求":"全屋定制"},"adv_id":"1759","ad_id":"1760",
                    "app_name":"抖音"}),
            None,
        )
        .unwrap();
        assert_eq!(lead.source, LeadSource::Douyin);
        assert_eq!(lead.external_lead_id, "7212");
        assert_eq!(lead.mobile, "13775502308");
        assert_eq!(lead.city.as_deref(), Some("镇江"));
        assert_eq!(lead.submitted_at.to_rfc3339(), "2023-03-22T17:00:37+08:00");
        assert_eq!(
            lead.form_fields,
            vec![FormField::new("装修需求", "全屋定制")]
        );
        assert_eq!(
            lead.attribution.unwrap().ad_group_id.as_deref(),
            Some("1760")
        );
    }

    #[test]
    fn a_custom_mapping_and_a_missing_phone() {
        let settings: Settings = serde_json::from_value(
            json!({"fields": {"mobile": ["手机"], "externalLeadId": ["线索ID"]}}),
        )
        .unwrap();
        let lead = run(
            &settings,
            &json!({"线索ID": 9, "手机": "+86 138-0013-8000"}),
            None,
        )
        .unwrap();
        assert_eq!(lead.external_lead_id, "9");
        assert_eq!(lead.name, UNNAMED);
        let err = run(
            &settings,
            &json!({"线索ID": 9, "telphone": "13800138000"}),
            None,
        )
        .unwrap_err();
        assert!(
            matches!(&err, ChannelError::Unmappable { field, reason } if field == "mobile" && reason.contains("手机")),
            "{err}"
        );
    }

    #[test]
    fn the_allowlist_is_enforced() {
        let settings: Settings =
            serde_json::from_value(json!({"allowedIps": ["10.0.0.0/8", "::1"]})).unwrap();
        settings.validate().unwrap();
        let body = json!({"clue_id":"1","telphone":"13800138000"});
        assert!(run(&settings, &body, Some("10.1.2.3".parse().unwrap())).is_ok());
        assert!(run(&settings, &body, Some("::ffff:10.1.2.3".parse().unwrap())).is_ok());
        assert!(matches!(
            run(&settings, &body, Some("11.0.0.1".parse().unwrap())),
            Err(ChannelError::Forbidden(_))
        ));
        assert!(matches!(
            run(&settings, &body, None),
            Err(ChannelError::Forbidden(_))
        ));
        let bad: Settings = serde_json::from_value(json!({"allowedIps": ["10.0.0.0/33"]})).unwrap();
        assert_eq!(bad.validate().unwrap_err().field, "settings.allowedIps[0]");
    }
}
