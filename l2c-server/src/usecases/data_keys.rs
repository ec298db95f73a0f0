//! The data keys of a database (see [`crate::seal`]): sealing a plain database in place
//! ([`prepare`], at startup, [`startup`]) and re-sealing under the current key ([`rotate`],
//! `l2c-server keys rotate-data-key`): batches of rows, each batch in its own transaction,
//! every update conditional on the value read (a concurrent write is never overwritten), so an
//! interrupted run simply resumes where it stopped.

use sqlx::Row;

use crate::seal::{
    COLUMNS, DataKeys, ENVELOPE_PREFIX, Field, INDEX_PREFIX, SealError, SealedColumn,
};
use crate::store::sql::{begin_write, placeholders};
use crate::store::{Backend, Db, StoreError};

/// Rows handled per transaction.
const BATCH: i64 = 500;
/// Batches in a row that may change nothing (another replica sealing the same rows at the same
/// time) before a pass gives up.
const IDLE_BATCHES: u32 = 5;

/// What a [`prepare`] or [`rotate`] run changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// Values sealed (or re-sealed under the current key).
    pub sealed: u64,
    /// Blind indexes computed under the current key.
    pub indexed: u64,
    /// Whether the SQLite file was compacted afterwards (`VACUUM`), so the plain (or old) values'
    /// pages are gone from it.
    pub vacuumed: bool,
}

/// Which values a pass re-seals.
#[derive(Debug, Clone, Copy)]
enum Pass<'a> {
    /// Plain values only (first start with a key).
    Plain,
    /// Everything not sealed under this key id.
    NotUnder(&'a str),
}

/// Readies the database for `db`'s data keys, before the server serves:
///
/// 1. refuses a database holding values sealed under a key it was not given (or any sealed
///    value when it has no key) — the server must never return undecryptable data as if it were
///    plain;
/// 2. with a key, seals every plain value in place and computes the missing blind indexes, then
///    compacts a SQLite file (`VACUUM`) so the plain values' old pages are gone.
///
/// # Errors
///
/// [`StoreError::Sealed`] for a value under an unknown key
/// or one that does not open; [`StoreError::Database`] when a query fails.
pub async fn prepare(db: &Db) -> Result<Progress, StoreError> {
    let keys = db.data_keys();
    check_known_keys(db, keys).await?;
    if !keys.is_enabled() {
        return Ok(Progress::default());
    }
    run(db, keys, Pass::Plain).await
}

/// Re-seals every value not sealed under the current key, and recomputes every blind index
/// not computed under it, in batches; safe while servers run (they read every known key).
/// Afterwards no value needs an old key: restart the servers without `L2C_OLD_DATA_KEYS`.
///
/// # Errors
///
/// [`SealError::NoCurrentKey`] (as [`StoreError::Sealed`]) without a current key; as
/// [`prepare`] otherwise.
pub async fn rotate(db: &Db) -> Result<Progress, StoreError> {
    let keys = db.data_keys();
    let Some(kid) = keys.current_kid() else {
        return Err(SealError::NoCurrentKey.into());
    };
    check_known_keys(db, keys).await?;
    run(db, keys, Pass::NotUnder(kid.as_str())).await
}

async fn run(db: &Db, keys: &DataKeys, pass: Pass<'_>) -> Result<Progress, StoreError> {
    let mut progress = Progress::default();
    for column in COLUMNS {
        progress.sealed += reseal_column(db, keys, column, pass).await?;
    }
    progress.indexed = reindex_mobiles(db, keys, pass).await?;
    if progress.sealed + progress.indexed > 0 && db.backend() == Backend::Sqlite {
        progress.vacuumed = vacuum(db).await;
    }
    Ok(progress)
}

/// Refuses values sealed under a key id `keys` does not know.
async fn check_known_keys(db: &Db, keys: &DataKeys) -> Result<(), StoreError> {
    let known = keys.known_kids();
    let offset = ENVELOPE_PREFIX.len() + "v1:".len() + 1;
    for c in COLUMNS {
        let not_in = if known.is_empty() {
            String::new()
        } else {
            let list = placeholders(known.len());
            format!(
                " AND substr({col}, {offset}, 16) NOT IN ({list})",
                col = c.column
            )
        };
        let sql = format!(
            "SELECT {col} AS v FROM {table} WHERE {col} LIKE 'l2cenc:v1:%'{not_in} LIMIT 1",
            col = c.column,
            table = c.table
        );
        let mut q = sqlx::query(&sql);
        for kid in &known {
            q = q.bind(kid.as_str());
        }
        if let Some(row) = q.fetch_optional(db.pool()).await? {
            let v: String = row.try_get("v")?;
            let kid = DataKeys::kid_of(&v)
                .unwrap_or("?")
                .chars()
                .take(16)
                .collect();
            let label = c.field.label();
            return Err(if keys.is_enabled() {
                SealError::UnknownKey { field: label, kid }
            } else {
                SealError::KeyRequired { field: label, kid }
            }
            .into());
        }
    }
    Ok(())
}

fn needs_work(column: &str, pass: Pass<'_>) -> String {
    match pass {
        Pass::Plain => format!("{column} IS NOT NULL AND {column} NOT LIKE 'l2cenc:v1:%'"),
        // Key ids are lowercase hex: nothing to escape in the pattern.
        Pass::NotUnder(kid) => {
            format!("{column} IS NOT NULL AND {column} NOT LIKE 'l2cenc:v1:{kid}:%'")
        }
    }
}

fn stuck(c: &SealedColumn) -> StoreError {
    StoreError::Corrupt {
        table: c.table,
        detail: format!("re-sealing {} made no progress", c.column),
    }
}

async fn reseal_column(
    db: &Db,
    keys: &DataKeys,
    c: &SealedColumn,
    pass: Pass<'_>,
) -> Result<u64, StoreError> {
    let key_list = c.keys.join(", ");
    let select = format!(
        "SELECT {key_list}, {col} AS v FROM {table} WHERE {pred} LIMIT {BATCH}",
        col = c.column,
        table = c.table,
        pred = needs_work(c.column, pass),
    );
    let mut conditions: Vec<String> = c
        .keys
        .iter()
        .enumerate()
        .map(|(i, k)| format!("{k} = ${}", i + 2))
        .collect();
    conditions.push(format!("{} = ${}", c.column, c.keys.len() + 2));
    let update = format!(
        "UPDATE {table} SET {col} = $1 WHERE {cond}",
        table = c.table,
        col = c.column,
        cond = conditions.join(" AND ")
    );
    let mut total = 0;
    let mut idle = 0;
    loop {
        let rows = sqlx::query(&select).fetch_all(db.pool()).await?;
        if rows.is_empty() {
            return Ok(total);
        }
        let mut tx = begin_write(db).await?;
        let mut changed = 0;
        for r in &rows {
            let ids = c
                .keys
                .iter()
                .map(|k| r.try_get::<String, _>(*k))
                .collect::<Result<Vec<_>, _>>()?;
            let stored: String = r.try_get("v")?;
            let row_id = ids.join("/");
            let plain = keys.open(c.field, &row_id, &stored)?;
            let sealed = keys.seal(c.field, &row_id, &plain);
            // What the pass selects no longer matches it, so the loop ends.
            if DataKeys::kid_of(&sealed) != keys.current_kid().map(|k| k.as_str()) {
                return Err(stuck(c));
            }
            let mut q = sqlx::query(&update).bind(sealed);
            for id in &ids {
                q = q.bind(id.as_str());
            }
            changed += q.bind(stored).execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        idle = if changed == 0 { idle + 1 } else { 0 };
        if idle == IDLE_BATCHES {
            return Err(stuck(c));
        }
        total += changed;
    }
}

async fn reindex_mobiles(db: &Db, keys: &DataKeys, pass: Pass<'_>) -> Result<u64, StoreError> {
    let pred = match pass {
        Pass::Plain => format!("mobile_index IS NULL OR mobile_index NOT LIKE '{INDEX_PREFIX}%'"),
        Pass::NotUnder(kid) => {
            format!("mobile_index IS NULL OR mobile_index NOT LIKE '{INDEX_PREFIX}{kid}:%'")
        }
    };
    let select =
        format!("SELECT id, mobile_e164, mobile_index FROM customers WHERE {pred} LIMIT {BATCH}");
    let mut total = 0;
    let mut idle = 0;
    loop {
        let rows = sqlx::query(&select).fetch_all(db.pool()).await?;
        if rows.is_empty() {
            return Ok(total);
        }
        let mut tx = begin_write(db).await?;
        let mut changed = 0;
        for r in &rows {
            let id: String = r.try_get("id")?;
            let stored: String = r.try_get("mobile_e164")?;
            let old: Option<String> = r.try_get("mobile_index")?;
            let mobile = keys.open(Field::CustomerMobile, &id, &stored)?;
            let index = keys.blind_index(Field::CustomerMobile, &mobile);
            if !index.starts_with(INDEX_PREFIX) {
                return Err(StoreError::Corrupt {
                    table: "customers",
                    detail: "re-indexing mobile_index without a data key".into(),
                });
            }
            let q = match &old {
                Some(old) => sqlx::query(
                    "UPDATE customers SET mobile_index = $1 WHERE id = $2 AND mobile_index = $3",
                )
                .bind(index)
                .bind(&id)
                .bind(old.as_str()),
                None => sqlx::query(
                    "UPDATE customers SET mobile_index = $1 WHERE id = $2 AND mobile_index IS NULL",
                )
                .bind(index)
                .bind(&id),
            };
            changed += q.execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        idle = if changed == 0 { idle + 1 } else { 0 };
        if idle == IDLE_BATCHES {
            return Err(StoreError::Corrupt {
                table: "customers",
                detail: "re-indexing mobile_index made no progress".into(),
            });
        }
        total += changed;
    }
}

/// Compacts the SQLite file so pages that held the old values are gone: checkpoint the WAL into
/// the file, `VACUUM` (rewrites every page), checkpoint again and truncate the WAL. Best
/// effort: returns whether it succeeded (it needs a moment without other writers).
async fn vacuum(db: &Db) -> bool {
    let steps = [
        "PRAGMA wal_checkpoint(TRUNCATE)",
        "VACUUM",
        "PRAGMA wal_checkpoint(TRUNCATE)",
    ];
    for step in steps {
        if let Err(e) = sqlx::query(step).execute(db.pool()).await {
            tracing::warn!(error = %e, step, "could not compact the SQLite file after sealing");
            return false;
        }
    }
    true
}

/// What `l2c-server serve` does with the data keys before serving: [`prepare`] the database
/// (refuse values under unknown keys, seal a plain database in place), then log what happened —
/// or, without a key, warn once that personal data is stored in plain text and how to seal it.
///
/// # Errors
///
/// As [`prepare`].
pub async fn startup(db: &Db) -> Result<Progress, StoreError> {
    let progress = prepare(db).await?;
    let keys = db.data_keys();
    match keys.current_kid() {
        None => tracing::warn!(
            "personal data (customers' mobiles and names, raw lead payloads) and secrets (webhook \
             and lead-source secrets, generated signing keys) are stored in plain text: set \
             L2C_DATA_KEY to seal them at rest (generate a key with `l2c-server keys \
             generate-data-key` or `openssl rand -base64 32`)"
        ),
        Some(kid) => {
            if progress.sealed + progress.indexed > 0 {
                tracing::info!(
                    key_id = %kid,
                    sealed = progress.sealed,
                    indexed = progress.indexed,
                    compacted = progress.vacuumed,
                    "sealed the plain personal data and secrets in place"
                );
            }
            let old = keys.known_kids().len() - 1;
            tracing::info!(key_id = %kid, old_keys = old, "personal data and secrets sealed at rest");
        }
    }
    Ok(progress)
}
