//! Reading an error response into an [`Error`] and the retry [`Outcome`].

use std::time::SystemTime;

use http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};

use crate::error::Error;
use crate::retry::{self, Outcome};

use super::*;

/// The most bytes of an error body that are read (problem details are far smaller).
pub(super) const MAX_ERROR_BODY: usize = 64 * 1024;

/// Reads at most `cap` bytes of the body. An unreadable error body still yields the status; the
/// body only adds detail, so read failures give what was read so far.
pub(super) async fn read_capped(mut response: reqwest::Response, cap: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = cap - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= cap {
            break;
        }
    }
    body
}

/// A 401 is worth one token refresh unless its challenge names an error other than
/// `invalid_token` (RFC 6750 §3).
pub(super) fn is_stale_token_challenge(headers: &http::HeaderMap) -> bool {
    let mut challenges = headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    let Some(first) = challenges.next() else {
        return true;
    };
    std::iter::once(first)
        .chain(challenges)
        .any(|c| c.contains("invalid_token") || !c.contains("error="))
}

pub(super) async fn error_from_response(
    response: reqwest::Response,
    kind: ResponseKind,
) -> (Error, Outcome) {
    let status = response.status();
    // Only three values are needed: read them (owned) instead of copying the whole header map.
    let headers = response.headers();
    let retry_after = headers
        .get(RETRY_AFTER)
        .and_then(|v| retry::parse_retry_after(v, SystemTime::now()));
    let request_id = header_string(headers, REQUEST_ID_HEADER);
    let content_type = header_string(headers, CONTENT_TYPE.as_str());
    let body = read_capped(response, MAX_ERROR_BODY).await;
    let error = match kind {
        ResponseKind::Api => Error::from_response_parts(
            status,
            request_id,
            retry_after,
            content_type.as_deref(),
            &body,
        ),
        ResponseKind::Token => Error::from_token_response(
            status,
            request_id,
            retry_after,
            content_type.as_deref(),
            &body,
        ),
    };
    (
        error,
        Outcome::Status {
            status,
            retry_after,
        },
    )
}
