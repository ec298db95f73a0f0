//! The auth layers: configuration only.

use std::sync::Arc;

use http::HeaderValue;
use tower_layer::Layer;

use super::rejection::{Challenges, DEFAULT_REALM, insufficient_scope_challenge};
use super::revocation::Revocation;
use super::service::{JwtAuth, RequireScope};
use super::verifier::TokenVerifier;
use crate::identity::{Scope, Scopes};

/// Authenticates requests by their `Authorization: Bearer` access token (RFC 6750 §2.1).
///
/// On success the [`AuthenticatedClient`](crate::AuthenticatedClient) is put in the request's
/// extensions and the inner service is called. Otherwise the response is (all with
/// `Cache-Control: no-store` and a problem+json body that does not say which check failed):
///
/// | request | status | `WWW-Authenticate` |
/// |---|---|---|
/// | no `Authorization`, or another scheme | 401 | `Bearer realm="l2c"` |
/// | two `Authorization` headers, `Bearer` without a token | 400 | `Bearer realm="l2c", error="invalid_request"` |
/// | any token the [`TokenVerifier`] refuses | 401 | `Bearer realm="l2c", error="invalid_token"` |
/// | a valid token of a client the [`Revocation`] hook refuses | 401 | `Bearer realm="l2c", error="invalid_token"` |
///
/// Every refusal carries [`NotExecuted`](crate::NotExecuted) and the [`AuthRejection`](super::AuthRejection)
/// in its extensions.
#[derive(Clone)]
#[must_use]
pub struct JwtAuthLayer {
    verifier: Arc<TokenVerifier>,
    challenges: Arc<Challenges>,
    revocation: Option<Arc<dyn Revocation>>,
}

impl std::fmt::Debug for JwtAuthLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAuthLayer")
            .field("verifier", &self.verifier)
            .field("challenges", &self.challenges)
            .field("revocation", &self.revocation.is_some())
            .finish()
    }
}

impl JwtAuthLayer {
    /// A layer verifying tokens with `verifier`, with realm `l2c`.
    pub fn new(verifier: Arc<TokenVerifier>) -> Self {
        Self {
            verifier,
            challenges: Arc::new(Challenges::new(DEFAULT_REALM)),
            revocation: None,
        }
    }

    /// Asks `hook` whether the client of every validly signed token may still use it; a
    /// refused client gets this layer's 401 `invalid_token` (see [`Revocation`]).
    pub fn with_revocation(mut self, hook: impl Revocation) -> Self {
        self.revocation = Some(Arc::new(hook));
        self
    }

    /// Sets the challenge's `realm`. Characters RFC 6750 §3 does not allow there (`"`, `\`,
    /// controls, non-ASCII) are dropped.
    pub fn realm(mut self, realm: impl AsRef<str>) -> Self {
        self.challenges = Arc::new(Challenges::new(realm.as_ref()));
        self
    }
}

impl<S> Layer<S> for JwtAuthLayer {
    type Service = JwtAuth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        JwtAuth::new(
            inner,
            self.verifier.clone(),
            self.challenges.clone(),
            self.revocation.clone(),
        )
    }
}

/// Requires scopes of the [`AuthenticatedClient`](crate::AuthenticatedClient) a
/// [`JwtAuthLayer`] put in the request's extensions.
///
/// Missing scopes: 403 with `WWW-Authenticate: Bearer realm="l2c", error="insufficient_scope",
/// scope="<required scopes>"`. No authenticated client at all (the layer is not behind a
/// `JwtAuthLayer`): 401 `Bearer realm="l2c"`.
#[derive(Debug, Clone)]
#[must_use]
pub struct RequireScopeLayer {
    required: Scopes,
    challenges: Arc<ScopeChallenges>,
}

#[derive(Debug)]
pub(crate) struct ScopeChallenges {
    pub(crate) missing: HeaderValue,
    pub(crate) insufficient: HeaderValue,
}

impl ScopeChallenges {
    fn new(realm: &str, required: Scopes) -> Self {
        Self {
            missing: Challenges::new(realm).missing,
            insufficient: insufficient_scope_challenge(realm, required),
        }
    }
}

impl RequireScopeLayer {
    /// A layer requiring every scope of `required`.
    pub fn new(required: Scopes) -> Self {
        Self {
            required,
            challenges: Arc::new(ScopeChallenges::new(DEFAULT_REALM, required)),
        }
    }

    /// A layer requiring `scope`.
    pub fn one(scope: Scope) -> Self {
        Self::new(Scopes::one(scope))
    }

    /// Sets the challenge's `realm` (see [`JwtAuthLayer::realm`]).
    pub fn realm(mut self, realm: impl AsRef<str>) -> Self {
        self.challenges = Arc::new(ScopeChallenges::new(realm.as_ref(), self.required));
        self
    }
}

/// Shorthand for [`RequireScopeLayer::new`].
pub fn require_scopes(required: impl Into<Scopes>) -> RequireScopeLayer {
    RequireScopeLayer::new(required.into())
}

impl<S> Layer<S> for RequireScopeLayer {
    type Service = RequireScope<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireScope::new(inner, self.required, self.challenges.clone())
    }
}
