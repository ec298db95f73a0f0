//! The developer console (设置中心 → 开发者选项) at `/console/`: apps and their credentials,
//! webhooks and their deliveries, lead sources and the audit log, in 简体中文, server-rendered
//! with [maud] (HTML written as a Rust macro: checked at compile time, escaped by default, no
//! template files to ship or load) and one small vendored script (the copy button).
//!
//! | page | who |
//! |---|---|
//! | `GET/POST /console/login`, `POST /console/logout` | everyone |
//! | `/console/apps` (应用): list, create | operators create; a developer sees only its app |
//! | `/console/apps/{id}`: scopes, quota, roll the secret, disable, grants | operators; a developer rolls its own secret |
//! | `/console/apps/{id}/webhooks[/{wh}]` (开发者选项 → Webhook) | the app's people |
//! | `/console/apps/{id}/lead-sources` (线索来源) | the app's people |
//! | `/console/apps/{id}/logs` (请求日志: the app's API requests, hourly chart) | the app's people |
//! | `/console/logs` (请求日志 of every app, unattributed requests included) | operators |
//! | `/console/audit` (审计日志) | operators |
//!
//! Every action calls the same function as the command line ([`crate::admin`]) and writes the
//! audit log.
//!
//! # Security
//!
//! - Accounts: `l2c-server admin create`; argon2id passwords; the same answer (and about the same
//!   time: a dummy hash is checked) for an unknown user and a wrong password; failed logins
//!   lock the account name and the client address for a while ([`session::LOCKOUT_ACCOUNT`],
//!   [`session::LOCKOUT_ADDRESS`]), counted in the database so every replica agrees.
//! - Sessions: a random token in an `HttpOnly; SameSite=Strict; Path=/console` cookie (`Secure`
//!   under TLS or `--trust-proxy-tls`), its SHA-256 in the database; idle and absolute expiry
//!   ([`session::IDLE_TIMEOUT`], [`session::ABSOLUTE_TIMEOUT`]); ended by logout, by disabling
//!   the account and by a password reset.
//! - CSRF: every form carries the session's token in a hidden field, compared in constant time
//!   before any state-changing request runs (403 otherwise); the login form uses a
//!   double-submit cookie.
//! - Every console answer: a strict `Content-Security-Policy` (no inline script or style),
//!   `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer`, `Cache-Control: no-store`,
//!   `X-Content-Type-Options: nosniff`.

mod apps;
mod audit;
mod deliveries;
mod layout;
mod logs;
pub mod session;
mod webhook_secret;
mod webhooks;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use http::{HeaderValue, header};

use crate::state::AppState;

/// The console's `Content-Security-Policy`.
pub const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; \
                       form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const CSS: &str = include_str!("static/console.css");
const JS: &str = include_str!("static/console.js");

/// The console's routes (merged into [`crate::app`]).
pub fn routes(state: &AppState) -> Router<AppState> {
    let signed_in = Router::new()
        .route("/console/apps", get(apps::list).post(apps::create))
        .route("/console/apps/{id}", get(apps::show))
        .route("/console/apps/{id}/update", post(apps::update))
        .route("/console/apps/{id}/roll-secret", post(apps::roll_secret))
        .route("/console/apps/{id}/disable", post(apps::disable))
        .route("/console/apps/{id}/enable", post(apps::enable))
        .route("/console/apps/{id}/grant", post(apps::grant))
        .route(
            "/console/apps/{id}/webhooks",
            get(webhooks::list).post(webhooks::create),
        )
        .route("/console/apps/{id}/webhooks/{wh}", get(webhooks::show))
        .route(
            "/console/apps/{id}/webhooks/{wh}/update",
            post(webhooks::update),
        )
        .route(
            "/console/apps/{id}/webhooks/{wh}/disable",
            post(webhooks::disable),
        )
        .route(
            "/console/apps/{id}/webhooks/{wh}/enable",
            post(webhooks::enable),
        )
        .route(
            "/console/apps/{id}/webhooks/{wh}/rotate",
            post(webhook_secret::rotate),
        )
        .route(
            "/console/apps/{id}/webhooks/{wh}/promote",
            post(webhook_secret::promote),
        )
        .route(
            "/console/apps/{id}/webhooks/{wh}/delete",
            post(webhooks::delete),
        )
        .route(
            "/console/apps/{id}/webhooks/{wh}/test",
            post(deliveries::send_test),
        )
        .route(
            "/console/apps/{id}/webhooks/{wh}/recover",
            post(deliveries::recover),
        )
        .route(
            "/console/apps/{id}/webhooks/{wh}/deliveries/{dlv}/resend",
            post(webhooks::resend),
        )
        .route(
            "/console/apps/{id}/lead-sources",
            get(audit::lead_sources).post(audit::create_lead_source),
        )
        .route(
            "/console/apps/{id}/lead-sources/{ls}/rotate",
            post(audit::rotate_lead_source),
        )
        .route(
            "/console/apps/{id}/lead-sources/{ls}/delete",
            post(audit::delete_lead_source),
        )
        .route("/console/apps/{id}/logs", get(logs::app_logs))
        .route("/console/logs", get(logs::all_logs))
        .route("/console/audit", get(audit::audit_log))
        .route("/console/logout", post(session::logout))
        .route_layer(from_fn_with_state(state.clone(), session::require_session));

    Router::new()
        .route("/console", get(|| async { Redirect::to("/console/apps") }))
        .route("/console/", get(|| async { Redirect::to("/console/apps") }))
        .route(
            "/console/login",
            get(session::login_page).post(session::login),
        )
        .route("/console/static/console.css", get(css))
        .route("/console/static/console.js", get(js))
        .merge(signed_in)
        .route_layer(from_fn(security_headers))
}

async fn css() -> Response {
    static_file("text/css; charset=utf-8", CSS)
}

async fn js() -> Response {
    static_file("text/javascript; charset=utf-8", JS)
}

fn static_file(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// Adds the console's security headers to every answer.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}
