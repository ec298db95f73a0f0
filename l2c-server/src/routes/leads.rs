//! `POST /leads/hook`: a channel pushes a lead (scope `leads:write`).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Router};
use http::StatusCode;
use l2c_core::api::leads::{PushLead, PushLeadResponse};
use l2c_core::auth::RequireScopeLayer;
use l2c_core::{AuthenticatedClient, Problem, Scope};

use super::openapi::{
    Authenticated, DatabaseUnavailable, IdempotencyInFlight, IdempotencyKey, RateLimited,
};
use crate::error::AppError;
use crate::error::ProblemDoc;
use crate::extract::Json;
use crate::extract::{JsonBody, invalid_field};
use crate::state::AppState;
use crate::usecases::lead_intake::{self, Intake, IntakeError};

/// The lead routes, relative to `/api/mobile`.
pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/leads/hook",
        post(push_lead).layer(RequireScopeLayer::one(Scope::LeadsWrite)),
    )
}

/// Stores a lead and links its customer by mobile number.
///
/// New → 201; the same `(source, externalLeadId)` again from the same client → 200 with the
/// original ids and `duplicate: true`, nothing overwritten. The pair is unique per client: the
/// same pair from another client is a lead of its own (201), and nothing of the first shows.
#[utoipa::path(
    post,
    path = "/api/mobile/leads/hook",
    tag = "leads",
    operation_id = "pushLead",
    request_body = PushLead,
    params(IdempotencyKey),
    responses(
        (status = 201, description = "A new lead", body = PushLeadResponse,
            links(("GetCustomer" = (operation_id = "getCustomer", parameters(("id" = "$response.body#/customerId")))), ("GetLead" = (operation_id = "getLead", parameters(("leadId" = "$response.body#/leadId")))))),
        (status = 200, description = "A lead already pushed: the original ids", body = PushLeadResponse,
            links(("GetCustomer" = (operation_id = "getCustomer", parameters(("id" = "$response.body#/customerId")))), ("GetLead" = (operation_id = "getLead", parameters(("leadId" = "$response.body#/leadId")))))),
        (status = 400, description = "Malformed JSON; or no `X-Request-Id` (`idempotency_key_missing`), a key that is not 1–255 visible ASCII characters (`idempotency_key_invalid`), or `X-Request-Id` and `Idempotency-Key` differing (`idempotency_key_conflict`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "Body over 1 MiB", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "Not `application/json`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "A field is missing, of the wrong type or invalid (named in `field`); or the idempotency key was already used with a different request body (`idempotency_key_reused`)", body = ProblemDoc, content_type = "application/problem+json"),
        Authenticated, RateLimited, DatabaseUnavailable, IdempotencyInFlight,
    ),
    security(("bearer" = ["leads:write"]))
)]
pub async fn push_lead(
    State(state): State<AppState>,
    Extension(client): Extension<AuthenticatedClient>,
    body: JsonBody<PushLead>,
) -> Result<Response, AppError> {
    let raw = std::str::from_utf8(&body.raw)
        .map_err(|_| Problem::bad_request("malformed_json", "the body is not UTF-8"))?;
    let intake = Intake {
        client: &client.client_id,
        lead: &body.value,
        raw_payload: raw,
        pushed_via: None,
    };
    let response = lead_intake::intake(&state.db, intake)
        .await
        .map_err(intake_problem)?;
    let status = if response.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(response)).into_response())
}

/// The problem a refused intake is answered with (shared with the channel pushes).
pub fn intake_problem(err: IntakeError) -> AppError {
    match err {
        IntakeError::Invalid(e) => invalid_field(&e).into(),
        IntakeError::Store(e) => AppError::Store(e),
    }
}
