//! The writes of an order sync, each inside the caller's transaction. Persistence only: which
//! of them run, and what a refusal is, is decided by the order sync use case
//! ([`crate::usecases::order_sync`]).

use l2c_core::ClientId;
use l2c_core::api::orders::{Payment, SyncOrder};
use l2c_core::api::status::{OrderStatus, PaymentStatus};
use sqlx::{AnyConnection, Row};

use super::{corrupt, parse_payment_status, parse_status};
use crate::store::sql::planned_each_run;
use crate::store::{Backend, StoreError};

// The statements of an order sync, public so that the real-work benchmark's bare baseline
// (`l2c-bench/src/bin/work.rs`) runs exactly these and cannot drift from them.

/// [`lock_for_sync`] on SQLite: the stored order a sync compares the body with.
pub const SELECT_FOR_SYNC_SQL: &str = "SELECT id, customer_id, status, payment_status, version \
     FROM orders WHERE client_id = $1 AND external_order_no = $2";
/// [`lock_for_sync`] on PostgreSQL: [`SELECT_FOR_SYNC_SQL`], the row locked.
pub const SELECT_FOR_SYNC_LOCKED_SQL: &str = "SELECT id, customer_id, status, payment_status, \
     version FROM orders WHERE client_id = $1 AND external_order_no = $2 FOR UPDATE";
/// [`insert`].
pub const INSERT_ORDER_SQL: &str = "INSERT INTO orders (id, client_id, external_order_no, \
     customer_id, status, payment_status, total_fen, deposit_fen, paid_fen, currency, items, \
     milestones, version, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
     ON CONFLICT (client_id, external_order_no) DO NOTHING";
/// [`update_if_newer`].
pub const UPDATE_ORDER_SQL: &str = "UPDATE orders SET status = $1, payment_status = $2, \
     total_fen = $3, deposit_fen = $4, paid_fen = $5, currency = $6, items = $7, milestones = $8, \
     version = $9, updated_at = $10 WHERE id = $11 AND version < $9";
/// [`insert_history`].
pub const INSERT_HISTORY_SQL: &str = "INSERT INTO order_history (order_id, version, status, \
     payment_status, changed_at) VALUES ($1, $2, $3, $4, $5)";
/// [`insert_payment`].
pub const INSERT_PAYMENT_SQL: &str = "INSERT INTO payments (id, client_id, order_id, kind, \
     method, amount_fen, channel_transaction_id, paid_at, recorded_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
     ON CONFLICT (client_id, method, channel_transaction_id) DO NOTHING";
/// [`payment_owner`].
pub const PAYMENT_OWNER_SQL: &str = "SELECT order_id FROM payments \
     WHERE client_id = $1 AND method = $2 AND channel_transaction_id = $3";

/// The statement [`lock_for_sync`] runs on `backend`, with
/// [`crate::store::sql::planned_each_run`].
pub const fn lock_sql(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => SELECT_FOR_SYNC_SQL,
        Backend::Postgres => SELECT_FOR_SYNC_LOCKED_SQL,
    }
}

/// The stored state of an order a sync compares the body with.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredOrder {
    /// `ord_…`.
    pub id: String,
    /// The order's customer.
    pub customer_id: String,
    /// The fulfilment status.
    pub status: OrderStatus,
    /// The payment status.
    pub payment_status: PaymentStatus,
    /// The last applied version.
    pub version: i64,
}

/// The order `(client, external_order_no)`, locked until the transaction ends, or `None`.
///
/// On PostgreSQL the row is locked (`FOR UPDATE`) so the transition is checked against the
/// state it replaces; SQLite transactions from
/// [`begin_write`](crate::store::sql::begin_write) already hold the database's write lock.
///
/// # Errors
///
/// [`StoreError`] when the query fails or the row is broken.
pub async fn lock_for_sync(
    conn: &mut AnyConnection,
    client: &ClientId,
    external_order_no: &str,
) -> Result<Option<StoredOrder>, StoreError> {
    let backend = crate::store::sql::backend_of(conn);
    let row = planned_each_run(lock_sql(backend), backend)
        .bind(client.as_str())
        .bind(external_order_no)
        .fetch_optional(&mut *conn)
        .await?;
    match row {
        Some(r) => Ok(Some(StoredOrder {
            id: r.try_get("id")?,
            customer_id: r.try_get("customer_id")?,
            status: parse_status(&r, "status")?,
            payment_status: parse_payment_status(&r, "payment_status")?,
            version: r.try_get("version")?,
        })),
        None => Ok(None),
    }
}

/// Inserts order `id` of `client` from `body`, for `customer_id`. `false` (nothing written)
/// when another transaction created `(client, externalOrderNo)` first.
///
/// # Errors
///
/// [`StoreError`].
pub async fn insert(
    conn: &mut AnyConnection,
    id: &str,
    client: &ClientId,
    body: &SyncOrder,
    customer_id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let items = serde_json::to_string(&body.items).map_err(|e| corrupt(e.to_string()))?;
    let milestones = serde_json::to_string(&body.milestones).map_err(|e| corrupt(e.to_string()))?;
    let inserted = sqlx::query(INSERT_ORDER_SQL)
        .bind(id)
        .bind(client.as_str())
        .bind(&body.external_order_no)
        .bind(customer_id)
        .bind(body.status.as_str())
        .bind(body.payment_status.as_str())
        .bind(body.amounts.total)
        .bind(body.amounts.deposit)
        .bind(body.amounts.paid)
        .bind(&body.amounts.currency)
        .bind(items)
        .bind(milestones)
        .bind(body.version)
        .bind(now)
        .bind(now)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok(inserted == 1)
}

/// Overwrites order `order_id` with `body` if `body.version` is above the stored one; `false`
/// (nothing written) otherwise.
///
/// The version check is in the `WHERE` clause, so a concurrent sync that committed a newer
/// version in between makes this one a no-op instead of a lost update.
///
/// # Errors
///
/// [`StoreError`].
pub async fn update_if_newer(
    conn: &mut AnyConnection,
    order_id: &str,
    body: &SyncOrder,
    now: i64,
) -> Result<bool, StoreError> {
    let items = serde_json::to_string(&body.items).map_err(|e| corrupt(e.to_string()))?;
    let milestones = serde_json::to_string(&body.milestones).map_err(|e| corrupt(e.to_string()))?;
    let updated = sqlx::query(UPDATE_ORDER_SQL)
        .bind(body.status.as_str())
        .bind(body.payment_status.as_str())
        .bind(body.amounts.total)
        .bind(body.amounts.deposit)
        .bind(body.amounts.paid)
        .bind(&body.amounts.currency)
        .bind(items)
        .bind(milestones)
        .bind(body.version)
        .bind(now)
        .bind(order_id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok(updated != 0)
}

/// Adds the history row of version `body.version` of order `order_id`.
///
/// # Errors
///
/// [`StoreError`].
pub async fn insert_history(
    conn: &mut AnyConnection,
    order_id: &str,
    body: &SyncOrder,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(INSERT_HISTORY_SQL)
        .bind(order_id)
        .bind(body.version)
        .bind(body.status.as_str())
        .bind(body.payment_status.as_str())
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Records payment `p` as `id` on order `order_id` of `client`; `false` (nothing written) when
/// `(method, channelTransactionId)` is already recorded for `client` (see [`payment_owner`]).
///
/// # Errors
///
/// [`StoreError`].
pub async fn insert_payment(
    conn: &mut AnyConnection,
    id: &str,
    client: &ClientId,
    order_id: &str,
    p: &Payment,
    now: i64,
) -> Result<bool, StoreError> {
    let inserted = sqlx::query(INSERT_PAYMENT_SQL)
        .bind(id)
        .bind(client.as_str())
        .bind(order_id)
        .bind(p.kind.as_str())
        .bind(p.method.as_str())
        .bind(p.amount)
        .bind(&p.channel_transaction_id)
        .bind(p.paid_at.to_rfc3339())
        .bind(now)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok(inserted == 1)
}

/// The order of `client` on which payment `p`'s `(method, channelTransactionId)` is recorded.
///
/// # Errors
///
/// [`StoreError`]; [`StoreError::Database`] (row not found) when it is recorded nowhere.
pub async fn payment_owner(
    conn: &mut AnyConnection,
    client: &ClientId,
    p: &Payment,
) -> Result<String, StoreError> {
    Ok(sqlx::query(PAYMENT_OWNER_SQL)
        .bind(client.as_str())
        .bind(p.method.as_str())
        .bind(&p.channel_transaction_id)
        .fetch_one(&mut *conn)
        .await?
        .try_get("order_id")?)
}
