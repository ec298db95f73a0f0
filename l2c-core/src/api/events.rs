//! Webhook events (spec §5): the envelope `{id, type, createdAt, data}` and the typed `data` of
//! each event type.
//!
//! The `type` member selects the shape of `data`, so the two are one Rust value,
//! [`EventData`], and can never disagree. Payloads carry ids, statuses and amounts only — never a
//! name, mobile number or address (fetch the masked customer view if you need one).
//!
//! ```
//! use chrono::DateTime;
//! use l2c_core::api::events::{EventData, EventType, OrderAmounts, OrderCreated, WebhookEvent};
//! use l2c_core::api::status::{OrderStatus, PaymentStatus};
//!
//! let event = WebhookEvent::new(
//!     "evt_1",
//!     DateTime::parse_from_rfc3339("2026-11-26T09:30:00+08:00").unwrap(),
//!     EventData::OrderCreated(OrderCreated::new(
//!         "ord_1",
//!         "ERP-2026-0001",
//!         OrderStatus::DepositPaid,
//!         PaymentStatus::DepositPaid,
//!         OrderAmounts::cny(1_990_000, 200_000, 200_000),
//!         "cus_1",
//!         1,
//!     )),
//! );
//! let json = serde_json::to_value(&event).unwrap();
//! assert_eq!(json["type"], "ORDER_CREATED");
//! assert_eq!(json["data"]["statusLabel"], "已下定金");
//! assert_eq!(json["data"]["amounts"]["total"], 1_990_000);
//!
//! let back: WebhookEvent = serde_json::from_value(json).unwrap();
//! assert_eq!(back.event_type(), EventType::OrderCreated);
//! assert_eq!(back, event);
//! ```

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use crate::api::status::{OrderStatus, PaymentStatus};

/// The kinds of event: the three a subscription can ask for ([`EventType::SUBSCRIBABLE`]) and
/// `PING`, the test event sent only on request (`POST /webhooks/{id}/test`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventType {
    /// `ORDER_CREATED`: an order first appeared, with its deposit.
    OrderCreated,
    /// `ORDER_STATUS_CHANGED`: an order's fulfilment status changed.
    OrderStatusChanged,
    /// `PAYMENT_RECEIVED`: a payment was recorded against an order.
    PaymentReceived,
    /// `PING`: a test event, sent to one subscription when its owner asks for it (API or
    /// console). No business action produces it and no subscription can ask for it.
    Ping,
}

impl EventType {
    /// Every event type, `PING` last.
    pub const ALL: &'static [Self] = &[
        Self::OrderCreated,
        Self::OrderStatusChanged,
        Self::PaymentReceived,
        Self::Ping,
    ];

    /// The types a subscription can ask for: every type but `PING`.
    pub const SUBSCRIBABLE: &'static [Self] = &[
        Self::OrderCreated,
        Self::OrderStatusChanged,
        Self::PaymentReceived,
    ];

    /// Whether a subscription can ask for this type (all but `PING`).
    pub const fn is_subscribable(self) -> bool {
        !matches!(self, Self::Ping)
    }

    /// The wire name (`ORDER_CREATED`, …), also sent as `X-L2C-Event`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::OrderCreated => "ORDER_CREATED",
            Self::OrderStatusChanged => "ORDER_STATUS_CHANGED",
            Self::PaymentReceived => "PAYMENT_RECEIVED",
            Self::Ping => "PING",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown event type name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown event type `{0}`; expected one of: ORDER_CREATED, ORDER_STATUS_CHANGED, PAYMENT_RECEIVED, PING"
)]
pub struct UnknownEventType(String);

impl FromStr for EventType {
    type Err = UnknownEventType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownEventType(s.chars().take(64).collect()))
    }
}

/// One webhook event: `{id, type, createdAt, data}`.
///
/// `id` is unique per event and stays the same across delivery attempts (it is also sent as
/// `X-L2C-Delivery` and `webhook-id`); receivers de-duplicate on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct WebhookEvent {
    /// The event id (`evt_…`); never contains `.`.
    pub id: String,
    /// When the event happened (RFC 3339 with offset).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime, example = "2026-11-26T09:30:00+08:00"))]
    pub created_at: DateTime<FixedOffset>,
    /// `type` and `data`.
    #[serde(flatten)]
    pub payload: EventData,
}

impl WebhookEvent {
    /// An event with the given id, time and payload.
    pub fn new(
        id: impl Into<String>,
        created_at: DateTime<FixedOffset>,
        payload: EventData,
    ) -> Self {
        Self {
            id: id.into(),
            created_at,
            payload,
        }
    }

    /// A fresh event id: `evt_` and 32 lowercase hex digits of a random UUID.
    pub fn new_id() -> String {
        format!("evt_{}", uuid::Uuid::new_v4().simple())
    }

    /// The event's type.
    pub fn event_type(&self) -> EventType {
        self.payload.event_type()
    }
}

/// The `type` of an event together with its `data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", content = "data", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventData {
    /// `ORDER_CREATED`.
    OrderCreated(OrderCreated),
    /// `ORDER_STATUS_CHANGED`.
    OrderStatusChanged(OrderStatusChanged),
    /// `PAYMENT_RECEIVED`.
    PaymentReceived(PaymentReceived),
    /// `PING`: the test event.
    Ping(Ping),
}

impl EventData {
    /// The event type this payload belongs to.
    pub fn event_type(&self) -> EventType {
        match self {
            Self::OrderCreated(_) => EventType::OrderCreated,
            Self::OrderStatusChanged(_) => EventType::OrderStatusChanged,
            Self::PaymentReceived(_) => EventType::PaymentReceived,
            Self::Ping(_) => EventType::Ping,
        }
    }
}

/// An order's amounts, in integer fen: the same type the order sync takes, so an event and the
/// order it describes cannot disagree on shape (or collide in the OpenAPI document).
pub use super::orders::OrderAmounts;

/// `data` of `ORDER_CREATED`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct OrderCreated {
    /// The L2C order id.
    pub order_id: String,
    /// The ERP's order number.
    pub external_order_no: String,
    /// Fulfilment status.
    pub status: OrderStatus,
    /// Chinese label of `status`.
    pub status_label: String,
    /// Payment status.
    pub payment_status: PaymentStatus,
    /// Chinese label of `paymentStatus`.
    pub payment_status_label: String,
    /// Amounts in fen.
    pub amounts: OrderAmounts,
    /// The L2C customer id (no personal data).
    pub customer_id: String,
    /// The order's version after this change.
    pub version: u64,
}

impl OrderCreated {
    /// The payload, with both labels filled in from the statuses.
    pub fn new(
        order_id: impl Into<String>,
        external_order_no: impl Into<String>,
        status: OrderStatus,
        payment_status: PaymentStatus,
        amounts: OrderAmounts,
        customer_id: impl Into<String>,
        version: u64,
    ) -> Self {
        Self {
            order_id: order_id.into(),
            external_order_no: external_order_no.into(),
            status,
            status_label: status.label().to_owned(),
            payment_status,
            payment_status_label: payment_status.label().to_owned(),
            amounts,
            customer_id: customer_id.into(),
            version,
        }
    }
}

/// `data` of `ORDER_STATUS_CHANGED`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct OrderStatusChanged {
    /// The L2C order id.
    pub order_id: String,
    /// The ERP's order number.
    pub external_order_no: String,
    /// The status before the change.
    pub from_status: OrderStatus,
    /// Chinese label of `fromStatus`.
    pub from_status_label: String,
    /// The status after the change.
    pub to_status: OrderStatus,
    /// Chinese label of `toStatus`.
    pub to_status_label: String,
    /// Payment status after the change.
    pub payment_status: PaymentStatus,
    /// Chinese label of `paymentStatus`.
    pub payment_status_label: String,
    /// The order's version after this change; order events by it, not by arrival.
    pub version: u64,
    /// When the change was applied.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub changed_at: DateTime<FixedOffset>,
}

impl OrderStatusChanged {
    /// The payload, with the labels filled in from the statuses.
    pub fn new(
        order_id: impl Into<String>,
        external_order_no: impl Into<String>,
        from: OrderStatus,
        to: OrderStatus,
        payment_status: PaymentStatus,
        version: u64,
        changed_at: DateTime<FixedOffset>,
    ) -> Self {
        Self {
            order_id: order_id.into(),
            external_order_no: external_order_no.into(),
            from_status: from,
            from_status_label: from.label().to_owned(),
            to_status: to,
            to_status_label: to.label().to_owned(),
            payment_status,
            payment_status_label: payment_status.label().to_owned(),
            version,
            changed_at,
        }
    }
}

/// `data` of `PAYMENT_RECEIVED`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PaymentReceived {
    /// The L2C order id.
    pub order_id: String,
    /// The ERP's order number.
    pub external_order_no: String,
    /// The L2C payment id.
    pub payment_id: String,
    /// What the payment is for, as the order sync sent it (e.g. `DEPOSIT`, `FINAL`).
    pub kind: String,
    /// How it was paid, as the order sync sent it (e.g. `WECHAT_PAY`, `BANK_TRANSFER`).
    pub method: String,
    /// Amount in fen.
    pub amount: i64,
    /// ISO 4217 currency code (`CNY`).
    pub currency: String,
    /// The payment channel's transaction id.
    pub channel_transaction_id: String,
    /// When it was paid.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub paid_at: DateTime<FixedOffset>,
}

/// `data` of `PING`, the test event a subscription's owner asks for (`POST
/// /api/mobile/webhooks/{id}/test` or the console's 发送测试事件). It is signed, recorded and
/// retried like any other event; a receiver answers it with any 2xx and otherwise ignores it.
///
/// ```
/// use l2c_core::api::events::Ping;
///
/// let v = serde_json::to_value(Ping::new("wh_1", "l2c_1")).unwrap();
/// assert_eq!(v["webhookId"], "wh_1");
/// assert_eq!(v["clientId"], "l2c_1");
/// assert!(v["note"].as_str().unwrap().contains("PING"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Ping {
    /// The subscription it was sent to (`wh_…`).
    pub webhook_id: String,
    /// The client (app) that owns the subscription.
    pub client_id: String,
    /// A human note: this is a test.
    pub note: String,
}

impl Ping {
    /// The note every test event carries.
    pub const NOTE: &'static str =
        "PING: a test event sent on request from the L2C console or API; no order changed.";

    /// A test event for subscription `webhook_id` of `client_id`.
    pub fn new(webhook_id: impl Into<String>, client_id: impl Into<String>) -> Self {
        Self {
            webhook_id: webhook_id.into(),
            client_id: client_id.into(),
            note: Self::NOTE.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    #[test]
    fn status_changed_wire_shape() {
        let e = WebhookEvent::new(
            "evt_2",
            t("2026-11-26T10:00:00+08:00"),
            EventData::OrderStatusChanged(OrderStatusChanged::new(
                "ord_1",
                "ERP-1",
                OrderStatus::ProductionPending,
                OrderStatus::Scheduling,
                PaymentStatus::FullyPaid,
                7,
                t("2026-11-26T09:59:58+08:00"),
            )),
        );
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v,
            json!({
                "id": "evt_2",
                "createdAt": "2026-11-26T10:00:00+08:00",
                "type": "ORDER_STATUS_CHANGED",
                "data": {
                    "orderId": "ord_1",
                    "externalOrderNo": "ERP-1",
                    "fromStatus": "PRODUCTION_PENDING",
                    "fromStatusLabel": "待排产",
                    "toStatus": "SCHEDULING",
                    "toStatusLabel": "正在排产",
                    "paymentStatus": "FULLY_PAID",
                    "paymentStatusLabel": "已付全款",
                    "version": 7,
                    "changedAt": "2026-11-26T09:59:58+08:00"
                }
            })
        );
    }

    #[test]
    fn payment_received_round_trips() {
        let v = json!({
            "id": "evt_3", "type": "PAYMENT_RECEIVED", "createdAt": "2026-11-26T10:00:00+08:00",
            "data": {
                "orderId": "ord_1", "externalOrderNo": "ERP-1", "paymentId": "pay_1",
                "kind": "FINAL", "method": "BANK_TRANSFER", "amount": 1_790_000, "currency": "CNY",
                "channelTransactionId": "tx-9", "paidAt": "2026-11-26T09:00:00+08:00"
            }
        });
        let e: WebhookEvent = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(e.event_type(), EventType::PaymentReceived);
        assert_eq!(serde_json::to_value(&e).unwrap(), v);
    }

    #[test]
    fn type_and_data_must_agree_and_unknown_types_fail() {
        let mismatched = json!({
            "id": "evt_4", "type": "PAYMENT_RECEIVED", "createdAt": "2026-11-26T10:00:00+08:00",
            "data": {"orderId": "ord_1"}
        });
        assert!(serde_json::from_value::<WebhookEvent>(mismatched).is_err());
        let unknown = json!({
            "id": "evt_5", "type": "ORDER_DELETED", "createdAt": "2026-11-26T10:00:00+08:00",
            "data": {}
        });
        assert!(serde_json::from_value::<WebhookEvent>(unknown).is_err());
        assert_eq!(
            "ORDER_CREATED".parse::<EventType>().unwrap(),
            EventType::OrderCreated
        );
        assert!("order_created".parse::<EventType>().is_err());
    }

    #[test]
    fn ping_is_a_type_but_not_subscribable() {
        assert_eq!("PING".parse::<EventType>().unwrap(), EventType::Ping);
        assert!(!EventType::Ping.is_subscribable());
        assert!(!EventType::SUBSCRIBABLE.contains(&EventType::Ping));
        assert!(EventType::SUBSCRIBABLE.iter().all(|t| t.is_subscribable()));
        let e = WebhookEvent::new(
            "evt_6",
            t("2026-11-26T10:00:00+08:00"),
            EventData::Ping(Ping::new("wh_1", "l2c_1")),
        );
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["type"], "PING");
        assert_eq!(v["data"]["webhookId"], "wh_1");
        let back: WebhookEvent = serde_json::from_value(v).unwrap();
        assert_eq!(back.event_type(), EventType::Ping);
    }

    #[test]
    fn new_ids_have_no_dots() {
        let id = WebhookEvent::new_id();
        assert!(id.starts_with("evt_") && id.len() == 36 && !id.contains('.'));
    }
}
