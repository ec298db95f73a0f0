//! The business endpoints through real HTTP, on SQLite and (when `L2C_TEST_DATABASE_URL` is set)
//! PostgreSQL.
#![allow(clippy::unwrap_used)]

use l2c_core::{ClientId, Scope, Scopes};
use l2c_server::testing::{Backend, TestClient, TestServer};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

/// A fresh `X-Request-Id`: every POST under `/api/mobile` carries one (spec §6; the server's
/// idempotency layer refuses keyless POSTs with 400).
fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

struct Env {
    server: TestServer,
    a: TestClient,
    a_token: String,
    b: TestClient,
    b_token: String,
}

impl Env {
    async fn start(backend: Backend) -> Env {
        let server = TestServer::start(backend).await;
        let a = server.create_client(Scopes::all()).await;
        let b = server.create_client(Scopes::all()).await;
        let a_token = server.token(&a).await;
        let b_token = server.token(&b).await;
        Env {
            server,
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
            .header("x-request-id", new_request_id())
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    async fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> Response {
        self.server
            .http()
            .post(self.server.url(path))
            .header("x-request-id", new_request_id())
            .bearer_auth(&self.a_token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    async fn get(&self, token: &str, path: &str) -> Response {
        self.server
            .http()
            .get(self.server.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    async fn lead_count(&self) -> i64 {
        self.server.db.leads().count().await.unwrap()
    }

    async fn order_count(&self) -> i64 {
        self.server.db.orders().count().await.unwrap()
    }
}

async fn problem(res: Response, status: u16) -> Value {
    assert_eq!(res.status().as_u16(), status);
    assert_eq!(
        res.headers()["content-type"],
        "application/problem+json",
        "problem content type"
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert!(body["code"].is_string());
    assert!(body["requestId"].is_string(), "{body}");
    body
}

fn lead(external_id: &str, mobile: &str) -> Value {
    json!({
        "source": "DOUYIN",
        "externalLeadId": external_id,
        "name": "张三丰",
        "mobile": mobile,
        "province": "浙江省",
        "city": "杭州市",
        "intent": "全屋定制 120㎡",
        "formFields": [{"label": "户型", "value": "三室两厅"}],
        "attribution": {"campaignId": "c-1", "clickId": "clk-9"},
        "submittedAt": "2026-11-20T10:15:00+08:00"
    })
}

fn order(no: &str, version: i64, status: &str, payment_status: &str, paid: i64) -> Value {
    json!({
        "externalOrderNo": no,
        "status": status,
        "paymentStatus": payment_status,
        "amounts": {"total": 3_980_000, "deposit": 500_000, "paid": paid, "currency": "CNY"},
        "items": [{"name": "主卧衣柜", "quantity": 1, "unitPrice": 3_980_000}],
        "milestones": [{"name": "MEASURE", "plannedAt": "2026-11-25T14:00:00+08:00"}],
        "customer": {"name": "李四", "mobile": "+86 139-1234-5678"},
        "version": version,
        "payments": [{"kind": "DEPOSIT", "method": "WECHAT_PAY", "amount": 500_000,
                      "channelTransactionId": format!("wx-{no}-1"),
                      "paidAt": "2026-11-20T10:15:00+08:00"}]
    })
}

#[tokio::test]
async fn leads_are_created_deduplicated_and_linked_by_mobile() {
    for backend in Backend::available() {
        let env = Env::start(backend).await;
        let res = env
            .post(
                &env.a_token,
                "/api/mobile/leads/hook",
                &lead("dy-1", "138 1234 5678"),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let first: Value = res.json().await.unwrap();
        assert_eq!(first["duplicate"], false);
        let lead_id = first["leadId"].as_str().unwrap().to_owned();
        let customer_id = first["customerId"].as_str().unwrap().to_owned();

        // Same (source, externalLeadId) with other data: 200, original ids, nothing overwritten.
        let mut again = lead("dy-1", "13900000000");
        again["name"] = json!("王五");
        let res = env
            .post(&env.a_token, "/api/mobile/leads/hook", &again)
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let dup: Value = res.json().await.unwrap();
        assert_eq!(dup["duplicate"], true);
        assert_eq!(dup["leadId"], lead_id.as_str());
        assert_eq!(dup["customerId"], customer_id.as_str());
        let raw = env
            .server
            .db
            .leads()
            .raw_payload(&lead_id.as_str().into())
            .await
            .unwrap()
            .unwrap();
        assert!(
            raw.contains("138 1234 5678") && raw.contains("张三丰"),
            "{raw}"
        );

        // Another channel, same person written differently: the same customer.
        let mut other = lead("xhs-7", "+86 138-1234-5678");
        other["source"] = json!("XIAOHONGSHU");
        let res = env
            .post(&env.a_token, "/api/mobile/leads/hook", &other)
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let second: Value = res.json().await.unwrap();
        assert_eq!(second["customerId"], customer_id.as_str());
        assert_ne!(second["leadId"], lead_id.as_str());
        assert_eq!(env.lead_count().await, 2);
        env.server.stop().await;
    }
}

#[tokio::test]
async fn bad_leads_are_4xx_problems_naming_the_field_and_write_nothing() {
    for backend in Backend::available() {
        let env = Env::start(backend).await;
        let path = "/api/mobile/leads/hook";
        let mut cases: Vec<(Value, u16, &str)> = Vec::new();
        let mut bad_mobile = lead("x1", "12345678901");
        bad_mobile["mobile"] = json!("12345678901");
        cases.push((bad_mobile, 422, "mobile"));
        let mut bad_enum = lead("x2", "13812345678");
        bad_enum["source"] = json!("TIKTOK");
        cases.push((bad_enum, 422, "source"));
        let mut missing = lead("x3", "13812345678");
        missing.as_object_mut().unwrap().remove("name");
        cases.push((missing, 422, "name"));
        let mut wrong_type = lead("x4", "13812345678");
        wrong_type["formFields"] = json!("户型");
        cases.push((wrong_type, 422, "formFields"));
        let mut bad_time = lead("x5", "13812345678");
        bad_time["submittedAt"] = json!("yesterday");
        cases.push((bad_time, 422, "submittedAt"));
        let mut empty_id = lead("", "13812345678");
        empty_id["externalLeadId"] = json!("");
        cases.push((empty_id, 422, "externalLeadId"));
        for (body, status, field) in cases {
            let p = problem(env.post(&env.a_token, path, &body).await, status).await;
            assert_eq!(p["field"], field, "{p}");
            assert!(p["detail"].as_str().unwrap().contains(field), "{p}");
        }
        let p = problem(
            env.post_raw(path, "application/json", b"{\"source\":".to_vec())
                .await,
            400,
        )
        .await;
        assert_eq!(p["code"], "malformed_json");
        let p = problem(
            env.post_raw(
                path,
                "text/plain",
                serde_json::to_vec(&lead("x6", "13812345678")).unwrap(),
            )
            .await,
            415,
        )
        .await;
        assert_eq!(p["code"], "unsupported_media_type");
        let mut huge = lead("x7", "13812345678");
        huge["intent"] = json!("x".repeat(1 << 20));
        let p = problem(
            env.post_raw(path, "application/json", serde_json::to_vec(&huge).unwrap())
                .await,
            413,
        )
        .await;
        assert_eq!(p["code"], "payload_too_large");
        assert_eq!(env.lead_count().await, 0);
        assert_eq!(env.server.db.customers().count().await.unwrap(), 0);
        env.server.stop().await;
    }
}

#[tokio::test]
async fn customers_are_masked_and_invisible_to_other_clients() {
    for backend in Backend::available() {
        let env = Env::start(backend).await;
        let res = env
            .post(
                &env.a_token,
                "/api/mobile/leads/hook",
                &lead("dy-1", "13812345678"),
            )
            .await;
        let created: Value = res.json().await.unwrap();
        let id = created["customerId"].as_str().unwrap();
        let path = format!("/api/mobile/customers/{id}");

        let res = env.get(&env.a_token, &path).await;
        assert_eq!(res.status(), StatusCode::OK);
        let text = res.text().await.unwrap();
        for raw in ["13812345678", "8613812345678", "张三丰", "三丰"] {
            assert!(!text.contains(raw), "raw PII `{raw}` in {text}");
        }
        let view: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(view["mobile"], "138****5678");
        assert_eq!(view["name"], "张**");
        assert_eq!(view["region"]["city"], "杭州市");
        assert_eq!(view["stage"], "LEAD");
        assert_eq!(view["tags"], json!(["DOUYIN"]));

        // Client B has no link: 404, exactly like an unknown id.
        let p = problem(env.get(&env.b_token, &path).await, 404).await;
        let unknown = problem(
            env.get(&env.b_token, "/api/mobile/customers/cus_nope")
                .await,
            404,
        )
        .await;
        assert_eq!(p["detail"], unknown["detail"]);

        // Granted every customer: B sees it.
        assert!(
            env.server
                .db
                .customers()
                .grant_all(&ClientId::new(env.b.id.as_str()), true)
                .await
                .unwrap()
        );
        assert_eq!(env.get(&env.b_token, &path).await.status(), StatusCode::OK);
        let _ = &env.a;
        env.server.stop().await;
    }
}

#[tokio::test]
async fn orders_sync_with_transitions_versions_and_payments() {
    for backend in Backend::available() {
        let env = Env::start(backend).await;
        let sync = "/api/mobile/orders/sync";
        let res = env
            .post(
                &env.a_token,
                sync,
                &order("ERP-1", 1, "DEPOSIT_PAID", "DEPOSIT_PAID", 500_000),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let created: Value = res.json().await.unwrap();
        assert_eq!(created["applied"], true);
        assert_eq!(created["created"], true);
        assert_eq!(created["paymentsRecorded"], 1);
        let order_id = created["orderId"].as_str().unwrap().to_owned();

        // Forward, with the same deposit payment again (recorded once) and a new one.
        let mut next = order("ERP-1", 3, "SCHEDULING", "PARTIALLY_PAID", 2_000_000);
        next["payments"].as_array_mut().unwrap().push(json!({
            "kind": "PROGRESS", "method": "ALIPAY", "amount": 1_500_000,
            "channelTransactionId": "ali-1", "paidAt": "2026-12-01T09:00:00+08:00"}));
        let res = env.post(&env.a_token, sync, &next).await;
        assert_eq!(res.status(), StatusCode::OK);
        let updated: Value = res.json().await.unwrap();
        assert_eq!(updated["applied"], true);
        assert_eq!(updated["paymentsRecorded"], 1);
        assert_eq!(
            env.server
                .db
                .orders()
                .payment_count(&order_id.as_str().into())
                .await
                .unwrap(),
            2
        );

        // Stale version: acknowledged, not applied, state untouched.
        let res = env
            .post(
                &env.a_token,
                sync,
                &order("ERP-1", 2, "MEASURED", "DEPOSIT_PAID", 500_000),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let stale: Value = res.json().await.unwrap();
        assert_eq!(stale["applied"], false);
        assert_eq!(stale["status"], "SCHEDULING");
        assert_eq!(stale["version"], 3);
        assert_eq!(stale["paymentsRecorded"], 0, "{stale}");
        assert_eq!(
            env.server
                .db
                .orders()
                .payment_count(&order_id.as_str().into())
                .await
                .unwrap(),
            2,
            "a stale sync records no payment"
        );
        let view: Value = env
            .get(&env.a_token, "/api/mobile/orders/ERP-1/status")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(view["status"], "SCHEDULING", "{view}");
        assert_eq!(view["paymentStatus"], "PARTIALLY_PAID", "{view}");
        assert_eq!(view["version"], 3, "{view}");
        assert_eq!(view["history"].as_array().unwrap().len(), 2, "{view}");

        // Illegal transition: 409 naming both states; nothing written.
        let p = problem(
            env.post(
                &env.a_token,
                sync,
                &order("ERP-1", 4, "CANCELLED", "PARTIALLY_PAID", 2_000_000),
            )
            .await,
            409,
        )
        .await;
        assert_eq!(p["code"], "illegal_transition");
        assert_eq!(p["from"], "SCHEDULING");
        assert_eq!(p["to"], "CANCELLED");

        // Status by platform id and by external number.
        for key in [order_id.as_str(), "ERP-1"] {
            let res = env
                .get(&env.a_token, &format!("/api/mobile/orders/{key}/status"))
                .await;
            assert_eq!(res.status(), StatusCode::OK);
            let view: Value = res.json().await.unwrap();
            assert_eq!(view["orderId"], order_id.as_str());
            assert_eq!(view["status"], "SCHEDULING");
            assert_eq!(view["statusLabel"], "正在排产");
            assert_eq!(view["paymentStatus"], "PARTIALLY_PAID");
            assert_eq!(view["paymentStatusLabel"], "部分付款");
            assert_eq!(view["version"], 3);
            assert!(view["updatedAt"].as_str().unwrap().ends_with("+08:00"));
            let history = view["history"].as_array().unwrap();
            assert_eq!(history.len(), 2);
            assert_eq!(history[0]["status"], "DEPOSIT_PAID");
            assert_eq!(history[1]["version"], 3);
        }
        // Another client: 404 both ways.
        problem(
            env.get(
                &env.b_token,
                &format!("/api/mobile/orders/{order_id}/status"),
            )
            .await,
            404,
        )
        .await;
        problem(
            env.get(&env.b_token, "/api/mobile/orders/ERP-1/status")
                .await,
            404,
        )
        .await;

        // The order created its customer from `customer`; a lead with the same mobile finds it,
        // now at stage CUSTOMER and listing the order, for A only.
        let res = env
            .post(
                &env.a_token,
                "/api/mobile/leads/hook",
                &lead("dy-9", "13912345678"),
            )
            .await;
        let customer: Value = res.json().await.unwrap();
        let path = format!(
            "/api/mobile/customers/{}",
            customer["customerId"].as_str().unwrap()
        );
        let view: Value = env.get(&env.a_token, &path).await.json().await.unwrap();
        assert_eq!(view["stage"], "CUSTOMER");
        assert_eq!(view["orderIds"], json!([order_id.as_str()]));
        assert_eq!(view["name"], "李*", "the first name stays");
        problem(env.get(&env.b_token, &path).await, 404).await;
        env.server.stop().await;
    }
}

#[tokio::test]
async fn bad_orders_are_refused_without_writes() {
    for backend in Backend::available() {
        let env = Env::start(backend).await;
        let sync = "/api/mobile/orders/sync";
        let mut cases: Vec<(Value, u16, &str)> = Vec::new();
        let mut o = order("E1", 1, "DEPOSIT_PAID", "DEPOSIT_PAID", 500_000);
        o["customer"]["mobile"] = json!("1381234567");
        cases.push((o, 422, "customer.mobile"));
        let mut o = order("E1", 1, "DEPOSIT_PAID", "DEPOSIT_PAID", 500_000);
        o["status"] = json!("SHIPPING");
        cases.push((o, 422, "status"));
        let mut o = order("E1", 1, "DEPOSIT_PAID", "DEPOSIT_PAID", 500_000);
        o["amounts"]["total"] = json!("lots");
        cases.push((o, 422, "amounts.total"));
        let mut o = order("E1", 1, "DEPOSIT_PAID", "DEPOSIT_PAID", 500_000);
        o.as_object_mut().unwrap().remove("version");
        cases.push((o, 422, "version"));
        let mut o = order("E1", 1, "DEPOSIT_PAID", "DEPOSIT_PAID", 500_000);
        o["payments"][0]["amount"] = json!(-5);
        cases.push((o, 422, "payments[0].amount"));
        cases.push((
            order("E1", 1, "DEPOSIT_PAID", "FULLY_PAID", 500_000),
            422,
            "paymentStatus",
        ));
        let mut o = order("E1", 1, "DEPOSIT_PAID", "DEPOSIT_PAID", 500_000);
        o.as_object_mut().unwrap().remove("customer");
        cases.push((o, 422, "customerId"));
        let mut o = order("E1", 1, "DEPOSIT_PAID", "DEPOSIT_PAID", 500_000);
        o.as_object_mut().unwrap().remove("customer");
        o["customerId"] = json!("cus_someone_else");
        cases.push((o, 422, "customerId"));
        for (body, status, field) in cases {
            let p = problem(env.post(&env.a_token, sync, &body).await, status).await;
            assert_eq!(p["field"], field, "{p}");
        }
        assert_eq!(env.order_count().await, 0);
        assert_eq!(env.server.db.customers().count().await.unwrap(), 0);

        // A payment already recorded on another order: 409 and the second order is not created.
        env.post(
            &env.a_token,
            sync,
            &order("E1", 1, "DEPOSIT_PAID", "DEPOSIT_PAID", 500_000),
        )
        .await;
        let mut o = order("E2", 1, "DEPOSIT_PAID", "DEPOSIT_PAID", 500_000);
        o["payments"][0]["channelTransactionId"] = json!("wx-E1-1");
        let p = problem(env.post(&env.a_token, sync, &o).await, 409).await;
        assert_eq!(p["code"], "payment_conflict");
        assert_eq!(env.order_count().await, 1);
        env.server.stop().await;
    }
}

/// JSON Schema's `integer` (the published document's) includes `3.0` and `1e3`: every integer
/// body field reads them as the whole number; a fraction or a number beyond the field is refused
/// as before, naming the field.
#[tokio::test]
async fn integer_fields_accept_whole_numbers_written_as_floats() {
    for backend in Backend::available() {
        let env = Env::start(backend).await;
        let sync = "/api/mobile/orders/sync";
        // serde_json writes `3980000.0` for an f64, `2e0` is spliced in by hand.
        let with = |no: &str, total: Value, quantity: Value| {
            let mut o = order(no, 1, "DEPOSIT_PAID", "DEPOSIT_PAID", 500_000);
            o["amounts"]["total"] = total;
            o["items"][0]["quantity"] = quantity;
            o["items"][0]["unitPrice"] = json!(3_980_000.0);
            o["payments"][0]["amount"] = json!(500_000.0);
            o["version"] = json!("VERSION");
            serde_json::to_string(&o).unwrap()
        };
        let body = with("F-1", json!(3_980_000.0), json!(1.0)).replace("\"VERSION\"", "2e0");
        assert!(body.contains("\"total\":3980000.0") && body.contains("\"quantity\":1.0"));
        let res = env
            .post_raw(sync, "application/json", body.into_bytes())
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let created: Value = res.json().await.unwrap();
        assert_eq!(
            (
                created["version"].clone(),
                created["paymentsRecorded"].clone()
            ),
            (json!(2), json!(1))
        );
        let view: Value = env
            .get(&env.a_token, "/api/mobile/orders/F-1/status")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(view["version"], 2, "{view}");
        let csv = env
            .get(&env.a_token, "/api/mobile/reports/orders/export")
            .await
            .text()
            .await
            .unwrap();
        assert!(csv.contains(",3980000,500000,500000,CNY,"), "{csv}");

        for (total, quantity, field) in [
            (json!(3_980_000), json!(1.5), "items[0].quantity"),
            (json!(1e300), json!(1), "amounts.total"),
            (json!(3_980_000.5), json!(1), "amounts.total"),
        ] {
            let body = with("F-2", total, quantity).replace("\"VERSION\"", "1");
            let p = problem(
                env.post_raw(sync, "application/json", body.clone().into_bytes())
                    .await,
                422,
            )
            .await;
            assert_eq!(
                (&p["code"], &p["field"]),
                (&json!("invalid_body"), &json!(field)),
                "{body}: {p}"
            );
        }
        assert_eq!(env.order_count().await, 1);

        // A lead has no integer field: floats elsewhere in it change nothing, its form reads
        // back as sent and its raw payload is the bytes sent.
        let mut l = lead("dy-float", "13812345678");
        l["formFields"] = json!([{"label": "面积", "value": "120.0"}]);
        l["score"] = json!({"value": 3.0, "scale": "1e2"});
        let body = serde_json::to_string_pretty(&l)
            .unwrap()
            .replace("3.0", "3.00");
        let res = env
            .post_raw(
                "/api/mobile/leads/hook",
                "application/json",
                body.clone().into_bytes(),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let lead_id = res.json::<Value>().await.unwrap()["leadId"]
            .as_str()
            .unwrap()
            .to_owned();
        let raw = env
            .server
            .db
            .leads()
            .raw_payload(&lead_id.as_str().into())
            .await
            .unwrap();
        assert_eq!(raw.as_deref(), Some(body.as_str()));
        let read: Value = env
            .get(&env.a_token, &format!("/api/mobile/leads/{lead_id}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(read["formFields"], l["formFields"], "{read}");
        env.server.stop().await;
    }
}

#[tokio::test]
async fn showroom_pages_filters_and_grants() {
    for backend in Backend::available() {
        let env = Env::start(backend).await;
        let seeded = env.server.db.showroom().seed_demo_if_empty().await.unwrap();
        assert!(seeded >= 30);
        assert_eq!(
            env.server.db.showroom().seed_demo_if_empty().await.unwrap(),
            0
        );
        let base = "/api/mobile/showroom/items";

        let res = env.get(&env.a_token, base).await;
        assert_eq!(res.status(), StatusCode::OK);
        let link = res.headers()["link"].to_str().unwrap().to_owned();
        let first: Value = res.json().await.unwrap();
        assert_eq!(first["page"], 1);
        assert_eq!(first["pageSize"], 20);
        let public_total = first["total"].as_u64().unwrap();
        assert!(public_total < seeded as u64, "AUTHORIZED items hidden");
        assert!(
            link.contains("rel=\"next\"") && link.contains("page=2"),
            "{link}"
        );
        assert!(!link.contains("rel=\"prev\""), "{link}");
        assert!(
            first["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|i| i["visibility"] == "PUBLIC")
        );

        // Walking the pages sees every item once, in a stable order.
        let mut ids = Vec::new();
        for page in 1..=10 {
            let v: Value = env
                .get(&env.a_token, &format!("{base}?page={page}&pageSize=7"))
                .await
                .json()
                .await
                .unwrap();
            ids.extend(
                v["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i["id"].as_str().unwrap().to_owned()),
            );
        }
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, ids);
        assert_eq!(ids.len() as u64, public_total);

        // Past the end: empty items, not 404.
        let v: Value = env
            .get(&env.a_token, &format!("{base}?page=99"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(v["items"], json!([]));
        assert_eq!(v["total"], public_total);

        // Filters.
        let v: Value = env
            .get(&env.a_token, &format!("{base}?type=CASE&pageSize=100"))
            .await
            .json()
            .await
            .unwrap();
        assert!(
            v["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|i| i["type"] == "CASE")
        );
        let v: Value = env
            .get(
                &env.a_token,
                &format!("{base}?category=%E8%A1%A3%E6%9F%9C&keyword=%E6%9E%81%E7%AE%80"),
            )
            .await
            .json()
            .await
            .unwrap();
        let items = v["items"].as_array().unwrap();
        assert!(!items.is_empty());
        assert!(items.iter().all(|i| i["category"] == "衣柜"));
        let v: Value = env
            .get(&env.a_token, &format!("{base}?keyword=100%25"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(v["total"], 0, "% is matched literally");

        // Bad paging: 400 naming the parameter.
        for (q, field) in [
            ("page=0", "page"),
            ("page=abc", "page"),
            ("pageSize=101", "pageSize"),
            ("pageSize=0", "pageSize"),
            ("type=SOFA", "type"),
        ] {
            let p = problem(env.get(&env.a_token, &format!("{base}?{q}")).await, 400).await;
            assert_eq!(p["field"], field, "{q}: {p}");
        }

        // A grant makes AUTHORIZED items visible to that client only.
        let granted = env
            .server
            .db
            .showroom()
            .grant(&ClientId::new(env.b.id.as_str()), &["itm_0006".to_owned()])
            .await
            .unwrap();
        assert_eq!(granted, 1);
        let v: Value = env.get(&env.b_token, base).await.json().await.unwrap();
        assert_eq!(v["total"].as_u64().unwrap(), public_total + 1);
        let v: Value = env.get(&env.a_token, base).await.json().await.unwrap();
        assert_eq!(v["total"].as_u64().unwrap(), public_total);
        env.server.stop().await;
    }
}

#[tokio::test]
async fn export_streams_only_the_callers_orders() {
    for backend in Backend::available() {
        let env = Env::start(backend).await;
        let sync = "/api/mobile/orders/sync";
        for i in 0..25 {
            let res = env
                .post(
                    &env.a_token,
                    sync,
                    &order(
                        &format!("A-{i:03}"),
                        1,
                        "DEPOSIT_PAID",
                        "DEPOSIT_PAID",
                        500_000,
                    ),
                )
                .await;
            assert_eq!(res.status(), StatusCode::CREATED);
        }
        let mut o = order(
            "=HYPERLINK(\"x\")",
            1,
            "DEPOSIT_PAID",
            "DEPOSIT_PAID",
            500_000,
        );
        o["payments"] = json!([]);
        assert_eq!(
            env.post(&env.b_token, sync, &o).await.status(),
            StatusCode::CREATED
        );

        let res = env
            .get(&env.a_token, "/api/mobile/reports/orders/export")
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/csv")
        );
        let csv = res.text().await.unwrap();
        let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 26);
        assert!(lines[0].starts_with("orderId,externalOrderNo,"));
        assert!(lines[1].contains(",A-000,") && lines[1].contains("已下定金"));
        assert!(!csv.contains("HYPERLINK"));

        let csv = env
            .get(&env.b_token, "/api/mobile/reports/orders/export")
            .await
            .text()
            .await
            .unwrap();
        assert!(
            csv.contains("\"'=HYPERLINK(\"\"x\"\")\""),
            "formula guarded and quoted: {csv}"
        );
        env.server.stop().await;
    }
}

#[tokio::test]
async fn each_route_requires_its_scope() {
    for backend in Backend::available() {
        let server = TestServer::start(backend).await;
        let client = server
            .create_client(Scopes::one(Scope::WebhooksManage))
            .await;
        let token = server.token(&client).await;
        let http = server.http();
        let checks = [
            http.post(server.url("/api/mobile/leads/hook"))
                .header("x-request-id", new_request_id())
                .json(&lead("s1", "13812345678")),
            http.get(server.url("/api/mobile/customers/cus_1")),
            http.post(server.url("/api/mobile/orders/sync"))
                .header("x-request-id", new_request_id())
                .json(&order("S1", 1, "DEPOSIT_PAID", "DEPOSIT_PAID", 500_000)),
            http.get(server.url("/api/mobile/orders/o1/status")),
            http.get(server.url("/api/mobile/showroom/items")),
            http.get(server.url("/api/mobile/reports/orders/export")),
        ];
        for req in checks {
            let res = req.bearer_auth(&token).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::FORBIDDEN);
            assert!(
                res.headers()["www-authenticate"]
                    .to_str()
                    .unwrap()
                    .contains("insufficient_scope")
            );
        }
        assert_eq!(server.db.leads().count().await.unwrap(), 0);
        server.stop().await;
    }
}

#[tokio::test]
async fn openapi_document_is_served() {
    let server = TestServer::start(Backend::Sqlite).await;
    let res = server
        .http()
        .get(server.url("/api/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let v: Value = res.json().await.unwrap();
    assert!(v["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(v["paths"]["/api/mobile/orders/sync"]["post"].is_object());
    server.stop().await;
}

fn bin() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_l2c-server"))
}

#[tokio::test]
async fn cli_grants_showroom_items_and_all_customers() {
    let env = Env::start(Backend::Sqlite).await;
    env.server.db.showroom().seed_demo_if_empty().await.unwrap();
    let url = env.server.test_db.url.clone();
    let base = "/api/mobile/showroom/items?pageSize=100";
    let before: Value = env.get(&env.b_token, base).await.json().await.unwrap();

    let out = bin()
        .env("L2C_DATABASE_URL", &url)
        .args([
            "client",
            "grant",
            &env.b.id,
            "--showroom-items",
            "itm_0006,itm_0009",
            "--all-customers",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("granted 2 new showroom item(s)"),
        "{stdout}"
    );
    assert!(stdout.contains("may now read every customer"), "{stdout}");
    let after: Value = env.get(&env.b_token, base).await.json().await.unwrap();
    assert_eq!(
        after["total"].as_u64().unwrap(),
        before["total"].as_u64().unwrap() + 2
    );

    // A's customers are now readable by B.
    let res = env
        .post(
            &env.a_token,
            "/api/mobile/leads/hook",
            &lead("dy-1", "13812345678"),
        )
        .await;
    let created: Value = res.json().await.unwrap();
    let path = format!(
        "/api/mobile/customers/{}",
        created["customerId"].as_str().unwrap()
    );
    assert_eq!(env.get(&env.b_token, &path).await.status(), StatusCode::OK);

    // Unknown item or client: refused, nothing granted.
    let out = bin()
        .env("L2C_DATABASE_URL", &url)
        .args([
            "client",
            "grant",
            &env.a.id,
            "--showroom-items",
            "itm_0006,itm_9999",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("itm_9999"));
    let a_view: Value = env.get(&env.a_token, base).await.json().await.unwrap();
    assert_eq!(a_view["total"], before["total"]);
    let out = bin()
        .env("L2C_DATABASE_URL", &url)
        .args(["client", "grant", "nobody", "--all-customers"])
        .output()
        .unwrap();
    assert!(!out.status.success());

    // Revoke.
    let out = bin()
        .env("L2C_DATABASE_URL", &url)
        .args([
            "client",
            "grant",
            &env.b.id,
            "--all-customers",
            "--showroom-items",
            "itm_0006",
            "--revoke",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        env.get(&env.b_token, &path).await.status(),
        StatusCode::NOT_FOUND
    );
    let after: Value = env.get(&env.b_token, base).await.json().await.unwrap();
    assert_eq!(
        after["total"].as_u64().unwrap(),
        before["total"].as_u64().unwrap() + 1
    );
    env.server.stop().await;
}

#[tokio::test]
async fn routes_are_mounted_under_api_v1_and_prefixes_can_be_deprecated() {
    use l2c_server::testing::TestOptions;
    let mut options = TestOptions::default();
    options.config.deprecations = vec![
        "/api/v1/showroom=2026-01-01,2099-01-01,/api/v2/showroom/items"
            .parse()
            .unwrap(),
        "/api/v1/leads=2020-01-01,2020-12-01".parse().unwrap(),
    ];
    for backend in Backend::available() {
        let server = TestServer::start_with(backend, options.clone()).await;
        server.db.showroom().seed_demo_if_empty().await.unwrap();
        let client = server.create_client(Scopes::all()).await;
        let token = server.token(&client).await;
        let get = |path: &str| {
            server
                .http()
                .get(server.url(path))
                .bearer_auth(&token)
                .send()
        };

        // Same routes, same answers; only the deprecated prefix carries the headers.
        let current = get("/api/mobile/showroom/items").await.unwrap();
        assert_eq!(current.status(), StatusCode::OK);
        assert!(current.headers().get("deprecation").is_none());
        let v1 = get("/api/v1/showroom/items").await.unwrap();
        assert_eq!(v1.status(), StatusCode::OK);
        assert_eq!(v1.headers()["deprecation"], "@1767225600");
        assert_eq!(v1.headers()["sunset"], "Thu, 01 Jan 2099 00:00:00 GMT");
        let links: Vec<&str> = v1
            .headers()
            .get_all("link")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert!(
            links
                .iter()
                .any(|l| l.contains("rel=\"successor-version\"")),
            "{links:?}"
        );
        assert!(
            links
                .iter()
                .any(|l| l.contains("rel=\"next\"") && l.contains("/api/v1/")),
            "{links:?}"
        );
        let a: Value = current.json().await.unwrap();
        let b: Value = v1.json().await.unwrap();
        assert_eq!(a, b);

        // Past its sunset: 410 problem, the handler does not run.
        let res = server
            .http()
            .post(server.url("/api/v1/leads/hook"))
            .header("x-request-id", new_request_id())
            .bearer_auth(&token)
            .json(&lead("v1-1", "13812345678"))
            .send()
            .await
            .unwrap();
        problem(res, 410).await;
        assert_eq!(server.db.leads().count().await.unwrap(), 0);
        let res = server
            .http()
            .post(server.url("/api/mobile/leads/hook"))
            .header("x-request-id", new_request_id())
            .bearer_auth(&token)
            .json(&lead("v1-1", "13812345678"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        server.stop().await;
    }
}

#[tokio::test]
async fn order_sync_returns_the_webhook_events_inside_its_transaction() {
    use l2c_core::api::events::EventData;
    use l2c_core::api::orders::SyncOrder;
    use l2c_server::domain::validate;
    use l2c_server::store::sql::begin_write;
    use l2c_server::usecases::order_sync::sync_in;

    for backend in Backend::available() {
        let env = Env::start(backend).await;
        let db = &env.server.db;
        let client = ClientId::new(env.a.id.as_str());
        let run = |body: Value| {
            let client = client.clone();
            async move {
                let body: SyncOrder = serde_json::from_value(body).unwrap();
                let mobile = validate::sync_order(&body).unwrap();
                let mut tx = begin_write(db).await.unwrap();
                let out = sync_in(
                    &mut tx,
                    db.data_keys(),
                    &client,
                    &body,
                    mobile.as_ref(),
                    db.now_millis(),
                )
                .await
                .unwrap();
                tx.commit().await.unwrap();
                out.events
            }
        };
        let events = run(order("EV-1", 1, "DEPOSIT_PAID", "DEPOSIT_PAID", 500_000)).await;
        assert!(
            matches!(
                events.as_slice(),
                [EventData::OrderCreated(_), EventData::PaymentReceived(_)]
            ),
            "{events:?}"
        );
        let events = run(order("EV-1", 2, "MEASURE_PENDING", "DEPOSIT_PAID", 500_000)).await;
        match events.as_slice() {
            [EventData::OrderStatusChanged(c)] => {
                assert_eq!(c.from_status.as_str(), "DEPOSIT_PAID");
                assert_eq!(c.to_status.as_str(), "MEASURE_PENDING");
                assert_eq!(c.version, 2);
            }
            other => panic!("{other:?}"),
        }
        // Stale: no events.
        assert!(
            run(order("EV-1", 2, "MEASURED", "DEPOSIT_PAID", 500_000))
                .await
                .is_empty()
        );
        // A refused sync rolls back when the transaction is dropped.
        let body: SyncOrder =
            serde_json::from_value(order("EV-2", 1, "AFTER_SALES", "DEPOSIT_PAID", 500_000))
                .unwrap();
        let mobile = validate::sync_order(&body).unwrap();
        let mut tx = begin_write(db).await.unwrap();
        assert!(
            sync_in(&mut tx, db.data_keys(), &client, &body, mobile.as_ref(), 0)
                .await
                .is_err()
        );
        drop(tx);
        assert_eq!(env.order_count().await, 1);
        env.server.stop().await;
    }
}

#[tokio::test]
async fn concurrent_pushes_of_one_lead_create_it_once() {
    for backend in Backend::available() {
        let env = Env::start(backend).await;
        let body = lead("race-1", "13812345678");
        let requests = (0..8).map(|_| env.post(&env.a_token, "/api/mobile/leads/hook", &body));
        let responses = futures_util::future::join_all(requests).await;
        let mut created = 0;
        let mut ids = std::collections::HashSet::new();
        for res in responses {
            match res.status() {
                StatusCode::CREATED => created += 1,
                StatusCode::OK => {}
                other => panic!("unexpected {other}"),
            }
            let v: Value = res.json().await.unwrap();
            ids.insert((v["leadId"].to_string(), v["customerId"].to_string()));
        }
        assert_eq!(created, 1, "{backend:?}");
        assert_eq!(
            ids.len(),
            1,
            "every answer names the same lead and customer"
        );
        assert_eq!(env.lead_count().await, 1);
        assert_eq!(env.server.db.customers().count().await.unwrap(), 1);
        env.server.stop().await;
    }
}

#[tokio::test]
async fn concurrent_first_syncs_of_one_order_create_it_once() {
    for backend in Backend::available() {
        let env = Env::start(backend).await;
        let body = order("RACE-1", 1, "DEPOSIT_PAID", "DEPOSIT_PAID", 500_000);
        let requests = (0..8).map(|_| env.post(&env.a_token, "/api/mobile/orders/sync", &body));
        let responses = futures_util::future::join_all(requests).await;
        let mut statuses = Vec::new();
        let mut ids = std::collections::HashSet::new();
        for res in responses {
            statuses.push(res.status().as_u16());
            let v: Value = res.json().await.unwrap();
            ids.insert(v["orderId"].to_string());
        }
        assert_eq!(
            statuses.iter().filter(|s| **s == 201).count(),
            1,
            "{backend:?}: {statuses:?}"
        );
        assert!(
            statuses.iter().all(|s| *s == 201 || *s == 200),
            "{statuses:?}"
        );
        assert_eq!(ids.len(), 1);
        assert_eq!(env.order_count().await, 1);
        env.server.stop().await;
    }
}

#[tokio::test]
async fn another_clients_lead_id_reveals_nothing_and_links_nothing() {
    for backend in Backend::available() {
        let env = Env::start(backend).await;
        let path = "/api/mobile/leads/hook";
        let res = env
            .post(&env.a_token, path, &lead("dy-secret", "13812345678"))
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let first: Value = res.json().await.unwrap();
        let lead_id = first["leadId"].as_str().unwrap().to_owned();
        let customer_id = first["customerId"].as_str().unwrap().to_owned();

        // B pushes A's (source, externalLeadId) with another person: a lead of B's own (the
        // pair is unique per client), and nothing of A's shows.
        let res = env
            .post(&env.b_token, path, &lead("dy-secret", "13900000000"))
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let text = res.text().await.unwrap();
        assert!(!text.contains(&lead_id), "lead id leaked: {text}");
        assert!(!text.contains(&customer_id), "customer id leaked: {text}");
        // B was not linked to A's customer: 404, like an unknown id.
        let p = problem(
            env.get(
                &env.b_token,
                &format!("/api/mobile/customers/{customer_id}"),
            )
            .await,
            404,
        )
        .await;
        assert_eq!(p["code"], "not_found");
        assert_eq!(env.lead_count().await, 2);
        assert_eq!(env.server.db.customers().count().await.unwrap(), 2);

        // A's own duplicate still answers with the original ids.
        let res = env
            .post(&env.a_token, path, &lead("dy-secret", "13812345678"))
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let dup: Value = res.json().await.unwrap();
        assert_eq!(dup["leadId"], lead_id.as_str());
        assert_eq!(dup["customerId"], customer_id.as_str());
        let _ = (&env.a, &env.b);
        env.server.stop().await;
    }
}

#[tokio::test]
async fn nul_and_control_characters_are_4xx_problems_and_write_nothing() {
    for backend in Backend::available() {
        let env = Env::start(backend).await;
        // Something to find, so a NUL cannot hide behind an empty table.
        let res = env
            .post(
                &env.a_token,
                "/api/mobile/orders/sync",
                &order("A", 1, "DEPOSIT_PAID", "DEPOSIT_PAID", 500_000),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let (leads, orders, customers) = (
            env.lead_count().await,
            env.order_count().await,
            env.server.db.customers().count().await.unwrap(),
        );
        for path in [
            "/api/mobile/customers/%00",
            "/api/mobile/customers/cus%00x",
            "/api/mobile/showroom/items?keyword=%00",
            "/api/mobile/orders/A%00/status",
            "/api/mobile/orders/%00/status",
        ] {
            let res = env.get(&env.a_token, path).await;
            let status = res.status().as_u16();
            assert!((400..500).contains(&status), "{path}: {status}");
            problem(res, status).await;
        }

        let mut bad_lead = lead("nul-1", "13812345678");
        bad_lead["name"] = json!("张\u{0}三");
        let p = problem(
            env.post(&env.a_token, "/api/mobile/leads/hook", &bad_lead)
                .await,
            422,
        )
        .await;
        assert_eq!(p["field"], "name", "{p}");
        let mut bad_lead = lead("nul-2", "13812345678");
        bad_lead["formFields"] = json!([{"label": "户型", "value": "三\u{0}室"}]);
        let p = problem(
            env.post(&env.a_token, "/api/mobile/leads/hook", &bad_lead)
                .await,
            422,
        )
        .await;
        assert_eq!(p["field"], "formFields[0].value", "{p}");

        let mut bad_order = order("B", 1, "DEPOSIT_PAID", "DEPOSIT_PAID", 500_000);
        bad_order["externalOrderNo"] = json!("A\u{0}");
        let p = problem(
            env.post(&env.a_token, "/api/mobile/orders/sync", &bad_order)
                .await,
            422,
        )
        .await;
        assert_eq!(p["field"], "externalOrderNo", "{p}");
        // Fields the validators leave alone still end in a 4xx, never a 500.
        let mut bad_order = order("C", 1, "DEPOSIT_PAID", "DEPOSIT_PAID", 500_000);
        bad_order["payments"][0]["channelTransactionId"] = json!("wx\u{0}1");
        let res = env
            .post(&env.a_token, "/api/mobile/orders/sync", &bad_order)
            .await;
        let status = res.status().as_u16();
        assert!(
            (400..500).contains(&status),
            "payment id with NUL: {status}"
        );
        problem(res, status).await;

        assert_eq!(env.lead_count().await, leads);
        assert_eq!(env.order_count().await, orders);
        assert_eq!(env.server.db.customers().count().await.unwrap(), customers);
        env.server.stop().await;
    }
}
