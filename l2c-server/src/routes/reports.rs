//! `GET /reports/orders/export`: the caller's orders as CSV (scope `reports:export`).
//!
//! The body is streamed in batches so that no export can starve the rest of the server:
//!
//! - a task reads the orders in keyset-paginated batches ([`ExportWalk`]); each batch takes a
//!   pool connection for one short query and gives it back before its rows are sent, so a slow
//!   or stalled reader holds no database connection;
//! - exports read through a pool of their own, [`Db::exports`](crate::store::Db::exports), of
//!   `--export-db-connections` connections: all exports together hold at most that many, an
//!   export waits for another export's batch (up to the stall timeout, then 503
//!   `exports_busy`), and never takes one of the connections the API needs;
//! - CSV chunks reach the body through a small bounded channel, so memory stays flat however
//!   many orders there are, and a client that hangs up stops the reads (the channel closes);
//! - a reader that takes nothing for `--export-stall-timeout` is cut: the connection is closed
//!   ([`crate::connections`]), which drops the body and frees the client's export slot, and the task
//!   stops once its chunks have waited that long.
//!
//! The body only ends cleanly after the last order: if the task fails or stops early, the body
//! ends with an error, so the client sees a truncated download (the chunked encoding is not
//! terminated), never a partial file that looks complete.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use http::{HeaderValue, StatusCode, header};
use l2c_core::auth::RequireScopeLayer;
use l2c_core::{AuthenticatedClient, Problem, Scope};
use tokio::sync::mpsc;

use super::openapi::{Authenticated, RateLimitedOrCapped};
use crate::error::AppError;
use crate::error::ProblemDoc;
use crate::state::AppState;
use crate::store::orders::{EXPORT_COLUMNS, ExportBatch, ExportWalk};
use crate::store::{Backend, StoreError};

/// The report routes, relative to `/api/mobile`.
pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/reports/orders/export",
        get(export_orders).layer(RequireScopeLayer::one(Scope::ReportsExport)),
    )
}

/// How many CSV chunks may wait for a slow reader.
const CHANNEL_CHUNKS: usize = 16;
/// Lines are batched into chunks of about this many bytes.
const CHUNK_BYTES: usize = 16 * 1024;
/// Orders read per batch on PostgreSQL (about 600 kB of CSV, about 450 kB of binary `COPY`
/// as the batch holds it; two batches at most are in memory; 10,000- and 20,000-row batches
/// were no faster on a 1M-row export). Each batch is a round trip that waits for the
/// database and for the scheduler: 1,000-row batches made the export of 200k orders 200 round
/// trips, and on a busy machine those waits, not the work, set its pace.
const PG_BATCH_ROWS: u32 = 4000;
/// Orders read per batch on SQLite (about 150 kB of CSV): no network round trip to save, and
/// its rows hold every value apart (4,000-row batches grew the server's RSS by 19 MB).
const SQLITE_BATCH_ROWS: u32 = 1000;

/// An error that ends the body early (the client sees a truncated download, never a partial
/// file that looks complete: the chunked encoding is not terminated).
#[derive(Debug, thiserror::Error)]
#[error("the export failed while streaming")]
struct ExportFailed;

/// What the reading task hands the body.
#[derive(Debug)]
enum Msg {
    /// CSV bytes.
    Chunk(Bytes),
    /// Every order was sent: the body may end cleanly.
    Done,
}

/// Why a batch could not be read.
#[derive(Debug, thiserror::Error)]
enum BatchError {
    /// No connection of the exports' pool came free within the stall timeout.
    #[error("no export database connection came free in time")]
    Busy,
    /// The database failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for BatchError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Database(sqlx::Error::PoolTimedOut) => BatchError::Busy,
            e => BatchError::Store(e),
        }
    }
}

impl From<BatchError> for AppError {
    fn from(e: BatchError) -> Self {
        match e {
            BatchError::Busy => AppError::Problem(
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "exports_busy",
                    "Service Unavailable",
                )
                .with_detail("too many exports are reading from the database; retry later"),
            ),
            BatchError::Store(e) => AppError::Store(e),
        }
    }
}

/// Reads the next batch on a connection of the exports' own pool; `None` once the walk is done.
async fn read_batch(
    state: &AppState,
    walk: &mut ExportWalk,
) -> Option<Result<ExportBatch, BatchError>> {
    if walk.is_done() {
        return None;
    }
    let limit = match state.db.backend() {
        Backend::Postgres => PG_BATCH_ROWS,
        Backend::Sqlite => SQLITE_BATCH_ROWS,
    };
    Some(
        walk.next_batch(state.db.exports(), limit)
            .await
            .map_err(Into::into),
    )
}

/// Sends `msg` unless the reader is gone or has taken nothing for `stall`; `false` means stop.
async fn send(tx: &mpsc::Sender<Msg>, msg: Msg, stall: Duration, client: &str) -> bool {
    match tokio::time::timeout(stall, tx.send(msg)).await {
        Ok(Ok(())) => true,
        Ok(Err(_)) => false, // the client went away
        Err(_) => {
            tracing::info!(
                client_id = client,
                stall_timeout_ms = u64::try_from(stall.as_millis()).unwrap_or(u64::MAX),
                "order export stopped: its reader took nothing within the stall timeout"
            );
            false
        }
    }
}

/// Where the reading task sends its CSV: the chunk being filled and the channel.
struct Sink<'a> {
    tx: &'a mpsc::Sender<Msg>,
    chunk: String,
    stall: Duration,
    client: &'a str,
}

/// Sends `chunk` (leaving it empty), however full; `false` means stop.
async fn flush(tx: &mpsc::Sender<Msg>, chunk: &mut String, stall: Duration, client: &str) -> bool {
    let full = std::mem::replace(chunk, String::with_capacity(CHUNK_BYTES + 256));
    send(tx, Msg::Chunk(Bytes::from(full)), stall, client).await
}

impl Sink<'_> {
    /// Formats `batch` into chunks and sends the full ones; `false` means stop (the reader is
    /// gone or stalled, or a row is broken).
    async fn batch(&mut self, batch: &ExportBatch) -> bool {
        for i in 0..batch.len() {
            if let Err(e) = batch.write_line(i, &mut self.chunk) {
                tracing::error!(error = %e, client_id = %self.client, "order export failed");
                return false;
            }
            if self.chunk.len() >= CHUNK_BYTES {
                if !self.flush().await {
                    return false;
                }
                // Let the next batch's read (joined with this, see `produce`) drain what the
                // database sent meanwhile, and the body send the chunk: without this, a
                // batch is formatted in one go while the database waits on a full socket.
                tokio::task::yield_now().await;
            }
        }
        true
    }

    /// Sends the chunk, however full; `false` means stop.
    async fn flush(&mut self) -> bool {
        flush(self.tx, &mut self.chunk, self.stall, self.client).await
    }
}

/// The reading task: sends the header and `first`, then the following batches, then
/// [`Msg::Done`]. Returning without `Done` makes the body end with an error.
///
/// The next batch is read while the current one is formatted and sent (one query in flight,
/// at most two batches in memory), so the database's time and the formatting overlap.
async fn produce(state: AppState, mut walk: ExportWalk, first: ExportBatch, tx: mpsc::Sender<Msg>) {
    let client = walk.client().as_str().to_owned();
    let mut sink = Sink {
        tx: &tx,
        chunk: String::with_capacity(CHUNK_BYTES + 256),
        stall: state.config.export_stall_timeout,
        client: &client,
    };
    sink.chunk.push_str(&EXPORT_COLUMNS.join(","));
    sink.chunk.push_str("\r\n");
    let mut batch = first;
    loop {
        let (next, sent) = tokio::join!(read_batch(&state, &mut walk), sink.batch(&batch));
        if !sent {
            return;
        }
        batch = match next {
            None => break,
            Some(Ok(next)) => next,
            Some(Err(e)) => {
                tracing::error!(error = %e, client_id = %client, "order export failed");
                return;
            }
        };
    }
    if !sink.chunk.is_empty() && !sink.flush().await {
        return;
    }
    send(&tx, Msg::Done, sink.stall, &client).await;
}

/// The caller's orders as `text/csv` (RFC 4180, UTF-8 with a header row, CRLF line ends),
/// oldest first. Amounts are integer fen; times RFC 3339 in `+08:00`.
#[utoipa::path(
    get,
    path = "/api/mobile/reports/orders/export",
    tag = "reports",
    operation_id = "exportOrders",
    responses(
        (status = 200, description = "CSV, streamed", content_type = "text/csv", body = String,
            example = "orderId,externalOrderNo,customerId,status,statusLabel,paymentStatus,paymentStatusLabel,total,deposit,paid,currency,updatedAt\r\n"),
        (status = 503, description = "Exports are waiting too long for the database (`exports_busy`); or the database cannot be reached in time (`database_unavailable`), with `Retry-After`", body = ProblemDoc, content_type = "application/problem+json"),
        Authenticated, RateLimitedOrCapped,
    ),
    security(("bearer" = ["reports:export"]))
)]
pub async fn export_orders(
    State(state): State<AppState>,
    Extension(client): Extension<AuthenticatedClient>,
) -> Result<Response, AppError> {
    // Read the first batch before answering, so a database that is down is a clean 500.
    let mut walk = ExportWalk::new(client.client_id.clone());
    let first = read_batch(&state, &mut walk)
        .await
        .unwrap_or_else(|| Ok(ExportBatch::default()))?;
    let (tx, rx) = mpsc::channel::<Msg>(CHANNEL_CHUNKS);
    tokio::spawn(produce(state, walk, first, tx));
    let stream = futures_util::stream::unfold(Some(rx), |rx| async move {
        let mut rx = rx?;
        match rx.recv().await {
            Some(Msg::Chunk(bytes)) => Some((Ok(bytes), Some(rx))),
            Some(Msg::Done) => None,
            // The task stopped before the last order (a failure, a panic or a stalled reader).
            None => Some((Err(ExportFailed), None)),
        }
    });
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"orders.csv\""),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
