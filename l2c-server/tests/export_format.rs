//! The CSV export's bytes: tricky values come out exactly the same on every backend and batch
//! size, and ids that would break an SQL literal (quotes, backslashes, NUL) neither break nor
//! widen the walk.
#![allow(clippy::unwrap_used)]

use l2c_core::ClientId;
use l2c_server::store::Db;
use l2c_server::store::orders::ExportWalk;
use l2c_server::testing::{Backend, TestServer};

/// One order row: `(id, external_order_no, status, payment_status, total, deposit, paid,
/// currency, created_at, updated_at)`.
type Order = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    i64,
    i64,
    i64,
    &'static str,
    i64,
    i64,
);

/// The customer of every order (a `-` start and a comma: guarded and quoted).
const CUSTOMER: &str = "-cus,1";

/// Orders whose values exercise the quoting, the formula guard and the time format. Several
/// share a `created_at`, so the walk's tie-break on `id` is crossed between batches.
const TRICKY: [Order; 14] = [
    (
        "ord_plain",
        "ERP-1",
        "DEPOSIT_PAID",
        "DEPOSIT_PAID",
        3_980_000,
        500_000,
        500_000,
        "CNY",
        1_764_000_000_000,
        1_764_000_000_000,
    ),
    (
        "ord_quote\"d",
        "say \"hi\"",
        "SCHEDULING",
        "FULLY_PAID",
        1,
        0,
        1,
        "CNY",
        1_764_000_000_000,
        1_764_000_000_123,
    ),
    (
        "ord_comma",
        "a,b,c",
        "DEPOSIT_PAID",
        "DEPOSIT_PAID",
        0,
        0,
        0,
        "C,NY",
        1_764_000_000_001,
        1_764_000_000_120,
    ),
    (
        "ord_lines",
        "two\nlines\r\nthree",
        "COMPLETED",
        "FULLY_PAID",
        10,
        20,
        30,
        "CNY",
        1_764_000_000_001,
        1,
    ),
    (
        "ord_eq",
        "=HYPERLINK(\"http://x\",\"y\")",
        "DEPOSIT_PAID",
        "DEPOSIT_PAID",
        -1,
        -500_000,
        i64::MIN,
        "CNY",
        1_764_000_000_001,
        0,
    ),
    (
        "ord_plus",
        "+86 138",
        "DEPOSIT_PAID",
        "DEPOSIT_PAID",
        i64::MAX,
        0,
        0,
        "CNY",
        1_764_000_000_002,
        -1,
    ),
    (
        "-ord_minus",
        "-5",
        "DEPOSIT_PAID",
        "DEPOSIT_PAID",
        5,
        5,
        5,
        "-CNY",
        1_764_000_000_003,
        999,
    ),
    (
        "@ord_at",
        "@SUM(A1)",
        "DEPOSIT_PAID",
        "DEPOSIT_PAID",
        5,
        5,
        5,
        "CNY",
        1_764_000_000_004,
        1_000,
    ),
    (
        "ord_tab",
        "\tcell",
        "DEPOSIT_PAID",
        "DEPOSIT_PAID",
        5,
        5,
        5,
        "CNY",
        1_764_000_000_005,
        253_402_271_999_999,
    ),
    (
        "ord_tcr",
        "\rcell",
        "DEPOSIT_PAID",
        "DEPOSIT_PAID",
        5,
        5,
        5,
        "CNY",
        1_764_000_000_005,
        253_402_272_000_000,
    ),
    (
        "订单_中文",
        "订单号-甲,乙\"丙\"",
        "SCHEDULING",
        "DEPOSIT_PAID",
        12_345,
        6_789,
        0,
        "人民币",
        1_764_000_000_006,
        -62_167_248_000_001,
    ),
    (
        "ord_1'quote'",
        "it's",
        "DEPOSIT_PAID",
        "DEPOSIT_PAID",
        1,
        1,
        1,
        "CNY",
        1_764_000_000_007,
        1_764_000_000_005,
    ),
    (
        "ord_2\\back\\slash",
        "C:\\erp\\1",
        "DEPOSIT_PAID",
        "DEPOSIT_PAID",
        2,
        2,
        2,
        "CNY",
        1_764_000_000_007,
        1_764_000_000_006,
    ),
    (
        "ord_3\\'both''\\\\",
        "\\'; DROP TABLE orders; --",
        "DEPOSIT_PAID",
        "DEPOSIT_PAID",
        3,
        3,
        3,
        "CNY",
        1_764_000_000_007,
        1_764_000_000_007,
    ),
];

/// The export of [`TRICKY`], as the server wrote it before it read PostgreSQL with `COPY`
/// (captured from the row-by-row formatter; the header is the route's, not the walk's).
const EXPECTED: &str = concat!(
    "ord_plain,ERP-1,\"'-cus,1\",DEPOSIT_PAID,已下定金,DEPOSIT_PAID,已付定金,3980000,500000,500000,CNY,2025-11-25T00:00:00+08:00\r\n",
    "\"ord_quote\"\"d\",\"say \"\"hi\"\"\",\"'-cus,1\",SCHEDULING,正在排产,FULLY_PAID,已付全款,1,0,1,CNY,2025-11-25T00:00:00.123+08:00\r\n",
    "ord_comma,\"a,b,c\",\"'-cus,1\",DEPOSIT_PAID,已下定金,DEPOSIT_PAID,已付定金,0,0,0,\"C,NY\",2025-11-25T00:00:00.120+08:00\r\n",
    "ord_eq,\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",\"'-cus,1\",DEPOSIT_PAID,已下定金,DEPOSIT_PAID,已付定金,'-1,'-500000,'-9223372036854775808,CNY,1970-01-01T08:00:00+08:00\r\n",
    "ord_lines,\"two\nlines\r\nthree\",\"'-cus,1\",COMPLETED,已完工,FULLY_PAID,已付全款,10,20,30,CNY,1970-01-01T08:00:00.001+08:00\r\n",
    "ord_plus,'+86 138,\"'-cus,1\",DEPOSIT_PAID,已下定金,DEPOSIT_PAID,已付定金,9223372036854775807,0,0,CNY,1970-01-01T07:59:59.999+08:00\r\n",
    "'-ord_minus,'-5,\"'-cus,1\",DEPOSIT_PAID,已下定金,DEPOSIT_PAID,已付定金,5,5,5,'-CNY,1970-01-01T08:00:00.999+08:00\r\n",
    "'@ord_at,'@SUM(A1),\"'-cus,1\",DEPOSIT_PAID,已下定金,DEPOSIT_PAID,已付定金,5,5,5,CNY,1970-01-01T08:00:01+08:00\r\n",
    "ord_tab,'\tcell,\"'-cus,1\",DEPOSIT_PAID,已下定金,DEPOSIT_PAID,已付定金,5,5,5,CNY,9999-12-31T23:59:59.999+08:00\r\n",
    "ord_tcr,\"'\rcell\",\"'-cus,1\",DEPOSIT_PAID,已下定金,DEPOSIT_PAID,已付定金,5,5,5,CNY,+10000-01-01T00:00:00+08:00\r\n",
    "订单_中文,\"订单号-甲,乙\"\"丙\"\"\",\"'-cus,1\",SCHEDULING,正在排产,DEPOSIT_PAID,已付定金,12345,6789,0,人民币,-0001-12-31T23:59:59.999+08:00\r\n",
    "ord_1'quote',it's,\"'-cus,1\",DEPOSIT_PAID,已下定金,DEPOSIT_PAID,已付定金,1,1,1,CNY,2025-11-25T00:00:00.005+08:00\r\n",
    "ord_2\\back\\slash,C:\\erp\\1,\"'-cus,1\",DEPOSIT_PAID,已下定金,DEPOSIT_PAID,已付定金,2,2,2,CNY,2025-11-25T00:00:00.006+08:00\r\n",
    "ord_3\\'both''\\\\,\\'; DROP TABLE orders; --,\"'-cus,1\",DEPOSIT_PAID,已下定金,DEPOSIT_PAID,已付定金,3,3,3,CNY,2025-11-25T00:00:00.007+08:00\r\n",
);

async fn insert(db: &Db, client: &str, orders: &[Order]) {
    for o in orders {
        sqlx::query(
            "INSERT INTO orders (id, client_id, external_order_no, customer_id, status, \
             payment_status, total_fen, deposit_fen, paid_fen, currency, items, milestones, \
             version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, '[]', '[]', 1, $11, $12)",
        )
        .bind(o.0)
        .bind(client)
        .bind(o.1)
        .bind(CUSTOMER)
        .bind(o.2)
        .bind(o.3)
        .bind(o.4)
        .bind(o.5)
        .bind(o.6)
        .bind(o.7)
        .bind(o.8)
        .bind(o.9)
        .execute(db.pool())
        .await
        .unwrap();
    }
}

/// The CSV lines of `client`'s orders, read in batches of `batch`.
async fn export(db: &Db, client: &str, batch: u32) -> String {
    let mut walk = ExportWalk::new(ClientId::new(client));
    let mut csv = String::new();
    let mut batches = 0;
    while !walk.is_done() {
        walk.next_batch(db.exports(), batch)
            .await
            .unwrap()
            .write_csv(&mut csv)
            .unwrap();
        batches += 1;
        assert!(batches < 1_000, "the walk does not end");
    }
    csv
}

async fn customer(db: &Db) {
    sqlx::query("INSERT INTO customers (id, mobile_e164, name, created_at) VALUES ($1, '+8613800000000', 'x', 0)")
        .bind(CUSTOMER)
        .execute(db.pool())
        .await
        .unwrap();
}

#[tokio::test]
async fn tricky_values_are_exported_byte_for_byte_in_any_batch_size() {
    for backend in Backend::available() {
        let server = TestServer::start(backend).await;
        customer(&server.db).await;
        let client = "cli_tricky";
        insert(&server.db, client, &TRICKY).await;
        // Another client's orders never show.
        insert(
            &server.db,
            "cli_other",
            &TRICKY[..1]
                .iter()
                .map(|o| {
                    let mut o = *o;
                    o.0 = "ord_other";
                    o
                })
                .collect::<Vec<_>>(),
        )
        .await;
        for batch in [1, 2, 3, 5, 1000] {
            let csv = export(&server.db, client, batch).await;
            assert_eq!(csv, EXPECTED, "{backend:?}, batches of {batch}");
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn client_ids_that_would_break_a_literal_select_only_their_orders() {
    for backend in Backend::available() {
        let server = TestServer::start(backend).await;
        customer(&server.db).await;
        let odd = [
            "cli_'",
            "cli_\\",
            "cli_\\'",
            "cli_' OR '1'='1",
            "cli_\\' OR 1=1 --",
            "cli_$$x$$",
        ];
        for (n, client) in odd.iter().enumerate() {
            let order: Order = (
                Box::leak(format!("ord_{n}_{client}").into_boxed_str()),
                Box::leak(format!("ERP-{n}").into_boxed_str()),
                "DEPOSIT_PAID",
                "DEPOSIT_PAID",
                1,
                1,
                1,
                "CNY",
                n as i64,
                0,
            );
            insert(&server.db, client, &[order]).await;
        }
        insert(&server.db, "cli_", &TRICKY[..1]).await;
        for (n, client) in odd.iter().enumerate() {
            for batch in [1, 10] {
                let csv = export(&server.db, client, batch).await;
                let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
                assert_eq!(lines.len(), 1, "{backend:?} {client}: {csv}");
                assert!(
                    lines[0].contains(&format!(",ERP-{n},")),
                    "{backend:?} {client}: {csv}"
                );
            }
        }
        // No such client: nothing, however the id reads as SQL.
        for client in ["cli_x' OR 'a'='a", "cli_x\\' OR TRUE --", ""] {
            assert_eq!(
                export(&server.db, client, 10).await,
                "",
                "{backend:?} {client}"
            );
        }
        // A NUL cannot be in a stored id: the walk finds nothing or refuses, never more.
        let mut walk = ExportWalk::new(ClientId::new("cli_'\0' OR TRUE --"));
        let mut csv = String::new();
        while !walk.is_done() {
            match walk.next_batch(server.db.exports(), 10).await {
                Ok(batch) => batch.write_csv(&mut csv).unwrap(),
                Err(_) => break,
            }
        }
        assert_eq!(csv, "", "{backend:?}");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_batch_read_abandoned_halfway_leaves_no_broken_connection_behind() {
    const ORDERS: usize = 20_000;
    for backend in Backend::available() {
        let server = TestServer::start(backend).await;
        customer(&server.db).await;
        let series = match backend {
            Backend::Sqlite => {
                "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 20000)"
            }
            Backend::Postgres => "WITH s(i) AS (SELECT generate_series(1, 20000))",
        };
        sqlx::query(&format!(
            "{series} INSERT INTO orders (id, client_id, external_order_no, customer_id, status, \
             payment_status, total_fen, deposit_fen, paid_fen, currency, items, milestones, \
             version, created_at, updated_at) \
             SELECT 'ord_' || i, 'cli_many', 'ERP-' || i, '{CUSTOMER}', 'DEPOSIT_PAID', \
             'DEPOSIT_PAID', 1, 1, 1, 'CNY', '[]', '[]', 1, i, i FROM s"
        ))
        .execute(server.db.pool())
        .await
        .unwrap();
        let whole = export(&server.db, "cli_many", 50_000).await;
        assert_eq!(whole.matches("\r\n").count(), ORDERS);
        // Reads cut after 0, 1, 2, … ms: some before, some during, some after the batch's query.
        for ms in 0..30 {
            let mut walk = ExportWalk::new(ClientId::new("cli_many"));
            let read = walk.next_batch(server.db.exports(), 50_000);
            let _ = tokio::time::timeout(std::time::Duration::from_millis(ms), read).await;
            let again = export(&server.db, "cli_many", 50_000).await;
            assert!(
                again == whole,
                "{backend:?}: after a read cut at {ms} ms, {} bytes instead of {}",
                again.len(),
                whole.len()
            );
        }
        server.stop().await;
    }
}
