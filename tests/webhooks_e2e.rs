//! The spec's tour end to end — token → lead → order → webhook — with the SDK against a real
//! `l2c-server` (SQLite, and PostgreSQL when `L2C_TEST_DATABASE_URL` is set) and a local axum
//! receiver on 127.0.0.1:0 that verifies every delivery with `l2c_client::webhook::verify`.
//!
//! Covered: create a subscription, push a lead, sync an order with a deposit (ORDER_CREATED and
//! PAYMENT_RECEIVED arrive verified), the delivery log lists the successful attempts, a
//! redelivery brings the same event id again, a rotated secret signs the next event (verified
//! with the new secret only), and after `delete()` nothing more arrives (checked against a second
//! subscription that does receive the same later event, so no sleeping is needed).
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use l2c_client::Client;
use l2c_client::types::events::EventType;
use l2c_client::types::leads::{LeadSource, PushLead};
use l2c_client::types::orders::{OrderAmounts, Payment, PaymentKind, PaymentMethod, SyncOrder};
use l2c_client::types::status::{OrderStatus, PaymentStatus};
use l2c_client::types::webhooks::{CreateWebhook, DeliveryStatus};
use l2c_client::webhook::{self, EventData, WebhookEvent, WebhookSecret};
use l2c_core::Scopes;
use l2c_server::testing::{Backend, TestOptions, TestServer};
use tokio::sync::mpsc;

/// How long any one expected delivery may take before the test fails (the dispatcher polls every
/// 50 ms and is woken by each commit; this only bounds a broken run).
const WAIT: Duration = Duration::from_secs(20);

/// One verified delivery: which receiver path got it, and the event.
#[derive(Debug)]
struct Received {
    path: String,
    event: WebhookEvent,
}

/// The receiver's state: the secret each path verifies with, and where verified events go.
#[derive(Clone)]
struct Receiver {
    secrets: Arc<Mutex<HashMap<String, WebhookSecret>>>,
    tx: mpsc::UnboundedSender<Result<Received, String>>,
}

async fn receive(
    State(rx): State<Receiver>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let secret = rx.secrets.lock().unwrap().get(&path).cloned();
    let Some(secret) = secret else {
        let _ = rx.tx.send(Err(format!("delivery to unknown path /{path}")));
        return StatusCode::NOT_FOUND.into_response();
    };
    match webhook::verify(&secret, &headers, &body) {
        Ok(event) => {
            let _ = rx.tx.send(Ok(Received { path, event }));
            StatusCode::NO_CONTENT.into_response()
        }
        Err(err) => {
            let _ = rx
                .tx
                .send(Err(format!("/{path}: verification failed: {err}")));
            err.status().into_response()
        }
    }
}

struct Hooks {
    base: String,
    secrets: Arc<Mutex<HashMap<String, WebhookSecret>>>,
    rx: mpsc::UnboundedReceiver<Result<Received, String>>,
    task: tokio::task::JoinHandle<()>,
}

impl Hooks {
    async fn start() -> Hooks {
        let (tx, rx) = mpsc::unbounded_channel();
        let secrets = Arc::new(Mutex::new(HashMap::new()));
        let app = Router::new()
            .route("/{path}", post(receive))
            .with_state(Receiver {
                secrets: Arc::clone(&secrets),
                tx,
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Hooks {
            base,
            secrets,
            rx,
            task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    fn set_secret(&self, path: &str, secret: &str) {
        let secret: WebhookSecret = secret.parse().unwrap();
        self.secrets.lock().unwrap().insert(path.to_owned(), secret);
    }

    /// The next verified delivery; fails on a verification failure or after [`WAIT`].
    async fn next(&mut self) -> Received {
        match tokio::time::timeout(WAIT, self.rx.recv()).await {
            Ok(Some(Ok(received))) => received,
            Ok(Some(Err(failure))) => panic!("{failure}"),
            Ok(None) => panic!("receiver closed"),
            Err(_) => panic!("no delivery within {WAIT:?}"),
        }
    }

    /// The next `n` deliveries, in arrival order.
    async fn take(&mut self, n: usize) -> Vec<Received> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.next().await);
        }
        out
    }
}

fn sdk(server: &TestServer, id: &str, secret: &str) -> Client {
    Client::builder()
        .base_url(&server.base_url)
        .credentials(id, secret)
        .http_client(reqwest::Client::builder().no_proxy().build().unwrap())
        .build()
        .unwrap()
}

fn options() -> TestOptions {
    let mut o = TestOptions::default();
    // The receiver is on 127.0.0.1 over plain http: development mode.
    o.config.webhooks.allow_private = true;
    o.config.webhooks.poll_interval = Duration::from_millis(50);
    o.config.webhooks.attempt_timeout = Duration::from_secs(5);
    o
}

fn order(status: OrderStatus, payment: PaymentStatus, paid: i64, version: i64) -> SyncOrder {
    SyncOrder::new(
        "ERP-WH-E2E-1",
        status,
        payment,
        OrderAmounts::cny(1_990_000, 200_000, paid),
        version,
    )
}

#[tokio::test]
async fn token_lead_order_webhook_end_to_end() {
    for backend in Backend::available() {
        let server = TestServer::start_with(backend, options()).await;
        let app = server.create_client(Scopes::all()).await;
        let client = sdk(&server, &app.id, &app.secret);
        let mut hooks = Hooks::start().await;
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-26T09:30:00+08:00").unwrap();

        // Token.
        client.authenticate().await.expect("token");

        // Subscribe to every event type.
        let created = client
            .webhooks()
            .create(CreateWebhook::new(
                hooks.url("erp"),
                EventType::SUBSCRIBABLE.iter().copied(),
            ))
            .send()
            .await
            .expect("create subscription");
        assert!(created.secret.starts_with("whsec_"), "{created:?}");
        hooks.set_secret("erp", &created.secret);
        let listed = client.webhooks().list().send().await.expect("list");
        assert_eq!(listed.items.len(), 1);
        assert_eq!(listed.items[0].id, created.id);

        // Lead.
        let lead = client
            .leads()
            .push(PushLead::new(
                LeadSource::Douyin,
                "dy-wh-e2e-1",
                "张三",
                "+86 138-0013-8000",
                now,
            ))
            .send()
            .await
            .expect("push lead");
        assert!(!lead.duplicate);

        // Order with its deposit: ORDER_CREATED and PAYMENT_RECEIVED, verified.
        let mut first = order(
            OrderStatus::DepositPaid,
            PaymentStatus::DepositPaid,
            200_000,
            1,
        );
        first.customer_id = Some(lead.customer_id.clone());
        first.payments.push(Payment::new(
            PaymentKind::Deposit,
            PaymentMethod::WechatPay,
            200_000,
            "wx-wh-e2e-1",
            now,
        ));
        let synced = client.orders().sync(first).send().await.expect("sync");
        assert!(synced.applied);

        let got = hooks.take(2).await;
        let mut types: Vec<EventType> = got.iter().map(|r| r.event.event_type()).collect();
        types.sort();
        assert_eq!(
            types,
            [EventType::OrderCreated, EventType::PaymentReceived],
            "{got:?}"
        );
        for r in &got {
            assert_eq!(r.path, "erp");
            match &r.event.payload {
                EventData::OrderCreated(o) => {
                    assert_eq!(o.order_id, synced.order_id.as_str());
                    assert_eq!(o.external_order_no, "ERP-WH-E2E-1");
                    assert_eq!(o.customer_id, lead.customer_id.as_str());
                }
                EventData::PaymentReceived(p) => {
                    assert_eq!(p.order_id, synced.order_id.as_str());
                    assert_eq!(p.amount, 200_000);
                    assert_eq!(p.channel_transaction_id, "wx-wh-e2e-1");
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        let created_event = got
            .iter()
            .find(|r| r.event.event_type() == EventType::OrderCreated)
            .unwrap()
            .event
            .clone();

        // The delivery log lists both, each with a successful attempt. The receiver has answered,
        // but the dispatcher records the attempt just after: poll the log (bounded).
        let deadline = tokio::time::Instant::now() + WAIT;
        let log = loop {
            let log = client
                .webhooks()
                .deliveries(created.id.clone())
                .send()
                .await
                .expect("deliveries");
            if log.items.len() == 2
                && log
                    .items
                    .iter()
                    .all(|d| d.status == DeliveryStatus::Succeeded)
            {
                break log;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "deliveries not recorded as succeeded within {WAIT:?}: {log:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(log.items.len(), 2, "{log:?}");
        for d in &log.items {
            assert_eq!(d.status, DeliveryStatus::Succeeded, "{d:?}");
            assert!(
                d.attempts.iter().any(|a| a.response_status == Some(204)),
                "{d:?}"
            );
            assert!(got.iter().any(|r| r.event.id == d.event_id), "{d:?}");
        }

        // Redelivery: the same event (same id) arrives again, verified.
        let delivery = log
            .items
            .iter()
            .find(|d| d.event_id == created_event.id)
            .unwrap();
        let queued = client
            .webhooks()
            .redeliver(created.id.clone(), delivery.id.clone())
            .send()
            .await
            .expect("redeliver");
        assert_eq!(queued.event_id, created_event.id);
        let again = hooks.next().await;
        assert_eq!(again.event.id, created_event.id);
        assert_eq!(again.event, created_event);

        // Rotation: the receiver now knows only the new secret; the next event verifies with it.
        let rotated = client
            .webhooks()
            .rotate_secret(created.id.clone())
            .send()
            .await
            .expect("rotate");
        assert_ne!(rotated.secret, created.secret);
        hooks.set_secret("erp", &rotated.secret);
        client
            .orders()
            .sync(order(
                OrderStatus::MeasurePending,
                PaymentStatus::DepositPaid,
                200_000,
                2,
            ))
            .send()
            .await
            .expect("status change");
        let changed = hooks.next().await;
        assert_eq!(changed.path, "erp");
        match &changed.event.payload {
            EventData::OrderStatusChanged(c) => {
                assert_eq!(c.order_id, synced.order_id.as_str());
                assert_eq!(c.from_status, OrderStatus::DepositPaid);
                assert_eq!(c.to_status, OrderStatus::MeasurePending);
            }
            other => panic!("expected ORDER_STATUS_CHANGED, got {other:?}"),
        }

        // Delete: a control subscription gets the next event, the deleted one does not.
        client
            .webhooks()
            .delete(created.id.clone())
            .send()
            .await
            .expect("delete");
        let control = client
            .webhooks()
            .create(CreateWebhook::new(
                hooks.url("control"),
                [EventType::OrderStatusChanged],
            ))
            .send()
            .await
            .expect("control subscription");
        hooks.set_secret("control", &control.secret);
        client
            .orders()
            .sync(order(
                OrderStatus::Measured,
                PaymentStatus::DepositPaid,
                200_000,
                3,
            ))
            .send()
            .await
            .expect("second status change");
        let last = hooks.next().await;
        assert_eq!(last.path, "control", "{last:?}");
        assert_eq!(last.event.event_type(), EventType::OrderStatusChanged);
        // Deliveries are fanned out to the subscriptions that exist when the change commits, so
        // the control's delivery means the deleted subscription's turn has passed: nothing else
        // arrived, and its log is gone with it.
        assert!(hooks.rx.try_recv().is_err(), "an extra delivery arrived");
        let listed = client.webhooks().list().send().await.expect("list");
        assert_eq!(listed.items.len(), 1);
        assert_eq!(listed.items[0].id, control.id);
        let gone = client
            .webhooks()
            .deliveries(created.id.clone())
            .send()
            .await
            .expect_err("deleted");
        assert_eq!(gone.status(), Some(StatusCode::NOT_FOUND), "{gone:?}");

        hooks.task.abort();
        server.stop().await;
    }
}
