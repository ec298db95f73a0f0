//! The delivery log's API beyond one delivery: test events (`PING`, to one subscription only,
//! signed and recorded like any event), paged and filtered lists of subscriptions and
//! deliveries, and recovery of every failed delivery since a time, each with its refusals
//! (another client's subscription, a disabled one, bad paging, a bad `since`). SQLite always,
//! PostgreSQL when `L2C_TEST_DATABASE_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use http::{HeaderMap, StatusCode};
use l2c_core::api::events::EventData;
use l2c_core::webhook::{Verifier, WebhookSecret};
use l2c_core::{ClientId, Scopes};
use l2c_server::store::outbox::Subscription;
use l2c_server::testing::{Backend, TestOptions, TestServer};
use serde_json::{Value, json};

/// A receiver that records every request and answers 500 while `failing` is set, else 200.
#[derive(Clone, Default)]
struct Receiver {
    hits: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    failing: Arc<AtomicBool>,
}

impl Receiver {
    async fn start(&self) -> String {
        let me = self.clone();
        let app = Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: Bytes| {
                let me = me.clone();
                async move {
                    me.hits.lock().unwrap().push((headers, body));
                    if me.failing.load(Ordering::SeqCst) {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    fn hits(&self) -> Vec<(HeaderMap, Bytes)> {
        self.hits.lock().unwrap().clone()
    }
}

fn options() -> TestOptions {
    let mut o = TestOptions::default();
    o.config.webhooks.allow_private = true;
    // Two attempts 100 ms apart, then FAILED.
    o.config.webhooks.retry_schedule = "100ms".parse().unwrap();
    o.config.webhooks.poll_interval = Duration::from_millis(50);
    o
}

struct Api<'a> {
    server: &'a TestServer,
    token: String,
    client: ClientId,
}

impl Api<'_> {
    async fn new(server: &TestServer) -> Api<'_> {
        let client = server.create_client(Scopes::all()).await;
        Api {
            server,
            token: server.token(&client).await,
            client: ClientId::new(client.id.as_str()),
        }
    }

    async fn stored(&self, sub: &str) -> Subscription {
        self.server
            .db
            .webhooks()
            .get(&self.client, sub)
            .await
            .unwrap()
            .unwrap()
    }

    async fn call(&self, method: http::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.keyed(method, path, body, &uuid::Uuid::new_v4().to_string())
            .await
    }

    async fn keyed(
        &self,
        method: http::Method,
        path: &str,
        body: Option<Value>,
        key: &str,
    ) -> (u16, Value) {
        let mut req = self
            .server
            .http()
            .request(method, self.server.url(path))
            .bearer_auth(&self.token)
            .header("x-request-id", key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(http::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call(http::Method::POST, path, body).await
    }

    async fn subscribe(&self, url: &str, events: &[&str]) -> (String, String) {
        let (status, body) = self
            .post(
                "/api/mobile/webhooks",
                Some(json!({"url": url, "events": events})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        (
            body["id"].as_str().unwrap().to_owned(),
            body["secret"].as_str().unwrap().to_owned(),
        )
    }

    async fn sync(&self, no: &str) {
        let (status, body) = self.post("/api/mobile/orders/sync", Some(order(no))).await;
        assert_eq!(status, 201, "{body}");
    }

    /// Every delivery of `sub` (one page of 100).
    async fn deliveries(&self, sub: &str) -> Vec<Value> {
        let (status, body) = self
            .get(&format!(
                "/api/mobile/webhooks/{sub}/deliveries?pageSize=100"
            ))
            .await;
        assert_eq!(status, 200, "{body}");
        body["items"].as_array().unwrap().clone()
    }

    async fn wait_all(&self, sub: &str, n: usize, status: &str) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(15) {
            let d = self.deliveries(sub).await;
            if d.len() == n && d.iter().all(|d| d["status"] == status) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "timed out waiting for {n} {status} deliveries: {:?}",
            self.deliveries(sub).await
        );
    }
}

fn order(no: &str) -> Value {
    json!({
        "externalOrderNo": no,
        "status": "DEPOSIT_PAID",
        "paymentStatus": "DEPOSIT_PAID",
        "amounts": {"total": 3_980_000, "deposit": 500_000, "paid": 500_000, "currency": "CNY"},
        "items": [{"name": "主卧衣柜", "quantity": 1, "unitPrice": 3_980_000}],
        "customer": {"name": "李四", "mobile": "+86 139-1234-5678"},
        "version": 1,
        "payments": [{"kind": "DEPOSIT", "method": "WECHAT_PAY", "amount": 500_000,
                      "channelTransactionId": format!("wx-{no}-1"),
                      "paidAt": "2026-11-20T10:15:00+08:00"}]
    })
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_event_goes_signed_to_that_subscription_only() {
    for backend in Backend::available() {
        let (a, b) = (Receiver::default(), Receiver::default());
        let (url_a, url_b) = (a.start().await, b.start().await);
        let server = TestServer::start_with(backend, options()).await;
        let api = Api::new(&server).await;
        let other = Api::new(&server).await;
        let (sub_a, secret_a) = api.subscribe(&url_a, &["ORDER_CREATED"]).await;
        let (sub_b, _) = api.subscribe(&url_b, &["ORDER_CREATED"]).await;

        // Queued (202, PENDING) for this subscription, then delivered, signed, and recorded.
        let key = uuid::Uuid::new_v4().to_string();
        let path = format!("/api/mobile/webhooks/{sub_a}/test");
        let (status, queued) = api.keyed(http::Method::POST, &path, None, &key).await;
        assert_eq!(status, 202, "{queued}");
        assert_eq!(queued["eventType"], "PING");
        assert_eq!(queued["status"], "PENDING");
        api.wait_all(&sub_a, 1, "SUCCEEDED").await;
        let hits = a.hits();
        assert_eq!(hits.len(), 1);
        let event = Verifier::new(WebhookSecret::parse(&secret_a).unwrap())
            .verify(&hits[0].0, &hits[0].1)
            .expect("signed with the subscription's secret");
        assert_eq!(event.id, queued["eventId"].as_str().unwrap());
        let EventData::Ping(ping) = &event.payload else {
            panic!("{event:?}")
        };
        assert_eq!(ping.webhook_id, sub_a);
        assert!(ping.note.contains("test event"));
        assert_eq!(hits[0].0["x-l2c-event"], "PING");
        let log = api.deliveries(&sub_a).await;
        assert_eq!(log[0]["attempts"][0]["responseStatus"], 200);
        assert!(b.hits().is_empty(), "the other subscription gets nothing");
        assert!(api.deliveries(&sub_b).await.is_empty());

        // The same idempotency key replays the answer; no second PING.
        let (status, replayed) = api.keyed(http::Method::POST, &path, None, &key).await;
        assert_eq!(status, 202);
        assert_eq!(replayed["id"], queued["id"]);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(a.hits().len(), 1);

        // A business event never goes to PING, and nobody can subscribe to it.
        let (status, body) = api
            .post(
                "/api/mobile/webhooks",
                Some(json!({"url": url_b, "events": ["PING"]})),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["field"], "events");

        // Another client's subscription, an unknown one: 404. A disabled one: 409.
        assert_eq!(other.post(&path, None).await.0, 404);
        assert_eq!(
            api.post("/api/mobile/webhooks/wh_nope/test", None).await.0,
            404
        );
        sqlx::query("UPDATE webhook_subscriptions SET enabled = 0 WHERE id = $1")
            .bind(&sub_b)
            .execute(server.db.pool())
            .await
            .unwrap();
        let (status, body) = api
            .post(&format!("/api/mobile/webhooks/{sub_b}/test"), None)
            .await;
        assert_eq!(status, 409, "{body}");
        assert_eq!(body["code"], "webhook_disabled", "{body}");
        assert!(body["detail"].as_str().unwrap().contains("disabled"));
        assert!(api.deliveries(&sub_b).await.is_empty());
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_page_newest_first_and_filter_by_status_and_type() {
    for backend in Backend::available() {
        let mut o = options();
        o.config.webhooks.dispatcher = false;
        let server = TestServer::start_with(backend, o).await;
        let api = Api::new(&server).await;
        let other = Api::new(&server).await;
        let (sub, _) = api
            .subscribe(
                "http://127.0.0.1:9/hook",
                &["ORDER_CREATED", "PAYMENT_RECEIVED"],
            )
            .await;
        for i in 0..3 {
            api.sync(&format!("PO-{i}")).await;
        }
        let (status, _) = api
            .post(&format!("/api/mobile/webhooks/{sub}/test"), None)
            .await;
        assert_eq!(status, 202);
        // One failed delivery, as the dispatcher would leave it.
        sqlx::query(
            "UPDATE webhook_deliveries SET status = 'FAILED' WHERE id = \
             (SELECT MIN(d.id) FROM webhook_deliveries d JOIN webhook_events e \
              ON e.id = d.event_id WHERE d.subscription_id = $1 AND e.event_type = 'ORDER_CREATED')",
        )
        .bind(&sub)
        .execute(server.db.pool())
        .await
        .unwrap();

        let base = format!("/api/mobile/webhooks/{sub}/deliveries");
        let (status, p1) = api.get(&format!("{base}?pageSize=4")).await;
        assert_eq!(status, 200, "{p1}");
        assert_eq!(
            (p1["page"].clone(), p1["pageSize"].clone()),
            (json!(1), json!(4))
        );
        assert_eq!(p1["total"], 7);
        assert_eq!(p1["items"].as_array().unwrap().len(), 4);
        assert_eq!(p1["items"][0]["eventType"], "PING", "newest first");
        let (_, p2) = api.get(&format!("{base}?pageSize=4&page=2")).await;
        assert_eq!(p2["items"].as_array().unwrap().len(), 3);
        let mut ids: Vec<Value> = [&p1, &p2]
            .iter()
            .flat_map(|p| {
                p["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d["id"].clone())
            })
            .collect();
        ids.dedup();
        assert_eq!(ids.len(), 7, "the pages do not overlap");
        let (_, past) = api.get(&format!("{base}?pageSize=4&page=3")).await;
        assert!(past["items"].as_array().unwrap().is_empty());
        assert_eq!(past["total"], 7);

        let (_, payments) = api.get(&format!("{base}?eventType=PAYMENT_RECEIVED")).await;
        assert_eq!(payments["total"], 3);
        assert!(
            payments["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|d| d["eventType"] == "PAYMENT_RECEIVED")
        );
        let (_, failed) = api.get(&format!("{base}?status=FAILED")).await;
        assert_eq!(failed["total"], 1);
        assert_eq!(failed["items"][0]["eventType"], "ORDER_CREATED");
        let (_, both) = api
            .get(&format!("{base}?status=PENDING&eventType=ORDER_CREATED"))
            .await;
        assert_eq!(both["total"], 2);

        // Bad paging or filters: 400 naming the parameter.
        for (query, field) in [
            ("page=0", "page"),
            ("page=abc", "page"),
            ("pageSize=0", "pageSize"),
            ("pageSize=101", "pageSize"),
            ("page=1&page=2", "page"),
            ("status=DONE", "status"),
            ("eventType=ORDER_DELETED", "eventType"),
        ] {
            let (status, body) = api.get(&format!("{base}?{query}")).await;
            assert_eq!(status, 400, "{query}: {body}");
            assert_eq!(body["field"], field, "{query}");
        }
        // The store's recovery walks the failed deliveries in batches (here of two): all 7.
        sqlx::query("UPDATE webhook_deliveries SET status = 'FAILED' WHERE subscription_id = $1")
            .bind(&sub)
            .execute(server.db.pool())
            .await
            .unwrap();
        let now = server.db.now_millis();
        let n = server
            .db
            .webhooks()
            .recover(&api.stored(&sub).await, now - 60_000, now, 2)
            .await
            .unwrap();
        assert_eq!(n, 7);
        let (_, pending) = api.get(&format!("{base}?status=PENDING")).await;
        assert_eq!(pending["total"], 7);

        // Another client's subscription: 404, whatever the query.
        assert_eq!(other.get(&base).await.0, 404);
        assert_eq!(other.get(&format!("{base}?page=2")).await.0, 404);

        // The subscription list pages the same way.
        for i in 0..2 {
            api.subscribe(&format!("http://127.0.0.1:9/h{i}"), &["ORDER_CREATED"])
                .await;
        }
        let (_, l1) = api.get("/api/mobile/webhooks?pageSize=2").await;
        assert_eq!(l1["total"], 3);
        assert_eq!(l1["items"][0]["id"], sub.as_str(), "oldest first");
        assert_eq!(l1["items"].as_array().unwrap().len(), 2);
        let (_, l2) = api.get("/api/mobile/webhooks?pageSize=2&page=2").await;
        assert_eq!(l2["items"].as_array().unwrap().len(), 1);
        let (status, body) = api.get("/api/mobile/webhooks?pageSize=1000").await;
        assert_eq!((status, body["field"].clone()), (400, json!("pageSize")));
        let (_, theirs) = other.get("/api/mobile/webhooks").await;
        assert_eq!(theirs["total"], 0);
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_resends_the_failed_deliveries_since_a_time() {
    for backend in Backend::available() {
        let receiver = Receiver::default();
        let url = receiver.start().await;
        let server = TestServer::start_with(backend, options()).await;
        let api = Api::new(&server).await;
        let other = Api::new(&server).await;
        let (sub, _) = api.subscribe(&url, &["ORDER_CREATED"]).await;

        // The receiver is down: three deliveries fail (two attempts each).
        receiver.failing.store(true, Ordering::SeqCst);
        let before = server.db.now_millis();
        for i in 0..3 {
            api.sync(&format!("PO-{i}")).await;
        }
        api.wait_all(&sub, 3, "FAILED").await;

        // Refusals first: nothing is queued by any of them.
        let path = format!("/api/mobile/webhooks/{sub}/recover");
        let now = server.db.now_millis();
        for body in [
            json!({}),
            json!({"since": 5}),
            json!({"since": "yesterday"}),
            json!({"since": rfc3339(now + 3_600_000)}),
            json!({"since": rfc3339(now - 31 * 86_400_000)}),
        ] {
            let (status, problem) = api.post(&path, Some(body.clone())).await;
            assert_eq!(status, 400, "{body}: {problem}");
            assert_eq!(problem["field"], "since", "{body}");
        }
        let since = json!({"since": rfc3339(before - 1000)});
        assert_eq!(other.post(&path, Some(since.clone())).await.0, 404);
        assert_eq!(
            api.post("/api/mobile/webhooks/wh_nope/recover", Some(since.clone()))
                .await
                .0,
            404
        );
        assert!(
            api.deliveries(&sub)
                .await
                .iter()
                .all(|d| d["status"] == "FAILED")
        );

        // The receiver is back: recover queues the three, which then succeed.
        receiver.failing.store(false, Ordering::SeqCst);
        let (status, body) = api.post(&path, Some(since.clone())).await;
        assert_eq!(status, 202, "{body}");
        assert_eq!(body, json!({"queued": 3}));
        api.wait_all(&sub, 3, "SUCCEEDED").await;
        for d in api.deliveries(&sub).await {
            let codes: Vec<&Value> = d["attempts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| &a["responseStatus"])
                .collect();
            assert_eq!(codes, [&json!(500), &json!(500), &json!(200)], "{d}");
        }
        // Nothing failed is left: a second recovery queues nothing.
        assert_eq!(
            api.post(&path, Some(since.clone())).await.1,
            json!({"queued": 0})
        );

        // `since` bounds it: only deliveries created at or after it are resent. The store
        // walks them in batches (here of one).
        receiver.failing.store(true, Ordering::SeqCst);
        let later = server.db.now_millis() + 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
        api.sync("PO-LATE").await;
        let start = Instant::now();
        while api
            .get(&format!(
                "/api/mobile/webhooks/{sub}/deliveries?status=FAILED"
            ))
            .await
            .1["total"]
            != 1
        {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "the late delivery fails"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let n = server
            .db
            .webhooks()
            .recover(&api.stored(&sub).await, later, server.db.now_millis(), 1)
            .await
            .unwrap();
        assert_eq!(n, 1, "only the delivery created since `later`");

        // A disabled subscription refuses recovery.
        sqlx::query("UPDATE webhook_subscriptions SET enabled = 0 WHERE id = $1")
            .bind(&sub)
            .execute(server.db.pool())
            .await
            .unwrap();
        let (status, body) = api.post(&path, Some(since)).await;
        assert_eq!(status, 409, "{body}");
        assert_eq!(body["code"], "webhook_disabled");
        server.stop().await;
    }
}
