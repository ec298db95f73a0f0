//! The built binary with `--log-format json` (and `L2C_LOG_FORMAT`): every stderr line is one
//! JSON object, and a forged `client_id` (newline + ANSI escape) stays inside its field.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

use std::process::Stdio;
use std::time::Duration;

use l2c_server::testing::{Backend, TestDb};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_l2c-server");

#[tokio::test]
async fn the_binary_writes_json_lines_and_escapes_client_input() {
    let test_db = TestDb::create(Backend::Sqlite).await;
    for via_env in [false, true] {
        let mut cmd = Command::new(BIN);
        cmd.env_clear().env("RUST_LOG", "info,sqlx=warn");
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--no-demo-client"])
            .args(["--database-url", &test_db.url]);
        if via_env {
            cmd.env("L2C_LOG_FORMAT", "json");
        } else {
            cmd.args(["--log-format", "json"]);
        }
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = Vec::new();
        let addr = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                let value: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
                seen.push(line);
                if value["fields"]["message"] == "l2c-server listening" {
                    return value["fields"]["address"].as_str().unwrap().to_owned();
                }
            }
            panic!("l2c-server exited before listening: {seen:?}");
        })
        .await
        .expect("the server starts within 30 s");

        let forged = "evil\n2026-12-04T10:00:00Z  INFO FAKE\u{1b}[31m";
        let res = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .post(format!("http://{addr}/api/oauth/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", forged),
                ("client_secret", "wrong"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);

        let failed = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                assert!(!line.contains('\u{1b}'), "raw ESC: {line}");
                let value: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
                if value["fields"]["message"] == "token request: client authentication failed" {
                    return value;
                }
            }
            panic!("no log line for the failed attempt");
        })
        .await
        .expect("the attempt is logged within 30 s");
        assert_eq!(failed["level"], "INFO");
        assert_eq!(failed["fields"]["client_id"], format!("{forged:?}"));
        child.kill().await.unwrap();
    }
    test_db.cleanup().await;
}
