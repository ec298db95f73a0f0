//! The server around the token endpoint: health, readiness, JWKS, metrics, request ids, the
//! `/api/mobile` group, signing-key persistence, TLS, configuration and the CLI — on SQLite and
//! (when `L2C_TEST_DATABASE_URL` is set) PostgreSQL.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::process::Command;

use l2c_core::Scopes;
use l2c_server::config::{Config, JwtAlgorithm, TlsFiles};
use l2c_server::testing::{Backend, TestDb, TestOptions, TestServer};
use serde_json::Value;

#[tokio::test]
async fn healthz_and_readyz() {
    for backend in Backend::available() {
        let s = TestServer::start(backend).await;
        let res = s.http().get(s.url("/healthz")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let res = s.http().get(s.url("/readyz")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        // With the database gone, the process is alive but not ready.
        s.db.close().await;
        let res = s.http().get(s.url("/readyz")).send().await.unwrap();
        assert_eq!(res.status(), 503);
        let res = s.http().get(s.url("/healthz")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        s.stop().await;
    }
}

#[tokio::test]
async fn wrong_method_and_unknown_path_are_problems() {
    let s = TestServer::start(Backend::Sqlite).await;
    let res = s.http().post(s.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 405);
    assert!(res.headers()["allow"].to_str().unwrap().contains("GET"));
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let res = s.http().get(s.url("/no/such/path")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "not_found");
    assert_eq!(body["requestId"], id.as_str());
    s.stop().await;
}

#[tokio::test]
async fn jwks_lists_no_secret_keys() {
    let s = TestServer::start(Backend::Sqlite).await;
    let res = s
        .http()
        .get(s.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    // HS256 is the default: its key is secret, so the set is empty (never the HMAC key).
    assert_eq!(body["keys"], serde_json::json!([]));
    s.stop().await;
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let s = TestServer::start(Backend::Sqlite).await;
    for _ in 0..3 {
        s.http().get(s.url("/healthz")).send().await.unwrap();
    }
    s.http().get(s.url("/api/mobile/x/1")).send().await.unwrap();
    s.http().get(s.url("/nope")).send().await.unwrap();
    let res = s
        .http()
        .get(s.metrics_url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // OpenMetrics text (the Prometheus client library's encoder), no longer format 0.0.4.
    assert_eq!(
        res.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let text = res.text().await.unwrap();
    assert!(
        text.contains(r#"l2c_http_requests_total{method="GET",route="/healthz",status="200"} 3"#),
        "{text}"
    );
    assert!(
        text.contains(
            r#"l2c_http_request_duration_seconds_count{method="GET",route="/healthz"} 3"#
        )
    );
    assert!(text.contains("# TYPE l2c_http_request_duration_seconds histogram"));
    // Unknown paths share one label value, so clients cannot create series at will, and are
    // still counted.
    assert!(!text.contains("/nope"), "{text}");
    assert!(
        text.contains(r#"l2c_http_requests_total{method="GET",route="unmatched",status="404"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"status="401""#));
    s.stop().await;
}

#[tokio::test]
async fn request_id_is_echoed_on_every_response() {
    let s = TestServer::start(Backend::Sqlite).await;
    let res = s
        .http()
        .get(s.url("/healthz"))
        .header("x-request-id", "trace-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "trace-123");

    // Generated when absent, and the same id is in problem bodies.
    let c = s.create_client(Scopes::all()).await;
    let token = s.token(&c).await;
    let res = s
        .http()
        .get(s.url("/api/mobile/unknown"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(!id.is_empty());
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["requestId"], id.as_str());

    // Token endpoint errors too.
    let res = s
        .http()
        .get(s.url("/api/oauth/token"))
        .send()
        .await
        .unwrap();
    assert!(res.headers().contains_key("x-request-id"));
    s.stop().await;
}

#[tokio::test]
async fn unknown_mobile_path_is_401_without_token_and_404_with_one() {
    for backend in Backend::available() {
        let s = TestServer::start(backend).await;
        let res = s
            .http()
            .get(s.url("/api/mobile/unknown"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
        let challenge = res.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Bearer realm="), "{challenge}");
        assert!(!challenge.contains("error="), "B3: {challenge}");

        let c = s.create_client(Scopes::all()).await;
        let token = s.token(&c).await;
        let res = s
            .http()
            .get(s.url("/api/mobile/unknown"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404);
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["status"], 404);
        assert_eq!(body["code"], "not_found");

        // A token from another server (another generated key) is refused.
        let other = TestServer::start(backend).await;
        let c2 = other.create_client(Scopes::all()).await;
        let foreign = other.token(&c2).await;
        other.stop().await;
        let res = s
            .http()
            .get(s.url("/api/mobile/unknown"))
            .bearer_auth(&foreign)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
        s.stop().await;
    }
}

#[tokio::test]
async fn generated_signing_key_survives_a_restart() {
    for backend in Backend::available() {
        let s = TestServer::start(backend).await;
        let c = s.create_client(Scopes::all()).await;
        let token = s.token(&c).await;
        let test_db = s.shutdown().await;

        let s = TestServer::start_on(test_db, TestOptions::default()).await;
        let res = s
            .http()
            .get(s.url("/api/mobile/unknown"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            404,
            "the token from before the restart verifies"
        );
        s.stop().await;
    }
}

#[tokio::test]
async fn replicas_racing_on_an_empty_database_agree_on_one_key() {
    for backend in Backend::available() {
        let test_db = TestDb::create(backend).await;
        let db = l2c_server::store::Db::connect(&test_db.url).await.unwrap();
        let keys = futures_util::future::join_all((0..8).map(|_| {
            let db = db.clone();
            async move { db.keys().hs256_or_generate().await.unwrap() }
        }))
        .await;
        assert!(keys.iter().all(|k| k.material == keys[0].material));
        assert_eq!(keys[0].material.len(), 32);
        db.close().await;
        test_db.cleanup().await;
    }
}

#[tokio::test]
async fn eddsa_tokens_verify_with_the_published_jwks() {
    for backend in Backend::available() {
        let mut options = TestOptions::default();
        options.config.jwt_algorithm = JwtAlgorithm::EdDsa;
        let s = TestServer::start_with(backend, options.clone()).await;
        let c = s.create_client(Scopes::all()).await;
        let token = s.token(&c).await;
        let jwks: Value = s
            .http()
            .get(s.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(jwks["keys"][0]["kty"], "OKP");
        assert_eq!(jwks["keys"][0]["kid"], "l2c-ed25519-1");
        assert!(jwks["keys"][0].get("d").is_none(), "never the private key");

        // A verifier that knows only the JWKS accepts the token.
        let published = l2c_core::auth::Jwks::from_json(jwks.to_string().as_bytes()).unwrap();
        let verifier = l2c_core::auth::TokenVerifier::builder("l2c", "l2c-api")
            .ed25519_public_keys(published.ed25519_keys())
            .build()
            .unwrap();
        assert_eq!(verifier.verify(&token).unwrap().client_id.as_str(), c.id);

        // The key pair survives a restart.
        let test_db = s.shutdown().await;
        let s = TestServer::start_on(test_db, options).await;
        let res = s
            .http()
            .get(s.url("/api/mobile/unknown"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404);
        s.stop().await;
    }
}

#[test]
fn jwt_secret_with_eddsa_is_refused() {
    let out = bin()
        .env("L2C_JWT_SECRET", "0123456789abcdef0123456789abcdef")
        .args(["--jwt-algorithm", "eddsa"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("eddsa"));
}

#[tokio::test]
async fn configured_jwt_secret_signs_tokens() {
    let mut options = TestOptions::default();
    options.config.jwt_secret = Some("0123456789abcdef0123456789abcdef-test".parse().unwrap());
    let s = TestServer::start_with(Backend::Sqlite, options).await;
    let c = s.create_client(Scopes::all()).await;
    let token = s.token(&c).await;
    let header = token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header).unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "HS256");
    assert_eq!(header["typ"], "at+jwt");
    assert!(header["kid"].as_str().unwrap().starts_with("l2c-env-"));
    // No key was generated into the database.
    assert!(s.db.keys().get("l2c-hs256-1").await.unwrap().is_none());
    s.stop().await;
}

#[tokio::test]
async fn serves_https_with_the_given_certificate() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut options = TestOptions::default();
    options.config.tls = Some(TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    });
    let s = TestServer::start_with(Backend::Sqlite, options).await;
    assert!(s.base_url.starts_with("https://"));
    let ca = reqwest::Certificate::from_pem(&std::fs::read(dir.join("cert.pem")).unwrap()).unwrap();
    let https = reqwest::Client::builder()
        .add_root_certificate(ca)
        .no_proxy()
        .build()
        .unwrap();
    let res = https.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let c = s.create_client(Scopes::all()).await;
    let res = https
        .post(s.url("/api/oauth/token"))
        .json(&serde_json::json!({"grant_type":"client_credentials","client_id":c.id,"client_secret":c.secret}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Plain HTTP to the TLS port fails.
    let plain = s
        .http()
        .get(format!("http://{}/healthz", s.addr))
        .send()
        .await;
    assert!(plain.map(|r| r.status() != 200).unwrap_or(true));
    s.stop().await;
}

/// SIGINT/SIGTERM → graceful shutdown: a request the handler is already reading completes.
///
/// `Expect: 100-continue` makes the handoff deterministic: hyper sends `100 Continue` only when
/// the handler starts reading the body, so once it arrives the request is provably in flight.
#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut s = TestServer::start(Backend::Sqlite).await;
    let body = r#"{"grant_type":"client_credentials"}"#;
    let mut conn = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    conn.write_all(
        format!(
            "POST /api/oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 64];
    let n = conn.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 100 Continue"));

    s.trigger_shutdown();
    // The server keeps running while the request is in flight.
    tokio::task::yield_now().await;
    assert!(!s.is_stopped());

    conn.write_all(body.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let mut chunk = vec![0u8; 4096];
    while !String::from_utf8_lossy(&response).contains("}") {
        let n = conn.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed before the response");
        response.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    assert!(text.contains("invalid_client"));
    drop(conn);
    s.join().await.unwrap();
    assert!(
        tokio::net::TcpStream::connect(s.addr).await.is_err(),
        "no longer accepting"
    );
    s.stop().await;
}

#[tokio::test]
async fn demo_client_is_created_only_on_an_empty_database() {
    let s = TestServer::start(Backend::Sqlite).await;
    assert!(l2c_server::testing::demo_client(&s.db, &s.base_url).await);
    assert!(!l2c_server::testing::demo_client(&s.db, &s.base_url).await);
    let clients = s.db.clients().list().await.unwrap();
    assert_eq!(clients.len(), 1);
    assert_eq!(clients[0].scopes, Scopes::all());
    s.stop().await;
}

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_l2c-server"));
    for var in [
        "L2C_JWT_SECRET",
        "L2C_DATABASE_URL",
        "L2C_LISTEN",
        "L2C_TLS_CERT",
        "L2C_TLS_KEY",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

#[test]
fn short_jwt_secret_is_refused_at_startup() {
    let out = bin()
        .env("L2C_JWT_SECRET", "only-20-bytes-long!!")
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("at least 32 bytes"), "{stderr}");
    assert!(
        !stderr.contains("only-20-bytes-long"),
        "the secret is not echoed: {stderr}"
    );
}

/// `--help` names the variables but never prints a credential they hold.
#[test]
fn help_does_not_print_secrets_from_the_environment() {
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["client", "list", "--help"],
    ] {
        let out = bin()
            .env(
                "L2C_DATABASE_URL",
                "postgres://l2c:db-pw-s3cret@db:5432/l2c",
            )
            .env("L2C_REDIS_URL", "redis://:redis-pw-s3cret@cache:6379")
            .env("L2C_JWT_SECRET", "jwt-s3cret-jwt-s3cret-jwt-s3cret-jwt")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("L2C_DATABASE_URL"), "{args:?}: {help}");
        assert!(!help.contains("s3cret"), "{args:?}: {help}");
    }
}

/// A database file the server creates is readable by its owner only, and so are the WAL files
/// SQLite creates beside it.
#[cfg(unix)]
#[tokio::test]
async fn sqlite_files_are_created_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;

    let dir = std::env::temp_dir().join(format!("l2c-mode-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}.db", uuid_like()));
    let db = l2c_server::store::Db::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    // A write, so the WAL and shared-memory files exist.
    db.clients()
        .create(&l2c_server::store::NewClient::new("mode", Scopes::all()))
        .await
        .unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{}{suffix}", path.display());
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file}: {mode:o}");
    }
    db.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// On SQLite, write transactions take turns on the one write connection in the order they asked
/// for it — none is starved retrying the lock while later ones get through — and readers are not
/// held up by a queue of writers.
#[tokio::test]
async fn sqlite_writers_take_turns_in_arrival_order() {
    use std::time::{Duration, Instant};

    let dir = std::env::temp_dir().join(format!("l2c-writer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}.db", uuid_like()));
    let db = l2c_server::store::Db::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    sqlx::query(
        "CREATE TABLE turns (seq INTEGER PRIMARY KEY AUTOINCREMENT, writer BIGINT NOT NULL)",
    )
    .execute(db.pool())
    .await
    .unwrap();
    const WRITERS: i64 = 12;
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let mut tx = l2c_server::store::sql::begin_write(&db).await.unwrap();
            sqlx::query("INSERT INTO turns (writer) VALUES ($1)")
                .bind(writer)
                .execute(&mut *tx)
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(15)).await;
            tx.commit().await.unwrap();
        }));
        // Each writer asks after the one before it (which is then holding or awaiting the lock).
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    // While the writers queue, a read is answered at once.
    let started = Instant::now();
    sqlx::query("SELECT count(*) FROM turns")
        .fetch_one(db.pool())
        .await
        .unwrap();
    let read = started.elapsed();
    for t in tasks {
        t.await.unwrap();
    }
    let order: Vec<i64> = sqlx::query_scalar("SELECT writer FROM turns ORDER BY seq")
        .fetch_all(db.pool())
        .await
        .unwrap();
    assert_eq!(order, (0..WRITERS).collect::<Vec<_>>());
    assert!(read < Duration::from_millis(100), "a read waited {read:?}");
    db.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A write whose caller goes away at any point of `begin_write` (a client that hangs up while
/// its request waits for the write connection or is beginning its transaction) leaves no
/// transaction behind: the writes after it go through.
#[tokio::test]
async fn cancelled_begins_leave_no_transaction_behind() {
    use std::time::Duration;

    let dir = std::env::temp_dir().join(format!("l2c-cancel-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}.db", uuid_like()));
    let db = l2c_server::store::Db::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    sqlx::query("CREATE TABLE kept (n BIGINT NOT NULL)")
        .execute(db.pool())
        .await
        .unwrap();
    // Cancel begins after a growing number of polls, so some are dropped while waiting for the
    // connection, some between BEGIN and its check, some after.
    for polls in 0..300u32 {
        let mut begin = std::pin::pin!(l2c_server::store::sql::begin_write(&db));
        for _ in 0..polls {
            let ready = std::future::poll_fn(|cx| {
                std::task::Poll::Ready(std::future::Future::poll(begin.as_mut(), cx).is_ready())
            })
            .await;
            if ready {
                break;
            }
            tokio::task::yield_now().await;
        }
    }
    for n in 0..3i64 {
        let mut tx = tokio::time::timeout(
            Duration::from_secs(10),
            l2c_server::store::sql::begin_write(&db),
        )
        .await
        .expect("the write connection is free again")
        .unwrap();
        sqlx::query("INSERT INTO kept (n) VALUES ($1)")
            .bind(n)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM kept")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(kept, 3);
    db.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{nanos:x}")
}

#[test]
fn half_a_tls_configuration_is_refused() {
    let out = bin().args(["--tls-cert", "x.pem"]).output().unwrap();
    assert!(!out.status.success());
    // Refused for the missing key, not for anything else (a busy port, a database).
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--tls-key"), "{stderr}");
}

#[tokio::test]
async fn cli_creates_and_lists_clients() {
    let test_db = TestDb::create(Backend::Sqlite).await;
    let out = bin()
        .args([
            "client",
            "create",
            "--name",
            "erp",
            "--scopes",
            "orders:read,orders:write",
            "--rate-limit",
            "10/s",
            "--json",
            "--database-url",
            &test_db.url,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 43, "256 bits, base64url");

    let out = bin()
        .env("L2C_DATABASE_URL", &test_db.url)
        .args(["client", "list", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["client_id"], id.as_str());
    assert_eq!(list[0]["scopes"], "orders:read orders:write");
    assert_eq!(list[0]["rate_limit"], "10/s");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&secret));

    // Unknown scope names are refused by the CLI.
    let out = bin()
        .args([
            "client",
            "create",
            "--name",
            "x",
            "--scopes",
            "admin",
            "--database-url",
            &test_db.url,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());

    // The printed credentials work against a server on that database.
    let s = TestServer::start_on(test_db, TestOptions::default()).await;
    let res = s
        .http()
        .post(s.url("/api/oauth/token"))
        .json(&serde_json::json!({"grant_type":"client_credentials","client_id":id,"client_secret":secret}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["scope"], "orders:read orders:write");
    s.stop().await;
}

#[test]
fn default_config_matches_the_documented_defaults() {
    let c = Config::default();
    assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.database_url, "sqlite://l2c.db?mode=rwc");
    assert_eq!(c.rate_limit.to_string(), "100/s");
    assert!(c.jwt_secret.is_none() && c.tls.is_none() && c.redis_url.is_none());
}

#[tokio::test]
async fn a_test_clock_stamps_what_the_store_writes() {
    use std::sync::Arc;

    use l2c_core::clock::MockClock;

    for backend in Backend::available() {
        // 2026-01-02T03:04:05Z, far from the real time of the run.
        let clock = MockClock::at_unix(1_767_323_045);
        let options = TestOptions {
            clock: Some(Arc::new(clock.clone())),
            ..TestOptions::default()
        };
        let s = TestServer::start_with(backend, options).await;
        let client = s.create_client(Scopes::all()).await;
        let token = s.token(&client).await;
        let order = serde_json::json!({
            "externalOrderNo": "ERP-CLOCK-1",
            "status": "DEPOSIT_PAID",
            "paymentStatus": "DEPOSIT_PAID",
            "amounts": {"total": 100_000, "deposit": 10_000, "paid": 10_000, "currency": "CNY"},
            "items": [{"name": "书柜", "quantity": 1, "unitPrice": 100_000}],
            "customer": {"name": "王五", "mobile": "13912345678"},
            "version": 1
        });
        let res = s
            .http()
            .post(s.url("/api/mobile/orders/sync"))
            .bearer_auth(&token)
            .header("x-request-id", "clock-sync-1")
            .json(&order)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
        let res = s
            .http()
            .get(s.url("/api/mobile/orders/ERP-CLOCK-1/status"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let status: Value = res.json().await.unwrap();
        // The row was stamped by the test clock, not the system's (shown in +08:00).
        assert_eq!(status["updatedAt"], "2026-01-02T11:04:05+08:00", "{status}");
        s.stop().await;
    }
}
