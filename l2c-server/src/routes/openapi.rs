//! The OpenAPI 3.1 document of the open platform, generated from the code with utoipa and
//! served at `GET /api/openapi.json`. A copy is committed as `openapi.json` at the repository
//! root; a test fails when the two drift (`UPDATE_OPENAPI=1 cargo test -p l2c-server openapi`
//! rewrites the copy).
//!
//! Besides what the handlers' annotations say, [`MobileConventions`] adds what holds for every
//! route by construction of the layer stack: the `X-Request-Id` response header, the IETF
//! `RateLimit` / `RateLimit-Policy` headers and the shared 429 answer (with `Retry-After`), and on
//! every POST/PUT/PATCH under `/api/mobile` the `X-Request-Id` / `Idempotency-Key` request headers
//! with the idempotency answers (409 in flight, 422 key reused with another body, the
//! `Idempotent-Replayed` header on a replay). The webhook event envelopes are components and,
//! since utoipa 5 has no field for it, the OpenAPI 3.1 `webhooks` section is added when the
//! document is serialized ([`Document`]).

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderValue, header};
use std::collections::BTreeMap;

use l2c_core::api::events::{
    EventData, EventType, OrderCreated, OrderStatusChanged, PaymentReceived, WebhookEvent,
};
use serde::Serialize;
use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{
    HttpMethod, Operation, OperationBuilder, Parameter, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::{Response as ApiResponse, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Required};
use utoipa::{Modify, OpenApi};

use crate::state::AppState;

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

/// The name of the shared 429 response in `components.responses`.
const RATE_LIMITED: &str = "RateLimited";
/// The name of the shared idempotency 409 response in `components.responses`.
const IDEMPOTENCY_IN_FLIGHT: &str = "IdempotencyInFlight";
/// The name of the shared idempotency 422 response in `components.responses`.
const IDEMPOTENCY_KEY_REUSED: &str = "IdempotencyKeyReused";

const IN_FLIGHT_DETAIL: &str = "Idempotency: a request with the same key is still running \
                                (`idempotency_key_in_use`, `Retry-After: 1`)";
const KEY_REUSED_DETAIL: &str = "Idempotency: the key was already used with a different request \
                                 body (`idempotency_key_reused`)";
const BAD_KEY_DETAIL: &str = "Idempotency: no key (`idempotency_key_missing`), a key that is not \
                              1–255 visible ASCII characters (`idempotency_key_invalid`), or \
                              `X-Request-Id` and `Idempotency-Key` differing \
                              (`idempotency_key_conflict`)";

fn string_schema() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn header(description: &str, schema: ObjectBuilder) -> Header {
    HeaderBuilder::new()
        .schema(schema)
        .description(Some(description))
        .build()
}

fn request_id_header() -> Header {
    header(
        "The request's id: the client's `X-Request-Id` echoed, or a generated one",
        string_schema(),
    )
}

fn rate_limit_headers() -> [(&'static str, Header); 2] {
    [
        (
            "RateLimit",
            header(
                "Remaining quota (draft-ietf-httpapi-ratelimit-headers), e.g. \
                 `\"default\";r=99;t=1`",
                string_schema(),
            ),
        ),
        (
            "RateLimit-Policy",
            header(
                "The quota policy, e.g. `\"default\";q=100;w=1` (and \
                 `\"concurrency\";q=5;qu=\"concurrent-requests\"` on the export)",
                string_schema(),
            ),
        ),
    ]
}

fn retry_after_header(description: &str) -> Header {
    header(
        description,
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1)),
    )
}

fn problem_response(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/problem+json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build(),
    )
}

/// The idempotency key request headers, shared by every write under `/api/mobile`. The layer
/// requires one of the two on every write; OpenAPI cannot say "one of two headers", so both are
/// declared optional and the rule is in the descriptions (a request with only `Idempotency-Key`
/// is valid and must not look schema-violating).
fn idempotency_parameters() -> [Parameter; 2] {
    let key = || {
        string_schema()
            .min_length(Some(1))
            .max_length(Some(255))
            .pattern(Some("^[\\x21-\\x7E]+$"))
    };
    [
        ParameterBuilder::new()
            .name("X-Request-Id")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "Idempotency key (spec §6; 1–255 visible ASCII), unique per logical request and \
                 reused on every retry of it: a retry with the same key and body replays the \
                 first answer (`Idempotent-Replayed: true`) instead of running again. Every \
                 write needs this header or `Idempotency-Key` (400 without either); echoed on \
                 the response.",
            ))
            .schema(Some(key()))
            .build(),
        ParameterBuilder::new()
            .name("Idempotency-Key")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "The IETF draft's name for the same key, accepted instead of `X-Request-Id`; if \
                 both are sent they must be equal.",
            ))
            .schema(Some(key()))
            .build(),
    ]
}

/// What every route gets from the layer stack rather than from its handler; see the module docs.
struct MobileConventions;

impl MobileConventions {
    fn response_components() -> [(&'static str, ApiResponse); 3] {
        let mut rate_limited = problem_response(
            "Rate limited (per client; the token endpoint per peer address), or over the \
             concurrency cap of a long-running route",
        )
        .header(
            "Retry-After",
            retry_after_header("Seconds to wait before retrying (rounded up, at least 1)"),
        )
        .header("X-Request-Id", request_id_header());
        for (name, h) in rate_limit_headers() {
            rate_limited = rate_limited.header(name, h);
        }
        let in_flight = problem_response(IN_FLIGHT_DETAIL)
            .header(
                "Retry-After",
                retry_after_header("Seconds to wait before retrying (1)"),
            )
            .header("X-Request-Id", request_id_header());
        let reused =
            problem_response(KEY_REUSED_DETAIL).header("X-Request-Id", request_id_header());
        [
            (RATE_LIMITED, rate_limited.build()),
            (IDEMPOTENCY_IN_FLIGHT, in_flight.build()),
            (IDEMPOTENCY_KEY_REUSED, reused.build()),
        ]
    }

    fn apply(path: &str, method: &HttpMethod, op: &mut Operation) {
        let mobile = path.starts_with("/api/mobile/");
        // The token endpoint documents its own 429: RFC 6749's `slow_down` JSON, not a problem.
        let rate_limited = mobile;
        let write = mobile
            && matches!(
                method,
                HttpMethod::Post | HttpMethod::Put | HttpMethod::Patch
            );

        if write {
            let params = op.parameters.get_or_insert_with(Vec::new);
            params.retain(|p| {
                !(p.parameter_in == ParameterIn::Header
                    && (p.name.eq_ignore_ascii_case("X-Request-Id")
                        || p.name.eq_ignore_ascii_case("Idempotency-Key")))
            });
            params.extend(idempotency_parameters());
        }

        let responses = &mut op.responses.responses;
        if rate_limited {
            responses.insert(
                "429".to_owned(),
                RefOr::Ref(Ref::from_response_name(RATE_LIMITED)),
            );
        }
        if write {
            Self::merge(
                responses,
                "409",
                IN_FLIGHT_DETAIL,
                IDEMPOTENCY_IN_FLIGHT,
                true,
            );
            Self::merge(
                responses,
                "422",
                KEY_REUSED_DETAIL,
                IDEMPOTENCY_KEY_REUSED,
                false,
            );
            responses.entry("413".to_owned()).or_insert_with(|| {
                RefOr::T(
                    problem_response("The body is over 1 MiB")
                        .header("X-Request-Id", request_id_header())
                        .build(),
                )
            });
            match responses.get_mut("400") {
                Some(RefOr::T(r)) => {
                    r.description = format!("{}; or {BAD_KEY_DETAIL}", r.description);
                }
                Some(RefOr::Ref(_)) => {}
                None => {
                    responses.insert(
                        "400".to_owned(),
                        RefOr::T(problem_response(BAD_KEY_DETAIL).build()),
                    );
                }
            }
        }

        for (status, response) in responses.iter_mut() {
            let RefOr::T(r) = response else { continue };
            for &(name, operation_id, params) in Self::links(path, method, status) {
                let mut link = LinkBuilder::new().operation_id(operation_id);
                for &(param, expression) in params {
                    link = link.parameter(param, expression);
                }
                r.links.insert(name.to_owned(), RefOr::T(link.build()));
            }
            r.headers
                .entry("X-Request-Id".to_owned())
                .or_insert_with(request_id_header);
            if status.starts_with('2') {
                if rate_limited {
                    for (name, h) in rate_limit_headers() {
                        r.headers.entry(name.to_owned()).or_insert(h);
                    }
                }
                if write {
                    r.headers
                        .entry("Idempotent-Replayed".to_owned())
                        .or_insert_with(|| {
                            header(
                                "`true` when this is the stored answer to an earlier request \
                                 with the same idempotency key",
                                string_schema().enum_values(Some(["true"])),
                            )
                        });
                }
            }
        }
    }

    /// OpenAPI links from an answer to the operations that take the ids it carries, so clients
    /// (and Schemathesis' stateful phase) can follow a created resource.
    #[allow(clippy::type_complexity)]
    fn links(
        path: &str,
        method: &HttpMethod,
        status: &str,
    ) -> &'static [(
        &'static str,
        &'static str,
        &'static [(&'static str, &'static str)],
    )] {
        const BY_WEBHOOK_ID: &[(&str, &str)] = &[("id", "$response.body#/id")];
        match (path, method, status) {
            ("/api/mobile/webhooks", HttpMethod::Post, "201") => &[
                ("DeleteWebhook", "deleteWebhook", BY_WEBHOOK_ID),
                ("RotateWebhookSecret", "rotateWebhookSecret", BY_WEBHOOK_ID),
                (
                    "ListWebhookDeliveries",
                    "listWebhookDeliveries",
                    BY_WEBHOOK_ID,
                ),
            ],
            ("/api/mobile/webhooks/{id}/deliveries", HttpMethod::Get, "200") => &[(
                "RedeliverWebhook",
                "redeliverWebhook",
                &[
                    ("id", "$request.path.id"),
                    ("delivery_id", "$response.body#/items/0/id"),
                ],
            )],
            ("/api/mobile/leads/hook", HttpMethod::Post, "200" | "201") => &[
                (
                    "GetCustomer",
                    "getCustomer",
                    &[("id", "$response.body#/customerId")],
                ),
                (
                    "GetLead",
                    "getLead",
                    &[("leadId", "$response.body#/leadId")],
                ),
            ],
            ("/api/mobile/lead-sources", HttpMethod::Post, "201") => &[
                ("GetLeadSource", "getLeadSource", BY_WEBHOOK_ID),
                ("UpdateLeadSource", "updateLeadSource", BY_WEBHOOK_ID),
                ("RotateLeadSource", "rotateLeadSource", BY_WEBHOOK_ID),
                ("DeleteLeadSource", "deleteLeadSource", BY_WEBHOOK_ID),
            ],
            ("/api/mobile/orders/sync", HttpMethod::Post, "200" | "201") => &[(
                "GetOrderStatus",
                "getOrderStatus",
                &[("id", "$response.body#/orderId")],
            )],
            _ => &[],
        }
    }

    /// Adds the idempotency answer `detail` to the route's own `status` response, or refers to
    /// the shared component when the route has none.
    fn merge(
        responses: &mut BTreeMap<String, RefOr<ApiResponse>>,
        status: &str,
        detail: &str,
        component: &str,
        retry_after: bool,
    ) {
        match responses.get_mut(status) {
            Some(RefOr::T(r)) => {
                r.description = format!("{}; or {detail}", r.description);
                if retry_after {
                    r.headers
                        .entry("Retry-After".to_owned())
                        .or_insert_with(|| {
                            retry_after_header("With `idempotency_key_in_use`: seconds to wait (1)")
                        });
                }
            }
            Some(RefOr::Ref(_)) => {}
            None => {
                responses.insert(
                    status.to_owned(),
                    RefOr::Ref(Ref::from_response_name(component)),
                );
            }
        }
    }
}

impl Modify for MobileConventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, response) in Self::response_components() {
            components
                .responses
                .insert(name.to_owned(), RefOr::T(response));
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            for (method, op) in [
                (HttpMethod::Get, &mut item.get),
                (HttpMethod::Put, &mut item.put),
                (HttpMethod::Post, &mut item.post),
                (HttpMethod::Delete, &mut item.delete),
                (HttpMethod::Patch, &mut item.patch),
            ] {
                if let Some(op) = op {
                    Self::apply(path, &method, op);
                }
            }
        }
    }
}

/// The OpenAPI 3.1 `webhooks` section: one entry per event type, each a POST the platform sends
/// to the subscriber's URL.
fn webhooks() -> BTreeMap<String, PathItem> {
    let signed = |name: &str, description: &str| {
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Header)
            .required(Required::True)
            .description(Some(description))
            .schema(Some(string_schema()))
            .build()
    };
    let mut out = BTreeMap::new();
    for (key, event, data, summary) in [
        (
            "orderCreated",
            EventType::OrderCreated,
            "OrderCreated",
            "An order first appeared (with its deposit)",
        ),
        (
            "orderStatusChanged",
            EventType::OrderStatusChanged,
            "OrderStatusChanged",
            "An order's fulfilment status changed",
        ),
        (
            "paymentReceived",
            EventType::PaymentReceived,
            "PaymentReceived",
            "A payment was recorded against an order",
        ),
    ] {
        let body = ObjectBuilder::new()
            .description(Some(format!(
                "A `WebhookEvent` whose `type` is `{event}` and whose `data` is `{data}`"
            )))
            .property(
                "id",
                string_schema().description(Some("The event id (`evt_…`)")),
            )
            .required("id")
            .property("type", string_schema().enum_values(Some([event.as_str()])))
            .required("type")
            .property(
                "createdAt",
                string_schema().format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                    utoipa::openapi::KnownFormat::DateTime,
                ))),
            )
            .required("createdAt")
            .property("data", Ref::from_schema_name(data))
            .required("data");
        let op = OperationBuilder::new()
            .operation_id(Some(format!("{key}Webhook")))
            .summary(Some(summary))
            .description(Some(
                "Sent to every enabled subscription to this event type, signed per Standard \
                 Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`: \
                 `v1,base64(HMAC-SHA256(secret, id.timestamp.body))`) and with the \
                 `X-L2C-Signature` / `X-L2C-Timestamp` / `X-L2C-Event` / `X-L2C-Delivery` headers. \
                 Verify with `l2c_client::webhook::verify` or any Standard Webhooks library; \
                 de-duplicate on the event `id`, which is the same on every attempt and redelivery.",
            ))
            .tag("webhooks")
            .parameters(Some([
                signed("webhook-id", "The event id (the same on every attempt)"),
                signed("webhook-timestamp", "Unix seconds when this attempt was signed"),
                signed(
                    "webhook-signature",
                    "Space-separated `v1,<base64>` signatures (two while a rotated secret's \
                     predecessor is still valid)",
                ),
                signed("X-L2C-Event", "The event type"),
                signed("X-L2C-Delivery", "The event id"),
            ]))
            .request_body(Some(
                RequestBodyBuilder::new()
                    .content(
                        "application/json",
                        ContentBuilder::new().schema(Some(body)).build(),
                    )
                    .required(Some(Required::True))
                    .build(),
            ))
            .response(
                "2XX",
                ResponseBuilder::new()
                    .description("Received: any 2xx acknowledges the delivery")
                    .build(),
            )
            .response(
                "410",
                ResponseBuilder::new()
                    .description("Gone: the subscription is disabled and not retried")
                    .build(),
            )
            .response(
                "default",
                ResponseBuilder::new()
                    .description(
                        "Anything else (or no answer within the timeout) is retried with \
                         exponential back-off",
                    )
                    .build(),
            )
            .build();
        out.insert(key.to_owned(), PathItem::new(HttpMethod::Post, op));
    }
    out
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
        super::webhooks::deliveries,
        super::webhooks::redeliver,
    ),
    components(schemas(
        ProblemDoc,
        WebhookEvent,
        EventData,
        EventType,
        OrderCreated,
        OrderStatusChanged,
        PaymentReceived,
    )),
    modifiers(&SecurityAddon, &MobileConventions),
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
        webhooks: webhooks(),
    };
    let s = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| String::from("{}"));
    // utoipa 5.5 serializes a Link Object's `operationId` as `operation_id` (its `Link` lacks
    // `rename_all = "camelCase"`); a JSON member name cannot occur unescaped inside a string, so
    // this only renames that member.
    let mut s = s.replace("\"operation_id\": ", "\"operationId\": ");
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

    #[test]
    fn webhook_routes_and_events_are_documented() {
        let v: serde_json::Value = serde_json::from_str(&document_json()).unwrap();
        for (path, method) in [
            ("/api/mobile/webhooks", "post"),
            ("/api/mobile/webhooks", "get"),
            ("/api/mobile/webhooks/{id}", "delete"),
            ("/api/mobile/webhooks/{id}/rotate-secret", "post"),
            ("/api/mobile/webhooks/{id}/deliveries", "get"),
            (
                "/api/mobile/webhooks/{id}/deliveries/{delivery_id}/redeliver",
                "post",
            ),
        ] {
            let op = &v["paths"][path][method];
            assert!(op.is_object(), "{method} {path} missing");
            assert_eq!(
                op["security"][0]["bearer"][0], "webhooks:manage",
                "{method} {path}"
            );
            assert!(op["responses"]["403"].is_object(), "{method} {path}");
        }
        for name in [
            "CreateWebhook",
            "CreatedWebhook",
            "WebhookList",
            "RotatedSecret",
            "DeliveryList",
            "Delivery",
            "WebhookEvent",
            "EventData",
            "OrderCreated",
            "OrderStatusChanged",
            "PaymentReceived",
        ] {
            assert!(
                v["components"]["schemas"][name].is_object(),
                "schema {name} missing"
            );
        }
        let link = &v["paths"]["/api/mobile/webhooks"]["post"]["responses"]["201"]["links"]["RotateWebhookSecret"];
        assert_eq!(link["operationId"], "rotateWebhookSecret", "{link}");
        assert_eq!(link["parameters"]["id"], "$response.body#/id", "{link}");
        for event in ["orderCreated", "orderStatusChanged", "paymentReceived"] {
            assert!(
                v["webhooks"][event]["post"]["requestBody"].is_object(),
                "webhook {event} missing"
            );
        }
    }

    /// Every write under `/api/mobile` declares both idempotency key headers and the
    /// idempotency answers; every response of every route declares `X-Request-Id`; 2xx answers
    /// declare the rate-limit headers and 429 sends `Retry-After`.
    #[test]
    fn writes_declare_idempotency_and_rate_limit_headers() {
        let v: serde_json::Value = serde_json::from_str(&document_json()).unwrap();
        let resolve = |r: &serde_json::Value| -> serde_json::Value {
            match r["$ref"].as_str() {
                Some(name) => {
                    let name = name.trim_start_matches("#/components/responses/");
                    v["components"]["responses"][name].clone()
                }
                None => r.clone(),
            }
        };
        let mut writes = 0;
        for (path, item) in v["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let responses = op["responses"].as_object().unwrap();
                for (status, r) in responses {
                    let r = resolve(r);
                    assert!(
                        r["headers"]["X-Request-Id"].is_object(),
                        "{method} {path} {status} lacks X-Request-Id"
                    );
                }
                if !path.starts_with("/api/mobile/") {
                    continue;
                }
                let too_many = resolve(&op["responses"]["429"]);
                assert!(too_many["headers"]["Retry-After"].is_object(), "{path}");
                let ok = responses
                    .iter()
                    .find(|(s, _)| s.starts_with('2'))
                    .map(|(_, r)| resolve(r))
                    .unwrap();
                assert!(ok["headers"]["RateLimit"].is_object(), "{method} {path}");
                assert!(ok["headers"]["RateLimit-Policy"].is_object(), "{path}");
                if method == "post" || method == "put" {
                    writes += 1;
                    let names: Vec<&str> = op["parameters"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|p| p["in"] == "header")
                        .map(|p| p["name"].as_str().unwrap())
                        .collect();
                    assert!(names.contains(&"X-Request-Id"), "{path}: {names:?}");
                    assert!(names.contains(&"Idempotency-Key"), "{path}: {names:?}");
                    let conflict = resolve(&op["responses"]["409"]);
                    assert!(
                        conflict["description"]
                            .as_str()
                            .unwrap()
                            .contains("idempotency_key_in_use"),
                        "{path}"
                    );
                    let reused = resolve(&op["responses"]["422"]);
                    assert!(
                        reused["description"]
                            .as_str()
                            .unwrap()
                            .contains("idempotency_key_reused"),
                        "{path}"
                    );
                }
            }
        }
        // leads, orders, create webhook, rotate secret, redeliver, create / update / rotate
        // lead source
        assert_eq!(writes, 8);
    }
}
