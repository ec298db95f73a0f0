//! Persistence: one [`Db`] handle over SQLite or PostgreSQL, one module per aggregate.
//!
//! The server speaks portable SQL through [`sqlx::AnyPool`], so the same queries run on the
//! embedded SQLite file of a fresh checkout and on the PostgreSQL database that many replicas
//! share. The conventions every module follows:
//!
//! - placeholders are `$1`, `$2`, … (both backends accept them);
//! - ids are `TEXT`, generated in Rust;
//! - timestamps are `BIGINT` unix milliseconds, flags are `BIGINT` 0/1;
//! - [`Db::backend`] tells the rare dialect-specific query which SQL to use.
//!
//! Migrations live in `l2c-server/migrations/` and run at startup ([`Db::connect`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), l2c_server::store::StoreError> {
//! use l2c_server::store::Db;
//!
//! let db = Db::connect("sqlite://l2c.db?mode=rwc").await?;
//! let clients = db.clients().list().await?;
//! # let _ = clients; Ok(()) }
//! ```

pub mod accounts;
pub mod audit;
pub mod clients;
pub mod customers;
pub mod export_pool;
pub mod keys;
pub mod lead_sources;
pub mod lead_views;
pub mod leads;
pub mod orders;
pub mod outbox;
pub mod request_logs;
pub mod showroom;
pub mod sql;

/// The old name of [`sql`].
#[deprecated(
    since = "0.1.1",
    note = "renamed to `store::sql`; removed in the next release"
)]
pub mod domain_util {
    pub use super::sql::*;
}

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use l2c_core::clock::{Clock, SystemClock};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Connection};
use std::sync::Arc;

pub use clients::{Client, ClientStore, NewClient};
pub use export_pool::{ExportConnection, ExportPool};
pub use keys::{KeyStore, StoredKey};

/// The database engine behind a [`Db`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file (the default).
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl Backend {
    /// The backend a database URL names, or `None` for an unsupported scheme.
    pub fn from_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }

    /// The size of the connection pool [`Db::connect`] opens for this backend: 8 on SQLite
    /// (one writer at a time anyway), 16 on PostgreSQL.
    pub const fn pool_size(self) -> u32 {
        match self {
            Backend::Sqlite => 8,
            Backend::Postgres => 16,
        }
    }
}

/// Errors from the store.
///
/// `Display` never contains connection strings or secrets; the underlying driver error is kept as
/// the `source` for logs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database URL's scheme is neither `sqlite:` nor `postgres://`.
    #[error("unsupported database URL scheme (expected sqlite: or postgres://)")]
    UnsupportedUrl,
    /// The database could not be reached or a query failed.
    #[error("database error")]
    Database(#[source] sqlx::Error),
    /// Applying migrations failed.
    #[error("database migration failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// A row holds a value the server cannot interpret (e.g. an unknown scope name).
    #[error("corrupt row in `{table}`: {detail}")]
    Corrupt {
        /// The table the row came from.
        table: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// The caller passed a value the store refuses (too short a secret, empty name, …).
    #[error("{0}")]
    Invalid(String),
    /// A sealed value cannot be opened: a data key is missing, or the value was tampered with
    /// (see [`crate::seal`]).
    #[error(transparent)]
    Sealed(#[from] crate::seal::SealError),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(e)
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migrate(e)
    }
}

/// Creates a missing SQLite database file with mode `0600` before SQLite does (it would use
/// `0644` under the usual umask, leaving client secrets' hashes and signing keys readable by
/// every local user). SQLite gives the `-wal` and `-shm` files the mode of the database file.
///
/// Only for URLs that ask for creation (`mode=rwc`); an existing file keeps its mode, and
/// in-memory databases have no file.
fn create_private_sqlite_file(url: &str) -> Result<(), StoreError> {
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)?;
    let creates = options
        .to_url_lossy()
        .query_pairs()
        .any(|(k, v)| k == "mode" && v == "rwc");
    if !creates {
        return Ok(());
    }
    let path = options.get_filename();
    if path.as_os_str().is_empty() || path.exists() {
        return Ok(());
    }
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    match open.open(path) {
        Ok(_) => Ok(()),
        // Created by another process in between: keep theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Database(sqlx::Error::Io(e))),
    }
}

/// The database: a connection pool plus the backend it talks to. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    /// Where write transactions run (see [`Db::writer`]): on SQLite a pool of one connection,
    /// on PostgreSQL the same pool as `pool`.
    writer: AnyPool,
    /// The report exports' own small pool (see [`Db::exports`]).
    exports: ExportPool,
    options: AnyConnectOptions,
    backend: Backend,
    clock: Arc<dyn Clock>,
    /// Seals personal data and secrets (plain without `L2C_DATA_KEY`).
    data_keys: crate::seal::DataKeys,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// How full PostgreSQL fills new pages of `webhook_deliveries`, in percent (see
/// [`Db::migrate`]): the rest is room for the claims' row versions.
const DELIVERIES_FILLFACTOR: u8 = 60;

/// How long setting [`DELIVERIES_FILLFACTOR`] waits for the table's lock at startup.
const FILLFACTOR_LOCK_TIMEOUT: Duration = Duration::from_secs(2);

/// The migrations in `l2c-server/migrations/`, embedded at compile time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Db {
    /// Connects to `url` (`sqlite://…` or `postgres://…`) and applies pending migrations.
    ///
    /// SQLite databases are switched to WAL mode (readers do not block the writer) and every
    /// connection waits up to 5 s for a lock instead of failing with `SQLITE_BUSY`.
    ///
    /// # Errors
    ///
    /// [`StoreError::UnsupportedUrl`] for another scheme, [`StoreError::Database`] when the
    /// database cannot be reached, [`StoreError::Migrate`] when a migration fails.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with_acquire_timeout(url, crate::config::DEFAULT_DB_ACQUIRE_TIMEOUT).await
    }

    /// [`Db::connect`] with a pool in which a request gives up waiting for a connection after
    /// `acquire_timeout` (`--db-acquire-timeout`): all connections in use, or the database
    /// unreachable (the pool keeps trying to connect until then). The request is then answered
    /// 503 `database_unavailable` (see [`crate::error`]).
    ///
    /// # Errors
    ///
    /// As [`Db::connect`].
    pub async fn connect_with_acquire_timeout(
        url: &str,
        acquire_timeout: Duration,
    ) -> Result<Self, StoreError> {
        let db = Self::open(url, acquire_timeout).await?;
        db.migrate().await?;
        Ok(db)
    }

    /// Connects without applying migrations (for tools that only read).
    ///
    /// # Errors
    ///
    /// As [`Db::connect`], without the migration step.
    pub async fn connect_without_migrating(url: &str) -> Result<Self, StoreError> {
        Self::open(url, crate::config::DEFAULT_DB_ACQUIRE_TIMEOUT).await
    }

    async fn open(url: &str, acquire_timeout: Duration) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url).ok_or(StoreError::UnsupportedUrl)?;
        let options = AnyConnectOptions::from_str(url)?.disable_statement_logging();
        if backend == Backend::Sqlite {
            create_private_sqlite_file(url)?;
            // WAL is a persistent property of the file. Switching into it needs an exclusive lock
            // that busy_timeout does not wait for, so do it once, on one connection, before the
            // pool opens more.
            let mut conn = sqlx::AnyConnection::connect_with(&options).await?;
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&mut conn)
                .await?;
            conn.close().await?;
        }
        let pool = pool_options(backend, backend.pool_size(), acquire_timeout)
            .connect_with(options.clone())
            .await?;
        let writer = match backend {
            // SQLite lets one transaction write at a time. Sixteen requests each holding a pooled
            // connection and waiting in SQLite's busy handler (which sleeps and retries rather
            // than handing the lock over) gave order sync a p99 of 1.09 s against a p50 of 7 ms;
            // one write connection, handed over in arrival order by the pool, queues them
            // instead. Readers keep the other connections (WAL: they never wait for the writer).
            Backend::Sqlite => {
                pool_options(backend, 1, acquire_timeout)
                    .connect_with(options.clone())
                    .await?
            }
            Backend::Postgres => pool.clone(),
        };
        let exports = ExportPool::lazy(
            backend,
            &options,
            crate::config::DEFAULT_EXPORT_DB_CONNECTIONS,
            crate::config::DEFAULT_EXPORT_STALL_TIMEOUT,
        )?;
        Ok(Self {
            pool,
            writer,
            exports,
            options,
            backend,
            clock: Arc::new(SystemClock),
            data_keys: crate::seal::DataKeys::plain(),
        })
    }

    /// The most connections the pool opens (counted in the file-descriptor reserve of the
    /// connection cap, see [`crate::connections`]).
    pub fn max_connections(&self) -> u32 {
        let writer = match self.backend {
            Backend::Sqlite => self.writer.options().get_max_connections(),
            Backend::Postgres => 0,
        };
        self.pool.options().get_max_connections() + writer
    }

    /// Applies pending migrations (and, on PostgreSQL, sets the storage of the webhook
    /// deliveries, best effort: see `leave_room_for_claims`).
    ///
    /// # Errors
    ///
    /// [`StoreError::Migrate`] when a migration fails or the recorded ones differ from ours.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        if self.backend == Backend::Postgres {
            self.leave_room_for_claims().await;
        }
        Ok(())
    }

    /// PostgreSQL: fills new pages of `webhook_deliveries` to [`DELIVERIES_FILLFACTOR`] %, so a
    /// claim (which changes only the lease, no indexed column) can write the row's new version
    /// on its own page, a heap-only tuple: no entry in the table's six indexes, where a full
    /// page sent every claim's row to another page and into every index. Pages written before
    /// keep their fill until rewritten; SQLite updates in place.
    ///
    /// Best effort, and only where no fillfactor is set (one a DBA chose stays; replicas starting
    /// together read the catalogue and take no lock once it is set): a role that does not own
    /// the table, or a lock not had within [`FILLFACTOR_LOCK_TIMEOUT`] (a long `VACUUM` on the
    /// table), leaves a warning with the statement to run, and the server starts.
    async fn leave_room_for_claims(&self) {
        let set = sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_class c, unnest(c.reloptions) AS o \
             WHERE c.oid = 'webhook_deliveries'::regclass AND o LIKE 'fillfactor=%')",
        )
        .fetch_one(&self.pool)
        .await;
        if matches!(set, Ok(true)) {
            return;
        }
        let alter =
            format!("ALTER TABLE webhook_deliveries SET (fillfactor = {DELIVERIES_FILLFACTOR})");
        let done = async {
            let mut tx = self.pool.begin().await?;
            sqlx::query(&format!(
                "SET LOCAL lock_timeout = '{}ms'",
                FILLFACTOR_LOCK_TIMEOUT.as_millis()
            ))
            .execute(&mut *tx)
            .await?;
            sqlx::query(&alter).execute(&mut *tx).await?;
            tx.commit().await
        }
        .await;
        if let Err(e) = set.and(done) {
            tracing::warn!(
                error = %e,
                statement = %alter,
                "could not leave room for the webhook claims on their pages; the dispatcher \
                 works without it, a little slower on PostgreSQL (run the statement as the \
                 table's owner)"
            );
        }
    }

    /// Gives report exports a pool of their own of `max_connections`, in which waiting for a
    /// connection gives up after `acquire_timeout` (`--export-db-connections`; the default is
    /// [`DEFAULT_EXPORT_DB_CONNECTIONS`](crate::config::DEFAULT_EXPORT_DB_CONNECTIONS)
    /// connections, waiting up to the default stall timeout). Connections are opened when first
    /// needed.
    #[must_use]
    pub fn with_export_connections(
        mut self,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> Self {
        // The options were accepted by `open` already, for the same backend.
        if let Ok(exports) = ExportPool::lazy(
            self.backend,
            &self.options,
            max_connections,
            acquire_timeout,
        ) {
            self.exports = exports;
        }
        self
    }

    /// Replaces the clock that stamps `created_at` columns (tests).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Seals personal data and secrets with `keys` (`L2C_DATA_KEY`); call
    /// [`usecases::data_keys::prepare`](crate::usecases::data_keys::prepare) before serving.
    #[must_use]
    pub fn with_data_keys(mut self, keys: crate::seal::DataKeys) -> Self {
        self.data_keys = keys;
        self
    }

    /// The data keys every sealed column is written and read with.
    pub fn data_keys(&self) -> &crate::seal::DataKeys {
        &self.data_keys
    }

    /// The clock that stamps what the store writes.
    pub fn clock(&self) -> Arc<dyn Clock> {
        Arc::clone(&self.clock)
    }

    /// The current time in unix milliseconds, from the store's clock.
    pub fn now_millis(&self) -> i64 {
        unix_millis(self.clock.now())
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The connection pool, for modules that add their own queries.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The pool write transactions begin on ([`sql::begin_write`]).
    ///
    /// On SQLite it holds a single connection: SQLite runs one write transaction at a time, so
    /// writers wait their turn for this connection, in arrival order, rather than each holding a
    /// connection of [`Db::pool`] while retrying the lock in SQLite's busy handler. On
    /// PostgreSQL, where writers run concurrently, it is [`Db::pool`] itself.
    pub fn writer(&self) -> &AnyPool {
        &self.writer
    }

    /// The report exports' own pool, apart from [`Db::pool`]: however many exports run, and
    /// however slowly they are read, they hold at most its few connections (they wait for each
    /// other there) and never one of the API's.
    pub fn exports(&self) -> &ExportPool {
        &self.exports
    }

    /// Whether the database answers a trivial query (used by `/readyz`).
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Closes the pools, waiting for checked-out connections to return.
    pub async fn close(&self) {
        self.exports.close().await;
        self.writer.close().await;
        self.pool.close().await;
    }

    /// The clients (partner applications).
    pub fn clients(&self) -> ClientStore<'_> {
        ClientStore::new(self)
    }

    /// The token signing keys.
    pub fn keys(&self) -> KeyStore<'_> {
        KeyStore::new(self)
    }
}

/// A pool of `max` connections that waits up to `acquire_timeout` for one; SQLite connections
/// wait up to 5 s for a lock instead of failing with `SQLITE_BUSY`.
fn pool_options(backend: Backend, max: u32, acquire_timeout: Duration) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(acquire_timeout)
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    sqlx::query("PRAGMA busy_timeout = 5000")
                        .execute(&mut *conn)
                        .await?;
                }
                Ok(())
            })
        })
}

/// Unix milliseconds of `t` (0 before the epoch), the timestamp format of every table.
pub fn unix_millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The `SystemTime` of a unix-milliseconds column value.
pub fn from_unix_millis(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}
