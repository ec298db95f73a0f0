//! The OpenAPI 3.1 document of the open platform, generated from the code with utoipa and
//! served at `GET /api/openapi.json`. A copy is committed as `openapi.json` at the repository
//! root; a test fails when the two drift (`UPDATE_OPENAPI=1 cargo test -p l2c-server openapi`
//! rewrites the copy).
//!
//! Where each part comes from:
//!
//! - each handler's `#[utoipa::path]` declares its own answers and, next to them, the answer
//!   sets of the layers in front of it (`responses`: 401/403 from authentication, 429 from the
//!   rate limit, 503 where the database is used, 400/409/422 from idempotency, 413 from the body
//!   limit), its idempotency key header ([`headers::IdempotencyKey`]) and its OpenAPI links;
//! - the request and response types derive their schemas in `l2c-core` (feature `openapi`),
//!   including [`Problem`](l2c_core::Problem), the body of every error;
//! - [`headers::StackHeaders`] adds the response headers the layers put on every answer
//!   (`X-Request-Id`, the `RateLimit` headers, `Idempotent-Replayed`);
//! - `CrossFieldRules` states the request bodies' cross-field rules with `if` / `then`;
//! - `webhooks` is the OpenAPI 3.1 `webhooks` section, added when the document is serialized.

mod headers;
mod responses;
mod rules;

use rules::CrossFieldRules;
mod webhooks;

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderValue, header};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::openapi::RefOr;
use utoipa::openapi::path::PathItem;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use l2c_core::api::events::{
    EventData, EventType, OrderCreated, OrderStatusChanged, PaymentReceived, Ping, WebhookEvent,
};

use crate::state::AppState;

pub use headers::{IdempotencyKey, KEY_PATTERN, StackHeaders};
pub use responses::{
    Authenticated, BodyTooLarge, DATABASE_UNAVAILABLE, DatabaseUnavailable, IdempotencyInFlight,
    IdempotencyKeyRefused, IdempotencyKeyReused, RateLimited, RateLimitedOrCapped,
};

pub use crate::error::ProblemDoc;

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

/// The served document: utoipa's, plus the OpenAPI 3.1 `webhooks` section.
#[derive(Serialize)]
struct Document {
    #[serde(flatten)]
    api: utoipa::openapi::OpenApi,
    webhooks: BTreeMap<String, PathItem>,
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
        super::lead_reads::list_leads,
        super::lead_reads::get_lead,
        super::lead_sources::create,
        super::lead_sources::list,
        super::lead_sources::read,
        super::lead_sources::update,
        super::lead_sources::rotate,
        super::lead_sources::remove,
        super::hooks::push,
        super::customers::get_customer,
        super::orders::sync_order,
        super::orders::order_status,
        super::showroom::list_items,
        super::reports::export_orders,
        super::webhooks::create,
        super::webhooks::list,
        super::webhooks::remove,
        super::webhooks::rotate,
        super::webhooks::promote,
        super::webhooks::deliveries,
        super::webhooks::redeliver,
        super::webhooks::send_test,
        super::webhooks::recover,
    ),
    components(schemas(
        l2c_core::Problem,
        WebhookEvent,
        EventData,
        EventType,
        OrderCreated,
        OrderStatusChanged,
        PaymentReceived,
        Ping,
    )),
    modifiers(&SecurityAddon, &StackHeaders, &LinkOperationIds, &CrossFieldRules),
    tags(
        (name = "oauth", description = "Access tokens (client credentials, RFC 6749 §4.4)"),
        (name = "leads", description = "Leads pushed by channels, and read back"),
        (name = "lead-sources", description = "Push URLs for the ad platforms (小红书 聚光, 巨量引擎 飞鱼, 抖音开放平台, others) and the push endpoint they call"),
        (name = "customers", description = "Masked customer profiles"),
        (name = "orders", description = "Orders synced from ERPs"),
        (name = "showroom", description = "Products and cases"),
        (name = "reports", description = "Exports"),
        (name = "webhooks", description = "Event subscriptions, signing secrets and the delivery log (Standard Webhooks)"),
        (name = "operations", description = "Health checks"),
    )
)]
pub struct ApiDoc;

/// The document as pretty JSON with a trailing newline (the committed form).
pub fn document_json() -> String {
    let doc = Document {
        api: ApiDoc::openapi(),
        webhooks: webhooks::webhooks(),
    };
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| String::from("{}"));
    s.push('\n');
    s
}

/// utoipa 5.5 serializes a Link Object's `operationId` as `operation_id` (its `Link` lacks
/// `rename_all = "camelCase"`). This moves each link's operation id to the member name
/// OpenAPI defines, through the link's flattened extension map (in the model, not the text).
struct LinkOperationIds;

impl Modify for LinkOperationIds {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let operations = openapi.paths.paths.values_mut().flat_map(|item| {
            [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
        });
        for op in operations {
            for response in op.responses.responses.values_mut() {
                let RefOr::T(response) = response else {
                    continue;
                };
                for link in response.links.values_mut() {
                    let RefOr::T(link) = link else { continue };
                    if link.operation_id.is_empty() {
                        continue;
                    }
                    let id = std::mem::take(&mut link.operation_id);
                    link.extensions
                        .get_or_insert_with(Default::default)
                        .insert("operationId".to_owned(), serde_json::Value::String(id));
                }
            }
        }
    }
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
mod tests;
