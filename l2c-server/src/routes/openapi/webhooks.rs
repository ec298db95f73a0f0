//! The OpenAPI 3.1 `webhooks` section: the requests the platform sends to subscribers. utoipa 5
//! has no field for it, so [`super::Document`] adds it beside the derived document.

use std::collections::BTreeMap;

use l2c_core::api::events::EventType;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::ObjectBuilder;
use utoipa::openapi::{ContentBuilder, Ref, Required};

use super::responses::string_schema;

/// The OpenAPI 3.1 `webhooks` section: one entry per event type, each a POST the platform sends
/// to the subscriber's URL.
pub(super) fn webhooks() -> BTreeMap<String, PathItem> {
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
        (
            "ping",
            EventType::Ping,
            "Ping",
            "A test event, sent to one subscription when its owner asks for it",
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
                "Sent to every enabled subscription to this event type (`PING`: to the one \
                 subscription a test was requested for, `POST /api/mobile/webhooks/{id}/test`), signed per Standard \
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
