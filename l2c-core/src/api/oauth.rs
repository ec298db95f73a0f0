//! The client-credentials token exchange (`POST /api/oauth/token`, spec §2.2, RFC 6749 §4.4).
//!
//! ```
//! use l2c_core::api::oauth::{OAuthError, OAuthErrorCode, TokenResponse};
//!
//! let ok: TokenResponse = serde_json::from_str(
//!     r#"{"access_token":"eyJ...","expires_in":7200,"token_type":"Bearer"}"#,
//! ).unwrap();
//! assert_eq!(ok.expires_in, 7200);
//!
//! let err = OAuthError::new(OAuthErrorCode::InvalidClient, "client authentication failed");
//! assert_eq!(serde_json::to_value(&err).unwrap()["error"], "invalid_client");
//! ```

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// The JSON body the spec shows for the token request.
///
/// Every member is optional on the wire so the server can tell "missing" (`invalid_request`) from
/// "wrong" (`invalid_client`, `unsupported_grant_type`); empty strings count as missing
/// (RFC 6749 §3.2).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenRequest {
    /// Must be `client_credentials` (required: 400 `invalid_request` without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = String, required = true, pattern = "^client_credentials$")
    )]
    pub grant_type: Option<String>,
    /// The application's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = credential_schema))]
    pub client_id: Option<String>,
    /// The application's secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = credential_schema))]
    pub client_secret: Option<String>,
    /// Space-separated scopes to narrow the token to; all of the client's scopes when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = scope_schema))]
    pub scope: Option<String>,
}

impl fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRequest")
            .field("grant_type", &self.grant_type)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("scope", &self.scope)
            .finish()
    }
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenResponse {
    /// The JWT access token.
    pub access_token: String,
    /// Seconds until the token expires (7200). Accepted as a number or a numeric string.
    #[serde(deserialize_with = "number_or_string")]
    pub expires_in: u64,
    /// Always `Bearer`.
    pub token_type: String,
    /// The scopes granted, space-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .field("token_type", &self.token_type)
            .field("scope", &self.scope)
            .finish()
    }
}

fn number_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumOrStr {
        Num(u64),
        Str(String),
    }
    match NumOrStr::deserialize(d)? {
        NumOrStr::Num(n) => Ok(n),
        NumOrStr::Str(s) => s.trim().parse().map_err(serde::de::Error::custom),
    }
}

/// The `error` codes of RFC 6749 §5.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OAuthErrorCode {
    /// Missing, repeated or malformed parameter; more than one client authentication method.
    InvalidRequest,
    /// Unknown client, wrong secret, or no client authentication.
    InvalidClient,
    /// The grant is invalid (not used for client credentials; see PROTOCOLS.md A8).
    InvalidGrant,
    /// The client may not use this grant type.
    UnauthorizedClient,
    /// `grant_type` is present but not `client_credentials`.
    UnsupportedGrantType,
    /// A requested scope is unknown or not granted to the client.
    InvalidScope,
    /// Too many failed attempts (an L2C extension, sent with 429 and `Retry-After`).
    SlowDown,
}

impl OAuthErrorCode {
    /// The wire name, e.g. `invalid_client`.
    pub const fn as_str(self) -> &'static str {
        match self {
            OAuthErrorCode::InvalidRequest => "invalid_request",
            OAuthErrorCode::InvalidClient => "invalid_client",
            OAuthErrorCode::InvalidGrant => "invalid_grant",
            OAuthErrorCode::UnauthorizedClient => "unauthorized_client",
            OAuthErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            OAuthErrorCode::InvalidScope => "invalid_scope",
            OAuthErrorCode::SlowDown => "slow_down",
        }
    }
}

impl fmt::Display for OAuthErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from the token endpoint (RFC 6749 §5.2), `Content-Type: application/json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OAuthError {
    /// The error code.
    pub error: OAuthErrorCode,
    /// A human-readable description; never contains `"` or `\` (RFC 6749 §5.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

impl OAuthError {
    /// An error with a description; characters outside RFC 6749's allowed set are dropped.
    pub fn new(error: OAuthErrorCode, description: impl AsRef<str>) -> Self {
        let description: String = description
            .as_ref()
            .chars()
            .filter(|c| matches!(*c as u32, 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e))
            .collect();
        Self {
            error,
            error_description: (!description.is_empty()).then_some(description),
        }
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.error.as_str())?;
        if let Some(d) = &self.error_description {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for OAuthError {}

/// `scope` in the token request: known scope names separated by single spaces. A string, never
/// `null` (a form body cannot carry one).
#[cfg(feature = "openapi")]
fn scope_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .description(Some(
            "Space-separated scopes to narrow the token to; all of the client's scopes when \
             absent.",
        ))
        .pattern(Some("^((leads:write|customers:read|orders:read|orders:write|showroom:read|webhooks:manage|reports:export|lead-sources:manage|leads:read)( (leads:write|customers:read|orders:read|orders:write|showroom:read|webhooks:manage|reports:export|lead-sources:manage|leads:read))*)?$"))
        .build()
}

/// `client_id` / `client_secret` in the token request: a non-empty string when sent (an empty
/// one counts as absent), never `null`.
#[cfg(feature = "openapi")]
fn credential_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .min_length(Some(1))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_in_may_be_a_string() {
        let t: TokenResponse = serde_json::from_str(
            r#"{"access_token":"a","expires_in":"7200","token_type":"Bearer"}"#,
        )
        .unwrap();
        assert_eq!(t.expires_in, 7200);
    }

    #[test]
    fn description_drops_quote_and_backslash() {
        let e = OAuthError::new(OAuthErrorCode::InvalidRequest, r#"bad "x" \ y"#);
        assert_eq!(e.error_description.as_deref(), Some("bad x  y"));
    }

    #[test]
    fn debug_never_prints_secrets() {
        let req = TokenRequest {
            client_secret: Some("s3cr3t".into()),
            ..Default::default()
        };
        assert!(!format!("{req:?}").contains("s3cr3t"));
        let res = TokenResponse {
            access_token: "tok".into(),
            expires_in: 1,
            token_type: "Bearer".into(),
            scope: None,
        };
        assert!(!format!("{res:?}").contains("tok\""));
    }
}
