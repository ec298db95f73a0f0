//! `/metrics` through the Prometheus client library (issue 14 item 6): a token exchange, a
//! refused token request, a 429, an idempotent replay and conflict, one webhook delivered and
//! one left pending, then a scrape parsed line by line: every new series is there with the
//! expected value, the exposition is OpenMetrics, and no label carries what a client sent.
//! SQLite always, PostgreSQL when `L2C_TEST_DATABASE_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use http::StatusCode;
use l2c_core::Scopes;
use l2c_core::rate_limit::Quota;
use l2c_server::testing::{Backend, TestOptions, TestServer};
use serde_json::{Value, json};

/// A receiver answering every delivery with `status`, counting them.
struct Receiver {
    url: String,
    hits: Arc<Mutex<usize>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(State((hits, status)): State<(Arc<Mutex<usize>>, StatusCode)>) -> StatusCode {
    *hits.lock().unwrap() += 1;
    status
}

impl Receiver {
    async fn start(status: StatusCode) -> Self {
        let hits = Arc::new(Mutex::new(0));
        let app = Router::new()
            .route("/hook", post(answer))
            .with_state((Arc::clone(&hits), status));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            url: format!("http://{addr}/hook"),
            hits,
            task,
        }
    }
}

/// The scrape as `series{labels}` → value, checking the OpenMetrics framing.
async fn scrape(s: &TestServer) -> (String, HashMap<String, f64>) {
    let res = s
        .http()
        .get(s.metrics_url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let text = res.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    let mut values = HashMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').expect(line);
        values.insert(series.to_owned(), value.parse::<f64>().expect(line));
    }
    (text, values)
}

fn value(values: &HashMap<String, f64>, series: &str) -> f64 {
    *values
        .get(series)
        .unwrap_or_else(|| panic!("{series} missing from {values:#?}"))
}

fn order(no: &str) -> Value {
    json!({
        "externalOrderNo": no,
        "status": "DEPOSIT_PAID",
        "paymentStatus": "DEPOSIT_PAID",
        "amounts": {"total": 3_980_000, "deposit": 500_000, "paid": 500_000, "currency": "CNY"},
        "items": [{"name": "主卧衣柜", "quantity": 1, "unitPrice": 3_980_000}],
        "milestones": [{"name": "MEASURE", "plannedAt": "2026-11-25T14:00:00+08:00"}],
        "customer": {"name": "李四", "mobile": "+86 139-1234-5678"},
        "version": 1,
        "payments": [{"kind": "DEPOSIT", "method": "WECHAT_PAY", "amount": 500_000,
                      "channelTransactionId": format!("wx-{no}-1"),
                      "paidAt": "2026-11-20T10:15:00+08:00"}]
    })
}

async fn sync(s: &TestServer, token: &str, key: &str, body: &Value) -> reqwest::Response {
    s.http()
        .post(s.url("/api/mobile/orders/sync"))
        .bearer_auth(token)
        .header("x-request-id", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_cover_tokens_limits_idempotency_and_webhooks() {
    for backend in Backend::available() {
        let mut options = TestOptions::default();
        options.config.webhooks.allow_private = true;
        // One retry an hour away: a failed delivery stays pending for the whole test.
        options.config.webhooks.retry_schedule = "1h".parse().unwrap();
        options.config.webhooks.poll_interval = Duration::from_millis(50);
        options.config.webhooks.attempt_timeout = Duration::from_secs(5);
        let s = TestServer::start_with(backend, options).await;
        let ok = Receiver::start(StatusCode::OK).await;
        let down = Receiver::start(StatusCode::SERVICE_UNAVAILABLE).await;

        // Token endpoint: two exchanges issued, one refused (wrong secret).
        let client = s.create_client(Scopes::all()).await;
        let token = s.token(&client).await;
        let limited = s
            .create_client_with_quota(Scopes::all(), Quota::per_minute(2))
            .await;
        let limited_token = s.token(&limited).await;
        let res = s
            .http()
            .post(s.url("/api/oauth/token"))
            .json(
                &json!({"grant_type": "client_credentials", "client_id": client.id,
                          "client_secret": "not-the-secret-not-the-secret-00"}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);

        // Two subscriptions: one receiver accepts, the other answers 503.
        for receiver in [&ok, &down] {
            let res = s
                .http()
                .post(s.url("/api/mobile/webhooks"))
                .bearer_auth(&token)
                .header("x-request-id", uuid::Uuid::new_v4().to_string())
                .json(&json!({"url": receiver.url, "events": ["ORDER_CREATED"]}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 201);
        }

        // Idempotency: a replay and a key reused for another body.
        let key = uuid::Uuid::new_v4().to_string();
        let first = sync(&s, &token, &key, &order("M-1")).await;
        assert_eq!(first.status(), 201);
        let replay = sync(&s, &token, &key, &order("M-1")).await;
        assert_eq!(replay.status(), 201);
        assert_eq!(replay.headers()["idempotent-replayed"], "true");
        let reused = sync(&s, &token, &key, &order("M-2")).await;
        assert_eq!(reused.status(), 422);

        // The per-client limit: two allowed, the third refused.
        let mut statuses = Vec::new();
        for _ in 0..3 {
            let res = s
                .http()
                .get(s.url("/api/mobile/webhooks"))
                .bearer_auth(&limited_token)
                .send()
                .await
                .unwrap();
            statuses.push(res.status().as_u16());
        }
        assert_eq!(statuses, [200, 200, 429]);

        // Paths carrying client input: an id under a route template, a lead-push token, an
        // unknown path under /api/mobile and one at the root.
        let marker = uuid::Uuid::new_v4().simple().to_string();
        for (method, path) in [
            (http::Method::GET, format!("/api/mobile/leads/{marker}")),
            (http::Method::POST, format!("/api/hooks/leads/{marker}")),
            (http::Method::GET, format!("/api/mobile/{marker}/x")),
            (http::Method::GET, format!("/{marker}")),
        ] {
            let res = s
                .http()
                .request(method, s.url(&path))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert!(res.status().is_client_error(), "{path}: {}", res.status());
        }

        // Both deliveries attempted: wait for the counters (recorded after the answers).
        let start = Instant::now();
        let (text, values) = loop {
            let (text, values) = scrape(&s).await;
            let attempted = |outcome: &str| {
                values
                    .get(&format!(
                        r#"l2c_webhook_attempts_total{{outcome="{outcome}"}}"#
                    ))
                    .copied()
                    .unwrap_or(0.0)
            };
            // The attempt is counted as its answer arrives, a moment before the delivered row
            // leaves the queue: wait for both, so the queue gauge reads the settled state.
            let settled = values.get("l2c_webhook_queue_depth") == Some(&1.0);
            if attempted("delivered") >= 1.0 && attempted("retry") >= 1.0 && settled {
                break (text, values);
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "deliveries not attempted: {text}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(*ok.hits.lock().unwrap(), 1);
        assert_eq!(*down.hits.lock().unwrap(), 1);

        // Tokens.
        assert_eq!(
            value(&values, r#"l2c_token_requests_total{outcome="issued"}"#),
            2.0
        );
        assert_eq!(
            value(
                &values,
                r#"l2c_token_requests_total{outcome="invalid_client"}"#
            ),
            1.0
        );
        // Idempotency.
        assert_eq!(
            value(&values, r#"l2c_idempotency_total{outcome="replayed"}"#),
            1.0
        );
        assert_eq!(
            value(&values, r#"l2c_idempotency_total{outcome="conflict"}"#),
            1.0
        );
        // Limits: the token limiter let the three token requests through; the API limiter
        // refused one request.
        assert_eq!(
            value(
                &values,
                r#"l2c_limit_decisions_total{limiter="token",outcome="allowed"}"#
            ),
            3.0
        );
        assert_eq!(
            value(
                &values,
                r#"l2c_limit_decisions_total{limiter="api",outcome="rejected"}"#
            ),
            1.0
        );
        // 2 subscriptions + 3 syncs + 2 limited GETs + 2 probes under /api/mobile.
        assert_eq!(
            value(
                &values,
                r#"l2c_limit_decisions_total{limiter="api",outcome="allowed"}"#
            ),
            9.0
        );
        // Webhooks: one delivered (its latency observed), one failed and pending.
        assert_eq!(
            value(
                &values,
                r#"l2c_webhook_attempts_total{outcome="delivered"}"#
            ),
            1.0
        );
        assert_eq!(
            value(&values, r#"l2c_webhook_attempts_total{outcome="retry"}"#),
            1.0
        );
        assert_eq!(value(&values, "l2c_webhook_delivery_seconds_count"), 1.0);
        assert!(value(&values, "l2c_webhook_delivery_seconds_sum") < 30.0);
        assert_eq!(value(&values, "l2c_webhook_queue_depth"), 1.0);
        let age = value(&values, "l2c_webhook_oldest_pending_seconds");
        assert!(age > 0.0 && age < 60.0, "{age}");
        // The pools.
        for pool in ["main", "exports"] {
            for state in ["in_use", "idle"] {
                let n = value(
                    &values,
                    &format!(r#"l2c_db_pool_connections{{pool="{pool}",state="{state}"}}"#),
                );
                assert!(n >= 0.0);
            }
        }
        assert!(
            value(
                &values,
                r#"l2c_db_pool_connections{pool="main",state="idle"}"#
            ) >= 1.0
        );
        // The existing series keep their names.
        assert_eq!(
            value(
                &values,
                r#"l2c_http_requests_total{method="POST",route="/api/oauth/token",status="200"}"#
            ),
            2.0
        );
        assert!(values.contains_key(r#"l2c_rate_limit_fail_open_total{limiter="api"}"#));
        assert!(values.contains_key(r#"l2c_connections_closed_total{reason="idle_timeout"}"#));
        assert!(values.contains_key("l2c_connections_open"));
        // Labels are route templates, never what the client sent.
        assert!(!text.contains(&marker), "{text}");
        assert!(!text.contains(&client.id), "{text}");
        assert!(!text.contains(&key), "{text}");
        assert!(
            text.contains(r#"route="/api/mobile/leads/{leadId}""#),
            "{text}"
        );
        assert!(
            text.contains(r#"route="/api/hooks/leads/{token}""#),
            "{text}"
        );
        assert!(text.contains(r#"route="unmatched""#), "{text}");
        s.stop().await;
    }
}
