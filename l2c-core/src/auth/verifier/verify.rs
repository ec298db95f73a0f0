//! [`TokenVerifier`]: the checks, in order, and the verified-token cache.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use serde::Deserialize;

use crate::auth::cache::{Verified, VerifiedCache};
use crate::auth::issuer::DEFAULT_TTL;
use crate::auth::keys::Jwks;
use crate::clock::{Clock, SystemClock};
use crate::identity::{AuthenticatedClient, ClientId, Scope, Scopes};

use super::{builder::*, errors::*};

/// The default and largest accepted clock-skew leeway: 60 s.
pub const MAX_LEEWAY: Duration = Duration::from_secs(60);

/// The default limit on the length of a token; longer ones are refused before any decoding.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 8 * 1024;

/// The default number of verified tokens remembered by a [`TokenVerifier`].
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;

/// The largest decoded JOSE header accepted, in bytes.
pub(super) const MAX_HEADER_LEN: usize = 1024;

/// The bytes of a JWS Compact Serialization: base64url characters and `.`.
pub(super) static COMPACT_JWS_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.';
        b += 1;
    }
    table
};

/// Verifies access tokens and tells who is calling.
///
/// What is checked, in order (RFC 8725, RFC 9068 §4): the length limit; JWS Compact
/// Serialization (three base64url segments, nothing else); a JSON header whose `alg` is `HS256`
/// or `EdDSA` (case-sensitive, never `none`), whose `typ` is `at+jwt` or `application/at+jwt`
/// and without `crit`; the one key with that `alg` and `kid` (an unknown `kid` is refused at
/// once, no key is tried in turn, and an HS256 header never selects an Ed25519 key); for EdDSA,
/// an `R` that is a point of small order is refused (as `verify_strict` does); then
/// [`jsonwebtoken::decode`] with a [`Validation`](jsonwebtoken::Validation) pinned to that key's one algorithm checks the
/// signature (HMAC compared in constant time), `iss` equal to the issuer and the audience in
/// `aud` (string or array); last, against the verifier's own clock: integer `exp`, `iat` and
/// optional `nbf` with the leeway, `exp - iat` at most the maximum lifetime, a `sub`, a `jti`,
/// and `client_id` equal to `sub` when present. Unknown scope names in `scope` are ignored (they
/// grant nothing).
///
/// Tokens that pass are remembered in a bounded cache (see
/// [`TokenVerifierBuilder::cache_capacity`]), so a client reusing its token costs a hash lookup.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use l2c_core::auth::{Ed25519Key, SigningKey, TokenError, TokenIssuer, TokenVerifier};
/// use l2c_core::clock::MockClock;
/// use l2c_core::{ClientId, Scopes};
///
/// let clock = MockClock::at_unix(1_800_000_000);
/// let key = Ed25519Key::generate("k1").unwrap();
/// let issuer = TokenIssuer::new("iss", "aud", SigningKey::Ed25519(key.clone()))
///     .with_clock(Arc::new(clock.clone()));
/// let verifier = TokenVerifier::builder("iss", "aud")
///     .ed25519_public_key(key.public_key())
///     .with_clock(Arc::new(clock.clone()))
///     .build()
///     .unwrap();
/// let token = issuer.issue(&ClientId::new("c1"), Scopes::all()).access_token;
/// assert!(verifier.verify(&token).is_ok());
/// clock.advance(Duration::from_secs(7200 + 60));
/// assert_eq!(verifier.verify(&token), Err(TokenError::Expired));
/// ```
pub struct TokenVerifier {
    pub(super) issuer: Box<str>,
    pub(super) audience: Box<str>,
    /// Swapped whole by [`TokenVerifier::adopt_keys`] (a key rotation seen by a running server).
    pub(super) keys: RwLock<Arc<[VerificationKey]>>,
    pub(super) leeway: u64,
    pub(super) max_lifetime: u64,
    pub(super) max_token_len: usize,
    pub(super) cache: Option<VerifiedCache>,
    pub(super) clock: Arc<dyn Clock>,
}

impl TokenVerifier {
    /// A builder for a verifier accepting tokens from `issuer` (`iss`) meant for `audience`.
    pub fn builder(issuer: impl Into<String>, audience: impl Into<String>) -> TokenVerifierBuilder {
        TokenVerifierBuilder {
            issuer: issuer.into(),
            audience: audience.into(),
            keys: Vec::new(),
            error: None,
            leeway: MAX_LEEWAY,
            max_lifetime: DEFAULT_TTL,
            max_token_len: DEFAULT_MAX_TOKEN_LEN,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
            clock: Arc::new(SystemClock),
        }
    }

    /// The length limit on tokens.
    pub fn max_token_len(&self) -> usize {
        self.max_token_len
    }

    fn keys(&self) -> Arc<[VerificationKey]> {
        Arc::clone(&self.keys.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Replaces this verifier's keys with `from`'s (each keeps the issuer and audience it was
    /// built for), while every layer holding this verifier keeps running: how a server picks
    /// up a signing-key rotation without a restart. Tokens already verified stay in the cache
    /// until they expire, so drop a key only once its tokens have expired.
    pub fn adopt_keys(&self, from: &TokenVerifier) {
        let keys = from.keys();
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = keys;
    }

    /// The `kid`s of the keys accepted (in the order given to the builder).
    pub fn key_ids(&self) -> Vec<Option<String>> {
        self.keys()
            .iter()
            .map(|k| k.spec.kid.as_deref().map(str::to_owned))
            .collect()
    }

    /// The JWK Set of the verifier's Ed25519 public keys; HMAC keys are never in it.
    pub fn jwks(&self) -> Jwks {
        Jwks::from_keys(self.keys().iter().filter_map(|k| match &k.spec.material {
            KeyMaterial::EdDsa(public) => Some(public.clone()),
            KeyMaterial::Hs256(_) => None,
        }))
    }

    /// Verifies `token` (the credentials of `Authorization: Bearer <token>`).
    ///
    /// # Errors
    ///
    /// A [`TokenError`] naming the failed check, for logs only.
    pub fn verify(&self, token: &str) -> Result<AuthenticatedClient, TokenError> {
        self.verify_bytes(token.as_bytes())
    }

    /// [`verify`](Self::verify) on the raw header bytes: a cache hit needs no UTF-8 check.
    pub(crate) fn verify_bytes(&self, token: &[u8]) -> Result<AuthenticatedClient, TokenError> {
        if token.len() > self.max_token_len {
            return Err(TokenError::TooLarge);
        }
        let now = self.clock.unix_seconds();
        if let Some(outcome) = self.cache.as_ref().and_then(|cache| cache.get(token, now)) {
            return outcome;
        }
        let text = std::str::from_utf8(token).map_err(|_| TokenError::Malformed)?;
        let verified = self.verify_uncached(text, now)?;
        let Some(cache) = &self.cache else {
            return Ok(verified.client);
        };
        let client = verified.client.clone();
        cache.insert(token, verified, now);
        Ok(client)
    }

    #[cfg(test)]
    pub(crate) fn cache_for_tests(&self) -> Option<&VerifiedCache> {
        self.cache.as_ref()
    }

    fn verify_uncached(&self, token: &str, now: u64) -> Result<Verified, TokenError> {
        let bytes = token.as_bytes();
        if !bytes.iter().all(|&b| COMPACT_JWS_BYTES[usize::from(b)]) {
            return Err(TokenError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        if header_b64.is_empty() || claims_b64.is_empty() || signature_b64.is_empty() {
            return Err(TokenError::Malformed);
        }

        // Header: decoded on the stack; at most MAX_HEADER_LEN bytes.
        if header_b64.len() > MAX_HEADER_LEN * 4 / 3 + 4 {
            return Err(TokenError::Malformed);
        }
        let mut header_buf = [0u8; MAX_HEADER_LEN];
        let header_len = URL_SAFE_NO_PAD
            .decode_slice(header_b64, &mut header_buf)
            .map_err(|_| TokenError::Malformed)?;
        let header: Header<'_> =
            serde_json::from_slice(&header_buf[..header_len]).map_err(|_| TokenError::Malformed)?;
        if header.crit.is_some() {
            return Err(TokenError::Malformed);
        }
        let alg = match &*header.alg {
            "HS256" => "HS256",
            "EdDSA" => "EdDSA",
            _ => return Err(TokenError::UnsupportedAlgorithm),
        };
        match header.typ.as_deref() {
            Some(typ)
                if typ.eq_ignore_ascii_case("at+jwt")
                    || typ.eq_ignore_ascii_case("application/at+jwt") => {}
            _ => return Err(TokenError::InvalidType),
        }
        let kid = header.kid.as_deref();
        let keys = self.keys();
        let key = keys
            .iter()
            .find(|k| k.spec.alg() == alg && k.spec.kid.as_deref() == kid)
            .ok_or(TokenError::UnknownKey)?;

        // Strict Ed25519 (`verify_strict`): jsonwebtoken's RustCrypto backend runs the plain
        // check, which accepts a signature whose `R` is a small-order point; refuse those first.
        // (Weak public keys are refused when the key is built.)
        if let KeyMaterial::EdDsa(_) = key.spec.material {
            check_strict_ed25519_r(signature_b64)?;
        }

        // Signature, then `iss`, `aud` and the required claims: jsonwebtoken.
        let claims = jsonwebtoken::decode::<Claims>(token, &key.decoding, &key.validation)
            .map_err(|e| token_error(e.kind()))?
            .claims;
        self.check_claims(&claims, now)?;

        let scopes = claims
            .scope
            .as_deref()
            .unwrap_or("")
            .split(' ')
            .filter_map(|name| name.parse::<Scope>().ok())
            .collect::<Scopes>();
        let valid_from = claims
            .nbf
            .unwrap_or(0)
            .max(claims.iat)
            .saturating_sub(self.leeway);
        Ok(Verified {
            client: AuthenticatedClient {
                client_id: ClientId::new(&*claims.sub),
                scopes,
            },
            valid_from,
            valid_until: claims.exp.saturating_add(self.leeway),
        })
    }

    /// The checks jsonwebtoken does not make: the time claims against the verifier's clock,
    /// the lifetime, a non-empty `sub` and `jti`, `client_id == sub`.
    fn check_claims(&self, claims: &Claims, now: u64) -> Result<(), TokenError> {
        if claims.sub.is_empty()
            || claims.jti.is_empty()
            || claims
                .client_id
                .as_deref()
                .is_some_and(|id| id != claims.sub)
            || claims.exp <= claims.iat
        {
            return Err(TokenError::InvalidClaims);
        }
        if now >= claims.exp.saturating_add(self.leeway) {
            return Err(TokenError::Expired);
        }
        if claims
            .nbf
            .is_some_and(|nbf| nbf > now.saturating_add(self.leeway))
        {
            return Err(TokenError::NotYetValid);
        }
        if claims.iat > now.saturating_add(self.leeway) {
            return Err(TokenError::IssuedInFuture);
        }
        if claims.exp - claims.iat > self.max_lifetime.saturating_add(self.leeway) {
            return Err(TokenError::LifetimeTooLong);
        }
        Ok(())
    }
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = self.keys();
        let kids: Vec<_> = keys
            .iter()
            .map(|k| (k.spec.alg(), k.spec.kid.as_deref()))
            .collect();
        f.debug_struct("TokenVerifier")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("keys", &kids)
            .field("leeway", &self.leeway)
            .field("max_lifetime", &self.max_lifetime)
            .field("cache", &self.cache.is_some())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
pub(super) struct Header<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow, default)]
    typ: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kid: Option<Cow<'a, str>>,
    #[serde(default)]
    crit: Option<serde::de::IgnoredAny>,
}

/// The claims read after jsonwebtoken has checked the signature, `iss` and `aud`.
#[derive(Deserialize)]
pub(super) struct Claims {
    sub: String,
    exp: u64,
    iat: u64,
    #[serde(default)]
    nbf: Option<u64>,
    jti: String,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
}

/// What each jsonwebtoken refusal means here.
pub(super) fn token_error(kind: &ErrorKind) -> TokenError {
    match kind {
        ErrorKind::InvalidSignature | ErrorKind::InvalidEddsaKey => TokenError::BadSignature,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::MissingAlgorithm => TokenError::UnsupportedAlgorithm,
        ErrorKind::InvalidIssuer => TokenError::InvalidIssuer,
        ErrorKind::InvalidAudience => TokenError::InvalidAudience,
        ErrorKind::InvalidSubject => TokenError::InvalidClaims,
        // A claim that is missing or of the wrong type: the claims set does not parse.
        ErrorKind::MissingRequiredClaim(_) | ErrorKind::InvalidClaimFormat(_) => {
            TokenError::Malformed
        }
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        _ => TokenError::Malformed,
    }
}

/// Refuses an EdDSA signature whose `R` (its first 32 bytes) is not a point or is of small
/// order, as `ed25519_dalek::VerifyingKey::verify_strict` does.
pub(in crate::auth) fn check_strict_ed25519_r(signature_b64: &str) -> Result<(), TokenError> {
    if signature_b64.len() != 86 {
        return Err(TokenError::BadSignature);
    }
    let mut signature = [0u8; 64];
    let len = URL_SAFE_NO_PAD
        .decode_slice(signature_b64, &mut signature)
        .map_err(|_| TokenError::BadSignature)?;
    let r: [u8; 32] = signature[..32]
        .try_into()
        .map_err(|_| TokenError::BadSignature)?;
    match curve25519_dalek::edwards::CompressedEdwardsY(r).decompress() {
        Some(point) if len == 64 && !point.is_small_order() => Ok(()),
        _ => Err(TokenError::BadSignature),
    }
}
