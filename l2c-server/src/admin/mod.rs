//! What operators and developers do to apps, webhooks, lead sources and console accounts: one
//! function per action, shared by the console ([`crate::console`]), the command line
//! ([`crate::cli`]) and, where a partner may do it, the API. Nothing is only in the console.
//!
//! Every action that changes something takes the [`Actor`] doing it and writes an
//! [`crate::store::audit::AuditEntry`] (who, what, which app, from where).

pub mod accounts;
pub mod clients;
pub mod command;
pub mod lead_sources;
pub mod webhooks;

use crate::store::audit::AuditEntry;
use crate::store::{Db, StoreError};

/// Who is acting, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The console account's name, or `cli`.
    pub username: String,
    /// The client address (none for the command line).
    pub address: Option<String>,
}

impl Actor {
    /// The command line on the server's host.
    pub fn cli() -> Self {
        Self {
            username: "cli".to_owned(),
            address: None,
        }
    }

    /// A console account at `address`.
    pub fn console(username: &str, address: Option<String>) -> Self {
        Self {
            username: username.to_owned(),
            address,
        }
    }

    /// Writes `action` on `client` (and `target`) to the audit log.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub async fn audit(
        &self,
        db: &Db,
        action: &str,
        client: Option<&str>,
        target: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut entry = AuditEntry::new(&self.username, action).address(self.address.clone());
        if let Some(c) = client {
            entry = entry.client(c);
        }
        if let Some(t) = target {
            entry = entry.target(t);
        }
        db.audit().record(&entry).await
    }
}
