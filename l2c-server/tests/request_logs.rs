//! The request log (请求日志): API requests land in their app's log with the route template,
//! status, request id, latency and rate-limit state, written off the request path; a forged
//! token writes nothing into the app it names; nothing secret is stored; expired rows are
//! purged; the console finds a request by id, keeps apps apart and counts the chart's hours.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

mod console_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use console_support::{Browser, account, order};
use l2c_core::clock::MockClock;
use l2c_core::rate_limit::Quota;
use l2c_core::{ClientId, RequestId, Scopes};
use l2c_server::observe::request_log::purge_expired;
use l2c_server::store::Db;
use l2c_server::store::accounts::Role;
use l2c_server::store::request_logs::{
    HOUR_MS, NewRequestLog, RequestLogFilter, RequestLogRow, StatusClass,
};
use l2c_server::testing::{Backend, TestOptions, TestServer};

fn options() -> TestOptions {
    let mut options = TestOptions::default();
    options.config.webhooks.dispatcher = false;
    options.config.request_logs.flush_interval = Duration::from_millis(20);
    options
}

/// The rows `filter` selects once `n` of them are written (the writer batches every 20 ms).
async fn wait_rows(db: &Db, filter: RequestLogFilter<'_>, n: usize) -> Vec<RequestLogRow> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = db.request_logs().list(&filter, 100, 0).await.unwrap();
        if rows.len() >= n {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} rows: {rows:?}",
            rows.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn by_id<'a>(rows: &'a [RequestLogRow], id: &str) -> &'a RequestLogRow {
    rows.iter()
        .find(|r| r.request_id == id)
        .unwrap_or_else(|| panic!("no row {id} in {rows:?}"))
}

#[tokio::test]
async fn api_requests_are_logged_with_route_status_request_id_and_limit_state() {
    for backend in Backend::available() {
        let server = TestServer::start_with(backend, options()).await;
        let app = server
            .create_client_with_quota(Scopes::all(), Quota::per_minute(3))
            .await;
        let token = server.token(&app).await; // 1 of the token endpoint's, not the app's quota
        let send = |method: reqwest::Method, path: &str, id: &str| {
            server
                .http()
                .request(method, server.url(path))
                .bearer_auth(&token)
                .header("x-request-id", id)
        };
        let sync = send(
            reqwest::Method::POST,
            "/api/mobile/orders/sync",
            "partner-1",
        );
        assert_eq!(
            sync.json(&order("SO-LOG-1")).send().await.unwrap().status(),
            201
        );
        // An id in the path and a query string: only the template is kept. Then over the
        // quota (3/min): refused, and still in the app's log.
        for (path, id, status) in [
            (
                "/api/mobile/customers/cus_private42?note=hello",
                "partner-2",
                404,
            ),
            ("/api/mobile/showroom/items", "partner-3", 200),
            ("/api/mobile/showroom/items", "partner-4", 429),
        ] {
            let res = send(reqwest::Method::GET, path, id).send().await.unwrap();
            assert_eq!(res.status(), status, "{id}");
        }
        // Without an X-Request-Id: the generated one the response echoes.
        let res = server
            .http()
            .get(server.url("/api/mobile/showroom/items"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let generated = res.headers()["x-request-id"].to_str().unwrap().to_owned();

        let rows = wait_rows(&server.db, RequestLogFilter::new(Some(&app.id)), 6).await;
        let sync = by_id(&rows, "partner-1");
        assert_eq!(
            (sync.method.as_str(), sync.route.as_str(), sync.status),
            ("POST", "/api/mobile/orders/sync", 201),
            "{backend:?}"
        );
        assert!(sync.latency_us > 0);
        assert_eq!(sync.rate_remaining, Some(2));
        assert_eq!(sync.client_id.as_deref(), Some(app.id.as_str()));
        let customer = by_id(&rows, "partner-2");
        assert_eq!(
            (customer.route.as_str(), customer.status),
            ("/api/mobile/customers/{id}", 404)
        );
        let limited = by_id(&rows, "partner-4");
        assert_eq!((limited.status, limited.rate_remaining), (429, Some(0)));
        assert_eq!(by_id(&rows, &generated).status, 429);
        // The token request: its client secret was verified, so it is the app's.
        assert!(
            rows.iter()
                .any(|r| r.route == "/api/oauth/token" && r.status == 200),
            "{rows:?}"
        );

        // Nothing secret, personal or from a body in any stored column.
        let signature = token.rsplit('.').next().unwrap();
        let stored = format!("{rows:?}");
        for secret in [
            app.secret.as_str(),
            token.as_str(),
            signature,
            "cus_private42",
            "note=hello",
            "SO-LOG-1",
            "李四",
            "wx-SO-LOG-1",
            "1234-5678",
        ] {
            assert!(!stored.contains(secret), "{secret} stored: {stored}");
        }
        // Newest first, and the status filter.
        let limited_only = server
            .db
            .request_logs()
            .list(
                &RequestLogFilter::new(Some(&app.id)).status(Some(StatusClass::Limited)),
                10,
                0,
            )
            .await
            .unwrap();
        assert_eq!(limited_only.len(), 2);
        assert!(rows.windows(2).all(|w| w[0].at >= w[1].at));
        server.stop().await;
    }
}

/// `token` with its claims' `sub` (and `client_id`) replaced by `victim`, the signature kept.
fn forged(token: &str, victim: &str) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut parts = token.split('.');
    let (header, claims, sig) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let mut claims: serde_json::Value =
        serde_json::from_slice(&b64.decode(claims).unwrap()).unwrap();
    claims["sub"] = victim.into();
    if claims.get("client_id").is_some() {
        claims["client_id"] = victim.into();
    }
    let claims = b64.encode(serde_json::to_vec(&claims).unwrap());
    format!("{header}.{claims}.{sig}")
}

#[tokio::test]
async fn a_401_with_a_token_forged_for_another_app_stays_out_of_its_log() {
    for backend in Backend::available() {
        let server = TestServer::start_with(backend, options()).await;
        let attacker = server.create_client(Scopes::all()).await;
        let victim = server.create_client(Scopes::all()).await;
        let token = server.token(&attacker).await;
        for (id, auth) in [
            ("forged-1", Some(forged(&token, &victim.id))),
            ("no-token-1", None),
        ] {
            let mut req = server
                .http()
                .get(server.url("/api/mobile/showroom/items"))
                .header("x-request-id", id);
            if let Some(auth) = auth {
                req = req.bearer_auth(auth);
            }
            assert_eq!(req.send().await.unwrap().status(), 401, "{id}");
        }
        // Kept without an app, for operators; never in the victim's (or attacker's) log.
        let all = wait_rows(&server.db, RequestLogFilter::new(None), 3).await;
        for id in ["forged-1", "no-token-1"] {
            let row = by_id(&all, id);
            assert_eq!((row.status, row.client_id.as_deref()), (401, None));
        }
        let victims = server
            .db
            .request_logs()
            .list(&RequestLogFilter::new(Some(&victim.id)), 10, 0)
            .await
            .unwrap();
        assert!(victims.is_empty(), "{victims:?}");

        // The operator finds it by id; the victim's developer does not see it.
        account(&server.db, "ops", Role::Operator, None).await;
        account(&server.db, "victim-dev", Role::Developer, Some(&victim.id)).await;
        let mut ops = Browser::new(&server);
        ops.login("ops").await;
        let page = ops.get("/console/logs?request_id=forged-1").await;
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(
            html.contains("forged-1") && html.contains("未归属"),
            "{html}"
        );
        let mut dev = Browser::new(&server);
        dev.login("victim-dev").await;
        let html = dev
            .get(&format!(
                "/console/apps/{}/logs?request_id=forged-1",
                victim.id
            ))
            .await
            .text()
            .await
            .unwrap();
        assert!(
            !html.contains("<td class=\"mono small url\">forged-1"),
            "{html}"
        );
        assert!(html.contains("没有符合条件的请求"));
        server.stop().await;
    }
}

#[tokio::test]
async fn the_console_finds_a_request_by_id_and_keeps_apps_apart() {
    let server = TestServer::start_with(Backend::Sqlite, options()).await;
    let mine = server.create_client(Scopes::all()).await;
    let theirs = server.create_client(Scopes::all()).await;
    for (app, id) in [(&mine, "mine-req-1"), (&theirs, "their-req-1")] {
        let token = server.token(app).await;
        let res = server
            .http()
            .get(server.url("/api/mobile/showroom/items"))
            .bearer_auth(token)
            .header("x-request-id", id)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    wait_rows(&server.db, RequestLogFilter::new(None), 4).await;
    account(&server.db, "dev", Role::Developer, Some(&mine.id)).await;
    let mut b = Browser::new(&server);
    b.login("dev").await;
    let base = format!("/console/apps/{}/logs", mine.id);

    let res = b.get(&format!("{base}?request_id=mine-req-1")).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("mine-req-1"), "{html}");
    assert!(html.contains("/api/mobile/showroom/items"));
    assert!(html.contains("<svg") && html.contains("请求日志"));
    // Exact match only; another app's id finds nothing here.
    for q in ["mine-req", "their-req-1"] {
        let html = b
            .get(&format!("{base}?request_id={q}"))
            .await
            .text()
            .await
            .unwrap();
        assert!(html.contains("没有符合条件的请求"), "{q}: {html}");
    }
    // The status filter.
    let html = b
        .get(&format!("{base}?status=5xx"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!html.contains("mine-req-1"));
    let html = b
        .get(&format!("{base}?status=2xx"))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("mine-req-1"));
    // Bad input: a sentence and 400, never a 500.
    for q in ["status=6xx", "page=abc", "request_id=a%20b"] {
        let res = b.get(&format!("{base}?{q}")).await;
        assert_eq!(res.status(), 400, "{q}");
        assert!(res.text().await.unwrap().contains("无效"), "{q}");
    }
    let long = "x".repeat(300);
    assert_eq!(
        b.get(&format!("{base}?request_id={long}")).await.status(),
        400
    );
    // Another app's log, the operators' page, a made-up app: 404.
    for path in [
        format!("/console/apps/{}/logs", theirs.id),
        "/console/logs".to_owned(),
        "/console/apps/nope/logs".to_owned(),
    ] {
        assert_eq!(b.get(&path).await.status(), 404, "{path}");
    }
    // Signed out: back to the login page.
    let mut anon = Browser::new(&server);
    assert_eq!(anon.get(&base).await.status(), 303);
    server.stop().await;
}

fn at(ms: i64, status: u16, id: &str) -> NewRequestLog {
    NewRequestLog::new(
        ms,
        Some(ClientId::new("app_chart")),
        "GET",
        Arc::new("/api/mobile/showroom/items".to_owned()),
        status,
        RequestId::new(id),
        800,
        None,
    )
}

#[tokio::test]
async fn the_chart_counts_each_hour_and_old_rows_are_purged() {
    for backend in Backend::available() {
        // 2025-12-05 10:30:00 +08:00.
        let clock = MockClock::at_unix(1_764_901_800);
        let mut options = options();
        options.clock = Some(Arc::new(clock.clone()));
        let server = TestServer::start_with(backend, options).await;
        let now = server.db.now_millis();
        let hour = now / HOUR_MS * HOUR_MS;
        server
            .db
            .request_logs()
            .insert_many(&[
                at(hour + 1, 200, "a"),
                at(hour + 2, 404, "b"),
                at(hour + 3, 429, "c"),
                at(now, 503, "d"),
                at(hour - 5 * HOUR_MS, 200, "e"),
                at(hour - 5 * HOUR_MS + HOUR_MS - 1, 201, "f"),
                // Outside the 24 hours: not in the chart.
                at(hour - 24 * HOUR_MS, 500, "g"),
                // Older than the 7 days kept.
                at(now - 8 * 24 * HOUR_MS, 200, "h"),
            ])
            .await
            .unwrap();
        let hours = server
            .db
            .request_logs()
            .hourly(Some("app_chart"), hour - 23 * HOUR_MS)
            .await
            .unwrap();
        let counts: Vec<_> = hours
            .iter()
            .map(|h| {
                (
                    (h.hour_start - hour) / HOUR_MS,
                    h.total,
                    h.client_errors,
                    h.limited,
                    h.server_errors,
                )
            })
            .collect();
        assert_eq!(counts, [(-5, 2, 0, 0, 0), (0, 4, 2, 1, 1)], "{backend:?}");

        account(&server.db, "ops", Role::Operator, None).await;
        let mut b = Browser::new(&server);
        b.login("ops").await;
        let html = b.get("/console/logs").await.text().await.unwrap();
        assert!(
            html.contains("共 6 次请求，4xx 2 次，其中 429 1 次，5xx 1 次"),
            "{html}"
        );
        assert!(
            html.contains("10:00：请求 4，4xx 2（429 1），5xx 1"),
            "{html}"
        );
        assert!(html.contains("05:00：请求 2，4xx 0（429 0），5xx 0"));

        // The purge keeps 7 days.
        let purged = purge_expired(&server.db, Duration::from_secs(7 * 86_400))
            .await
            .unwrap();
        assert_eq!(purged, 1);
        let left = server
            .db
            .request_logs()
            .list(&RequestLogFilter::new(Some("app_chart")), 100, 0)
            .await
            .unwrap();
        assert_eq!(left.len(), 7);
        assert!(left.iter().all(|r| r.request_id != "h"));
        server.stop().await;
    }
}

#[tokio::test]
async fn a_full_log_queue_drops_and_counts_without_slowing_requests() {
    let test_db = l2c_server::testing::TestDb::create(Backend::Sqlite).await;
    let db = Db::connect(&test_db.url).await.unwrap();
    let mut config = TestOptions::default().config;
    config.database_url.clone_from(&test_db.url);
    config.request_logs.capacity = 2;
    let state = l2c_server::AppState::new(config, db.clone()).await.unwrap();
    // A writer that never runs: the queue fills after two records.
    let _stalled = state
        .request_log
        .writer(db.clone(), state.config.request_logs.clone(), None)
        .unwrap();
    let server = TestServer::start_state(test_db, db, state).await;
    let app = server.create_client(Scopes::all()).await;
    let token = server.token(&app).await;
    let started = Instant::now();
    for i in 0..10 {
        let res = server
            .http()
            .get(server.url("/api/mobile/showroom/items"))
            .bearer_auth(&token)
            .header("x-request-id", format!("q-{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    let metrics = server
        .http()
        .get(server.metrics_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // 11 API requests (the token's and ten reads), 2 queued.
    assert!(
        metrics.contains("l2c_request_log_dropped_total{reason=\"full\"} 9"),
        "{metrics}"
    );
    server.stop().await;
}
