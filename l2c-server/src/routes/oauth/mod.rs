//! `POST /api/oauth/token`: the client-credentials token endpoint (spec §2, RFC 6749 §4.4).
//!
//! Accepts the spec's JSON body, the standard `application/x-www-form-urlencoded` body, and HTTP
//! Basic client authentication (credentials form-urlencoded before base64, RFC 6749 §2.3.1).
//! Errors keep RFC 6749 §5.2's JSON shape (`{"error": …, "error_description": …}`), not
//! problem+json, because that is what OAuth client libraries parse.
//!
//! | condition | status | `error` |
//! |---|---|---|
//! | method other than POST | 405 (`Allow: POST`) | `invalid_request` |
//! | plain HTTP from a non-loopback peer, no TLS and no `--trust-proxy-tls` | 400 | `invalid_request` |
//! | `client_id`/`client_secret` in the URL | 400 | `invalid_request` |
//! | body neither form nor JSON | 415 | `invalid_request` |
//! | malformed body, repeated parameter or JSON member, two auth methods | 400 | `invalid_request` |
//! | `grant_type` missing | 400 | `invalid_request` |
//! | `grant_type` not `client_credentials` | 400 | `unsupported_grant_type` |
//! | no credentials, unknown client, wrong secret | 401 + `WWW-Authenticate: Basic realm="l2c"` | `invalid_client` |
//! | wrong secret (or unknown client) after too many failures for the client id | 429 + `Retry-After` | `slow_down` |
//! | too many requests from the peer address (`--token-rate-limit`) | 429 + `Retry-After`, `RateLimit` | `slow_down` |
//! | client disabled | 400 | `unauthorized_client` |
//! | unknown scope, or one the client does not hold | 400 | `invalid_scope` |
//!
//! Every response carries `Cache-Control: no-store` and `Pragma: no-cache`. Empty parameters
//! count as absent, unknown ones are ignored. No refresh token is issued.

pub mod request;

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use l2c_core::api::oauth::{OAuthError, OAuthErrorCode, TokenResponse};
use l2c_core::{ClientId, Scopes};

use crate::limits::peer::canonical;
use crate::state::AppState;
use crate::store::clients::Verified;
use request::{Credentials, Rejection};

/// The realm of the `WWW-Authenticate: Basic` challenge.
pub const REALM: &str = "l2c";
/// The largest token request body accepted.
pub const MAX_BODY: usize = 16 * 1024;

/// `POST /api/oauth/token`.
#[utoipa::path(
    post,
    path = "/api/oauth/token",
    tag = "oauth",
    operation_id = "issueToken",
    request_body(
        content(
            (l2c_core::api::oauth::TokenRequest = "application/json"),
            (l2c_core::api::oauth::TokenRequest = "application/x-www-form-urlencoded"),
        ),
        description = "Client credentials in the body, or HTTP Basic (RFC 6749 §2.3.1) with only `grant_type` in the body"
    ),
    responses(
        (status = 200, description = "An access token (`Cache-Control: no-store`)", body = l2c_core::api::oauth::TokenResponse),
        (status = 400, description = "`invalid_request`, `unsupported_grant_type` or `invalid_scope` (RFC 6749 §5.2)", body = l2c_core::api::oauth::OAuthError),
        (status = 401, description = "`invalid_client`, with `WWW-Authenticate: Basic`", body = l2c_core::api::oauth::OAuthError),
        (status = 429, description = "Too many requests from this address, or too many failed attempts for this client (`slow_down`, `Retry-After`)", body = l2c_core::api::oauth::OAuthError),
    ),
    security(())
)]
pub async fn token(State(state): State<AppState>, req: Request) -> Response {
    let socket_peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let (parts, body) = req.into_parts();

    if let Err(rejection) = check_transport(&state, socket_peer, &parts.headers) {
        return oauth_error(rejection.status, &rejection.error);
    }
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return oauth_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &OAuthError::new(
                    OAuthErrorCode::InvalidRequest,
                    format!("the body must be at most {MAX_BODY} bytes"),
                ),
            );
        }
    };
    let parsed = match request::parse(&parts.headers, parts.uri.query(), &body) {
        Ok(p) => p,
        Err(Rejection { status, error }) => return oauth_error(status, &error),
    };

    match parsed.params.grant_type.as_deref() {
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                &OAuthError::new(OAuthErrorCode::InvalidRequest, "`grant_type` is required"),
            );
        }
        Some("client_credentials") => {}
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                &OAuthError::new(
                    OAuthErrorCode::UnsupportedGrantType,
                    "only `client_credentials` is supported",
                ),
            );
        }
    }

    // Unknown scope names can be refused before touching credentials.
    let requested: Option<Scopes> = match parsed.params.scope.as_deref().map(str::parse::<Scopes>) {
        None => None,
        Some(Ok(scopes)) if scopes.is_empty() => None,
        Some(Ok(scopes)) => Some(scopes),
        Some(Err(e)) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                &OAuthError::new(OAuthErrorCode::InvalidScope, e.to_string()),
            );
        }
    };

    let Some(Credentials {
        client_id,
        client_secret,
        ..
    }) = parsed.credentials
    else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            &OAuthError::new(
                OAuthErrorCode::InvalidClient,
                "client authentication is required",
            ),
        );
    };

    // The secret is verified first (in constant time, unknown clients included): client ids are
    // not secret, so a lockout that also refused the right secret would let anyone keep a
    // partner out with one bad attempt per refill. Only failures are throttled per client id;
    // request volume is bounded per address by the token rate limit in front.
    let verified = match client_secret {
        None => Ok(Verified::Invalid),
        // No client id or secret holds a control character (and PostgreSQL refuses a NUL in
        // text): such credentials are wrong like any other, never a store failure, and they
        // are counted as a failed attempt.
        Some(secret) if has_control(&client_id) || has_control(&secret) => Ok(Verified::Invalid),
        Some(secret) => state.db.clients().verify(&client_id, &secret).await,
    };
    let client = match verified {
        Ok(Verified::Valid(client)) => client,
        Ok(Verified::Invalid) => {
            if let Err(wait) = state.auth_failures.check(&client_id) {
                // `?`: the id is the caller's text, escaped so it cannot forge a log line.
                tracing::info!(client_id = ?client_id, "token request: failed authentication while locked out");
                return slow_down(wait);
            }
            state.auth_failures.record_failure(&client_id);
            tracing::info!(client_id = ?client_id, "token request: client authentication failed");
            return invalid_client();
        }
        Err(e) => {
            tracing::error!(error = %e, "token request: store failure");
            let mut res = oauth_error(
                StatusCode::SERVICE_UNAVAILABLE,
                &OAuthError::new(
                    OAuthErrorCode::InvalidRequest,
                    "the server cannot check credentials right now; retry later",
                ),
            );
            res.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(crate::error::DATABASE_RETRY_AFTER_SECS),
            );
            return res;
        }
    };

    if client.disabled {
        return with_client(
            oauth_error(
                StatusCode::BAD_REQUEST,
                &OAuthError::new(
                    OAuthErrorCode::UnauthorizedClient,
                    "this client may not obtain tokens",
                ),
            ),
            &client.id,
        );
    }

    let granted = match requested {
        None => client.scopes,
        Some(req) if client.scopes.contains_all(req) => req,
        Some(req) => {
            let missing: Scopes = req.iter().filter(|s| !client.scopes.contains(*s)).collect();
            return with_client(
                oauth_error(
                    StatusCode::BAD_REQUEST,
                    &OAuthError::new(
                        OAuthErrorCode::InvalidScope,
                        format!("scope not granted to this client: {missing}"),
                    ),
                ),
                &client.id,
            );
        }
    };
    if granted.is_empty() {
        return with_client(
            oauth_error(
                StatusCode::BAD_REQUEST,
                &OAuthError::new(OAuthErrorCode::InvalidScope, "this client holds no scope"),
            ),
            &client.id,
        );
    }

    let body = TokenResponse::from(state.tokens.issue(&client.id, granted));
    let mut res = no_store(axum::Json(body).into_response());
    res.extensions_mut().insert(client.id.clone());
    res
}

/// Whether `s` holds a control character (NUL, newline, ESC, DEL, C1 controls …).
fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Any method but POST on the token endpoint: 405 with `Allow: POST`.
pub async fn method_not_allowed() -> Response {
    let mut res = oauth_error(
        StatusCode::METHOD_NOT_ALLOWED,
        &OAuthError::new(
            OAuthErrorCode::InvalidRequest,
            "the token endpoint only accepts POST",
        ),
    );
    res.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    res
}

/// RFC 6749 §3.2: the token endpoint requires TLS. Plain HTTP is accepted when the server itself
/// terminates TLS, when it comes through a declared TLS terminator (`--trust-proxy-tls`: the
/// direct peer is loopback or in `--trusted-proxy`, and a forwarded `X-Forwarded-Proto` other
/// than `https` is refused), or from a loopback peer (local development). A peer that reaches
/// the port directly, past the terminator, is refused: its request never had TLS.
fn check_transport(
    state: &AppState,
    peer: Option<IpAddr>,
    headers: &http::HeaderMap,
) -> Result<(), Rejection> {
    let config = &state.config;
    if config.tls.is_some() {
        return Ok(());
    }
    let refuse = || Rejection {
        status: StatusCode::BAD_REQUEST,
        error: OAuthError::new(
            OAuthErrorCode::InvalidRequest,
            "the token endpoint requires TLS (https)",
        ),
    };
    let loopback = |ip: IpAddr| canonical(ip).is_loopback();
    if config.trust_proxy_tls {
        let from_terminator = peer.is_none_or(|ip| {
            loopback(ip)
                || config
                    .trusted_proxies
                    .iter()
                    .any(|net| net.contains(&canonical(ip)))
        });
        if !from_terminator {
            return Err(refuse());
        }
        let forwarded_plain = headers
            .get_all("x-forwarded-proto")
            .iter()
            .any(|v| !v.as_bytes().eq_ignore_ascii_case(b"https"));
        return if forwarded_plain {
            Err(refuse())
        } else {
            Ok(())
        };
    }
    match peer {
        Some(ip) if loopback(ip) => Ok(()),
        _ => Err(refuse()),
    }
}

fn no_store(mut res: Response) -> Response {
    let headers = res.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

fn with_client(mut res: Response, client: &ClientId) -> Response {
    res.extensions_mut().insert(client.clone());
    res
}

/// An RFC 6749 §5.2 error response, with the no-store headers and, for `invalid_client`, the
/// Basic challenge (RFC 9110 §11.6.1 requires one on every 401).
pub fn oauth_error(status: StatusCode, error: &OAuthError) -> Response {
    let mut res = no_store((status, axum::Json(error)).into_response());
    if status == StatusCode::UNAUTHORIZED {
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"l2c\""),
        );
    }
    res
}

fn invalid_client() -> Response {
    oauth_error(
        StatusCode::UNAUTHORIZED,
        &OAuthError::new(
            OAuthErrorCode::InvalidClient,
            "client authentication failed",
        ),
    )
}

/// Middleware outside the token endpoint's per-address rate limiter: its 429 (and a 503 of a
/// failed store, with fail-closed) keep their status and headers (`Retry-After`, `RateLimit`,
/// `RateLimit-Policy`, `Cache-Control`) but get the RFC 6749 JSON body the endpoint's clients
/// parse instead of problem+json.
pub async fn oauth_error_shape(req: Request, next: axum::middleware::Next) -> Response {
    let res = next.run(req).await;
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    let status = res.status();
    if !is_problem
        || !(status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE)
    {
        return res;
    }
    let (mut parts, _) = res.into_parts();
    let error = if status == StatusCode::TOO_MANY_REQUESTS {
        OAuthError::new(
            OAuthErrorCode::SlowDown,
            "too many token requests from this address; retry after the time in Retry-After",
        )
    } else {
        OAuthError::new(
            OAuthErrorCode::InvalidRequest,
            "the server cannot accept token requests right now; retry later",
        )
    };
    let body = oauth_error(status, &error);
    let (body_parts, body) = body.into_parts();
    for name in [header::CONTENT_TYPE, header::CACHE_CONTROL, header::PRAGMA] {
        if let Some(v) = body_parts.headers.get(&name) {
            parts.headers.insert(name, v.clone());
        }
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, body)
}

fn slow_down(wait: std::time::Duration) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut res = oauth_error(
        StatusCode::TOO_MANY_REQUESTS,
        &OAuthError::new(
            OAuthErrorCode::SlowDown,
            "too many failed authentication attempts; retry later",
        ),
    );
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    res
}

#[cfg(test)]
mod tests;
