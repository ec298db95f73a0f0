//! Why a token or a verifier configuration was refused.

use crate::auth::keys::KeyError;

/// Why a token was refused.
///
/// Every variant means the same thing to the caller — 401 `invalid_token` (RFC 6750 §3.1,
/// RFC 9068 §4) — and the response never says which check failed; the variant is for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Longer than the verifier's limit.
    #[error("token too large")]
    TooLarge,
    /// Not a JWS Compact Serialization of three base64url segments with JSON header and claims.
    #[error("malformed token")]
    Malformed,
    /// The header's `alg` is not one the verifier has a key for (`none` never is).
    #[error("unsupported algorithm")]
    UnsupportedAlgorithm,
    /// The header's `typ` is not `at+jwt` / `application/at+jwt`.
    #[error("wrong token type")]
    InvalidType,
    /// No key with the header's `alg` and `kid`.
    #[error("unknown key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// A required claim is missing, has the wrong type or is inconsistent.
    #[error("invalid claims")]
    InvalidClaims,
    /// `iss` is not the configured issuer.
    #[error("wrong issuer")]
    InvalidIssuer,
    /// The configured audience is not in `aud`.
    #[error("wrong audience")]
    InvalidAudience,
    /// `exp` has passed (leeway applied).
    #[error("token expired")]
    Expired,
    /// `nbf` is still in the future (leeway applied).
    #[error("token not yet valid")]
    NotYetValid,
    /// `iat` is in the future (leeway applied).
    #[error("token issued in the future")]
    IssuedInFuture,
    /// `exp - iat` is longer than the verifier's maximum lifetime.
    #[error("token lifetime too long")]
    LifetimeTooLong,
}

impl TokenError {
    /// The RFC 6750 error code for every variant: `invalid_token`.
    pub const fn error_code(self) -> &'static str {
        "invalid_token"
    }
}

/// A verifier that cannot be built as configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No verification key was given.
    #[error("a token verifier needs at least one key")]
    NoKeys,
    /// The issuer or audience is empty.
    #[error("issuer and audience must not be empty")]
    EmptyIssuerOrAudience,
    /// A leeway above [`MAX_LEEWAY`](crate::auth::verifier::MAX_LEEWAY).
    #[error("leeway must be at most 60 seconds")]
    LeewayTooLarge,
    /// Two keys with the same algorithm and `kid`.
    #[error("two keys share algorithm {alg} and kid {kid:?}")]
    DuplicateKey {
        /// The algorithm.
        alg: &'static str,
        /// The shared key id.
        kid: Option<String>,
    },
    /// A key or key id was refused.
    #[error(transparent)]
    Key(#[from] KeyError),
}
