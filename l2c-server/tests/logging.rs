//! Issue 13 rows 6 and 7, through real HTTP with the binary's log subscriber capturing what it
//! writes: a `client_id` carrying a newline and an ANSI escape cannot forge a log line (text or
//! JSON format), and control characters in credentials are a plain `401 invalid_client` counted
//! by the failed-authentication limiter — never a 5xx or an ERROR line — on every backend.
//!
//! Each test installs the subscriber for its own thread; `#[tokio::test]` runs the server's
//! tasks on that thread too.
#![allow(clippy::unwrap_used)] // test helpers

use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use l2c_server::config::LogFormat;
use l2c_server::observe::log_subscriber;
use l2c_server::testing::{Backend, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// What the subscriber wrote.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A client id forging a whole INFO line in red.
const FORGED: &str =
    "evil\n2026-12-04T10:00:00.000000Z  INFO l2c_server::request: FAKE admin login ok\x1b[31m";

async fn token_request(server: &TestServer, client_id: &str) -> reqwest::Response {
    server
        .http()
        .post(server.url("/api/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", "wrong"),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_forged_client_id_stays_on_one_escaped_text_line() {
    let captured = Captured::default();
    let writer = captured.clone();
    let _guard =
        tracing::subscriber::set_default(log_subscriber(LogFormat::Text, false, move || {
            writer.clone()
        }));
    let server = TestServer::start(Backend::Sqlite).await;
    let res = token_request(&server, FORGED).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    server.stop().await;

    let logs = captured.text();
    assert!(!logs.contains('\x1b'), "raw ESC in the logs:\n{logs}");
    let failed: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("client authentication failed"))
        .collect();
    assert_eq!(failed.len(), 1, "{logs}");
    // The whole forged id is on that one line, escaped; no line of its own.
    assert!(failed[0].contains(r"evil\n2026-12-04"), "{}", failed[0]);
    assert!(failed[0].contains(r"\u{1b}[31m"), "{}", failed[0]);
    assert!(
        !logs.lines().any(|l| l.starts_with("2026-12-04T10:00:00")),
        "a forged line:\n{logs}"
    );
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_with_the_id_escaped() {
    let captured = Captured::default();
    let writer = captured.clone();
    let _guard =
        tracing::subscriber::set_default(log_subscriber(LogFormat::Json, false, move || {
            writer.clone()
        }));
    let server = TestServer::start(Backend::Sqlite).await;
    let res = token_request(&server, FORGED).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    server.stop().await;

    let logs = captured.text();
    assert!(!logs.contains('\x1b'), "raw ESC in the logs:\n{logs}");
    let mut found = 0;
    for line in logs.lines() {
        let value: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if value["fields"]["message"] == "token request: client authentication failed" {
            found += 1;
            // Recorded with `?`: the Debug form of the id, intact and escaped.
            assert_eq!(value["fields"]["client_id"], json!(format!("{FORGED:?}")));
        }
    }
    assert_eq!(found, 1, "{logs}");
}

/// Sends credentials holding control characters (JSON body, form body and Basic).
async fn control_character_credentials_on(backend: Backend) {
    let captured = Captured::default();
    let writer = captured.clone();
    let _guard =
        tracing::subscriber::set_default(log_subscriber(LogFormat::Text, false, move || {
            writer.clone()
        }));
    let server = TestServer::start(backend).await;
    let id = "a\u{0}b";
    let send = |how: usize| {
        let request = server.http().post(server.url("/api/oauth/token"));
        let request = match how % 3 {
            0 => request.json(&json!({
                "grant_type": "client_credentials", "client_id": id, "client_secret": "s"
            })),
            1 => request.form(&[
                ("grant_type", "client_credentials"),
                ("client_id", id),
                ("client_secret", "s"),
            ]),
            _ => {
                let basic = base64::engine::general_purpose::STANDARD.encode("a%00b:s");
                request
                    .header("authorization", format!("Basic {basic}"))
                    .form(&[("grant_type", "client_credentials")])
            }
        };
        request.send()
    };
    // The failed-authentication limiter allows 10 failures per client id, then `slow_down`.
    for how in 0..10 {
        let res = send(how).await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{backend:?} #{how}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client", "{body}");
    }
    let res = send(10).await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "{backend:?}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "slow_down", "{body}");
    // A secret with a control character is as wrong as any other, never a 5xx.
    let res = server
        .http()
        .post(server.url("/api/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "someone"),
            ("client_secret", "s\u{0}"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{backend:?}");
    server.stop().await;
    let logs = captured.text();
    assert!(
        !logs.contains("ERROR"),
        "{backend:?}: an ERROR line:\n{logs}"
    );
}

#[tokio::test]
async fn control_characters_in_credentials_are_invalid_client_on_sqlite() {
    control_character_credentials_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn control_characters_in_credentials_are_invalid_client_on_postgres() {
    if Backend::available().contains(&Backend::Postgres) {
        control_character_credentials_on(Backend::Postgres).await;
    }
}

/// NUL bytes in path ids and query text reach PostgreSQL as text: a 4xx, never a 5xx.
#[tokio::test]
async fn nul_bytes_in_paths_and_queries_are_4xx_on_every_backend() {
    for backend in Backend::available() {
        let captured = Captured::default();
        let writer = captured.clone();
        let _guard =
            tracing::subscriber::set_default(log_subscriber(LogFormat::Text, false, move || {
                writer.clone()
            }));
        let server = TestServer::start(backend).await;
        let client = server.create_client(l2c_core::Scopes::all()).await;
        let token = server.token(&client).await;
        for path in [
            "/api/mobile/customers/a%00b",
            "/api/mobile/orders/a%00b/status",
            "/api/mobile/webhooks/a%00b/deliveries",
            "/api/mobile/showroom/items?keyword=a%00b",
        ] {
            let res = server
                .http()
                .get(server.url(path))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            assert!(
                (400..500).contains(&status),
                "{backend:?} {path}: {status} {}",
                res.text().await.unwrap()
            );
        }
        for (path, body) in [
            ("/api/mobile/webhooks/a%00b/rotate-secret", json!({})),
            (
                "/api/mobile/leads/hook",
                json!({"source": "DOUYIN", "externalLeadId": "x\u{0}y", "name": "张三",
                       "mobile": "13812345678", "submittedAt": "2026-11-20T10:15:00+08:00"}),
            ),
        ] {
            let res = server
                .http()
                .post(server.url(path))
                .bearer_auth(&token)
                .header("idempotency-key", uuid::Uuid::new_v4().to_string())
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            assert!(
                (400..500).contains(&status),
                "{backend:?} {path}: {status} {}",
                res.text().await.unwrap()
            );
        }
        server.stop().await;
        let logs = captured.text();
        assert!(
            !logs.contains("ERROR"),
            "{backend:?}: an ERROR line:\n{logs}"
        );
    }
}
