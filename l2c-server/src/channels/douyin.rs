//! 抖音开放平台 webhooks of enterprise accounts (private messages, contact leads).
//!
//! ```json
//! {"event": "website_contact", "client_key": "aw…", "content": "{\"phone\": \"138…\", …}", "log_id": "…"}
//! ```
//!
//! - `X-Douyin-Signature` must be hex(SHA-1(client secret ‖ raw body)) — a plain hash of the
//!   concatenation, not an HMAC. The one exception is the URL verification
//!   (`{"event": "verify_webhook", "content": {"challenge": 12345}}`), answered
//!   `{"challenge": 12345}` when unsigned too (it stores nothing); a wrong signature is refused
//!   there as everywhere.
//! - With `clientKey` configured, the envelope's `client_key` must match it.
//! - `content` is a JSON string (an object is accepted too). Events named in `leadEvents`
//!   ([`DEFAULT_LEAD_EVENTS`] by default) whose content holds a phone number become leads; every
//!   other event is acknowledged with 200 and dropped.
//! - The platform's id of the message is the `Msg-Id` header (else the envelope's `log_id`):
//!   the platform retries and duplicates messages, and a repeat creates nothing.

use l2c_core::api::leads::{FormField, LeadSource, PushLead};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha1::{Digest, Sha1};

use super::{ChannelError, Inbound, Outcome, UNNAMED, check_names, header, text};
use crate::domain::FieldError;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-douyin-signature";
/// The message id header (the dedupe key).
pub const MSG_ID_HEADER: &str = "msg-id";

/// The events that may carry a lead when the source names none.
pub const DEFAULT_LEAD_EVENTS: [&str; 5] = [
    "website_contact",
    "personal_tab_contact",
    "dial_phone",
    "receive_msg",
    "enter_im",
];

/// Keys under which a contact's phone number appears in an event's content.
const PHONE_KEYS: [&str; 7] = [
    "phone",
    "mobile",
    "telephone",
    "phone_number",
    "contact_phone",
    "tel",
    "telphone",
];
/// Keys under which the contact's name appears.
const NAME_KEYS: [&str; 4] = ["name", "contact_name", "user_name", "nick_name"];
/// Keys of the city.
const CITY_KEYS: [&str; 2] = ["city", "city_name"];
/// How deep into the content a phone number is looked for.
const MAX_DEPTH: usize = 4;

/// A 抖音开放平台 source's settings (its client secret is the source's secret).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// The app's client key; when set, the envelope's `client_key` must equal it.
    #[serde(default)]
    pub client_key: Option<String>,
    /// The events that may carry a lead (the defaults when absent).
    #[serde(default)]
    pub lead_events: Option<Vec<String>>,
}

impl Settings {
    /// Checks the lists.
    ///
    /// # Errors
    ///
    /// An empty or oversized entry.
    pub fn validate(&self) -> Result<(), FieldError> {
        if let Some(events) = &self.lead_events {
            check_names("settings.leadEvents", events)?;
        }
        if let Some(key) = &self.client_key {
            check_names("settings.clientKey", std::slice::from_ref(key))?;
        }
        Ok(())
    }

    fn is_lead_event(&self, event: &str) -> bool {
        match &self.lead_events {
            Some(list) => list.iter().any(|e| e == event),
            None => DEFAULT_LEAD_EVENTS.contains(&event),
        }
    }
}

/// SHA-1(secret ‖ body).
pub fn sign(secret: &str, body: &[u8]) -> Vec<u8> {
    let mut h = Sha1::new();
    h.update(secret.as_bytes());
    h.update(body);
    h.finalize().to_vec()
}

/// Verifies and maps a 抖音开放平台 webhook.
///
/// # Errors
///
/// [`ChannelError`].
pub fn handle(
    settings: &Settings,
    secret: Option<&str>,
    inbound: &Inbound<'_>,
) -> Result<Outcome, ChannelError> {
    let signature = header(inbound.headers, SIGNATURE_HEADER);
    let verified = match (secret, signature) {
        (Some(secret), Some(given)) => {
            if !super::hex_matches(given, "", &sign(secret, inbound.body)) {
                return Err(ChannelError::BadSignature(
                    "X-Douyin-Signature is not SHA-1(client secret + body) under this source's \
                     client secret"
                        .into(),
                ));
            }
            true
        }
        _ => false,
    };
    let body = super::parse_body(inbound.body)?;
    let Some(envelope) = body.as_object() else {
        return Err(ChannelError::Malformed(
            "the body must be a JSON object".into(),
        ));
    };
    let event = envelope
        .get("event")
        .and_then(Value::as_str)
        .ok_or_else(|| ChannelError::Malformed("`event` must be the event name".into()))?;
    let content = match envelope.get("content") {
        Some(Value::String(s)) => serde_json::from_str::<Value>(s)
            .map_err(|e| ChannelError::Malformed(format!("`content` is not a JSON string: {e}")))?,
        Some(v @ Value::Object(_)) => v.clone(),
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(_) => {
            return Err(ChannelError::Malformed(
                "`content` must be a JSON string or object".into(),
            ));
        }
    };
    if event == "verify_webhook" {
        let challenge = content.get("challenge").cloned().ok_or_else(|| {
            ChannelError::Malformed("`verify_webhook` without `content.challenge`".into())
        })?;
        return Ok(Outcome::Challenge(
            serde_json::json!({ "challenge": challenge }),
        ));
    }
    if !verified {
        return Err(ChannelError::BadSignature(
            "X-Douyin-Signature is required".into(),
        ));
    }
    if let Some(expected) = &settings.client_key {
        let given = envelope.get("client_key").and_then(Value::as_str);
        if given != Some(expected.as_str()) {
            return Err(ChannelError::Forbidden(
                "`client_key` is not this source's client key".into(),
            ));
        }
    }
    if !settings.is_lead_event(event) {
        return Ok(Outcome::Ignored(format!("event `{event}` carries no lead")));
    }
    let Some(phone) = find(&content, &PHONE_KEYS, 0) else {
        return Ok(Outcome::Ignored(format!(
            "event `{event}` holds no contact number"
        )));
    };
    let msg_id = header(inbound.headers, MSG_ID_HEADER)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .or_else(|| envelope.get("log_id").and_then(text))
        .ok_or_else(|| {
            ChannelError::unmappable("externalLeadId", "no `Msg-Id` header and no `log_id`")
        })?;
    let name = find(&content, &NAME_KEYS, 0).unwrap_or_else(|| UNNAMED.to_owned());
    let mut lead = PushLead::new(LeadSource::Douyin, msg_id, name, phone, inbound.now);
    lead.city = find(&content, &CITY_KEYS, 0);
    lead.form_fields = vec![FormField::new("event", event)];
    if let Value::Object(c) = &content {
        let scalars = c
            .iter()
            .filter(|(k, _)| k.chars().count() <= 64)
            .filter_map(|(k, v)| text(v).map(|t| (k, t)));
        for (k, t) in scalars.take(40) {
            lead.form_fields
                .push(FormField::new(k.clone(), super::truncate(&t, 999)));
        }
    }
    Ok(Outcome::Lead(Box::new(lead)))
}

/// The first text under one of `keys`, searching nested objects and arrays breadth-first.
fn find(v: &Value, keys: &[&str], depth: usize) -> Option<String> {
    if depth > MAX_DEPTH {
        return None;
    }
    match v {
        Value::Object(map) => keys
            .iter()
            .find_map(|k| map.get(*k).and_then(text))
            .or_else(|| map.values().find_map(|child| find(child, keys, depth + 1))),
        Value::Array(items) => items.iter().find_map(|child| find(child, keys, depth + 1)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use http::HeaderMap;
    use serde_json::json;

    use super::*;
    use crate::store::sql::CST;

    fn run(headers: &HeaderMap, body: &[u8]) -> Result<Outcome, ChannelError> {
        let inbound = Inbound {
            headers,
            body,
            peer: None,
            now: CST.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        };
        handle(&Settings::default(), Some("cs"), &inbound)
    }

    fn signed(body: &[u8], msg_id: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            SIGNATURE_HEADER,
            hex::encode(sign("cs", body)).parse().unwrap(),
        );
        h.insert(MSG_ID_HEADER, msg_id.parse().unwrap());
        h
    }

    #[test]
    fn the_challenge_is_answered() {
        let body = br#"{"event":"verify_webhook","content":{"challenge":12345}}"#;
        assert_eq!(
            run(&HeaderMap::new(), body).unwrap(),
            Outcome::Challenge(json!({"challenge": 12345}))
        );
        let mut wrong = HeaderMap::new();
        wrong.insert(SIGNATURE_HEADER, "00".parse().unwrap());
        assert!(matches!(
            run(&wrong, body),
            Err(ChannelError::BadSignature(_))
        ));
    }

    #[test]
    fn a_contact_event_becomes_a_lead_and_others_are_dropped() {
        let content = json!({"user": {"phone": "13800138000", "name": "李四"}}).to_string();
        let body = serde_json::to_vec(
            &json!({"event": "website_contact", "client_key": "ck", "content": content}),
        )
        .unwrap();
        let Outcome::Lead(lead) = run(&signed(&body, "m-1"), &body).unwrap() else {
            panic!()
        };
        assert_eq!(lead.external_lead_id, "m-1");
        assert_eq!(lead.mobile, "13800138000");
        assert_eq!(lead.name, "李四");
        let body = br#"{"event":"im_read","content":"{}"}"#;
        assert!(matches!(
            run(&signed(body, "m-2"), body).unwrap(),
            Outcome::Ignored(_)
        ));
        // Unsigned: refused.
        assert!(matches!(
            run(&HeaderMap::new(), body),
            Err(ChannelError::BadSignature(_))
        ));
    }

    #[test]
    fn sha1_of_the_concatenation() {
        // SHA-1("abc"), FIPS 180-2.
        assert_eq!(
            hex::encode(sign("a", b"bc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
    }
}
