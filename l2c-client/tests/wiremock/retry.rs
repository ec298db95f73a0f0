//! Retries: `Retry-After`, backoff to the deadline, and the idempotency key reused on retry.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::StatusCode;
use l2c_client::test_util::{MockPlatform, problem_response};
use l2c_client::types::orders::{OrderAmounts, SyncOrder, SyncOrderResponse};
use l2c_client::types::status::{OrderStatus, PaymentStatus};
use l2c_client::{Client, Error, RetryPolicy};
use l2c_core::Problem;
use tokio::time::Instant;
use wiremock::matchers::{method, path};
use wiremock::{Mock, Request, ResponseTemplate};

use crate::common::{header, requests_to};

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

fn synced() -> serde_json::Value {
    serde_json::to_value(SyncOrderResponse::new(
        "ord_1".into(),
        "ERP-1",
        true,
        true,
        OrderStatus::DepositPaid,
        PaymentStatus::DepositPaid,
        1,
        0,
    ))
    .unwrap()
}

/// `SYNC_PATH` answers `first` once, then 200.
async fn mock_sync_failing_once(platform: &MockPlatform, first: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path(SYNC_PATH))
        .respond_with(first)
        .up_to_n_times(1)
        .with_priority(1)
        .mount(platform.server())
        .await;
    platform.mock_json("POST", SYNC_PATH, 200, synced()).await;
}

#[tokio::test(start_paused = true)]
async fn a_429_waits_for_retry_after_and_resends_the_same_request_id() {
    let platform = MockPlatform::start().await;
    let rate_limited = Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "Too Many Requests",
    )
    .with_type(l2c_core::problem::QUOTA_EXCEEDED_TYPE);
    mock_sync_failing_once(
        &platform,
        problem_response(&rate_limited).insert_header("retry-after", "2"),
    )
    .await;
    let client = platform.client();

    let started = Instant::now();
    let synced = client.orders().sync(order()).send().await.unwrap();
    assert!(synced.applied);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "waited only {:?}",
        started.elapsed()
    );

    let attempts = requests_to(&platform, SYNC_PATH).await;
    assert_eq!(attempts.len(), 2);
    let first = header(&attempts[0], "x-request-id").unwrap();
    let second = header(&attempts[1], "x-request-id").unwrap();
    assert_eq!(first, second);
    let key = uuid::Uuid::parse_str(&first).unwrap();
    assert_eq!(key.get_version_num(), 4);
    assert_eq!(attempts[0].body, attempts[1].body);
}

#[tokio::test(start_paused = true)]
async fn a_caller_supplied_request_id_is_sent_on_every_attempt() {
    let platform = MockPlatform::start().await;
    mock_sync_failing_once(&platform, ResponseTemplate::new(503)).await;
    let client = platform.client();
    client
        .orders()
        .sync(order())
        .request_id("erp-order-1-v1")
        .send()
        .await
        .unwrap();
    let attempts = requests_to(&platform, SYNC_PATH).await;
    assert_eq!(attempts.len(), 2);
    for attempt in &attempts {
        assert_eq!(header(attempt, "x-request-id").unwrap(), "erp-order-1-v1");
    }
}

#[tokio::test(start_paused = true)]
async fn every_call_gets_its_own_request_id() {
    let platform = MockPlatform::start().await;
    platform.mock_json("POST", SYNC_PATH, 200, synced()).await;
    let client = platform.client();
    client.orders().sync(order()).send().await.unwrap();
    client.orders().sync(order()).send().await.unwrap();
    let attempts = requests_to(&platform, SYNC_PATH).await;
    assert_ne!(
        header(&attempts[0], "x-request-id"),
        header(&attempts[1], "x-request-id")
    );
}

#[tokio::test(start_paused = true)]
async fn a_503_backs_off_until_the_deadline_then_returns_the_last_error() {
    let platform = MockPlatform::start().await;
    let served = Arc::new(AtomicUsize::new(0));
    let counter = served.clone();
    Mock::given(method("GET"))
        .and(path("/api/mobile/orders/ord_1/status"))
        .respond_with(move |_: &Request| {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            problem_response(
                &Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "Service Unavailable",
                )
                .with_detail(format!("attempt {n}")),
            )
        })
        .mount(platform.server())
        .await;
    let client = platform
        .client_builder()
        .retry_policy(
            RetryPolicy::default()
                .max_attempts(100)
                .initial_backoff(Duration::from_secs(1))
                .max_backoff(Duration::from_secs(4))
                .deadline(Duration::from_secs(20)),
        )
        .build()
        .unwrap();

    let started = Instant::now();
    let err = client.orders().status("ord_1").send().await.unwrap_err();
    let elapsed = started.elapsed();

    let attempts = served.load(Ordering::SeqCst);
    // Backoff of [0.5,1), [1,2), [2,4), then [2,4) each: 20 s allow 6 to 10 attempts.
    assert!((6..=11).contains(&attempts), "{attempts} attempts");
    assert!(elapsed < Duration::from_secs(20), "{elapsed:?}");
    // It stops when the next wait (< 4 s) would cross the deadline.
    assert!(elapsed > Duration::from_secs(16), "{elapsed:?}");
    assert_eq!(err.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(err.code(), Some("unavailable"));
    match &err {
        Error::Api { detail, .. } => {
            assert_eq!(
                detail.as_deref(),
                Some(format!("attempt {attempts}").as_str())
            )
        }
        other => panic!("expected Error::Api, got {other:?}"),
    }
    assert!(err.is_retryable());
}

#[tokio::test(start_paused = true)]
async fn attempts_are_bounded() {
    let platform = MockPlatform::start().await;
    Mock::given(method("GET"))
        .and(path("/api/mobile/orders/ord_1/status"))
        .respond_with(ResponseTemplate::new(500))
        .expect(3)
        .mount(platform.server())
        .await;
    let client = platform
        .client_builder()
        .retry_policy(RetryPolicy::default().max_attempts(3))
        .build()
        .unwrap();
    let err = client.orders().status("ord_1").send().await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::INTERNAL_SERVER_ERROR));
}

#[tokio::test(start_paused = true)]
async fn connection_failures_are_retried_then_reported_as_transport_errors() {
    // A port nothing listens on.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let client = Client::builder()
        .base_url(format!("http://127.0.0.1:{port}"))
        .credentials("id", "secret")
        .retry_policy(
            RetryPolicy::default()
                .max_attempts(3)
                .initial_backoff(Duration::from_millis(100)),
        )
        .build()
        .unwrap();
    let started = Instant::now();
    let err = client.authenticate().await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(err.to_string(), "error sending request to the platform");
    assert!(std::error::Error::source(&err).is_some());
    // Two backoffs of at least 50 ms and 100 ms.
    assert!(started.elapsed() >= Duration::from_millis(150));
}
