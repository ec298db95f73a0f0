//! The L2C open platform reference server.
//!
//! An axum application assembling the `l2c-core` layers: the OAuth2 client-credentials token
//! endpoint, the `/api/mobile` API behind JWT bearer auth, health and metrics endpoints, and a
//! SQLite or PostgreSQL store. `cargo run -p l2c-server` starts it with no setup; see
//! [`config`] for every flag and `L2C_*` variable.
//!
//! [`app`] builds the router from an [`AppState`]; [`Server`] binds and serves it with graceful
//! shutdown; [`serve`] does everything `l2c-server serve` does.
//!
//! ```no_run
//! use l2c_server::{AppState, Server, config::Config, store::Db};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::default();
//! let db = Db::connect(&config.database_url).await?;
//! let server = Server::bind(AppState::new(config, db).await?).await?;
//! println!("listening on {}", server.base_url());
//! server.run().await?; // until SIGINT/SIGTERM
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod cli;
pub mod config;
pub mod deprecate;
pub mod dispatch;
pub mod domain;
pub mod error;
pub mod extract;
pub mod observe;
pub mod routes;
pub mod server;
pub mod ssrf;
pub mod state;
pub mod store;
pub mod tls;
pub mod tokens;

#[doc(hidden)]
pub mod testing;

use std::sync::Arc;

use axum::Router;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post};
use l2c_core::RequestIdLayer;
use l2c_core::auth::JwtAuthLayer;
use tower_http::catch_panic::CatchPanicLayer;

pub use server::{Server, StartError, serve};
pub use state::AppState;

/// The whole HTTP application.
///
/// Layers, outermost first: request id (echoed as `X-Request-Id` on every response), one log line
/// and one metrics sample per request, `requestId` in problem bodies, panic → 500 problem.
/// `/api/mobile` additionally sits behind [`JwtAuthLayer`].
pub fn app(state: AppState) -> Router {
    let verifier = Arc::clone(state.tokens.verifier());
    let deprecations: Arc<[deprecate::DeprecateRule]> = state.config.deprecations.clone().into();
    let mobile = routes::mobile_routes()
        .method_not_allowed_fallback(routes::method_not_allowed)
        .fallback(routes::not_found)
        .layer(from_fn(observe::expose_client))
        .layer(JwtAuthLayer::new(verifier));

    Router::new()
        .route(
            "/api/oauth/token",
            post(routes::oauth::token).fallback(routes::oauth::method_not_allowed),
        )
        .route("/.well-known/jwks.json", get(routes::well_known::jwks))
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .route("/metrics", get(routes::health::metrics))
        .merge(routes::openapi::routes())
        .method_not_allowed_fallback(routes::method_not_allowed)
        .nest("/api/mobile", mobile.clone())
        // The same routes under a version prefix, so a v2 can later sit beside them.
        .nest("/api/v1", mobile)
        .fallback(routes::not_found)
        .layer(from_fn_with_state(deprecations, deprecate::apply))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(from_fn(error::problem_request_id))
        .layer(from_fn_with_state(
            Arc::clone(&state.metrics),
            observe::observe,
        ))
        .layer(RequestIdLayer::new())
        .with_state(state)
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    tracing::error!("a handler panicked");
    error::problem_response(l2c_core::Problem::internal())
}
