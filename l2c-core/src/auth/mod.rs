//! JWT access tokens: issuing, verification, the JWK Set, and the tower middleware. Tokens are
//! signed and their signatures checked by [`jsonwebtoken`] (RustCrypto backend).
//!
//! - [`TokenIssuer`] signs RFC 9068 access tokens (`typ: at+jwt`, claims `iss aud sub client_id
//!   iat nbf exp jti scope`) with an HS256 [`HmacKey`] or an EdDSA [`Ed25519Key`].
//! - [`TokenVerifier`] checks them (pinned algorithm per key, `kid` lookup, `exp`/`nbf`/`iat`
//!   with at most 60 s leeway, `iss`, `aud`, `typ`) and remembers verified tokens in a bounded
//!   cache, so steady-state authentication is a hash lookup.
//! - [`Jwks`] is the public JWK Set (`/.well-known/jwks.json`); HMAC keys are never in it.
//! - [`JwtAuthLayer`] authenticates `Authorization: Bearer` requests (RFC 6750) and puts the
//!   [`AuthenticatedClient`](crate::AuthenticatedClient) in the request's extensions;
//!   [`RequireScopeLayer`] answers 403 `insufficient_scope` when a route's scopes are missing.
//! - [`Revocation`] is the hook [`JwtAuthLayer::with_revocation`] asks whether the client of a
//!   valid token was revoked, disabled or deleted since the token was issued; a refused client
//!   gets the same 401 `invalid_token` as a bad token.
//!
//! Every refused token gets the same 401 `invalid_token` answer; which check failed is only in
//! the [`AuthRejection`] placed in the response's extensions, for logs.
//!
//! ```
//! use std::sync::Arc;
//! use http::{Request, Response, StatusCode};
//! use l2c_core::auth::{HmacKey, JwtAuthLayer, RequireScopeLayer, SigningKey, TokenIssuer, TokenVerifier};
//! use l2c_core::{AuthenticatedClient, ClientId, Scope, Scopes};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let key = HmacKey::generate();
//! let issuer = TokenIssuer::new("https://l2c.example", "l2c", SigningKey::Hmac(key.clone(), None));
//! let verifier = TokenVerifier::builder("https://l2c.example", "l2c").hmac_key(key).build().unwrap();
//!
//! let svc = ServiceBuilder::new()
//!     .layer(JwtAuthLayer::new(Arc::new(verifier)))
//!     .layer(RequireScopeLayer::one(Scope::OrdersRead))
//!     .service(service_fn(|req: Request<String>| async move {
//!         let client = req.extensions().get::<AuthenticatedClient>().unwrap();
//!         Ok::<_, std::convert::Infallible>(Response::new(client.client_id.to_string().into_bytes()))
//!     }));
//!
//! // No token: 401 with a challenge that carries no error code.
//! let res = svc.clone().oneshot(Request::new(String::new())).await.unwrap();
//! assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
//! assert_eq!(res.headers()["www-authenticate"], r#"Bearer realm="l2c""#);
//!
//! // A valid token with the scope: the handler sees the client.
//! let token = issuer.issue(&ClientId::new("erp-1"), Scopes::one(Scope::OrdersRead)).access_token;
//! let req = Request::builder().header("authorization", format!("Bearer {token}")).body(String::new()).unwrap();
//! let res = svc.clone().oneshot(req).await.unwrap();
//! assert_eq!(res.status(), StatusCode::OK);
//! assert_eq!(res.body(), b"erp-1");
//!
//! // A valid token without it: 403 insufficient_scope.
//! let token = issuer.issue(&ClientId::new("erp-1"), Scopes::one(Scope::LeadsWrite)).access_token;
//! let req = Request::builder().header("authorization", format!("Bearer {token}")).body(String::new()).unwrap();
//! let res = svc.oneshot(req).await.unwrap();
//! assert_eq!(res.status(), StatusCode::FORBIDDEN);
//! assert_eq!(
//!     res.headers()["www-authenticate"],
//!     r#"Bearer realm="l2c", error="insufficient_scope", scope="orders:read""#
//! );
//! # }
//! ```

mod cache;
mod future;
mod issuer;
mod keys;
mod layer;
mod rejection;
mod revocation;
mod service;
mod verifier;

#[cfg(test)]
mod revocation_tests;
#[cfg(test)]
mod tests;

pub use future::ResponseFuture;
pub use issuer::{DEFAULT_TTL, IssuedToken, TokenIssuer};
pub use keys::{
    Ed25519Key, Ed25519PublicKey, HmacKey, Jwks, KeyError, MAX_KID_LEN, MIN_HMAC_KEY_LEN,
    PublicJwk, SigningKey,
};
pub use layer::{JwtAuthLayer, RequireScopeLayer, require_scopes};
pub use rejection::{AuthRejection, DEFAULT_REALM};
pub use revocation::{Revocation, RevocationCheck};
pub use service::{JwtAuth, RequireScope};
pub use verifier::{
    ConfigError, DEFAULT_CACHE_CAPACITY, DEFAULT_MAX_TOKEN_LEN, MAX_LEEWAY, TokenError,
    TokenVerifier, TokenVerifierBuilder,
};
