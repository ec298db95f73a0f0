//! Two real `l2c-server` processes (the built binary) sharing one database and one Redis:
//! one quota, one idempotency record per key, and per-client quotas created with
//! `l2c-server client create` while they run. Needs `L2C_TEST_REDIS_URL`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

use std::process::Stdio;
use std::time::Duration;

use futures_util::future::join_all;
use l2c_server::store::Db;
use l2c_server::testing::{Backend, TestDb, random_redis_prefix, redis_url};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_l2c-server");
const JWT_SECRET: &str = "processes-test-secret-0123456789abcdef";

fn command() -> Command {
    let mut cmd = Command::new(BIN);
    // Only what the test passes: no L2C_* from the environment running the tests.
    cmd.env_clear().env("RUST_LOG", "info,sqlx=warn");
    cmd
}

/// `l2c-server client create … --json` → (client_id, client_secret).
async fn create_client(db_url: &str, name: &str, rate_limit: &str) -> (String, String) {
    let out = command()
        .args([
            "client",
            "create",
            "--name",
            name,
            "--rate-limit",
            rate_limit,
            "--json",
        ])
        .args(["--database-url", db_url])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        v["client_id"].as_str().unwrap().to_owned(),
        v["client_secret"].as_str().unwrap().to_owned(),
    )
}

struct Proc {
    child: Child,
    base: String,
    metrics: String,
}

/// Starts `l2c-server serve` on 127.0.0.1:0 and reads the bound address from its log.
async fn spawn_server(db_url: &str, redis: &str, prefix: &str) -> Proc {
    let mut child = command()
        .args(["serve", "--listen", "127.0.0.1:0", "--no-demo-client"])
        .args(["--metrics-listen", "127.0.0.1:0"])
        .args([
            "--database-url",
            db_url,
            "--redis-url",
            redis,
            "--redis-prefix",
            prefix,
        ])
        .args(["--jwt-secret", JWT_SECRET, "--quota-refresh-secs", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let address = |line: &str| {
        let addr = line.split("address=").nth(1).unwrap();
        addr.split_whitespace().next().unwrap().to_owned()
    };
    let (addr, metrics) = tokio::time::timeout(Duration::from_secs(30), async {
        let mut metrics = None;
        while let Some(line) = lines.next_line().await.unwrap() {
            // The metrics listener is logged first.
            if line.contains("metrics endpoint listening") {
                metrics = Some(address(&line));
            }
            if line.contains("l2c-server listening") {
                return (
                    address(&line),
                    metrics.expect("the metrics address is logged"),
                );
            }
        }
        panic!("l2c-server exited before listening");
    })
    .await
    .expect("the server starts within 30 s");
    // Keep draining the log so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Proc {
        child,
        base: format!("http://{addr}"),
        metrics: format!("http://{metrics}"),
    }
}

async fn token(http: &reqwest::Client, p: &Proc, id: &str, secret: &str) -> String {
    let res = http
        .post(format!("{}/api/oauth/token", p.base))
        .json(
            &json!({"grant_type": "client_credentials", "client_id": id, "client_secret": secret}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    v["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn two_processes_share_one_quota_and_one_idempotency_record() {
    const Q: usize = 8;
    let Some(redis) = redis_url("two l2c-server processes sharing Redis") else {
        return;
    };
    for backend in Backend::available() {
        let test_db = TestDb::create(backend).await;
        let prefix = random_redis_prefix();
        let (id, secret) = create_client(&test_db.url, "erp", &format!("{Q}/min")).await;
        let mut a = spawn_server(&test_db.url, &redis, &prefix).await;
        let mut b = spawn_server(&test_db.url, &redis, &prefix).await;
        let servers = [&a, &b];
        let http = reqwest::Client::builder().no_proxy().build().unwrap();

        // Exactly Q of 4Q requests alternating between the processes.
        let token_a = token(&http, &a, &id, &secret).await;
        let requests = (0..4 * Q).map(|i| {
            let p = servers[i % 2];
            http.get(format!("{}/api/mobile/showroom/items", p.base))
                .bearer_auth(&token_a)
                .send()
        });
        let statuses: Vec<u16> = join_all(requests)
            .await
            .into_iter()
            .map(|r| r.unwrap().status().as_u16())
            .collect();
        let ok = statuses.iter().filter(|s| **s == 200).count();
        let limited = statuses.iter().filter(|s| **s == 429).count();
        assert_eq!((ok, limited), (Q, 3 * Q), "{backend:?}: {statuses:?}");

        // A client created while both run: its quota reaches both within --quota-refresh-secs.
        let (pid, psecret) = create_client(&test_db.url, "partner", "1000/s").await;
        let token_p = token(&http, &b, &pid, &psecret).await;
        for p in servers {
            let mut seen = false;
            for _ in 0..60 {
                let res = http
                    .get(format!("{}/api/mobile/showroom/items", p.base))
                    .bearer_auth(&token_p)
                    .send()
                    .await
                    .unwrap();
                if res.headers()["ratelimit-policy"] == "\"default\";q=1000;w=1" {
                    seen = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(seen, "the new quota is picked up by {}", p.base);
        }

        // 100 identical lead pushes with one key, alternating: the lead handler runs once.
        let key = format!("lead-{}", uuid::Uuid::new_v4());
        let lead = json!({
            "source": "DOUYIN",
            "externalLeadId": "proc-1",
            "name": "张三丰",
            "mobile": "13812345678",
            "city": "杭州市",
            "submittedAt": "2026-11-20T10:15:00+08:00"
        });
        let requests = (0..100).map(|i| {
            let p = servers[i % 2];
            let req = http
                .post(format!("{}/api/mobile/leads/hook", p.base))
                .bearer_auth(&token_p)
                .header("x-request-id", &key)
                .json(&lead)
                .send();
            async move {
                let res = req.await.unwrap();
                let replayed = res.headers().contains_key("idempotent-replayed");
                (res.status().as_u16(), replayed, res.bytes().await.unwrap())
            }
        });
        let mut original = None;
        let mut replays = Vec::new();
        for (status, replayed, body) in join_all(requests).await {
            match (status, replayed) {
                (201, false) => assert!(original.replace(body).is_none(), "one execution"),
                (201, true) => replays.push(body),
                (409, false) => {}
                other => panic!("unexpected {other:?}: {body:?}"),
            }
        }
        let original = original.expect("the first push");
        assert!(
            replays.iter().all(|b| *b == original),
            "byte-identical replays"
        );
        for p in servers {
            let res = http
                .post(format!("{}/api/mobile/leads/hook", p.base))
                .bearer_auth(&token_p)
                .header("x-request-id", &key)
                .json(&lead)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 201);
            assert_eq!(res.headers()["idempotent-replayed"], "true");
            assert_eq!(res.bytes().await.unwrap(), original);
        }
        let db = Db::connect(&test_db.url).await.unwrap();
        assert_eq!(db.leads().count().await.unwrap(), 1);
        db.close().await;

        // Fail-open counters are exported (zero: Redis was up).
        let metrics = http
            .get(format!("{}/metrics", a.metrics))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(metrics.contains("l2c_rate_limit_fail_open_total{limiter=\"api\"} 0"));

        a.child.kill().await.unwrap();
        b.child.kill().await.unwrap();
        test_db.cleanup().await;
    }
}
