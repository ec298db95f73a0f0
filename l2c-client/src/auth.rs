//! The access-token cache.
//!
//! The client exchanges its credentials for a bearer token at `POST /api/oauth/token` (spec §2.2)
//! the first time it needs one, keeps it, and fetches a new one once 90 % of its `expires_in` has
//! passed. However many calls need a token at once, one token request is in flight at a time: the
//! others wait for it and share its result. A `401` whose challenge says `invalid_token` drops the
//! cached token (only if it is still the one that was refused), so the retried call fetches a new
//! one. If a refresh fails while the old token has not yet expired, the old token is used, the
//! failure is logged, and the refresh is tried again 5 s later (not on every call).
//!
//! Neither the client secret nor any token appears in `Debug` output or log events.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use http::Method;
use l2c_core::api::oauth::{TokenRequest, TokenResponse};
use tokio::time::Instant;

use crate::client::{ClientInner, RequestSpec, ResponseKind};
use crate::error::Error;

/// The token endpoint's path under the base URL.
pub(crate) const TOKEN_PATH: &[&str] = &["api", "oauth", "token"];

/// The fraction of `expires_in` after which a token is refreshed.
const REFRESH_AT: f64 = 0.9;

/// How long to wait before trying again after a failed refresh while the token is still valid.
const REFRESH_RETRY: Duration = Duration::from_secs(5);

/// A string that never prints itself.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(String);

impl Secret {
    pub(crate) fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A cached access token.
pub(crate) struct CachedToken {
    value: Secret,
    refresh_at: Instant,
    expires_at: Instant,
}

impl CachedToken {
    pub(crate) fn bearer(&self) -> &str {
        self.value.expose()
    }
}

impl fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedToken")
            .field("value", &self.value)
            .field("refresh_at", &self.refresh_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Credentials plus the cached token; one per [`Client`](crate::Client), shared by its clones.
pub(crate) struct TokenSource {
    client_id: String,
    client_secret: Secret,
    scope: Option<String>,
    cached: RwLock<Option<Arc<CachedToken>>>,
    refresh: tokio::sync::Mutex<()>,
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSource")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    pub(crate) fn new(client_id: String, client_secret: Secret, scope: Option<String>) -> Self {
        Self {
            client_id,
            client_secret,
            scope,
            cached: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn client_id(&self) -> &str {
        &self.client_id
    }

    fn current(&self) -> Option<Arc<CachedToken>> {
        match self.cached.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn store(&self, token: Option<Arc<CachedToken>>) {
        match self.cached.write() {
            Ok(mut guard) => *guard = token,
            Err(poisoned) => *poisoned.into_inner() = token,
        }
    }

    fn fresh(&self, now: Instant) -> Option<Arc<CachedToken>> {
        self.current().filter(|t| now < t.refresh_at)
    }

    /// A token to send: the cached one while fresh, else a new one (single-flight).
    pub(crate) async fn token(&self, client: &ClientInner) -> Result<Arc<CachedToken>, Error> {
        if let Some(t) = self.fresh(Instant::now()) {
            return Ok(t);
        }
        let _guard = self.refresh.lock().await;
        // Whoever held the lock before us may have refreshed already.
        if let Some(t) = self.fresh(Instant::now()) {
            return Ok(t);
        }
        match self.fetch(client).await {
            Ok(t) => {
                self.store(Some(t.clone()));
                Ok(t)
            }
            Err(err) => {
                let now = Instant::now();
                match self.current() {
                    Some(old) if now < old.expires_at => {
                        tracing::warn!(
                            client_id = %self.client_id,
                            error = %err,
                            "token refresh failed; using the current token until it expires"
                        );
                        // Try again after a pause, not on every call during an outage.
                        let retry = Arc::new(CachedToken {
                            value: old.value.clone(),
                            refresh_at: (now + REFRESH_RETRY).min(old.expires_at),
                            expires_at: old.expires_at,
                        });
                        self.store(Some(retry.clone()));
                        Ok(retry)
                    }
                    _ => Err(err),
                }
            }
        }
    }

    /// Drops `stale` from the cache if it is still the cached token (after the server refused it).
    pub(crate) fn invalidate(&self, stale: &Arc<CachedToken>) {
        if self.current().is_some_and(|t| t.value == stale.value) {
            self.store(None);
        }
    }

    /// Boxed: the token request goes through [`ClientInner::execute`], which calls
    /// [`token`](Self::token) for API requests.
    fn fetch<'a>(
        &'a self,
        client: &'a ClientInner,
    ) -> Pin<Box<dyn Future<Output = Result<Arc<CachedToken>, Error>> + Send + 'a>> {
        Box::pin(self.fetch_inner(client))
    }

    async fn fetch_inner(&self, client: &ClientInner) -> Result<Arc<CachedToken>, Error> {
        let body = TokenRequest {
            grant_type: Some("client_credentials".to_owned()),
            client_id: Some(self.client_id.clone()),
            client_secret: Some(self.client_secret.expose().to_owned()),
            scope: self.scope.clone(),
        };
        let spec = RequestSpec::new(Method::POST, TOKEN_PATH.iter().copied())
            .json(&body)?
            .kind(ResponseKind::Token);
        let requested_at = Instant::now();
        tracing::debug!(client_id = %self.client_id, "requesting an access token");
        let response = client.execute(spec).await?;
        // Decoded like every other response, so a bad one still names its request id.
        let token: TokenResponse = crate::client::decode_json(response).await?;
        let lifetime = Duration::from_secs(token.expires_in);
        Ok(Arc::new(CachedToken {
            value: Secret::new(token.access_token),
            refresh_at: requested_at + lifetime.mul_f64(REFRESH_AT),
            expires_at: requested_at + lifetime,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let source = TokenSource::new("app-1".into(), Secret::new("s3cr3t-value"), None);
        let debug = format!("{source:?}");
        assert!(debug.contains("app-1"));
        assert!(!debug.contains("s3cr3t-value"));
        let token = CachedToken {
            value: Secret::new("eyJhbGciOi.token"),
            refresh_at: Instant::now(),
            expires_at: Instant::now(),
        };
        assert!(!format!("{token:?}").contains("eyJ"));
    }
}
