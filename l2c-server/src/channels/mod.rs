//! The ad platforms' native lead pushes: per channel, verify the signature on the raw body, then
//! parse the platform's payload and map it to a [`PushLead`] — pure functions, no I/O.
//!
//! `POST /api/hooks/leads/{token}` ([`crate::routes::hooks`]) finds the lead source by its token,
//! calls [`handle`] with the source's [`Settings`] and secret, and stores a mapped lead through
//! the same path as `POST /api/mobile/leads/hook`. Each adapter's module documents its format
//! (see also `CHANNELS.md` of the design notes):
//!
//! | channel | module | signature | platform lead id |
//! |---|---|---|---|
//! | `XIAOHONGSHU` | [`xiaohongshu`] | `X-Red-Signature: sha1=hex(HMAC-SHA1(token, body))`, when a token is configured | `data.leads_id` |
//! | `FEIYU` | [`feiyu`] | none required (the URL token; optional IP allowlist) | `clue_id` / `id` (configurable) |
//! | `DOUYIN_OPEN` | [`douyin`] | `X-Douyin-Signature: hex(SHA-1(client_secret ‖ body))` | the `Msg-Id` header |
//! | `GENERIC` | [`generic`] | hex(HMAC-SHA256(secret, body)) in a configured header | a JSON pointer |
//!
//! What goes wrong maps to the status codes the platforms understand ([`ChannelError`]): a bad
//! signature is 401, an unparseable body 400, a lead that cannot be mapped 422 — all "do not
//! retry" — and nothing here is ever a 5xx.

pub mod douyin;
pub mod feiyu;
pub mod generic;
pub mod xiaohongshu;

use std::net::IpAddr;

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone};
use http::HeaderMap;
use l2c_core::api::lead_sources::Channel;
use l2c_core::api::leads::PushLead;
use serde::de::DeserializeOwned;
use serde_json::Value;
use subtle::ConstantTimeEq;

use crate::domain::FieldError;
use crate::store::sql::CST;

/// The name given to a lead whose platform form asked for none (the lead API requires one).
pub const UNNAMED: &str = "未留名";

/// One push as received.
#[derive(Debug, Clone, Copy)]
pub struct Inbound<'a> {
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// The raw body, exactly as received.
    pub body: &'a [u8],
    /// The sender's address (the forwarded one behind a trusted proxy).
    pub peer: Option<IpAddr>,
    /// The time of receipt, for a lead whose payload carries none.
    pub now: DateTime<FixedOffset>,
}

/// What a push amounts to.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Outcome {
    /// A lead to store.
    Lead(Box<PushLead>),
    /// A URL verification to answer with this JSON body (抖音's `verify_webhook`).
    Challenge(Value),
    /// A genuine event that carries no lead: acknowledged with 200, nothing stored.
    Ignored(String),
}

/// Why a push is refused. Every variant is a 4xx: the platforms do not retry those.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// The signature is missing or wrong (401).
    #[error("signature: {0}")]
    BadSignature(String),
    /// The sender is not allowed (403), e.g. outside the source's IP allowlist.
    #[error("{0}")]
    Forbidden(String),
    /// The body is not what the channel sends (400).
    #[error("{0}")]
    Malformed(String),
    /// The body parsed, but no lead can be made of it (422): `field` is the lead field.
    #[error("`{field}`: {reason}")]
    Unmappable {
        /// The lead field that could not be filled, e.g. `mobile`.
        field: String,
        /// Why, naming the payload keys or labels looked at.
        reason: String,
    },
}

impl ChannelError {
    /// A lead field that cannot be filled.
    pub fn unmappable(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ChannelError::Unmappable {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// A source's validated settings, one variant per channel (secrets are kept apart).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Settings {
    /// 小红书 聚光.
    Xiaohongshu(xiaohongshu::Settings),
    /// 巨量引擎 飞鱼.
    Feiyu(feiyu::Settings),
    /// 抖音开放平台.
    DouyinOpen(douyin::Settings),
    /// Any other platform.
    Generic(generic::Settings),
}

/// The member of `settings` holding a channel's own secret, if the channel has one.
pub fn secret_member(channel: Channel) -> Option<&'static str> {
    match channel {
        Channel::Xiaohongshu => Some("token"),
        Channel::DouyinOpen => Some("clientSecret"),
        Channel::Generic => Some("secret"),
        _ => None,
    }
}

/// The secret member of a settings object as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretField {
    /// Not given.
    Absent,
    /// Given as `null`: remove the stored secret.
    Null,
    /// Given.
    Value(String),
}

/// The longest secret accepted in settings.
pub const MAX_SECRET_CHARS: usize = 256;

/// Splits `settings` into the settings to store (without the secret) and the secret member.
///
/// # Errors
///
/// `settings` is not an object, or the secret is not a non-empty string of at most 256
/// characters.
pub fn split_secret(
    channel: Channel,
    settings: &Value,
) -> Result<(Value, SecretField), FieldError> {
    let Value::Object(map) = settings else {
        return Err(FieldError::new("settings", "must be a JSON object"));
    };
    let mut rest = map.clone();
    let Some(member) = secret_member(channel) else {
        return Ok((Value::Object(rest), SecretField::Absent));
    };
    let field = format!("settings.{member}");
    let secret = match rest.remove(member) {
        None => SecretField::Absent,
        Some(Value::Null) => SecretField::Null,
        Some(Value::String(s)) => {
            let s = s.trim().to_owned();
            if s.is_empty() {
                return Err(FieldError::new(
                    field,
                    "must not be empty (use null to remove it)",
                ));
            }
            if s.chars().count() > MAX_SECRET_CHARS {
                return Err(FieldError::new(
                    field,
                    format!("must be at most {MAX_SECRET_CHARS} characters"),
                ));
            }
            crate::domain::validate::printable(&field, &s)?;
            SecretField::Value(s)
        }
        Some(_) => return Err(FieldError::new(field, "must be a string")),
    };
    Ok((Value::Object(rest), secret))
}

/// Parses stored or given settings (without the secret) for `channel`; `has_secret` says whether
/// a secret will be stored with them.
///
/// # Errors
///
/// The first setting that is unknown, of the wrong type or invalid, named as `settings.…`; a
/// channel whose secret is required (`DOUYIN_OPEN`) without one.
pub fn parse_settings(
    channel: Channel,
    settings: &Value,
    has_secret: bool,
) -> Result<Settings, FieldError> {
    match channel {
        Channel::Xiaohongshu => {
            let s: xiaohongshu::Settings = typed(settings)?;
            s.validate()?;
            Ok(Settings::Xiaohongshu(s))
        }
        Channel::Feiyu => {
            let s: feiyu::Settings = typed(settings)?;
            s.validate()?;
            Ok(Settings::Feiyu(s))
        }
        Channel::DouyinOpen => {
            if !has_secret {
                return Err(FieldError::new(
                    "settings.clientSecret",
                    "is required: the 抖音开放平台 signs every webhook with the app's client secret",
                ));
            }
            let s: douyin::Settings = typed(settings)?;
            s.validate()?;
            Ok(Settings::DouyinOpen(s))
        }
        Channel::Generic => {
            let s: generic::Settings = typed(settings)?;
            s.validate()?;
            Ok(Settings::Generic(s))
        }
        _ => Err(FieldError::new("channel", "is not supported")),
    }
}

fn typed<T: DeserializeOwned>(settings: &Value) -> Result<T, FieldError> {
    serde_path_to_error::deserialize::<_, T>(settings).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let field = if path == "." {
            "settings".to_owned()
        } else {
            format!("settings.{path}")
        };
        FieldError::new(field, inner)
    })
}

/// Verifies and maps one push.
///
/// # Errors
///
/// [`ChannelError`]: a bad signature, a body the channel does not send, a lead that cannot be
/// mapped.
pub fn handle(
    settings: &Settings,
    secret: Option<&str>,
    inbound: &Inbound<'_>,
) -> Result<Outcome, ChannelError> {
    let outcome = match settings {
        Settings::Xiaohongshu(s) => xiaohongshu::handle(s, secret, inbound),
        Settings::Feiyu(s) => feiyu::handle(s, inbound),
        Settings::DouyinOpen(s) => douyin::handle(s, secret, inbound),
        Settings::Generic(s) => generic::handle(s, secret, inbound),
    }?;
    Ok(match outcome {
        Outcome::Lead(mut lead) => {
            fit(&mut lead);
            Outcome::Lead(lead)
        }
        other => other,
    })
}

/// Cuts the free-text fields of a mapped lead to what the lead API accepts (name 64, province
/// and city 32, intent 1000, at most 50 form answers of 64 + 1000 characters): a platform's
/// over-long answer must not cost the lead, since a 4xx is never retried — the raw payload
/// keeps the full text. The platform's lead id and the mobile number are never cut.
pub fn fit(lead: &mut PushLead) {
    let cut = |s: &mut String, max: usize| {
        if s.chars().count() > max {
            *s = s.chars().take(max).collect();
        }
    };
    cut(&mut lead.name, 64);
    for v in [&mut lead.province, &mut lead.city].into_iter().flatten() {
        cut(v, 32);
    }
    if let Some(v) = &mut lead.intent {
        cut(v, 1000);
    }
    lead.form_fields.retain(|f| !f.label.trim().is_empty());
    lead.form_fields.truncate(50);
    for f in &mut lead.form_fields {
        cut(&mut f.label, 64);
        cut(&mut f.value, 1000);
    }
    if let Some(a) = &mut lead.attribution {
        for id in [&mut a.campaign_id, &mut a.ad_group_id, &mut a.creative_id] {
            if id.as_ref().is_some_and(|v| v.chars().count() > 128) {
                *id = None;
            }
        }
        if a.click_id.as_ref().is_some_and(|v| v.chars().count() > 256) {
            a.click_id = None;
        }
    }
}

/// Parses the body as one JSON value (nesting deeper than serde_json's limit of 128 is refused).
///
/// # Errors
///
/// [`ChannelError::Malformed`].
pub fn parse_body(body: &[u8]) -> Result<Value, ChannelError> {
    crate::extract::parse_json::<Value>(body).map_err(|p| {
        ChannelError::Malformed(
            p.detail
                .map_or_else(|| "the body is not JSON".to_owned(), |d| d.into_owned()),
        )
    })
}

/// Whether `given` (hex, any case, optionally after `prefix`) is `expected`, in constant time.
pub fn hex_matches(given: &str, prefix: &str, expected: &[u8]) -> bool {
    let given = given.trim();
    let hex_part = if prefix.is_empty() {
        given
    } else {
        match given.get(..prefix.len()) {
            Some(p) if p.eq_ignore_ascii_case(prefix) => &given[prefix.len()..],
            _ => given,
        }
    };
    match hex::decode(hex_part) {
        Ok(bytes) => bytes.len() == expected.len() && bool::from(bytes.ct_eq(expected)),
        Err(_) => false,
    }
}

/// A header's value as text.
pub fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A scalar as text: a trimmed non-empty string, or a number; anything else is `None`.
pub fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => {
            let t = s.trim();
            (!t.is_empty()).then(|| t.to_owned())
        }
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A time as the platforms send them, normalised to `+08:00`: RFC 3339; unix seconds (10
/// digits) or milliseconds (13 digits), as a number or a string; `yyyy-MM-dd HH:mm[:ss]` read as
/// China time.
///
/// # Errors
///
/// What was expected.
pub fn parse_time(v: &Value) -> Result<DateTime<FixedOffset>, String> {
    const EXPECTED: &str = "expected unix seconds or milliseconds, `yyyy-MM-dd HH:mm:ss` (China \
                            time) or RFC 3339";
    let raw = match v {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => return Err(EXPECTED.to_owned()),
    };
    if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
        let n: i64 = raw.parse().map_err(|_| EXPECTED.to_owned())?;
        let ms = match raw.len() {
            1..=11 => n.checked_mul(1000),
            12..=14 => Some(n),
            _ => None,
        };
        return ms
            .and_then(|ms| CST.timestamp_millis_opt(ms).single())
            .ok_or_else(|| format!("`{raw}` is out of range; {EXPECTED}"));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(&raw) {
        return Ok(t.with_timezone(&CST));
    }
    for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(&raw, format) {
            return CST
                .from_local_datetime(&naive)
                .single()
                .ok_or_else(|| EXPECTED.to_owned());
        }
    }
    Err(format!(
        "`{}` is not a time; {EXPECTED}",
        truncate(&raw, 40)
    ))
}

/// At most `max` characters of `s`, for messages that quote the payload.
pub fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// Checks a list of names given in settings: 1–20 entries of 1–64 printable characters.
///
/// # Errors
///
/// The first bad entry.
pub fn check_names(field: &str, names: &[String]) -> Result<(), FieldError> {
    if names.is_empty() || names.len() > 20 {
        return Err(FieldError::new(field, "must list 1 to 20 names"));
    }
    for (i, n) in names.iter().enumerate() {
        let f = format!("{field}[{i}]");
        crate::domain::validate::printable(&f, n)?;
        if n.trim().is_empty() || n.chars().count() > 64 {
            return Err(FieldError::new(f, "must be 1 to 64 characters"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times_of_every_platform_become_china_time() {
        let t = parse_time(&json!("1679475637")).unwrap();
        assert_eq!(t.to_rfc3339(), "2023-03-22T17:00:37+08:00");
        assert_eq!(parse_time(&json!(1679475637)).unwrap(), t);
        assert_eq!(parse_time(&json!(1_679_475_637_000_i64)).unwrap(), t);
        let t = parse_time(&json!("2024-07-24 13:46:40")).unwrap();
        assert_eq!(t.to_rfc3339(), "2024-07-24T13:46:40+08:00");
        let t = parse_time(&json!("2024-07-24T05:46:40Z")).unwrap();
        assert_eq!(t.to_rfc3339(), "2024-07-24T13:46:40+08:00");
        for bad in [
            json!("yesterday"),
            json!(true),
            json!("99999999999999999999"),
        ] {
            assert!(parse_time(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hex_signatures_compare_case_insensitively_with_a_prefix() {
        let mac = [0xab_u8, 0xcd];
        assert!(hex_matches("sha1=ABCD", "sha1=", &mac));
        assert!(hex_matches("abcd", "sha1=", &mac));
        assert!(!hex_matches("sha1=abce", "sha1=", &mac));
        assert!(!hex_matches("sha1=abcdab", "sha1=", &mac));
        assert!(!hex_matches("zz", "", &mac));
    }

    #[test]
    fn secrets_are_split_from_settings() {
        let (rest, secret) = split_secret(
            Channel::Xiaohongshu,
            &json!({"token": " t0k ", "labels": {}}),
        )
        .unwrap();
        assert_eq!(rest, json!({"labels": {}}));
        assert_eq!(secret, SecretField::Value("t0k".into()));
        let (_, secret) = split_secret(Channel::Generic, &json!({"secret": null})).unwrap();
        assert_eq!(secret, SecretField::Null);
        let (rest, secret) = split_secret(Channel::Feiyu, &json!({"token": "x"})).unwrap();
        assert_eq!(secret, SecretField::Absent);
        assert_eq!(rest, json!({"token": "x"}));
        assert_eq!(
            split_secret(Channel::DouyinOpen, &json!({"clientSecret": 1}))
                .unwrap_err()
                .field,
            "settings.clientSecret"
        );
        assert!(split_secret(Channel::Generic, &json!([])).is_err());
    }

    #[test]
    fn over_long_answers_are_cut_to_fit_never_the_id_or_the_mobile() {
        use l2c_core::api::leads::{FormField, LeadSource};
        let now = CST.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mut lead = PushLead::new(
            LeadSource::Douyin,
            "x".repeat(200),
            "名".repeat(80),
            "13800138000",
            now,
        );
        lead.city = Some("城".repeat(40));
        lead.intent = Some("需".repeat(2000));
        lead.form_fields = (0..60)
            .map(|i| FormField::new(format!("q{i}"), "a".repeat(1500)))
            .collect();
        fit(&mut lead);
        assert_eq!(lead.name.chars().count(), 64);
        assert_eq!(lead.city.as_deref().map(|c| c.chars().count()), Some(32));
        assert_eq!(
            lead.intent.as_deref().map(|c| c.chars().count()),
            Some(1000)
        );
        assert_eq!(lead.form_fields.len(), 50);
        assert_eq!(lead.form_fields[0].value.len(), 1000);
        assert_eq!(lead.external_lead_id.len(), 200, "the id is never cut");
        let err = crate::domain::validate::lead(&lead).unwrap_err();
        assert_eq!(err.field, "externalLeadId");
        lead.external_lead_id = "ok".into();
        assert!(crate::domain::validate::lead(&lead).is_ok());
    }

    #[test]
    fn unknown_settings_are_refused_by_name() {
        let err = parse_settings(Channel::Feiyu, &json!({"feilds": {}}), false).unwrap_err();
        assert!(err.message.contains("feilds"), "{err}");
        let err = parse_settings(Channel::DouyinOpen, &json!({}), false).unwrap_err();
        assert_eq!(err.field, "settings.clientSecret");
    }
}
