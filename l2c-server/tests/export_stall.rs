//! Report exports cannot starve the server: stalled readers hold no database connection, are
//! cut after `--export-stall-timeout` (their export slots come back), and the keyset walk neither
//! skips nor repeats an order written while it runs.
//!
//! The stalled exports are raw TCP connections with a small receive buffer that send the request
//! and then read nothing, so the server's socket buffers fill and its writes block.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use l2c_core::Scopes;
use l2c_server::testing::{Backend, TestClient, TestOptions, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const EXPORT: &str = "/api/mobile/reports/orders/export";

/// Inserts the customer the bulk orders belong to.
async fn seed_customer(server: &TestServer) {
    sqlx::query(
        "INSERT INTO customers (id, mobile_e164, name, created_at) \
         VALUES ('cus_bulk', '+8613800000000', 'x', 0)",
    )
    .execute(server.db.pool())
    .await
    .unwrap();
}

/// Order rows for the bulk insert: `(id, created_at)` pairs of `client`, straight into the
/// table (the HTTP path is tested elsewhere), 500 rows per statement, one transaction.
async fn insert_orders(server: &TestServer, client: &str, rows: &[(String, i64)]) {
    let mut tx = server.db.pool().begin().await.unwrap();
    for part in rows.chunks(500) {
        let mut sql = String::from(
            "INSERT INTO orders (id, client_id, external_order_no, customer_id, status, \
             payment_status, total_fen, deposit_fen, paid_fen, currency, items, milestones, \
             version, created_at, updated_at) VALUES ",
        );
        for (i, (id, created)) in part.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "('{id}', '{client}', 'ERP-{id}', 'cus_bulk', 'IN_PRODUCTION', \
                 'PARTIALLY_PAID', 3980000, 500000, 2000000, 'CNY', '[]', '[]', 1, {created}, {created})"
            ));
        }
        sqlx::query(&sql).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
    if server.db.backend() == l2c_server::store::Backend::Postgres {
        // What autovacuum does within a minute of such a load in production: without
        // statistics the planner misjudges the batch query of a table it has never analyzed.
        sqlx::query("ANALYZE orders")
            .execute(server.db.pool())
            .await
            .unwrap();
    }
}

/// `n` orders of `client`, ids `ord_<tag>_<k>`, created at `k * 10` ms.
async fn seed_orders(server: &TestServer, client: &str, tag: &str, n: usize) -> Vec<String> {
    let rows: Vec<(String, i64)> = (0..n)
        .map(|k| (format!("ord_{tag}_{k:08}"), i64::try_from(k).unwrap() * 10))
        .collect();
    insert_orders(server, client, &rows).await;
    rows.into_iter().map(|(id, _)| id).collect()
}

/// Opens an export over raw TCP with a small receive buffer, checks it was admitted (reads the
/// 12 bytes of `HTTP/1.1 200`) and returns the connection, which is then never read.
async fn stalled_export(addr: SocketAddr, token: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    let request =
        format!("GET {EXPORT} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut status = [0u8; 12];
    tokio::time::timeout(Duration::from_secs(20), stream.read_exact(&mut status))
        .await
        .expect("export answered")
        .unwrap();
    assert_eq!(&status, b"HTTP/1.1 200", "the export was admitted");
    stream
}

fn sync_body(no: &str) -> Value {
    json!({
        "externalOrderNo": no,
        "status": "DEPOSIT_PAID",
        "paymentStatus": "DEPOSIT_PAID",
        "amounts": {"total": 3_980_000, "deposit": 500_000, "paid": 500_000, "currency": "CNY"},
        "items": [{"name": "主卧衣柜", "quantity": 1, "unitPrice": 3_980_000}],
        "milestones": [],
        "customer": {"name": "李四", "mobile": "+86 139-1234-5678"},
        "version": 1,
        "payments": []
    })
}

/// Within `limit`, or panics naming `what`.
async fn within<T>(limit: Duration, what: &str, f: impl std::future::Future<Output = T>) -> T {
    let started = Instant::now();
    let out = tokio::time::timeout(limit, f)
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than {limit:?}"));
    eprintln!("  {what}: {:?}", started.elapsed());
    out
}

/// Token exchange, `/readyz`, an order sync and a showroom read, each answered within 1 s.
async fn api_answers(server: &TestServer, client: &TestClient, token: &str, round: usize) {
    const LIMIT: Duration = Duration::from_secs(1);
    let http = server.http();
    let res = within(LIMIT, "token exchange", async {
        http.post(server.url("/api/oauth/token"))
            .json(&json!({
                "grant_type": "client_credentials",
                "client_id": client.id,
                "client_secret": client.secret,
            }))
            .send()
            .await
            .unwrap()
    })
    .await;
    assert_eq!(res.status(), StatusCode::OK, "token exchange");
    let res = within(LIMIT, "/readyz", async {
        http.get(server.url("/readyz")).send().await.unwrap()
    })
    .await;
    assert_eq!(res.status(), StatusCode::OK, "/readyz");
    let res = within(LIMIT, "order sync", async {
        http.post(server.url("/api/mobile/orders/sync"))
            .header("x-request-id", uuid::Uuid::new_v4().to_string())
            .bearer_auth(token)
            .json(&sync_body(&format!("LIVE-{round}")))
            .send()
            .await
            .unwrap()
    })
    .await;
    assert_eq!(res.status(), StatusCode::CREATED, "order sync");
    let res = within(LIMIT, "showroom read", async {
        let res = http
            .get(server.url("/api/mobile/showroom/items"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        (status, body)
    })
    .await;
    assert_eq!(res.0, StatusCode::OK, "showroom read");
    assert!(res.1["items"].as_array().is_some_and(|a| !a.is_empty()));
}

/// Waits (at most 3 min) until no export has read from the database for 2 s: every export is
/// blocked on its reader.
async fn until_exports_stall(server: &TestServer) {
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut quiet = 0;
    while quiet < 40 {
        assert!(Instant::now() < deadline, "the exports never stalled");
        let pool = server.state.db.exports();
        let busy = pool.size() > u32::try_from(pool.num_idle()).unwrap();
        quiet = if busy { 0 } else { quiet + 1 };
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Database connections checked out of the server's pool right now.
fn connections_in_use(server: &TestServer) -> u32 {
    let pool = server.db.pool();
    pool.size()
        .saturating_sub(u32::try_from(pool.num_idle()).unwrap())
}

/// 100k orders of two clients, 5 stalled exports each (each client's whole cap): the API keeps
/// answering within 1 s, round after round, and the stalled exports hold no connection.
#[tokio::test]
async fn ten_stalled_exports_starve_nobody() {
    for backend in Backend::available() {
        eprintln!("{backend:?}");
        let mut options = TestOptions::default();
        // Long enough that nothing is cut while this test looks.
        options.config.export_stall_timeout = Duration::from_secs(120);
        let server = TestServer::start_with(backend, options).await;
        server.db.showroom().seed_demo_if_empty().await.unwrap();
        let a = server.create_client(Scopes::all()).await;
        let b = server.create_client(Scopes::all()).await;
        let (a_token, b_token) = (server.token(&a).await, server.token(&b).await);
        seed_customer(&server).await;
        let started = Instant::now();
        seed_orders(&server, &a.id, "a", 50_000).await;
        seed_orders(&server, &b.id, "b", 50_000).await;
        eprintln!("  seeded 100k orders in {:?}", started.elapsed());

        // Connections the server's own background work holds (quota refresh, dispatcher).
        let baseline = connections_in_use(&server).max(1);
        let mut stalled = Vec::new();
        for token in [&a_token, &b_token] {
            for _ in 0..5 {
                stalled.push(stalled_export(server.addr, token).await);
            }
        }
        // Let the exports fill every buffer between them and their readers (megabytes each: the
        // kernel grows the send buffers) until they stall.
        let started = Instant::now();
        until_exports_stall(&server).await;
        eprintln!("  the 10 exports stalled after {:?}", started.elapsed());
        let limit = server.state.config.export_db_connections;
        for round in 0..5 {
            // The exports read through their own pool of `limit` connections; the API's pool is
            // as free as before they started.
            let exports = server.state.db.exports().size();
            assert!(exports <= limit, "{exports} export connections");
            let in_use = connections_in_use(&server);
            assert!(
                in_use <= baseline,
                "round {round}: {in_use} of the API's connections checked out while 10 exports \
                 stall ({baseline} before they started)"
            );
            api_answers(&server, &a, &a_token, round).await;
            tokio::time::sleep(Duration::from_millis(700)).await;
        }
        // Still capped: a 6th export of a client is refused while its 5 stall.
        let res = server
            .http()
            .get(server.url(EXPORT))
            .bearer_auth(&a_token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        drop(stalled);
        server.stop().await;
    }
}

/// `l2c_connections_closed_total{reason="send_stalled"}` from the metrics listener.
async fn stalled_cuts(server: &TestServer) -> u64 {
    let text = server
        .http()
        .get(server.metrics_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix = "l2c_connections_closed_total{reason=\"send_stalled\"} ";
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .map_or(0, |n| n.trim().parse().unwrap())
}

/// Reads what the server sent on a stalled connection until it is closed; panics if the
/// server does not close it within 30 s of reading.
async fn drain_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => panic!(
                "the server kept the connection open ({} bytes read)",
                got.len()
            ),
            Ok(Ok(0) | Err(_)) => return got,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// With a 2 s stall timeout, the stalled connections are closed by the server (truncated: no
/// final chunk) and the client's export slots come back: a new export succeeds, no 429.
#[tokio::test]
async fn stalled_exports_are_cut_and_their_slots_come_back() {
    for backend in Backend::available() {
        eprintln!("{backend:?}");
        let mut options = TestOptions::default();
        options.config.export_stall_timeout = Duration::from_secs(2);
        let server = TestServer::start_with(backend, options).await;
        let a = server.create_client(Scopes::all()).await;
        let token = server.token(&a).await;
        seed_customer(&server).await;
        const ORDERS: usize = 50_000;
        seed_orders(&server, &a.id, "a", ORDERS).await;

        let mut stalled = Vec::new();
        for _ in 0..5 {
            stalled.push(stalled_export(server.addr, &token).await);
        }
        let export = || server.http().get(server.url(EXPORT)).bearer_auth(&token);
        assert_eq!(
            export().send().await.unwrap().status(),
            StatusCode::TOO_MANY_REQUESTS,
            "all 5 slots are held by the stalled exports"
        );

        // After the stall timeout (generous margin for a loaded machine) the slots are free.
        let deadline = Instant::now() + Duration::from_secs(20);
        let res = loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let res = export().send().await.unwrap();
            if res.status() != StatusCode::TOO_MANY_REQUESTS || Instant::now() > deadline {
                break res;
            }
        };
        assert_eq!(res.status(), StatusCode::OK, "a new export after the cut");
        let csv = res.text().await.unwrap();
        assert_eq!(csv.matches("\r\n").count(), ORDERS + 1, "complete export");

        // The stalled connections were closed by the server mid-body. A freed slot may be the
        // first of the five cuts: reading a connection not cut yet would let its export go on,
        // so wait (bounded) until the server has cut all five before reading any.
        let deadline = Instant::now() + Duration::from_secs(20);
        while stalled_cuts(&server).await < 5 {
            assert!(
                Instant::now() < deadline,
                "the five stalled exports were not all cut"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        for mut stream in stalled {
            let got = drain_until_closed(&mut stream).await;
            assert!(
                !got.ends_with(b"\r\n0\r\n\r\n"),
                "the stalled body was cut, not finished"
            );
            assert!(
                got.len() < csv.len(),
                "{} bytes of {}",
                got.len(),
                csv.len()
            );
        }
        server.stop().await;
    }
}

/// A normally read export returns every order exactly once while orders are created (through
/// the API and with keys in the middle of the walk) and updated concurrently.
#[tokio::test]
async fn export_sees_each_order_once_under_concurrent_writes() {
    for backend in Backend::available() {
        eprintln!("{backend:?}");
        // The writer syncs as fast as the server answers: a quota would only slow it down.
        let mut options = TestOptions::default();
        options.config.rate_limit = "100000/s".parse().unwrap();
        let server = TestServer::start_with(backend, options).await;
        let a = server.create_client(Scopes::all()).await;
        let token = server.token(&a).await;
        seed_customer(&server).await;
        const ORDERS: usize = 20_000;
        let seeded = seed_orders(&server, &a.id, "a", ORDERS).await;

        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let writer = {
            let db = server.db.clone();
            let http = server.http().clone();
            let sync_url = server.url("/api/mobile/orders/sync");
            let (client, token) = (a.id.clone(), token.clone());
            tokio::spawn(async move {
                let mut written = 0usize;
                for k in 0..400usize {
                    if stop_rx.try_recv().is_ok() {
                        break;
                    }
                    // A new order through the API (created now: after the seeded ones).
                    let res = http
                        .post(&sync_url)
                        .header("x-request-id", uuid::Uuid::new_v4().to_string())
                        .bearer_auth(&token)
                        .json(&sync_body(&format!("NEW-{k}")))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(res.status(), StatusCode::CREATED);
                    // An order whose key falls between two seeded ones, anywhere in the walk.
                    let created = i64::try_from((k * 977) % ORDERS).unwrap() * 10 + 5;
                    let id = format!("ord_mid_{k:05}");
                    let sql = format!(
                        "INSERT INTO orders (id, client_id, external_order_no, customer_id, \
                         status, payment_status, total_fen, deposit_fen, paid_fen, currency, \
                         items, milestones, version, created_at, updated_at) VALUES ('{id}', \
                         '{client}', 'MID-{k}', 'cus_bulk', 'IN_PRODUCTION', 'FULLY_PAID', 1, 0, 1, \
                         'CNY', '[]', '[]', 1, {created}, {created})"
                    );
                    sqlx::query(&sql).execute(db.pool()).await.unwrap();
                    // A seeded order updated (status, version, updated_at).
                    let target = format!("ord_a_{:08}", (k * 131) % ORDERS);
                    sqlx::query(
                        "UPDATE orders SET status = 'INSTALLING', version = version + 1, \
                         updated_at = updated_at + 1 WHERE id = $1",
                    )
                    .bind(&target)
                    .execute(db.pool())
                    .await
                    .unwrap();
                    written += 1;
                }
                written
            })
        };

        // Read the export slowly enough that the writes land while it runs.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut res = server
            .http()
            .get(server.url(EXPORT))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let mut body = Vec::new();
        let mut chunks = 0usize;
        while let Some(chunk) = res.chunk().await.unwrap() {
            body.extend_from_slice(&chunk);
            chunks += 1;
            if chunks % 4 == 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let _ = stop_tx.send(());
        let written = writer.await.unwrap();
        assert!(written > 0, "writes happened during the export");
        eprintln!("  {written} rounds of writes while {chunks} chunks were read");

        let csv = String::from_utf8(body).unwrap();
        let mut lines = csv.split("\r\n").filter(|l| !l.is_empty());
        assert!(
            lines
                .next()
                .unwrap()
                .starts_with("orderId,externalOrderNo,")
        );
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for line in lines {
            *seen.entry(line.split(',').next().unwrap()).or_default() += 1;
        }
        let repeated: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
        assert!(repeated.is_empty(), "repeated orders: {repeated:?}");
        let missing: Vec<_> = seeded
            .iter()
            .filter(|id| !seen.contains_key(id.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "{} seeded orders missing",
            missing.len()
        );
        server.stop().await;
    }
}

/// Exports wait for each other in their own pool, up to the stall timeout: an export that finds
/// every export connection taken for that long is a 503 `exports_busy` problem, and the API
/// meanwhile answers as usual.
#[tokio::test]
async fn an_export_that_cannot_get_an_export_connection_is_503() {
    for backend in Backend::available() {
        eprintln!("{backend:?}");
        let mut options = TestOptions::default();
        options.config.export_stall_timeout = Duration::from_secs(1);
        options.config.export_db_connections = 1;
        let server = TestServer::start_with(backend, options).await;
        server.db.showroom().seed_demo_if_empty().await.unwrap();
        let a = server.create_client(Scopes::all()).await;
        let token = server.token(&a).await;
        // Another export's batch holds the only export connection.
        let held = server.state.db.exports().acquire().await.unwrap();
        let res = server
            .http()
            .get(server.url(EXPORT))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let problem: Value = res.json().await.unwrap();
        assert_eq!(problem["code"], "exports_busy");
        api_answers(&server, &a, &token, 0).await;
        drop(held);
        // The connection is back: the export runs (the order api_answers synced).
        let deadline = Instant::now() + Duration::from_secs(10);
        let res = loop {
            let res = server
                .http()
                .get(server.url(EXPORT))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            if res.status() == StatusCode::OK || Instant::now() > deadline {
                break res;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(res.status(), StatusCode::OK);
        let csv = res.text().await.unwrap();
        assert!(csv.starts_with("orderId,externalOrderNo,"), "{csv}");
        assert_eq!(csv.matches("\r\n").count(), 2, "{csv}");
        assert!(csv.contains(",LIVE-0,"), "{csv}");
        server.stop().await;
    }
}
