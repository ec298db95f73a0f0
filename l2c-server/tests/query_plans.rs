//! Lookups whose plan must follow a table as it grows from empty: a statement kept prepared on a
//! new PostgreSQL database may cache a generic plan made while the table was empty and never
//! analysed, and keep reading the wrong index long after (found by `scripts/bench-work.sh`:
//! lead intake fell from 2,018 to 467 per second on a fresh database). Each test runs the
//! lookup on one connection past PostgreSQL's five custom plans while the table is empty, grows
//! the table without analysing it, and counts the rows the other index gave the lookup.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use l2c_core::ClientId;
use l2c_core::api::leads::PushLead;
use l2c_server::store::Db;
use l2c_server::store::leads::existing;
use l2c_server::store::orders::sync::lock_for_sync;
use l2c_server::testing::{Backend, TestDb};
use serde_json::json;
use sqlx::{AnyConnection, Connection as _, Row};

/// Rows of `index` read so far by index scans, as this backend reports them (its own counters
/// flushed first).
async fn index_reads(conn: &mut sqlx::AnyConnection, index: &str) -> i64 {
    sqlx::query("SELECT pg_stat_force_next_flush()")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("SELECT idx_tup_read FROM pg_stat_user_indexes WHERE indexrelname = $1")
        .bind(index)
        .fetch_one(&mut *conn)
        .await
        .unwrap()
        .try_get::<i64, _>(0)
        .unwrap()
}

/// Runs `lookup` 8 times on one connection of a new database (more than PostgreSQL's five
/// custom plans before it may settle on a generic one, on tables empty and never analysed),
/// grows the client's rows to 20,000 with `grow` (no ANALYZE: autovacuum has not come by), runs
/// `lookup` 3 more times, and returns the rows `index` — the other index on `client_id` — gave
/// those 3 lookups. `None` when PostgreSQL is not configured.
async fn rows_read_after_growth(
    grow: &str,
    index: &str,
    mut lookup: impl AsyncFnMut(&mut AnyConnection, &Db),
) -> Option<i64> {
    if !Backend::available().contains(&Backend::Postgres) {
        eprintln!(
            "skipped: L2C_TEST_DATABASE_URL is not set (this test is about PostgreSQL plans)"
        );
        return None;
    }
    let test_db = TestDb::create(Backend::Postgres).await;
    let db = Db::connect(&test_db.url).await.unwrap();
    // One connection throughout: the statement cache (and a cached plan) is per connection.
    let mut conn = db.pool().acquire().await.unwrap().detach();
    for _ in 0..8 {
        lookup(&mut conn, &db).await;
    }
    for sql in [
        "INSERT INTO customers (id, mobile_e164, mobile_index, name, created_at) \
         VALUES ('cus_plans', '+8613800000000', '+8613800000000', '张三', 0)",
        grow,
    ] {
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    }
    let before = index_reads(&mut conn, index).await;
    for _ in 0..3 {
        lookup(&mut conn, &db).await;
    }
    let read = index_reads(&mut conn, index).await - before;
    let _ = conn.close().await;
    drop(db);
    test_db.cleanup().await;
    Some(read)
}

#[tokio::test]
async fn a_duplicate_lead_is_found_by_its_unique_key_after_the_table_grew() {
    let client = ClientId::new("cli_plans");
    let lead: PushLead = serde_json::from_value(json!({
        "source": "DOUYIN", "externalLeadId": "plan-probe", "name": "张三",
        "mobile": "13800000000", "submittedAt": "2026-11-20T10:15:00+08:00"
    }))
    .unwrap();
    let grow = "INSERT INTO leads (id, client_id, source, external_lead_id, customer_id, name, \
         mobile_e164, form_fields, submitted_at, raw_payload, created_at) \
         SELECT 'lead_plans' || i, 'cli_plans', 'DOUYIN', 'seed-' || i, 'cus_plans', '张三', \
         '+8613800000000', '[]', '2026-11-20T10:15:00+08:00', '{}', i \
         FROM generate_series(1, 20000) AS i";
    let lookup = async |conn: &mut AnyConnection, db: &Db| {
        let found = existing(conn, db.data_keys(), &client, &lead)
            .await
            .unwrap();
        assert!(found.is_none());
    };
    let Some(read) = rows_read_after_growth(grow, "leads_client_created", lookup).await else {
        return;
    };
    // A plan on `leads_client_created (client_id, created_at)` reads all 20,000 leads of the
    // client per lookup (60,000 here); the unique `(client_id, source, external_lead_id)`
    // index reads none of them.
    assert!(
        read < 1_000,
        "three lookups read {read} rows of leads_client_created: the lookup kept a plan made on the empty table"
    );
}

#[tokio::test]
async fn an_order_sync_finds_its_order_by_its_unique_key_after_the_table_grew() {
    let client = ClientId::new("cli_plans");
    let grow = "INSERT INTO orders (id, client_id, external_order_no, customer_id, status, \
         payment_status, total_fen, deposit_fen, paid_fen, currency, items, milestones, version, \
         created_at, updated_at) \
         SELECT 'ord_plans' || i, 'cli_plans', 'seed-' || i, 'cus_plans', 'DEPOSIT_PAID', \
         'DEPOSIT_PAID', 3980000, 500000, 500000, 'CNY', '[]', '[]', 1, i, i \
         FROM generate_series(1, 20000) AS i";
    let lookup = async |conn: &mut AnyConnection, _: &Db| {
        let found = lock_for_sync(conn, &client, "ERP-PROBE").await.unwrap();
        assert!(found.is_none());
    };
    let Some(read) = rows_read_after_growth(grow, "orders_client_export", lookup).await else {
        return;
    };
    assert!(
        read < 1_000,
        "three lookups read {read} rows of orders_client_export: the lookup kept a plan made on the empty table"
    );
}
