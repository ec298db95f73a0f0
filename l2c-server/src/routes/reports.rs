//! `GET /reports/orders/export`: the caller's orders as CSV (scope `reports:export`).
//!
//! The body is streamed row by row from the database: a task reads the rows with a cursor and
//! hands CSV lines to the body through a small bounded channel, so memory stays flat however
//! many orders there are, and a client that hangs up stops the query (the channel closes).

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use futures_util::StreamExt;
use http::{HeaderValue, header};
use l2c_core::auth::RequireScopeLayer;
use l2c_core::{AuthenticatedClient, Scope};
use tokio::sync::mpsc;

use super::openapi::ProblemDoc;
use crate::error::AppError;
use crate::state::AppState;
use crate::store::orders::{EXPORT_COLUMNS, EXPORT_SQL, export_line};

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

/// An error that ends the body early (the client sees a truncated download, never a partial
/// file that looks complete: the chunked encoding is not terminated).
#[derive(Debug, thiserror::Error)]
#[error("the export failed while streaming")]
struct ExportFailed;

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
        (status = 401, description = "Missing or invalid token", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks `reports:export`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited or more than 5 exports running", body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["reports:export"]))
)]
pub async fn export_orders(
    State(state): State<AppState>,
    Extension(client): Extension<AuthenticatedClient>,
) -> Result<Response, AppError> {
    // Take the connection before answering, so a database that is down is a clean 500.
    let mut conn = state
        .db
        .pool()
        .acquire()
        .await
        .map_err(crate::store::StoreError::from)?;
    let (tx, rx) = mpsc::channel::<Result<Bytes, ExportFailed>>(CHANNEL_CHUNKS);
    let client_id = client.client_id.clone();
    tokio::spawn(async move {
        let mut chunk = String::with_capacity(CHUNK_BYTES + 256);
        chunk.push_str(&EXPORT_COLUMNS.join(","));
        chunk.push_str("\r\n");
        let mut rows = sqlx::query(EXPORT_SQL)
            .bind(client_id.as_str())
            .fetch(&mut *conn);
        while let Some(row) = rows.next().await {
            let line = match row
                .map_err(crate::store::StoreError::from)
                .and_then(|r| export_line(&r))
            {
                Ok(line) => line,
                Err(e) => {
                    tracing::error!(error = %e, "order export failed");
                    let _ = tx.send(Err(ExportFailed)).await;
                    return;
                }
            };
            chunk.push_str(&line);
            if chunk.len() >= CHUNK_BYTES {
                let full = std::mem::replace(&mut chunk, String::with_capacity(CHUNK_BYTES + 256));
                if tx.send(Ok(Bytes::from(full))).await.is_err() {
                    return; // the client went away
                }
            }
        }
        if !chunk.is_empty() {
            let _ = tx.send(Ok(Bytes::from(chunk))).await;
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
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
