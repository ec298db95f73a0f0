//! RFC 9457 problem details: the one error body every layer and the server use.
//!
//! A [`Problem`] carries the HTTP status, a stable machine-readable `code`, a human `title` and
//! `detail`, and the `requestId` a support engineer asks for. Extension members (such as the
//! rate limiter's `violated-policies`) sit at the top level, as RFC 9457 §3.2 lays out.
//!
//! ```
//! use http::StatusCode;
//! use l2c_core::Problem;
//!
//! let problem = Problem::new(StatusCode::BAD_REQUEST, "invalid_field", "Invalid field")
//!     .with_detail("`pageSize` must be between 1 and 100")
//!     .with_request_id("req-1");
//! let response: http::Response<Vec<u8>> = problem.into_response();
//! assert_eq!(response.status(), 400);
//! assert_eq!(response.headers()["content-type"], "application/problem+json");
//! let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
//! assert_eq!(body["code"], "invalid_field");
//! assert_eq!(body["status"], 400);
//! assert_eq!(body["requestId"], "req-1");
//! ```

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::request_id::RequestId;

/// The media type of a problem details body.
pub const CONTENT_TYPE: &str = "application/problem+json";

/// The problem type of quota and concurrency rejections (draft-ietf-httpapi-ratelimit-headers §5).
pub const QUOTA_EXCEEDED_TYPE: &str =
    "https://iana.org/assignments/http-problem-types#quota-exceeded";

/// A problem details object (RFC 9457).
///
/// Extension members seen on the wire: `field` (the request field or query parameter at fault,
/// e.g. `payments[0].amount`), `from` / `to` (a refused status transition), `violated-policies`
/// (a 429), `error` (the RFC 6750 error code of a 401/403).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// A URI reference naming the problem type; `/problems/<code>` unless set otherwise.
    #[serde(rename = "type")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "/problems/invalid-field"))]
    pub type_uri: Cow<'static, str>,
    /// A short summary of the problem type; the same for every occurrence.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "Unprocessable Content"))]
    pub title: Cow<'static, str>,
    /// The HTTP status code, equal to the response's.
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 400, maximum = 599, example = 422)
    )]
    pub status: u16,
    /// What went wrong this time, in words that help the caller fix it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "`mobile` must be a mainland mobile number"))]
    pub detail: Option<Cow<'static, str>>,
    /// A stable, machine-readable error code (`snake_case`).
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "invalid_field"))]
    pub code: Cow<'static, str>,
    /// The id of the request, for support.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Extension members, serialized at the top level.
    #[serde(flatten)]
    pub extensions: Map<String, Value>,
}

impl Problem {
    /// A problem with the given status, stable `code` and `title`; its type is `/problems/<code>`.
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        title: impl Into<Cow<'static, str>>,
    ) -> Self {
        let code = code.into();
        Self {
            type_uri: Cow::Owned(format!("/problems/{}", code.replace('_', "-"))),
            title: title.into(),
            status: status.as_u16(),
            detail: None,
            code,
            request_id: None,
            extensions: Map::new(),
        }
    }

    /// 400 with code `invalid_request` (or the given one) and a detail naming what was wrong.
    pub fn bad_request(
        code: impl Into<Cow<'static, str>>,
        detail: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, "Bad Request").with_detail(detail)
    }

    /// 404 `not_found`.
    pub fn not_found(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "Not Found").with_detail(detail)
    }

    /// 500 `internal_error`; the detail never carries internals.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Internal Server Error",
        )
        .with_detail("The server failed to handle the request; it has been logged.")
    }

    /// Replaces the problem type URI.
    #[must_use]
    pub fn with_type(mut self, type_uri: impl Into<Cow<'static, str>>) -> Self {
        self.type_uri = type_uri.into();
        self
    }

    /// Sets the occurrence-specific detail.
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<Cow<'static, str>>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Sets the request id.
    #[must_use]
    pub fn with_request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    /// Copies the request id from a request's extensions (see [`RequestId`]), if one is there.
    #[must_use]
    pub fn with_request_id_from(mut self, extensions: &http::Extensions) -> Self {
        if let Some(id) = extensions.get::<RequestId>() {
            self.request_id = Some(id.as_str().to_owned());
        }
        self
    }

    /// Adds an extension member.
    #[must_use]
    pub fn with_extension(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.extensions.insert(name.into(), value.into());
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The JSON body.
    pub fn to_bytes(&self) -> Bytes {
        // Serializing a struct of strings, numbers and a JSON map cannot fail.
        serde_json::to_vec(self)
            .map(Bytes::from)
            .unwrap_or_default()
    }

    /// The problem as a response with `Content-Type: application/problem+json`.
    ///
    /// Works with any body type that can be built from [`Bytes`] (axum's `Body`,
    /// `http_body_util::Full<Bytes>`, `Vec<u8>`).
    pub fn into_response<B: From<Bytes>>(self) -> http::Response<B> {
        let status = self.status();
        let mut response = http::Response::new(B::from(self.to_bytes()));
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        response
    }
}

impl fmt::Debug for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Problem")
            .field("status", &self.status)
            .field("code", &self.code)
            .field("detail", &self.detail)
            .field("request_id", &self.request_id)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.title)?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problem {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_follow_rfc_9457_and_extensions_sit_at_top_level() {
        let p = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Too Many Requests",
        )
        .with_type(QUOTA_EXCEEDED_TYPE)
        .with_extension("violated-policies", vec!["default"]);
        let v: Value = serde_json::from_slice(&p.to_bytes()).unwrap();
        assert_eq!(v["type"], QUOTA_EXCEEDED_TYPE);
        assert_eq!(v["status"], 429);
        assert_eq!(v["violated-policies"][0], "default");
        assert!(v.get("detail").is_none());
        assert!(v.get("requestId").is_none());
    }

    #[test]
    fn default_type_is_derived_from_the_code() {
        let p = Problem::bad_request("invalid_field", "x");
        assert_eq!(p.type_uri, "/problems/invalid-field");
    }

    #[test]
    fn round_trips_through_json() {
        let p = Problem::not_found("no such order").with_request_id("r1");
        let back: Problem = serde_json::from_slice(&p.to_bytes()).unwrap();
        assert_eq!(back, p);
    }
}
