//! The full l2c stack, outermost first: `RequestIdLayer` → `JwtAuthLayer` (HS256, verified-token
//! cache on, the default) → `KeyedRateLimitLayer` (in memory, keyed by `client_id`) →
//! `IdempotencyLayer` (pass-through on a GET; replays a stored response on a retried POST) →
//! `RequireScopeLayer` → the router, wrapped around the router as a whole (see
//! [`crate::Stacked`]).

use std::sync::Arc;

use axum::Router;
use l2c_core::auth::{
    HmacKey, JwtAuthLayer, RequireScopeLayer, SigningKey, TokenIssuer, TokenVerifier,
};
use l2c_core::idempotency::IdempotencyLayer;
use l2c_core::rate_limit::{KeyedRateLimitLayer, Quota};
use l2c_core::{ClientId, RequestIdLayer, Scope, Scopes};
use tower::ServiceBuilder;

use crate::{AUDIENCE, BoxError, CLIENT_ID, ISSUER, Stacked};

/// A token the l2c stack accepts for `scope` (issued by l2c's own issuer, valid for its default
/// two hours).
pub fn issue_token(secret: &[u8], scope: Scope) -> Result<String, BoxError> {
    let key = HmacKey::new(secret)?;
    let issuer = TokenIssuer::new(ISSUER, AUDIENCE, SigningKey::Hmac(key, None));
    Ok(issuer
        .issue(&ClientId::new(CLIENT_ID), Scopes::one(scope))
        .access_token)
}

/// `router` behind the l2c layers.
///
/// `RequireScopeLayer` sits in front of the whole router here because the benchmark serves one
/// route; a server with routes of different scopes puts it on each route (`route_layer`).
///
/// With `reject_all` the quota is one request per hour, so after the first request every request
/// is a 429; otherwise it is far above what one core can serve (10⁹/s, burst 10⁶ — the same as
/// the peer stack's), so nothing is rejected.
pub fn stack(
    router: Router,
    secret: &[u8],
    reject_all: bool,
    scope: Scope,
) -> Result<impl Stacked, BoxError> {
    let verifier = TokenVerifier::builder(ISSUER, AUDIENCE)
        .hmac_key(HmacKey::new(secret)?)
        .build()?;
    let quota = if reject_all {
        Quota::per_hour(1)
    } else {
        Quota::per_second(1_000_000_000).burst(1_000_000)
    };
    Ok(ServiceBuilder::new()
        .layer(RequestIdLayer::new())
        .layer(JwtAuthLayer::new(Arc::new(verifier)))
        .layer(KeyedRateLimitLayer::new(quota))
        .layer(IdempotencyLayer::new())
        .layer(RequireScopeLayer::one(scope))
        .service(router))
}
