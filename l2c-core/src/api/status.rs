//! An order's two status fields: fulfilment ([`OrderStatus`]) and payment ([`PaymentStatus`]).
//!
//! They are independent (an order can be 已付全款 and 正在排产 at once). On the wire both are
//! SCREAMING_SNAKE_CASE strings; [`label`](OrderStatus::label) gives the Chinese label shown next
//! to them (`statusLabel`, `paymentStatusLabel`). The transition rules live with the endpoints,
//! not here.
//!
//! ```
//! use l2c_core::api::status::{OrderStatus, PaymentStatus};
//!
//! let s: OrderStatus = serde_json::from_str(r#""SCHEDULING""#).unwrap();
//! assert_eq!(s, OrderStatus::Scheduling);
//! assert_eq!(s.label(), "正在排产");
//! assert_eq!(s.as_str(), "SCHEDULING");
//! assert_eq!("FULLY_PAID".parse::<PaymentStatus>().unwrap().label(), "已付全款");
//! assert!(serde_json::from_str::<OrderStatus>(r#""SHIPPING""#).is_err());
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An unknown status name (the message names the accepted values).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{value}`; expected one of: {expected}")]
pub struct UnknownStatus {
    kind: &'static str,
    value: String,
    expected: String,
}

macro_rules! status_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $kind:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $wire:literal, $label:literal; )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum $name {
            $( $(#[$vmeta])* #[doc = concat!("`", $wire, "` ", $label)] $variant, )+
        }

        impl $name {
            /// Every value, in the order of the normal flow.
            pub const ALL: &'static [Self] = &[ $( Self::$variant, )+ ];

            /// The wire name (`SCREAMING_SNAKE_CASE`).
            pub const fn as_str(self) -> &'static str {
                match self { $( Self::$variant => $wire, )+ }
            }

            /// The Chinese label shown to people.
            pub const fn label(self) -> &'static str {
                match self { $( Self::$variant => $label, )+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownStatus;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $( $wire => Ok(Self::$variant), )+
                    _ => Err(UnknownStatus {
                        kind: $kind,
                        value: s.chars().take(64).collect(),
                        expected: [$( $wire ),+].join(", "),
                    }),
                }
            }
        }
    };
}

status_enum! {
    /// An order's fulfilment status (DESIGN.md "Domain conventions").
    OrderStatus, "order status" {
        DepositPaid = "DEPOSIT_PAID", "已下定金";
        MeasurePending = "MEASURE_PENDING", "待量尺";
        Measured = "MEASURED", "已量尺";
        Designing = "DESIGNING", "设计中";
        DesignConfirmed = "DESIGN_CONFIRMED", "方案已确认";
        ProductionPending = "PRODUCTION_PENDING", "待排产";
        Scheduling = "SCHEDULING", "正在排产";
        InProduction = "IN_PRODUCTION", "生产中";
        ReadyToShip = "READY_TO_SHIP", "待发货";
        Shipped = "SHIPPED", "已发货";
        InstallPending = "INSTALL_PENDING", "待安装";
        Installing = "INSTALLING", "安装中";
        Installed = "INSTALLED", "已安装";
        Completed = "COMPLETED", "已完工";
        Cancelled = "CANCELLED", "已取消";
        AfterSales = "AFTER_SALES", "售后中";
    }
}

status_enum! {
    /// An order's payment status (DESIGN.md "Domain conventions").
    PaymentStatus, "payment status" {
        Unpaid = "UNPAID", "未付款";
        DepositPaid = "DEPOSIT_PAID", "已付定金";
        PartiallyPaid = "PARTIALLY_PAID", "部分付款";
        FullyPaid = "FULLY_PAID", "已付全款";
        Refunding = "REFUNDING", "退款中";
        Refunded = "REFUNDED", "已退款";
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_match_serde_and_round_trip() {
        for s in OrderStatus::ALL {
            let json = serde_json::to_string(s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            assert_eq!(s.as_str().parse::<OrderStatus>().unwrap(), *s);
            assert_eq!(serde_json::from_str::<OrderStatus>(&json).unwrap(), *s);
        }
        for s in PaymentStatus::ALL {
            let json = serde_json::to_string(s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            assert_eq!(s.as_str().parse::<PaymentStatus>().unwrap(), *s);
        }
        assert_eq!(OrderStatus::ALL.len(), 16);
        assert_eq!(PaymentStatus::ALL.len(), 6);
    }

    #[test]
    fn labels_follow_design_md() {
        assert_eq!(OrderStatus::DepositPaid.label(), "已下定金");
        assert_eq!(OrderStatus::Scheduling.label(), "正在排产");
        assert_eq!(OrderStatus::Completed.label(), "已完工");
        assert_eq!(PaymentStatus::DepositPaid.label(), "已付定金");
        assert_eq!(PaymentStatus::FullyPaid.label(), "已付全款");
    }

    #[test]
    fn unknown_names_are_rejected_with_the_accepted_list() {
        let err = "scheduling".parse::<OrderStatus>().unwrap_err().to_string();
        assert!(err.contains("unknown order status `scheduling`"), "{err}");
        assert!(err.contains("SCHEDULING"), "{err}");
        assert!(serde_json::from_str::<PaymentStatus>(r#""PAID""#).is_err());
    }
}
