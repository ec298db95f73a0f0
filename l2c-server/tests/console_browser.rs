//! The developer console in a real browser: headless Chromium driven over WebDriver
//! (`chromedriver`, Debian's `chromium` + `chromium-driver`). Walks the whole flow — log in,
//! create an app, copy its secret, add a webhook pointing at a local receiver, sync an order
//! a test event (PING) and see it delivered, sync an order through the API with that app and see
//! ORDER_CREATED delivered, make the receiver fail, see the failed attempts, resend the delivery
//! and see every attempt with its own result beside the current status, roll the app's secret,
//! find the order sync in the request log by its `X-Request-Id`, log out — and saves a PNG of
//! each page under
//! `target/console-screenshots/`.
//!
//! Skips (printing `skipping: chromium/chromedriver not found`) when the browser is missing, except
//! under `CI=true`, where `.ci/run` installs it and a missing browser fails the test;
//! `L2C_CHROMIUM` and `L2C_CHROMEDRIVER` override the paths.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

mod console_support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use base64::Engine as _;
use console_support::{PASSWORD, account, token_status};
use http::StatusCode;
use l2c_core::ClientId;
use l2c_core::api::events::EventType;
use l2c_server::admin::webhooks::{DeliveryFilter, deliveries};
use l2c_server::store::accounts::Role;
use l2c_server::store::outbox::status_name;
use l2c_server::testing::{Backend, TestOptions, TestServer};
use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn tool(var: &str, default: &str) -> Option<PathBuf> {
    let p = PathBuf::from(std::env::var(var).unwrap_or_else(|_| default.to_owned()));
    p.exists().then_some(p)
}

/// Kills chromedriver when the test ends, however it ends.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A WebDriver session.
struct Wd {
    http: reqwest::Client,
    session: String,
    shots: PathBuf,
    n: usize,
}

impl Wd {
    async fn cmd(&self, method: http::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.session);
        let mut req = self.http.request(method, &url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let v: Value = res.json().await.unwrap();
        assert!(status.is_success(), "{path}: {v}");
        v["value"].clone()
    }

    async fn try_cmd(&self, method: http::Method, path: &str, body: Value) -> bool {
        let url = format!("{}{path}", self.session);
        let res = self
            .http
            .request(method, &url)
            .json(&body)
            .send()
            .await
            .unwrap();
        res.status().is_success()
    }

    async fn goto(&self, url: &str) {
        self.cmd(http::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    async fn url(&self) -> String {
        self.cmd(http::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Waits until the current URL contains `part` (a navigation may still be under way).
    async fn wait_url(&self, part: &str) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if self.url().await.contains(part) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the page did not reach {part}: {}", self.url().await);
    }

    async fn source(&self) -> String {
        self.cmd(http::Method::GET, "/source", None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn find(&self, css: &str) -> String {
        let v = self
            .cmd(
                http::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_owned()
    }

    async fn text(&self, css: &str) -> String {
        let e = self.find(css).await;
        self.cmd(http::Method::GET, &format!("/element/{e}/text"), None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.cmd(
            http::Method::POST,
            &format!("/element/{e}/clear"),
            Some(json!({})),
        )
        .await;
        self.cmd(
            http::Method::POST,
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.cmd(
            http::Method::POST,
            &format!("/element/{e}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// Accepts a `confirm()` if one is open (the dangerous forms ask).
    async fn accept_confirm(&self) -> bool {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(3) {
            if self
                .try_cmd(http::Method::POST, "/alert/accept", json!({}))
                .await
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    async fn window(&self, width: u32, height: u32) {
        self.cmd(
            http::Method::POST,
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await;
    }

    async fn screenshot(&mut self, name: &str) {
        self.save_png(name, "/screenshot".to_owned()).await;
    }

    /// A screenshot of the first element matching `css` only (a part further down the page),
    /// taken in a window `width` wide and tall enough to hold it, then set back to `height`.
    async fn screenshot_of(&mut self, name: &str, css: &str, (width, height): (u32, u32)) {
        self.window(width, 2600).await;
        let e = self.find(css).await;
        self.save_png(name, format!("/element/{e}/screenshot"))
            .await;
        self.window(width, height).await;
    }

    async fn save_png(&mut self, name: &str, path: String) {
        let png = self.cmd(http::Method::GET, &path, None).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        self.n += 1;
        let path = self.shots.join(format!("{:02}-{name}.png", self.n));
        std::fs::write(&path, bytes).unwrap();
        eprintln!("screenshot: {}", path.display());
    }
}

async fn wait_for(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
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

/// Syncs order `no` as the app; the request's `X-Request-Id`.
async fn sync_order(server: &TestServer, id: &str, secret: &str, no: &str) -> String {
    let token: Value = server
        .http()
        .post(server.url("/api/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let request_id = uuid::Uuid::new_v4().to_string();
    let res = server
        .http()
        .post(server.url("/api/mobile/orders/sync"))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .header("x-request-id", &request_id)
        .json(&order(no))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    request_id
}

/// The statuses of the subscription's deliveries of `event`, newest first.
async fn statuses(server: &TestServer, client: &str, sub: &str, event: EventType) -> Vec<String> {
    let filter = DeliveryFilter {
        event_type: Some(event),
        ..DeliveryFilter::default()
    };
    let sub = server
        .db
        .webhooks()
        .get(&ClientId::new(client), sub)
        .await
        .unwrap()
        .unwrap();
    deliveries(&server.state, &sub, &filter, 1)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|d| status_name(d.status).to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_flow_in_headless_chromium() {
    let (Some(chromium), Some(chromedriver)) = (
        tool("L2C_CHROMIUM", "/usr/bin/chromium"),
        tool("L2C_CHROMEDRIVER", "/usr/bin/chromedriver"),
    ) else {
        // In CI (`.ci/run` installs the browser) a missing browser is a failure, not a skip.
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "chromium/chromedriver not found, and CI=true: .ci/run should have installed them"
        );
        eprintln!("skipping: chromium/chromedriver not found");
        return;
    };

    // The receiver: answers 200, or 500 while `fail` is set.
    let fail = Arc::new(AtomicBool::new(false));
    let hits = Arc::new(AtomicUsize::new(0));
    let (f, h) = (Arc::clone(&fail), Arc::clone(&hits));
    let receiver = Router::new().route(
        "/hook",
        post(move || {
            let (f, h) = (Arc::clone(&f), Arc::clone(&h));
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                if f.load(Ordering::SeqCst) {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await });

    let mut options = TestOptions::default();
    options.config.webhooks.allow_private = true;
    options.config.webhooks.retry_schedule = "200ms".parse().unwrap();
    options.config.webhooks.poll_interval = Duration::from_millis(100);
    let server = TestServer::start_with(Backend::Sqlite, options).await;
    account(&server.db, "ops", Role::Operator, None).await;

    // chromedriver on a free port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _driver = Driver(
        Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver"),
    );
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    wait_for("chromedriver", async || {
        http.get(format!("{base}/status"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
    let caps = json!({"capabilities": {"alwaysMatch": {
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,900", "--lang=zh-CN", "--no-proxy-server"]
        }
    }}});
    let created: Value = http
        .post(format!("{base}/session"))
        .json(&caps)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session_id = created["value"]["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_owned();
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let mut wd = Wd {
        http: http.clone(),
        session: format!("{base}/session/{session_id}"),
        shots,
        n: 0,
    };
    // Element lookups wait for a form's answer page to load.
    wd.cmd(
        http::Method::POST,
        "/timeouts",
        Some(json!({"implicit": 5000})),
    )
    .await;
    let console = |p: &str| server.url(p);

    // Log in.
    wd.goto(&console("/console/apps")).await;
    assert!(
        wd.url().await.ends_with("/console/login"),
        "redirected to the login page"
    );
    wd.screenshot("login").await;
    wd.type_into("#username", "ops").await;
    wd.type_into("#password", PASSWORD).await;
    wd.click("form[action='/console/login'] button[type=submit]")
        .await;
    wd.wait_url("/console/apps").await;
    wd.screenshot("apps-empty").await;

    // Create an app; copy its secret (read from the page).
    wd.type_into("#name", "门店 ERP").await;
    wd.type_into("#rate_limit", "50/s").await;
    wd.click("form[action='/console/apps'] button[type=submit]")
        .await;
    let secret = wd.text("#client-secret").await;
    assert_eq!(secret.len(), 43, "{secret}");
    wd.click("button.copy").await;
    let client_id = wd.text(".apphead .mono").await;
    assert!(client_id.starts_with("l2c_"));
    wd.screenshot("app-created").await;
    assert_eq!(token_status(&server, &client_id, &secret).await, 200);

    // Add a webhook pointing at the receiver.
    wd.goto(&console(&format!("/console/apps/{client_id}/webhooks")))
        .await;
    wd.type_into("#url", &hook_url).await;
    // ORDER_CREATED only: untick the others.
    wd.click("input[value=ORDER_STATUS_CHANGED]").await;
    wd.click("input[value=PAYMENT_RECEIVED]").await;
    wd.click("form.card button.primary, div.card form button.primary")
        .await;
    let wh_secret = wd.text("#webhook-secret").await;
    assert!(wh_secret.starts_with("whsec_"));
    wd.screenshot("webhook-added").await;
    let sub = server
        .db
        .webhooks()
        .list(&ClientId::new(client_id.as_str()))
        .await
        .unwrap()[0]
        .id
        .clone();

    // Send a test event: a PING to this subscription only, delivered like any event.
    let detail = console(&format!("/console/apps/{client_id}/webhooks/{sub}"));
    wd.goto(&detail).await;
    let before = hits.load(Ordering::SeqCst);
    wd.click("form[action$='/test'] button[type=submit]").await;
    wd.wait_url("ok=tested").await;
    wait_for("the test event", async || {
        statuses(&server, &client_id, &sub, EventType::Ping)
            .await
            .iter()
            .any(|s| s == "SUCCEEDED")
    })
    .await;
    assert_eq!(hits.load(Ordering::SeqCst), before + 1, "one PING sent");
    wd.goto(&format!("{detail}?event=PING")).await;
    wd.click("details.delivery summary").await;
    let page = wd.source().await;
    assert!(
        page.contains(">PING<") && page.contains("webhookId") && page.contains("HTTP 200"),
        "the PING row, its body and its 200 attempt"
    );
    assert!(page.contains("class=\"badge on\">成功"));
    wd.screenshot_of("test-event", "div.deliveries", (1280, 900))
        .await;

    // Sync an order through the API with that app: ORDER_CREATED is delivered.
    let sync_request_id = sync_order(&server, &client_id, &secret, "PO-1").await;
    wait_for("the first delivery", async || {
        statuses(&server, &client_id, &sub, EventType::OrderCreated)
            .await
            .iter()
            .any(|s| s == "SUCCEEDED")
    })
    .await;
    wd.goto(&detail).await;
    let page = wd.source().await;
    assert!(page.contains("ORDER_CREATED") && page.contains("成功") && page.contains("HTTP 200"));
    wd.screenshot("deliveries-ok").await;

    // Make the receiver fail: the failed attempts show.
    fail.store(true, Ordering::SeqCst);
    sync_order(&server, &client_id, &secret, "PO-2").await;
    wait_for("a failed delivery", async || {
        statuses(&server, &client_id, &sub, EventType::OrderCreated)
            .await
            .iter()
            .any(|s| s == "FAILED")
    })
    .await;
    wd.goto(&format!("{detail}?status=FAILED")).await;
    wd.click("details.delivery summary").await;
    let page = wd.source().await;
    assert!(
        page.contains("HTTP 500") && page.contains("失败"),
        "the failed attempt is shown"
    );
    wd.screenshot_of("delivery-failed", "div.deliveries", (1280, 900))
        .await;

    // Resend it once the receiver is back.
    fail.store(false, Ordering::SeqCst);
    let before = hits.load(Ordering::SeqCst);
    wd.click("form[action*='/resend'] button").await;
    wd.wait_url("ok=resent").await;
    wait_for("the resent delivery", async || {
        let s = statuses(&server, &client_id, &sub, EventType::OrderCreated).await;
        s.len() == 2 && s.iter().all(|s| s == "SUCCEEDED")
    })
    .await;
    assert!(hits.load(Ordering::SeqCst) > before);
    wd.goto(&format!("{detail}?status=FAILED")).await;
    assert!(
        wd.source().await.contains("暂无投递记录"),
        "no failed delivery left"
    );
    // The resent delivery: its current status, and every attempt with its own result.
    wd.goto(&format!("{detail}?event=ORDER_CREATED")).await;
    wd.click("details.delivery summary").await;
    let resent = wd.text("details.delivery").await;
    assert!(resent.contains("当前状态：成功"), "{resent}");
    let attempts = wd.text("details.delivery ol.attempts").await;
    // One line per attempt, `#n 结果 HTTP code · time · latency`.
    let lines: Vec<&str> = attempts.lines().filter(|l| l.starts_with('#')).collect();
    assert!(lines.len() >= 2, "both attempts listed: {attempts}");
    assert!(
        lines[0].contains("失败") && lines[0].contains("HTTP 500"),
        "{attempts}"
    );
    let last = lines[lines.len() - 1];
    assert!(
        last.contains("成功") && last.contains("HTTP 200"),
        "{attempts}"
    );
    // Each attempt folds out the headers as sent.
    wd.click("details.delivery details.exchange summary").await;
    let headers = wd.text("details.delivery details.exchange").await;
    assert!(headers.contains("webhook-signature: v1,"), "{headers}");
    wd.screenshot_of("delivery-resent", "div.deliveries", (1280, 900))
        .await;

    // Roll the app's secret (24 h overlap by default): both work, the overlap end is shown.
    wd.goto(&console(&format!("/console/apps/{client_id}")))
        .await;
    wd.click("form[action$='/roll-secret'] button[type=submit]")
        .await;
    assert!(wd.accept_confirm().await, "the roll asks for confirmation");
    wait_for("the new secret", async || {
        wd.source().await.contains("client-secret")
    })
    .await;
    let rolled = wd.text("#client-secret").await;
    assert_ne!(rolled, secret);
    assert!(wd.source().await.contains("上一个密钥有效至"));
    wd.screenshot("secret-rolled").await;
    assert_eq!(token_status(&server, &client_id, &rolled).await, 200);
    assert_eq!(
        token_status(&server, &client_id, &secret).await,
        200,
        "old one in the overlap"
    );

    // Lead sources and the audit log.
    wd.goto(&console(&format!("/console/apps/{client_id}/lead-sources")))
        .await;
    wd.type_into("#name", "官网表单").await;
    wd.click("form[action$='/lead-sources'] button[type=submit]")
        .await;
    assert!(wd.text("#push-url").await.contains("/api/hooks/leads/lst_"));
    wd.screenshot("lead-source-created").await;
    wd.goto(&console("/console/audit")).await;
    let page = wd.source().await;
    for action in [
        "login",
        "client.create",
        "webhook.create",
        "webhook.resend",
        "client.roll_secret",
    ] {
        assert!(page.contains(action), "audit: {action}");
    }
    wd.screenshot("audit").await;

    // Phone width.
    wd.window(390, 844).await;
    wd.goto(&format!("{detail}?event=ORDER_CREATED")).await;
    wd.click("details.delivery summary").await;
    wd.screenshot_of("phone-deliveries", "div.deliveries", (390, 844))
        .await;
    wd.goto(&console(&format!("/console/apps/{client_id}")))
        .await;
    wd.screenshot("phone-app").await;
    wd.window(1280, 900).await;

    // 请求日志: the order sync's X-Request-Id finds its row; the hourly chart is drawn.
    wd.goto(&console(&format!("/console/apps/{client_id}/logs")))
        .await;
    wd.type_into("input[name=request_id]", &sync_request_id)
        .await;
    wd.click("form.filters button[type=submit]").await;
    wd.wait_url("request_id=").await;
    let page = wd.source().await;
    assert!(
        page.contains(&sync_request_id) && page.contains("/api/mobile/orders/sync"),
        "the order sync is found by its request id"
    );
    assert!(page.contains("<svg") && page.contains("过去 24 小时每小时请求数"));
    // Tall enough to show the chart and the row found.
    wd.window(1280, 1400).await;
    wd.screenshot("request-logs").await;
    wd.window(390, 844).await;
    wd.screenshot("phone-request-logs").await;
    wd.window(1280, 900).await;

    // Log out: back to the login page, and the console is closed.
    wd.goto(&console("/console/apps")).await;
    wd.click("form[action='/console/logout'] button").await;
    wd.wait_url("/console/login").await;
    wd.screenshot("logged-out").await;
    wd.goto(&console("/console/apps")).await;
    assert!(wd.url().await.ends_with("/console/login"));

    let _ = http.delete(wd.session.clone()).send().await;
    server.stop().await;
}
