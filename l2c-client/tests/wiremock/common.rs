//! Shared fixtures.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use l2c_client::test_util::{MockPlatform, TOKEN_PATH, token_response};
use l2c_client::types::orders::{OrderAmounts, OrderStatusView};
use l2c_client::types::status::{OrderStatus, PaymentStatus};
use wiremock::matchers::{method, path};
use wiremock::{Mock, Request};

pub fn at() -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339("2026-11-26T09:30:00+08:00").unwrap()
}

/// The JSON of an order status view for `id`.
pub fn status_view(id: &str) -> serde_json::Value {
    serde_json::to_value(OrderStatusView::new(
        id.into(),
        "ERP-1",
        OrderStatus::Scheduling,
        PaymentStatus::FullyPaid,
        OrderAmounts::cny(1_990_000, 200_000, 1_990_000),
        3,
        at(),
    ))
    .unwrap()
}

/// `GET /api/mobile/orders/{id}/status` answers 200.
pub async fn mock_status(platform: &MockPlatform, id: &str) {
    platform
        .mock_json(
            "GET",
            &format!("/api/mobile/orders/{id}/status"),
            200,
            status_view(id),
        )
        .await;
}

/// A token endpoint issuing `tok-1`, `tok-2`, … with this `expires_in`; returns the counter.
pub async fn mock_counting_tokens(
    platform: &MockPlatform,
    expires_in: serde_json::Value,
) -> Arc<AtomicUsize> {
    let issued = Arc::new(AtomicUsize::new(0));
    let counter = issued.clone();
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(move |_: &Request| {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            token_response(&format!("tok-{n}"), expires_in.clone())
        })
        .mount(platform.server())
        .await;
    issued
}

/// The requests received for `path`.
pub async fn requests_to(platform: &MockPlatform, url_path: &str) -> Vec<Request> {
    platform
        .received()
        .await
        .into_iter()
        .filter(|r| r.url.path() == url_path)
        .collect()
}

/// A header of a received request, as a string.
pub fn header(request: &Request, name: &str) -> Option<String> {
    request
        .headers
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}
