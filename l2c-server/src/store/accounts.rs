//! Console accounts and their sessions (migration 0009).
//!
//! An account is an operator (every app) or a developer (one app). Its password is stored as an
//! argon2id PHC string computed by [`crate::admin::accounts`]; this module never sees a clear
//! password. A session is a random token in the browser's cookie and its SHA-256 here, so every
//! replica can check it and a database reader cannot use it.

use std::fmt;

use l2c_core::ClientId;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, StoreError};
use crate::domain::new_id;

/// What an account may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The platform's operators: every app, the audit log.
    Operator,
    /// A partner's developer: the one app of the account.
    Developer,
}

impl Role {
    /// `OPERATOR` or `DEVELOPER`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "OPERATOR",
            Role::Developer => "DEVELOPER",
        }
    }
}

impl clap::ValueEnum for Role {
    fn value_variants<'a>() -> &'a [Self] {
        &[Role::Operator, Role::Developer]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(match self {
            Role::Operator => "operator",
            Role::Developer => "developer",
        }))
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "operator" => Ok(Role::Operator),
            "developer" => Ok(Role::Developer),
            other => Err(format!(
                "unknown role `{other}` (expected operator or developer)"
            )),
        }
    }
}

/// A console account (never with its password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Account {
    /// `acc_…`.
    pub id: String,
    /// The login name (unique).
    pub username: String,
    /// Operator or developer.
    pub role: Role,
    /// A developer's app.
    pub client_id: Option<ClientId>,
    /// Whether it may no longer sign in.
    pub disabled: bool,
    /// Created (unix ms).
    pub created_at: i64,
}

impl Account {
    /// Whether this account may see and change app `client`.
    pub fn may_see(&self, client: &str) -> bool {
        match self.role {
            Role::Operator => true,
            Role::Developer => self
                .client_id
                .as_ref()
                .is_some_and(|c| c.as_str() == client),
        }
    }
}

/// A live session, as [`AccountStore::session`] finds it.
#[derive(Clone)]
#[non_exhaustive]
pub struct Session {
    /// The signed-in account.
    pub account: Account,
    /// The session's CSRF token.
    pub csrf_token: String,
    /// The absolute expiry (unix ms).
    pub expires_at: i64,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("account", &self.account.username)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str = "a.id, a.username, a.role, a.client_id, a.disabled, a.created_at";

fn account_from_row(r: &AnyRow) -> Result<Account, StoreError> {
    let role: String = r.try_get("role")?;
    Ok(Account {
        id: r.try_get("id")?,
        username: r.try_get("username")?,
        role: role.parse().map_err(|e: String| StoreError::Corrupt {
            table: "console_accounts",
            detail: e,
        })?,
        client_id: r
            .try_get::<Option<String>, _>("client_id")?
            .map(ClientId::new),
        disabled: r.try_get::<i64, _>("disabled")? != 0,
        created_at: r.try_get("created_at")?,
    })
}

/// Accounts and sessions. Get one with [`Db::accounts`].
#[derive(Debug, Clone, Copy)]
pub struct AccountStore<'a> {
    db: &'a Db,
}

impl Db {
    /// Console accounts and sessions.
    pub fn accounts(&self) -> AccountStore<'_> {
        AccountStore { db: self }
    }
}

impl AccountStore<'_> {
    /// Creates an account; `None` when the username is taken.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub async fn create(
        &self,
        username: &str,
        password_hash: &str,
        role: Role,
        client: Option<&ClientId>,
    ) -> Result<Option<Account>, StoreError> {
        if self.get_by_username(username).await?.is_some() {
            return Ok(None);
        }
        let now = self.db.now_millis();
        let id = new_id("acc");
        let done = sqlx::query(
            "INSERT INTO console_accounts (id, username, password_hash, role, client_id, disabled, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 0, $6, $6)",
        )
        .bind(&id)
        .bind(username)
        .bind(password_hash)
        .bind(role.as_str())
        .bind(client.map(ClientId::as_str))
        .bind(now)
        .execute(self.db.pool())
        .await;
        match done {
            Ok(_) => {}
            // Taken by a parallel create between the check and the insert (UNIQUE).
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        Ok(Some(Account {
            id,
            username: username.to_owned(),
            role,
            client_id: client.cloned(),
            disabled: false,
            created_at: now,
        }))
    }

    /// The account named `username` and its password hash.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub async fn credentials(
        &self,
        username: &str,
    ) -> Result<Option<(Account, String)>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS}, a.password_hash FROM console_accounts a WHERE a.username = $1"
        ))
        .bind(username)
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|r| Ok((account_from_row(&r)?, r.try_get("password_hash")?)))
            .transpose()
    }

    /// The account named `username`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub async fn get_by_username(&self, username: &str) -> Result<Option<Account>, StoreError> {
        Ok(self.credentials(username).await?.map(|(a, _)| a))
    }

    /// Every account, by name.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub async fn list(&self) -> Result<Vec<Account>, StoreError> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM console_accounts a ORDER BY a.username"
        ))
        .fetch_all(self.db.pool())
        .await?
        .iter()
        .map(account_from_row)
        .collect()
    }

    /// Disables or re-enables an account; disabling ends its sessions. `false` if no such
    /// account.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub async fn set_disabled(&self, username: &str, disabled: bool) -> Result<bool, StoreError> {
        let Some(account) = self.get_by_username(username).await? else {
            return Ok(false);
        };
        sqlx::query("UPDATE console_accounts SET disabled = $1, updated_at = $2 WHERE id = $3")
            .bind(i64::from(disabled))
            .bind(self.db.now_millis())
            .bind(&account.id)
            .execute(self.db.pool())
            .await?;
        if disabled {
            self.end_sessions_of(&account.id).await?;
        }
        Ok(true)
    }

    /// Replaces an account's password hash and ends its sessions. `false` if no such account.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub async fn set_password_hash(
        &self,
        username: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        let Some(account) = self.get_by_username(username).await? else {
            return Ok(false);
        };
        sqlx::query(
            "UPDATE console_accounts SET password_hash = $1, updated_at = $2 WHERE id = $3",
        )
        .bind(password_hash)
        .bind(self.db.now_millis())
        .bind(&account.id)
        .execute(self.db.pool())
        .await?;
        self.end_sessions_of(&account.id).await?;
        Ok(true)
    }

    /// Ends every session of an account.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub async fn end_sessions_of(&self, account_id: &str) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM console_sessions WHERE account_id = $1")
                .bind(account_id)
                .execute(self.db.pool())
                .await?
                .rows_affected(),
        )
    }

    /// Records a new session (the token's hash, its CSRF token), ending at `expires_at`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub async fn start_session(
        &self,
        account: &Account,
        token_hash: &str,
        csrf_token: &str,
        expires_at: i64,
        address: Option<&str>,
    ) -> Result<(), StoreError> {
        let now = self.db.now_millis();
        sqlx::query(
            "INSERT INTO console_sessions (token_hash, account_id, csrf_token, created_at, \
             last_seen_at, expires_at, address) VALUES ($1, $2, $3, $4, $4, $5, $6)",
        )
        .bind(token_hash)
        .bind(&account.id)
        .bind(csrf_token)
        .bind(now)
        .bind(expires_at)
        .bind(address)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// The live session of `token_hash`: not past its absolute expiry, used within `idle_ms`,
    /// its account enabled. Marks it used (at most once a minute, to spare the database).
    /// An expired session is deleted.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub async fn session(
        &self,
        token_hash: &str,
        idle_ms: i64,
    ) -> Result<Option<Session>, StoreError> {
        let now = self.db.now_millis();
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS}, s.csrf_token, s.last_seen_at, s.expires_at FROM console_sessions s \
             JOIN console_accounts a ON a.id = s.account_id WHERE s.token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(self.db.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let account = account_from_row(&row)?;
        let last_seen: i64 = row.try_get("last_seen_at")?;
        let expires_at: i64 = row.try_get("expires_at")?;
        if account.disabled || now >= expires_at || now >= last_seen.saturating_add(idle_ms) {
            self.end_session(token_hash).await?;
            return Ok(None);
        }
        if now - last_seen >= 60_000 {
            sqlx::query("UPDATE console_sessions SET last_seen_at = $1 WHERE token_hash = $2")
                .bind(now)
                .bind(token_hash)
                .execute(self.db.pool())
                .await?;
        }
        Ok(Some(Session {
            account,
            csrf_token: row.try_get("csrf_token")?,
            expires_at,
        }))
    }

    /// Ends one session (logout).
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub async fn end_session(&self, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM console_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }
}
