//! [`ClientBuilder`]: the configuration of a [`Client`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use reqwest::Url;

use crate::auth::{Secret, TokenSource};
use crate::error::BuildError;
use crate::retry::RetryPolicy;

use super::*;

/// Configures a [`Client`].
///
/// Required: [`base_url`](Self::base_url) and [`credentials`](Self::credentials).
#[derive(Default)]
#[must_use]
pub struct ClientBuilder {
    base_url: Option<String>,
    client_id: Option<String>,
    client_secret: Option<Secret>,
    scope: Option<String>,
    timeout: Option<Option<Duration>>,
    connect_timeout: Option<Duration>,
    user_agent: Option<String>,
    http: Option<reqwest::Client>,
    retry: Option<RetryPolicy>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("base_url", &self.base_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("scope", &self.scope)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("user_agent", &self.user_agent)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// The platform's base URL, e.g. `https://open.example.com` (a path prefix is kept).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// The application's `client_id` and `client_secret` (spec §2.1).
    pub fn credentials(mut self, client_id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self.client_secret = Some(Secret::new(secret));
        self
    }

    /// Asks for a token narrowed to these space-separated scopes (default: all of the client's).
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// The time limit of one attempt, from connecting until the response body is read
    /// (default 30 s; `None` for no limit). Streamed report downloads are exempt.
    pub fn timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.timeout = Some(timeout.into());
        self
    }

    /// The time limit for establishing a connection (default 10 s). Ignored with
    /// [`http_client`](Self::http_client): configure that client instead.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// The `User-Agent` header (default `l2c-client/<version>`).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// Uses this `reqwest::Client` (its pool, proxy and TLS settings) instead of building one.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// How failed calls are retried (default [`RetryPolicy::default`]).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// Builds the client. Sends nothing: the first token is fetched by the first call.
    ///
    /// # Errors
    ///
    /// [`BuildError`] when the base URL or the credentials are missing or invalid, the user agent
    /// is not a valid header value, or the HTTP client cannot be built.
    pub fn build(self) -> Result<Client, BuildError> {
        let raw = self.base_url.ok_or(BuildError::MissingBaseUrl)?;
        let base_url =
            Url::parse(raw.trim()).map_err(|_| BuildError::InvalidBaseUrl(raw.clone()))?;
        if !matches!(base_url.scheme(), "http" | "https")
            || base_url.cannot_be_a_base()
            || base_url.host().is_none()
        {
            return Err(BuildError::InvalidBaseUrl(raw));
        }
        let (client_id, secret) = match (self.client_id, self.client_secret) {
            (Some(id), Some(secret)) if !id.is_empty() && !secret.expose().is_empty() => {
                (id, secret)
            }
            _ => return Err(BuildError::MissingCredentials),
        };
        let user_agent = HeaderValue::try_from(
            self.user_agent
                .unwrap_or_else(|| DEFAULT_USER_AGENT.to_owned()),
        )
        .map_err(|_| BuildError::InvalidUserAgent)?;
        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder()
                .connect_timeout(self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT))
                .build()
                .map_err(|e| BuildError::HttpClient(e.to_string()))?,
        };
        Ok(Client {
            inner: Arc::new(ClientInner {
                http,
                base_url,
                user_agent,
                timeout: self.timeout.unwrap_or(Some(DEFAULT_TIMEOUT)),
                retry: self.retry.unwrap_or_default(),
                tokens: TokenSource::new(client_id, secret, self.scope),
            }),
        })
    }
}
