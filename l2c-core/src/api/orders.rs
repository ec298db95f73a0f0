//! `POST /api/mobile/orders/sync` and `GET /api/mobile/orders/:id/status`.
//!
//! An ERP pushes the whole current state of an order, keyed by its `externalOrderNo`, with a
//! `version` that grows with every change. The platform validates the fulfilment transition,
//! ignores stale versions (`applied: false`), and records each payment of the body once
//! (unique by `method` + `channelTransactionId`). Money is integer fen (`199000` = ¥1,990.00).
//!
//! ```
//! use l2c_core::api::orders::SyncOrder;
//! use l2c_core::api::status::{OrderStatus, PaymentStatus};
//!
//! let order: SyncOrder = serde_json::from_str(r#"{
//!     "externalOrderNo": "ERP-2026-0001",
//!     "status": "DEPOSIT_PAID",
//!     "paymentStatus": "DEPOSIT_PAID",
//!     "amounts": {"total": 3980000, "deposit": 500000, "paid": 500000, "currency": "CNY"},
//!     "customer": {"name": "张三", "mobile": "13800138000"},
//!     "version": 1,
//!     "payments": [{"kind": "DEPOSIT", "method": "WECHAT_PAY", "amount": 500000,
//!                   "channelTransactionId": "4200001234", "paidAt": "2026-11-20T10:15:00+08:00"}]
//! }"#).unwrap();
//! assert_eq!(order.status, OrderStatus::DepositPaid);
//! assert_eq!(order.payment_status, PaymentStatus::DepositPaid);
//! assert_eq!(order.amounts.currency, "CNY");
//! ```

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use super::ids::{CustomerId, OrderId};
use super::status::{OrderStatus, PaymentStatus};

fn cny() -> String {
    "CNY".to_owned()
}

/// The money of an order, in integer fen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct OrderAmounts {
    /// The contract total in fen.
    #[cfg_attr(feature = "openapi", schema(example = 3980000, minimum = 0))]
    pub total: i64,
    /// The deposit in fen.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(example = 500000, minimum = 0))]
    pub deposit: i64,
    /// What has been paid so far, in fen.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(example = 500000, minimum = 0))]
    pub paid: i64,
    /// ISO 4217 code; only `CNY` is accepted today.
    #[serde(default = "cny")]
    #[cfg_attr(feature = "openapi", schema(pattern = "^CNY$", example = "CNY"))]
    pub currency: String,
}

impl OrderAmounts {
    /// Amounts in CNY.
    pub fn cny(total: i64, deposit: i64, paid: i64) -> Self {
        Self {
            total,
            deposit,
            paid,
            currency: cny(),
        }
    }
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct OrderItem {
    /// The ERP's SKU, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*$",
            max_length = 64
        )
    )]
    pub sku: Option<String>,
    /// What it is, e.g. `主卧衣柜`.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*[^\\s\\u0000-\\u001F][^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*$",
            min_length = 1,
            max_length = 128,
            example = "主卧衣柜（2.4m 三门）"
        )
    )]
    pub name: String,
    /// How many.
    #[cfg_attr(feature = "openapi", schema(example = 1, minimum = 1))]
    pub quantity: u32,
    /// Price per unit in fen.
    #[cfg_attr(feature = "openapi", schema(example = 1299900, minimum = 0))]
    pub unit_price: i64,
}

impl OrderItem {
    /// An item without SKU.
    pub fn new(name: impl Into<String>, quantity: u32, unit_price: i64) -> Self {
        Self {
            sku: None,
            name: name.into(),
            quantity,
            unit_price,
        }
    }
}

/// A dated step of the fulfilment plan (measurement appointment, installation date, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Milestone {
    /// What the step is, e.g. `MEASURE`, `INSTALL`.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*[^\\s\\u0000-\\u001F][^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*$",
            min_length = 1,
            max_length = 64,
            example = "MEASURE"
        )
    )]
    pub name: String,
    /// When it is planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub planned_at: Option<DateTime<FixedOffset>>,
    /// When it was done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub completed_at: Option<DateTime<FixedOffset>>,
}

impl Milestone {
    /// A milestone with no dates.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            planned_at: None,
            completed_at: None,
        }
    }
}

/// The customer of an order given by contact details; linked by mobile number or created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct OrderCustomer {
    /// The name.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*[^\\s\\u0000-\\u001F][^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*$",
            min_length = 1,
            max_length = 64,
            example = "张三"
        )
    )]
    pub name: String,
    /// Mainland mobile number (normalized like a lead's).
    #[cfg_attr(
        feature = "openapi",
        schema(
            example = "13800138000",
            pattern = r"^[ -]*(\+[ -]*8[ -]*6|0[ -]*0[ -]*8[ -]*6)?[ -]*1[ -]*[3-9]([ -]*[0-9]){9}[ -]*$"
        )
    )]
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = "^[ -]*(\\+[ -]*8[ -]*6|0[ -]*0[ -]*8[ -]*6)?[ -]*1[ -]*[3-9]([ -]*[0-9]){9}[ -]*$"
        )
    )]
    pub mobile: String,
}

impl OrderCustomer {
    /// A customer reference.
    pub fn new(name: impl Into<String>, mobile: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            mobile: mobile.into(),
        }
    }
}

/// What a payment was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum PaymentKind {
    /// 定金.
    Deposit,
    /// 进度款.
    Progress,
    /// 尾款.
    Final,
    /// A refund (the amount is still positive).
    Refund,
}

impl PaymentKind {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            PaymentKind::Deposit => "DEPOSIT",
            PaymentKind::Progress => "PROGRESS",
            PaymentKind::Final => "FINAL",
            PaymentKind::Refund => "REFUND",
        }
    }
}

/// How a payment was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum PaymentMethod {
    /// 微信支付.
    WechatPay,
    /// 支付宝.
    Alipay,
    /// 银行转账.
    BankTransfer,
    /// POS 刷卡.
    Pos,
    /// 现金.
    Cash,
    /// Anything else.
    Other,
}

impl PaymentMethod {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            PaymentMethod::WechatPay => "WECHAT_PAY",
            PaymentMethod::Alipay => "ALIPAY",
            PaymentMethod::BankTransfer => "BANK_TRANSFER",
            PaymentMethod::Pos => "POS",
            PaymentMethod::Cash => "CASH",
            PaymentMethod::Other => "OTHER",
        }
    }
}

/// A payment carried in a sync; recorded once per `(method, channelTransactionId)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Payment {
    /// What it was for.
    pub kind: PaymentKind,
    /// How it was paid.
    pub method: PaymentMethod,
    /// The amount in fen (positive, refunds too).
    #[cfg_attr(feature = "openapi", schema(example = 500000, minimum = 1))]
    pub amount: i64,
    /// The payment channel's transaction id.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*[^\\s\\u0000-\\u001F][^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*$",
            min_length = 1,
            max_length = 128,
            example = "4200001234202611201234567890"
        )
    )]
    pub channel_transaction_id: String,
    /// When it was paid.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime, example = "2026-11-20T10:15:00+08:00"))]
    pub paid_at: DateTime<FixedOffset>,
}

impl Payment {
    /// A payment.
    pub fn new(
        kind: PaymentKind,
        method: PaymentMethod,
        amount: i64,
        channel_transaction_id: impl Into<String>,
        paid_at: DateTime<FixedOffset>,
    ) -> Self {
        Self {
            kind,
            method,
            amount,
            channel_transaction_id: channel_transaction_id.into(),
            paid_at,
        }
    }
}

/// The body of `POST /api/mobile/orders/sync`.
///
/// Exactly one of `customerId` and `customer` is required when the order is new; afterwards the
/// customer may be left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SyncOrder {
    /// The ERP's order number, the key of the upsert (1–64 characters).
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*[^\\s\\u0000-\\u001F][^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*$",
            min_length = 1,
            max_length = 64,
            example = "ERP-2026-0001"
        )
    )]
    pub external_order_no: String,
    /// The fulfilment status.
    pub status: OrderStatus,
    /// The payment status.
    pub payment_status: PaymentStatus,
    /// The money.
    pub amounts: OrderAmounts,
    /// The order lines.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 200))]
    pub items: Vec<OrderItem>,
    /// The dated steps.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 50))]
    pub milestones: Vec<Milestone>,
    /// An existing customer of the platform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<CustomerId>,
    /// The customer by contact details (linked by mobile or created).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<OrderCustomer>,
    /// Grows with every change in the ERP; a sync with a version not above the stored one is
    /// acknowledged but not applied.
    #[cfg_attr(feature = "openapi", schema(example = 1, minimum = 1))]
    pub version: i64,
    /// Payments to record.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 100))]
    pub payments: Vec<Payment>,
}

impl SyncOrder {
    /// A sync with no items, milestones, customer or payments.
    pub fn new(
        external_order_no: impl Into<String>,
        status: OrderStatus,
        payment_status: PaymentStatus,
        amounts: OrderAmounts,
        version: i64,
    ) -> Self {
        Self {
            external_order_no: external_order_no.into(),
            status,
            payment_status,
            amounts,
            items: Vec::new(),
            milestones: Vec::new(),
            customer_id: None,
            customer: None,
            version,
            payments: Vec::new(),
        }
    }
}

/// The answer to `POST /api/mobile/orders/sync`: 201 when the order was created, else 200.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SyncOrderResponse {
    /// The platform's id of the order.
    pub order_id: OrderId,
    /// The ERP's order number.
    pub external_order_no: String,
    /// Whether the sync changed the order (false for a stale or repeated version).
    pub applied: bool,
    /// Whether the sync created the order.
    pub created: bool,
    /// The order's status after the sync.
    pub status: OrderStatus,
    /// The order's payment status after the sync.
    pub payment_status: PaymentStatus,
    /// The stored version after the sync.
    pub version: i64,
    /// How many payments of the body were new and recorded.
    pub payments_recorded: u32,
}

impl SyncOrderResponse {
    /// A response.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        order_id: OrderId,
        external_order_no: impl Into<String>,
        applied: bool,
        created: bool,
        status: OrderStatus,
        payment_status: PaymentStatus,
        version: i64,
        payments_recorded: u32,
    ) -> Self {
        Self {
            order_id,
            external_order_no: external_order_no.into(),
            applied,
            created,
            status,
            payment_status,
            version,
            payments_recorded,
        }
    }
}

/// One applied change in an order's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct OrderHistoryEntry {
    /// The fulfilment status from then on.
    pub status: OrderStatus,
    /// Its Chinese label.
    #[cfg_attr(feature = "openapi", schema(example = "正在排产"))]
    pub status_label: String,
    /// The payment status from then on.
    pub payment_status: PaymentStatus,
    /// Its Chinese label.
    #[cfg_attr(feature = "openapi", schema(example = "已付全款"))]
    pub payment_status_label: String,
    /// The ERP version that made the change.
    pub version: i64,
    /// When the platform applied it.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub changed_at: DateTime<FixedOffset>,
}

impl OrderHistoryEntry {
    /// An entry; the labels come from the statuses.
    pub fn new(
        status: OrderStatus,
        payment_status: PaymentStatus,
        version: i64,
        changed_at: DateTime<FixedOffset>,
    ) -> Self {
        Self {
            status,
            status_label: status.label().to_owned(),
            payment_status,
            payment_status_label: payment_status.label().to_owned(),
            version,
            changed_at,
        }
    }
}

/// The answer to `GET /api/mobile/orders/:id/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct OrderStatusView {
    /// The platform's id of the order.
    pub order_id: OrderId,
    /// The ERP's order number.
    pub external_order_no: String,
    /// The fulfilment status.
    pub status: OrderStatus,
    /// Its Chinese label, e.g. `正在排产`.
    #[cfg_attr(feature = "openapi", schema(example = "正在排产"))]
    pub status_label: String,
    /// The payment status.
    pub payment_status: PaymentStatus,
    /// Its Chinese label, e.g. `已付全款`.
    #[cfg_attr(feature = "openapi", schema(example = "已付全款"))]
    pub payment_status_label: String,
    /// The money.
    pub amounts: OrderAmounts,
    /// The stored version.
    pub version: i64,
    /// When the order last changed.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: DateTime<FixedOffset>,
    /// The applied changes, oldest first.
    pub history: Vec<OrderHistoryEntry>,
}

impl OrderStatusView {
    /// A view with an empty history; the labels come from the statuses.
    pub fn new(
        order_id: OrderId,
        external_order_no: impl Into<String>,
        status: OrderStatus,
        payment_status: PaymentStatus,
        amounts: OrderAmounts,
        version: i64,
        updated_at: DateTime<FixedOffset>,
    ) -> Self {
        Self {
            order_id,
            external_order_no: external_order_no.into(),
            status,
            status_label: status.label().to_owned(),
            payment_status,
            payment_status_label: payment_status.label().to_owned(),
            amounts,
            version,
            updated_at,
            history: Vec::new(),
        }
    }
}
