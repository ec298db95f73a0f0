//! The test harness's own promise: a test database left behind by a process that has ended is
//! dropped by the next one, and no database of a live process is touched.

use l2c_server::testing::{Backend, TestDb, sweep_stale_databases};
use sqlx::Connection;

#[tokio::test]
async fn databases_of_ended_processes_are_swept_and_live_ones_kept() {
    let Ok(admin) = std::env::var("L2C_TEST_DATABASE_URL") else {
        eprintln!("skipping: L2C_TEST_DATABASE_URL not set");
        return;
    };
    if !std::path::Path::new("/proc/self").exists() {
        eprintln!("skipping: no /proc (the sweep asks it which processes are alive)");
        return;
    }
    sqlx::any::install_default_drivers();
    // A process id above the kernel's maximum can never be alive.
    let pid_max: u64 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // A database of this (live) process, created through the harness first (its first create
    // sweeps too; the stale database below comes after it).
    let live = TestDb::create(Backend::Postgres).await;
    let stale = format!("l2c_test_p{}_{}", pid_max + 1, std::process::id());
    let mut conn = sqlx::AnyConnection::connect(&admin).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {stale}"))
        .execute(&mut conn)
        .await
        .unwrap();

    let dropped = sweep_stale_databases(&mut conn).await;
    assert!(dropped.contains(&stale), "{dropped:?}");
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname::text FROM pg_database WHERE datname LIKE 'l2c_test_%'")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert!(!names.contains(&stale), "the stale database is gone");
    let live_name = live.url.rsplit('/').next().unwrap().to_owned();
    assert!(
        names.contains(&live_name),
        "the live one is kept: {names:?}"
    );
    conn.close().await.unwrap();
    live.cleanup().await;
}
