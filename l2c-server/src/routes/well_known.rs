//! `GET /.well-known/jwks.json`: the public keys tokens can be verified with (RFC 7517).
//!
//! HS256 keys are secret and never listed; with the default HS256 configuration the set is empty.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::header;

use crate::state::AppState;

/// The JWK Set of the verifier's public keys.
pub async fn jwks(State(state): State<AppState>) -> Response {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(state.tokens.verifier().jwks()),
    )
        .into_response()
}
