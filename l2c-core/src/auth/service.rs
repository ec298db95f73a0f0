//! The auth services: every decision is made in `call`.

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, header};
use tower_service::Service;

use super::future::ResponseFuture;
use super::layer::ScopeChallenges;
use super::rejection::{self, AuthRejection, Challenges};
use super::revocation::{Revocation, RevocationCheck};
use super::verifier::TokenVerifier;
use crate::identity::{AuthenticatedClient, Scopes};

/// The service made by [`JwtAuthLayer`](super::JwtAuthLayer).
#[derive(Clone)]
pub struct JwtAuth<S> {
    inner: S,
    verifier: Arc<TokenVerifier>,
    challenges: Arc<Challenges>,
    revocation: Option<Arc<dyn Revocation>>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for JwtAuth<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAuth")
            .field("inner", &self.inner)
            .field("verifier", &self.verifier)
            .field("challenges", &self.challenges)
            .field("revocation", &self.revocation.is_some())
            .finish()
    }
}

impl<S> JwtAuth<S> {
    pub(crate) fn new(
        inner: S,
        verifier: Arc<TokenVerifier>,
        challenges: Arc<Challenges>,
        revocation: Option<Arc<dyn Revocation>>,
    ) -> Self {
        Self {
            inner,
            verifier,
            challenges,
            revocation,
        }
    }
}

/// Reads the one `Authorization: Bearer` header and verifies its token.
fn authenticate(
    verifier: &TokenVerifier,
    headers: &HeaderMap,
) -> Result<AuthenticatedClient, AuthRejection> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next().ok_or(AuthRejection::MissingCredentials)?;
    if values.next().is_some() {
        return Err(AuthRejection::InvalidRequest);
    }
    let value = value.as_bytes().trim_ascii();
    let (scheme, credentials) = match value.iter().position(|&b| b == b' ') {
        Some(i) => (&value[..i], value[i..].trim_ascii_start()),
        None => (value, &b""[..]),
    };
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Err(AuthRejection::UnsupportedScheme);
    }
    if credentials.is_empty() {
        return Err(AuthRejection::InvalidRequest);
    }
    // Oversized tokens are refused by the verifier before even their syntax is scanned.
    // No separate b64token scan (RFC 6750 §2.1) here: the verifier accepts only the JWS compact
    // alphabet, a subset of b64token, so anything outside it is refused as malformed there, and a
    // cache hit needs no scan at all.
    verifier
        .verify_bytes(credentials)
        .map_err(AuthRejection::InvalidToken)
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for JwtAuth<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: From<Bytes> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        match authenticate(&self.verifier, req.headers()) {
            Ok(client) => {
                let check = self
                    .revocation
                    .as_ref()
                    .map_or(RevocationCheck::Active, |hook| hook.check(&client));
                req.extensions_mut().insert(client);
                match check {
                    RevocationCheck::Active => ResponseFuture::inner(self.inner.call(req)),
                    RevocationCheck::Revoked => ResponseFuture::rejected(self.revoked(&req)),
                    RevocationCheck::Lookup(lookup) => {
                        // Call a ready clone of the inner service once the lookup answers.
                        let challenges = self.challenges.clone();
                        let clone = self.inner.clone();
                        let mut inner = std::mem::replace(&mut self.inner, clone);
                        ResponseFuture::checking(Box::pin(async move {
                            if lookup.await {
                                inner.call(req).await
                            } else {
                                Ok(revoked(&challenges, &req))
                            }
                        }))
                    }
                }
            }
            Err(reason) => {
                if let AuthRejection::InvalidToken(error) = reason {
                    tracing::debug!(%error, "bearer token refused");
                }
                let challenge = match reason {
                    AuthRejection::InvalidRequest => &self.challenges.invalid_request,
                    AuthRejection::InvalidToken(_) => &self.challenges.invalid_token,
                    _ => &self.challenges.missing,
                };
                ResponseFuture::rejected(rejection::response(reason, challenge, req.extensions()))
            }
        }
    }
}

impl<S> JwtAuth<S> {
    fn revoked<B: From<Bytes>, ReqBody>(&self, req: &Request<ReqBody>) -> Response<B> {
        revoked(&self.challenges, req)
    }
}

/// The answer to a valid token of a client the revocation hook refused: the same as for an
/// invalid token.
fn revoked<B: From<Bytes>, ReqBody>(
    challenges: &Challenges,
    req: &Request<ReqBody>,
) -> Response<B> {
    tracing::debug!("bearer token of a revoked client refused");
    rejection::response(
        AuthRejection::Revoked,
        &challenges.invalid_token,
        req.extensions(),
    )
}

/// The service made by [`RequireScopeLayer`](super::RequireScopeLayer).
#[derive(Debug, Clone)]
pub struct RequireScope<S> {
    inner: S,
    required: Scopes,
    challenges: Arc<ScopeChallenges>,
}

impl<S> RequireScope<S> {
    pub(crate) fn new(inner: S, required: Scopes, challenges: Arc<ScopeChallenges>) -> Self {
        Self {
            inner,
            required,
            challenges,
        }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequireScope<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: From<Bytes>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let (reason, challenge) = match req.extensions().get::<AuthenticatedClient>() {
            Some(client) if client.scopes.contains_all(self.required) => {
                return ResponseFuture::inner(self.inner.call(req));
            }
            Some(client) => (
                AuthRejection::InsufficientScope {
                    required: self.required,
                    granted: client.scopes,
                },
                &self.challenges.insufficient,
            ),
            None => (AuthRejection::NotAuthenticated, &self.challenges.missing),
        };
        ResponseFuture::rejected(rejection::response(reason, challenge, req.extensions()))
    }
}
