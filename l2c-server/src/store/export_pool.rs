//! The report exports' own pool ([`ExportPool`]), native to the backend.
//!
//! Exports read many rows. Through sqlx's `Any` driver every row is converted once more, its
//! column list included (names, type infos, one allocation per value), which cost more than
//! reading and formatting the CSV together: on 200k orders, 60% of the export's CPU time was
//! that conversion. The exports' pool therefore speaks the backend's own driver.

use std::time::Duration;

use sqlx::any::AnyConnectOptions;
use sqlx::pool::{PoolConnection, PoolOptions};
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, PgPool, Postgres, Sqlite, SqlitePool};

use super::{Backend, StoreError};

/// The report exports' own pool (see [`Db::exports`](super::Db::exports)), on the backend's
/// own driver. Cheap to clone.
#[derive(Debug, Clone)]
pub enum ExportPool {
    /// On SQLite.
    Sqlite(SqlitePool),
    /// On PostgreSQL.
    Postgres(PgPool),
}

/// A connection of an [`ExportPool`], given back when dropped.
#[derive(Debug)]
pub enum ExportConnection {
    /// On SQLite.
    Sqlite(PoolConnection<Sqlite>),
    /// On PostgreSQL.
    Postgres(PoolConnection<Postgres>),
}

impl ExportPool {
    /// A pool of at most `max` connections to the database of `options`, opened when first
    /// needed, in which waiting for a connection gives up after `acquire_timeout`. SQLite
    /// connections wait up to 5 s for a lock, as [`Db`](super::Db)'s do.
    pub(super) fn lazy(
        backend: Backend,
        options: &AnyConnectOptions,
        max: u32,
        acquire_timeout: Duration,
    ) -> Result<Self, StoreError> {
        Ok(match backend {
            Backend::Sqlite => {
                let options = SqliteConnectOptions::try_from(options)?
                    .busy_timeout(Duration::from_secs(5))
                    .disable_statement_logging();
                Self::Sqlite(pool_options(max, acquire_timeout).connect_lazy_with(options))
            }
            Backend::Postgres => {
                let options = PgConnectOptions::try_from(options)?.disable_statement_logging();
                Self::Postgres(pool_options(max, acquire_timeout).connect_lazy_with(options))
            }
        })
    }

    /// Connections open now.
    pub fn size(&self) -> u32 {
        match self {
            Self::Sqlite(p) => p.size(),
            Self::Postgres(p) => p.size(),
        }
    }

    /// Open connections not in use now.
    pub fn num_idle(&self) -> usize {
        match self {
            Self::Sqlite(p) => p.num_idle(),
            Self::Postgres(p) => p.num_idle(),
        }
    }

    /// Takes a connection, waiting up to the pool's acquire timeout.
    ///
    /// # Errors
    ///
    /// [`sqlx::Error::PoolTimedOut`] when none came free in time; a connection error.
    pub async fn acquire(&self) -> Result<ExportConnection, sqlx::Error> {
        Ok(match self {
            Self::Sqlite(p) => ExportConnection::Sqlite(p.acquire().await?),
            Self::Postgres(p) => ExportConnection::Postgres(p.acquire().await?),
        })
    }

    /// Closes the pool, waiting for checked-out connections to return.
    pub async fn close(&self) {
        match self {
            Self::Sqlite(p) => p.close().await,
            Self::Postgres(p) => p.close().await,
        }
    }
}

fn pool_options<DB: sqlx::Database>(max: u32, acquire_timeout: Duration) -> PoolOptions<DB> {
    PoolOptions::new()
        .max_connections(max.max(1))
        .acquire_timeout(acquire_timeout)
}
