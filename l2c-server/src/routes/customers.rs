//! `GET /customers/{id}`: the masked customer view (scope `customers:read`).

use axum::extract::State;
use axum::routing::get;
use axum::{Extension, Router};
use l2c_core::api::customers::Customer;
use l2c_core::auth::RequireScopeLayer;
use l2c_core::{AuthenticatedClient, Problem, Scope};

use super::openapi::{Authenticated, DatabaseUnavailable, RateLimited};
use crate::error::AppError;
use crate::error::ProblemDoc;
use crate::extract::{Json, Path};
use crate::state::AppState;

/// The customer routes, relative to `/api/mobile`.
pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/customers/{id}",
        get(get_customer).layer(RequireScopeLayer::one(Scope::CustomersRead)),
    )
}

/// The masked view of a customer linked to the caller's leads or orders.
///
/// A customer that does not exist and one the caller may not see are both 404, so the answer
/// never confirms that an id exists.
#[utoipa::path(
    get,
    path = "/api/mobile/customers/{id}",
    tag = "customers",
    operation_id = "getCustomer",
    params(("id" = String, Path, description = "The customer's id (`cus_…`)")),
    responses(
        (status = 200, description = "The masked customer", body = Customer),
        (status = 404, description = "No such customer for this client", body = ProblemDoc, content_type = "application/problem+json"),
        Authenticated, RateLimited, DatabaseUnavailable,
    ),
    security(("bearer" = ["customers:read"]))
)]
pub async fn get_customer(
    State(state): State<AppState>,
    Extension(client): Extension<AuthenticatedClient>,
    Path(id): Path<String>,
) -> Result<Json<Customer>, AppError> {
    match state
        .db
        .customers()
        .masked_view(&client.client_id, &id)
        .await?
    {
        Some(view) => Ok(Json(view)),
        None => Err(Problem::not_found("no customer with this id for this client").into()),
    }
}
