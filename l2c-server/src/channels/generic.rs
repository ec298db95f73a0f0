//! Any platform without an adapter of its own (快手, 百度, 视频号, …).
//!
//! - The body must be signed: lowercase or uppercase hex of HMAC-SHA256(secret, raw body),
//!   optionally prefixed `sha256=`, in the header named by `signatureHeader` (default
//!   `X-Signature`). The secret is the source's own (given in `settings.secret`, or generated
//!   and shown once).
//! - `fields` maps lead fields to JSON pointers (RFC 6901) into the body:
//!   `{"externalLeadId": "/data/id", "mobile": "/data/phone", "name": "/data/name", …}`;
//!   `externalLeadId` and `mobile` are required, `name`, `province`, `city`, `intent` and
//!   `submittedAt` optional (`submittedAt` in any form [`super::parse_time`] reads; the time of
//!   receipt without it).
//! - `source` is the lead's channel (`KUAISHOU`, `BAIDU`, `WECHAT`, …; `OTHER` by default).

use hmac::{Hmac, Mac};
use l2c_core::api::leads::{LeadSource, PushLead};
use serde::Deserialize;
use sha2::Sha256;

use super::{ChannelError, Inbound, Outcome, UNNAMED, header, parse_time, text};
use crate::domain::FieldError;

/// The signature header when the source names none.
pub const DEFAULT_SIGNATURE_HEADER: &str = "X-Signature";

/// JSON pointers of the lead fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Pointers {
    /// The platform's lead id (required).
    pub external_lead_id: String,
    /// The mobile number (required).
    pub mobile: String,
    /// The name.
    #[serde(default)]
    pub name: Option<String>,
    /// The province.
    #[serde(default)]
    pub province: Option<String>,
    /// The city.
    #[serde(default)]
    pub city: Option<String>,
    /// What the person wants.
    #[serde(default)]
    pub intent: Option<String>,
    /// When the form was submitted.
    #[serde(default)]
    pub submitted_at: Option<String>,
}

/// A GENERIC source's settings (its key is the source's secret).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// The header carrying the signature.
    #[serde(default = "default_header")]
    pub signature_header: String,
    /// The lead's channel.
    #[serde(default = "default_source")]
    pub source: LeadSource,
    /// Where each lead field is in the body.
    pub fields: Pointers,
}

fn default_header() -> String {
    DEFAULT_SIGNATURE_HEADER.to_owned()
}

fn default_source() -> LeadSource {
    LeadSource::Other
}

impl Settings {
    /// Checks the header name and the pointers.
    ///
    /// # Errors
    ///
    /// A header name that is not a valid HTTP header name, a pointer not starting with `/`.
    pub fn validate(&self) -> Result<(), FieldError> {
        if http::HeaderName::from_bytes(self.signature_header.as_bytes()).is_err() {
            return Err(FieldError::new(
                "settings.signatureHeader",
                "must be a valid HTTP header name",
            ));
        }
        let f = &self.fields;
        for (name, pointer) in [
            ("externalLeadId", Some(&f.external_lead_id)),
            ("mobile", Some(&f.mobile)),
            ("name", f.name.as_ref()),
            ("province", f.province.as_ref()),
            ("city", f.city.as_ref()),
            ("intent", f.intent.as_ref()),
            ("submittedAt", f.submitted_at.as_ref()),
        ] {
            if let Some(p) = pointer
                && (!p.starts_with('/') || p.len() > 256)
            {
                return Err(FieldError::new(
                    format!("settings.fields.{name}"),
                    "must be a JSON pointer such as `/data/phone` (at most 256 characters)",
                ));
            }
        }
        Ok(())
    }
}

/// HMAC-SHA256(secret, body).
pub fn sign(secret: &str, body: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// Verifies and maps a push.
///
/// # Errors
///
/// [`ChannelError`].
pub fn handle(
    settings: &Settings,
    secret: Option<&str>,
    inbound: &Inbound<'_>,
) -> Result<Outcome, ChannelError> {
    let Some(secret) = secret else {
        return Err(ChannelError::BadSignature(
            "this source has no signing secret; set `settings.secret` or rotate the source".into(),
        ));
    };
    let Some(given) = header(inbound.headers, &settings.signature_header) else {
        return Err(ChannelError::BadSignature(format!(
            "{} is required",
            settings.signature_header
        )));
    };
    if !super::hex_matches(given, "sha256=", &sign(secret, inbound.body)) {
        return Err(ChannelError::BadSignature(format!(
            "{} is not HMAC-SHA256 of the body under this source's secret",
            settings.signature_header
        )));
    }
    let body = super::parse_body(inbound.body)?;
    let f = &settings.fields;
    let at = |p: &Option<String>| p.as_deref().and_then(|p| body.pointer(p)).and_then(text);
    let required = |field: &str, pointer: &str| {
        body.pointer(pointer).and_then(text).ok_or_else(|| {
            ChannelError::unmappable(field, format!("nothing at `{pointer}` in the body"))
        })
    };
    let id = required("externalLeadId", &f.external_lead_id)?;
    let mobile = required("mobile", &f.mobile)?;
    let submitted_at = match f.submitted_at.as_deref().and_then(|p| body.pointer(p)) {
        Some(v) if !v.is_null() => {
            parse_time(v).map_err(|e| ChannelError::unmappable("submittedAt", e))?
        }
        _ => inbound.now,
    };
    let name = at(&f.name).unwrap_or_else(|| UNNAMED.to_owned());
    let mut lead = PushLead::new(settings.source, id, name, mobile, submitted_at);
    lead.province = at(&f.province);
    lead.city = at(&f.city);
    lead.intent = at(&f.intent);
    Ok(Outcome::Lead(Box::new(lead)))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use http::HeaderMap;
    use serde_json::json;

    use super::*;
    use crate::store::sql::CST;

    fn settings() -> Settings {
        serde_json::from_value(json!({
            "signatureHeader": "X-Kuaishou-Sign", "source": "KUAISHOU",
            "fields": {"externalLeadId": "/data/id", "mobile": "/data/phone",
                       "submittedAt": "/data/ts"}
        }))
        .unwrap()
    }

    #[test]
    fn pointers_map_a_signed_body() {
        let body = br#"{"data":{"id":77,"phone":"13800138000","ts":1700000000000}}"#;
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-kuaishou-sign",
            format!("sha256={}", hex::encode(sign("k", body)))
                .parse()
                .unwrap(),
        );
        let inbound = Inbound {
            headers: &headers,
            body,
            peer: None,
            now: CST.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        };
        let Outcome::Lead(lead) = handle(&settings(), Some("k"), &inbound).unwrap() else {
            panic!()
        };
        assert_eq!(lead.source, LeadSource::Kuaishou);
        assert_eq!(lead.external_lead_id, "77");
        assert_eq!(lead.submitted_at.to_rfc3339(), "2023-11-15T06:13:20+08:00");
        assert!(matches!(
            handle(&settings(), Some("other"), &inbound),
            Err(ChannelError::BadSignature(_))
        ));
    }

    #[test]
    fn pointers_are_validated() {
        let mut s = settings();
        s.fields.mobile = "data.phone".into();
        assert_eq!(s.validate().unwrap_err().field, "settings.fields.mobile");
        let mut s = settings();
        s.signature_header = "bad header".into();
        assert_eq!(s.validate().unwrap_err().field, "settings.signatureHeader");
    }

    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        // RFC 4231 test case 2.
        assert_eq!(
            hex::encode(sign("Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
