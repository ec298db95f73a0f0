//! The L2C open platform reference server.
//!
//! An axum application assembling the `l2c-core` layers: the OAuth2 client-credentials token
//! endpoint, the `/api/mobile` API behind JWT bearer auth, health endpoints, metrics on a
//! listener of their own ([`metrics_app`]), and a SQLite or PostgreSQL store. `cargo run -p l2c-server` starts it with no setup; see
//! [`config`] for every flag and `L2C_*` variable.
//!
//! [`app`] builds the router from an [`AppState`]; [`Server`] binds and serves it with graceful
//! shutdown; [`serve`] does everything `l2c-server serve` does.
//!
//! # Where a request goes
//!
//! One direction, each module importing only those below it (`tests/architecture.rs` holds
//! the table and fails on an upward import):
//!
//! 1. [`app`] (this file) assembles the layers: [`l2c_core`]'s auth, rate limit, idempotency
//!    and concurrency layers, with [`limits`], [`observe`] and [`connections`] around them;
//! 2. [`routes`]: HTTP only. Extract the request ([`extract`]), call one use case, turn its
//!    answer or its error into a response ([`error`]);
//! 3. [`usecases`]: one module per operation (lead intake, order sync, subscription
//!    management), each owning its transaction; the channel pushes are first turned into
//!    leads by [`channels`];
//! 4. [`domain`] (pure rules: validation, status transitions) and [`store`] (persistence only;
//!    the webhook outbox is [`store::outbox`]).
//!
//! Webhook events leave through the outbox: a use case writes them in its transaction
//! ([`store::outbox::enqueue_in`]) and wakes the [`dispatch`]er, which claims due deliveries,
//! signs and sends them, and asks [`dispatch::retry::next_step`] what to do after each attempt.
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

pub mod admin;
pub mod channels;
pub mod cli;
pub mod config;
pub mod connections;
pub mod console;
pub mod deprecate;
pub mod dispatch;
pub mod domain;
pub mod error;
pub mod extract;
pub mod inplace;
pub mod limits;
pub mod observe;
pub mod routes;
pub mod seal;
pub mod server;
pub mod ssrf;
pub mod state;
pub mod store;
pub mod tls;
pub mod tokens;
pub mod usecases;

#[doc(hidden)]
pub mod testing;

use std::sync::Arc;

use axum::Router;
use axum::middleware::from_fn;
use axum::routing::{get, post};
use inplace::InPlaceLayer;
use l2c_core::RequestIdLayer;
use l2c_core::auth::JwtAuthLayer;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;

pub use server::{Server, StartError, serve};
pub use state::AppState;

/// The whole HTTP application.
///
/// Layers, outermost first: request id (kept in the request extensions only, echoed as
/// `X-Request-Id` on every response), one log line and one metrics sample per request (and a
/// request-log record per API request, see [`observe::request_log`]),
/// `requestId` in problem bodies, the body timeout (408 when a body has not arrived within
/// `--body-timeout`, see [`connections::body_timeout`]), panic → 500 problem. Then, per group:
///
/// - `POST /api/oauth/token`: the per-peer-address rate limit (`--token-rate-limit`), whose 429
///   keeps the RFC 6749 error shape;
/// - `/api/mobile`: [`JwtAuthLayer`], which also refuses (401) the tokens of disabled clients
///   and of deleted clients (its revocation hook, [`limits::ClientGate`], refreshed every
///   `--quota-refresh-secs`; a client not seen yet is read once, its own quota installed) → the
///   per-client rate
///   limit (`--rate-limit` and the clients' own quotas; a 401 never reaches it, so it consumes
///   nothing, but a 403 for a missing scope does: scopes are checked per route, inside the
///   limiter) →
///   [`IdempotencyLayer`](l2c_core::idempotency::IdempotencyLayer) on the routes' POST/PUT/PATCH
///   (a route layer, so an unknown path is still 404 and a wrong method still 405) → handler.
///   Long-running routes (the report export) additionally hold one of
///   `--export-concurrency` slots per client while their body streams;
/// - `POST /api/hooks/leads/{token}` (the ad platforms' pushes, no bearer token): the lead
///   source lookup by token → the per-source rate limit (`--lead-source-rate-limit`) → handler
///   (see [`routes::hooks`]);
/// - `/console/`: the developer console, behind its own login (see [`console`]).
///
/// See [`limits`] for the stores (memory or Redis).
pub fn app(state: AppState) -> Router {
    app_with(state, ExtraRoutes::default())
}

/// Routes added to `/api/mobile` next to [`routes::mobile_routes`], for embedders and tests:
/// they get the same layers as the built-in routes. Paths are relative to `/api/mobile`.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct ExtraRoutes {
    routes: Router<AppState>,
    long_running: Router<AppState>,
}

impl ExtraRoutes {
    /// No extra routes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds ordinary routes (auth, rate limit, idempotency).
    pub fn routes(mut self, routes: Router<AppState>) -> Self {
        self.routes = self.routes.merge(routes);
        self
    }

    /// Adds long-running routes, which also sit under the per-client concurrency cap.
    pub fn long_running(mut self, routes: Router<AppState>) -> Self {
        self.long_running = self.long_running.merge(routes);
        self
    }
}

/// [`app`] with extra routes under `/api/mobile`.
pub fn app_with(state: AppState, extra: ExtraRoutes) -> Router {
    let verifier = Arc::clone(state.tokens.verifier());
    let deprecations: Arc<[deprecate::DeprecateRule]> = state.config.deprecations.clone().into();
    let limits = &state.limits;

    let mut long_running = routes::long_running_routes().merge(extra.long_running);
    if long_running.has_routes() {
        long_running =
            long_running.route_layer(ServiceBuilder::new().layer(limits.export_cap.clone()));
    }
    let mut handlers = routes::mobile_routes()
        .merge(extra.routes)
        .merge(long_running);
    if handlers.has_routes() {
        // Only on matched routes: a wrong method is answered 405 by the fallback, never 400
        // for a missing idempotency key. The layer itself passes GET/DELETE through.
        handlers = handlers.route_layer(limits.idempotency.clone());
    }
    // One `layer` call per stack: axum boxes every route once more per `layer`/`route_layer`
    // call, which costs a boxed service clone, a boxed future and a `Oneshot` per request and
    // level. `ServiceBuilder` lists the layers outermost first.
    let mobile = handlers
        .method_not_allowed_fallback(routes::method_not_allowed)
        .fallback(routes::not_found)
        .layer(
            ServiceBuilder::new()
                .layer(JwtAuthLayer::new(verifier).with_revocation(limits.gate(state.db.clone())))
                .layer(observe::ExposeClientLayer)
                .layer(limits.rate_limit.clone()),
        );

    let token = post(routes::oauth::token)
        .fallback(routes::oauth::method_not_allowed)
        .route_layer(
            ServiceBuilder::new()
                .layer(from_fn(routes::oauth::oauth_error_shape))
                .layer(limits.token_rate_limit.clone()),
        );

    Router::new()
        .route("/api/oauth/token", token)
        .route("/.well-known/jwks.json", get(routes::well_known::jwks))
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .merge(routes::openapi::routes())
        .merge(routes::hooks::routes(&state))
        .merge(console::routes(&state))
        .method_not_allowed_fallback(routes::method_not_allowed)
        .nest("/api/mobile", mobile.clone())
        // The same routes under a version prefix, so a v2 can later sit beside them.
        .nest("/api/v1", mobile)
        .fallback(routes::not_found)
        .layer(
            ServiceBuilder::new()
                .layer(RequestIdLayer::new())
                // In place rather than `from_fn`, which clones the route below per request.
                .layer(InPlaceLayer(observe::Observe(Arc::new(
                    observe::Observer::new(
                        Arc::clone(&state.metrics),
                        state.request_log.clone(),
                        Arc::clone(&state.clock),
                    ),
                ))))
                .layer(InPlaceLayer(error::ProblemRequestId))
                .layer(InPlaceLayer(connections::BodyTimeout(
                    state.config.connections.body_timeout,
                )))
                .layer(CatchPanicLayer::custom(panic_response))
                .layer(InPlaceLayer(deprecate::Deprecations(deprecations))),
        )
        .with_state(state)
}

/// The metrics listener's application (`--metrics-listen`): `GET /metrics` in the OpenMetrics
/// text format, 404 for anything else. The public listener does not serve it, so business
/// volume per route stays with whoever can reach this address (loopback by default).
pub fn metrics_app(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(routes::health::metrics))
        .method_not_allowed_fallback(routes::method_not_allowed)
        .fallback(routes::not_found)
        .with_state(state)
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    tracing::error!("a handler panicked");
    error::problem_response(l2c_core::Problem::internal())
}
