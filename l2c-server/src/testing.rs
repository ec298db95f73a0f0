//! Test harness shared by every integration test: a real server on `127.0.0.1:0` over a fresh
//! database, plus helpers to create clients and fetch tokens.
//!
//! ```no_run
//! use l2c_core::{Scope, Scopes};
//! use l2c_server::testing::{Backend, TestServer};
//!
//! # async fn t() {
//! for backend in Backend::available() {
//!     let server = TestServer::start(backend).await;
//!     let client = server.create_client(Scopes::one(Scope::OrdersRead)).await;
//!     let token = server.token(&client).await;
//!     let res = server
//!         .http()
//!         .get(server.url("/api/mobile/unknown"))
//!         .bearer_auth(&token)
//!         .send()
//!         .await
//!         .unwrap();
//!     assert_eq!(res.status(), 404);
//!     server.stop().await;
//! }
//! # }
//! ```
//!
//! PostgreSQL runs only when `L2C_TEST_DATABASE_URL` is set: each server then gets its own
//! uniquely named database, dropped when the server stops (best effort).

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::missing_panics_doc
)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use l2c_core::Scopes;
use l2c_core::clock::Clock;
use sqlx::Connection;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::state::AppState;
use crate::store::{Db, NewClient};
use crate::{Server, server};

/// The variable naming the PostgreSQL server tests may create databases on.
pub const PG_ENV: &str = "L2C_TEST_DATABASE_URL";

/// Which database a test server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A fresh SQLite file in the temp directory.
    Sqlite,
    /// A fresh database on `L2C_TEST_DATABASE_URL`.
    Postgres,
}

impl Backend {
    /// SQLite always; PostgreSQL when `L2C_TEST_DATABASE_URL` is set (otherwise a `skipping:`
    /// line is printed).
    pub fn available() -> Vec<Backend> {
        let mut v = vec![Backend::Sqlite];
        if std::env::var(PG_ENV).is_ok_and(|u| !u.is_empty()) {
            v.push(Backend::Postgres);
        } else {
            eprintln!("skipping PostgreSQL: {PG_ENV} not set");
        }
        v
    }
}

/// A fresh, empty database; removed (file) or dropped (PostgreSQL) by [`TestDb::cleanup`].
///
/// Its name carries the creating process's id (`l2c_test_p<pid>_<uuid>`), so a database that a
/// test forgot to clean up (or a panic left behind) is dropped by the next process that creates
/// one on the same server once its creator is gone ([`sweep_stale_databases`]), instead of
/// piling up on a shared server run after run.
#[derive(Debug, Clone)]
pub struct TestDb {
    pub url: String,
    pub backend: Backend,
    sqlite_path: Option<PathBuf>,
    pg: Option<(String, String)>,
}

impl TestDb {
    /// Creates the database.
    pub async fn create(backend: Backend) -> TestDb {
        let name = test_db_name();
        match backend {
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!("{name}.db"));
                TestDb {
                    url: format!("sqlite://{}?mode=rwc", path.display()),
                    backend,
                    sqlite_path: Some(path),
                    pg: None,
                }
            }
            Backend::Postgres => {
                let admin = std::env::var(PG_ENV).expect("L2C_TEST_DATABASE_URL");
                Self::create_on_postgres(&admin).await
            }
        }
    }

    /// Creates a fresh, uniquely named database on the PostgreSQL server `admin_url` points
    /// at (e.g. a throw-away server a fault test stops and restarts).
    pub async fn create_on_postgres(admin_url: &str) -> TestDb {
        let name = test_db_name();
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(admin_url)
            .await
            .expect("connect to the PostgreSQL admin URL");
        // The first PostgreSQL database a process creates sweeps up what ended processes left.
        static SWEPT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if !SWEPT.swap(true, std::sync::atomic::Ordering::Relaxed) {
            sweep_stale_databases(&mut conn).await;
        }
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let _ = conn.close().await;
        TestDb {
            url: replace_db_name(admin_url, &name),
            backend: Backend::Postgres,
            sqlite_path: None,
            pg: Some((admin_url.to_owned(), name)),
        }
    }

    /// Deletes the database (best effort).
    pub async fn cleanup(&self) {
        if let Some(path) = &self.sqlite_path {
            for suffix in ["", "-wal", "-shm"] {
                let mut p = path.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(p);
            }
        }
        if let Some((admin, name)) = &self.pg {
            if let Ok(mut conn) = sqlx::AnyConnection::connect(admin).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await;
                let _ = conn.close().await;
            }
        }
    }
}

/// `l2c_test_p<this process's id>_<uuid>`.
fn test_db_name() -> String {
    format!(
        "l2c_test_p{}_{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    )
}

/// The id of the process that created the test database `name`, if it is one.
fn creator_pid(name: &str) -> Option<u32> {
    let (pid, _) = name.strip_prefix("l2c_test_p")?.split_once('_')?;
    pid.parse().ok()
}

/// Drops the test databases on `admin`'s server whose creating process has ended (their test
/// never cleaned up). Linux only (it asks `/proc`); elsewhere nothing is dropped. Returns the
/// names dropped. It assumes the test processes using that server share this machine's process
/// ids (one machine, one pid namespace): test runs in separate containers must not share a
/// PostgreSQL server through this harness.
pub async fn sweep_stale_databases(admin: &mut sqlx::AnyConnection) -> Vec<String> {
    if !std::path::Path::new("/proc/self").exists() {
        return Vec::new();
    }
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT datname::text FROM pg_database WHERE datname LIKE 'l2c\\_test\\_p%'",
    )
    .fetch_all(&mut *admin)
    .await
    .unwrap_or_default();
    let mut dropped = Vec::new();
    for name in names {
        let Some(pid) = creator_pid(&name) else {
            continue;
        };
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        if sqlx::query(&drop).execute(&mut *admin).await.is_ok() {
            dropped.push(name);
        }
    }
    dropped
}

fn replace_db_name(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// Credentials of a client created for a test.
#[derive(Debug, Clone)]
pub struct TestClient {
    pub id: String,
    pub secret: String,
    pub scopes: Scopes,
}

/// The variable naming the Redis server tests may use (each under its own random prefix).
pub const REDIS_ENV: &str = "L2C_TEST_REDIS_URL";

/// `L2C_TEST_REDIS_URL`, or `None` after printing a `skipping:` line naming `what`.
pub fn redis_url(what: &str) -> Option<String> {
    match std::env::var(REDIS_ENV) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("skipping {what}: {REDIS_ENV} not set");
            None
        }
    }
}

/// A Redis key prefix no other test uses.
pub fn random_redis_prefix() -> String {
    format!("l2c-test-{}", uuid::Uuid::new_v4().simple())
}

/// How to build a test server.
#[derive(Debug, Clone)]
pub struct TestOptions {
    pub config: Config,
    pub clock: Option<Arc<dyn Clock>>,
    /// Routes added under `/api/mobile` (e.g. a slow streaming route for the concurrency cap).
    pub extra_routes: crate::ExtraRoutes,
}

impl TestOptions {
    /// Default options with the limiters, the export cap and idempotency in Redis at `url`
    /// under `prefix`.
    pub fn redis(url: &str, prefix: &str) -> Self {
        let mut options = Self::default();
        options.config.redis_url = Some(url.to_owned());
        options.config.redis_prefix = prefix.to_owned();
        options
    }
}

impl Default for TestOptions {
    fn default() -> Self {
        let config = Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            // Its own port too, so parallel tests never collide.
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            demo_client: false,
            ..Config::default()
        };
        Self {
            config,
            clock: None,
            extra_routes: crate::ExtraRoutes::default(),
        }
    }
}

/// A running server over its own database.
#[derive(Debug)]
pub struct TestServer {
    pub addr: SocketAddr,
    pub base_url: String,
    /// The metrics listener, unless the configuration turned it off.
    pub metrics_addr: Option<SocketAddr>,
    /// The cap on open connections the server runs with.
    pub max_connections: usize,
    pub db: Db,
    pub test_db: TestDb,
    pub state: AppState,
    http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// A server with default options on a fresh database of `backend`.
    pub async fn start(backend: Backend) -> TestServer {
        Self::start_with(backend, TestOptions::default()).await
    }

    /// A server with `options` on a fresh database of `backend`.
    pub async fn start_with(backend: Backend, options: TestOptions) -> TestServer {
        let test_db = TestDb::create(backend).await;
        Self::start_on(test_db, options).await
    }

    /// A server over an existing test database (e.g. to restart on the same data).
    pub async fn start_on(test_db: TestDb, mut options: TestOptions) -> TestServer {
        options.config.database_url.clone_from(&test_db.url);
        let mut db =
            Db::connect_with_acquire_timeout(&test_db.url, options.config.db_acquire_timeout)
                .await
                .expect("open test database");
        if let Some(clock) = &options.clock {
            db = db.with_clock(Arc::clone(clock));
        }
        db = db.with_data_keys(options.config.data_keys.clone());
        crate::usecases::data_keys::prepare(&db)
            .await
            .expect("seal the test database");
        let state = AppState::new(options.config, db.clone())
            .await
            .expect("app state");
        Self::start_state_with(test_db, db, state, options.extra_routes).await
    }

    /// A server over prepared state.
    pub async fn start_state(test_db: TestDb, db: Db, state: AppState) -> TestServer {
        Self::start_state_with(test_db, db, state, crate::ExtraRoutes::default()).await
    }

    /// A server over prepared state, with extra routes under `/api/mobile`.
    pub async fn start_state_with(
        test_db: TestDb,
        db: Db,
        state: AppState,
        extra: crate::ExtraRoutes,
    ) -> TestServer {
        let server = Server::bind_with(state.clone(), extra)
            .await
            .expect("bind 127.0.0.1:0");
        let addr = server.local_addr();
        let base_url = server.base_url();
        let metrics_addr = server.metrics_addr();
        let max_connections = server.max_connections();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run_until(async {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            base_url,
            metrics_addr,
            max_connections,
            db,
            test_db,
            state,
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("reqwest client"),
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// `base_url` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// `http://` + the metrics listener + `path`; panics when it is off.
    pub fn metrics_url(&self, path: &str) -> String {
        let addr = self.metrics_addr.expect("the metrics listener is on");
        format!("http://{addr}{path}")
    }

    /// A plain HTTP client (no proxy).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Registers a client with `scopes`.
    pub async fn create_client(&self, scopes: Scopes) -> TestClient {
        let (client, secret) = self
            .db
            .clients()
            .create(&NewClient::new("test", scopes))
            .await
            .expect("create client");
        TestClient {
            id: client.id.to_string(),
            secret: secret.expose().to_owned(),
            scopes,
        }
    }

    /// Registers a client with its own quota.
    pub async fn create_client_with_quota(
        &self,
        scopes: Scopes,
        quota: l2c_core::rate_limit::Quota,
    ) -> TestClient {
        let (client, secret) = self
            .db
            .clients()
            .create(&NewClient::new("test", scopes).rate_limit(quota))
            .await
            .expect("create client");
        TestClient {
            id: client.id.to_string(),
            secret: secret.expose().to_owned(),
            scopes,
        }
    }

    /// Registers a client with a chosen secret (≥ 32 bytes).
    pub async fn create_client_with_secret(&self, scopes: Scopes, secret: &str) -> TestClient {
        let client = self
            .db
            .clients()
            .create_with_secret(&NewClient::new("test", scopes), secret)
            .await
            .expect("create client");
        TestClient {
            id: client.id.to_string(),
            secret: secret.to_owned(),
            scopes,
        }
    }

    /// Exchanges the client's credentials for an access token (JSON body); panics on failure.
    pub async fn token(&self, client: &TestClient) -> String {
        let res = self
            .http
            .post(self.url("/api/oauth/token"))
            .json(&serde_json::json!({
                "grant_type": "client_credentials",
                "client_id": client.id,
                "client_secret": client.secret,
            }))
            .send()
            .await
            .expect("token request");
        assert_eq!(res.status(), 200, "token request failed");
        let body: serde_json::Value = res.json().await.expect("token response");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// Signals the server to shut down without waiting (see [`TestServer::shutdown`]).
    pub fn trigger_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Whether the server task has finished.
    pub fn is_stopped(&self) -> bool {
        self.task.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Waits for the server task to finish, returning its result.
    pub async fn join(&mut self) -> std::io::Result<()> {
        match self.task.take() {
            Some(task) => task.await.unwrap_or_else(|e| Err(std::io::Error::other(e))),
            None => Ok(()),
        }
    }

    /// Stops accepting, waits for in-flight requests, closes the pool; keeps the database.
    pub async fn shutdown(mut self) -> TestDb {
        self.stop_server().await;
        self.db.close().await;
        self.test_db.clone()
    }

    /// Stops the server and deletes its database.
    pub async fn stop(self) {
        let db = self.shutdown().await;
        db.cleanup().await;
    }

    async fn stop_server(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Prints the demo credentials the way `serve` does for a server listening on loopback (used
/// by tests of that output).
pub async fn demo_client(db: &Db, base_url: &str) -> bool {
    let loopback = std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0));
    server::create_demo_client(db, loopback, base_url)
        .await
        .expect("demo client")
}

#[cfg(test)]
mod tests {
    use super::{creator_pid, replace_db_name, test_db_name};

    #[test]
    fn a_test_database_names_its_creator() {
        assert_eq!(creator_pid(&test_db_name()), Some(std::process::id()));
        assert_eq!(creator_pid("l2c_test_p42_0123abcd"), Some(42));
        // Names of other shapes are never taken for a test database of a dead process.
        assert_eq!(creator_pid("l2c_test_0123abcd"), None);
        assert_eq!(creator_pid("l2c_test_px_0123"), None);
        assert_eq!(creator_pid("production"), None);
    }

    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            replace_db_name("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            replace_db_name("postgres://u:p@h/test?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            replace_db_name("postgres://h:5432", "x"),
            "postgres://h:5432/x"
        );
    }
}
