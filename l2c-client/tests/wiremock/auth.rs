//! Token fetching, caching, refresh-ahead, single-flight and the 401 retry.

use std::time::Duration;

use l2c_client::test_util::{MockPlatform, TEST_CLIENT_ID, TEST_CLIENT_SECRET, TOKEN_PATH};
use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::common::{header as header_of, mock_counting_tokens, mock_status, requests_to};

const STATUS_PATH: &str = "/api/mobile/orders/ord_1/status";

#[tokio::test(start_paused = true)]
async fn token_is_fetched_lazily_cached_and_refreshed_at_90_percent_of_expires_in() {
    let platform = MockPlatform::start_bare().await;
    // `expires_in` as a string, as some gateways send it.
    mock_counting_tokens(&platform, json!("100")).await;
    mock_status(&platform, "ord_1").await;
    let client = platform.client();
    assert_eq!(platform.token_requests().await, 0, "building sends nothing");

    for _ in 0..3 {
        client.orders().status("ord_1").send().await.unwrap();
    }
    assert_eq!(platform.token_requests().await, 1);

    let token_request = &requests_to(&platform, TOKEN_PATH).await[0];
    let body: serde_json::Value = serde_json::from_slice(&token_request.body).unwrap();
    assert_eq!(
        body,
        json!({"grant_type": "client_credentials", "client_id": TEST_CLIENT_ID,
               "client_secret": TEST_CLIENT_SECRET})
    );

    tokio::time::advance(Duration::from_secs(89)).await;
    client.orders().status("ord_1").send().await.unwrap();
    assert_eq!(platform.token_requests().await, 1, "still fresh at 89 %");

    tokio::time::advance(Duration::from_secs(2)).await;
    client.orders().status("ord_1").send().await.unwrap();
    assert_eq!(platform.token_requests().await, 2, "refreshed past 90 %");

    let calls = requests_to(&platform, STATUS_PATH).await;
    assert_eq!(calls.len(), 5);
    let bearers: Vec<_> = calls
        .iter()
        .map(|r| header_of(r, "authorization").unwrap())
        .collect();
    assert_eq!(
        bearers,
        [
            "Bearer tok-1",
            "Bearer tok-1",
            "Bearer tok-1",
            "Bearer tok-1",
            "Bearer tok-2"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_calls_on_a_cold_client_make_one_token_request() {
    let platform = MockPlatform::start_bare().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(
            l2c_client::test_util::token_response("tok-1", json!(7200))
                // Slow enough that every caller arrives while the fetch is in flight.
                .set_delay(Duration::from_millis(300)),
        )
        .expect(1)
        .mount(platform.server())
        .await;
    mock_status(&platform, "ord_1").await;
    let client = platform.client();

    let calls: Vec<_> = (0..1000)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.orders().status("ord_1").send().await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }

    assert_eq!(platform.token_requests().await, 1);
    assert_eq!(requests_to(&platform, STATUS_PATH).await.len(), 1000);
}

#[tokio::test]
async fn a_401_invalid_token_refreshes_the_token_and_retries_once() {
    let platform = MockPlatform::start_bare().await;
    mock_counting_tokens(&platform, json!(7200)).await;
    Mock::given(method("GET"))
        .and(path(STATUS_PATH))
        .and(header("authorization", "Bearer tok-1"))
        .respond_with(
            ResponseTemplate::new(401)
                .insert_header("www-authenticate", r#"Bearer error="invalid_token""#),
        )
        .with_priority(1)
        .mount(platform.server())
        .await;
    mock_status(&platform, "ord_1").await;
    let client = platform.client();

    let view = client.orders().status("ord_1").send().await.unwrap();
    assert_eq!(view.order_id.as_str(), "ord_1");
    assert_eq!(platform.token_requests().await, 2);
    let calls = requests_to(&platform, STATUS_PATH).await;
    assert_eq!(calls.len(), 2);
    assert_eq!(
        header_of(&calls[1], "authorization").unwrap(),
        "Bearer tok-2"
    );
}

#[tokio::test]
async fn a_second_401_is_returned_without_another_refresh() {
    let platform = MockPlatform::start_bare().await;
    mock_counting_tokens(&platform, json!(7200)).await;
    Mock::given(method("GET"))
        .and(path(STATUS_PATH))
        .respond_with(
            ResponseTemplate::new(401)
                .insert_header("www-authenticate", r#"Bearer error="invalid_token""#)
                .set_body_raw(
                    r#"{"type":"/problems/invalid-token","title":"Unauthorized","status":401,"code":"invalid_token"}"#,
                    "application/problem+json",
                ),
        )
        .mount(platform.server())
        .await;
    let client = platform.client();

    let err = client.orders().status("ord_1").send().await.unwrap_err();
    assert_eq!(err.status(), Some(http::StatusCode::UNAUTHORIZED));
    assert_eq!(err.code(), Some("invalid_token"));
    assert!(err.is_auth());
    assert_eq!(platform.token_requests().await, 2);
    assert_eq!(requests_to(&platform, STATUS_PATH).await.len(), 2);
}

#[tokio::test]
async fn a_401_naming_another_error_is_not_retried() {
    let platform = MockPlatform::start().await;
    Mock::given(method("GET"))
        .and(path(STATUS_PATH))
        .respond_with(
            ResponseTemplate::new(401)
                .insert_header("www-authenticate", r#"Bearer error="invalid_request""#),
        )
        .mount(platform.server())
        .await;
    let client = platform.client();
    let err = client.orders().status("ord_1").send().await.unwrap_err();
    assert_eq!(err.status(), Some(http::StatusCode::UNAUTHORIZED));
    assert_eq!(platform.token_requests().await, 1);
    assert_eq!(requests_to(&platform, STATUS_PATH).await.len(), 1);
}

#[tokio::test]
async fn debug_output_never_shows_the_secret_or_the_token() {
    let platform = MockPlatform::start().await;
    mock_status(&platform, "ord_1").await;
    let client = platform.client();
    client.orders().status("ord_1").send().await.unwrap();
    let debug = format!("{client:?}");
    assert!(debug.contains(TEST_CLIENT_ID));
    assert!(!debug.contains(TEST_CLIENT_SECRET), "{debug}");
    assert!(
        !debug.contains(l2c_client::test_util::TEST_ACCESS_TOKEN),
        "{debug}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_refresh_keeps_using_the_token_until_it_expires() {
    let platform = MockPlatform::start_bare().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(l2c_client::test_util::token_response("tok-1", json!(100)))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(platform.server())
        .await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(ResponseTemplate::new(503))
        .mount(platform.server())
        .await;
    mock_status(&platform, "ord_1").await;
    let client = platform
        .client_builder()
        .retry_policy(l2c_client::RetryPolicy::none())
        .build()
        .unwrap();

    client.orders().status("ord_1").send().await.unwrap();
    tokio::time::advance(Duration::from_secs(95)).await;
    // Due for refresh, the refresh fails, the token is still valid: the call goes through.
    client.orders().status("ord_1").send().await.unwrap();
    assert_eq!(platform.token_requests().await, 2);
    // The failed refresh is not repeated on every call.
    client.orders().status("ord_1").send().await.unwrap();
    assert_eq!(platform.token_requests().await, 2);

    tokio::time::advance(Duration::from_secs(10)).await;
    let err = client.orders().status("ord_1").send().await.unwrap_err();
    assert_eq!(err.status(), Some(http::StatusCode::SERVICE_UNAVAILABLE));
    let calls = requests_to(&platform, STATUS_PATH).await;
    assert_eq!(calls.len(), 3, "no call with an expired token");
    assert!(
        calls
            .iter()
            .all(|r| header_of(r, "authorization").unwrap() == "Bearer tok-1")
    );
}

/// Collects everything logged at TRACE level.
#[derive(Clone, Default)]
struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn logs_never_contain_the_secret_or_a_token() {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let platform = MockPlatform::start_bare().await;
    mock_counting_tokens(&platform, json!(7200)).await;
    Mock::given(method("GET"))
        .and(path(STATUS_PATH))
        .and(header("authorization", "Bearer tok-1"))
        .respond_with(
            ResponseTemplate::new(401)
                .insert_header("www-authenticate", r#"Bearer error="invalid_token""#),
        )
        .with_priority(1)
        .mount(platform.server())
        .await;
    Mock::given(method("GET"))
        .and(path(STATUS_PATH))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(platform.server())
        .await;
    mock_status(&platform, "ord_1").await;
    let client = platform.client();
    client.orders().status("ord_1").send().await.unwrap();

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("retrying"), "the retry was logged:\n{logs}");
    for secret in [TEST_CLIENT_SECRET, "tok-1", "tok-2"] {
        assert!(!logs.contains(secret), "`{secret}` was logged:\n{logs}");
    }
}
