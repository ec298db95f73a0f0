//! Refusals in the form gRPC clients understand.
//!
//! The layers of this crate refuse a request with an RFC 9457 problem: an HTTP status (401, 403,
//! 409, 429 …), `Content-Type: application/problem+json` and headers such as `Retry-After`. A gRPC
//! client reads none of that: it expects HTTP 200 with the outcome in `grpc-status` and
//! `grpc-message`. [`GrpcRefusalLayer`], placed outside the other layers, turns every problem
//! response to a gRPC request (`Content-Type: application/grpc…`) into a *Trailers-Only* gRPC
//! response: HTTP 200, `content-type: application/grpc`, `grpc-status` from [`code_for`], a
//! `grpc-message` that names the HTTP reason and the retry delay, and the original `retry-after`
//! and `www-authenticate` headers kept. Requests that are not gRPC, and answers that are not
//! problems (the gRPC service's own), pass through untouched, so one stack serves REST and gRPC.
//!
//! ```
//! use http::{Request, Response, StatusCode};
//! use l2c_core::grpc::GrpcRefusalLayer;
//! use tower_layer::Layer;
//! use tower_service::Service;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! // An inner stack that refuses everything with a 429 problem.
//! let refuse = tower::service_fn(|_req: Request<Vec<u8>>| async {
//!     let mut res = l2c_core::Problem::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "Too Many Requests")
//!         .into_response::<Vec<u8>>();
//!     res.headers_mut().insert("retry-after", "3".parse().unwrap());
//!     Ok::<_, std::convert::Infallible>(res)
//! });
//! let mut svc = GrpcRefusalLayer::new().layer(refuse);
//! let req = Request::builder()
//!     .header("content-type", "application/grpc")
//!     .body(Vec::new())
//!     .unwrap();
//! let res = svc.call(req).await.unwrap();
//! assert_eq!(res.status(), StatusCode::OK);
//! assert_eq!(res.headers()["grpc-status"], "8"); // RESOURCE_EXHAUSTED
//! assert_eq!(res.headers()["retry-after"], "3");
//! # });
//! ```

mod future;
mod layer;
mod service;
#[cfg(test)]
mod tests;

pub use future::ResponseFuture;
pub use layer::GrpcRefusalLayer;
pub use service::GrpcRefusal;

use http::{HeaderMap, StatusCode, header};

/// gRPC status codes (`grpc-status`) the refusals map to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GrpcCode {
    /// 3: the request is malformed (400, 413, 415, 422).
    InvalidArgument = 3,
    /// 5: 404, 410.
    NotFound = 5,
    /// 6: a request with the same idempotency key (409).
    AlreadyExists = 6,
    /// 7: the token lacks the scope (403).
    PermissionDenied = 7,
    /// 8: over the quota or the concurrency cap (429).
    ResourceExhausted = 8,
    /// 13: a server failure (500 and other 5xx).
    Internal = 13,
    /// 14: try again later (503).
    Unavailable = 14,
    /// 16: no valid token (401).
    Unauthenticated = 16,
    /// 2: any other status.
    Unknown = 2,
}

impl GrpcCode {
    /// The decimal value sent in `grpc-status`.
    pub const fn as_str(self) -> &'static str {
        match self {
            GrpcCode::InvalidArgument => "3",
            GrpcCode::NotFound => "5",
            GrpcCode::AlreadyExists => "6",
            GrpcCode::PermissionDenied => "7",
            GrpcCode::ResourceExhausted => "8",
            GrpcCode::Internal => "13",
            GrpcCode::Unavailable => "14",
            GrpcCode::Unauthenticated => "16",
            GrpcCode::Unknown => "2",
        }
    }
}

/// The gRPC status of a refusal with this HTTP status.
pub fn code_for(status: StatusCode) -> GrpcCode {
    match status.as_u16() {
        400 | 413 | 415 | 422 => GrpcCode::InvalidArgument,
        401 => GrpcCode::Unauthenticated,
        403 => GrpcCode::PermissionDenied,
        404 | 410 => GrpcCode::NotFound,
        409 => GrpcCode::AlreadyExists,
        429 => GrpcCode::ResourceExhausted,
        503 => GrpcCode::Unavailable,
        500..=599 => GrpcCode::Internal,
        _ => GrpcCode::Unknown,
    }
}

/// Whether the request is gRPC: `Content-Type: application/grpc` or `application/grpc+…`.
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            let ct = ct.trim_start();
            ct.get(..16)
                .is_some_and(|p| p.eq_ignore_ascii_case("application/grpc"))
                && matches!(ct.as_bytes().get(16), None | Some(b'+' | b';'))
        })
}

/// `grpc-message` is percent-encoded: every byte outside printable ASCII, and `%`.
fn percent_encode(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for b in message.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
