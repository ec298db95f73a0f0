//! The typed resources send the right method, path and body and decode the answer.

use futures_util::TryStreamExt;
use l2c_client::test_util::{
    MockPlatform, sample_order_created, signed_webhook, signed_webhook_at,
};
use l2c_client::types::events::EventType;
use l2c_client::types::leads::{LeadSource, PushLead};
use l2c_client::types::webhooks::{CreateWebhook, DeliveryStatus, RotationStage};
use l2c_client::webhook::{self, VerifyError, WebhookSecret};
use serde_json::json;
use wiremock::matchers::{body_partial_json, header, method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

use crate::common::{header as header_of, requests_to};

#[tokio::test]
async fn push_lead_posts_camel_case_json_with_a_request_id() {
    let platform = MockPlatform::start().await;
    Mock::given(method("POST"))
        .and(path("/api/mobile/leads/hook"))
        .and(header("content-type", "application/json"))
        .and(body_partial_json(json!({
            "source": "DOUYIN", "externalLeadId": "dy-1", "mobile": "13800138000",
            "submittedAt": "2026-11-26T09:30:00+08:00"
        })))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "leadId": "lead_1", "customerId": "cus_1", "duplicate": false
        })))
        .mount(platform.server())
        .await;
    let lead = PushLead::new(
        LeadSource::Douyin,
        "dy-1",
        "张三",
        "13800138000",
        crate::common::at(),
    );
    let created = platform.client().leads().push(lead).send().await.unwrap();
    assert_eq!(created.lead_id.as_str(), "lead_1");
    assert!(!created.duplicate);
    let sent = &requests_to(&platform, "/api/mobile/leads/hook").await[0];
    assert!(header_of(sent, "x-request-id").is_some());
    assert!(
        header_of(sent, "user-agent")
            .unwrap()
            .starts_with("l2c-client/")
    );
}

#[tokio::test]
async fn path_parameters_are_percent_encoded() {
    let platform = MockPlatform::start().await;
    let err = platform
        .client()
        .customers()
        .get("../oauth/token")
        .send()
        .await
        .unwrap_err();
    // The id stayed one segment: it reached the catch-all, not the token endpoint.
    assert_eq!(err.code(), Some("unmatched_request"));
    let paths: Vec<String> = platform
        .received()
        .await
        .iter()
        .map(|r| r.url.path().to_owned())
        .collect();
    assert_eq!(
        paths,
        [
            "/api/oauth/token",
            "/api/mobile/customers/..%2Foauth%2Ftoken"
        ]
    );
}

#[tokio::test]
async fn webhook_subscriptions_use_their_routes() {
    let platform = MockPlatform::start().await;
    let created_at = "2026-11-26T09:30:00+08:00";
    Mock::given(method("POST"))
        .and(path("/api/mobile/webhooks"))
        .and(body_partial_json(
            json!({"url": "https://erp.example/hook", "events": ["ORDER_CREATED"]}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "id": "wh_1", "url": "https://erp.example/hook", "events": ["ORDER_CREATED"],
            "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "createdAt": created_at
        })))
        .mount(platform.server())
        .await;
    platform
        .mock_json(
            "GET",
            "/api/mobile/webhooks",
            200,
            json!({"items": [{
                "id": "wh_1", "url": "https://erp.example/hook", "events": ["ORDER_CREATED"],
                "enabled": true, "createdAt": created_at
            }], "page": 1, "pageSize": 20, "total": 1}),
        )
        .await;
    Mock::given(method("DELETE"))
        .and(path("/api/mobile/webhooks/wh_1"))
        .respond_with(ResponseTemplate::new(204))
        .mount(platform.server())
        .await;
    platform
        .mock_json(
            "POST",
            "/api/mobile/webhooks/wh_1/rotate-secret",
            200,
            json!({
                "id": "wh_1", "secret": "whsec_bmV3LXNlY3JldC1ieXRlcy0xMjM0NTY3OA==",
                "previousSecretExpiresAt": "2026-11-27T09:30:00+08:00"
            }),
        )
        .await;
    let delivery = json!({
        "id": "dlv_1", "eventId": "evt_1", "eventType": "ORDER_CREATED", "status": "FAILED",
        "attempts": [{"attemptedAt": created_at, "responseStatus": 500, "latencyMs": 12,
                      "error": "HTTP 500"}],
        "createdAt": created_at
    });
    platform
        .mock_json(
            "GET",
            "/api/mobile/webhooks/wh_1/deliveries",
            200,
            json!({"items": [delivery], "page": 1, "pageSize": 20, "total": 1}),
        )
        .await;
    let mut queued = delivery.clone();
    queued["status"] = json!("PENDING");
    platform
        .mock_json(
            "POST",
            "/api/mobile/webhooks/wh_1/deliveries/dlv_1/redeliver",
            202,
            queued,
        )
        .await;

    let client = platform.client();
    let hooks = client.webhooks();
    let created = hooks
        .create(CreateWebhook::new(
            "https://erp.example/hook",
            [EventType::OrderCreated],
        ))
        .send()
        .await
        .unwrap();
    assert!(created.secret.starts_with("whsec_"));
    assert!(!format!("{created:?}").contains("whsec_"));
    let list = hooks.list().send().await.unwrap();
    assert_eq!(list.items[0].id, created.id);
    let rotated = hooks.rotate_secret("wh_1").send().await.unwrap();
    assert_ne!(rotated.secret, created.secret);
    let deliveries = hooks.deliveries("wh_1").send().await.unwrap();
    assert_eq!(deliveries.items[0].attempts[0].response_status, Some(500));
    let again = hooks.redeliver("wh_1", "dlv_1").send().await.unwrap();
    assert_eq!(again.status, DeliveryStatus::Pending);
    hooks.delete("wh_1").send().await.unwrap();

    let posts: Vec<_> = platform
        .received()
        .await
        .into_iter()
        .filter(|r| r.method == http::Method::POST && r.url.path().starts_with("/api/mobile"))
        .collect();
    assert_eq!(posts.len(), 3);
    assert!(posts.iter().all(|r| header_of(r, "x-request-id").is_some()));
}

#[tokio::test]
async fn webhook_lists_page_and_filter_and_test_and_recover_post() {
    let platform = MockPlatform::start().await;
    let at = "2026-11-26T09:30:00+08:00";
    let delivery = |n: u32| {
        json!({"id": format!("dlv_{n}"), "eventId": format!("evt_{n}"), "eventType": "PAYMENT_RECEIVED",
               "status": "FAILED", "attempts": [], "createdAt": at})
    };
    // Two pages of failed PAYMENT_RECEIVED deliveries: 2 + 1.
    for (page, items) in [
        ("1", vec![delivery(1), delivery(2)]),
        ("2", vec![delivery(3)]),
    ] {
        Mock::given(method("GET"))
            .and(path("/api/mobile/webhooks/wh_1/deliveries"))
            .and(query_param("page", page))
            .and(query_param("pageSize", "2"))
            .and(query_param("status", "FAILED"))
            .and(query_param("eventType", "PAYMENT_RECEIVED"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "items": items, "page": page.parse::<u32>().unwrap(), "pageSize": 2, "total": 3
            })))
            .mount(platform.server())
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/api/mobile/webhooks"))
        .and(query_param("page", "3"))
        .and(query_param("pageSize", "5"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"items": [], "page": 3, "pageSize": 5, "total": 7})),
        )
        .mount(platform.server())
        .await;
    Mock::given(method("POST"))
        .and(path("/api/mobile/webhooks/wh_1/test"))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({
            "id": "dlv_9", "eventId": "evt_9", "eventType": "PING", "status": "PENDING",
            "attempts": [], "nextAttemptAt": at, "createdAt": at
        })))
        .mount(platform.server())
        .await;
    Mock::given(method("POST"))
        .and(path("/api/mobile/webhooks/wh_1/recover"))
        .and(body_partial_json(
            json!({"since": "2026-11-26T09:30:00+08:00"}),
        ))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({"queued": 3})))
        .mount(platform.server())
        .await;
    Mock::given(method("POST"))
        .and(path("/api/mobile/webhooks/wh_2/recover"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "type": "/problems/invalid-field", "title": "Bad Request", "status": 400,
            "code": "invalid_field", "field": "since", "detail": "`since` is in the future"
        })))
        .mount(platform.server())
        .await;

    let client = platform.client();
    let hooks = client.webhooks();
    let failed: Vec<_> = hooks
        .deliveries("wh_1")
        .status(DeliveryStatus::Failed)
        .event_type(EventType::PaymentReceived)
        .page_size(2)
        .stream()
        .try_collect()
        .await
        .unwrap();
    let ids: Vec<&str> = failed.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["dlv_1", "dlv_2", "dlv_3"]);
    let second = hooks
        .deliveries("wh_1")
        .status(DeliveryStatus::Failed)
        .event_type(EventType::PaymentReceived)
        .page(2)
        .page_size(2)
        .send()
        .await
        .unwrap();
    assert_eq!((second.page, second.total, second.items.len()), (2, 3, 1));
    let past = hooks.list().page(3).page_size(5).send().await.unwrap();
    assert!(past.items.is_empty() && past.total == 7 && !past.has_next());

    let ping = hooks.send_test("wh_1").send().await.unwrap();
    assert_eq!(ping.event_type, EventType::Ping);
    assert_eq!(ping.status, DeliveryStatus::Pending);
    let since = chrono::DateTime::parse_from_rfc3339(at).unwrap();
    let recovered = hooks.recover("wh_1", since).send().await.unwrap();
    assert_eq!(recovered.queued, 3);
    let err = hooks.recover("wh_2", since).send().await.unwrap_err();
    assert_eq!(err.status(), Some(http::StatusCode::BAD_REQUEST), "{err}");

    let posts: Vec<_> = platform
        .received()
        .await
        .into_iter()
        .filter(|r| r.method == http::Method::POST && r.url.path().starts_with("/api/mobile"))
        .collect();
    assert_eq!(posts.len(), 3);
    assert!(posts.iter().all(|r| header_of(r, "x-request-id").is_some()));
}

#[tokio::test]
async fn a_staged_rotation_sends_its_overlap_and_is_promoted() {
    let platform = MockPlatform::start().await;
    Mock::given(method("POST"))
        .and(path("/api/mobile/webhooks/wh_1/rotate-secret"))
        .and(header("content-type", "application/json"))
        .and(body_partial_json(json!({"overlapSeconds": 3600})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "wh_1", "secret": "whsec_bmV3LXNlY3JldC1ieXRlcy0xMjM0NTY3OA==",
            "previousSecretExpiresAt": "2026-11-26T10:30:00+08:00"
        })))
        .mount(platform.server())
        .await;
    platform
        .mock_json(
            "POST",
            "/api/mobile/webhooks/wh_1/promote-secret",
            200,
            json!({
                "id": "wh_1", "url": "https://erp.example/hook", "events": ["ORDER_CREATED"],
                "enabled": true, "createdAt": "2026-11-26T09:30:00+08:00",
                "previousSecretExpiresAt": "2026-11-26T10:30:00+08:00",
                "secretRotation": {"stage": "PROMOTED",
                                   "previousSecretExpiresAt": "2026-11-26T10:30:00+08:00",
                                   "promotedAt": "2026-11-26T09:45:00+08:00"}
            }),
        )
        .await;
    let client = platform.client();
    let hooks = client.webhooks();
    let rotated = hooks
        .rotate_secret("wh_1")
        .overlap(std::time::Duration::from_secs(3600))
        .send()
        .await
        .unwrap();
    assert_eq!(
        rotated.previous_secret_expires_at.to_rfc3339(),
        "2026-11-26T10:30:00+08:00"
    );
    let promoted = hooks.promote_secret("wh_1").send().await.unwrap();
    let rotation = promoted.secret_rotation.expect("a rotation under way");
    assert_eq!(rotation.stage, RotationStage::Promoted);
    assert!(rotation.promoted_at.is_some());
    let posts = requests_to(&platform, "/api/mobile/webhooks/wh_1/promote-secret").await;
    assert_eq!(posts.len(), 1);
    assert!(header_of(&posts[0], "x-request-id").is_some());
}

#[tokio::test]
async fn the_order_export_streams_csv() {
    let platform = MockPlatform::start().await;
    let csv = "orderId,externalOrderNo,status\nord_1,ERP-1,SCHEDULING\n".repeat(2000);
    Mock::given(method("GET"))
        .and(path("/api/mobile/reports/orders/export"))
        .and(header("accept", "text/csv"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(csv.clone(), "text/csv; charset=utf-8"),
        )
        .mount(platform.server())
        .await;
    let stream = platform
        .client()
        .reports()
        .export_orders()
        .send()
        .await
        .unwrap();
    assert_eq!(stream.content_type(), Some("text/csv; charset=utf-8"));
    let chunks: Vec<bytes::Bytes> = stream.try_collect().await.unwrap();
    let body: Vec<u8> = chunks.concat();
    assert_eq!(body, csv.as_bytes());
}

#[test]
fn webhook_verify_returns_the_typed_event_and_refuses_tampering() {
    let secret = WebhookSecret::generate();
    let event = sample_order_created();
    let delivery = signed_webhook(&secret, &event);
    let verified = webhook::verify(&secret, delivery.headers(), delivery.body()).unwrap();
    assert_eq!(verified, event);

    let mut tampered = delivery.body().to_vec();
    let at = tampered.iter().position(|b| *b == b'1').unwrap();
    tampered[at] = b'9';
    assert_eq!(
        webhook::verify(&secret, delivery.headers(), &tampered).unwrap_err(),
        VerifyError::SignatureMismatch
    );

    let other = WebhookSecret::generate();
    assert_eq!(
        webhook::verify(&other, delivery.headers(), delivery.body()).unwrap_err(),
        VerifyError::SignatureMismatch,
        "another secret's signature does not match"
    );

    let stale = signed_webhook_at(&[&secret], &event, 1_700_000_000);
    assert_eq!(
        webhook::verify(&secret, stale.headers(), stale.body()).unwrap_err(),
        VerifyError::TimestampTooOld
    );
}
