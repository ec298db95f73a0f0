//! Helpers for your own tests (feature `test-util`): a mock platform and signed webhooks.
//!
//! [`MockPlatform`] is a [wiremock] server that already answers the token endpoint and refuses
//! every request you did not mock with a readable `404` problem naming the method and path, so a
//! typo in a test fails with a clear message rather than a timeout. Mount your own canned
//! answers with [`MockPlatform::mock_json`] / [`MockPlatform::mock_problem`], or any wiremock
//! [`Mock`] on [`MockPlatform::server`].
//!
//! ```
//! use l2c_client::test_util::MockPlatform;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let platform = MockPlatform::start().await;
//! platform
//!     .mock_json("GET", "/api/mobile/customers/cus_1", 200, serde_json::json!({
//!         "id": "cus_1", "name": "张*", "mobile": "138****8000", "region": {"city": "杭州市"},
//!         "tags": [], "stage": "LEAD", "orderIds": [], "createdAt": "2026-11-20T10:15:00+08:00"
//!     }))
//!     .await;
//! let client = platform.client();
//! let customer = client.customers().get("cus_1").send().await.unwrap();
//! assert_eq!(customer.name, "张*");
//!
//! // Anything not mocked is a 404 problem that says what was asked.
//! let err = client.orders().status("ord_404").send().await.unwrap_err();
//! assert_eq!(err.code(), Some("unmatched_request"));
//! assert_eq!(platform.token_requests().await, 1);
//! # }
//! ```
//!
//! [`signed_webhook`] builds a delivery exactly as the platform signs it, for testing your
//! receiver:
//!
//! ```
//! use l2c_client::test_util::{sample_order_created, signed_webhook};
//! use l2c_client::webhook::{self, WebhookSecret};
//!
//! let secret = WebhookSecret::generate();
//! let delivery = signed_webhook(&secret, &sample_order_created());
//! let event = webhook::verify(&secret, delivery.headers(), delivery.body()).unwrap();
//! assert_eq!(event.id, sample_order_created().id);
//! ```

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use l2c_core::Problem;
use l2c_core::api::events::{EventData, OrderAmounts, OrderCreated, WebhookEvent};
use l2c_core::api::status::{OrderStatus, PaymentStatus};
use l2c_core::webhook::{WebhookSecret, sign_headers};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::{Client, ClientBuilder, RetryPolicy};

/// The client id [`MockPlatform::client`] uses.
pub const TEST_CLIENT_ID: &str = "test-client";
/// The client secret [`MockPlatform::client`] uses.
pub const TEST_CLIENT_SECRET: &str = "test-secret";
/// The access token the mock token endpoint issues.
pub const TEST_ACCESS_TOKEN: &str = "test-access-token";
/// The token endpoint's path.
pub const TOKEN_PATH: &str = "/api/oauth/token";

/// A mock L2C platform on `127.0.0.1` with a token endpoint and a readable catch-all.
pub struct MockPlatform {
    server: MockServer,
}

impl fmt::Debug for MockPlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockPlatform")
            .field("uri", &self.server.uri())
            .finish()
    }
}

impl MockPlatform {
    /// Starts a server whose token endpoint issues [`TEST_ACCESS_TOKEN`] (valid 7200 s) to any
    /// request, and whose unmatched requests get a `404` problem with code `unmatched_request`.
    pub async fn start() -> Self {
        let platform = Self::start_bare().await;
        platform
            .mock_token(TEST_ACCESS_TOKEN, serde_json::json!(7200))
            .await;
        platform
    }

    /// Starts a server with only the catch-all: mount your own token endpoint (see
    /// [`token_response`]) to test expiry or failures.
    pub async fn start_bare() -> Self {
        let server = MockServer::start().await;
        Mock::given(wiremock::matchers::any())
            .respond_with(|request: &Request| {
                let detail = format!("no mock matched {} {}", request.method, request.url.path());
                problem_response(
                    &Problem::new(
                        StatusCode::NOT_FOUND,
                        "unmatched_request",
                        "No Mock Matched",
                    )
                    .with_detail(detail),
                )
            })
            .with_priority(u8::MAX)
            .named("catch-all")
            .mount(&server)
            .await;
        Self { server }
    }

    /// The underlying wiremock server, to mount any [`Mock`].
    pub fn server(&self) -> &MockServer {
        &self.server
    }

    /// The base URL, e.g. `http://127.0.0.1:41234`.
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// A builder pointed at this server with the test credentials, short retry delays, and an
    /// HTTP client without idle-pool or request timers, so tests may use
    /// `tokio::time::pause()`.
    pub fn client_builder(&self) -> ClientBuilder {
        let http = reqwest::Client::builder()
            .pool_idle_timeout(None)
            .build()
            .unwrap_or_default();
        Client::builder()
            .base_url(self.uri())
            .credentials(TEST_CLIENT_ID, TEST_CLIENT_SECRET)
            .http_client(http)
            .timeout(None)
            .retry_policy(
                RetryPolicy::default()
                    .initial_backoff(Duration::from_millis(10))
                    .max_backoff(Duration::from_millis(100)),
            )
    }

    /// A client for this server (see [`client_builder`](Self::client_builder)).
    ///
    /// # Panics
    ///
    /// Never in practice: the builder is complete and valid.
    pub fn client(&self) -> Client {
        self.client_builder()
            .build()
            .expect("the mock platform's client configuration is valid")
    }

    /// Mounts a token endpoint issuing `token` with this `expires_in` (a number or a string).
    pub async fn mock_token(&self, token: &str, expires_in: serde_json::Value) {
        Mock::given(method("POST"))
            .and(path(TOKEN_PATH))
            .respond_with(token_response(token, expires_in))
            .named("token endpoint")
            .mount(&self.server)
            .await;
    }

    /// Answers `method path` with `status` and a JSON body.
    pub async fn mock_json(
        &self,
        http_method: &str,
        url_path: &str,
        status: u16,
        body: serde_json::Value,
    ) {
        Mock::given(method(http_method))
            .and(path(url_path))
            .respond_with(ResponseTemplate::new(status).set_body_json(body))
            .mount(&self.server)
            .await;
    }

    /// Answers `method path` with a problem+json error.
    pub async fn mock_problem(&self, http_method: &str, url_path: &str, problem: &Problem) {
        Mock::given(method(http_method))
            .and(path(url_path))
            .respond_with(problem_response(problem))
            .mount(&self.server)
            .await;
    }

    /// Every request the server received, in order.
    pub async fn received(&self) -> Vec<Request> {
        self.server.received_requests().await.unwrap_or_default()
    }

    /// How many token requests the server received.
    pub async fn token_requests(&self) -> usize {
        self.received()
            .await
            .iter()
            .filter(|r| r.url.path() == TOKEN_PATH)
            .count()
    }
}

/// A successful token response.
pub fn token_response(token: &str, expires_in: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("cache-control", "no-store")
        .set_body_json(serde_json::json!({
            "access_token": token,
            "expires_in": expires_in,
            "token_type": "Bearer",
        }))
}

/// A problem+json response for `problem` (status taken from it).
pub fn problem_response(problem: &Problem) -> ResponseTemplate {
    ResponseTemplate::new(problem.status)
        .set_body_raw(problem.to_bytes().to_vec(), l2c_core::problem::CONTENT_TYPE)
}

/// A webhook delivery as the platform would send it: headers and raw body.
#[derive(Debug, Clone)]
pub struct SignedWebhook {
    headers: HeaderMap,
    body: Bytes,
}

impl SignedWebhook {
    /// The headers: `X-L2C-Signature`, `X-L2C-Event`, `X-L2C-Delivery`, `X-L2C-Timestamp` and
    /// the Standard Webhooks trio, plus `Content-Type: application/json`.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The raw JSON body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Headers and body, to build a request.
    pub fn into_parts(self) -> (HeaderMap, Bytes) {
        (self.headers, self.body)
    }
}

/// Signs `event` with `secret`, timestamped now.
pub fn signed_webhook(secret: &WebhookSecret, event: &WebhookEvent) -> SignedWebhook {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    signed_webhook_at(&[secret], event, now)
}

/// Signs `event` with every secret in `secrets` (current first, as during a rotation), with the
/// given unix timestamp — e.g. an old one to test that your receiver refuses stale deliveries.
pub fn signed_webhook_at(
    secrets: &[&WebhookSecret],
    event: &WebhookEvent,
    timestamp: u64,
) -> SignedWebhook {
    // A WebhookEvent is ids, enums, numbers and strings: serializing it cannot fail.
    let body = Bytes::from(serde_json::to_vec(event).unwrap_or_default());
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    // Event ids from `WebhookEvent::new_id()` and the samples are valid; an invalid id yields
    // a delivery without signature headers, which a receiver must refuse anyway.
    if let Ok(signed) = sign_headers(secrets, &event.id, event.event_type(), timestamp, &body) {
        for (name, value) in signed {
            headers.insert(name, value);
        }
    }
    SignedWebhook { headers, body }
}

/// A sample `ORDER_CREATED` event (id `evt_sample_order_created`).
pub fn sample_order_created() -> WebhookEvent {
    let created_at = chrono::DateTime::parse_from_rfc3339("2026-11-26T09:30:00+08:00")
        .unwrap_or_else(|_| chrono::Utc::now().fixed_offset());
    WebhookEvent::new(
        "evt_sample_order_created",
        created_at,
        EventData::OrderCreated(OrderCreated::new(
            "ord_sample",
            "ERP-2026-0001",
            OrderStatus::DepositPaid,
            PaymentStatus::DepositPaid,
            OrderAmounts::cny(1_990_000, 200_000, 200_000),
            "cus_sample",
            1,
        )),
    )
}
