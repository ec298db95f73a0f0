#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use l2c_core::{ClientId, RequestId};

use super::*;
use crate::store::request_logs::RequestLogFilter;

/// A fresh SQLite database file, and its path (removed by [`remove`]).
async fn sqlite() -> (Db, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!("l2c_rlog_{}.db", uuid::Uuid::new_v4().simple()));
    let db = Db::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    (db, path)
}

async fn remove(db: Db, path: std::path::PathBuf) {
    db.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

fn record(i: u32) -> NewRequestLog {
    NewRequestLog::new(
        1_700_000_000_000 + i64::from(i),
        Some(ClientId::new("app_a")),
        "POST",
        Arc::new("/api/mobile/orders/sync".to_owned()),
        201,
        RequestId::new(format!("req-{i}")),
        1_500,
        Some(99),
    )
}

#[test]
fn a_full_channel_drops_without_blocking() {
    // No runtime at all: `push` cannot await anything, so it cannot block a request.
    let log = RequestLog::new(2);
    assert_eq!(log.push(record(1)), Ok(()));
    assert_eq!(log.push(record(2)), Ok(()));
    let started = std::time::Instant::now();
    for i in 3..1_000 {
        assert_eq!(log.push(record(i)), Err(Dropped::Full));
    }
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(Dropped::Full.reason(), "full");
}

#[test]
fn the_metrics_count_what_was_dropped() {
    let m = Metrics::new();
    m.record_request_log_dropped("full", 3);
    assert!(
        m.render()
            .contains("l2c_request_log_dropped_total{reason=\"full\"} 3"),
        "{}",
        m.render()
    );
}

#[test]
fn only_one_writer_takes_the_channel() {
    let log = RequestLog::new(4);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (db, path) = sqlite().await;
        assert!(
            log.writer(db.clone(), RequestLogConfig::default(), None)
                .is_some()
        );
        assert!(
            log.writer(db.clone(), RequestLogConfig::default(), None)
                .is_none()
        );
        remove(db, path).await;
    });
}

#[tokio::test]
async fn the_writer_batches_and_flushes_on_shutdown() {
    let (db, path) = sqlite().await;
    let log = RequestLog::new(100);
    let config = RequestLogConfig {
        batch_rows: 7,
        // Longer than the test: only full batches and the shutdown write anything.
        flush_interval: Duration::from_secs(3600),
        ..RequestLogConfig::default()
    };
    let handle = log.writer(db.clone(), config, None).unwrap().spawn();
    for i in 0..20 {
        log.push(record(i)).unwrap();
    }
    // Two full batches of 7 are written without waiting for the interval.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let all = RequestLogFilter::new(Some("app_a"));
    loop {
        let n = db.request_logs().list(&all, 100, 0).await.unwrap().len();
        if n == 14 {
            break;
        }
        assert!(n < 14, "{n} rows");
        assert!(std::time::Instant::now() < deadline, "{n} rows");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    handle.shutdown().await;
    let rows = db.request_logs().list(&all, 100, 0).await.unwrap();
    assert_eq!(rows.len(), 20);
    assert_eq!(rows[0].request_id, "req-19");
    assert_eq!(rows[0].route, "/api/mobile/orders/sync");
    assert_eq!(
        (rows[0].latency_us, rows[0].rate_remaining),
        (1_500, Some(99))
    );
    remove(db, path).await;
}

#[test]
fn rate_remaining_reads_r_of_the_first_member() {
    let mut h = http::HeaderMap::new();
    assert_eq!(rate_remaining(&h), None);
    h.insert("ratelimit", "\"default\";r=97;t=1".parse().unwrap());
    assert_eq!(rate_remaining(&h), Some(97));
    h.insert("ratelimit", "\"default\";r=0;t=12".parse().unwrap());
    assert_eq!(rate_remaining(&h), Some(0));
    h.insert("ratelimit", "\"default\";t=1".parse().unwrap());
    assert_eq!(rate_remaining(&h), None);
}
