//! Issuing access tokens (RFC 9068 JWT profile).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::Mac as _;
use serde::Serialize;

use super::keys::SigningKey;
use crate::clock::{Clock, SystemClock};
use crate::identity::{ClientId, Scopes};

/// The default access-token lifetime: 7200 s, the spec's `expires_in`.
pub const DEFAULT_TTL: Duration = Duration::from_secs(7200);

pub(crate) type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Issues signed access tokens: header `typ: at+jwt`, claims `iss aud sub client_id iat nbf exp
/// jti scope`, integer NumericDates, `exp = iat + ttl` from one clock reading.
///
/// ```
/// use std::sync::Arc;
/// use l2c_core::auth::{HmacKey, SigningKey, TokenIssuer, TokenVerifier};
/// use l2c_core::{ClientId, Scope, Scopes};
///
/// let key = HmacKey::generate();
/// let issuer = TokenIssuer::new("https://l2c.example", "l2c-api", SigningKey::Hmac(key.clone(), None));
/// let token = issuer.issue(&ClientId::new("c1"), Scopes::one(Scope::OrdersRead));
/// assert_eq!(token.expires_in, 7200);
///
/// let verifier = TokenVerifier::builder("https://l2c.example", "l2c-api")
///     .hmac_key(key)
///     .build()
///     .unwrap();
/// let client = verifier.verify(&token.access_token).unwrap();
/// assert_eq!(client.client_id.as_str(), "c1");
/// assert!(client.scopes.contains(Scope::OrdersRead));
/// ```
#[derive(Clone)]
pub struct TokenIssuer {
    issuer: Arc<str>,
    audience: Arc<str>,
    key: SigningKey,
    hmac: Option<HmacSha256>,
    /// base64url of the header JSON followed by `.`.
    header_prefix: Arc<str>,
    ttl: Duration,
    clock: Arc<dyn Clock>,
}

impl TokenIssuer {
    /// An issuer named `issuer` (the `iss` claim) for the resource server `audience` (`aud`),
    /// signing with `key`; tokens live [`DEFAULT_TTL`] unless [`ttl`](Self::ttl) says otherwise.
    ///
    /// With [`SigningKey::Hmac`], a `kid` must be 1-64 characters of `A-Z a-z 0-9 - _ .` for a
    /// [`TokenVerifier`](super::TokenVerifier) to accept it.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>, key: SigningKey) -> Self {
        #[derive(Serialize)]
        struct Header<'a> {
            alg: &'a str,
            typ: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            kid: Option<&'a str>,
        }
        let header = Header {
            alg: key.algorithm(),
            typ: "at+jwt",
            kid: key.kid(),
        };
        let header_json = serde_json::to_vec(&header).unwrap_or_default();
        let mut header_prefix = URL_SAFE_NO_PAD.encode(header_json);
        header_prefix.push('.');
        let hmac = match &key {
            SigningKey::Hmac(secret, _) => HmacSha256::new_from_slice(secret.as_bytes()).ok(),
            SigningKey::Ed25519(_) => None,
        };
        Self {
            issuer: issuer.into().into(),
            audience: audience.into().into(),
            key,
            hmac,
            header_prefix: header_prefix.into(),
            ttl: DEFAULT_TTL,
            clock: Arc::new(SystemClock),
        }
    }

    /// Sets the token lifetime (whole seconds; sub-second parts are dropped).
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Duration::from_secs(ttl.as_secs());
        self
    }

    /// Uses `clock` instead of the system clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The `iss` value.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The `aud` value.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The signing key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// Issues a token for `client` granting `scopes`.
    pub fn issue(&self, client: &ClientId, scopes: Scopes) -> IssuedToken {
        #[derive(Serialize)]
        struct Claims<'a> {
            iss: &'a str,
            sub: &'a str,
            aud: &'a str,
            client_id: &'a str,
            iat: u64,
            nbf: u64,
            exp: u64,
            jti: &'a str,
            scope: &'a str,
        }
        // One clock reading for iat, nbf and exp.
        let iat = self.clock.unix_seconds();
        let ttl = self.ttl.as_secs();
        let exp = iat.saturating_add(ttl);
        let jti = uuid::Uuid::new_v4().simple().to_string();
        let scope = scopes.to_string();
        let claims = Claims {
            iss: &self.issuer,
            sub: client.as_str(),
            aud: &self.audience,
            client_id: client.as_str(),
            iat,
            nbf: iat,
            exp,
            jti: &jti,
            scope: &scope,
        };
        // A struct of strings and integers always serializes.
        let claims_json = serde_json::to_vec(&claims).unwrap_or_default();

        let mut token = String::with_capacity(self.header_prefix.len() + claims_json.len() * 2);
        token.push_str(&self.header_prefix);
        URL_SAFE_NO_PAD.encode_string(&claims_json, &mut token);
        let signature: Vec<u8> = match (&self.key, &self.hmac) {
            (SigningKey::Ed25519(key), _) => key.sign(token.as_bytes()).to_vec(),
            (SigningKey::Hmac(..), Some(mac)) => {
                let mut mac = mac.clone();
                mac.update(token.as_bytes());
                mac.finalize().into_bytes().to_vec()
            }
            // HMAC accepts keys of any length, so the prepared state always exists.
            (SigningKey::Hmac(..), None) => Vec::new(),
        };
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut token);

        IssuedToken {
            access_token: token,
            expires_in: ttl,
            scopes,
            jti,
            expires_at: UNIX_EPOCH + Duration::from_secs(exp),
        }
    }
}

impl fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("key", &self.key)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// A freshly issued access token. `Debug` never shows the token.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The compact JWS, for the `access_token` member of the token response.
    pub access_token: String,
    /// Seconds until expiry (`exp - iat`), for `expires_in`.
    pub expires_in: u64,
    /// The scopes granted (the `scope` claim).
    pub scopes: Scopes,
    /// The token's unique id (`jti`).
    pub jti: String,
    /// When the token expires (`exp`).
    pub expires_at: SystemTime,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("access_token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .field("scopes", &self.scopes)
            .field("jti", &self.jti)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// The RFC 6749 §5.1 response for an issued token: `token_type: Bearer`, `expires_in`, and the
/// granted scopes in `scope`.
#[cfg(feature = "api")]
impl From<IssuedToken> for crate::api::oauth::TokenResponse {
    fn from(token: IssuedToken) -> Self {
        Self {
            access_token: token.access_token,
            expires_in: token.expires_in,
            token_type: "Bearer".to_owned(),
            scope: (!token.scopes.is_empty()).then(|| token.scopes.to_string()),
        }
    }
}
