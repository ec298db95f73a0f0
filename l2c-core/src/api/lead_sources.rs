//! `/api/mobile/lead-sources` (scope `lead-sources:manage`): the push URLs a client pastes into
//! the ad platforms (小红书 聚光, 巨量引擎 飞鱼, 抖音开放平台, others), each verified and mapped per
//! channel by `POST /api/hooks/leads/{token}`.
//!
//! A source is created with its channel, a name and channel `settings`; the answer carries the
//! `pushUrl` (with an unguessable token in its path) and, when the server generated the signing
//! key, the `secret` — both shown only then (and again after a rotation). A channel's own secret
//! given in `settings` (聚光's token, 抖音's client secret, a GENERIC key) is kept server-side and
//! never shown back: reads say `hasSecret: true`.
//!
//! ```
//! use l2c_core::api::lead_sources::{Channel, CreateLeadSource};
//!
//! let create = CreateLeadSource::new(Channel::Xiaohongshu, "聚光 落地页")
//!     .settings(serde_json::json!({"token": "from-the-landing-page-config"}));
//! let v = serde_json::to_value(&create).unwrap();
//! assert_eq!(v["channel"], "XIAOHONGSHU");
//! assert_eq!(v["settings"]["token"], "from-the-landing-page-config");
//! ```
//!
//! # Settings per channel
//!
//! | channel | settings (all optional unless noted) |
//! |---|---|
//! | `XIAOHONGSHU` | `token` (聚光's push token: `X-Red-Signature` then required), `labels` `{name, mobile, city, province, intent: [label, …]}` replacing the default synonyms of that field |
//! | `FEIYU` | `fields` `{externalLeadId, mobile, name, province, city, createTime, intent, formFields: [key, …]}` replacing the default keys of that field, `allowedIps` `["1.2.3.4", "10.0.0.0/8"]` |
//! | `DOUYIN_OPEN` | `clientSecret` (**required**: `X-Douyin-Signature` is checked), `clientKey` (then the envelope's `client_key` must match), `leadEvents` (event names that may carry a lead) |
//! | `GENERIC` | `signatureHeader` (default `X-Signature`), `secret` (generated and shown once when absent), `source` (`KUAISHOU`, `BAIDU`, `WECHAT`, …; default `OTHER`), `fields` `{externalLeadId, mobile, name, province, city, intent, submittedAt}` as JSON pointers (`externalLeadId` and `mobile` **required**) |

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

/// The ad platform (and so the payload format and signature) of a lead source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum Channel {
    /// 小红书 聚光 landing-page form leads (`X-Red-Signature`, label/value answers).
    Xiaohongshu,
    /// 巨量引擎 飞鱼 CRM lead pushes (抖音 / 今日头条 ads), with an advertiser-edited field mapping.
    Feiyu,
    /// 抖音开放平台 webhooks of enterprise accounts (`X-Douyin-Signature`, `verify_webhook`).
    DouyinOpen,
    /// Any other platform: HMAC-SHA256 of the body in a named header, fields by JSON pointer.
    Generic,
}

impl Channel {
    /// Every channel, in a stable order.
    pub const ALL: [Channel; 4] = [
        Channel::Xiaohongshu,
        Channel::Feiyu,
        Channel::DouyinOpen,
        Channel::Generic,
    ];

    /// The wire name, e.g. `XIAOHONGSHU`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Channel::Xiaohongshu => "XIAOHONGSHU",
            Channel::Feiyu => "FEIYU",
            Channel::DouyinOpen => "DOUYIN_OPEN",
            Channel::Generic => "GENERIC",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not a known [`Channel`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown channel `{0}`: expected XIAOHONGSHU, FEIYU, DOUYIN_OPEN or GENERIC")]
pub struct UnknownChannel(pub String);

impl FromStr for Channel {
    type Err = UnknownChannel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownChannel(s.to_owned()))
    }
}

/// The body of `POST /api/mobile/lead-sources`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CreateLeadSource {
    /// The platform.
    pub channel: Channel,
    /// A name for people (1–64 characters), e.g. `聚光 全屋定制落地页`.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*[^\\s\\u0000-\\u001F][^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*$",
            min_length = 1,
            max_length = 64,
            example = "聚光 全屋定制落地页"
        )
    )]
    pub name: String,
    /// The channel's settings (see the module docs); `{}` when omitted.
    #[serde(default = "empty_object")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub settings: serde_json::Value,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

impl CreateLeadSource {
    /// A source with empty settings.
    pub fn new(channel: Channel, name: impl Into<String>) -> Self {
        Self {
            channel,
            name: name.into(),
            settings: empty_object(),
        }
    }

    /// Sets the channel settings.
    #[must_use]
    pub fn settings(mut self, settings: serde_json::Value) -> Self {
        self.settings = settings;
        self
    }
}

/// The body of `PUT /api/mobile/lead-sources/{id}`: what to change.
///
/// `settings` replaces the stored settings as a whole, except a secret member (`token`,
/// `clientSecret`, `secret`): present replaces the stored secret, absent keeps it, `null`
/// removes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct UpdateLeadSource {
    /// A new name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*[^\\s\\u0000-\\u001F][^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*$",
            min_length = 1,
            max_length = 64
        )
    )]
    pub name: Option<String>,
    /// New settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub settings: Option<serde_json::Value>,
}

impl UpdateLeadSource {
    /// Changes nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Renames the source.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Replaces the settings.
    #[must_use]
    pub fn settings(mut self, settings: serde_json::Value) -> Self {
        self.settings = Some(settings);
        self
    }
}

/// The answer to a create (201) or a rotation (200): the only times the push URL (and a secret
/// the server generated) are shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CreatedLeadSource {
    /// The source's id (`lsrc_…`).
    pub id: String,
    /// The platform.
    pub channel: Channel,
    /// The name.
    pub name: String,
    /// The URL to paste into the platform; its path carries the source's secret token.
    #[cfg_attr(
        feature = "openapi",
        schema(example = "https://l2c.example.com/api/hooks/leads/lst_3q2-7wEJx2yV0lT8bqz1Zg")
    )]
    pub push_url: String,
    /// The signing key the server generated (GENERIC without a `secret` setting), shown once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// When the source was created.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: DateTime<FixedOffset>,
}

impl CreatedLeadSource {
    /// An answer.
    pub fn new(
        id: impl Into<String>,
        channel: Channel,
        name: impl Into<String>,
        push_url: impl Into<String>,
        secret: Option<String>,
        created_at: DateTime<FixedOffset>,
    ) -> Self {
        Self {
            id: id.into(),
            channel,
            name: name.into(),
            push_url: push_url.into(),
            secret,
            created_at,
        }
    }
}

/// A lead source as read back: settings without any secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct LeadSourceView {
    /// The source's id (`lsrc_…`).
    pub id: String,
    /// The platform.
    pub channel: Channel,
    /// The name.
    pub name: String,
    /// The settings, secrets removed.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub settings: serde_json::Value,
    /// Whether a signing secret is stored (it is never shown back).
    pub has_secret: bool,
    /// When the source was created.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: DateTime<FixedOffset>,
    /// When the source was last changed or rotated.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: DateTime<FixedOffset>,
}

impl LeadSourceView {
    /// A view.
    pub fn new(
        id: impl Into<String>,
        channel: Channel,
        name: impl Into<String>,
        settings: serde_json::Value,
        has_secret: bool,
        created_at: DateTime<FixedOffset>,
        updated_at: DateTime<FixedOffset>,
    ) -> Self {
        Self {
            id: id.into(),
            channel,
            name: name.into(),
            settings,
            has_secret,
            created_at,
            updated_at,
        }
    }
}

/// What `POST /api/hooks/leads/{token}` answers a platform with 200.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct HookAck {
    /// Always `0` (the convention of the platforms' own APIs for success).
    pub code: i32,
    /// `ok`, or why nothing was stored (an event that carries no lead).
    pub message: String,
    /// The lead's id, when the push was a lead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead_id: Option<String>,
    /// Whether the platform's lead id had been received before (nothing new was stored).
    pub duplicate: bool,
}

impl HookAck {
    /// An answer.
    pub fn new(message: impl Into<String>, lead_id: Option<String>, duplicate: bool) -> Self {
        Self {
            code: 0,
            message: message.into(),
            lead_id,
            duplicate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_round_trip() {
        for c in Channel::ALL {
            assert_eq!(c.as_str().parse::<Channel>(), Ok(c));
            assert_eq!(
                serde_json::to_value(c).unwrap(),
                serde_json::json!(c.as_str())
            );
        }
        assert!("TIKTOK".parse::<Channel>().is_err());
    }

    #[test]
    fn settings_default_to_an_empty_object() {
        let c: CreateLeadSource =
            serde_json::from_str(r#"{"channel":"FEIYU","name":"飞鱼"}"#).unwrap();
        assert_eq!(c.settings, serde_json::json!({}));
    }
}
