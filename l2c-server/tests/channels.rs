//! Native lead intake from 抖音 and 小红书 (issue 16), end to end over real sockets: lead sources
//! managed through `/api/mobile/lead-sources`, pushes in the platforms' own shapes to
//! `POST /api/hooks/leads/{token}`, signed by Python's `hmac`/`hashlib` (an implementation
//! independent of the server's), and the leads read back through `/api/mobile/leads`.
//! SQLite always, PostgreSQL when `L2C_TEST_DATABASE_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use l2c_core::rate_limit::Quota;
use l2c_core::{Scope, Scopes};
use l2c_server::testing::{Backend, TestClient, TestOptions, TestServer};
use serde_json::{Value, json};

/// Python's answer for `algo` (`hmac-sha1`, `sha1-concat`, `hmac-sha256`) over `body` keyed by
/// `key`, as lowercase hex.
fn python_sign(algo: &str, key: &str, body: &[u8]) -> String {
    let script = r#"
import hashlib, hmac, sys
algo, key = sys.argv[1], sys.argv[2].encode()
body = sys.stdin.buffer.read()
if algo == "hmac-sha1":
    print(hmac.new(key, body, hashlib.sha1).hexdigest())
elif algo == "sha1-concat":
    print(hashlib.sha1(key + body).hexdigest())
elif algo == "hmac-sha256":
    print(hmac.new(key, body, hashlib.sha256).hexdigest())
"#;
    let mut child = Command::new("python3")
        .args(["-c", script, algo, key])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 is needed to sign test pushes independently");
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "python3 failed");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

struct Partner {
    token: String,
}

async fn partner(server: &TestServer) -> (TestClient, Partner) {
    let client = server
        .create_client(
            Scopes::one(Scope::LeadSourcesManage)
                .with(Scope::LeadsRead)
                .with(Scope::CustomersRead),
        )
        .await;
    let token = server.token(&client).await;
    (client, Partner { token })
}

async fn api(
    server: &TestServer,
    who: &Partner,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = server
        .http()
        .request(method, server.url(path))
        .bearer_auth(&who.token)
        .header("X-Request-Id", uuid::Uuid::new_v4().to_string());
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn create_source(server: &TestServer, who: &Partner, body: Value) -> Value {
    let (status, created) = api(
        server,
        who,
        reqwest::Method::POST,
        "/api/mobile/lead-sources",
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    created
}

/// The push URL's path (the server answers with the request's host, which is ours).
fn push_url(created: &Value) -> String {
    created["pushUrl"].as_str().unwrap().to_owned()
}

async fn push(
    server: &TestServer,
    url: &str,
    body: &[u8],
    headers: &[(&str, String)],
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req = server
        .http()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        headers,
    )
}

fn xhs_body(leads_id: &str, labels: &[(&str, &str)]) -> Vec<u8> {
    let answers: Vec<Value> = labels
        .iter()
        .map(|(l, v)| json!({"label": l, "value": v}))
        .collect();
    serde_json::to_vec(&json!({
        "timestamp": 1721800000000_i64,
        "source": "juguang",
        "data": {"leads_id": leads_id, "landing_page_id": 123, "url": "https://example.com/lp",
                 "submitted_time": "2024-07-24 13:46:40", "account_id": "acc-1",
                 "campaign_id": 501, "campaign_name": "全屋定制", "unit_id": 502, "creative_id": 503,
                 "data": answers}
    }))
    .unwrap()
}

fn red_signature(token: &str, body: &[u8]) -> Vec<(&'static str, String)> {
    vec![(
        "X-Red-Signature",
        format!("sha1={}", python_sign("hmac-sha1", token, body)),
    )]
}

async fn lead_count(server: &TestServer) -> i64 {
    server.db.leads().count().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_xiaohongshu_push_becomes_one_lead_readable_by_its_owner_only() {
    for backend in Backend::available() {
        let server = TestServer::start(backend).await;
        let (_, owner) = partner(&server).await;
        let (_, other) = partner(&server).await;
        let created = create_source(
            &server,
            &owner,
            json!({"channel": "XIAOHONGSHU", "name": "聚光 落地页", "settings": {"token": "red-token-1"}}),
        )
        .await;
        let url = push_url(&created);
        assert!(url.starts_with(&server.base_url), "{url}");
        assert!(url.contains("/api/hooks/leads/lst_"), "{url}");
        assert!(
            created.get("secret").is_none(),
            "a given token is never shown back"
        );

        let body = xhs_body(
            "65f0c1aa",
            &[
                ("称呼", "张三"),
                ("联系电话", "+86 138-0013-8000"),
                ("所在城市", "杭州"),
                ("装修需求", "全屋定制"),
            ],
        );
        // Unsigned, and signed under another token: 401, nothing stored.
        let (status, problem, _) = push(&server, &url, &body, &[]).await;
        assert_eq!(status, 401, "{problem}");
        assert_eq!(problem["code"], "invalid_signature");
        let (status, _, _) = push(&server, &url, &body, &red_signature("wrong", &body)).await;
        assert_eq!(status, 401);
        assert_eq!(lead_count(&server).await, 0);

        let (status, ack, _) =
            push(&server, &url, &body, &red_signature("red-token-1", &body)).await;
        assert_eq!(status, 200, "聚光 counts only a 200 as delivered: {ack}");
        assert_eq!(ack["duplicate"], false);
        let lead_id = ack["leadId"].as_str().unwrap().to_owned();
        // The platform retries the same signed body: 200, nothing new.
        let (status, ack, _) =
            push(&server, &url, &body, &red_signature("red-token-1", &body)).await;
        assert_eq!(status, 200);
        assert_eq!(ack["duplicate"], true);
        assert_eq!(ack["leadId"], lead_id.as_str());
        assert_eq!(lead_count(&server).await, 1);
        // The raw payload is kept byte for byte.
        let raw = server
            .db
            .leads()
            .raw_payload(&l2c_core::api::LeadId::new(lead_id.clone()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(raw.as_bytes(), &body[..]);

        let (status, lead) = api(
            &server,
            &owner,
            reqwest::Method::GET,
            &format!("/api/mobile/leads/{lead_id}"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{lead}");
        assert_eq!(lead["source"], "XIAOHONGSHU");
        assert_eq!(lead["externalLeadId"], "65f0c1aa");
        assert_eq!(lead["leadSourceId"], created["id"]);
        assert_eq!(lead["name"], "张*");
        assert_eq!(lead["mobile"], "138****8000");
        assert_eq!(lead["city"], "杭州");
        assert_eq!(lead["intent"], "全屋定制");
        assert_eq!(lead["submittedAt"], "2024-07-24T13:46:40+08:00");
        assert_eq!(lead["attribution"]["campaignId"], "501");
        assert_eq!(lead["attribution"]["adGroupId"], "502");
        let phone_answer = lead["formFields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["label"] == "联系电话")
            .unwrap();
        assert_eq!(phone_answer["value"], "138****8000", "no raw PII: {lead}");
        assert!(!lead.to_string().contains("13800138000"), "{lead}");
        // The customer was linked like any pushed lead.
        let (status, customer) = api(
            &server,
            &owner,
            reqwest::Method::GET,
            &format!(
                "/api/mobile/customers/{}",
                lead["customerId"].as_str().unwrap()
            ),
            None,
        )
        .await;
        assert_eq!(status, 200, "{customer}");

        // The list and its filters.
        let source_id = created["id"].as_str().unwrap();
        for q in [
            format!("leadSourceId={source_id}"),
            "source=XIAOHONGSHU".to_owned(),
            "externalLeadId=65f0c1aa".to_owned(),
            "createdSince=2020-01-01T00:00:00%2B08:00".to_owned(),
        ] {
            let (status, page) = api(
                &server,
                &owner,
                reqwest::Method::GET,
                &format!("/api/mobile/leads?{q}"),
                None,
            )
            .await;
            assert_eq!(status, 200, "{q}: {page}");
            assert_eq!(page["total"], 1, "{q}");
            assert_eq!(page["items"][0]["id"], lead_id.as_str());
        }
        let (_, page) = api(
            &server,
            &owner,
            reqwest::Method::GET,
            "/api/mobile/leads?source=DOUYIN",
            None,
        )
        .await;
        assert_eq!(page["total"], 0);
        let (_, page) = api(
            &server,
            &owner,
            reqwest::Method::GET,
            "/api/mobile/leads?createdSince=2999-01-01T00:00:00Z",
            None,
        )
        .await;
        assert_eq!(page["total"], 0);

        // Another client sees neither the lead nor it in a list.
        let (status, _) = api(
            &server,
            &other,
            reqwest::Method::GET,
            &format!("/api/mobile/leads/{lead_id}"),
            None,
        )
        .await;
        assert_eq!(status, 404);
        let (_, page) = api(
            &server,
            &other,
            reqwest::Method::GET,
            "/api/mobile/leads",
            None,
        )
        .await;
        assert_eq!(page["total"], 0, "{page}");
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xiaohongshu_labels_are_matched_by_a_configurable_synonym_table() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (_, owner) = partner(&server).await;
    // No token: the URL's token is the only credential, no signature needed.
    let created = create_source(
        &server,
        &owner,
        json!({"channel": "XIAOHONGSHU", "name": "聚光",
               "settings": {"labels": {"mobile": ["微信手机号"], "name": ["怎么称呼您"]}}}),
    )
    .await;
    let url = push_url(&created);
    let body = xhs_body(
        "x-1",
        &[("怎么称呼您：", "李四"), ("微信手机号", "13900139000")],
    );
    let (status, ack, _) = push(&server, &url, &body, &[]).await;
    assert_eq!(status, 200, "{ack}");
    let (_, lead) = api(
        &server,
        &owner,
        reqwest::Method::GET,
        &format!("/api/mobile/leads/{}", ack["leadId"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(lead["name"], "李*");
    assert_eq!(lead["mobile"], "139****9000");

    // The default label is no longer a mobile label of this source: 422 naming the field and
    // the labels tried, nothing stored.
    let body = xhs_body("x-2", &[("姓名", "王五"), ("电话", "13700137000")]);
    let (status, problem, _) = push(&server, &url, &body, &[]).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["code"], "unmappable_lead");
    assert_eq!(problem["field"], "mobile");
    assert!(
        problem["detail"].as_str().unwrap().contains("微信手机号"),
        "{problem}"
    );
    assert_eq!(lead_count(&server).await, 1);

    // A platform's over-long answer does not cost the lead (a 4xx is never retried): cut to
    // fit, the raw payload keeps it whole.
    let long = "很".repeat(3000);
    let body = xhs_body(
        "x-3",
        &[
            ("怎么称呼您", "李四"),
            ("微信手机号", "13900139001"),
            ("留言", &long),
        ],
    );
    let (status, ack, _) = push(&server, &url, &body, &[]).await;
    assert_eq!(status, 200, "{ack}");
    let (_, lead) = api(
        &server,
        &owner,
        reqwest::Method::GET,
        &format!("/api/mobile/leads/{}", ack["leadId"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(lead["intent"].as_str().unwrap().chars().count(), 1000);
    let raw = server
        .db
        .leads()
        .raw_payload(&l2c_core::api::LeadId::new(ack["leadId"].as_str().unwrap()))
        .await
        .unwrap()
        .unwrap();
    assert!(raw.contains(&long));

    // The default synonyms of another source.
    let created = create_source(
        &server,
        &owner,
        json!({"channel": "XIAOHONGSHU", "name": "默认"}),
    )
    .await;
    for (i, label) in ["电话", "手机", "手机号", "联系方式"].iter().enumerate() {
        let body = xhs_body(
            &format!("d-{i}"),
            &[("联系人", "赵六"), (label, "13600136000")],
        );
        let (status, ack, _) = push(&server, &push_url(&created), &body, &[]).await;
        assert_eq!(status, 200, "{label}: {ack}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feiyu_pushes_map_string_timestamps_custom_fields_and_the_ip_allowlist() {
    for backend in Backend::available() {
        let server = TestServer::start(backend).await;
        let (_, owner) = partner(&server).await;
        let created =
            create_source(&server, &owner, json!({"channel": "FEIYU", "name": "飞鱼"})).await;
        let url = push_url(&created);
        let body = serde_json::to_vec(&json!({
            "clue_id": "7212000000000000001", "telphone": "13775502308", "name": "王女士",
            "province_name": "江苏", "city_name": "镇江", "create_time": "1679475637",
            "remark_dict": {"装修需求": "全屋定制"}, "adv_id": "1759", "ad_id": "1760",
            "creative_id": "1761", "app_name": "抖音"
        }))
        .unwrap();
        // 飞鱼's optional signature headers are recorded, never required.
        let headers = [
            ("SIGNATURE", "c2lnbmF0dXJl".to_owned()),
            ("TIMESTAMP", "1679475637".to_owned()),
        ];
        let (status, ack, _) = push(&server, &url, &body, &headers).await;
        assert_eq!(status, 200, "{ack}");
        let (status, again, _) = push(&server, &url, &body, &[]).await;
        assert_eq!((status, &again["duplicate"]), (200, &json!(true)));
        assert_eq!(lead_count(&server).await, 1);
        let (_, lead) = api(
            &server,
            &owner,
            reqwest::Method::GET,
            &format!("/api/mobile/leads/{}", ack["leadId"].as_str().unwrap()),
            None,
        )
        .await;
        assert_eq!(lead["source"], "DOUYIN");
        assert_eq!(lead["externalLeadId"], "7212000000000000001");
        assert_eq!(
            lead["submittedAt"], "2023-03-22T17:00:37+08:00",
            "unix seconds as a string"
        );
        assert_eq!(lead["province"], "江苏");
        assert_eq!(lead["formFields"][0]["label"], "装修需求");
        assert_eq!(lead["attribution"]["adGroupId"], "1760");
        assert_eq!(lead["attribution"]["creativeId"], "1761");
        // The signature headers were kept with the lead for operators.
        let kept: String = sqlx::Row::try_get(
            &sqlx::query("SELECT push_headers FROM leads WHERE id = $1")
                .bind(ack["leadId"].as_str().unwrap())
                .fetch_one(server.db.pool())
                .await
                .unwrap(),
            "push_headers",
        )
        .unwrap();
        let kept: Value = serde_json::from_str(&kept).unwrap();
        assert_eq!(kept["signature"], "c2lnbmF0dXJl", "{kept}");
        assert_eq!(kept["timestamp"], "1679475637", "{kept}");

        // The advertiser renamed the keys in 飞鱼: a settings change, not a code change.
        let id = created["id"].as_str().unwrap();
        let (status, view) = api(
            &server,
            &owner,
            reqwest::Method::PUT,
            &format!("/api/mobile/lead-sources/{id}"),
            Some(json!({"settings": {"fields": {"mobile": ["phone_number"], "externalLeadId": ["lead_no"], "createTime": ["ctime"]}}})),
        )
        .await;
        assert_eq!(status, 200, "{view}");
        assert_eq!(view["settings"]["fields"]["mobile"][0], "phone_number");
        let body = serde_json::to_vec(
            &json!({"lead_no": 42, "phone_number": "13800138001", "ctime": "1700000000"}),
        )
        .unwrap();
        let (status, ack, _) = push(&server, &url, &body, &[]).await;
        assert_eq!(status, 200, "{ack}");
        let (status, problem, _) = push(
            &server,
            &url,
            br#"{"lead_no": 43, "telphone": "13800138002"}"#,
            &[],
        )
        .await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["field"], "mobile");
        let (status, problem, _) = push(
            &server,
            &url,
            br#"{"lead_no": 44, "phone_number": "13800138003", "ctime": "soon"}"#,
            &[],
        )
        .await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["field"], "submittedAt");

        // An allowlist without the test's address: 403, nothing stored.
        let (status, _) = api(
            &server,
            &owner,
            reqwest::Method::PUT,
            &format!("/api/mobile/lead-sources/{id}"),
            Some(json!({"settings": {"allowedIps": ["203.0.113.0/24"]}})),
        )
        .await;
        assert_eq!(status, 200);
        let before = lead_count(&server).await;
        let body = serde_json::to_vec(&json!({"clue_id": "9", "telphone": "13800138004"})).unwrap();
        let (status, problem, _) = push(&server, &url, &body, &[]).await;
        assert_eq!(status, 403, "{problem}");
        assert_eq!(problem["code"], "sender_not_allowed");
        assert_eq!(lead_count(&server).await, before);
        let (status, _) = api(
            &server,
            &owner,
            reqwest::Method::PUT,
            &format!("/api/mobile/lead-sources/{id}"),
            Some(json!({"settings": {"allowedIps": ["127.0.0.1"]}})),
        )
        .await;
        assert_eq!(status, 200);
        let (status, _, _) = push(&server, &url, &body, &[]).await;
        assert_eq!(status, 200);
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn douyin_webhooks_answer_the_challenge_check_the_signature_and_dedupe_on_msg_id() {
    for backend in Backend::available() {
        let server = TestServer::start(backend).await;
        let (_, owner) = partner(&server).await;
        // The client secret is required for this channel.
        let (status, problem) = api(
            &server,
            &owner,
            reqwest::Method::POST,
            "/api/mobile/lead-sources",
            Some(json!({"channel": "DOUYIN_OPEN", "name": "企业号"})),
        )
        .await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["field"], "settings.clientSecret");
        let created = create_source(
            &server,
            &owner,
            json!({"channel": "DOUYIN_OPEN", "name": "企业号", "settings": {"clientSecret": "dy-secret", "clientKey": "awkey"}}),
        )
        .await;
        let url = push_url(&created);
        let (_, view) = api(
            &server,
            &owner,
            reqwest::Method::GET,
            &format!(
                "/api/mobile/lead-sources/{}",
                created["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
        assert_eq!(view["hasSecret"], true);
        assert!(!view.to_string().contains("dy-secret"), "{view}");

        let challenge =
            br#"{"event":"verify_webhook","client_key":"awkey","content":{"challenge":12345}}"#;
        let (status, answer, _) = push(&server, &url, challenge, &[]).await;
        assert_eq!(status, 200);
        assert_eq!(answer, json!({"challenge": 12345}));

        let content =
            json!({"user_info": {"phone": "13800138010", "name": "抖音用户"}, "page": "主页"})
                .to_string();
        let body = serde_json::to_vec(&json!({"event": "website_contact", "client_key": "awkey", "content": content, "log_id": "log-1"})).unwrap();
        let sig = python_sign("sha1-concat", "dy-secret", &body);
        let headers = [
            ("X-Douyin-Signature", sig.clone()),
            ("Msg-Id", "msg-0001".to_owned()),
        ];
        let (status, problem, _) = push(
            &server,
            &url,
            &body,
            &[("X-Douyin-Signature", "0".repeat(40))],
        )
        .await;
        assert_eq!(status, 401, "{problem}");
        let (status, problem, _) = push(&server, &url, &body, &[]).await;
        assert_eq!(status, 401, "{problem}");
        assert_eq!(lead_count(&server).await, 0);

        let (status, ack, _) = push(&server, &url, &body, &headers).await;
        assert_eq!(status, 200, "{ack}");
        assert_eq!(ack["duplicate"], false);
        // Redelivered three times with the same Msg-Id: one lead.
        for _ in 0..3 {
            let (status, ack, _) = push(&server, &url, &body, &headers).await;
            assert_eq!((status, &ack["duplicate"]), (200, &json!(true)));
        }
        assert_eq!(lead_count(&server).await, 1);
        let (_, lead) = api(
            &server,
            &owner,
            reqwest::Method::GET,
            &format!("/api/mobile/leads/{}", ack["leadId"].as_str().unwrap()),
            None,
        )
        .await;
        assert_eq!(lead["source"], "DOUYIN");
        assert_eq!(lead["externalLeadId"], "msg-0001");

        // An event that carries no lead: acknowledged, dropped.
        let body = serde_json::to_vec(
            &json!({"event": "im_read_msg", "client_key": "awkey", "content": "{}"}),
        )
        .unwrap();
        let sig = python_sign("sha1-concat", "dy-secret", &body);
        let (status, ack, _) = push(
            &server,
            &url,
            &body,
            &[
                ("X-Douyin-Signature", sig),
                ("Msg-Id", "msg-0002".to_owned()),
            ],
        )
        .await;
        assert_eq!(status, 200, "{ack}");
        assert!(ack.get("leadId").is_none());
        // Another app's client_key: refused.
        let body = serde_json::to_vec(
            &json!({"event": "website_contact", "client_key": "other", "content": content}),
        )
        .unwrap();
        let sig = python_sign("sha1-concat", "dy-secret", &body);
        let (status, _, _) = push(
            &server,
            &url,
            &body,
            &[
                ("X-Douyin-Signature", sig),
                ("Msg-Id", "msg-0003".to_owned()),
            ],
        )
        .await;
        assert_eq!(status, 403);
        assert_eq!(lead_count(&server).await, 1);
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generic_sources_sign_with_a_secret_shown_once_and_map_json_pointers() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (_, owner) = partner(&server).await;
    let created = create_source(
        &server,
        &owner,
        json!({"channel": "GENERIC", "name": "快手", "settings": {
            "signatureHeader": "X-Ks-Sign", "source": "KUAISHOU",
            "fields": {"externalLeadId": "/data/id", "mobile": "/data/phone", "name": "/data/name",
                       "submittedAt": "/data/ts"}}}),
    )
    .await;
    let secret = created["secret"]
        .as_str()
        .expect("a generated secret, shown once")
        .to_owned();
    assert!(secret.starts_with("lsk_"));
    let id = created["id"].as_str().unwrap();
    let (_, view) = api(
        &server,
        &owner,
        reqwest::Method::GET,
        &format!("/api/mobile/lead-sources/{id}"),
        None,
    )
    .await;
    assert!(
        view.get("secret").is_none() && view.get("pushUrl").is_none(),
        "{view}"
    );
    assert!(!view.to_string().contains(&secret));

    let body =
        r#"{"data":{"id":"ks-1","phone":"13800138020","name":"快手用户","ts":1700000000000}}"#
            .as_bytes();
    let sig = python_sign("hmac-sha256", &secret, body);
    let (status, _, _) = push(
        &server,
        &push_url(&created),
        body,
        &[("X-Ks-Sign", "sha256=00".to_owned())],
    )
    .await;
    assert_eq!(status, 401);
    let (status, ack, _) = push(&server, &push_url(&created), body, &[("X-Ks-Sign", sig)]).await;
    assert_eq!(status, 200, "{ack}");
    let (_, lead) = api(
        &server,
        &owner,
        reqwest::Method::GET,
        &format!("/api/mobile/leads/{}", ack["leadId"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(lead["source"], "KUAISHOU");
    assert_eq!(lead["submittedAt"], "2023-11-15T06:13:20+08:00");

    // Rotation: a new URL and a new generated secret; the old URL is 404 at once.
    let (status, rotated) = api(
        &server,
        &owner,
        reqwest::Method::POST,
        &format!("/api/mobile/lead-sources/{id}/rotate"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    assert_ne!(rotated["pushUrl"], created["pushUrl"]);
    let new_secret = rotated["secret"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    let body = br#"{"data":{"id":"ks-2","phone":"13800138021"}}"#;
    let (status, _, _) = push(
        &server,
        &push_url(&created),
        body,
        &[("X-Ks-Sign", python_sign("hmac-sha256", new_secret, body))],
    )
    .await;
    assert_eq!(status, 404);
    let (status, _, _) = push(
        &server,
        &push_url(&rotated),
        body,
        &[("X-Ks-Sign", python_sign("hmac-sha256", &secret, body))],
    )
    .await;
    assert_eq!(status, 401, "the old secret no longer signs");
    let (status, ack, _) = push(
        &server,
        &push_url(&rotated),
        body,
        &[("X-Ks-Sign", python_sign("hmac-sha256", new_secret, body))],
    )
    .await;
    assert_eq!(status, 200, "{ack}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abuse_cases_are_refused_with_the_status_the_platforms_expect() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (_, owner) = partner(&server).await;
    let (_, other) = partner(&server).await;
    let created = create_source(&server, &owner, json!({"channel": "FEIYU", "name": "飞鱼"})).await;
    let url = push_url(&created);
    let id = created["id"].as_str().unwrap();
    let good = br#"{"clue_id":"1","telphone":"13800138000"}"#;

    // Unknown tokens, well-formed or not: 404 before the body is looked at.
    let base = format!("{}/api/hooks/leads/", server.base_url);
    for token in [
        "lst_AAAAAAAAAAAAAAAAAAAAAA",
        "lst_short",
        "anything",
        "lst_AAAAAAAAAAAAAAAAAAAAAA%00",
    ] {
        let (status, problem, _) = push(&server, &format!("{base}{token}"), good, &[]).await;
        assert_eq!(status, 404, "{token}");
        assert_eq!(problem["code"], "lead_source_not_found");
    }
    // Another client's source id: 404 on every operation, nothing changed.
    for (method, path, body) in [
        (
            reqwest::Method::GET,
            format!("/api/mobile/lead-sources/{id}"),
            None,
        ),
        (
            reqwest::Method::PUT,
            format!("/api/mobile/lead-sources/{id}"),
            Some(json!({"name": "x"})),
        ),
        (
            reqwest::Method::POST,
            format!("/api/mobile/lead-sources/{id}/rotate"),
            None,
        ),
        (
            reqwest::Method::DELETE,
            format!("/api/mobile/lead-sources/{id}"),
            None,
        ),
    ] {
        let (status, _) = api(&server, &other, method.clone(), &path, body).await;
        assert_eq!(status, 404, "{method} {path}");
    }
    let (_, page) = api(
        &server,
        &other,
        reqwest::Method::GET,
        "/api/mobile/lead-sources",
        None,
    )
    .await;
    assert_eq!(page["total"], 0);
    let (status, _, _) = push(&server, &url, good, &[]).await;
    assert_eq!(status, 200, "the owner's URL still works");

    // Oversized: 413. Deeply nested: 400. Not JSON: 400. Wrong content type: 415.
    let huge = format!(
        r#"{{"clue_id":"2","telphone":"13800138000","pad":"{}"}}"#,
        "x".repeat(70 * 1024)
    );
    let (status, problem, _) = push(&server, &url, huge.as_bytes(), &[]).await;
    assert_eq!(status, 413, "{problem}");
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let (status, problem, _) = push(&server, &url, deep.as_bytes(), &[]).await;
    assert_eq!(status, 400, "{problem}");
    let (status, _, _) = push(&server, &url, b"clue_id=1", &[]).await;
    assert_eq!(status, 400);
    let res = server
        .http()
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("clue_id=3&telphone=13800138000")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
    // No phone, a phone that is not a mobile number: 422 with the reason.
    let (status, problem, _) = push(&server, &url, br#"{"clue_id":"4","name":"x"}"#, &[]).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["field"], "mobile");
    assert!(
        problem["detail"].as_str().unwrap().contains("telphone"),
        "{problem}"
    );
    let (status, problem, _) =
        push(&server, &url, br#"{"clue_id":"5","telphone":"12345"}"#, &[]).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["field"], "mobile");
    assert_eq!(
        lead_count(&server).await,
        1,
        "no refused push stored anything"
    );

    // Management input: unknown channel, unknown setting, no scope.
    let (status, problem) = api(
        &server,
        &owner,
        reqwest::Method::POST,
        "/api/mobile/lead-sources",
        Some(json!({"channel": "TIKTOK", "name": "x"})),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["field"], "channel");
    let (status, problem) = api(
        &server,
        &owner,
        reqwest::Method::POST,
        "/api/mobile/lead-sources",
        Some(json!({"channel": "FEIYU", "name": "x", "settings": {"feilds": {}}})),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    let (status, problem) = api(
        &server,
        &owner,
        reqwest::Method::POST,
        "/api/mobile/lead-sources",
        Some(json!({"channel": "FEIYU", "name": ""})),
    )
    .await;
    assert_eq!((status, &problem["field"]), (422, &json!("name")));
    let pusher = server.create_client(Scopes::one(Scope::LeadsWrite)).await;
    let pusher = Partner {
        token: server.token(&pusher).await,
    };
    let (status, _) = api(
        &server,
        &pusher,
        reqwest::Method::GET,
        "/api/mobile/lead-sources",
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = api(
        &server,
        &pusher,
        reqwest::Method::GET,
        "/api/mobile/leads",
        None,
    )
    .await;
    assert_eq!(status, 403);

    // Deleting the source: its URL is 404 at once.
    let (status, _) = api(
        &server,
        &owner,
        reqwest::Method::DELETE,
        &format!("/api/mobile/lead-sources/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _, _) = push(&server, &url, good, &[]).await;
    assert_eq!(status, 404);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_200_pushes_is_answered_within_the_5_second_budget() {
    for backend in Backend::available() {
        let server = TestServer::start(backend).await;
        let (_, owner) = partner(&server).await;
        let created = create_source(
            &server,
            &owner,
            json!({"channel": "XIAOHONGSHU", "name": "聚光", "settings": {"token": "burst"}}),
        )
        .await;
        let url = push_url(&created);
        // Sign all 200 bodies first (one python run each would dominate the burst).
        let bodies: Vec<Vec<u8>> = (0..200)
            .map(|i| {
                xhs_body(
                    &format!("burst-{i}"),
                    &[("姓名", "张三"), ("电话", &format!("138{i:08}"))],
                )
            })
            .collect();
        let script = "import hmac,hashlib,sys,json\nfor b in json.load(sys.stdin): print(hmac.new(b'burst', bytes(b), hashlib.sha1).hexdigest())";
        let mut child = Command::new("python3")
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&serde_json::to_vec(&bodies).unwrap())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let sigs: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(sigs.len(), 200);

        let started = Instant::now();
        let tasks: Vec<_> = bodies
            .into_iter()
            .zip(sigs)
            .map(|(body, sig)| {
                let http = server.http().clone();
                let url = url.clone();
                tokio::spawn(async move {
                    let t = Instant::now();
                    let res = http
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("X-Red-Signature", format!("sha1={sig}"))
                        .body(body)
                        .timeout(Duration::from_secs(30))
                        .send()
                        .await
                        .unwrap();
                    (res.status().as_u16(), t.elapsed())
                })
            })
            .collect();
        let mut slowest = Duration::ZERO;
        for t in tasks {
            let (status, elapsed) = t.await.unwrap();
            assert_eq!(status, 200);
            slowest = slowest.max(elapsed);
        }
        eprintln!(
            "{backend:?}: 200 pushes in {:?}, slowest {slowest:?}",
            started.elapsed()
        );
        assert!(slowest < Duration::from_secs(5), "a push took {slowest:?}");
        assert_eq!(lead_count(&server).await, 200);
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_per_source_quota_pushes_get_a_retryable_503() {
    let mut options = TestOptions::default();
    options.config.lead_source_rate_limit = Quota::per_minute(2);
    let server = TestServer::start_with(Backend::Sqlite, options).await;
    let (_, owner) = partner(&server).await;
    let a = create_source(&server, &owner, json!({"channel": "FEIYU", "name": "a"})).await;
    let b = create_source(&server, &owner, json!({"channel": "FEIYU", "name": "b"})).await;
    for i in 0..2 {
        let body = format!(r#"{{"clue_id":"q{i}","telphone":"13800138000"}}"#);
        let (status, _, _) = push(&server, &push_url(&a), body.as_bytes(), &[]).await;
        assert_eq!(status, 200);
    }
    let (status, problem, headers) = push(
        &server,
        &push_url(&a),
        br#"{"clue_id":"q2","telphone":"13800138000"}"#,
        &[],
    )
    .await;
    assert_eq!(status, 503, "{problem}");
    assert_eq!(problem["code"], "lead_source_rate_limited");
    assert!(
        headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    // The quota is per source: another source of the same client still passes.
    let (status, _, _) = push(
        &server,
        &push_url(&b),
        br#"{"clue_id":"q3","telphone":"13800138000"}"#,
        &[],
    )
    .await;
    assert_eq!(status, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_source_quota_is_shared_through_redis() {
    let Some(redis) = l2c_server::testing::redis_url("the Redis-backed push quota") else {
        return;
    };
    let prefix = l2c_server::testing::random_redis_prefix();
    let mut options = TestOptions::redis(&redis, &prefix);
    options.config.lead_source_rate_limit = Quota::per_minute(1);
    let server = TestServer::start_with(Backend::Sqlite, options.clone()).await;
    let (_, owner) = partner(&server).await;
    let created = create_source(&server, &owner, json!({"channel": "FEIYU", "name": "a"})).await;
    let url = push_url(&created);
    let (status, _, _) = push(
        &server,
        &url,
        br#"{"clue_id":"r1","telphone":"13800138000"}"#,
        &[],
    )
    .await;
    assert_eq!(status, 200);
    // A second replica on the same database and Redis: the quota is already spent.
    let test_db = server.test_db.clone();
    let replica = TestServer::start_on(test_db, options).await;
    let replica_url = url.replace(&server.base_url, &replica.base_url);
    let (status, problem, _) = push(
        &replica,
        &replica_url,
        br#"{"clue_id":"r2","telphone":"13800138000"}"#,
        &[],
    )
    .await;
    assert_eq!(status, 503, "{problem}");
    assert_eq!(problem["code"], "lead_source_rate_limited");
    replica.shutdown().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_urls_use_the_public_url_when_configured() {
    let mut options = TestOptions::default();
    options.config.public_url = Some("https://l2c.example.com/base".to_owned());
    let server = TestServer::start_with(Backend::Sqlite, options).await;
    let (_, owner) = partner(&server).await;
    let created = create_source(&server, &owner, json!({"channel": "FEIYU", "name": "a"})).await;
    let url = push_url(&created);
    assert!(
        url.starts_with("https://l2c.example.com/base/api/hooks/leads/lst_"),
        "{url}"
    );
    // The same token works on this server's own address.
    let token = url.rsplit('/').next().unwrap();
    let local = format!("{}/api/hooks/leads/{token}", server.base_url);
    let (status, _, _) = push(
        &server,
        &local,
        br#"{"clue_id":"p1","telphone":"13800138000"}"#,
        &[],
    )
    .await;
    assert_eq!(status, 200);
    // Create and rotate answers are not cached and their replay omits the URL.
    let res = server
        .http()
        .post(server.url("/api/mobile/lead-sources"))
        .bearer_auth(&owner.token)
        .header("X-Request-Id", "create-once-1")
        .json(&json!({"channel": "FEIYU", "name": "b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let first: Value = res.json().await.unwrap();
    let res = server
        .http()
        .post(server.url("/api/mobile/lead-sources"))
        .bearer_auth(&owner.token)
        .header("X-Request-Id", "create-once-1")
        .json(&json!({"channel": "FEIYU", "name": "b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["idempotent-replayed"], "true");
    let replay: Value = res.json().await.unwrap();
    assert_eq!(replay["id"], first["id"], "one source, not two");
    assert!(replay.get("pushUrl").is_none(), "{replay}");
    let (_, page) = api(
        &server,
        &owner,
        reqwest::Method::GET,
        "/api/mobile/lead-sources",
        None,
    )
    .await;
    assert_eq!(page["total"], 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_clients_sources_refuse_pushes() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (client, owner) = partner(&server).await;
    let created = create_source(&server, &owner, json!({"channel": "FEIYU", "name": "a"})).await;
    let url = push_url(&created);
    let body = br#"{"clue_id":"d1","telphone":"13800138000"}"#;
    server
        .db
        .clients()
        .set_disabled(&client.id, true)
        .await
        .unwrap();
    server.state.limits.load_quotas(&server.db).await.unwrap();
    let (status, problem, _) = push(&server, &url, body, &[]).await;
    assert_eq!(status, 403, "{problem}");
    assert_eq!(problem["code"], "lead_source_disabled");
    assert_eq!(lead_count(&server).await, 0);
    server
        .db
        .clients()
        .set_disabled(&client.id, false)
        .await
        .unwrap();
    server.state.limits.load_quotas(&server.db).await.unwrap();
    let (status, _, _) = push(&server, &url, body, &[]).await;
    assert_eq!(status, 200);
    server.stop().await;
}
