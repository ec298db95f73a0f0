//! The SDK's error type.
//!
//! Every fallible call returns [`Error`]. Match on its variants, or use the accessors
//! ([`status`](Error::status), [`code`](Error::code), [`request_id`](Error::request_id),
//! [`retry_after`](Error::retry_after), [`is_retryable`](Error::is_retryable)) when you only need
//! one fact. `Display` is one line without the source; walk [`std::error::Error::source`] for the
//! underlying cause. No variant exposes another crate's error type, so upgrading the HTTP stack is
//! not a breaking change, and no variant carries the client secret or an access token.
//!
//! ```
//! use l2c_client::Error;
//!
//! fn explain(err: &Error) -> String {
//!     match err {
//!         Error::Api { code: Some(code), .. } if code == "illegal_transition" => {
//!             "the ERP sent a status change the platform refuses".to_owned()
//!         }
//!         Error::RateLimited { retry_after, .. } => format!("slow down for {retry_after:?}"),
//!         err if err.is_retryable() => format!("temporary: {err}"),
//!         err => format!("permanent: {err} (request id {:?})", err.request_id()),
//!     }
//! }
//! # let _ = explain;
//! ```

use std::fmt;
use std::time::Duration;

use http::StatusCode;
use l2c_core::Problem;
use l2c_core::api::oauth::OAuthError;

/// Everything that can go wrong talking to the platform.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The platform answered with an error status and (usually) an RFC 9457 problem body.
    #[error("{}", api_message(*status, code.as_deref(), detail.as_deref()))]
    Api {
        /// The HTTP status.
        status: StatusCode,
        /// The problem's stable machine-readable `code`, when the body was problem+json.
        code: Option<String>,
        /// The problem's `detail`, or an excerpt of a body that was not problem+json.
        detail: Option<String>,
        /// The platform's request id (problem `requestId`, else the `X-Request-Id` header).
        request_id: Option<String>,
        /// The server's `Retry-After`, if it sent one (e.g. with 503).
        retry_after: Option<Duration>,
        /// The whole problem body, extension members included, when it was problem+json.
        problem: Option<Box<Problem>>,
    },
    /// `429 Too Many Requests`: the client's quota or concurrency cap is exhausted.
    #[error("rate limited by the platform{}", retry_after_suffix(*retry_after))]
    RateLimited {
        /// How long the server asked us to wait (`Retry-After`).
        retry_after: Option<Duration>,
        /// The platform's request id.
        request_id: Option<String>,
        /// The problem body (quota-exceeded type, `violated-policies`), when there was one.
        problem: Option<Box<Problem>>,
    },
    /// The token endpoint refused the credentials or the request (RFC 6749 §5.2).
    #[error("token request failed with {status}: {error}")]
    Auth {
        /// The HTTP status (401 for `invalid_client`, 400 for the others).
        status: StatusCode,
        /// The OAuth error body.
        error: OAuthError,
    },
    /// The request could not be sent or the response could not be read (connect, TLS, reset).
    #[error("error sending request to the platform")]
    Transport {
        /// The underlying cause.
        #[source]
        source: TransportError,
    },
    /// The request (or the connection attempt) took longer than the configured timeout.
    #[error("request to the platform timed out")]
    Timeout {
        /// The underlying cause.
        #[source]
        source: TransportError,
    },
    /// A successful response's body did not have the expected shape.
    #[error("could not decode the platform's {status} response")]
    Decode {
        /// The HTTP status of the response.
        status: StatusCode,
        /// The platform's request id, if the response carried one.
        request_id: Option<String>,
        /// What did not parse.
        #[source]
        source: DecodeError,
    },
    /// The client or the request was configured wrongly; nothing was sent.
    #[error("invalid configuration")]
    Config {
        /// What was wrong.
        #[source]
        source: BuildError,
    },
}

fn api_message(status: StatusCode, code: Option<&str>, detail: Option<&str>) -> String {
    let mut s = format!("platform returned {status}");
    if let Some(code) = code {
        s.push_str(&format!(" ({code})"));
    }
    if let Some(detail) = detail {
        s.push_str(&format!(": {detail}"));
    }
    s
}

fn retry_after_suffix(retry_after: Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!("; retry after {}s", d.as_secs_f64()),
        None => String::new(),
    }
}

impl Error {
    /// The HTTP status of the response that caused this error, if there was a response.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::Api { status, .. }
            | Error::Auth { status, .. }
            | Error::Decode { status, .. } => Some(*status),
            Error::RateLimited { .. } => Some(StatusCode::TOO_MANY_REQUESTS),
            _ => None,
        }
    }

    /// The machine-readable error code: the problem's `code`, or the OAuth `error`.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { code, .. } => code.as_deref(),
            Error::RateLimited { problem, .. } => problem.as_ref().map(|p| p.code.as_ref()),
            Error::Auth { error, .. } => Some(error.error.as_str()),
            _ => None,
        }
    }

    /// The platform's id for the failed request; quote it to support.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Error::Api { request_id, .. }
            | Error::RateLimited { request_id, .. }
            | Error::Decode { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }

    /// How long the server asked us to wait before trying again, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::RateLimited { retry_after, .. } | Error::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The problem details body, if the platform sent one.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Error::Api { problem, .. } | Error::RateLimited { problem, .. } => problem.as_deref(),
            _ => None,
        }
    }

    /// Whether trying the same request again later may succeed: rate limiting, timeouts,
    /// transport failures, `408`, `409` with `Retry-After` (the same idempotency key still in
    /// flight) and `5xx` other than `501`.
    ///
    /// The client already retried what it safely could (see [`RetryPolicy`](crate::RetryPolicy));
    /// this tells you whether queueing the work for later makes sense.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::RateLimited { .. } | Error::Timeout { .. } | Error::Transport { .. } => true,
            Error::Api {
                status,
                retry_after,
                ..
            } => {
                (status.is_server_error() && *status != StatusCode::NOT_IMPLEMENTED)
                    || *status == StatusCode::REQUEST_TIMEOUT
                    || (*status == StatusCode::CONFLICT && retry_after.is_some())
            }
            Error::Auth { status, .. } => status.is_server_error(),
            Error::Decode { .. } | Error::Config { .. } => false,
        }
    }

    /// Whether this is a timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }

    /// Whether the platform refused the client's credentials or its access token.
    pub fn is_auth(&self) -> bool {
        matches!(self, Error::Auth { .. })
            || matches!(self, Error::Api { status, .. } if *status == StatusCode::UNAUTHORIZED)
    }

    pub(crate) fn transport(err: reqwest::Error) -> Self {
        if err.is_timeout() {
            Error::Timeout {
                source: TransportError::new(err),
            }
        } else {
            Error::Transport {
                source: TransportError::new(err),
            }
        }
    }

    pub(crate) fn config(err: BuildError) -> Self {
        Error::Config { source: err }
    }

    /// Builds the error for a non-success response from its status, headers and body.
    pub(crate) fn from_response_parts(
        status: StatusCode,
        header_request_id: Option<String>,
        retry_after: Option<Duration>,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Self {
        let media = content_type
            .and_then(|ct| ct.split(';').next())
            .map(|s| s.trim().to_ascii_lowercase());
        let problem = match media.as_deref() {
            Some("application/problem+json") | Some("application/json") | None => {
                serde_json::from_slice::<Problem>(body).ok()
            }
            _ => None,
        };
        let request_id = problem
            .as_ref()
            .and_then(|p| p.request_id.clone())
            .or(header_request_id);
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Error::RateLimited {
                retry_after,
                request_id,
                problem: problem.map(Box::new),
            };
        }
        match problem {
            Some(p) => Error::Api {
                status,
                code: Some(p.code.to_string()),
                detail: p.detail.as_ref().map(|d| d.to_string()),
                request_id,
                retry_after,
                problem: Some(Box::new(p)),
            },
            None => Error::Api {
                status,
                code: None,
                detail: plain_text_detail(body),
                request_id,
                retry_after,
                problem: None,
            },
        }
    }

    /// Builds the error for a non-success response of the token endpoint.
    pub(crate) fn from_token_response(
        status: StatusCode,
        header_request_id: Option<String>,
        retry_after: Option<Duration>,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Self {
        if let Ok(error) = serde_json::from_slice::<OAuthError>(body) {
            if status == StatusCode::TOO_MANY_REQUESTS {
                return Error::RateLimited {
                    retry_after,
                    request_id: header_request_id,
                    problem: None,
                };
            }
            return Error::Auth { status, error };
        }
        Self::from_response_parts(status, header_request_id, retry_after, content_type, body)
    }
}

/// A short, printable excerpt of a non-JSON error body (at most 200 characters).
fn plain_text_detail(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let mut excerpt: String = text.chars().take(200).collect();
    if excerpt.len() < text.len() {
        excerpt.push('…');
    }
    Some(excerpt)
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The cause of a [`Error::Transport`] or [`Error::Timeout`]: an opaque wrapper so the HTTP
/// library's error type is not part of this crate's API.
pub struct TransportError {
    inner: BoxError,
    connect: bool,
}

impl TransportError {
    fn new(err: reqwest::Error) -> Self {
        let connect = err.is_connect();
        // reqwest's error may embed the request URL; ours never carries credentials in URLs.
        Self {
            inner: Box::new(err),
            connect,
        }
    }

    /// Whether the connection could not be established (the request was never sent).
    pub fn is_connect(&self) -> bool {
        self.connect
    }
}

impl fmt::Debug for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportError")
            .field("connect", &self.connect)
            .field("cause", &self.inner.to_string())
            .finish()
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.source()
    }
}

/// The cause of an [`Error::Decode`].
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct DecodeError {
    message: String,
    #[source]
    source: Option<BoxError>,
}

impl DecodeError {
    pub(crate) fn json(err: serde_json::Error) -> Self {
        Self {
            message: format!("invalid JSON body: {err}"),
            source: Some(Box::new(err)),
        }
    }

    pub(crate) fn body(err: reqwest::Error) -> Self {
        Self {
            message: "could not read the response body".to_owned(),
            source: Some(Box::new(err)),
        }
    }
}

/// Why a [`Client`](crate::Client) or a request could not be configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// [`ClientBuilder::base_url`](crate::ClientBuilder::base_url) was not called.
    #[error("a base URL is required")]
    MissingBaseUrl,
    /// The base URL does not parse, or is not `http`/`https`.
    #[error("invalid base URL `{0}`: must be an absolute http or https URL")]
    InvalidBaseUrl(String),
    /// [`ClientBuilder::credentials`](crate::ClientBuilder::credentials) was not called, or the
    /// id or secret is empty.
    #[error("client credentials are required (non-empty client id and secret)")]
    MissingCredentials,
    /// The user agent is not a valid header value.
    #[error("invalid user agent")]
    InvalidUserAgent,
    /// A caller-supplied `X-Request-Id` is empty, longer than 255 bytes or not visible ASCII.
    #[error("invalid X-Request-Id: 1-255 visible ASCII characters required")]
    InvalidRequestId,
    /// A path parameter could not be put in a URL.
    #[error("invalid path parameter")]
    InvalidPath,
    /// The request body could not be serialized.
    #[error("request body could not be serialized: {0}")]
    Body(String),
    /// The HTTP client could not be built (e.g. the TLS backend failed to initialise).
    #[error("the HTTP client could not be built: {0}")]
    HttpClient(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_json_becomes_api_error() {
        let body = br#"{"type":"/problems/illegal-transition","title":"Conflict","status":409,
            "detail":"COMPLETED -> DEPOSIT_PAID is not allowed","code":"illegal_transition",
            "requestId":"req-9"}"#;
        let err = Error::from_response_parts(
            StatusCode::CONFLICT,
            Some("header-id".into()),
            None,
            Some("application/problem+json"),
            body,
        );
        assert_eq!(err.status(), Some(StatusCode::CONFLICT));
        assert_eq!(err.code(), Some("illegal_transition"));
        assert_eq!(err.request_id(), Some("req-9"));
        assert!(!err.is_retryable());
        assert_eq!(
            err.to_string(),
            "platform returned 409 Conflict (illegal_transition): COMPLETED -> DEPOSIT_PAID is not allowed"
        );
    }

    #[test]
    fn non_json_body_keeps_an_excerpt_and_header_request_id() {
        let err = Error::from_response_parts(
            StatusCode::BAD_GATEWAY,
            Some("h-1".into()),
            None,
            Some("text/html"),
            b"<html>bad gateway</html>",
        );
        assert_eq!(err.code(), None);
        assert_eq!(err.request_id(), Some("h-1"));
        assert!(err.is_retryable());
        assert!(err.to_string().contains("bad gateway"));
    }

    #[test]
    fn too_many_requests_is_rate_limited() {
        let err = Error::from_response_parts(
            StatusCode::TOO_MANY_REQUESTS,
            None,
            Some(Duration::from_secs(2)),
            Some("application/problem+json"),
            br#"{"type":"x","title":"Too Many Requests","status":429,"code":"rate_limited"}"#,
        );
        assert!(matches!(err, Error::RateLimited { .. }));
        assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));
        assert_eq!(err.code(), Some("rate_limited"));
        assert!(err.is_retryable());
    }

    #[test]
    fn oauth_shape_becomes_auth_error() {
        let err = Error::from_token_response(
            StatusCode::UNAUTHORIZED,
            None,
            None,
            Some("application/json"),
            br#"{"error":"invalid_client","error_description":"client authentication failed"}"#,
        );
        assert!(err.is_auth());
        assert_eq!(err.code(), Some("invalid_client"));
        assert_eq!(
            err.to_string(),
            "token request failed with 401 Unauthorized: invalid_client: client authentication failed"
        );
    }

    #[test]
    fn error_is_send_sync_and_static() {
        fn assert_bounds<T: Send + Sync + 'static + std::error::Error>() {}
        assert_bounds::<Error>();
    }
}
