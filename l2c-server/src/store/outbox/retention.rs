//! Retention: finished deliveries and orphaned events older than `--webhook-retention`.

use sqlx::Row;

use super::WebhookStore;
use crate::store::sql::begin_write;
use crate::store::sql::{bind_all, placeholders};
use crate::store::{Backend, StoreError};

/// What one [`WebhookStore::purge`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Finished deliveries (with their attempts).
    pub deliveries: u64,
    /// Events no delivery referred to any more.
    pub events: u64,
}

impl WebhookStore<'_> {
    /// Deletes up to `limit` finished deliveries (succeeded or failed) last updated before
    /// `cutoff` (unix ms) with their attempts, then up to `limit` events created before `cutoff`
    /// that no delivery refers to any more. Pending deliveries and their events are never
    /// touched, however old. Safe to run from several dispatchers at once.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub async fn purge(&self, cutoff: i64, limit: i64) -> Result<Purged, StoreError> {
        let lock = match self.db.backend() {
            // A concurrent redeliver waits for this transaction instead of requeueing a row
            // that is being deleted.
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let mut tx = begin_write(self.db).await?;
        let ids: Vec<String> = sqlx::query(&format!(
            "SELECT id FROM webhook_deliveries WHERE status IN ('SUCCEEDED', 'FAILED') \
             AND updated_at < $1 ORDER BY updated_at LIMIT $2{lock}"
        ))
        .bind(cutoff)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>("id"))
        .collect::<Result<_, _>>()?;
        let mut deliveries = 0;
        if !ids.is_empty() {
            let list = placeholders(ids.len());
            // Attempts first: SQLite enforces ON DELETE CASCADE only with `foreign_keys` on.
            let sql = format!("DELETE FROM webhook_attempts WHERE delivery_id IN ({list})");
            bind_all(sqlx::query(&sql), &ids).execute(&mut *tx).await?;
            let sql = format!("DELETE FROM webhook_deliveries WHERE id IN ({list})");
            deliveries = bind_all(sqlx::query(&sql), &ids)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        let events = sqlx::query(
            "DELETE FROM webhook_events WHERE id IN (SELECT e.id FROM webhook_events e \
             WHERE e.created_at < $1 AND NOT EXISTS \
             (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id) \
             ORDER BY e.created_at LIMIT $2)",
        )
        .bind(cutoff)
        .bind(limit)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(Purged { deliveries, events })
    }
}
