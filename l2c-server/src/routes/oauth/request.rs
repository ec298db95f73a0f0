//! Parsing a token request into its parameters and client credentials (RFC 6749 §2.3.1, §3.2,
//! §4.4.2), independent of HTTP plumbing so every rule is unit-testable.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, StatusCode, header};
use l2c_core::api::oauth::{OAuthError, OAuthErrorCode};
use serde::Deserializer as _;
use serde::de::{MapAccess, Visitor};

/// A rejection of the request before any credential is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The HTTP status (400, 401 or 415).
    pub status: StatusCode,
    /// The RFC 6749 §5.2 body.
    pub error: OAuthError,
}

impl Rejection {
    fn invalid_request(detail: impl AsRef<str>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error: OAuthError::new(OAuthErrorCode::InvalidRequest, detail),
        }
    }

    fn invalid_client(detail: impl AsRef<str>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            error: OAuthError::new(OAuthErrorCode::InvalidClient, detail),
        }
    }
}

/// The token request's parameters, with empty values already treated as absent (RFC 6749 §3.2):
/// the wire type the SDK sends, so the two cannot drift (its `Debug` redacts the secret).
pub use l2c_core::api::oauth::TokenRequest as Params;

/// Sets one parameter of `params`, refusing a repeated one.
fn set_param(params: &mut Params, name: &str, value: String) -> Result<(), Rejection> {
    let slot = match name {
        "grant_type" => &mut params.grant_type,
        "client_id" => &mut params.client_id,
        "client_secret" => &mut params.client_secret,
        "scope" => &mut params.scope,
        // Unrecognised parameters are ignored (RFC 6749 §3.2).
        _ => return Ok(()),
    };
    // Empty means omitted; but a parameter given twice is an error even if one copy is empty.
    if value.is_empty() {
        return Ok(());
    }
    if slot.is_some() {
        return Err(Rejection::invalid_request(format!(
            "parameter `{name}` is repeated"
        )));
    }
    *slot = Some(value);
    Ok(())
}

/// How the client authenticated.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The `client_id`.
    pub client_id: String,
    /// The `client_secret`; `None` when only an id was given.
    pub client_secret: Option<String>,
    /// Whether they came in an `Authorization: Basic` header.
    pub via_basic: bool,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("via_basic", &self.via_basic)
            .finish()
    }
}

/// A well-formed token request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// The body parameters (body credentials are moved to `credentials`).
    pub params: Params,
    /// The client's credentials, if it sent any.
    pub credentials: Option<Credentials>,
}

fn is_known(name: &str) -> bool {
    matches!(name, "grant_type" | "client_id" | "client_secret" | "scope")
}

/// Names of parameters that must never appear in the URL (RFC 6749 §2.3.1).
const CREDENTIAL_PARAMS: [&str; 2] = ["client_id", "client_secret"];

/// Parses a `POST /api/oauth/token` request.
///
/// # Errors
///
/// A [`Rejection`]: 400 `invalid_request` for credentials in the query string, a malformed or
/// repeated parameter, duplicate JSON members, more than one authentication method, or several
/// `Authorization` headers; 415 for a body that is neither form-encoded nor JSON; 401
/// `invalid_client` for an `Authorization` header that is not usable Basic credentials.
pub fn parse(
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
) -> Result<TokenRequest, Rejection> {
    if let Some(query) = query {
        let pairs = form_pairs(query.as_bytes())
            .map_err(|_| Rejection::invalid_request("the query string is malformed"))?;
        if pairs
            .iter()
            .any(|(k, _)| CREDENTIAL_PARAMS.contains(&k.as_str()))
        {
            return Err(Rejection::invalid_request(
                "client credentials must not be sent in the URL",
            ));
        }
    }

    let params = parse_body(headers, body)?;
    let basic = parse_basic(headers)?;
    let body_credentials = params.client_id.is_some() || params.client_secret.is_some();
    let credentials = match basic {
        Some(_) if body_credentials => {
            return Err(Rejection::invalid_request(
                "use either HTTP Basic or body credentials, not both",
            ));
        }
        Some(basic) => Some(basic),
        None => params.client_id.clone().map(|client_id| Credentials {
            client_id,
            client_secret: params.client_secret.clone(),
            via_basic: false,
        }),
    };
    if credentials.is_none() && params.client_secret.is_some() {
        return Err(Rejection::invalid_request(
            "`client_secret` was sent without `client_id`",
        ));
    }
    Ok(TokenRequest {
        params: Params {
            client_id: None,
            client_secret: None,
            ..params
        },
        credentials,
    })
}

fn form_pairs(bytes: &[u8]) -> Result<Vec<(String, String)>, serde_urlencoded::de::Error> {
    serde_urlencoded::from_bytes(bytes)
}

fn media_type(headers: &HeaderMap) -> Result<Option<String>, Rejection> {
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Rejection::invalid_request("`Content-Type` is repeated"));
    }
    let value = value
        .to_str()
        .map_err(|_| Rejection::invalid_request("`Content-Type` is not ASCII"))?;
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    for param in parts {
        if let Some((name, charset)) = param.split_once('=') {
            let charset = charset.trim().trim_matches('"');
            if name.trim().eq_ignore_ascii_case("charset") && !charset.eq_ignore_ascii_case("utf-8")
            {
                return Err(unsupported_media_type("only UTF-8 bodies are accepted"));
            }
        }
    }
    Ok(Some(essence))
}

fn unsupported_media_type(detail: &str) -> Rejection {
    Rejection {
        status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
        error: OAuthError::new(OAuthErrorCode::InvalidRequest, detail),
    }
}

fn parse_body(headers: &HeaderMap, body: &[u8]) -> Result<Params, Rejection> {
    let mut params = Params::default();
    match media_type(headers)?.as_deref() {
        Some("application/x-www-form-urlencoded") => {
            if std::str::from_utf8(body).is_err() {
                return Err(Rejection::invalid_request("the body is not UTF-8"));
            }
            let pairs = form_pairs(body)
                .map_err(|_| Rejection::invalid_request("the form body is malformed"))?;
            let mut seen = std::collections::HashSet::new();
            for (name, value) in pairs {
                if !seen.insert(name.clone()) && is_known(&name) {
                    return Err(Rejection::invalid_request(format!(
                        "parameter `{name}` is repeated"
                    )));
                }
                set_param(&mut params, &name, value)?;
            }
        }
        Some("application/json") => {
            let mut de = serde_json::Deserializer::from_slice(body);
            let members = de
                .deserialize_map(MembersVisitor)
                .and_then(|m| de.end().map(|()| m))
                .map_err(|e| {
                    if e.is_data() {
                        Rejection::invalid_request(e.to_string())
                    } else {
                        Rejection::invalid_request("the body is not a JSON object")
                    }
                })?;
            let mut seen = std::collections::HashSet::new();
            for (name, value) in members {
                // Duplicate members are refused whatever their name: a JSON object with
                // repeated keys is ambiguous to every parser downstream.
                if !seen.insert(name.clone()) {
                    return Err(Rejection::invalid_request(format!(
                        "member `{name}` is repeated"
                    )));
                }
                let text = match value {
                    serde_json::Value::String(s) => s,
                    serde_json::Value::Null => String::new(),
                    _ if is_known(&name) => {
                        return Err(Rejection::invalid_request(format!(
                            "member `{name}` must be a string"
                        )));
                    }
                    // Unknown members of any type are ignored.
                    _ => continue,
                };
                set_param(&mut params, &name, text)?;
            }
        }
        None if body.iter().all(u8::is_ascii_whitespace) => {}
        None => {
            return Err(unsupported_media_type(
                "send the body as application/x-www-form-urlencoded or application/json",
            ));
        }
        Some(_) => {
            return Err(unsupported_media_type(
                "the body must be application/x-www-form-urlencoded or application/json",
            ));
        }
    }
    Ok(params)
}

/// Collects a JSON object's members in order, keeping duplicates (serde_json's maps drop them).
struct MembersVisitor;

impl<'de> Visitor<'de> for MembersVisitor {
    type Value = Vec<(String, serde_json::Value)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, serde_json::Value>()? {
            members.push((k, v));
        }
        Ok(members)
    }
}

fn parse_basic(headers: &HeaderMap) -> Result<Option<Credentials>, Rejection> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Rejection::invalid_request("`Authorization` is repeated"));
    }
    let bad = || Rejection::invalid_client("malformed HTTP Basic credentials");
    let value = value.to_str().map_err(|_| bad())?;
    let (scheme, encoded) = value.trim().split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(Rejection::invalid_client(
            "the token endpoint authenticates clients with HTTP Basic or body credentials",
        ));
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    // RFC 6749 §2.3.1: both parts are form-urlencoded before they go into Basic.
    let id = form_decode(id).ok_or_else(bad)?;
    let secret = form_decode(secret).ok_or_else(bad)?;
    if id.is_empty() {
        return Err(bad());
    }
    Ok(Some(Credentials {
        client_id: id,
        client_secret: (!secret.is_empty()).then_some(secret),
        via_basic: true,
    }))
}

/// Decodes one `application/x-www-form-urlencoded` component (`+` is a space, `%XX` a byte).
fn form_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Builds the `Authorization: Basic` value for `id` and `secret` as RFC 6749 §2.3.1 prescribes
/// (each form-urlencoded, then joined with `:` and base64-encoded).
pub fn basic_authorization(id: &str, secret: &str) -> String {
    let enc = |s: &str| {
        serde_urlencoded::to_string([("", s)])
            .map(|pair| pair.trim_start_matches('=').to_owned())
            .unwrap_or_default()
    };
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}
