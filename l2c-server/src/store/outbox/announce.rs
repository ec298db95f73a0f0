//! The PostgreSQL channel on which dispatchers announce due deliveries to each other
//! (`LISTEN`/`NOTIFY`; the dispatcher's `wake` module).

use sqlx::postgres::PgListener;

use super::WebhookStore;
use crate::store::{Backend, StoreError};

/// The notification channel.
pub const CHANNEL: &str = "l2c_webhook_deliveries";

impl WebhookStore<'_> {
    /// Tells the dispatchers listening on [`CHANNEL`] that deliveries are due, from dispatcher
    /// `from` (a lease owner id: letters, digits and `_`; it skips its own announcements).
    /// Nothing on SQLite.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`]; [`StoreError::Invalid`] for another `from`.
    pub async fn announce(&self, from: &str) -> Result<(), StoreError> {
        if self.db.backend() != Backend::Postgres {
            return Ok(());
        }
        // NOTIFY takes no parameters; the payload is checked to be a plain identifier instead.
        if from.is_empty() || !from.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(StoreError::Invalid(format!("announcer id `{from}`")));
        }
        sqlx::raw_sql(&format!("NOTIFY {CHANNEL}, '{from}'"))
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    /// A connection listening on [`CHANNEL`] (PostgreSQL only).
    ///
    /// # Errors
    ///
    /// [`StoreError::Invalid`] on SQLite, [`StoreError::Database`] when it cannot connect.
    pub async fn listen(&self) -> Result<PgListener, StoreError> {
        if self.db.backend() != Backend::Postgres {
            return Err(StoreError::Invalid("LISTEN needs PostgreSQL".to_owned()));
        }
        let mut listener = PgListener::connect(self.db.options.database_url.as_str()).await?;
        listener.listen(CHANNEL).await?;
        Ok(listener)
    }
}
