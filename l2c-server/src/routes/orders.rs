//! `POST /orders/sync` (scope `orders:write`) and `GET /orders/{id}/status` (`orders:read`).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use http::StatusCode;
use l2c_core::api::orders::{OrderStatusView, SyncOrder, SyncOrderResponse};
use l2c_core::auth::RequireScopeLayer;
use l2c_core::{AuthenticatedClient, Problem, Scope};

use super::openapi::{Authenticated, DatabaseUnavailable, IdempotencyKey, RateLimited};
use crate::error::AppError;
use crate::error::ProblemDoc;
use crate::extract::{Json, Path};
use crate::extract::{JsonBody, invalid_field};
use crate::state::AppState;
use crate::usecases::order_sync::{self, SyncError};

/// The order routes, relative to `/api/mobile`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/orders/sync",
            post(sync_order).layer(RequireScopeLayer::one(Scope::OrdersWrite)),
        )
        .route(
            "/orders/{id}/status",
            get(order_status).layer(RequireScopeLayer::one(Scope::OrdersRead)),
        )
}

/// The problem a refused sync is answered with.
pub fn sync_problem(err: SyncError) -> AppError {
    let conflict =
        |code: &'static str, title: &'static str| Problem::new(StatusCode::CONFLICT, code, title);
    let unprocessable = |field: &'static str, detail: String| {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "Unprocessable Content",
        )
        .with_detail(format!("`{field}`: {detail}"))
        .with_extension("field", field)
    };
    let detail = err.to_string();
    let problem = match err {
        SyncError::Invalid(e) => return invalid_field(&e).into(),
        SyncError::IllegalTransition { from, to } => {
            conflict("illegal_transition", "Illegal Status Transition")
                .with_detail(detail)
                .with_extension("field", "status")
                .with_extension("from", from.as_str())
                .with_extension("to", to.as_str())
        }
        SyncError::IllegalPaymentTransition { from, to } => conflict(
            "illegal_payment_transition",
            "Illegal Payment Status Transition",
        )
        .with_detail(detail)
        .with_extension("field", "paymentStatus")
        .with_extension("from", from.as_str())
        .with_extension("to", to.as_str()),
        SyncError::IllegalInitialStatus(_) => unprocessable("status", detail),
        SyncError::CustomerRequired | SyncError::UnknownCustomer => {
            unprocessable("customerId", detail)
        }
        SyncError::CustomerMismatch => conflict("customer_mismatch", "Customer Mismatch")
            .with_detail(detail)
            .with_extension("field", "customer"),
        SyncError::PaymentConflict { .. } => conflict("payment_conflict", "Payment Conflict")
            .with_detail(detail)
            .with_extension("field", "payments"),
        // Nothing was written (the transaction rolls back) and the client is told to retry:
        // the idempotency layer must not record this 409.
        SyncError::ConcurrentCreate => {
            return AppError::refused(
                conflict("concurrent_update", "Concurrent Update")
                    .with_detail("the order changed while this sync ran; send it again"),
            );
        }
        SyncError::Store(e) => return AppError::Store(e),
    };
    problem.into()
}

/// Upserts an order from the ERP by `externalOrderNo`.
///
/// One database transaction per call. A `version` not above the stored one is acknowledged with
/// `applied: false` and changes nothing. Payments are recorded once each, keyed by `method` +
/// `channelTransactionId` per client (like `externalOrderNo`). `paymentStatus: UNPAID` goes
/// only with `status: CANCELLED`: every other status means the deposit is paid.
#[utoipa::path(
    post,
    path = "/api/mobile/orders/sync",
    tag = "orders",
    operation_id = "syncOrder",
    request_body = SyncOrder,
    params(IdempotencyKey),
    responses(
        (status = 201, description = "The order was created", body = SyncOrderResponse,
            links(("GetOrderStatus" = (operation_id = "getOrderStatus", parameters(("id" = "$response.body#/orderId")))))),
        (status = 200, description = "The order was updated, or the version was stale (`applied: false`)", body = SyncOrderResponse,
            links(("GetOrderStatus" = (operation_id = "getOrderStatus", parameters(("id" = "$response.body#/orderId")))))),
        (status = 400, description = "Malformed JSON; or no `X-Request-Id` (`idempotency_key_missing`), a key that is not 1–255 visible ASCII characters (`idempotency_key_invalid`), or `X-Request-Id` and `Idempotency-Key` differing (`idempotency_key_conflict`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "Illegal status or payment transition (`from`, `to`), payment recorded on another of the caller's orders, or another customer; or a request with the same idempotency key is still running (`idempotency_key_in_use`; retry after `Retry-After`)", body = ProblemDoc, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "With `idempotency_key_in_use`: seconds to wait (1)"))),
        (status = 413, description = "Body over 1 MiB", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "Not `application/json`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "A field is missing, of the wrong type or invalid (named in `field`); `status_payment_mismatch` when `status` implies a paid deposit (every status but CANCELLED) while `paymentStatus` is UNPAID; or the idempotency key was already used with a different request body (`idempotency_key_reused`)", body = ProblemDoc, content_type = "application/problem+json"),
        Authenticated, RateLimited, DatabaseUnavailable,
    ),
    security(("bearer" = ["orders:write"]))
)]
pub async fn sync_order(
    State(state): State<AppState>,
    Extension(client): Extension<AuthenticatedClient>,
    body: JsonBody<SyncOrder>,
) -> Result<Response, AppError> {
    let response = order_sync::sync(&state, &client.client_id, &body.value)
        .await
        .map_err(sync_problem)?;
    let status = if response.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(response)).into_response())
}

/// The status of an order: fulfilment and payment status with their Chinese labels, amounts,
/// `updatedAt` and the history of applied changes.
#[utoipa::path(
    get,
    path = "/api/mobile/orders/{id}/status",
    tag = "orders",
    operation_id = "getOrderStatus",
    params(("id" = String, Path, description = "The platform's order id (`ord_…`) or the caller's `externalOrderNo`")),
    responses(
        (status = 200, description = "The order's status", body = OrderStatusView),
        (status = 404, description = "No such order for this client", body = ProblemDoc, content_type = "application/problem+json"),
        Authenticated, RateLimited, DatabaseUnavailable,
    ),
    security(("bearer" = ["orders:read"]))
)]
pub async fn order_status(
    State(state): State<AppState>,
    Extension(client): Extension<AuthenticatedClient>,
    Path(id): Path<String>,
) -> Result<Json<OrderStatusView>, AppError> {
    match state
        .db
        .orders()
        .status_view(&client.client_id, &id)
        .await?
    {
        Some(view) => Ok(Json(view)),
        None => Err(Problem::not_found("no order with this id for this client").into()),
    }
}
