//! The RFC 6750 challenges and problem bodies of the auth middleware.

use std::borrow::Cow;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use super::verifier::TokenError;
use crate::identity::Scopes;
use crate::problem::Problem;

/// Why the auth middleware refused a request; the rejection response carries it in its
/// extensions, for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthRejection {
    /// No `Authorization` header: 401 without an `error` attribute.
    MissingCredentials,
    /// An `Authorization` scheme other than `Bearer`: 401 without an `error` attribute.
    UnsupportedScheme,
    /// Several `Authorization` headers, or `Bearer` without a token: 400 `invalid_request`.
    InvalidRequest,
    /// The token was refused: 401 `invalid_token`.
    InvalidToken(TokenError),
    /// The token is valid but the [`Revocation`](super::Revocation) hook refused its client
    /// (revoked, disabled or deleted): the same 401 `invalid_token` answer.
    Revoked,
    /// The token lacks a required scope: 403 `insufficient_scope`.
    InsufficientScope {
        /// The scopes the route requires.
        required: Scopes,
        /// The scopes the token grants.
        granted: Scopes,
    },
    /// A scope check ran on a request no auth layer authenticated: 401.
    NotAuthenticated,
}

/// The default `realm`.
pub const DEFAULT_REALM: &str = "l2c";

static NO_STORE: HeaderValue = HeaderValue::from_static("no-store");

/// Keeps the characters RFC 6750 §3 allows in a challenge value (%x20-21 / %x23-5B / %x5D-7E).
pub(crate) fn sanitize_realm(realm: &str) -> String {
    realm
        .chars()
        .filter(|&c| matches!(c, '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e'))
        .collect()
}

fn header_value(s: &str) -> HeaderValue {
    // Built from sanitized, visible ASCII only.
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
}

/// Prebuilt `WWW-Authenticate` values of [`JwtAuthLayer`](super::JwtAuthLayer).
#[derive(Debug, Clone)]
pub(crate) struct Challenges {
    pub(crate) missing: HeaderValue,
    pub(crate) invalid_request: HeaderValue,
    pub(crate) invalid_token: HeaderValue,
}

impl Challenges {
    pub(crate) fn new(realm: &str) -> Self {
        let realm = sanitize_realm(realm);
        Self {
            missing: header_value(&format!("Bearer realm=\"{realm}\"")),
            invalid_request: header_value(&format!(
                "Bearer realm=\"{realm}\", error=\"invalid_request\""
            )),
            invalid_token: header_value(&format!(
                "Bearer realm=\"{realm}\", error=\"invalid_token\""
            )),
        }
    }
}

pub(crate) fn insufficient_scope_challenge(realm: &str, required: Scopes) -> HeaderValue {
    let realm = sanitize_realm(realm);
    header_value(&format!(
        "Bearer realm=\"{realm}\", error=\"insufficient_scope\", scope=\"{required}\""
    ))
}

/// The rejection response: status, `WWW-Authenticate`, `Cache-Control: no-store`, a
/// problem+json body (with `error` as an extension member and the request id) and the reason
/// in the response extensions.
pub(crate) fn response<B: From<Bytes>>(
    rejection: AuthRejection,
    challenge: &HeaderValue,
    request: &http::Extensions,
) -> Response<B> {
    let (status, code, title, detail, error): (_, _, _, Cow<'static, str>, _) = match rejection {
        AuthRejection::MissingCredentials
        | AuthRejection::UnsupportedScheme
        | AuthRejection::NotAuthenticated => (
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            "This endpoint requires an access token: send `Authorization: Bearer <token>`.".into(),
            None,
        ),
        AuthRejection::InvalidRequest => (
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Bad Request",
            "Send exactly one `Authorization: Bearer <token>` header with a non-empty token."
                .into(),
            Some("invalid_request"),
        ),
        AuthRejection::InvalidToken(_) | AuthRejection::Revoked => (
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "Unauthorized",
            "The access token is invalid or has expired; request a new one.".into(),
            Some("invalid_token"),
        ),
        AuthRejection::InsufficientScope { required, .. } => (
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "Forbidden",
            format!(
                "The access token does not grant the scopes this endpoint requires: {required}."
            )
            .into(),
            Some("insufficient_scope"),
        ),
    };
    let mut problem = Problem::new(status, code, title)
        .with_detail(detail)
        .with_request_id_from(request);
    if let Some(error) = error {
        problem = problem.with_extension("error", error);
    }
    if let AuthRejection::InsufficientScope { required, .. } = rejection {
        problem = problem.with_extension("scope", required.to_string());
    }
    let mut response = problem.into_response::<B>();
    let headers = response.headers_mut();
    headers.insert(header::WWW_AUTHENTICATE, challenge.clone());
    headers.insert(header::CACHE_CONTROL, NO_STORE.clone());
    response.extensions_mut().insert(rejection);
    // Refused before the handler ran: never recorded by an idempotency layer around auth.
    response.extensions_mut().insert(crate::NotExecuted);
    response
}
