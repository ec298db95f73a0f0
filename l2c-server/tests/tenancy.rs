//! Tenant isolation (issue 13) through real HTTP, on SQLite and (when `L2C_TEST_DATABASE_URL` is
//! set) PostgreSQL: every case is checked from both clients' side.
//!
//! - a customer's view comes from the reader's own leads and orders;
//! - `(source, externalLeadId)`, `(method, channelTransactionId)` and `externalOrderNo` are unique
//!   per client, and a 409 never reveals another client's data;
//! - the all-customers grant widens customers, never orders;
//! - the demo client appears only on loopback, without the grant;
//! - an order cannot say its deposit is paid while `paymentStatus` is `UNPAID`.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use l2c_core::clock::MockClock;
use l2c_core::{ClientId, Scopes};
use l2c_server::store::Db;
use l2c_server::testing::{Backend, TestClient, TestDb, TestOptions, TestServer};
use reqwest::Response;
use serde_json::{Value, json};
use sqlx::Row;

/// 2026-11-20T02:00:00Z, far from the real time of the run.
const T0: u64 = 1_795_140_000;

struct Env {
    server: TestServer,
    clock: MockClock,
    a: TestClient,
    a_token: String,
    b: TestClient,
    b_token: String,
}

impl Env {
    async fn start(backend: Backend) -> Env {
        let clock = MockClock::at_unix(T0);
        let options = TestOptions {
            clock: Some(Arc::new(clock.clone())),
            ..TestOptions::default()
        };
        let server = TestServer::start_with(backend, options).await;
        let a = server.create_client(Scopes::all()).await;
        let b = server.create_client(Scopes::all()).await;
        let a_token = server.token(&a).await;
        let b_token = server.token(&b).await;
        Env {
            server,
            clock,
            a,
            a_token,
            b,
            b_token,
        }
    }

    async fn post(&self, token: &str, path: &str, body: &Value) -> Response {
        self.server
            .http()
            .post(self.server.url(path))
            .header("x-request-id", uuid::Uuid::new_v4().to_string())
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// POSTs and returns the status and the body as text and JSON.
    async fn post_json(&self, token: &str, path: &str, body: &Value) -> (u16, String, Value) {
        let res = self.post(token, path, body).await;
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::Null);
        (status, text, value)
    }

    async fn get_json(&self, token: &str, path: &str) -> (u16, String, Value) {
        let res = self
            .server
            .http()
            .get(self.server.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::Null);
        (status, text, value)
    }

    async fn customer(&self, token: &str, id: &str) -> (u16, String, Value) {
        self.get_json(token, &format!("/api/mobile/customers/{id}"))
            .await
    }

    /// The outbox events of `client`: (type, payload).
    async fn events(&self, client: &TestClient) -> Vec<(String, Value)> {
        sqlx::query(
            "SELECT event_type, payload FROM webhook_events WHERE client_id = $1 \
             ORDER BY created_at, id",
        )
        .bind(&client.id)
        .fetch_all(self.server.db.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.get::<String, _>("event_type"),
                serde_json::from_str(&r.get::<String, _>("payload")).unwrap(),
            )
        })
        .collect()
    }

    fn tick(&self) {
        self.clock.advance(Duration::from_secs(3600));
    }
}

fn lead(source: &str, external_id: &str, name: &str, mobile: &str, city: &str) -> Value {
    json!({
        "source": source,
        "externalLeadId": external_id,
        "name": name,
        "mobile": mobile,
        "province": if city == "杭州市" { "浙江省" } else { "广东省" },
        "city": city,
        "submittedAt": "2026-11-20T10:15:00+08:00"
    })
}

fn order(no: &str, version: i64, mobile: &str, name: &str, transaction: &str) -> Value {
    json!({
        "externalOrderNo": no,
        "status": "DEPOSIT_PAID",
        "paymentStatus": "DEPOSIT_PAID",
        "amounts": {"total": 3_980_000, "deposit": 500_000, "paid": 500_000, "currency": "CNY"},
        "items": [{"name": "主卧衣柜", "quantity": 1, "unitPrice": 3_980_000}],
        "customer": {"name": name, "mobile": mobile},
        "version": version,
        "payments": [{"kind": "DEPOSIT", "method": "WECHAT_PAY", "amount": 500_000,
                      "channelTransactionId": transaction,
                      "paidAt": "2026-11-20T10:15:00+08:00"}]
    })
}

const LEADS: &str = "/api/mobile/leads/hook";
const SYNC: &str = "/api/mobile/orders/sync";
const MOBILE_A: &str = "13812345678";

fn assert_mentions_none(text: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!text.contains(s), "`{s}` leaked in {text}");
    }
}

#[tokio::test]
async fn a_customer_reads_only_from_the_readers_own_leads_and_orders() {
    for backend in Backend::available() {
        let env = Env::start(backend).await;
        // A: a DOUYIN lead in Hangzhou, then an order (stage CUSTOMER).
        let (status, _, a_lead) = env
            .post_json(
                &env.a_token,
                LEADS,
                &lead("DOUYIN", "dy-A-1", "张三丰", MOBILE_A, "杭州市"),
            )
            .await;
        assert_eq!(status, 201);
        let customer = a_lead["customerId"].as_str().unwrap().to_owned();
        let a_created = env.customer(&env.a_token, &customer).await.2["createdAt"].clone();
        let (status, _, a_order) = env
            .post_json(
                &env.a_token,
                SYNC,
                &order("ERP-A-1", 1, MOBILE_A, "张三丰", "wx-A-1"),
            )
            .await;
        assert_eq!(status, 201);
        let a_order_id = a_order["orderId"].as_str().unwrap().to_owned();
        let (status, _, a_before) = env.customer(&env.a_token, &customer).await;
        assert_eq!(status, 200);
        assert_eq!(a_before["name"], "张**");
        assert_eq!(a_before["region"]["city"], "杭州市");
        assert_eq!(a_before["tags"], json!(["DOUYIN"]));
        assert_eq!(a_before["stage"], "CUSTOMER");
        assert_eq!(a_before["orderIds"], json!([a_order_id.as_str()]));
        assert_eq!(a_before["createdAt"], a_created);

        // An hour later B pushes a lead with the same mobile: the same customer, B's view only.
        env.tick();
        let (status, text, b_lead) = env
            .post_json(
                &env.b_token,
                LEADS,
                &lead("XIAOHONGSHU", "xhs-B-1", "李四", MOBILE_A, "深圳市"),
            )
            .await;
        assert_eq!(status, 201, "{text}");
        assert_eq!(
            b_lead["customerId"],
            customer.as_str(),
            "one customer per mobile"
        );
        let (status, text, b_view) = env.customer(&env.b_token, &customer).await;
        assert_eq!(status, 200, "{text}");
        assert_eq!(b_view["name"], "李*", "B's name, not the length of A's");
        assert_eq!(b_view["region"]["city"], "深圳市");
        assert_eq!(b_view["region"]["province"], "广东省");
        assert_eq!(b_view["tags"], json!(["XIAOHONGSHU"]));
        assert_eq!(
            b_view["stage"], "LEAD",
            "A's order does not make B's lead a customer"
        );
        assert_eq!(b_view["orderIds"], json!([]));
        assert_ne!(b_view["createdAt"], a_created, "B's first link, not A's");
        assert!(
            b_view["createdAt"]
                .as_str()
                .unwrap()
                .starts_with("2026-11-20T11:00:00"),
            "{b_view}"
        );
        assert_mentions_none(&text, &["杭州", "DOUYIN", &a_order_id, "张"]);
        // A's view is unchanged.
        assert_eq!(env.customer(&env.a_token, &customer).await.2, a_before);

        // B syncs an order with `customer.mobile`: B's stage becomes CUSTOMER with B's order only.
        let (status, _, b_order) = env
            .post_json(
                &env.b_token,
                SYNC,
                &order("ERP-B-1", 1, MOBILE_A, "王五", "wx-B-1"),
            )
            .await;
        assert_eq!(status, 201);
        let b_order_id = b_order["orderId"].as_str().unwrap().to_owned();
        let (_, text, b_view) = env.customer(&env.b_token, &customer).await;
        assert_eq!(b_view["stage"], "CUSTOMER");
        assert_eq!(b_view["orderIds"], json!([b_order_id.as_str()]));
        assert_eq!(b_view["name"], "李*", "B's first name stays");
        assert_mentions_none(&text, &[&a_order_id, "杭州", "DOUYIN"]);
        let (_, text, a_view) = env.customer(&env.a_token, &customer).await;
        assert_eq!(a_view, a_before, "B's order changes nothing of A's view");
        assert_mentions_none(&text, &[&b_order_id, "深圳", "XIAOHONGSHU"]);

        // C is linked by an order sync alone: its own name, no region, no tags, its time.
        env.tick();
        let c = env.server.create_client(Scopes::all()).await;
        let c_token = env.server.token(&c).await;
        let (status, _, c_order) = env
            .post_json(
                &c_token,
                SYNC,
                &order("ERP-C-1", 1, MOBILE_A, "欧阳娜娜", "wx-C-1"),
            )
            .await;
        assert_eq!(status, 201);
        let (status, text, c_view) = env.customer(&c_token, &customer).await;
        assert_eq!(status, 200);
        assert_eq!(c_view["name"], "欧***");
        assert_eq!(c_view["region"], json!({}), "{c_view}");
        assert_eq!(c_view["tags"], json!([]));
        assert_eq!(c_view["stage"], "CUSTOMER");
        assert_eq!(c_view["orderIds"], json!([c_order["orderId"]]));
        assert!(
            c_view["createdAt"]
                .as_str()
                .unwrap()
                .starts_with("2026-11-20T12:00:00"),
            "{c_view}"
        );
        assert_mentions_none(&text, &[&a_order_id, &b_order_id, "杭州", "深圳"]);
        env.server.stop().await;
    }
}

#[tokio::test]
async fn lead_ids_are_unique_per_client_and_reveal_nothing() {
    for backend in Backend::available() {
        let env = Env::start(backend).await;
        // B takes A's (source, externalLeadId) first, with another person.
        let (status, _, b_first) = env
            .post_json(
                &env.b_token,
                LEADS,
                &lead("DOUYIN", "dy-A-2", "李四", "13900000000", "深圳市"),
            )
            .await;
        assert_eq!(status, 201);
        // A's real push is a lead of its own: 201, nothing of B's.
        let (status, text, a_first) = env
            .post_json(
                &env.a_token,
                LEADS,
                &lead("DOUYIN", "dy-A-2", "张三丰", MOBILE_A, "杭州市"),
            )
            .await;
        assert_eq!(status, 201, "{text}");
        assert_eq!(a_first["duplicate"], false);
        assert_ne!(a_first["leadId"], b_first["leadId"]);
        assert_ne!(a_first["customerId"], b_first["customerId"]);
        assert_mentions_none(
            &text,
            &[
                b_first["leadId"].as_str().unwrap(),
                b_first["customerId"].as_str().unwrap(),
            ],
        );
        // Each retry answers with the retrying client's own ids.
        for (token, first, mobile) in [
            (&env.a_token, &a_first, MOBILE_A),
            (&env.b_token, &b_first, "13900000000"),
        ] {
            let (status, text, again) = env
                .post_json(
                    token,
                    LEADS,
                    &lead("DOUYIN", "dy-A-2", "王五", mobile, "北京市"),
                )
                .await;
            assert_eq!(status, 200, "{text}");
            assert_eq!(again["duplicate"], true);
            assert_eq!(again["leadId"], first["leadId"]);
            assert_eq!(again["customerId"], first["customerId"]);
        }
        // B reusing A's id with A's customer's mobile is one more lead of B's; B still sees
        // only its own view and no response to B names A's ids.
        let (status, text, b_same) = env
            .post_json(
                &env.b_token,
                LEADS,
                &lead("XIAOHONGSHU", "dy-A-2", "李四", MOBILE_A, "深圳市"),
            )
            .await;
        assert_eq!(status, 201);
        assert_eq!(b_same["customerId"], a_first["customerId"]);
        assert_mentions_none(&text, &[a_first["leadId"].as_str().unwrap()]);
        let (_, text, b_view) = env
            .customer(&env.b_token, a_first["customerId"].as_str().unwrap())
            .await;
        assert_eq!(b_view["tags"], json!(["XIAOHONGSHU"]));
        assert_mentions_none(&text, &["DOUYIN", "杭州"]);
        assert_eq!(env.server.db.leads().count().await.unwrap(), 3);
        let (_, _, a_view) = env
            .customer(&env.a_token, a_first["customerId"].as_str().unwrap())
            .await;
        assert_eq!(a_view["tags"], json!(["DOUYIN"]));
        assert_eq!(a_view["name"], "张**");
        env.server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pushes_of_one_lead_id_make_one_lead_per_client() {
    for backend in Backend::available() {
        let env = Env::start(backend).await;
        let body = lead("DOUYIN", "dy-RACE", "张三丰", MOBILE_A, "杭州市");
        let pushes = (0..8).map(|i| {
            let token = if i % 2 == 0 {
                &env.a_token
            } else {
                &env.b_token
            };
            env.post_json(token, LEADS, &body)
        });
        let answers = futures_util::future::join_all(pushes).await;
        let mut created = [0, 0];
        let mut lead_ids = [
            std::collections::HashSet::new(),
            std::collections::HashSet::new(),
        ];
        for (i, (status, text, v)) in answers.into_iter().enumerate() {
            assert!(status == 201 || status == 200, "{status}: {text}");
            if status == 201 {
                created[i % 2] += 1;
            }
            lead_ids[i % 2].insert(v["leadId"].as_str().unwrap().to_owned());
        }
        assert_eq!(created, [1, 1], "{backend:?}");
        assert_eq!(lead_ids[0].len(), 1);
        assert_eq!(lead_ids[1].len(), 1);
        assert!(lead_ids[0].is_disjoint(&lead_ids[1]));
        assert_eq!(env.server.db.leads().count().await.unwrap(), 2);
        env.server.stop().await;
    }
}

#[tokio::test]
async fn payments_are_unique_per_client() {
    for backend in Backend::available() {
        let env = Env::start(backend).await;
        // B records A's transaction id first, on an order of its own.
        let (status, _, b_order) = env
            .post_json(
                &env.b_token,
                SYNC,
                &order("ERP-B-9", 1, "13900000000", "李四", "wx-A-2"),
            )
            .await;
        assert_eq!(status, 201);
        assert_eq!(b_order["paymentsRecorded"], 1);
        // A's real sync records it too and A gets its PAYMENT_RECEIVED.
        let (status, text, a_order) = env
            .post_json(
                &env.a_token,
                SYNC,
                &order("ERP-A-2", 1, MOBILE_A, "张三丰", "wx-A-2"),
            )
            .await;
        assert_eq!(status, 201, "{text}");
        assert_eq!(a_order["paymentsRecorded"], 1);
        assert_mentions_none(&text, &[b_order["orderId"].as_str().unwrap(), "ERP-B-9"]);
        let a_events = env.events(&env.a).await;
        // One change: both events carry the same (test clock) time, so compare them unordered.
        let mut kinds: Vec<&str> = a_events.iter().map(|(t, _)| t.as_str()).collect();
        kinds.sort_unstable();
        assert_eq!(kinds, ["ORDER_CREATED", "PAYMENT_RECEIVED"]);
        let (_, payment) = a_events
            .iter()
            .find(|(t, _)| t == "PAYMENT_RECEIVED")
            .unwrap();
        assert_eq!(
            payment["data"]["channelTransactionId"], "wx-A-2",
            "{payment}"
        );
        assert_eq!(payment["data"]["orderId"], a_order["orderId"]);

        // A's later version of the same order does not record it twice.
        let mut next = order("ERP-A-2", 2, MOBILE_A, "张三丰", "wx-A-2");
        next["status"] = json!("MEASURE_PENDING");
        let (status, _, again) = env.post_json(&env.a_token, SYNC, &next).await;
        assert_eq!(status, 200);
        assert_eq!(again["paymentsRecorded"], 0);
        // B's second use of its own id: on the same order skipped, on another order 409 that
        // names only B's own input.
        let (status, _, again) = env
            .post_json(
                &env.b_token,
                SYNC,
                &order("ERP-B-9", 2, "13900000000", "李四", "wx-A-2"),
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(again["paymentsRecorded"], 0);
        let (status, text, p) = env
            .post_json(
                &env.b_token,
                SYNC,
                &order("ERP-B-10", 1, "13900000000", "李四", "wx-A-2"),
            )
            .await;
        assert_eq!(status, 409, "{text}");
        assert_eq!(p["code"], "payment_conflict");
        assert_mentions_none(&text, &[a_order["orderId"].as_str().unwrap(), "ERP-A-2"]);
        for (order, count) in [(&a_order, 1), (&b_order, 1)] {
            let id = order["orderId"].as_str().unwrap();
            assert_eq!(
                env.server
                    .db
                    .orders()
                    .payment_count(&id.into())
                    .await
                    .unwrap(),
                count
            );
        }
        let payments_received = |events: Vec<(String, Value)>| {
            events
                .iter()
                .filter(|(t, _)| t == "PAYMENT_RECEIVED")
                .count()
        };
        assert_eq!(payments_received(env.events(&env.a).await), 1);
        assert_eq!(payments_received(env.events(&env.b).await), 1);
        env.server.stop().await;
    }
}

#[tokio::test]
async fn order_numbers_are_per_client_and_the_grant_opens_no_orders() {
    for backend in Backend::available() {
        let env = Env::start(backend).await;
        let (status, _, a_lead) = env
            .post_json(
                &env.a_token,
                LEADS,
                &lead("DOUYIN", "dy-A-3", "张三丰", MOBILE_A, "杭州市"),
            )
            .await;
        assert_eq!(status, 201);
        let customer = a_lead["customerId"].as_str().unwrap().to_owned();
        // The same externalOrderNo for both clients: two orders.
        let (status, _, a_order) = env
            .post_json(
                &env.a_token,
                SYNC,
                &order("ERP-SAME", 1, MOBILE_A, "张三丰", "wx-S-1"),
            )
            .await;
        assert_eq!(status, 201);
        let (status, text, b_order) = env
            .post_json(
                &env.b_token,
                SYNC,
                &order("ERP-SAME", 1, "13900000000", "李四", "wx-S-2"),
            )
            .await;
        assert_eq!(status, 201, "{text}");
        assert_ne!(a_order["orderId"], b_order["orderId"]);
        let (status, _, a_only) = env
            .post_json(
                &env.a_token,
                SYNC,
                &order("ERP-A-ONLY", 1, MOBILE_A, "张三丰", "wx-O-1"),
            )
            .await;
        assert_eq!(status, 201);
        for (token, own) in [(&env.a_token, &a_order), (&env.b_token, &b_order)] {
            let (status, _, view) = env
                .get_json(token, "/api/mobile/orders/ERP-SAME/status")
                .await;
            assert_eq!(status, 200);
            assert_eq!(view["orderId"], own["orderId"]);
        }

        // Ungranted, B can neither read A's customer nor attach an order to it by id.
        assert_eq!(env.customer(&env.b_token, &customer).await.0, 404);
        let mut by_id = order("ERP-B-BY-ID", 1, MOBILE_A, "李四", "wx-S-3");
        by_id.as_object_mut().unwrap().remove("customer");
        by_id["customerId"] = json!(customer);
        let (status, text, p) = env.post_json(&env.b_token, SYNC, &by_id).await;
        assert_eq!(status, 422, "{text}");
        assert_eq!(p["field"], "customerId");
        assert_eq!(
            env.customer(&env.b_token, &customer).await.0,
            404,
            "no link"
        );
        assert_eq!(env.server.db.orders().count().await.unwrap(), 3);

        // B granted every customer reads A's customer, but none of A's orders.
        assert!(
            env.server
                .db
                .customers()
                .grant_all(&ClientId::new(env.b.id.as_str()), true)
                .await
                .unwrap()
        );
        let (status, text, view) = env.customer(&env.b_token, &customer).await;
        assert_eq!(status, 200, "{text}");
        assert_eq!(view["tags"], json!(["DOUYIN"]), "the brand's view");
        assert_eq!(view["orderIds"], json!([]), "never A's orders");
        assert_mentions_none(
            &text,
            &[
                a_order["orderId"].as_str().unwrap(),
                a_only["orderId"].as_str().unwrap(),
            ],
        );
        for key in [
            a_order["orderId"].as_str().unwrap(),
            a_only["orderId"].as_str().unwrap(),
            "ERP-A-ONLY",
        ] {
            let (status, text, p) = env
                .get_json(&env.b_token, &format!("/api/mobile/orders/{key}/status"))
                .await;
            assert_eq!(status, 404, "{key}: {text}");
            assert_eq!(p["code"], "not_found");
        }
        // A still reads its own, ungranted.
        let (status, _, _) = env
            .get_json(&env.a_token, "/api/mobile/orders/ERP-A-ONLY/status")
            .await;
        assert_eq!(status, 200);
        env.server.stop().await;
    }
}

#[tokio::test]
async fn an_unpaid_order_cannot_claim_a_paid_deposit() {
    for backend in Backend::available() {
        let env = Env::start(backend).await;
        let unpaid = |no: &str, version: i64, status: &str| {
            let mut o = order(no, version, MOBILE_A, "张三丰", "unused");
            o["status"] = json!(status);
            o["paymentStatus"] = json!("UNPAID");
            o["amounts"]["paid"] = json!(0);
            o["payments"] = json!([]);
            o
        };
        for status in ["DEPOSIT_PAID", "SCHEDULING", "COMPLETED"] {
            let (code, text, p) = env
                .post_json(&env.a_token, SYNC, &unpaid("ERP-U-1", 1, status))
                .await;
            assert_eq!(code, 422, "{status}: {text}");
            assert_eq!(p["code"], "status_payment_mismatch", "{text}");
            assert_eq!(p["field"], "paymentStatus");
            let detail = p["detail"].as_str().unwrap();
            assert!(
                detail.contains("`status`") && detail.contains(status),
                "{detail}"
            );
        }
        assert_eq!(env.server.db.orders().count().await.unwrap(), 0);
        assert!(env.events(&env.a).await.is_empty(), "no ORDER_CREATED");

        // An update to UNPAID under DEPOSIT_PAID is refused the same way, and writes nothing.
        let (status, _, created) = env
            .post_json(
                &env.a_token,
                SYNC,
                &order("ERP-U-2", 1, MOBILE_A, "张三丰", "wx-U-2"),
            )
            .await;
        assert_eq!(status, 201);
        let before = env.events(&env.a).await.len();
        let (code, _, p) = env
            .post_json(&env.a_token, SYNC, &unpaid("ERP-U-2", 2, "DEPOSIT_PAID"))
            .await;
        assert_eq!(code, 422);
        assert_eq!(p["code"], "status_payment_mismatch");
        assert_eq!(env.events(&env.a).await.len(), before);
        let (_, _, view) = env
            .get_json(
                &env.a_token,
                &format!(
                    "/api/mobile/orders/{}/status",
                    created["orderId"].as_str().unwrap()
                ),
            )
            .await;
        assert_eq!(view["paymentStatus"], "DEPOSIT_PAID");
        assert_eq!(view["version"], 1);

        // CANCELLED before any deposit may be UNPAID: stored, but no ORDER_CREATED.
        let (status, text, _) = env
            .post_json(&env.a_token, SYNC, &unpaid("ERP-U-3", 1, "CANCELLED"))
            .await;
        assert_eq!(status, 201, "{text}");
        assert_eq!(env.events(&env.a).await.len(), before);
        // REFUNDED is not UNPAID: an after-sales order after a refund is fine.
        let mut refunded = order("ERP-U-4", 1, MOBILE_A, "张三丰", "wx-U-4");
        refunded["status"] = json!("COMPLETED");
        refunded["paymentStatus"] = json!("REFUNDED");
        let (status, text, _) = env.post_json(&env.a_token, SYNC, &refunded).await;
        assert_eq!(status, 201, "{text}");
        env.server.stop().await;
    }
}

#[tokio::test]
async fn the_demo_client_appears_only_on_loopback_and_without_the_grant() {
    for backend in Backend::available() {
        let s = TestServer::start(backend).await;
        for listen in ["0.0.0.0:8080", "192.168.1.20:8080", "[::]:8080"] {
            let created = l2c_server::server::create_demo_client(
                &s.db,
                listen.parse().unwrap(),
                "http://203.0.113.7:8080",
            )
            .await
            .unwrap();
            assert!(!created, "{listen}");
            assert_eq!(s.db.clients().count().await.unwrap(), 0, "{listen}");
        }
        let created = l2c_server::server::create_demo_client(
            &s.db,
            "[::1]:8080".parse().unwrap(),
            &s.base_url,
        )
        .await
        .unwrap();
        assert!(created);
        let clients = s.db.clients().list().await.unwrap();
        assert_eq!(clients.len(), 1);
        assert_eq!(clients[0].scopes, Scopes::all());
        assert!(
            !clients[0].all_customers,
            "the demo client reads only its own"
        );
        s.stop().await;
    }
}

/// The rows a database had before 0005 survive it: leads and payments keep every column,
/// payments gain their order's client, and links get the linking client's own details.
#[tokio::test]
async fn migration_0005_keeps_existing_rows() {
    for backend in Backend::available() {
        let test_db = TestDb::create(backend).await;
        let db = Db::connect_without_migrating(&test_db.url).await.unwrap();
        let dir = std::env::temp_dir().join(format!("l2c_mig_{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir(&dir).unwrap();
        let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        for entry in std::fs::read_dir(&source).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            if name.as_str() < "0005" {
                std::fs::copy(&path, dir.join(&name)).unwrap();
            }
        }
        sqlx::migrate::Migrator::new(dir.as_path())
            .await
            .unwrap()
            .run(db.pool())
            .await
            .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        for sql in [
            // cus_1 was created by A's lead at 1000; B linked by a lead at 2000; C by an order.
            "INSERT INTO customers (id, mobile_e164, name, province, city, created_at) \
             VALUES ('cus_1', '+8613812345678', '张三丰', '浙江省', '杭州市', 1000)",
            "INSERT INTO client_customers (client_id, customer_id, linked_at) \
             VALUES ('A', 'cus_1', 1000), ('B', 'cus_1', 2000), ('C', 'cus_1', 3000)",
            "INSERT INTO leads (id, client_id, source, external_lead_id, customer_id, name, \
             mobile_e164, province, city, intent, form_fields, attribution, submitted_at, \
             raw_payload, created_at) VALUES \
             ('lead_a', 'A', 'DOUYIN', 'dy-1', 'cus_1', '张三丰', '+8613812345678', '浙江省', \
              '杭州市', NULL, '[]', NULL, '2026-11-20T10:15:00+08:00', '{\"a\":1}', 1000), \
             ('lead_b', 'B', 'XIAOHONGSHU', 'x-1', 'cus_1', '李四', '+8613812345678', '广东省', \
              '深圳市', 'intent', '[]', NULL, '2026-11-20T10:15:00+08:00', '{\"b\":1}', 2000)",
            "INSERT INTO orders (id, client_id, external_order_no, customer_id, status, \
             payment_status, total_fen, deposit_fen, paid_fen, currency, items, milestones, \
             version, created_at, updated_at) VALUES ('ord_c', 'C', 'E-1', 'cus_1', \
             'DEPOSIT_PAID', 'DEPOSIT_PAID', 100, 10, 10, 'CNY', '[]', '[]', 1, 3000, 3000)",
            "INSERT INTO payments (id, order_id, kind, method, amount_fen, \
             channel_transaction_id, paid_at, recorded_at) VALUES ('pay_c', 'ord_c', 'DEPOSIT', \
             'WECHAT_PAY', 10, 'wx-1', '2026-11-20T10:15:00+08:00', 3000)",
        ] {
            sqlx::query(sql).execute(db.pool()).await.unwrap();
        }
        db.migrate().await.unwrap();

        let lead = sqlx::query(
            "SELECT client_id, source, external_lead_id, customer_id, name, intent, \
             raw_payload, created_at FROM leads WHERE id = 'lead_b'",
        )
        .fetch_one(db.pool())
        .await
        .unwrap();
        assert_eq!(lead.get::<String, _>("client_id"), "B");
        assert_eq!(lead.get::<String, _>("external_lead_id"), "x-1");
        assert_eq!(
            lead.get::<Option<String>, _>("intent").as_deref(),
            Some("intent")
        );
        assert_eq!(lead.get::<String, _>("raw_payload"), "{\"b\":1}");
        assert_eq!(lead.get::<i64, _>("created_at"), 2000);
        assert_eq!(db.leads().count().await.unwrap(), 2);
        let payment = sqlx::query(
            "SELECT client_id, order_id, method, channel_transaction_id, amount_fen \
             FROM payments WHERE id = 'pay_c'",
        )
        .fetch_one(db.pool())
        .await
        .unwrap();
        assert_eq!(payment.get::<String, _>("client_id"), "C");
        assert_eq!(payment.get::<String, _>("order_id"), "ord_c");
        assert_eq!(payment.get::<i64, _>("amount_fen"), 10);
        let links = sqlx::query(
            "SELECT client_id, name, city, linked_at FROM client_customers ORDER BY client_id",
        )
        .fetch_all(db.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.get::<String, _>("client_id"),
                r.get::<String, _>("name"),
                r.get::<Option<String>, _>("city"),
                r.get::<i64, _>("linked_at"),
            )
        })
        .collect::<Vec<_>>();
        assert_eq!(
            links,
            [
                ("A".into(), "张三丰".into(), Some("杭州市".into()), 1000),
                ("B".into(), "李四".into(), Some("深圳市".into()), 2000),
                ("C".into(), String::new(), None, 3000),
            ]
        );
        // The new uniqueness: another client may reuse the same ids.
        sqlx::query(
            "INSERT INTO leads (id, client_id, source, external_lead_id, customer_id, name, \
             mobile_e164, form_fields, submitted_at, raw_payload, created_at) VALUES \
             ('lead_x', 'B', 'DOUYIN', 'dy-1', 'cus_1', 'x', '+8613812345678', '[]', \
              '2026-11-20T10:15:00+08:00', '{}', 4000)",
        )
        .execute(db.pool())
        .await
        .unwrap();
        let again = sqlx::query(
            "INSERT INTO leads (id, client_id, source, external_lead_id, customer_id, name, \
             mobile_e164, form_fields, submitted_at, raw_payload, created_at) VALUES \
             ('lead_y', 'B', 'DOUYIN', 'dy-1', 'cus_1', 'x', '+8613812345678', '[]', \
              '2026-11-20T10:15:00+08:00', '{}', 4000)",
        )
        .execute(db.pool())
        .await;
        assert!(again.is_err(), "still unique per client");
        db.close().await;
        test_db.cleanup().await;
    }
}
