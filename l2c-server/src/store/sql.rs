//! SQL plumbing shared by the stores: write transactions ([`begin_write`]), `LIKE` escaping
//! ([`like_escape`]) and the conversion of stored time columns to China Standard Time
//! ([`millis_to_cst`], [`parse_stored_time`]).

use chrono::{DateTime, FixedOffset, TimeZone};
use sqlx::{Any, Transaction};

use super::{Backend, Db, StoreError};

/// China Standard Time, the offset every platform timestamp is reported in.
pub const CST: FixedOffset = match FixedOffset::east_opt(8 * 3600) {
    Some(offset) => offset,
    None => panic!("+08:00 is a valid offset"),
};

/// A unix-milliseconds column value as an RFC 3339 time in `+08:00`.
pub fn millis_to_cst(ms: i64) -> DateTime<FixedOffset> {
    CST.timestamp_millis_opt(ms)
        .single()
        .unwrap_or_else(|| DateTime::<chrono::Utc>::default().with_timezone(&CST))
}

/// A stored RFC 3339 text (a partner-supplied time) parsed back; the epoch in `+08:00` if broken.
pub fn parse_stored_time(
    table: &'static str,
    s: &str,
) -> Result<DateTime<FixedOffset>, StoreError> {
    DateTime::parse_from_rfc3339(s).map_err(|e| StoreError::Corrupt {
        table,
        detail: format!("bad timestamp: {e}"),
    })
}

/// Begins a transaction that will write, on [`Db::writer`]: on SQLite the single write
/// connection, waited for in arrival order, then `BEGIN IMMEDIATE`, so the transaction takes the
/// write lock up front instead of failing to upgrade a read lock later (the lock is then free
/// but for the rare write outside this function, which `busy_timeout` waits for).
///
/// Never call it while the same task holds a transaction from it: on SQLite the second call
/// would wait for the first's connection.
///
/// # Errors
///
/// [`StoreError::Database`] when the transaction cannot start.
pub async fn begin_write(db: &Db) -> Result<Transaction<'static, Any>, StoreError> {
    begin_on_writer(db, Durability::Durable).await
}

/// [`begin_write`] for the webhook dispatcher's bookkeeping (claiming deliveries, recording
/// attempts), whose commit does not wait for the disk: on PostgreSQL
/// `SET LOCAL synchronous_commit TO OFF`, on SQLite `PRAGMA synchronous = NORMAL` (WAL: the
/// commit is not flushed; the next durable commit flushes it with its own), each in the same
/// round trip as the `BEGIN`. [`begin_write`] sets `synchronous = FULL` again on the write
/// connection, so every business transaction is flushed as before.
///
/// What such a commit can lose is the last fraction of a second of bookkeeping, and only if
/// the database server or the machine crashes (not this process): a claim or a recorded
/// attempt forgotten, so a delivery is sent again — the at-least-once the receivers already
/// deduplicate on `webhook-id`. The events and deliveries themselves are written by the
/// business transactions, durably. Under load the dispatcher commits a claim and a record
/// batch every few milliseconds; a disk flush on each (0.5 ms at the median on this project's
/// VM, 5 ms at p99) held it to a few thousand events per second.
///
/// On PostgreSQL the transaction also plans by index only (`SET LOCAL enable_seqscan`,
/// `enable_bitmapscan`, `enable_sort`, `enable_hashjoin`, `enable_mergejoin` off, in the same
/// round trip), so the bookkeeping statements can stay prepared: each of them looks rows up by
/// key or walks the due index in order, and that is the plan whatever the statistics say. Left
/// to them, a table not analysed yet (a new database, or an outbox filled faster than
/// autovacuum's pace) got a claim that read every pending row by bitmap and sorted them (19 ms
/// to claim 128 of 20,000 pending, against 1.7 ms in index order: the cost grew with the
/// backlog it was draining), and a generic plan that hash-joined a sequential scan of the
/// deliveries; planning each batch anew instead cost 0.3–0.7 ms a statement. `jit` is off too:
/// a statement that had no index to use would carry the disabled methods' cost, far above the
/// JIT threshold, and be compiled at each run. Only run statements that look up by key here.
///
/// # Errors
///
/// [`StoreError::Database`] when the transaction cannot start.
pub async fn begin_bookkeeping(db: &Db) -> Result<Transaction<'static, Any>, StoreError> {
    begin_on_writer(db, Durability::Relaxed).await
}

/// Whether a commit waits for the WAL to reach the disk (PostgreSQL).
#[derive(Debug, Clone, Copy)]
enum Durability {
    Durable,
    Relaxed,
}

async fn begin_on_writer(
    db: &Db,
    durability: Durability,
) -> Result<Transaction<'static, Any>, StoreError> {
    let pool = db.writer().clone();
    let backend = db.backend();
    // Begun in a task of its own, so a caller that is cancelled (its client went away) cannot
    // interrupt the begin halfway: sqlx runs SQLite's `BEGIN IMMEDIATE`, then awaits once more to
    // check it, and a future dropped in between returns the connection to the pool inside a
    // transaction nobody will end, holding the write lock, and every later begin on it fails.
    // The task always finishes; if nobody awaits it any more, the transaction it made is dropped
    // there and rolled back.
    let begun = tokio::spawn(async move {
        match (backend, durability) {
            // The write connection keeps the last `synchronous` set: each begin sets its own.
            (Backend::Sqlite, Durability::Durable) => {
                pool.begin_with("PRAGMA synchronous = FULL; BEGIN IMMEDIATE")
                    .await
            }
            (Backend::Sqlite, Durability::Relaxed) => {
                pool.begin_with("PRAGMA synchronous = NORMAL; BEGIN IMMEDIATE")
                    .await
            }
            (Backend::Postgres, Durability::Durable) => pool.begin().await,
            (Backend::Postgres, Durability::Relaxed) => {
                pool.begin_with(
                    "BEGIN; SET LOCAL synchronous_commit TO OFF; \
                     SET LOCAL enable_seqscan TO off; SET LOCAL enable_bitmapscan TO off; \
                     SET LOCAL enable_sort TO off; SET LOCAL enable_hashjoin TO off; \
                     SET LOCAL enable_mergejoin TO off; SET LOCAL jit TO off",
                )
                .await
            }
        }
    });
    match begun.await {
        Ok(tx) => Ok(tx?),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Only when the runtime shuts down.
        Err(_) => Err(StoreError::Database(sqlx::Error::PoolClosed)),
    }
}

/// `sql` as a query that is planned at each run on PostgreSQL (not kept prepared), for the
/// statements whose cached generic plan would stay wrong as a table grows from empty: the
/// lookups by a unique key (orders by `(client_id, external_order_no)`, leads by `(client_id,
/// source, external_lead_id)`). (The dispatcher's statements stay prepared: their transactions
/// plan by index only, see [`begin_bookkeeping`].)
///
/// A prepared statement may switch to a generic plan from its sixth run and keep it for the
/// connection's life. On a table that has never been analysed (a new database), that plan ties
/// between the unique index and another index on `client_id` (`orders_client_export`,
/// `leads_client_created`) and may take the latter: then every row of the client is read to
/// find one, and each sync or intake gets slower as the table grows (the benchmark: lead intake
/// fell from 2,018 to 467 per second on a fresh database; `tests/query_plans.rs` saw 20,000 rows
/// read per lookup) until autovacuum first analyses the table. A plan made at each run sees the
/// table as it is and takes the unique index. SQLite plans once per prepare and picks the
/// unique index either way, so its statement stays cached.
pub fn planned_each_run<'q>(
    sql: &'q str,
    backend: Backend,
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>> {
    sqlx::query(sql).persistent(backend == Backend::Sqlite)
}

/// The backend `conn` speaks.
pub fn backend_of(conn: &sqlx::AnyConnection) -> Backend {
    if conn.backend_name() == <sqlx::Postgres as sqlx::Database>::NAME {
        Backend::Postgres
    } else {
        Backend::Sqlite
    }
}

/// `$1, $2, …, $n`.
pub(crate) fn placeholders(n: usize) -> String {
    placeholders_from(1, n)
}

/// `$first, $first+1, …`: `n` placeholders after `first - 1` other parameters.
pub(crate) fn placeholders_from(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `query` with every id bound in order (for [`placeholders`]), e.g. the ids of an `IN (…)` list.
pub(crate) fn bind_all<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ids: &'q [String],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    ids.iter().fold(query, |query, id| query.bind(id))
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
pub fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
