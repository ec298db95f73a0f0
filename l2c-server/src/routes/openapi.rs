//! The OpenAPI 3.1 document of the open platform, generated from the code with utoipa and
//! served at `GET /api/openapi.json`. A copy is committed as `openapi.json` at the repository
//! root; a test fails when the two drift (`UPDATE_OPENAPI=1 cargo test -p l2c-server openapi`
//! rewrites the copy).

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderValue, header};
use serde::Serialize;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::state::AppState;

/// An RFC 9457 problem details body (`application/problem+json`), as every error but the token
/// endpoint's is sent.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Problem)]
pub struct ProblemDoc {
    /// A URI reference naming the problem type, e.g. `/problems/invalid-field`.
    #[serde(rename = "type")]
    #[schema(example = "/problems/invalid-field")]
    pub type_uri: String,
    /// A short summary of the problem type.
    #[schema(example = "Unprocessable Content")]
    pub title: String,
    /// The HTTP status code.
    #[schema(example = 422)]
    pub status: u16,
    /// What went wrong this time.
    #[schema(example = "`mobile` must be a mainland mobile number")]
    pub detail: Option<String>,
    /// A stable machine-readable code: `malformed_json`, `invalid_body`, `invalid_field`,
    /// `invalid_query_parameter`, `unsupported_media_type`, `payload_too_large`, `not_found`,
    /// `illegal_transition`, `illegal_payment_transition`, `customer_mismatch`,
    /// `payment_conflict`, `invalid_token`, `insufficient_scope`, `rate_limited`, …
    #[schema(example = "invalid_field")]
    pub code: String,
    /// The request's id, for support.
    pub request_id: Option<String>,
    /// The request field or query parameter at fault, e.g. `payments[0].amount`.
    pub field: Option<String>,
    /// For a transition conflict: the stored status.
    pub from: Option<String>,
    /// For a transition conflict: the requested status.
    pub to: Option<String>,
}

struct SecurityAddon;

impl Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token from `POST /api/oauth/token` (client credentials).",
                    ))
                    .build(),
            ),
        );
    }
}

/// What the server's layers add to every `/api/mobile` operation (see [`crate::limits`]):
/// `X-Request-Id` (or `Idempotency-Key`) on POST/PUT/PATCH with the idempotency answers, and the
/// 429 of the rate limiter on every operation.
struct LimitsAddon;

impl LimitsAddon {
    fn problem(description: &str) -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/problem+json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ProblemDoc")))
                    .build(),
            )
            .build()
            .into()
    }

    fn key_header(
        name: &str,
        required: bool,
        description: &str,
    ) -> utoipa::openapi::path::Parameter {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::{ObjectBuilder, Required, Type};
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Header)
            .required(if required {
                Required::True
            } else {
                Required::False
            })
            .description(Some(description))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(255))
                    .pattern(Some("^[\\x21-\\x7E]+$")),
            ))
            .build()
    }
}

impl Modify for LimitsAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in &mut openapi.paths.paths {
            if !path.starts_with("/api/mobile/") {
                continue;
            }
            let writes = [&mut item.post, &mut item.put, &mut item.patch];
            for op in writes.into_iter().flatten() {
                let params = op.parameters.get_or_insert_with(Vec::new);
                // Replace a handler's own (optional) declaration: the layer requires the key.
                params.retain(|p| {
                    !p.name.eq_ignore_ascii_case("x-request-id")
                        && !p.name.eq_ignore_ascii_case("idempotency-key")
                });
                params.push(Self::key_header(
                    "X-Request-Id",
                    true,
                    "Idempotency key (spec §6): 1-255 visible ASCII characters, unique per \
                     logical request and reused on every retry of it. A retry after completion \
                     replays the stored response with `Idempotent-Replayed: true`.",
                ));
                params.push(Self::key_header(
                    "Idempotency-Key",
                    false,
                    "The IETF draft's name for the same key; accepted instead of \
                     `X-Request-Id` (both present and different: 400).",
                ));
                let responses = &mut op.responses.responses;
                responses.entry("400".to_owned()).or_insert_with(|| {
                    Self::problem("Missing, invalid or conflicting idempotency key, or bad input")
                });
                responses.entry("409".to_owned()).or_insert_with(|| {
                    Self::problem("A request with this key is still running; retry after 1 s")
                });
                responses
                    .entry("413".to_owned())
                    .or_insert_with(|| Self::problem("The body is over 1 MiB"));
                responses.entry("422".to_owned()).or_insert_with(|| {
                    Self::problem("The key was used with another request, or invalid input")
                });
            }
            let all = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for op in all.into_iter().flatten() {
                op.responses.responses.entry("429".to_owned()).or_insert_with(|| {
                    Self::problem(
                        "Over the client's quota (`Retry-After`, `RateLimit`, `RateLimit-Policy`)",
                    )
                });
            }
        }
    }
}

/// The document's root.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "L2C open platform",
        description = "Leads, customers, orders, showroom and reports for partners of the L2C \
                       (Lead-to-Cash) custom home furnishing platform. Every route is also \
                       mounted under `/api/v1`. JSON fields are camelCase, money is integer fen, \
                       times are RFC 3339 with offset. Errors are RFC 9457 problem+json.",
        version = "1.0.0"
    ),
    paths(
        super::oauth::token,
        super::health::healthz,
        super::health::readyz,
        super::leads::push_lead,
        super::customers::get_customer,
        super::orders::sync_order,
        super::orders::order_status,
        super::showroom::list_items,
        super::reports::export_orders,
    ),
    components(schemas(ProblemDoc)),
    modifiers(&SecurityAddon, &LimitsAddon),
    tags(
        (name = "oauth", description = "Access tokens (client credentials, RFC 6749 §4.4)"),
        (name = "leads", description = "Leads pushed by channels"),
        (name = "customers", description = "Masked customer profiles"),
        (name = "orders", description = "Orders synced from ERPs"),
        (name = "showroom", description = "Products and cases"),
        (name = "reports", description = "Exports"),
        (name = "operations", description = "Health checks"),
    )
)]
pub struct ApiDoc;

/// The document as pretty JSON with a trailing newline (the committed form).
pub fn document_json() -> String {
    let mut s = ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|_| String::from("{}"));
    s.push('\n');
    s
}

/// `GET /api/openapi.json` (no authentication).
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/openapi.json", get(serve))
}

async fn serve() -> Response {
    let mut res = document_json().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed `openapi.json` must match the generated document.
    /// `UPDATE_OPENAPI=1 cargo test -p l2c-server openapi` rewrites it.
    #[test]
    fn committed_openapi_json_matches_the_code() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.json");
        let generated = document_json();
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(path, &generated).unwrap();
            return;
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == generated,
            "openapi.json is out of date: run `UPDATE_OPENAPI=1 cargo test -p l2c-server openapi`"
        );
    }

    #[test]
    fn document_is_openapi_3_1_with_every_route() {
        let v: serde_json::Value = serde_json::from_str(&document_json()).unwrap();
        assert!(v["openapi"].as_str().unwrap().starts_with("3.1"));
        for path in [
            "/api/mobile/leads/hook",
            "/api/mobile/customers/{id}",
            "/api/mobile/orders/sync",
            "/api/mobile/orders/{id}/status",
            "/api/mobile/showroom/items",
            "/api/mobile/reports/orders/export",
        ] {
            assert!(v["paths"][path].is_object(), "{path} missing");
        }
        assert_eq!(
            v["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        assert!(v["components"]["schemas"]["Problem"].is_object());
    }
}
