//! HTTP routes, one module per resource.
//!
//! [`app`](crate::app) assembles them:
//!
//! | route | module | auth |
//! |---|---|---|
//! | `POST /api/oauth/token` | [`oauth`] | client credentials |
//! | `GET /.well-known/jwks.json` | [`well_known`] | none |
//! | `GET /healthz`, `GET /readyz`, `GET /metrics` | [`health`] | none |
//! | `/api/mobile/…` | [`mobile_routes`] | Bearer token (`JwtAuthLayer`) |
//! | `POST /api/hooks/leads/{token}` | [`hooks`] | the lead source's token in the path, the channel's signature |
//!
//! Handlers are HTTP only: they extract the request ([`crate::extract`]), call one use case
//! ([`crate::usecases`]) for a change or the store ([`crate::store`]) for a read, and turn the
//! answer or the use case's error enum into a response. Nothing below imports this module.

pub mod customers;
pub mod health;
pub mod hooks;
pub mod lead_reads;
pub mod lead_sources;
pub mod leads;
pub mod oauth;
pub mod openapi;
pub mod orders;
pub mod reports;
pub mod showroom;
pub mod webhooks;
pub mod well_known;

use axum::Router;
use axum::extract::Request;
use axum::response::Response;
use l2c_core::Problem;

use crate::error::problem_response;
use crate::state::AppState;

/// The routes under `/api/mobile` (paths relative to it, e.g. `/leads/hook`).
///
/// Everything returned here sits behind the JWT layer: handlers find the caller as an
/// `AuthenticatedClient` in the request extensions (`axum::Extension<AuthenticatedClient>`).
/// Each resource module exposes `pub fn routes() -> Router<AppState>` and is merged here with one
/// line; scope checks go on the module's own routes (`RequireScopeLayer`).
pub fn mobile_routes() -> Router<AppState> {
    Router::new()
        .merge(leads::routes())
        .merge(lead_reads::routes())
        .merge(lead_sources::routes())
        .merge(customers::routes())
        .merge(orders::routes())
        .merge(showroom::routes())
        .merge(webhooks::routes())
        .layer(axum::extract::DefaultBodyLimit::max(
            crate::extract::MAX_BODY_BYTES,
        ))
}

/// The long-running routes under `/api/mobile`, which [`app`](crate::app) puts under the
/// per-client concurrency cap (`--export-concurrency`) in addition to the layers of
/// [`mobile_routes`]: the report export.
pub fn long_running_routes() -> Router<AppState> {
    Router::new().merge(reports::routes())
}

/// 405 problem for a known path with another method (axum still adds the `Allow` header).
pub async fn method_not_allowed() -> Response {
    problem_response(
        Problem::new(
            http::StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "Method Not Allowed",
        )
        .with_detail("this path does not accept that method; see the Allow header"),
    )
}

/// 404 problem for an unknown path under an authenticated group.
pub async fn not_found(req: Request) -> Response {
    let _ = req;
    problem_response(Problem::not_found("no route matches this path"))
}
