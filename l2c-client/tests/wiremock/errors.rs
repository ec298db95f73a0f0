//! Decoding of problem+json, the OAuth error shape, and everything else.

use http::StatusCode;
use l2c_client::test_util::{MockPlatform, TOKEN_PATH};
use l2c_client::types::orders::{OrderAmounts, SyncOrder};
use l2c_client::types::status::{OrderStatus, PaymentStatus};
use l2c_client::{Error, RetryPolicy};
use l2c_core::Problem;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::common::requests_to;

const SYNC_PATH: &str = "/api/mobile/orders/sync";

fn order() -> SyncOrder {
    SyncOrder::new(
        "ERP-1",
        OrderStatus::DepositPaid,
        PaymentStatus::DepositPaid,
        OrderAmounts::cny(1_990_000, 200_000, 200_000),
        1,
    )
}

#[tokio::test]
async fn problem_json_is_decoded_into_an_api_error() {
    let platform = MockPlatform::start().await;
    let problem = Problem::new(StatusCode::CONFLICT, "illegal_transition", "Conflict")
        .with_detail("COMPLETED -> DEPOSIT_PAID is not allowed")
        .with_request_id("req-42")
        .with_extension("currentStatus", "COMPLETED");
    platform.mock_problem("POST", SYNC_PATH, &problem).await;
    let client = platform.client();

    let err = client.orders().sync(order()).send().await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::CONFLICT));
    assert_eq!(err.code(), Some("illegal_transition"));
    assert_eq!(err.request_id(), Some("req-42"));
    assert!(!err.is_retryable());
    match &err {
        Error::Api {
            detail, problem, ..
        } => {
            assert_eq!(
                detail.as_deref(),
                Some("COMPLETED -> DEPOSIT_PAID is not allowed")
            );
            assert_eq!(
                problem.as_ref().unwrap().extensions["currentStatus"],
                "COMPLETED"
            );
        }
        other => panic!("expected Error::Api, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "platform returned 409 Conflict (illegal_transition): COMPLETED -> DEPOSIT_PAID is not allowed"
    );
    assert_eq!(
        requests_to(&platform, SYNC_PATH).await.len(),
        1,
        "4xx is final"
    );
}

#[tokio::test]
async fn the_oauth_error_shape_is_decoded_into_an_auth_error() {
    let platform = MockPlatform::start_bare().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(
            ResponseTemplate::new(401)
                .insert_header("www-authenticate", r#"Basic realm="l2c""#)
                .set_body_json(json!({
                    "error": "invalid_client",
                    "error_description": "client authentication failed"
                })),
        )
        .mount(platform.server())
        .await;
    let client = platform.client();

    let err = client.orders().status("ord_1").send().await.unwrap_err();
    match &err {
        Error::Auth { status, error } => {
            assert_eq!(*status, StatusCode::UNAUTHORIZED);
            assert_eq!(error.error.as_str(), "invalid_client");
            assert_eq!(
                error.error_description.as_deref(),
                Some("client authentication failed")
            );
        }
        other => panic!("expected Error::Auth, got {other:?}"),
    }
    assert_eq!(err.code(), Some("invalid_client"));
    assert!(err.is_auth());
    assert!(!err.is_retryable());
    assert_eq!(
        platform.token_requests().await,
        1,
        "a refusal is not retried"
    );
    assert_eq!(
        platform.received().await.len(),
        1,
        "no API call without a token"
    );
    // A refusal is not cached: the next call asks the token endpoint again, and is refused
    // the same way.
    assert!(matches!(
        client.authenticate().await,
        Err(Error::Auth { .. })
    ));
    assert_eq!(platform.token_requests().await, 2);
}

#[tokio::test]
async fn a_non_problem_error_keeps_the_status_an_excerpt_and_the_header_request_id() {
    let platform = MockPlatform::start().await;
    Mock::given(method("GET"))
        .and(path("/api/mobile/customers/cus_1"))
        .respond_with(
            ResponseTemplate::new(502)
                .insert_header("x-request-id", "edge-7")
                .set_body_raw("<html>Bad Gateway</html>", "text/html"),
        )
        .mount(platform.server())
        .await;
    let client = platform
        .client_builder()
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();

    let err = client.customers().get("cus_1").send().await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::BAD_GATEWAY));
    assert_eq!(err.code(), None);
    assert_eq!(err.request_id(), Some("edge-7"));
    assert!(err.is_retryable());
    assert!(err.to_string().contains("Bad Gateway"), "{err}");
}

#[tokio::test]
async fn a_malformed_success_body_is_a_decode_error() {
    let platform = MockPlatform::start().await;
    platform
        .mock_json("GET", "/api/mobile/customers/cus_1", 200, json!({"id": 7}))
        .await;
    let err = platform
        .client()
        .customers()
        .get("cus_1")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    assert_eq!(err.status(), Some(StatusCode::OK));
    assert!(std::error::Error::source(&err).is_some());
}

#[tokio::test]
async fn requests_nobody_mocked_fail_readably() {
    let platform = MockPlatform::start().await;
    let err = platform
        .client()
        .customers()
        .get("cus_nobody")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::NOT_FOUND));
    assert_eq!(err.code(), Some("unmatched_request"));
    assert!(
        err.to_string()
            .contains("no mock matched GET /api/mobile/customers/cus_nobody"),
        "{err}"
    );
}

#[tokio::test]
async fn an_invalid_caller_request_id_is_a_config_error_and_nothing_is_sent() {
    let platform = MockPlatform::start().await;
    let err = platform
        .client()
        .orders()
        .sync(order())
        .request_id("has spaces")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
    assert!(requests_to(&platform, SYNC_PATH).await.is_empty());
}
