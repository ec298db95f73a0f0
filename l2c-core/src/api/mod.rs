//! The open platform's wire types, shared by the server and the SDK so the two cannot drift.
//!
//! JSON fields are camelCase (the spec's `pageSize`), except the OAuth token exchange in
//! [`oauth`], which keeps RFC 6749's snake_case. Money is integer fen, times are RFC 3339 with
//! an offset, and enums travel as `SCREAMING_SNAKE_CASE` strings.
//!
//! | module | endpoint |
//! |---|---|
//! | [`leads`] | `POST /api/mobile/leads/hook`, `GET /api/mobile/leads`, `GET /api/mobile/leads/:id` |
//! | [`lead_sources`] | `/api/mobile/lead-sources` (the ad platforms' push URLs) |
//! | [`customers`] | `GET /api/mobile/customers/:id` |
//! | [`orders`] | `POST /api/mobile/orders/sync`, `GET /api/mobile/orders/:id/status` |
//! | [`showroom`] | `GET /api/mobile/showroom/items` |
//! | [`status`] | the order's fulfilment and payment status enums |
//! | [`events`] | webhook event envelope and payloads |
//! | [`webhooks`] | `/api/mobile/webhooks` subscriptions and their deliveries |

pub mod customers;
pub mod events;
pub mod ids;
pub mod lead_sources;
pub mod leads;
pub mod oauth;
pub mod orders;
pub mod showroom;
pub mod status;
pub mod webhooks;

pub use ids::{CustomerId, DeliveryId, LeadId, OrderId, ShowroomItemId, WebhookId};

#[cfg(test)]
mod tests {
    use super::leads::{LeadSource, PushLead};
    use super::orders::{OrderAmounts, SyncOrder};
    use super::showroom::{Page, ShowroomQuery};
    use super::status::{OrderStatus, PaymentStatus};

    #[test]
    fn fields_are_camel_case_and_enums_screaming_snake_case() {
        let order = SyncOrder::new(
            "ERP-1",
            OrderStatus::DepositPaid,
            PaymentStatus::DepositPaid,
            OrderAmounts::cny(100, 10, 10),
            1,
        );
        let v = serde_json::to_value(&order).unwrap();
        assert_eq!(v["externalOrderNo"], "ERP-1");
        assert_eq!(v["paymentStatus"], "DEPOSIT_PAID");
        assert_eq!(v["amounts"]["currency"], "CNY");
        let page = serde_json::to_value(Page::new(vec![1, 2], 1, 2, 5)).unwrap();
        assert_eq!(page["pageSize"], 2);
        let q = serde_urlencoded_like(&ShowroomQuery::new().page_size(5));
        assert_eq!(q["pageSize"], 5);
    }

    fn serde_urlencoded_like(q: &ShowroomQuery) -> serde_json::Value {
        serde_json::to_value(q).unwrap()
    }

    #[test]
    fn attribution_must_be_an_object() {
        let ok: super::leads::Attribution =
            serde_json::from_str(r#"{"campaignId":"c","clickId":"k"}"#).unwrap();
        assert_eq!(ok.campaign_id.as_deref(), Some("c"));
        assert!(serde_json::from_str::<super::leads::Attribution>(r#"["c",null]"#).is_err());
    }

    #[test]
    fn unknown_lead_source_is_rejected() {
        let err = serde_json::from_str::<LeadSource>(r#""TIKTOK""#).unwrap_err();
        assert!(err.to_string().contains("TIKTOK"), "{err}");
        assert_eq!(
            "KUAISHOU".parse::<LeadSource>().unwrap(),
            LeadSource::Kuaishou
        );
    }

    #[test]
    fn a_lead_without_submitted_at_is_refused() {
        let err = serde_json::from_str::<PushLead>(
            r#"{"source":"DOUYIN","externalLeadId":"1","name":"a","mobile":"13800138000"}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("submittedAt"), "{err}");
    }
}
