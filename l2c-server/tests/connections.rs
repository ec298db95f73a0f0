//! Connection hardening, attacked through real sockets: slow-header floods against the
//! connection cap, header drips, stalled bodies, idle keep-alive, HTTP/2, the TLS handshake and
//! a bounded drain on shutdown. Timeouts are configured small; margins are generous (the test
//! machine is loaded).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use futures_util::StreamExt as _;
use l2c_core::Scopes;
use l2c_server::ExtraRoutes;
use l2c_server::config::TlsFiles;
use l2c_server::testing::{Backend, TestOptions, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Slack for a loaded machine on top of every configured timeout.
const MARGIN: Duration = Duration::from_secs(3);

fn options(header: Duration, idle: Duration, body: Duration) -> TestOptions {
    let mut o = TestOptions::default();
    o.config.connections.header_read_timeout = header;
    o.config.connections.idle_timeout = idle;
    o.config.connections.body_timeout = body;
    o
}

/// Reads until the server closes the connection (EOF or reset); returns everything read, or
/// `None` if it stayed open for `within`.
async fn read_until_closed(conn: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, conn.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Reads one response whose body ends with `end`.
async fn read_response(conn: &mut TcpStream, end: &str) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).ends_with(end) {
        let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf))
            .await
            .expect("a response within 10 s")
            .unwrap();
        assert!(
            n > 0,
            "closed mid-response: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(got).unwrap()
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

/// `l2c_connections_closed_total{reason}` from the metrics listener.
async fn closed_total(s: &TestServer, reason: &str) -> u64 {
    let text = s
        .http()
        .get(s.metrics_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix = format!("l2c_connections_closed_total{{reason=\"{reason}\"}} ");
    let line = text
        .lines()
        .find(|l| l.starts_with(&prefix))
        .expect(&prefix);
    line[prefix.len()..].parse().unwrap()
}

/// 300 sockets sending only a request line against a cap of 64: the excess is closed at once,
/// the rest at the head timeout, and a normal request gets through within the head timeout
/// plus 2 s.
#[tokio::test]
async fn a_slow_header_flood_cannot_starve_a_normal_request() {
    let header = Duration::from_secs(2);
    let mut o = options(header, Duration::from_secs(60), Duration::from_secs(30));
    o.config.connections.max_connections = Some(64);
    let s = TestServer::start_with(Backend::Sqlite, o).await;
    assert_eq!(s.max_connections, 64);

    let mut slow = Vec::new();
    for _ in 0..300 {
        let mut conn = TcpStream::connect(s.addr).await.unwrap();
        // The server may already have closed it (over the cap): a failed write is fine.
        let _ = conn.write_all(b"GET /healthz HTTP/1.1\r\n").await;
        slow.push(conn);
    }
    let flooded = Instant::now();

    // A well-behaved client retries while the cap is full.
    let mut answered = None;
    while flooded.elapsed() < header + Duration::from_secs(2) {
        if let Ok(res) = s.http().get(s.url("/healthz")).send().await {
            answered = Some(res.status());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        answered,
        Some(reqwest::StatusCode::OK),
        "no answer within the head timeout + 2 s"
    );

    // Every slow socket is closed by the server, without a response.
    let closing = futures_util::future::join_all(
        slow.iter_mut()
            .map(|conn| read_until_closed(conn, header + MARGIN)),
    )
    .await;
    for (i, read) in closing.into_iter().enumerate() {
        let read = read.unwrap_or_else(|| panic!("slow socket {i} still open"));
        assert!(
            read.is_empty(),
            "socket {i}: {}",
            String::from_utf8_lossy(&read)
        );
    }
    // Both ways of closing are counted for the operator.
    assert!(closed_total(&s, "over_capacity").await >= 100);
    assert!(closed_total(&s, "header_timeout").await >= 32);
    s.stop().await;
}

/// One byte every 500 ms: the connection is cut when the head timeout has passed since accept,
/// not reset by each byte.
#[tokio::test]
async fn a_header_drip_is_cut_at_the_head_timeout() {
    let header = Duration::from_secs(2);
    let s = TestServer::start_with(
        Backend::Sqlite,
        options(header, Duration::from_secs(60), Duration::from_secs(30)),
    )
    .await;
    let conn = TcpStream::connect(s.addr).await.unwrap();
    let start = Instant::now();
    let (mut read, mut write) = conn.into_split();
    let drip = tokio::spawn(async move {
        for byte in HEALTHZ {
            if write.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    let mut got = Vec::new();
    let closed = tokio::time::timeout(header + MARGIN, read.read_to_end(&mut got)).await;
    let elapsed = start.elapsed();
    assert!(closed.is_ok(), "still open after {elapsed:?}");
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    assert!(
        elapsed >= header - Duration::from_millis(200),
        "cut after {elapsed:?}, before the head timeout"
    );
    drip.abort();
    s.stop().await;
}

/// A body that stalls, or trickles past the body timeout, is answered 408 at the body timeout
/// and the connection closed; a body that arrives in time in pieces is processed.
#[tokio::test]
async fn a_stalled_body_is_answered_408_at_the_body_timeout() {
    let body_timeout = Duration::from_secs(1);
    let s = TestServer::start_with(
        Backend::Sqlite,
        options(
            Duration::from_secs(10),
            Duration::from_secs(60),
            body_timeout,
        ),
    )
    .await;
    let body = r#"{"grant_type":"client_credentials","client_id":"x","client_secret":"y"}"#;
    let head = format!(
        "POST /api/oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );

    for trickle in [false, true] {
        let mut conn = TcpStream::connect(s.addr).await.unwrap();
        conn.write_all(head.as_bytes()).await.unwrap();
        let start = Instant::now();
        let (mut read, mut write) = conn.into_split();
        let body_owned = body.to_owned();
        let writer = tokio::spawn(async move {
            if trickle {
                // A byte every 200 ms: far longer than the body timeout in all.
                for byte in body_owned.bytes() {
                    if write.write_all(&[byte]).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            } else {
                write.write_all(&body_owned.as_bytes()[..10]).await.unwrap();
                std::future::pending::<()>().await;
            }
        });
        let mut got = Vec::new();
        let closed = tokio::time::timeout(body_timeout + MARGIN, read.read_to_end(&mut got)).await;
        let elapsed = start.elapsed();
        assert!(closed.is_ok(), "trickle={trickle}: open after {elapsed:?}");
        let text = String::from_utf8_lossy(&got);
        assert!(
            text.starts_with("HTTP/1.1 408"),
            "trickle={trickle}: {text}"
        );
        assert!(text.contains("application/problem+json"), "{text}");
        assert!(text.contains(r#""code":"request_timeout""#), "{text}");
        assert!(
            text.to_ascii_lowercase().contains("connection: close"),
            "{text}"
        );
        assert!(
            elapsed >= body_timeout - Duration::from_millis(100),
            "{elapsed:?}"
        );
        writer.abort();
    }

    // In two pieces, well within the timeout: processed (unknown client → 401).
    let mut conn = TcpStream::connect(s.addr).await.unwrap();
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(&body.as_bytes()[..20]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    conn.write_all(&body.as_bytes()[20..]).await.unwrap();
    let text = read_response(&mut conn, "}").await;
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    s.stop().await;
}

/// Kept-alive connections: idle longer than the head timeout is fine (the head timeout starts
/// with the next request's first byte), idle longer than the idle timeout is closed.
#[tokio::test]
async fn idle_connections_outlive_the_head_timeout_but_not_the_idle_timeout() {
    let header = Duration::from_secs(1);
    let idle = Duration::from_secs(3);
    let s = TestServer::start_with(
        Backend::Sqlite,
        options(header, idle, Duration::from_secs(30)),
    )
    .await;
    let mut conn = TcpStream::connect(s.addr).await.unwrap();
    conn.write_all(HEALTHZ).await.unwrap();
    let first = read_response(&mut conn, "ok\n").await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");

    // Idle for twice the head timeout, then a second request on the same connection.
    tokio::time::sleep(header * 2).await;
    conn.write_all(HEALTHZ).await.unwrap();
    let second = read_response(&mut conn, "ok\n").await;
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");

    // Now silent: closed after the idle timeout, not before.
    let start = Instant::now();
    let read = read_until_closed(&mut conn, idle + MARGIN).await;
    let elapsed = start.elapsed();
    assert_eq!(
        read.as_deref(),
        Some(&[][..]),
        "still open after {elapsed:?}"
    );
    assert!(
        elapsed >= idle - Duration::from_millis(200),
        "closed after {elapsed:?}"
    );
    assert_eq!(closed_total(&s, "idle_timeout").await, 1);
    assert_eq!(closed_total(&s, "header_timeout").await, 0);
    s.stop().await;
}

/// A connection that sends nothing at all is closed at the head timeout.
#[tokio::test]
async fn a_silent_connection_is_closed_at_the_head_timeout() {
    let header = Duration::from_secs(1);
    let s = TestServer::start_with(
        Backend::Sqlite,
        options(header, Duration::from_secs(60), Duration::from_secs(30)),
    )
    .await;
    let mut conn = TcpStream::connect(s.addr).await.unwrap();
    let start = Instant::now();
    let read = read_until_closed(&mut conn, header + MARGIN).await;
    assert_eq!(read.as_deref(), Some(&[][..]), "still open");
    assert!(start.elapsed() >= header - Duration::from_millis(200));
    s.stop().await;
}

/// HTTP/2 with prior knowledge is served under the same limits: requests work, an oversized
/// header list is refused, and a client that never completes its preface is closed at the
/// head timeout.
#[tokio::test]
async fn http2_is_served_with_limits() {
    let header = Duration::from_secs(1);
    let mut o = options(header, Duration::from_secs(60), Duration::from_secs(30));
    o.config.connections.http2_max_header_list_size = 4096;
    let s = TestServer::start_with(Backend::Sqlite, o).await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .no_proxy()
        .build()
        .unwrap();
    for _ in 0..3 {
        let res = h2.get(s.url("/healthz")).send().await.unwrap();
        assert_eq!(res.version(), reqwest::Version::HTTP_2);
        assert_eq!(res.status(), 200);
    }
    // The per-peer limits still see the peer address over HTTP/2 (the token endpoint needs it).
    let c = s.create_client(Scopes::all()).await;
    let res = h2
        .post(s.url("/api/oauth/token"))
        .json(&serde_json::json!({
            "grant_type": "client_credentials", "client_id": c.id, "client_secret": c.secret,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let big = "x".repeat(8 * 1024);
    let res = h2
        .get(s.url("/healthz"))
        .header("x-big", big.as_str())
        .send()
        .await;
    assert!(
        res.as_ref().map_or(true, |r| r.status() != 200),
        "an 8 KiB header passed a 4 KiB limit: {res:?}"
    );

    let mut conn = TcpStream::connect(s.addr).await.unwrap();
    conn.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    let read = read_until_closed(&mut conn, header + MARGIN).await;
    assert!(read.is_some(), "a half preface kept the connection open");
    s.stop().await;
}

/// HTTP/2 connections get the body timeout (408 on the stream) and the idle timeout (closed
/// with a GOAWAY; the client simply opens a new connection).
#[tokio::test]
async fn http2_streams_and_connections_are_timed_out_too() {
    let idle = Duration::from_secs(1);
    let body_timeout = Duration::from_secs(1);
    let s = TestServer::start_with(
        Backend::Sqlite,
        options(Duration::from_secs(10), idle, body_timeout),
    )
    .await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .no_proxy()
        .build()
        .unwrap();

    // A body that sends one chunk and stalls.
    let stalled = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from_static(
        b"{\"grant_type\":",
    ))])
    .chain(futures_util::stream::pending());
    let start = Instant::now();
    let res = tokio::time::timeout(
        body_timeout + MARGIN,
        h2.post(s.url("/api/oauth/token"))
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(stalled))
            .send(),
    )
    .await
    .expect("answered at the body timeout")
    .unwrap();
    assert_eq!(res.version(), reqwest::Version::HTTP_2);
    assert_eq!(res.status(), 408);
    assert!(start.elapsed() >= body_timeout - Duration::from_millis(100));
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["code"], "request_timeout");

    // Now idle: the server closes the connection after the idle timeout.
    let start = Instant::now();
    while closed_total(&s, "idle_timeout").await == 0 {
        assert!(
            start.elapsed() < idle + MARGIN,
            "an idle HTTP/2 connection stayed open"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let res = h2.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    s.stop().await;
}

fn tls_options() -> (TestOptions, reqwest::Client) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut o = TestOptions::default();
    o.config.tls = Some(TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    });
    let ca = reqwest::Certificate::from_pem(&std::fs::read(dir.join("cert.pem")).unwrap()).unwrap();
    let https = reqwest::Client::builder()
        .add_root_certificate(ca)
        .no_proxy()
        .build()
        .unwrap();
    (o, https)
}

/// TLS: a client that never completes the handshake is closed at the handshake timeout, and
/// pending handshakes count toward the connection cap.
#[tokio::test]
async fn the_tls_handshake_is_bounded_and_counted() {
    let handshake = Duration::from_secs(1);
    let (mut o, https) = tls_options();
    o.config.connections.tls_handshake_timeout = handshake;
    o.config.connections.max_connections = Some(2);
    let s = TestServer::start_with(Backend::Sqlite, o).await;

    let mut silent: Vec<TcpStream> = Vec::new();
    for _ in 0..2 {
        silent.push(TcpStream::connect(s.addr).await.unwrap());
    }
    // Give the server time to accept both.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let mut third = TcpStream::connect(s.addr).await.unwrap();
    let read = read_until_closed(&mut third, Duration::from_millis(900)).await;
    assert_eq!(
        read.as_deref(),
        Some(&[][..]),
        "over the cap: closed at once, not at the handshake timeout"
    );
    assert!(started.elapsed() < handshake);

    for (i, conn) in silent.iter_mut().enumerate() {
        let read = read_until_closed(conn, handshake + MARGIN).await;
        assert_eq!(read.as_deref(), Some(&[][..]), "handshake {i} not cut");
    }
    // The slots are free again.
    let res = https.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(closed_total(&s, "tls_handshake").await, 2);
    assert_eq!(closed_total(&s, "over_capacity").await, 1);
    s.stop().await;
}

fn slow_routes(delay: Duration) -> ExtraRoutes {
    ExtraRoutes::new().routes(Router::new().route(
        "/test/slow",
        get(move || async move {
            tokio::time::sleep(delay).await;
            "done"
        }),
    ))
}

async fn start_slow(delay: Duration, drain: Duration) -> (TestServer, String) {
    let mut o = TestOptions::default();
    o.config.connections.drain_timeout = drain;
    o.extra_routes = slow_routes(delay);
    let s = TestServer::start_with(Backend::Sqlite, o).await;
    let c = s.create_client(Scopes::all()).await;
    let token = s.token(&c).await;
    (s, token)
}

/// Shutdown lets an in-flight request finish within the drain timeout…
#[tokio::test]
async fn shutdown_drains_in_flight_requests() {
    let (mut s, token) = start_slow(Duration::from_secs(1), Duration::from_secs(20)).await;
    let req = s
        .http()
        .get(s.url("/api/mobile/test/slow"))
        .bearer_auth(&token)
        .send();
    let in_flight = tokio::spawn(req);
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.trigger_shutdown();
    let res = in_flight.await.unwrap().unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "done");
    tokio::time::timeout(Duration::from_secs(10), s.join())
        .await
        .expect("stopped after the drain")
        .unwrap();
    s.stop().await;
}

/// …but no longer: a request still running at the drain timeout is cut and the server stops.
#[tokio::test]
async fn shutdown_is_bounded_by_the_drain_timeout() {
    let drain = Duration::from_secs(1);
    let (mut s, token) = start_slow(Duration::from_secs(600), drain).await;
    let req = s
        .http()
        .get(s.url("/api/mobile/test/slow"))
        .bearer_auth(&token)
        .send();
    let in_flight = tokio::spawn(req);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let start = Instant::now();
    s.trigger_shutdown();
    tokio::time::timeout(drain + MARGIN, s.join())
        .await
        .expect("the drain timeout bounds the shutdown")
        .unwrap();
    assert!(start.elapsed() >= drain - Duration::from_millis(100));
    let res = tokio::time::timeout(MARGIN, in_flight)
        .await
        .expect("the client sees the connection close")
        .unwrap();
    assert!(res.is_err(), "{res:?}");
    s.stop().await;
}

/// A client that asks for a large response and stops reading it is closed once no byte has
/// gone out for the stall timeout (`--export-stall-timeout`), however long the idle timeout;
/// the slot does not stay taken.
#[tokio::test]
async fn a_response_the_client_stops_reading_is_cut_after_the_stall_timeout() {
    let stall = Duration::from_secs(1);
    let mut o = options(
        Duration::from_secs(10),
        Duration::from_secs(600),
        Duration::from_secs(30),
    );
    o.config.export_stall_timeout = stall;
    o.extra_routes = ExtraRoutes::new().routes(Router::new().route(
        "/test/large",
        get(|| async {
            // 256 MiB, made as it is sent: far beyond the socket buffers.
            let chunk = bytes::Bytes::from(vec![b'x'; 256 * 1024]);
            let chunks = futures_util::stream::iter(
                (0..1024).map(move |_| Ok::<_, std::convert::Infallible>(chunk.clone())),
            );
            axum::body::Body::from_stream(chunks)
        }),
    ));
    let s = TestServer::start_with(Backend::Sqlite, o).await;
    let c = s.create_client(Scopes::all()).await;
    let token = s.token(&c).await;

    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut conn = socket.connect(s.addr).await.unwrap();
    conn.write_all(
        format!("GET /api/mobile/test/large HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    // Never read: the server's writes block, and after the stall timeout it gives up.
    let start = Instant::now();
    while closed_total(&s, "send_stalled").await == 0 {
        assert!(
            start.elapsed() < stall + Duration::from_secs(10),
            "a stalled response kept its connection"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(start.elapsed() >= stall);
    // What the buffers held, then the end: the connection is gone.
    let mut received = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match tokio::time::timeout(MARGIN, conn.read(&mut buf)).await {
            Err(_) => panic!("still open after {received} bytes"),
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => received += n,
        }
    }
    assert!(received < 256 * 1024 * 1024, "the whole response arrived");
    s.stop().await;
}

/// `/metrics` is not on the public listener; the metrics listener serves it (and nothing else),
/// and `off` binds no metrics listener.
#[tokio::test]
async fn metrics_have_their_own_listener() {
    let s = TestServer::start(Backend::Sqlite).await;
    let metrics: SocketAddr = s.metrics_addr.unwrap();
    assert_ne!(metrics.port(), s.addr.port());
    let res = s.http().get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let res = s
        .http()
        .get(s.metrics_url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("l2c_http_requests_total")
    );
    let res = s
        .http()
        .get(s.metrics_url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    s.stop().await;

    let mut o = TestOptions::default();
    o.config.metrics_listen = None;
    let s = TestServer::start_with(Backend::Sqlite, o).await;
    assert_eq!(s.metrics_addr, None);
    s.stop().await;
}
