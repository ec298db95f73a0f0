//! Orders synced from ERPs.
//!
//! | module | what |
//! |---|---|
//! | [`sync`] | the writes of an order sync: lock the stored order, insert or update it, its history and payments (the decisions are the order sync use case's, [`crate::usecases::order_sync`]) |
//! | this module | reads: the status view ([`OrderStore::status_view`]), counts |
//! | [`export`] | the CSV export walk ([`ExportWalk`]) and its line format |

pub mod export;
pub mod sync;

use l2c_core::ClientId;
use l2c_core::api::OrderId;
use l2c_core::api::orders::{OrderAmounts, OrderHistoryEntry, OrderStatusView};
use l2c_core::api::status::{OrderStatus, PaymentStatus};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::sql::millis_to_cst;
use super::{Db, StoreError};

pub use export::{EXPORT_COLUMNS, ExportBatch, ExportRow, ExportWalk, write_export_line};

fn corrupt(detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        table: "orders",
        detail: detail.into(),
    }
}

fn parse_status(row: &AnyRow, col: &str) -> Result<OrderStatus, StoreError> {
    let s: String = row.try_get(col)?;
    s.parse().map_err(|e| corrupt(format!("{col}: {e}")))
}

fn parse_payment_status(row: &AnyRow, col: &str) -> Result<PaymentStatus, StoreError> {
    let s: String = row.try_get(col)?;
    s.parse().map_err(|e| corrupt(format!("{col}: {e}")))
}

/// Order reads. Get one with [`Db::orders`].
#[derive(Debug, Clone, Copy)]
pub struct OrderStore<'a> {
    db: &'a Db,
}

impl Db {
    /// The orders.
    pub fn orders(&self) -> OrderStore<'_> {
        OrderStore { db: self }
    }
}

impl OrderStore<'_> {
    /// The status view of one of `client`'s own orders, by platform id or by its
    /// `externalOrderNo`; `None` when the client has no such order. Other clients' orders are
    /// never shown, whatever the client's grants (the all-customers grant widens customers
    /// only).
    ///
    /// # Errors
    ///
    /// [`StoreError`] when a query fails or a row is broken.
    pub async fn status_view(
        &self,
        client: &ClientId,
        id_or_external_no: &str,
    ) -> Result<Option<OrderStatusView>, StoreError> {
        let mut conn = self.db.pool().acquire().await?;
        let row = sqlx::query(
            "SELECT id, external_order_no, status, payment_status, total_fen, deposit_fen, \
             paid_fen, currency, version, updated_at FROM orders \
             WHERE client_id = $2 AND (id = $1 OR external_order_no = $1) \
             ORDER BY CASE WHEN id = $1 THEN 0 ELSE 1 END LIMIT 1",
        )
        .bind(id_or_external_no)
        .bind(client.as_str())
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let id: String = row.try_get("id")?;
        let mut view = OrderStatusView::new(
            OrderId::new(id.clone()),
            row.try_get::<String, _>("external_order_no")?,
            parse_status(&row, "status")?,
            parse_payment_status(&row, "payment_status")?,
            OrderAmounts::cny(
                row.try_get("total_fen")?,
                row.try_get("deposit_fen")?,
                row.try_get("paid_fen")?,
            ),
            row.try_get("version")?,
            millis_to_cst(row.try_get("updated_at")?),
        );
        view.amounts.currency = row.try_get("currency")?;
        let history = sqlx::query(
            "SELECT status, payment_status, version, changed_at FROM order_history \
             WHERE order_id = $1 ORDER BY version",
        )
        .bind(&id)
        .fetch_all(&mut *conn)
        .await?;
        for h in &history {
            view.history.push(OrderHistoryEntry::new(
                parse_status(h, "status")?,
                parse_payment_status(h, "payment_status")?,
                h.try_get("version")?,
                millis_to_cst(h.try_get("changed_at")?),
            ));
        }
        Ok(Some(view))
    }

    /// How many payments an order has recorded.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] when the query fails.
    pub async fn payment_count(&self, order_id: &OrderId) -> Result<i64, StoreError> {
        Ok(
            sqlx::query("SELECT COUNT(*) AS n FROM payments WHERE order_id = $1")
                .bind(order_id.as_str())
                .fetch_one(self.db.pool())
                .await?
                .try_get("n")?,
        )
    }

    /// How many orders are stored.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] when the query fails.
    pub async fn count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM orders")
            .fetch_one(self.db.pool())
            .await?
            .try_get("n")?)
    }
}
