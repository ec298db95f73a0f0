//! `POST /api/hooks/leads/{token}`: the ad platforms push their leads here, in their own format,
//! without a bearer token — the token in the path names (and authenticates) the lead source.
//!
//! Per request, in order:
//!
//! 1. the token is looked up by its SHA-256 ([`resolve`]) through a unique index — no secret
//!    is compared byte by byte, so response times say nothing about how close a guess is —
//!    unknown or malformed → 404
//!    `lead_source_not_found`, before the body is read; a source of a disabled client → 403
//!    `lead_source_disabled`;
//! 2. the per-source rate limit (`--lead-source-rate-limit`, keyed by source id): over it → 503
//!    `lead_source_rate_limited` with `Retry-After`, so the platform retries instead of dropping
//!    the lead (they treat every 4xx as final);
//! 3. the body: at most [`MAX_HOOK_BODY_BYTES`] (413), JSON (`Content-Type` absent or JSON, else
//!    415), UTF-8 (400);
//! 4. the channel adapter ([`crate::channels`]) verifies the signature (401
//!    `invalid_signature`), parses (400 `malformed_payload`) and maps (422 `unmappable_lead`,
//!    naming the lead field); an IP outside a 飞鱼 allowlist is 403;
//! 5. the lead is validated and stored through the same path as `POST /api/mobile/leads/hook`
//!    (normalised mobile, customer linking, tenancy) with the raw body and the lead source's id:
//!    200 `{code: 0, message: "ok", leadId, duplicate}` — 200, not 201, since 聚光 counts only a
//!    200 as delivered; the same platform lead id again → 200 `duplicate: true`, nothing stored.
//!
//! Everything is answered within [`HOOK_DEADLINE`] (the platforms cut connections after 5 s):
//! past it, 503 `push_timeout` and the platform's retry finds either nothing or the stored
//! lead (then 200 duplicate). A store failure is a 500, which the platforms retry too.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Router};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use l2c_core::Problem;
use l2c_core::api::lead_sources::{Channel, HookAck};
use serde_json::{Map, Value};
use tower::ServiceBuilder;

use super::leads::intake_problem;
use crate::channels::{self, ChannelError, Inbound, Outcome};
use crate::error::ProblemDoc;
use crate::error::{AppError, problem_response};
use crate::extract::Json;
use crate::limits::LeadSourceKey;
use crate::state::AppState;
use crate::store::lead_sources::StoredSource;
use crate::store::leads::PushedVia;
use crate::store::sql::millis_to_cst;
use crate::usecases::lead_intake::{self, Intake};
use crate::usecases::lead_sources::{looks_like_token, token_hash};

/// The largest push body accepted: 64 KiB.
pub const MAX_HOOK_BODY_BYTES: usize = 64 * 1024;

/// How long a push may take before it is answered 503 (the platforms wait 5 s at most).
pub const HOOK_DEADLINE: Duration = Duration::from_secs(4);

/// The seconds a platform is asked to wait after a 503.
const RETRY_AFTER_SECS: &str = "5";

/// The push route, at its absolute path.
pub fn routes(state: &AppState) -> Router<AppState> {
    let layers = ServiceBuilder::new()
        .layer(from_fn_with_state(state.clone(), resolve))
        .layer(state.limits.lead_source_rate_limit.clone());
    Router::new().route("/api/hooks/leads/{token}", post(push).route_layer(layers))
}

fn source_not_found() -> Response {
    problem_response(
        Problem::new(StatusCode::NOT_FOUND, "lead_source_not_found", "Not Found")
            .with_detail("no lead source has this push URL; it may have been rotated or deleted"),
    )
}

/// Middleware: finds the lead source by the hash of the path's token (404 when none), puts it
/// and its [`LeadSourceKey`] in the request's extensions for the rate limiter and the handler,
/// and turns the limiter's 429 into a 503 the platforms retry.
pub async fn resolve(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let token = req
        .uri()
        .path()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    if !looks_like_token(&token) {
        return source_not_found();
    }
    let source = match state
        .db
        .lead_sources()
        .by_token_hash(&token_hash(&token))
        .await
    {
        Ok(Some(s)) => s,
        Ok(None) => return source_not_found(),
        Err(e) => return AppError::from(e).into_response(),
    };
    if state.limits.disabled.contains(source.client_id.as_str()) {
        return problem_response(
            Problem::new(StatusCode::FORBIDDEN, "lead_source_disabled", "Forbidden")
                .with_detail("the client owning this lead source is disabled"),
        );
    }
    req.extensions_mut()
        .insert(LeadSourceKey(Arc::from(source.id.as_str())));
    req.extensions_mut().insert(Arc::new(source));
    let res = next.run(req).await;
    if res.status() != StatusCode::TOO_MANY_REQUESTS {
        return res;
    }
    let retry_after = res
        .headers()
        .get(header::RETRY_AFTER)
        .cloned()
        .unwrap_or(HeaderValue::from_static(RETRY_AFTER_SECS));
    let mut limited = problem_response(
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "lead_source_rate_limited",
            "Service Unavailable",
        )
        .with_detail("this lead source is receiving pushes faster than its quota; retry later"),
    );
    limited
        .headers_mut()
        .insert(header::RETRY_AFTER, retry_after);
    limited
}

fn channel_problem(e: &ChannelError) -> Problem {
    match e {
        ChannelError::BadSignature(why) => Problem::new(
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
            "Unauthorized",
        )
        .with_detail(why.clone()),
        ChannelError::Forbidden(why) => {
            Problem::new(StatusCode::FORBIDDEN, "sender_not_allowed", "Forbidden")
                .with_detail(why.clone())
        }
        ChannelError::Malformed(why) => Problem::bad_request("malformed_payload", why.clone()),
        ChannelError::Unmappable { field, reason } => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unmappable_lead",
            "Unprocessable Content",
        )
        .with_detail(format!("`{field}`: {reason}"))
        .with_extension("field", field.clone()),
    }
}

/// Whether the request's `Content-Type` is absent or JSON (`application/json`, `…+json`,
/// `text/json`).
fn json_or_absent(headers: &HeaderMap) -> bool {
    crate::extract::json_media_type_with(headers, true).unwrap_or(true)
}

/// The delivery headers kept with a lead, per channel (never a credential).
fn kept_headers(channel: Channel, headers: &HeaderMap) -> String {
    let names: &[&str] = match channel {
        Channel::Feiyu => &channels::feiyu::SIGNATURE_HEADERS,
        Channel::DouyinOpen => &[channels::douyin::MSG_ID_HEADER],
        Channel::Xiaohongshu => &[channels::xiaohongshu::SIGNATURE_HEADER],
        _ => &[],
    };
    let mut kept = Map::new();
    for name in names.iter().copied().chain(["user-agent"]) {
        if let Some(v) = headers.get(name).and_then(|v| v.to_str().ok()) {
            kept.insert(name.to_owned(), Value::String(channels::truncate(v, 256)));
        }
    }
    Value::Object(kept).to_string()
}

/// Receive a lead pushed by an ad platform in its own format.
#[utoipa::path(
    post,
    path = "/api/hooks/leads/{token}",
    tag = "lead-sources",
    operation_id = "pushChannelLead",
    params(("token" = String, Path, description = "The lead source's push token (`lst_…`), from its `pushUrl`")),
    request_body(content = Object, description = "The platform's own payload (聚光, 飞鱼, 抖音开放平台 webhook, or GENERIC), at most 64 KiB", content_type = "application/json"),
    responses(
        (status = 200, description = "Stored (`leadId`), already stored (`duplicate: true`), acknowledged without a lead, or the answer to 抖音's `verify_webhook` (`{challenge}`)", body = HookAck),
        (status = 400, description = "Not JSON, not UTF-8, or not the channel's format (`malformed_payload`); do not retry", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong signature (`invalid_signature`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The sender is outside the source's IP allowlist or another app's `client_key` (`sender_not_allowed`), or the owning client is disabled (`lead_source_disabled`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No lead source has this token (`lead_source_not_found`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "Body over 64 KiB (`payload_too_large`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "A `Content-Type` other than JSON", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "No lead can be made of it (`unmappable_lead`, `invalid_field`; the lead field in `field`), e.g. no mobile number", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 500, description = "A server failure; retried by the platform", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "Over the source's rate limit (`lead_source_rate_limited`) or past the 4 s budget (`push_timeout`), with `Retry-After`; retried by the platform", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn push(
    State(state): State<AppState>,
    Extension(source): Extension<Arc<StoredSource>>,
    req: Request,
) -> Response {
    match tokio::time::timeout(HOOK_DEADLINE, receive(state, source, req)).await {
        Ok(Ok(res)) => res,
        Ok(Err(e)) => e.into_response(),
        Err(_) => {
            tracing::warn!("a lead push exceeded its deadline");
            let mut res = problem_response(
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "push_timeout",
                    "Service Unavailable",
                )
                .with_detail("the push could not be stored in time; retry it"),
            );
            res.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECS),
            );
            res
        }
    }
}

async fn receive(
    state: AppState,
    source: Arc<StoredSource>,
    req: Request,
) -> Result<Response, AppError> {
    let (parts, body) = req.into_parts();
    if !json_or_absent(&parts.headers) {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Unsupported Media Type",
        )
        .with_detail("send the body as JSON (`Content-Type: application/json`)")
        .into());
    }
    let bytes = axum::body::to_bytes(Body::new(body), MAX_HOOK_BODY_BYTES)
        .await
        .map_err(|_| {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "Payload Too Large",
            )
            .with_detail(format!(
                "a push body may be at most {MAX_HOOK_BODY_BYTES} bytes"
            ))
        })?;
    let raw = std::str::from_utf8(&bytes)
        .map_err(|_| Problem::bad_request("malformed_payload", "the body is not UTF-8"))?;
    let settings =
        channels::parse_settings(source.channel, &source.settings, source.secret.is_some())
            .map_err(|e| AppError::internal(format!("stored settings of {}: {e}", source.id)))?;
    let peer = parts
        .extensions
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let peer = crate::limits::peer::client_address(
        state.config.forwarding_proxies(),
        peer,
        &parts.headers,
    );
    let inbound = Inbound {
        headers: &parts.headers,
        body: &bytes,
        peer,
        now: millis_to_cst(state.db.now_millis()),
    };
    let outcome = channels::handle(&settings, source.secret.as_deref(), &inbound).map_err(|e| {
        tracing::info!(source = %source.id, channel = %source.channel, error = %e, "lead push refused");
        channel_problem(&e)
    })?;
    let lead = match outcome {
        Outcome::Challenge(answer) => return Ok(Json(answer).into_response()),
        Outcome::Ignored(why) => {
            tracing::debug!(source = %source.id, reason = %why, "push acknowledged without a lead");
            return Ok(Json(HookAck::new(why, None, false)).into_response());
        }
        Outcome::Lead(lead) => lead,
    };
    let kept = kept_headers(source.channel, &parts.headers);
    let intake = Intake {
        client: &source.client_id,
        lead: &lead,
        raw_payload: raw,
        pushed_via: Some(PushedVia {
            lead_source_id: &source.id,
            headers: &kept,
        }),
    };
    let stored = lead_intake::intake(&state.db, intake)
        .await
        .map_err(intake_problem)?;
    tracing::info!(
        source = %source.id,
        channel = %source.channel,
        lead = %stored.lead_id.as_str(),
        duplicate = stored.duplicate,
        "lead pushed by a channel"
    );
    let message = if stored.duplicate { "duplicate" } else { "ok" };
    Ok(Json(HookAck::new(
        message,
        Some(stored.lead_id.as_str().to_owned()),
        stored.duplicate,
    ))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        let mut h = HeaderMap::new();
        assert!(json_or_absent(&h));
        for ok in [
            "application/json",
            "application/json;charset=UTF-8",
            "text/json",
        ] {
            h.insert(header::CONTENT_TYPE, ok.parse().unwrap());
            assert!(json_or_absent(&h), "{ok}");
        }
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ] {
            h.insert(header::CONTENT_TYPE, bad.parse().unwrap());
            assert!(!json_or_absent(&h), "{bad}");
        }
    }
}
