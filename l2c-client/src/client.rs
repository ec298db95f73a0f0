//! [`Client`] and its [`ClientBuilder`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, USER_AGENT};
use http::{HeaderValue, Method, StatusCode};
use reqwest::Url;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use crate::auth::TokenSource;
use crate::error::{BuildError, DecodeError, Error};
use crate::retry::{self, Attempt, Decision, Outcome, RetryPolicy};

mod builder;
mod failure;

pub use self::builder::ClientBuilder;
use self::failure::*;

/// The header that carries the idempotency key (spec §6).
pub const REQUEST_ID_HEADER: &str = "x-request-id";

const DEFAULT_USER_AGENT: &str = concat!("l2c-client/", env!("CARGO_PKG_VERSION"));
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A client of the L2C open platform.
///
/// Cheap to clone (an `Arc` inside); clones share the connection pool and the cached access
/// token. Build one per set of credentials with [`Client::builder`] and keep it.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = l2c_client::Client::builder()
///     .base_url("http://127.0.0.1:8080")
///     .credentials("my-client-id", "my-client-secret")
///     .build()?;
/// let status = client.orders().status("ord_123").send().await?;
/// println!("{status:?}");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<ClientInner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base_url.as_str())
            .field("client_id", &self.inner.tokens.client_id())
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Starts configuring a client.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The base URL requests are sent to.
    pub fn base_url(&self) -> &Url {
        &self.inner.base_url
    }

    /// The application's client id.
    pub fn client_id(&self) -> &str {
        self.inner.tokens.client_id()
    }

    /// Makes sure a valid access token is cached, fetching one if needed.
    ///
    /// Calls fetch tokens on their own; use this to check credentials at start-up.
    ///
    /// # Errors
    ///
    /// [`Error::Auth`] when the platform refuses the credentials; transport errors as usual.
    pub async fn authenticate(&self) -> Result<(), Error> {
        self.inner.tokens.token(&self.inner).await.map(|_| ())
    }

    pub(crate) async fn execute(&self, spec: RequestSpec) -> Result<reqwest::Response, Error> {
        self.inner.execute(spec).await
    }

    pub(crate) async fn execute_json<T: DeserializeOwned>(
        &self,
        spec: RequestSpec,
    ) -> Result<T, Error> {
        let response = self.execute(spec).await?;
        decode_json(response).await
    }
}

pub(crate) async fn decode_json<T: DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, Error> {
    let status = response.status();
    let request_id = header_string(response.headers(), REQUEST_ID_HEADER);
    let bytes = response.bytes().await.map_err(|e| Error::Decode {
        status,
        request_id: request_id.clone(),
        source: DecodeError::body(e),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Decode {
        status,
        request_id,
        source: DecodeError::json(e),
    })
}

fn header_string(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// How a response's errors are read and whether the call needs a bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResponseKind {
    /// An API call: bearer token, problem+json errors.
    Api,
    /// The token endpoint: no bearer token, RFC 6749 errors, always replay-safe.
    Token,
}

/// One logical call, re-sendable on retry.
#[derive(Debug, Clone)]
pub(crate) struct RequestSpec {
    method: Method,
    segments: Vec<String>,
    query: Option<String>,
    body: Option<Bytes>,
    request_id: Option<String>,
    accept: &'static str,
    kind: ResponseKind,
    streaming: bool,
}

impl RequestSpec {
    pub(crate) fn new<'a>(method: Method, segments: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            method,
            segments: segments.into_iter().map(str::to_owned).collect(),
            query: None,
            body: None,
            request_id: None,
            accept: "application/json",
            kind: ResponseKind::Api,
            streaming: false,
        }
    }

    /// Serializes `query` (a struct of optional fields) as the URL's query string.
    pub(crate) fn query<T: Serialize + ?Sized>(mut self, query: &T) -> Result<Self, Error> {
        let encoded = serde_urlencoded::to_string(query)
            .map_err(|e| Error::config(BuildError::Body(e.to_string())))?;
        self.query = (!encoded.is_empty()).then_some(encoded);
        Ok(self)
    }

    pub(crate) fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Result<Self, Error> {
        let bytes =
            serde_json::to_vec(body).map_err(|e| Error::config(BuildError::Body(e.to_string())))?;
        self.body = Some(Bytes::from(bytes));
        Ok(self)
    }

    pub(crate) fn request_id(mut self, id: Option<String>) -> Self {
        self.request_id = id;
        self
    }

    pub(crate) fn accept(mut self, accept: &'static str) -> Self {
        self.accept = accept;
        self
    }

    pub(crate) fn kind(mut self, kind: ResponseKind) -> Self {
        self.kind = kind;
        self
    }

    pub(crate) fn streaming(mut self) -> Self {
        self.streaming = true;
        self
    }
}

/// Checks a caller-supplied `X-Request-Id` by the server's own rule (1–255 visible ASCII).
pub(crate) fn validate_request_id(id: &str) -> Result<(), BuildError> {
    if l2c_core::RequestId::is_valid(id.as_bytes()) {
        Ok(())
    } else {
        Err(BuildError::InvalidRequestId)
    }
}

pub(crate) struct ClientInner {
    http: reqwest::Client,
    pub(crate) base_url: Url,
    user_agent: HeaderValue,
    timeout: Option<Duration>,
    pub(crate) retry: RetryPolicy,
    pub(crate) tokens: TokenSource,
}

impl ClientInner {
    fn url(&self, spec: &RequestSpec) -> Result<Url, Error> {
        let mut url = self.base_url.clone();
        {
            let mut segments = url
                .path_segments_mut()
                .map_err(|()| Error::config(BuildError::InvalidPath))?;
            segments.pop_if_empty();
            segments.extend(spec.segments.iter());
        }
        if let Some(query) = &spec.query {
            url.set_query(Some(query));
        }
        Ok(url)
    }

    /// Sends `spec`, refreshing the token once on `401 invalid_token` and retrying per the policy.
    pub(crate) async fn execute(&self, spec: RequestSpec) -> Result<reqwest::Response, Error> {
        let url = self.url(&spec)?;
        let key = match &spec.request_id {
            Some(id) => {
                validate_request_id(id).map_err(Error::config)?;
                Some(id.clone())
            }
            None if spec.kind == ResponseKind::Api
                && matches!(spec.method, Method::POST | Method::PUT | Method::PATCH) =>
            {
                Some(uuid::Uuid::new_v4().to_string())
            }
            None => None,
        };
        let key_header = key
            .as_deref()
            .map(HeaderValue::from_str)
            .transpose()
            .map_err(|_| Error::config(BuildError::InvalidRequestId))?;
        let replay_safe = spec.kind == ResponseKind::Token
            || key.is_some()
            || retry::is_idempotent_method(&spec.method);

        let start = Instant::now();
        let mut number = 0u32;
        let mut refreshed = false;
        loop {
            number += 1;
            let token = match spec.kind {
                ResponseKind::Api => Some(self.tokens.token(self).await?),
                ResponseKind::Token => None,
            };
            let mut request = self
                .http
                .request(spec.method.clone(), url.clone())
                .header(USER_AGENT, self.user_agent.clone())
                .header(ACCEPT, spec.accept);
            if let Some(token) = &token {
                request = request.bearer_auth(token.bearer());
            }
            if let Some(key) = &key_header {
                request = request.header(REQUEST_ID_HEADER, key.clone());
            }
            if let Some(body) = &spec.body {
                request = request
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.clone());
            }
            if let (Some(timeout), false) = (self.timeout, spec.streaming) {
                request = request.timeout(timeout);
            }

            let (error, outcome) = match request.send().await {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response)
                    if response.status() == StatusCode::UNAUTHORIZED
                        && !refreshed
                        && is_stale_token_challenge(response.headers()) =>
                {
                    if let Some(token) = &token {
                        refreshed = true;
                        self.tokens.invalidate(token);
                        tracing::debug!("access token refused; refreshing it and retrying once");
                        number -= 1;
                        continue;
                    }
                    error_from_response(response, spec.kind).await
                }
                Ok(response) => error_from_response(response, spec.kind).await,
                Err(err) => {
                    let outcome = if err.is_connect() {
                        Outcome::ConnectFailed
                    } else if err.is_timeout() {
                        Outcome::TimedOut
                    } else {
                        Outcome::SendFailed
                    };
                    (Error::transport(err), outcome)
                }
            };
            let attempt = Attempt {
                number,
                elapsed: start.elapsed(),
                replay_safe,
            };
            match retry::decide(&self.retry, &attempt, &outcome, rand::random::<f64>()) {
                Decision::Retry { after } => {
                    tracing::debug!(
                        method = %spec.method,
                        path = url.path(),
                        attempt = number,
                        ?outcome,
                        delay_ms = after.as_millis() as u64,
                        "retrying"
                    );
                    tokio::time::sleep(after).await;
                }
                Decision::Stop => return Err(error),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::WWW_AUTHENTICATE;

    #[test]
    fn builder_requires_base_url_and_credentials() {
        assert_eq!(
            Client::builder().credentials("a", "b").build().unwrap_err(),
            BuildError::MissingBaseUrl
        );
        assert_eq!(
            Client::builder()
                .base_url("http://localhost")
                .build()
                .unwrap_err(),
            BuildError::MissingCredentials
        );
        assert_eq!(
            Client::builder()
                .base_url("http://localhost")
                .credentials("a", "")
                .build()
                .unwrap_err(),
            BuildError::MissingCredentials
        );
        for bad in ["not a url", "ftp://host", "mailto:x@y"] {
            assert!(matches!(
                Client::builder()
                    .base_url(bad)
                    .credentials("a", "b")
                    .build()
                    .unwrap_err(),
                BuildError::InvalidBaseUrl(_)
            ));
        }
        assert_eq!(
            Client::builder()
                .base_url("http://localhost")
                .credentials("a", "b")
                .user_agent("bad\nagent")
                .build()
                .unwrap_err(),
            BuildError::InvalidUserAgent
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        let builder = Client::builder()
            .base_url("http://localhost:8080")
            .credentials("app-7", "very-secret-value");
        assert!(!format!("{builder:?}").contains("very-secret-value"));
        let client = builder.build().unwrap();
        let debug = format!("{client:?}");
        assert!(debug.contains("app-7"));
        assert!(!debug.contains("very-secret-value"));
    }

    #[test]
    fn client_is_send_sync_clone() {
        fn assert_bounds<T: Send + Sync + Clone + 'static>() {}
        assert_bounds::<Client>();
    }

    #[test]
    fn urls_keep_the_base_path_and_encode_segments() {
        let client = Client::builder()
            .base_url("https://example.com/gateway/")
            .credentials("a", "b")
            .build()
            .unwrap();
        let spec = RequestSpec::new(Method::GET, ["api", "mobile", "customers", "a/b c"])
            .query(&[("page", 2)])
            .unwrap();
        assert_eq!(
            client.inner.url(&spec).unwrap().as_str(),
            "https://example.com/gateway/api/mobile/customers/a%2Fb%20c?page=2"
        );
    }

    #[test]
    fn request_ids_are_validated() {
        assert!(validate_request_id("order-42").is_ok());
        assert!(validate_request_id("").is_err());
        assert!(validate_request_id("has space").is_err());
        assert!(validate_request_id(&"x".repeat(256)).is_err());
    }

    #[tokio::test]
    async fn error_bodies_are_read_up_to_the_cap() {
        let big = reqwest::Response::from(http::Response::new(vec![b'x'; 100_000]));
        assert_eq!(read_capped(big, MAX_ERROR_BODY).await.len(), MAX_ERROR_BODY);
        let small = reqwest::Response::from(http::Response::new(b"tiny".to_vec()));
        assert_eq!(read_capped(small, MAX_ERROR_BODY).await, b"tiny");
    }

    #[test]
    fn stale_token_challenges() {
        let mut h = http::HeaderMap::new();
        assert!(is_stale_token_challenge(&h));
        h.insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Bearer error="invalid_token""#),
        );
        assert!(is_stale_token_challenge(&h));
        h.insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Bearer error="invalid_request""#),
        );
        assert!(!is_stale_token_challenge(&h));
    }
}
