//! The console's audit log and its failed-login counters (migration 0009).
//!
//! Both live in the database so that every replica sees the same lockouts and writes the same
//! log.

use sqlx::Row;

use super::{Db, StoreError};
use crate::domain::new_id;

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditEntry {
    /// When (unix ms).
    pub at: i64,
    /// Who (the console account, or `cli` for the command line).
    pub username: String,
    /// What, such as `client.roll_secret`.
    pub action: String,
    /// Which app.
    pub client_id: Option<String>,
    /// The object acted on (a webhook id, …) or a short detail.
    pub target: Option<String>,
    /// From where (the client address).
    pub address: Option<String>,
}

impl AuditEntry {
    /// A record of `action` by `username` now (the store stamps the time).
    pub fn new(username: impl Into<String>, action: impl Into<String>) -> Self {
        Self {
            at: 0,
            username: username.into(),
            action: action.into(),
            client_id: None,
            target: None,
            address: None,
        }
    }

    /// The app acted on.
    #[must_use]
    pub fn client(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// The object acted on.
    #[must_use]
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// Where the action came from.
    #[must_use]
    pub fn address(mut self, address: Option<String>) -> Self {
        self.address = address;
        self
    }
}

/// How many failed logins lock a key, within what window, for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lockout {
    /// Failures that lock.
    pub max_failures: i64,
    /// The window they are counted in (ms).
    pub window_ms: i64,
    /// How long the lock lasts (ms).
    pub lock_ms: i64,
}

/// A login attempt counted by [`AuditStore::reserve_attempt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// It may check the password; it is the `n`-th attempt in the window.
    Allowed(i64),
    /// The key is locked until this time (unix ms): refuse without checking.
    Locked(i64),
}

/// The audit log and login counters. Get one with [`Db::audit`].
#[derive(Debug, Clone, Copy)]
pub struct AuditStore<'a> {
    db: &'a Db,
}

impl Db {
    /// The console's audit log and failed-login counters.
    pub fn audit(&self) -> AuditStore<'_> {
        AuditStore { db: self }
    }
}

impl AuditStore<'_> {
    /// Appends a record, stamped now.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub async fn record(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO console_audit (id, at, username, action, client_id, target, address) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(new_id("aud"))
        .bind(self.db.now_millis())
        .bind(&entry.username)
        .bind(&entry.action)
        .bind(&entry.client_id)
        .bind(&entry.target)
        .bind(&entry.address)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// Records newest first, `limit` from `offset`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub async fn list(&self, limit: i64, offset: i64) -> Result<Vec<AuditEntry>, StoreError> {
        sqlx::query(
            "SELECT at, username, action, client_id, target, address FROM console_audit \
             ORDER BY at DESC, id DESC LIMIT $1 OFFSET $2",
        )
        .bind(limit)
        .bind(offset)
        .fetch_all(self.db.pool())
        .await?
        .iter()
        .map(|r| {
            Ok(AuditEntry {
                at: r.try_get("at")?,
                username: r.try_get("username")?,
                action: r.try_get("action")?,
                client_id: r.try_get("client_id")?,
                target: r.try_get("target")?,
                address: r.try_get("address")?,
            })
        })
        .collect()
    }

    /// Until when `key` is locked out (unix ms), if it is now.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub async fn locked_until(&self, key: &str) -> Result<Option<i64>, StoreError> {
        let now = self.db.now_millis();
        let row = sqlx::query("SELECT locked_until FROM console_login_failures WHERE key = $1")
            .bind(key)
            .fetch_optional(self.db.pool())
            .await?;
        Ok(row
            .map(|r| r.try_get::<Option<i64>, _>("locked_until"))
            .transpose()?
            .flatten()
            .filter(|t| *t > now))
    }

    /// Counts a failed login against `key`; locks it when the count reaches the policy's
    /// maximum within its window. Returns the lock's end if it is now locked (also when it
    /// already was).
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub async fn record_failure(
        &self,
        key: &str,
        policy: Lockout,
    ) -> Result<Option<i64>, StoreError> {
        match self.reserve_attempt(key, policy).await? {
            Attempt::Allowed(n) => self.attempt_failed(key, policy, n).await,
            Attempt::Locked(until) => Ok(Some(until)),
        }
    }

    /// Counts a login attempt against `key` **before** its password is checked, so a burst of
    /// concurrent guesses cannot all pass the lock check before any of them is counted: the
    /// attempts beyond the policy's maximum are refused (and lock the key) without a check.
    /// A successful login gives its attempt back ([`attempt_succeeded`](Self::attempt_succeeded)),
    /// a failed one may lock ([`attempt_failed`](Self::attempt_failed)).
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub async fn reserve_attempt(&self, key: &str, policy: Lockout) -> Result<Attempt, StoreError> {
        let now = self.db.now_millis();
        // One statement counts the attempt, so concurrent attempts (on any replica) each count:
        // a read-then-write would let them overwrite one another's count. A locked key is not
        // counted (no row comes back).
        let counted = sqlx::query(
            "INSERT INTO console_login_failures (key, failures, window_start, locked_until) \
             VALUES ($1, 1, $2, NULL) ON CONFLICT (key) DO UPDATE SET \
             failures = CASE WHEN $2 - console_login_failures.window_start >= $3 THEN 1 \
                        ELSE console_login_failures.failures + 1 END, \
             window_start = CASE WHEN $2 - console_login_failures.window_start >= $3 THEN $2 \
                            ELSE console_login_failures.window_start END \
             WHERE console_login_failures.locked_until IS NULL \
                OR console_login_failures.locked_until <= $2 \
             RETURNING failures",
        )
        .bind(key)
        .bind(now)
        .bind(policy.window_ms)
        .fetch_optional(self.db.pool())
        .await?;
        let Some(row) = counted else {
            let until = self.locked_until(key).await?;
            return Ok(Attempt::Locked(until.unwrap_or(now)));
        };
        let n: i64 = row.try_get("failures")?;
        if n > policy.max_failures {
            return Ok(Attempt::Locked(self.lock(key, policy, now).await?));
        }
        Ok(Attempt::Allowed(n))
    }

    /// The attempt numbered `n` by [`reserve_attempt`](Self::reserve_attempt) failed: locks
    /// `key` when it was the last one the policy allows. Returns the lock's end if it locked.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub async fn attempt_failed(
        &self,
        key: &str,
        policy: Lockout,
        n: i64,
    ) -> Result<Option<i64>, StoreError> {
        if n < policy.max_failures {
            return Ok(None);
        }
        let now = self.db.now_millis();
        self.lock(key, policy, now).await.map(Some)
    }

    /// A reserved attempt succeeded: it no longer counts against `key`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub async fn attempt_succeeded(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE console_login_failures SET failures = failures - 1 \
             WHERE key = $1 AND failures > 0",
        )
        .bind(key)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// Locks `key` from `now` for the policy's lock time; a lock starts a fresh count for
    /// after it.
    async fn lock(&self, key: &str, policy: Lockout, now: i64) -> Result<i64, StoreError> {
        let locked = now + policy.lock_ms;
        sqlx::query(
            "UPDATE console_login_failures SET failures = 0, window_start = $2, locked_until = $3 \
             WHERE key = $1",
        )
        .bind(key)
        .bind(now)
        .bind(locked)
        .execute(self.db.pool())
        .await?;
        Ok(locked)
    }

    /// Forgets the failures of `key` (after a successful login).
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub async fn clear_failures(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM console_login_failures WHERE key = $1")
            .bind(key)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }
}
