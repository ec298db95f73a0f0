//! Helpers of `tests/encryption.rs`: the data a partner creates, what the API answers about
//! it, the database's bytes, and the binary.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use l2c_core::Scopes;
use l2c_server::seal::DataKeys;
use l2c_server::store::Db;
use l2c_server::testing::{Backend, TestDb, TestOptions, TestServer};
use serde_json::{Value, json};
use sqlx::Row;

// ---------------------------------------------------------------------------------------------
// What must never be found in the database in plain text.

pub const LEAD_NAME: &str = "欧阳锋";
pub const LEAD_MOBILE: &str = "13812345678";
pub const WECHAT_ID: &str = "wx_ouyang_4711";
pub const ORDER_NAME: &str = "慕容复";
pub const ORDER_MOBILE: &str = "13987654321";
pub const XHS_NAME: &str = "段誉";
pub const XHS_MOBILE: &str = "13700137000";
pub const XHS_TOKEN: &str = "red-token-7f3a9c2e1b5d";

pub fn options(keys: &DataKeys) -> TestOptions {
    let mut o = TestOptions::default();
    o.config.data_keys = keys.clone();
    o.config.webhooks.allow_private = true;
    o.config.webhooks.retry_schedule = "200ms,200ms,200ms".parse().unwrap();
    o.config.webhooks.poll_interval = Duration::from_millis(50);
    o
}

pub fn key() -> String {
    DataKeys::generate_key()
}

pub fn keys(current: &str, old: &[&str]) -> DataKeys {
    DataKeys::new(current, old).unwrap()
}

/// Every byte the database keeps on disk for its rows: the SQLite file and its WAL, or every
/// PostgreSQL table's rows as JSON text.
pub async fn dump(test_db: &TestDb, db: &Db) -> Vec<u8> {
    match test_db.backend {
        Backend::Sqlite => {
            let path = test_db
                .url
                .strip_prefix("sqlite://")
                .unwrap()
                .split('?')
                .next()
                .unwrap()
                .to_owned();
            let mut bytes = std::fs::read(&path).unwrap();
            if let Ok(wal) = std::fs::read(format!("{path}-wal")) {
                bytes.extend(wal);
            }
            bytes
        }
        Backend::Postgres => {
            let tables: Vec<String> = sqlx::query(
                "SELECT table_name::text AS t FROM information_schema.tables \
                 WHERE table_schema = 'public' ORDER BY 1",
            )
            .fetch_all(db.pool())
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String, _>("t"))
            .collect();
            assert!(tables.iter().any(|t| t == "customers"), "{tables:?}");
            let mut out = Vec::new();
            for t in tables {
                for r in sqlx::query(&format!("SELECT row_to_json(x)::text AS j FROM {t} x"))
                    .fetch_all(db.pool())
                    .await
                    .unwrap()
                {
                    out.extend(r.get::<String, _>("j").into_bytes());
                    out.push(b'\n');
                }
            }
            out
        }
    }
}

pub fn find(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// The needles of `world` found in `bytes`.
pub fn plain_found(bytes: &[u8], world: &World) -> Vec<String> {
    let mut needles = vec![
        LEAD_NAME.to_owned(),
        LEAD_MOBILE.to_owned(),
        WECHAT_ID.to_owned(),
        ORDER_NAME.to_owned(),
        ORDER_MOBILE.to_owned(),
        XHS_NAME.to_owned(),
        XHS_MOBILE.to_owned(),
        XHS_TOKEN.to_owned(),
        world.webhook_secret.clone(),
        world.signing_key.clone(),
    ];
    needles.retain(|n| find(bytes, n));
    needles
}

// ---------------------------------------------------------------------------------------------
// A partner, a webhook receiver and the data they create.

#[derive(Clone, Default)]
pub struct Hits(pub Arc<Mutex<Vec<(HeaderMap, Bytes)>>>);

pub async fn hook(State(hits): State<Hits>, headers: HeaderMap, body: Bytes) -> http::StatusCode {
    hits.0.lock().unwrap().push((headers, body));
    http::StatusCode::OK
}

pub struct Receiver {
    pub url: String,
    pub hits: Hits,
    pub task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn receiver() -> Receiver {
    let hits = Hits::default();
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(hits.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver { url, hits, task }
}

pub struct World {
    pub client_id: String,
    pub client_secret: String,
    pub lead_id: String,
    pub customer_id: String,
    pub order_customer_id: String,
    pub xhs_lead_id: String,
    pub xhs_body: Vec<u8>,
    pub webhook_secret: String,
    pub signing_key: String,
}

pub async fn call(
    server: &TestServer,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = server
        .http()
        .request(method, server.url(path))
        .bearer_auth(token)
        .header("x-request-id", uuid::Uuid::new_v4().to_string());
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub async fn token(server: &TestServer, id: &str, secret: &str) -> String {
    let res = server
        .http()
        .post(server.url("/api/oauth/token"))
        .json(
            &json!({"grant_type": "client_credentials", "client_id": id, "client_secret": secret}),
        )
        .send()
        .await
        .unwrap();
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

pub fn lead(external: &str, name: &str, mobile: &str) -> Value {
    json!({
        "source": "DOUYIN",
        "externalLeadId": external,
        "name": name,
        "mobile": mobile,
        "province": "浙江省",
        "city": "杭州市",
        "intent": "全屋定制",
        "formFields": [{"label": "微信", "value": WECHAT_ID}, {"label": "电话", "value": mobile}],
        "submittedAt": "2026-11-20T10:15:00+08:00"
    })
}

pub fn order(no: &str, version: i64, status: &str) -> Value {
    json!({
        "externalOrderNo": no,
        "status": status,
        "paymentStatus": "DEPOSIT_PAID",
        "amounts": {"total": 3_980_000, "deposit": 500_000, "paid": 500_000, "currency": "CNY"},
        "items": [{"name": "主卧衣柜", "quantity": 1, "unitPrice": 3_980_000}],
        "customer": {"name": ORDER_NAME, "mobile": "+86 139-8765-4321"},
        "version": version,
        "payments": [{"kind": "DEPOSIT", "method": "WECHAT_PAY", "amount": 500_000,
                      "channelTransactionId": format!("wx-{no}-1"),
                      "paidAt": "2026-11-20T10:15:00+08:00"}]
    })
}

pub fn xhs_body(leads_id: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "timestamp": 1721800000000_i64,
        "source": "juguang",
        "data": {"leads_id": leads_id, "submitted_time": "2024-07-24 13:46:40",
                 "data": [{"label": "称呼", "value": XHS_NAME},
                          {"label": "联系电话", "value": XHS_MOBILE}]}
    }))
    .unwrap()
}

pub fn red_signature(token: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(body);
    format!("sha1={}", hex::encode(mac.finalize().into_bytes()))
}

pub async fn push_xhs(server: &TestServer, url: &str, body: &[u8]) -> Value {
    let res = server
        .http()
        .post(url)
        .header("content-type", "application/json")
        .header("X-Red-Signature", red_signature(XHS_TOKEN, body))
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// Whether `body` carries a valid `X-L2C-Signature` under `secret` (HMAC-SHA256 computed here,
/// not by the server's code).
pub fn signed_by(headers: &HeaderMap, body: &[u8], secret: &str) -> bool {
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    headers
        .get("x-l2c-signature")
        .is_some_and(|v| v.as_bytes() == hex::encode(mac.finalize().into_bytes()).as_bytes())
}

pub async fn wait_for_hits(r: &Receiver, n: usize) {
    for _ in 0..500 {
        if r.hits.0.lock().unwrap().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{n} webhook deliveries expected");
}

/// Creates a lead (API), a lead source and a push through it, an order with a customer and a
/// webhook subscription that receives the order's events.
pub async fn populate(server: &TestServer, hooks: &Receiver) -> World {
    let client = server.create_client(Scopes::all()).await;
    let (client_id, client_secret) = (client.id.clone(), client.secret.clone());
    let t = token(server, &client_id, &client_secret).await;
    let (status, sub) = call(
        server,
        &t,
        reqwest::Method::POST,
        "/api/mobile/webhooks",
        Some(json!({"url": hooks.url, "events": ["ORDER_CREATED", "ORDER_STATUS_CHANGED"]})),
    )
    .await;
    assert_eq!(status, 201, "{sub}");
    let (status, created) = call(
        server,
        &t,
        reqwest::Method::POST,
        "/api/mobile/leads/hook",
        Some(lead("dy-1", LEAD_NAME, "138 1234 5678")),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let (status, source) = call(
        server,
        &t,
        reqwest::Method::POST,
        "/api/mobile/lead-sources",
        Some(json!({"channel": "XIAOHONGSHU", "name": "聚光", "settings": {"token": XHS_TOKEN}})),
    )
    .await;
    assert_eq!(status, 201, "{source}");
    let xhs_body = xhs_body("xhs-1");
    let ack = push_xhs(server, source["pushUrl"].as_str().unwrap(), &xhs_body).await;
    let (status, synced) = call(
        server,
        &t,
        reqwest::Method::POST,
        "/api/mobile/orders/sync",
        Some(order("ERP-1", 1, "DEPOSIT_PAID")),
    )
    .await;
    assert_eq!(status, 201, "{synced}");
    let order_customer_id: String = sqlx::query("SELECT customer_id FROM orders WHERE id = $1")
        .bind(synced["orderId"].as_str().unwrap())
        .fetch_one(server.db.pool())
        .await
        .unwrap()
        .get(0);
    wait_for_hits(hooks, 1).await;
    let key = server
        .db
        .keys()
        .get(l2c_server::store::keys::DEFAULT_HS256_KEY_ID)
        .await
        .unwrap()
        .expect("a generated signing key");
    use base64::Engine as _;
    World {
        client_id,
        client_secret,
        lead_id: created["leadId"].as_str().unwrap().to_owned(),
        customer_id: created["customerId"].as_str().unwrap().to_owned(),
        order_customer_id,
        xhs_lead_id: ack["leadId"].as_str().unwrap().to_owned(),
        xhs_body,
        webhook_secret: sub["secret"].as_str().unwrap().to_owned(),
        signing_key: base64::engine::general_purpose::STANDARD.encode(&key.material),
    }
}

/// What the API answers about `world`: the lead, both customers (masked), and the pushed raw
/// body (from the store) — compared before and after sealing, restarts and rotations.
pub async fn answers(server: &TestServer, world: &World) -> Vec<Value> {
    let t = token(server, &world.client_id, &world.client_secret).await;
    let mut out = Vec::new();
    for path in [
        format!("/api/mobile/leads/{}", world.lead_id),
        format!("/api/mobile/leads/{}", world.xhs_lead_id),
        format!("/api/mobile/customers/{}", world.customer_id),
        format!("/api/mobile/customers/{}", world.order_customer_id),
        "/api/mobile/lead-sources".to_owned(),
        "/api/mobile/webhooks".to_owned(),
    ] {
        let (status, body) = call(server, &t, reqwest::Method::GET, &path, None).await;
        assert_eq!(status, 200, "{path}: {body}");
        out.push(body);
    }
    let raw = server
        .db
        .leads()
        .raw_payload(&l2c_core::api::LeadId::new(world.xhs_lead_id.clone()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        raw.as_bytes(),
        &world.xhs_body[..],
        "raw payload kept byte for byte"
    );
    out
}

/// The masked views a user sees.
pub fn assert_masked(answers: &[Value]) {
    assert_eq!(answers[0]["name"], "欧**", "{}", answers[0]);
    assert_eq!(answers[0]["mobile"], "138****5678");
    let fields = answers[0]["formFields"].as_array().unwrap();
    assert!(
        fields.iter().any(|f| f["value"] == WECHAT_ID),
        "{}",
        answers[0]
    );
    assert!(
        fields.iter().any(|f| f["value"] == "138****5678"),
        "{}",
        answers[0]
    );
    assert_eq!(answers[1]["name"], "段*");
    assert_eq!(answers[1]["mobile"], "137****7000");
    assert_eq!(answers[2]["mobile"], "138****5678");
    assert_eq!(answers[3]["name"], "慕**");
    assert_eq!(answers[3]["mobile"], "139****4321");
}

/// A new lead with an already-known mobile (written differently) names the same customer.
pub async fn dedupe_holds(server: &TestServer, world: &World, external: &str) {
    let t = token(server, &world.client_id, &world.client_secret).await;
    let (status, created) = call(
        server,
        &t,
        reqwest::Method::POST,
        "/api/mobile/leads/hook",
        Some(lead(external, "欧阳克", "+86 13812345678")),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        created["customerId"],
        world.customer_id.as_str(),
        "same mobile, same customer"
    );
    let (status, created) = call(
        server,
        &t,
        reqwest::Method::POST,
        "/api/mobile/leads/hook",
        Some(lead(&format!("{external}-o"), "某人", "139 8765 4321")),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["customerId"], world.order_customer_id.as_str());
}

/// A status change delivered and signed with the secret shown at creation.
pub async fn webhook_signs(server: &TestServer, world: &World, hooks: &Receiver, version: i64) {
    let t = token(server, &world.client_id, &world.client_secret).await;
    let before = hooks.hits.0.lock().unwrap().len();
    let status =
        ["IN_PRODUCTION", "INSTALLING", "COMPLETED"][usize::try_from(version - 2).unwrap()];
    let (code, body) = call(
        server,
        &t,
        reqwest::Method::POST,
        "/api/mobile/orders/sync",
        Some(order("ERP-1", version, status)),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    wait_for_hits(hooks, before + 1).await;
    let hits = hooks.hits.0.lock().unwrap().clone();
    let (headers, body) = hits.last().unwrap();
    assert!(
        signed_by(headers, body, &world.webhook_secret),
        "signature under the shown secret"
    );
}

pub async fn column_values(db: &Db, sql: &str) -> Vec<String> {
    sqlx::query(sql)
        .fetch_all(db.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect()
}

pub async fn binary(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_l2c-server"));
    cmd.args(args)
        .env_remove("L2C_DATA_KEY")
        .env_remove("L2C_OLD_DATA_KEYS")
        .env_remove("L2C_DATABASE_URL")
        .env("RUST_LOG", "info,sqlx=warn")
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("the binary finishes within 60 s")
        .unwrap()
}

/// Starts `serve` on `url`, waits for it to listen, kills it, returns its stderr.
pub async fn serve_until_listening(url: &str, env: &[(&str, &str)]) -> String {
    use tokio::io::AsyncBufReadExt as _;
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_l2c-server"));
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        url,
        "--no-demo-client",
        "--metrics-listen",
        "off",
    ])
    .env_remove("L2C_DATA_KEY")
    .env_remove("L2C_OLD_DATA_KEYS")
    .env("RUST_LOG", "info,sqlx=warn")
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped())
    .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    let listening = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains("l2c-server listening") {
                return true;
            }
        }
        false
    })
    .await;
    child.kill().await.unwrap();
    assert_eq!(listening, Ok(true), "the server listens: {seen}");
    seen
}
