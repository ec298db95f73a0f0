//! Liveness, readiness and metrics.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};

use crate::state::AppState;

/// `GET /healthz`: the process is up (always 200).
#[utoipa::path(get, path = "/healthz", tag = "operations", operation_id = "healthz",
    responses((status = 200, description = "The process is up", body = String, content_type = "text/plain")),
    security(()))]
pub async fn healthz() -> Response {
    (
        StatusCode::OK,
        [(header::CACHE_CONTROL, "no-store")],
        "ok\n",
    )
        .into_response()
}

/// `GET /readyz`: 200 when the database answers, 503 otherwise.
#[utoipa::path(get, path = "/readyz", tag = "operations", operation_id = "readyz",
    responses(
        (status = 200, description = "The database answers", body = String, content_type = "text/plain"),
        (status = 503, description = "The database does not answer", body = String, content_type = "text/plain"),
    ),
    security(()))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    if state.db.ping().await {
        (
            StatusCode::OK,
            [(header::CACHE_CONTROL, "no-store")],
            "ready\n",
        )
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CACHE_CONTROL, "no-store")],
            "database unreachable\n",
        )
            .into_response()
    }
}

/// How long a scrape waits for the webhook queue query before serving the last values.
const QUEUE_QUERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// `GET /metrics`: every series of [`crate::observe::Metrics`] in the OpenMetrics text format.
/// The database pool gauges and the webhook queue depth and oldest pending age are read now
/// (the queue by one indexed query, bounded by a timeout: on failure the previous values stay).
pub async fn metrics(State(state): State<AppState>) -> Response {
    let m = &state.metrics;
    let (main, exports) = (state.db.pool(), state.db.exports());
    for (name, size, idle) in [
        ("main", main.size(), main.num_idle()),
        ("exports", exports.size(), exports.num_idle()),
    ] {
        let size = i64::from(size);
        let idle = i64::try_from(idle).unwrap_or(i64::MAX);
        m.set_db_pool(name, size.saturating_sub(idle).max(0), idle);
    }
    let queue = tokio::time::timeout(QUEUE_QUERY_TIMEOUT, state.db.webhooks().queue_stats()).await;
    match queue {
        Ok(Ok(stats)) => {
            let now = state.db.now_millis();
            let age = stats
                .oldest_created_at
                .map_or(0, |t| u64::try_from(now.saturating_sub(t)).unwrap_or(0));
            m.set_webhook_queue(stats.pending, std::time::Duration::from_millis(age));
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "reading the webhook queue for /metrics failed"),
        Err(_) => tracing::warn!("reading the webhook queue for /metrics timed out"),
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, crate::observe::CONTENT_TYPE)],
        m.render(),
    )
        .into_response()
}
