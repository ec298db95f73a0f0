//! The request log (请求日志, migration 0012): one row per API request, written in batches by
//! the request-log writer ([`crate::observe::request_log`]), read by the console.
//!
//! A row holds the time, method, matched route template, status, request id, latency, the
//! rate-limit state and the app the request was attributed to: never a body, a header, a token
//! or a secret (the route is the template, so ids and query strings in the path are not kept
//! either).

use std::sync::Arc;

use l2c_core::{ClientId, RequestId};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::sql::begin_write;
use super::{Backend, Db, StoreError};
use crate::domain::new_id;

/// Rows per `INSERT` statement at most: 9 parameters each, well under SQLite's and
/// PostgreSQL's parameter limits. Smaller statements hold a power of two of rows, so a batch of
/// any size uses a few statement shapes, each prepared once per connection and then reused
/// from the driver's statement cache (parsing a statement of hundreds of parameters costs more
/// than running it).
const ROWS_PER_STATEMENT: usize = 128;

/// The columns of a row, in insert order.
const COLUMNS: &str =
    "id, client_id, at, method, route, status, request_id, latency_us, rate_remaining";

/// One request, as the request path hands it over: cheap to build (shared strings, no
/// formatting), written later by the writer.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NewRequestLog {
    /// When the response was ready (unix ms).
    pub at: i64,
    /// The app a verified credential named; `None` when none did.
    pub client_id: Option<ClientId>,
    /// The method (`GET`, `POST`, …, or `other`).
    pub method: &'static str,
    /// The matched route template, or `unmatched`.
    pub route: Arc<String>,
    /// The response status.
    pub status: u16,
    /// The request id echoed to the client.
    pub request_id: RequestId,
    /// Time to response headers, in microseconds (saturating).
    pub latency_us: u32,
    /// Requests left in the rate-limit window (`r` of `RateLimit`), when the limiter ran.
    pub rate_remaining: Option<u32>,
}

impl NewRequestLog {
    /// A record of one request.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        at: i64,
        client_id: Option<ClientId>,
        method: &'static str,
        route: Arc<String>,
        status: u16,
        request_id: RequestId,
        latency_us: u32,
        rate_remaining: Option<u32>,
    ) -> Self {
        Self {
            at,
            client_id,
            method,
            route,
            status,
            request_id,
            latency_us,
            rate_remaining,
        }
    }
}

/// One stored request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestLogRow {
    /// When (unix ms).
    pub at: i64,
    /// The app, or `None` for an unattributed request.
    pub client_id: Option<String>,
    /// The method.
    pub method: String,
    /// The route template.
    pub route: String,
    /// The status.
    pub status: u16,
    /// The request id.
    pub request_id: String,
    /// Latency in microseconds.
    pub latency_us: i64,
    /// Requests left in the rate-limit window, when the limiter ran.
    pub rate_remaining: Option<i64>,
}

/// A class of statuses to filter by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusClass {
    /// 200–299.
    Success,
    /// 300–399.
    Redirect,
    /// 400–499 (429 included).
    ClientError,
    /// 429 only.
    Limited,
    /// 500–599.
    ServerError,
}

impl StatusClass {
    /// Every class, in display order.
    pub const ALL: [StatusClass; 5] = [
        StatusClass::Success,
        StatusClass::Redirect,
        StatusClass::ClientError,
        StatusClass::Limited,
        StatusClass::ServerError,
    ];

    /// The inclusive status range.
    pub fn range(self) -> (i64, i64) {
        match self {
            StatusClass::Success => (200, 299),
            StatusClass::Redirect => (300, 399),
            StatusClass::ClientError => (400, 499),
            StatusClass::Limited => (429, 429),
            StatusClass::ServerError => (500, 599),
        }
    }

    /// The query-string word (`2xx`, `3xx`, `4xx`, `429`, `5xx`).
    pub fn as_str(self) -> &'static str {
        match self {
            StatusClass::Success => "2xx",
            StatusClass::Redirect => "3xx",
            StatusClass::ClientError => "4xx",
            StatusClass::Limited => "429",
            StatusClass::ServerError => "5xx",
        }
    }

    /// The class of a query-string word, `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Which requests to list.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct RequestLogFilter<'a> {
    /// One app's requests; `None`: every request, unattributed ones included (operators).
    pub client_id: Option<&'a str>,
    /// Exactly this request id.
    pub request_id: Option<&'a str>,
    /// Statuses of this class.
    pub status: Option<StatusClass>,
}

impl<'a> RequestLogFilter<'a> {
    /// The requests of `client_id`, or every request when `None`.
    pub fn new(client_id: Option<&'a str>) -> Self {
        Self {
            client_id,
            ..Self::default()
        }
    }

    /// Only the request(s) with this id.
    #[must_use]
    pub fn request_id(mut self, id: Option<&'a str>) -> Self {
        self.request_id = id;
        self
    }

    /// Only statuses of `class`.
    #[must_use]
    pub fn status(mut self, class: Option<StatusClass>) -> Self {
        self.status = class;
        self
    }
}

/// The counts of one hour of the chart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HourCounts {
    /// The hour's start (unix ms, a multiple of an hour).
    pub hour_start: i64,
    /// Every request.
    pub total: i64,
    /// 400–499 (429 included).
    pub client_errors: i64,
    /// 429.
    pub limited: i64,
    /// 500–599.
    pub server_errors: i64,
}

/// One hour in milliseconds.
pub const HOUR_MS: i64 = 3_600_000;

/// The request log. Get one with [`Db::request_logs`].
#[derive(Debug, Clone, Copy)]
pub struct RequestLogStore<'a> {
    db: &'a Db,
}

impl Db {
    /// The request log.
    pub fn request_logs(&self) -> RequestLogStore<'_> {
        RequestLogStore { db: self }
    }
}

fn from_row(r: &AnyRow) -> Result<RequestLogRow, StoreError> {
    Ok(RequestLogRow {
        at: r.try_get("at")?,
        client_id: r.try_get("client_id")?,
        method: r.try_get("method")?,
        route: r.try_get("route")?,
        status: u16::try_from(r.try_get::<i64, _>("status")?).unwrap_or(0),
        request_id: r.try_get("request_id")?,
        latency_us: r.try_get("latency_us")?,
        rate_remaining: r.try_get("rate_remaining")?,
    })
}

/// The `WHERE` clause of `filter` with its first placeholder at `$1`, and its values.
fn where_clause(filter: &RequestLogFilter<'_>) -> (String, Vec<Value>) {
    let mut conds = Vec::new();
    let mut values = Vec::new();
    if let Some(c) = filter.client_id {
        values.push(Value::Text(c.to_owned()));
        conds.push(format!("client_id = ${}", values.len()));
    }
    if let Some(id) = filter.request_id {
        values.push(Value::Text(id.to_owned()));
        conds.push(format!("request_id = ${}", values.len()));
    }
    if let Some(class) = filter.status {
        let (lo, hi) = class.range();
        values.push(Value::Int(lo));
        values.push(Value::Int(hi));
        conds.push(format!(
            "status BETWEEN ${} AND ${}",
            values.len() - 1,
            values.len()
        ));
    }
    let clause = if conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conds.join(" AND "))
    };
    (clause, values)
}

/// A bound value of a built query.
enum Value {
    Text(String),
    Int(i64),
}

fn bind_values<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    values: &'q [Value],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for v in values {
        query = match v {
            Value::Text(s) => query.bind(s.as_str()),
            Value::Int(n) => query.bind(*n),
        };
    }
    query
}

/// Rows of the next statement for `left` rows to write: [`ROWS_PER_STATEMENT`], or the largest
/// power of two at most `left`.
fn statement_rows(left: usize) -> usize {
    if left >= ROWS_PER_STATEMENT {
        ROWS_PER_STATEMENT
    } else {
        1 << left.ilog2()
    }
}

/// `INSERT … VALUES (…), (…)` of `rows` rows. SQLite gets anonymous `?` parameters: with
/// numbered ones (`$1`…) it looks each name up in a list, in preparing and again in binding,
/// which grows with the square of the parameter count.
fn insert_sql(backend: Backend, rows: usize) -> String {
    let row = |i: usize| match backend {
        Backend::Sqlite => "(?, ?, ?, ?, ?, ?, ?, ?, ?)".to_owned(),
        Backend::Postgres => {
            let params: Vec<String> = (1..=9).map(|k| format!("${}", i * 9 + k)).collect();
            format!("({})", params.join(", "))
        }
    };
    let values: Vec<String> = (0..rows).map(row).collect();
    format!(
        "INSERT INTO request_logs ({COLUMNS}) VALUES {}",
        values.join(", ")
    )
}

impl RequestLogStore<'_> {
    /// Writes `records` in one write transaction, as multi-row `INSERT`s of up to 128 rows.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`]; nothing of the batch is written then.
    pub async fn insert_many(&self, records: &[NewRequestLog]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut tx = begin_write(self.db).await?;
        let mut rest = records;
        while !rest.is_empty() {
            let n = statement_rows(rest.len());
            let (chunk, tail) = rest.split_at(n);
            rest = tail;
            let sql = insert_sql(self.db.backend(), n);
            let mut query = sqlx::query(&sql);
            for r in chunk {
                query = query
                    .bind(new_id("rq"))
                    .bind(r.client_id.as_ref().map(|c| c.as_str().to_owned()))
                    .bind(r.at)
                    .bind(r.method)
                    .bind(r.route.as_str().to_owned())
                    .bind(i64::from(r.status))
                    .bind(r.request_id.as_str().to_owned())
                    .bind(i64::from(r.latency_us))
                    .bind(r.rate_remaining.map(i64::from));
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The requests `filter` selects, newest first, `limit` from `offset`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub async fn list(
        &self,
        filter: &RequestLogFilter<'_>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<RequestLogRow>, StoreError> {
        let (clause, values) = where_clause(filter);
        let n = values.len();
        let sql = format!(
            "SELECT {COLUMNS} FROM request_logs{clause} ORDER BY at DESC, id DESC \
             LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        );
        bind_values(sqlx::query(&sql), &values)
            .bind(limit)
            .bind(offset)
            .fetch_all(self.db.pool())
            .await?
            .iter()
            .map(from_row)
            .collect()
    }

    /// Requests per hour from `since` (unix ms, rounded down to the hour) on, for one app or
    /// (`None`) every request: only the hours that have requests, oldest first.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub async fn hourly(
        &self,
        client_id: Option<&str>,
        since: i64,
    ) -> Result<Vec<HourCounts>, StoreError> {
        let since = since.div_euclid(HOUR_MS) * HOUR_MS;
        let (scope, values) = match client_id {
            Some(c) => (" AND client_id = $2", vec![Value::Text(c.to_owned())]),
            None => ("", Vec::new()),
        };
        let sql = format!(
            "SELECT at / {HOUR_MS} AS hour, CAST(COUNT(*) AS BIGINT) AS total, \
             CAST(SUM(CASE WHEN status BETWEEN 400 AND 499 THEN 1 ELSE 0 END) AS BIGINT) AS c4, \
             CAST(SUM(CASE WHEN status = 429 THEN 1 ELSE 0 END) AS BIGINT) AS c429, \
             CAST(SUM(CASE WHEN status BETWEEN 500 AND 599 THEN 1 ELSE 0 END) AS BIGINT) AS c5 \
             FROM request_logs WHERE at >= $1{scope} GROUP BY at / {HOUR_MS} ORDER BY hour"
        );
        bind_values(sqlx::query(&sql).bind(since), &values)
            .fetch_all(self.db.pool())
            .await?
            .iter()
            .map(|r| {
                Ok(HourCounts {
                    hour_start: r.try_get::<i64, _>("hour")? * HOUR_MS,
                    total: r.try_get("total")?,
                    client_errors: r.try_get("c4")?,
                    limited: r.try_get("c429")?,
                    server_errors: r.try_get("c5")?,
                })
            })
            .collect()
    }

    /// Deletes up to `limit` rows older than `cutoff` (unix ms), oldest first; the number
    /// deleted. Safe to run from several replicas at once.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`].
    pub async fn purge(&self, cutoff: i64, limit: i64) -> Result<u64, StoreError> {
        // One statement, committed by itself, on the write connection (SQLite's only writer).
        let result = sqlx::query(
            "DELETE FROM request_logs WHERE id IN \
             (SELECT id FROM request_logs WHERE at < $1 ORDER BY at LIMIT $2)",
        )
        .bind(cutoff)
        .bind(limit)
        .execute(self.db.writer())
        .await?;
        Ok(result.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_use_a_few_statement_shapes() {
        let mut shapes = std::collections::BTreeSet::new();
        for total in 1..=600 {
            let mut left = total;
            while left > 0 {
                let n = statement_rows(left);
                assert!(n >= 1 && n <= left && n <= ROWS_PER_STATEMENT);
                shapes.insert(n);
                left -= n;
            }
        }
        assert_eq!(
            shapes.into_iter().collect::<Vec<_>>(),
            [1, 2, 4, 8, 16, 32, 64, 128]
        );
    }

    #[test]
    fn insert_sql_numbers_postgres_parameters_and_leaves_sqlite_ones_anonymous() {
        let pg = insert_sql(Backend::Postgres, 2);
        assert!(
            pg.ends_with("($10, $11, $12, $13, $14, $15, $16, $17, $18)"),
            "{pg}"
        );
        let lite = insert_sql(Backend::Sqlite, 2);
        assert!(lite.ends_with("VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    }
}
