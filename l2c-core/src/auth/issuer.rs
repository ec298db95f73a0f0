//! Issuing access tokens (RFC 9068 JWT profile).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::keys::SigningKey;
use crate::clock::{Clock, SystemClock};
use crate::identity::{ClientId, Scopes};

/// The default access-token lifetime: 7200 s, the spec's `expires_in`.
pub const DEFAULT_TTL: Duration = Duration::from_secs(7200);

/// Issues signed access tokens: header `typ: at+jwt`, claims `iss aud sub client_id iat nbf exp
/// jti scope`, integer NumericDates, `exp = iat + ttl` from one clock reading. The JWS is
/// produced by [`jsonwebtoken::encode`].
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
    /// `alg`, `typ: at+jwt` and the key's `kid`, built once.
    header: Arc<jsonwebtoken::Header>,
    encoding_key: Arc<jsonwebtoken::EncodingKey>,
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
        let (algorithm, encoding_key) = match &key {
            SigningKey::Hmac(secret, _) => (
                jsonwebtoken::Algorithm::HS256,
                jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
            ),
            SigningKey::Ed25519(pair) => (
                jsonwebtoken::Algorithm::EdDSA,
                jsonwebtoken::EncodingKey::from_ed_der(&pair.to_pkcs8_der()),
            ),
        };
        let mut header = jsonwebtoken::Header::new(algorithm);
        header.typ = Some("at+jwt".to_owned());
        header.kid = key.kid().map(str::to_owned);
        Self {
            issuer: issuer.into().into(),
            audience: audience.into().into(),
            key,
            header: Arc::new(header),
            encoding_key: Arc::new(encoding_key),
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
        // Claims of strings and integers always serialize, an HMAC accepts a key of any length
        // and the Ed25519 key is our own PKCS#8 encoding: signing cannot fail. Were it ever to,
        // the empty token is refused by every verifier.
        let token =
            jsonwebtoken::encode(&self.header, &claims, &self.encoding_key).unwrap_or_default();

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
