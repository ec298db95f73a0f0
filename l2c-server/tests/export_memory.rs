//! The CSV export streams: exporting 100k orders keeps this process's memory flat.
//!
//! This test lives in its own test binary on purpose: it measures the process's resident set
//! size, so no other test may run (and allocate) in the same process while it streams.
#![allow(clippy::unwrap_used)]

use l2c_core::Scopes;
use l2c_server::testing::{Backend, TestServer};
use reqwest::StatusCode;

/// Resident set size of this process in bytes (Linux).
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[tokio::test]
async fn export_of_100k_orders_streams_with_flat_memory() {
    const ORDERS: usize = 100_000;
    for backend in Backend::available() {
        let server = TestServer::start(backend).await;
        let a = server.create_client(Scopes::all()).await;
        let a_token = server.token(&a).await;
        // Bulk-load the orders straight into the table (the HTTP path is tested elsewhere).
        let customer = sqlx::query(
            "INSERT INTO customers (id, mobile_e164, name, created_at) VALUES ('cus_bulk', '+8613800000000', 'x', 0)",
        );
        customer.execute(server.db.pool()).await.unwrap();
        let mut tx = server.db.pool().begin().await.unwrap();
        for chunk in 0..ORDERS / 500 {
            let mut sql = String::from(
                "INSERT INTO orders (id, client_id, external_order_no, customer_id, status, \
                 payment_status, total_fen, deposit_fen, paid_fen, currency, items, milestones, \
                 version, created_at, updated_at) VALUES ",
            );
            for i in 0..500 {
                let n = chunk * 500 + i;
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!(
                    "('ord_{n:08}', '{}', 'ERP-{n:08}', 'cus_bulk', 'IN_PRODUCTION', \
                     'PARTIALLY_PAID', 3980000, 500000, 2000000, 'CNY', '[]', '[]', 1, {n}, {n})",
                    a.id
                ));
            }
            sqlx::query(&sql).execute(&mut *tx).await.unwrap();
        }
        tx.commit().await.unwrap();

        let before = rss_bytes();
        let mut res = server
            .http()
            .get(server.url("/api/mobile/reports/orders/export"))
            .bearer_auth(&a_token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let (mut bytes, mut lines, mut peak) = (0usize, 0usize, before.unwrap_or(0));
        while let Some(chunk) = res.chunk().await.unwrap() {
            bytes += chunk.len();
            lines += chunk.iter().filter(|b| **b == b'\n').count();
            if lines % 10_000 < 100 {
                peak = peak.max(rss_bytes().unwrap_or(0));
            }
        }
        assert_eq!(lines, ORDERS + 1, "header + one line per order");
        assert!(bytes > 10_000_000, "{bytes} bytes");
        if let Some(before) = before {
            let growth = peak.saturating_sub(before);
            eprintln!(
                "{backend:?}: exported {bytes} bytes; RSS growth while streaming {growth} bytes"
            );
            // The CSV is ~14.5 MB; buffering it (or the rows) would grow RSS well past this.
            assert!(growth < 12 * 1024 * 1024, "RSS grew by {growth} bytes");
        }
        server.stop().await;
    }
}
