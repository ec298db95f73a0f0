//! The dispatcher's batches: a batch of recorded attempts writes nothing for a delivery whose
//! lease was lost and records the others (with their attempt numbers, and a 410 disabling the
//! subscription), on SQLite and PostgreSQL; two dispatchers sharing PostgreSQL deliver a
//! thousand events exactly once each; the dispatcher's bookkeeping commits skip the disk flush
//! while business writes keep it; a claim walks the due index in order and the bookkeeping's
//! kept plans go by index, however big the backlog and however stale the statistics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use http::{HeaderMap, StatusCode};
use l2c_core::ClientId;
use l2c_core::api::events::{EventData, EventType, OrderAmounts, OrderCreated};
use l2c_core::api::status::{OrderStatus, PaymentStatus};
use l2c_core::clock::SystemClock;
use l2c_core::webhook::WebhookSecret;
use l2c_server::dispatch::{Dispatcher, WebhookConfig};
use l2c_server::store::Db;
use l2c_server::store::outbox::{AttemptRecord, NextStep, Outcome, enqueue_in};
use l2c_server::store::sql::begin_write;
use l2c_server::testing::{Backend, TestDb};
use sqlx::{Connection as _, Row};

fn event(i: usize) -> EventData {
    EventData::OrderCreated(OrderCreated::new(
        format!("ord_batch{i:08}"),
        format!("batch-{i}"),
        OrderStatus::DepositPaid,
        PaymentStatus::DepositPaid,
        OrderAmounts::cny(3_980_000, 500_000, 500_000),
        "cus_0000000000000000000000000000000",
        1,
    ))
}

/// A subscription of `client` to `url` and `n` queued events; returns the subscription id.
async fn queue(db: &Db, client: &ClientId, url: &str, n: usize, now: i64) -> String {
    let secret = WebhookSecret::generate();
    let sub = db
        .webhooks()
        .create(
            client,
            url,
            &[EventType::OrderCreated],
            secret.expose_secret(),
            now,
            10,
        )
        .await
        .unwrap()
        .unwrap();
    let events: Vec<EventData> = (0..n).map(event).collect();
    let mut tx = begin_write(db).await.unwrap();
    let queued = enqueue_in(&mut tx, client, &events, now).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(queued, n as u64);
    sub.id
}

async fn delivery(db: &Db, id: &str) -> (String, i64, Option<String>, i64) {
    let r = sqlx::query(
        "SELECT status, failures, lease_owner, next_attempt_at FROM webhook_deliveries \
         WHERE id = $1",
    )
    .bind(id)
    .fetch_one(db.pool())
    .await
    .unwrap();
    (
        r.get("status"),
        r.get("failures"),
        r.get("lease_owner"),
        r.get("next_attempt_at"),
    )
}

async fn attempt_numbers(db: &Db, id: &str) -> Vec<i64> {
    sqlx::query(
        "SELECT attempt_no FROM webhook_attempts WHERE delivery_id = $1 ORDER BY attempt_no",
    )
    .bind(id)
    .fetch_all(db.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| r.get("attempt_no"))
    .collect()
}

#[tokio::test]
async fn an_attempt_whose_lease_lapsed_is_not_recorded_against_a_later_claim_by_the_same_dispatcher()
 {
    for backend in Backend::available() {
        let test_db = TestDb::create(backend).await;
        let db = Db::connect(&test_db.url).await.unwrap();
        let client = ClientId::new("cli_reclaim");
        let now = 1_700_000_000_000;
        queue(&db, &client, "https://93.184.215.14/hook", 1, now).await;
        let store = db.webhooks();
        // A slow attempt outlives its lease; the same dispatcher claims the row again.
        let first = store.claim("dsp_a", now, now + 1_000, 10).await.unwrap();
        let second = store
            .claim("dsp_a", now + 2_000, now + 62_000, 10)
            .await
            .unwrap();
        assert_eq!(second.len(), 1, "{backend:?}");
        let rec = |status| Some(AttemptRecord::new(now, Some(status), 12, None));
        // The stale attempt's success must not be written over the live claim: the owner is
        // the same, the claim (its lease end) is not.
        let stale = Outcome::new(first[0].clone(), rec(200), NextStep::Succeeded, now + 2_500);
        assert!(
            store
                .finish_all("dsp_a", &[&stale])
                .await
                .unwrap()
                .is_empty()
        );
        let id = &second[0].delivery_id;
        assert_eq!(delivery(&db, id).await.0, "PENDING", "{backend:?}");
        assert!(attempt_numbers(&db, id).await.is_empty());
        // The live claim's outcome is recorded, also in a batch with the stale one beside it
        // (one attempt, numbered 1, not two under one number).
        let live = Outcome::new(
            second[0].clone(),
            rec(200),
            NextStep::Succeeded,
            now + 3_000,
        );
        assert_eq!(
            store
                .finish_all("dsp_a", &[&stale, &live])
                .await
                .unwrap()
                .len(),
            1,
            "{backend:?}"
        );
        assert_eq!(delivery(&db, id).await.0, "SUCCEEDED", "{backend:?}");
        assert_eq!(attempt_numbers(&db, id).await, [1]);

        db.close().await;
        test_db.cleanup().await;
    }
}

#[tokio::test]
async fn a_lost_lease_in_a_batch_writes_nothing_for_that_row_and_records_the_others() {
    for backend in Backend::available() {
        let test_db = TestDb::create(backend).await;
        let db = Db::connect(&test_db.url).await.unwrap();
        let client = ClientId::new("cli_batch");
        let now = 1_700_000_000_000;
        let sub = queue(&db, &client, "https://93.184.215.14/hook", 3, now).await;
        let store = db.webhooks();

        let jobs = store.claim("dsp_a", now, now + 60_000, 10).await.unwrap();
        assert_eq!(jobs.len(), 3, "{backend:?}");
        for job in &jobs {
            assert_eq!(job.subscription.as_ref().unwrap().id, sub, "{backend:?}");
            assert!(job.payload.contains(&job.event_id), "{backend:?}");
        }
        // Nothing is left to claim while the leases last.
        assert!(
            store
                .claim("dsp_b", now, now + 60_000, 10)
                .await
                .unwrap()
                .is_empty()
        );
        // The second delivery's lease went to another dispatcher meanwhile.
        let (ok, lost, retry) = (&jobs[0], &jobs[1], &jobs[2]);
        sqlx::query("UPDATE webhook_deliveries SET lease_owner = 'dsp_b' WHERE id = $1")
            .bind(&lost.delivery_id)
            .execute(db.pool())
            .await
            .unwrap();
        let rec = |status| Some(AttemptRecord::new(now, Some(status), 12, None));
        let outcomes = [
            Outcome::new(ok.clone(), rec(200), NextStep::Succeeded, now + 1),
            Outcome::new(lost.clone(), rec(200), NextStep::Succeeded, now + 1),
            Outcome::new(
                retry.clone(),
                rec(500),
                NextStep::RetryAt(now + 5_000),
                now + 1,
            ),
        ];
        let recorded = store
            .finish_all("dsp_a", &outcomes.iter().collect::<Vec<_>>())
            .await
            .unwrap();
        let want: HashSet<String> = [ok.delivery_id.clone(), retry.delivery_id.clone()].into();
        assert_eq!(recorded, want, "{backend:?}");
        assert_eq!(
            delivery(&db, &ok.delivery_id).await,
            ("SUCCEEDED".to_owned(), 0, None, now + 1)
        );
        assert_eq!(attempt_numbers(&db, &ok.delivery_id).await, [1]);
        // The lost one: untouched, no attempt.
        assert_eq!(
            delivery(&db, &lost.delivery_id).await,
            ("PENDING".to_owned(), 0, Some("dsp_b".to_owned()), now)
        );
        assert!(attempt_numbers(&db, &lost.delivery_id).await.is_empty());
        assert_eq!(
            delivery(&db, &retry.delivery_id).await,
            ("PENDING".to_owned(), 1, None, now + 5_000)
        );
        // Recording the same batch again (a commit whose answer was lost) writes nothing.
        let again = store
            .finish_all("dsp_a", &outcomes.iter().collect::<Vec<_>>())
            .await
            .unwrap();
        assert!(again.is_empty(), "{backend:?}");
        assert_eq!(attempt_numbers(&db, &ok.delivery_id).await, [1]);

        // The retry comes due; its second attempt gets 410: attempt 2, the subscription off.
        let later = now + 6_000;
        let jobs = store
            .claim("dsp_c", later, later + 60_000, 10)
            .await
            .unwrap();
        assert_eq!(jobs.len(), 1, "{backend:?}");
        assert_eq!(jobs[0].delivery_id, retry.delivery_id);
        assert_eq!(jobs[0].failures, 1);
        let gone = Outcome::new(jobs[0].clone(), rec(410), NextStep::Gone, later);
        let recorded = store.finish_all("dsp_c", &[&gone]).await.unwrap();
        assert_eq!(recorded.len(), 1);
        assert_eq!(attempt_numbers(&db, &retry.delivery_id).await, [1, 2]);
        assert_eq!(delivery(&db, &retry.delivery_id).await.0, "FAILED");
        let subs = store.list(&client).await.unwrap();
        assert!(
            !subs[0].enabled,
            "410 disables the subscription ({backend:?})"
        );

        db.close().await;
        test_db.cleanup().await;
    }
}

/// Counts the `webhook-id`s it receives.
async fn receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    async fn hit(State(seen): State<Arc<Mutex<Vec<String>>>>, headers: HeaderMap) -> StatusCode {
        let id = headers
            .get("webhook-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        seen.lock().unwrap().push(id.to_owned());
        StatusCode::NO_CONTENT
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new()
        .route("/hook", post(hit))
        .with_state(Arc::clone(&seen));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_dispatchers_on_postgres_deliver_a_thousand_events_exactly_once() {
    if !Backend::available().contains(&Backend::Postgres) {
        return;
    }
    let test_db = TestDb::create(Backend::Postgres).await;
    let db = Db::connect(&test_db.url).await.unwrap();
    let (url, seen) = receiver().await;
    let client = ClientId::new("cli_two");
    queue(&db, &client, &url, 1000, db.now_millis()).await;
    let mut config = WebhookConfig::default();
    config.allow_private = true;
    config.poll_interval = Duration::from_millis(50);
    let dispatchers: Vec<_> = (0..2)
        .map(|_| {
            Dispatcher::new(
                db.clone(),
                config.clone(),
                Arc::new(SystemClock),
                Arc::new(tokio::sync::Notify::new()),
            )
            .spawn()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pending: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM webhook_deliveries WHERE status <> 'SUCCEEDED'")
                .fetch_one(db.pool())
                .await
                .unwrap()
                .get("n");
        if pending == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{pending} deliveries left after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for d in dispatchers {
        d.shutdown().await;
    }
    let seen = seen.lock().unwrap().clone();
    let distinct: HashSet<&String> = seen.iter().collect();
    assert_eq!(distinct.len(), 1000);
    assert_eq!(seen.len(), 1000, "no event was sent twice");
    let r = sqlx::query("SELECT COUNT(*) AS n, MAX(attempt_no) AS most FROM webhook_attempts")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(
        r.get::<i64, _>("n"),
        1000,
        "one attempt recorded per delivery"
    );
    assert_eq!(r.get::<i64, _>("most"), 1);
    db.close().await;
    test_db.cleanup().await;
}

/// What a transaction's commit waits for, read inside it: SQLite's `synchronous` (2 FULL: the
/// WAL is flushed at commit, 1 NORMAL: it is not), PostgreSQL's `synchronous_commit`.
async fn flush_setting(tx: &mut sqlx::Transaction<'static, sqlx::Any>, backend: Backend) -> String {
    match backend {
        Backend::Sqlite => sqlx::query("PRAGMA synchronous")
            .fetch_one(&mut **tx)
            .await
            .unwrap()
            .try_get::<i64, _>(0)
            .unwrap()
            .to_string(),
        Backend::Postgres => sqlx::query("SHOW synchronous_commit")
            .fetch_one(&mut **tx)
            .await
            .unwrap()
            .try_get::<String, _>(0)
            .unwrap(),
    }
}

#[tokio::test]
async fn bookkeeping_commits_skip_the_flush_and_business_commits_keep_it() {
    use l2c_server::store::sql::begin_bookkeeping;
    for backend in Backend::available() {
        let test_db = TestDb::create(backend).await;
        let db = Db::connect(&test_db.url).await.unwrap();
        // The server's own setting for business writes on PostgreSQL (`on` unless a developer's
        // server says otherwise): what a transaction without SET LOCAL gets.
        let configured = match backend {
            Backend::Sqlite => String::new(),
            Backend::Postgres => sqlx::query("SHOW synchronous_commit")
                .fetch_one(db.pool())
                .await
                .unwrap()
                .try_get::<String, _>(0)
                .unwrap(),
        };
        let (durable, relaxed) = match backend {
            Backend::Sqlite => ("2", "1"),
            Backend::Postgres => (configured.as_str(), "off"),
        };
        // Alternating on the same (on SQLite: the only) write connection: each begin sets its
        // own, a business write after the dispatcher's bookkeeping is flushed again.
        let mut bookkeeping_backend = 0;
        for round in 0..2 {
            let mut tx = begin_write(&db).await.unwrap();
            assert_eq!(
                flush_setting(&mut tx, backend).await,
                durable,
                "{backend:?} business write, round {round}"
            );
            tx.commit().await.unwrap();
            let mut tx = begin_bookkeeping(&db).await.unwrap();
            assert_eq!(
                flush_setting(&mut tx, backend).await,
                relaxed,
                "{backend:?} bookkeeping, round {round}"
            );
            if backend == Backend::Postgres {
                bookkeeping_backend = sqlx::query("SELECT pg_backend_pid()")
                    .fetch_one(&mut *tx)
                    .await
                    .unwrap()
                    .try_get::<i32, _>(0)
                    .unwrap();
            }
            tx.commit().await.unwrap();
        }
        // SET LOCAL ends with its transaction on PostgreSQL: the connection the last
        // bookkeeping ran on is back in the pool flushing and planning as the server is
        // configured (the index-only planning stays in the bookkeeping's transactions). The pool
        // may open new connections before it hands that one back: take them until it comes.
        if backend == Backend::Postgres {
            let mut others = Vec::new();
            let mut conn = loop {
                let mut conn = db.writer().acquire().await.unwrap();
                let pid: i32 = sqlx::query("SELECT pg_backend_pid()")
                    .fetch_one(&mut *conn)
                    .await
                    .unwrap()
                    .try_get(0)
                    .unwrap();
                if pid == bookkeeping_backend {
                    break conn;
                }
                assert!(
                    others.len() < 64,
                    "the bookkeeping's connection did not come back to the pool"
                );
                others.push(conn);
            };
            for setting in [
                "synchronous_commit",
                "enable_seqscan",
                "enable_bitmapscan",
                "enable_sort",
                "enable_hashjoin",
                "enable_mergejoin",
                "jit",
            ] {
                let row = sqlx::query(
                    "SELECT current_setting(name), reset_val FROM pg_settings WHERE name = $1",
                )
                .bind(setting)
                .fetch_one(&mut *conn)
                .await
                .unwrap();
                let (now, configured): (String, String) =
                    (row.try_get(0).unwrap(), row.try_get(1).unwrap());
                assert_eq!(now, configured, "{setting} after the bookkeeping");
            }
            drop(others);
        }
        drop(db);
        test_db.cleanup().await;
    }
}

/// The plan of a claim of 16 among the pending deliveries, as the backend explains it (on
/// PostgreSQL run for real in a bookkeeping transaction, then rolled back).
async fn claim_plan(db: &Db, backend: Backend, now: i64) -> Vec<String> {
    use l2c_server::store::outbox::queue::{CLAIM_POSTGRES, CLAIM_SQLITE};
    use l2c_server::store::sql::begin_bookkeeping;
    let mut tx = begin_bookkeeping(db).await.unwrap();
    let (sql, column) = match backend {
        Backend::Postgres => (format!("EXPLAIN (ANALYZE, COSTS OFF) {CLAIM_POSTGRES}"), 0),
        Backend::Sqlite => (format!("EXPLAIN QUERY PLAN {CLAIM_SQLITE}"), 3),
    };
    let lines = sqlx::query(&sql)
        .bind("dsp_plan")
        .bind(now + 60_000)
        .bind(now)
        .bind(16_i64)
        .fetch_all(&mut *tx)
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get::<String, _>(column).unwrap())
        .collect();
    tx.rollback().await.unwrap();
    lines
}

/// The generic plans (what a prepared statement keeps) of the bookkeeping statements on
/// PostgreSQL, explained in a bookkeeping transaction.
async fn generic_bookkeeping_plans(db: &Db) -> Vec<(&'static str, String)> {
    use l2c_server::store::outbox::queue::CLAIM_POSTGRES;
    use l2c_server::store::outbox::record::{FINISH_DELIVERIES_PG, INSERT_ATTEMPTS_PG};
    use l2c_server::store::sql::begin_bookkeeping;
    let mut tx = begin_bookkeeping(db).await.unwrap();
    sqlx::raw_sql("SET LOCAL plan_cache_mode = force_generic_plan")
        .execute(&mut *tx)
        .await
        .unwrap();
    let mut plans = Vec::new();
    for (name, sql, args) in [
        ("claim", CLAIM_POSTGRES, "('dsp_plan', 1, 1, 16)"),
        ("finish", FINISH_DELIVERIES_PG, "('[]', 'dsp_plan')"),
        ("attempts", INSERT_ATTEMPTS_PG, "('[]')"),
    ] {
        sqlx::raw_sql(&format!("PREPARE plan_{name} AS {sql}"))
            .execute(&mut *tx)
            .await
            .unwrap();
        let plan = sqlx::raw_sql(&format!("EXPLAIN (COSTS OFF) EXECUTE plan_{name}{args}"))
            .fetch_all(&mut *tx)
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get::<String, _>(0).unwrap())
            .collect::<Vec<_>>()
            .join("\n");
        // PREPARE outlives the transaction: leave the pooled connection as it was.
        sqlx::raw_sql(&format!("DEALLOCATE plan_{name}"))
            .execute(&mut *tx)
            .await
            .unwrap();
        plans.push((name, plan));
    }
    tx.rollback().await.unwrap();
    plans
}

#[tokio::test]
async fn a_claim_takes_the_due_rows_in_index_order_whatever_the_backlog() {
    for backend in Backend::available() {
        let test_db = TestDb::create(backend).await;
        let db = Db::connect(&test_db.url).await.unwrap();
        if backend == Backend::Postgres {
            // Never analysed, as autovacuum would leave them during a burst (and must not
            // analyse them in the middle of this test: the plans would then be right anyway).
            for table in ["webhook_deliveries", "webhook_events", "webhook_attempts"] {
                sqlx::query(&format!(
                    "ALTER TABLE {table} SET (autovacuum_enabled = false)"
                ))
                .execute(db.pool())
                .await
                .unwrap();
            }
        }
        let client = ClientId::new("cli_backlog");
        let now = 1_700_000_000_000;
        // A backlog of 3,000 in a new database whose tables were never analysed: what a burst
        // of events meets.
        queue(&db, &client, "https://93.184.215.14/hook", 3_000, now).await;
        let plan = claim_plan(&db, backend, now).await;
        let text = plan.join("\n");
        match backend {
            // Left to its guess of a few dozen pending rows, PostgreSQL read all 3,000 by
            // bitmap and sorted them for each claim of 16.
            Backend::Postgres => {
                assert!(
                    !text.contains("Sort") && !text.contains("Bitmap"),
                    "the claim sorts or bitmaps the backlog:\n{text}"
                );
                let due = plan
                    .iter()
                    .find(|l| l.contains("Index Scan using webhook_deliveries_due"))
                    .unwrap_or_else(|| panic!("the claim does not walk the due index:\n{text}"));
                // `rows=16` (`rows=16.00` from PostgreSQL 18 on).
                let rows: f64 = due
                    .split("rows=")
                    .nth(1)
                    .and_then(|r| r.split(' ').next())
                    .and_then(|r| r.parse().ok())
                    .unwrap_or_else(|| panic!("no row count in {due}"));
                assert!(
                    rows <= 16.0,
                    "the due index gave {rows} rows for a claim of 16:\n{text}"
                );
                // The plans the prepared statements keep: by index, whatever the statistics
                // (a generic plan on the never-analysed tables hash-joined a sequential scan of
                // the deliveries for the record batch).
                for (name, plan) in generic_bookkeeping_plans(&db).await {
                    for bad in ["Seq Scan", "Hash Join", "Merge Join", "Sort", "Bitmap"] {
                        assert!(
                            !plan.contains(bad),
                            "the {name} statement's generic plan has a {bad}:\n{plan}"
                        );
                    }
                }
            }
            // SQLite walked every pending row by `(status, updated_at)` for the outer update.
            Backend::Sqlite => {
                assert!(
                    !text.contains("webhook_deliveries_finished"),
                    "the claim walks the pending rows by (status, updated_at):\n{text}"
                );
                assert!(
                    plan.iter()
                        .any(|l| l.starts_with("SEARCH webhook_deliveries USING")
                            && l.ends_with("(id=?)")),
                    "the claim does not update by primary key:\n{text}"
                );
            }
        }
        // And the claim itself takes 16 of the backlog.
        let jobs = db
            .webhooks()
            .claim("dsp_plan", now, now + 60_000, 16)
            .await
            .unwrap();
        assert_eq!(jobs.len(), 16, "{backend:?}");
        drop(db);
        test_db.cleanup().await;
    }
}

#[tokio::test]
async fn a_role_that_does_not_own_the_deliveries_still_starts_without_their_fillfactor() {
    if !Backend::available().contains(&Backend::Postgres) {
        eprintln!("skipped: L2C_TEST_DATABASE_URL is not set (a PostgreSQL storage setting)");
        return;
    }
    let test_db = TestDb::create(Backend::Postgres).await;
    // The owner migrates (and sets the fillfactor), then takes it off again: the next start
    // is by a role that may use the tables but not alter them (a managed database's app role).
    let db = Db::connect(&test_db.url).await.unwrap();
    let role = format!("l2c_app_{}", uuid::Uuid::new_v4().simple());
    for sql in [
        "ALTER TABLE webhook_deliveries RESET (fillfactor)".to_owned(),
        format!("CREATE ROLE {role} LOGIN"),
        format!("GRANT USAGE, CREATE ON SCHEMA public TO {role}"),
        format!("GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}"),
    ] {
        sqlx::query(&sql).execute(db.pool()).await.unwrap();
    }
    let as_app = test_db.url.replacen("postgres@", &format!("{role}@"), 1);
    assert_ne!(as_app, test_db.url, "the test URL names the postgres role");
    let app = Db::connect(&as_app)
        .await
        .expect("a role that does not own webhook_deliveries starts all the same");
    // It works as before; the fillfactor stays unset (a warning names the statement to run).
    let reloptions: Option<String> = sqlx::query_scalar(
        "SELECT array_to_string(reloptions, ',') FROM pg_class WHERE relname = 'webhook_deliveries'",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(reloptions, None);
    queue(
        &app,
        &ClientId::new("cli_app"),
        "https://93.184.215.14/hook",
        3,
        0,
    )
    .await;
    assert_eq!(
        app.webhooks()
            .claim("dsp_app", 0, 60_000, 10)
            .await
            .unwrap()
            .len(),
        3
    );
    app.pool().close().await;
    // A start by the owner sets it.
    drop(db);
    let db = Db::connect(&test_db.url).await.unwrap();
    let reloptions: Option<String> = sqlx::query_scalar(
        "SELECT array_to_string(reloptions, ',') FROM pg_class WHERE relname = 'webhook_deliveries'",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!(reloptions.as_deref(), Some("fillfactor=60"));
    drop(db);
    drop(app);
    test_db.cleanup().await;
    let admin = std::env::var("L2C_TEST_DATABASE_URL").unwrap();
    let mut conn = sqlx::AnyConnection::connect(&admin).await.unwrap();
    sqlx::query(&format!("DROP ROLE {role}"))
        .execute(&mut conn)
        .await
        .unwrap();
}
