//! The handlers' error type: every failure becomes an RFC 9457 problem+json response.
//!
//! Handlers return `Result<_, AppError>`. A [`Problem`] goes to the client as is; store and
//! internal failures are logged with their cause and answered with a generic 500 that leaks
//! nothing. The `requestId` member is filled in by the [`problem_request_id`] middleware, which
//! [`app`](crate::app) installs inside the request-id layer.
//!
//! # Refusals are not recorded by idempotency
//!
//! A handler refuses a request before it writes anything: its checks run first and its writes
//! happen in one transaction that a refusal rolls back. So an [`AppError`] that is a client
//! error (4xx) — a body, field or business-rule refusal, an unknown id, text the database
//! cannot store — is answered with
//! [`NotExecuted`](l2c_core::NotExecuted) in the response extensions, here, once, for every
//! handler: the idempotency layer does not record it, and the corrected retry with the same key
//! runs. The exception is **409 Conflict**, a business outcome about the state of stored data
//! (a lead owned by another client, an illegal transition): it is recorded and replayed like a
//! success unless the handler says it was refused before any write with
//! [`AppError::Refused`] (a per-client cap, a lost race the client should retry).
//! Server errors (5xx) are never recorded either (the idempotency layer's own rule).
//!
//! # The database unavailable
//!
//! A store failure that means the database cannot be reached right now — no connection within
//! `--db-acquire-timeout`, a connection refused or reset, the server shutting down (SQLSTATE
//! class 08 or 57P) — is answered **503 `database_unavailable` with `Retry-After`**, not 500:
//! nothing was written (the transaction never committed), and the same request with the same
//! idempotency key succeeds once the database is back.
//!
//! ```
//! use axum::response::IntoResponse;
//! use l2c_core::Problem;
//! use l2c_server::error::AppError;
//!
//! let err = AppError::from(Problem::not_found("no order `o-1`"));
//! let res = err.into_response();
//! assert_eq!(res.status(), 404);
//! assert_eq!(res.headers()["content-type"], "application/problem+json");
//! ```

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use l2c_core::{Problem, RequestId};

use crate::store::StoreError;

/// An error a handler returns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// A problem to report to the client as is. A 4xx other than 409 is marked
    /// [`NotExecuted`](l2c_core::NotExecuted) (see the [module docs](self)).
    #[error("{0}")]
    Problem(Problem),
    /// A problem answering a request refused before it wrote anything, whatever its status
    /// (e.g. a 409 for a per-client cap): always marked [`NotExecuted`](l2c_core::NotExecuted),
    /// so the retry with the same idempotency key runs.
    #[error("{0}")]
    Refused(Problem),
    /// A database failure: logged, answered with a generic 500.
    #[error("store error")]
    Store(#[from] StoreError),
    /// Any other server-side failure: logged, answered with a generic 500.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    /// An internal failure; `what` is logged, never sent.
    pub fn internal(what: impl Into<String>) -> Self {
        AppError::Internal(what.into())
    }

    /// A refusal made before any write, whatever its status: see [`AppError::Refused`].
    pub fn refused(problem: impl Into<Problem>) -> Self {
        AppError::Refused(problem.into())
    }

    /// Whether the request was refused before it changed anything, so its answer must not be
    /// recorded by the idempotency layer: every client error but a plain 409, and
    /// [`AppError::Refused`].
    pub fn is_refusal(&self) -> bool {
        match self {
            AppError::Problem(p) => (400..500).contains(&p.status) && p.status != 409,
            AppError::Refused(_) => true,
            // The database refused the text: the statement failed, its transaction rolls back.
            AppError::Store(e) => is_invalid_text(e),
            AppError::Internal(_) => false,
        }
    }

    /// The problem the client sees.
    pub fn to_problem(&self) -> Problem {
        match self {
            AppError::Problem(p) | AppError::Refused(p) => p.clone(),
            AppError::Store(e) if is_invalid_text(e) => Problem::bad_request(
                "invalid_text",
                "a value holds characters the database cannot store (e.g. a NUL byte)",
            ),
            AppError::Store(e) if is_unavailable(e) => Problem::new(
                http::StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                "Service Unavailable",
            )
            .with_detail(
                "the database cannot be reached right now; nothing was changed, retry later with \
                 the same idempotency key",
            ),
            AppError::Store(_) | AppError::Internal(_) => Problem::internal(),
        }
    }

    /// Whether this is the database being unreachable (answered 503 with `Retry-After`).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, AppError::Store(e) if is_unavailable(e))
    }
}

/// Seconds in the `Retry-After` of a `database_unavailable` answer.
pub const DATABASE_RETRY_AFTER_SECS: u64 = 2;

/// Whether a store error means the database cannot be reached right now rather than a failed
/// statement: no pooled connection in time, a transport failure, or the server refusing or
/// dropping connections (SQLSTATE class 08, connection exception, and 57P01–57P03, shutting
/// down or starting up).
pub fn is_unavailable(e: &StoreError) -> bool {
    let StoreError::Database(e) = e else {
        return false;
    };
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => false,
    }
}

/// Whether the database refused a text value itself: PostgreSQL's SQLSTATE 22021
/// (`character_not_in_repertoire`, e.g. a NUL byte) or 22P05 (`untranslatable_character`).
/// That is the client's input, not a server failure, so it is answered with a 400.
fn is_invalid_text(e: &StoreError) -> bool {
    match e {
        StoreError::Database(sqlx::Error::Database(db)) => {
            matches!(db.code().as_deref(), Some("22021" | "22P05"))
        }
        _ => false,
    }
}

impl From<Problem> for AppError {
    fn from(p: Problem) -> Self {
        AppError::Problem(p)
    }
}

/// Marks a response built from a [`Problem`], so [`problem_request_id`] can add the request id.
#[derive(Debug, Clone)]
pub struct ProblemBody(pub Problem);

/// Turns a problem into a response, remembering it in the response's extensions.
pub fn problem_response(problem: Problem) -> Response {
    let mut res: Response = problem.clone().into_response::<Body>();
    res.extensions_mut().insert(ProblemBody(problem));
    res
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match &self {
            AppError::Problem(_) | AppError::Refused(_) => {}
            AppError::Store(e) if is_invalid_text(e) => {
                tracing::warn!(error = %e, source = ?std::error::Error::source(e), "text refused by the database");
            }
            AppError::Store(e) if is_unavailable(e) => {
                tracing::warn!(error = %e, source = ?std::error::Error::source(e), "database unavailable");
            }
            AppError::Store(e) => {
                tracing::error!(error = %e, source = ?std::error::Error::source(e), "store failure");
            }
            AppError::Internal(what) => tracing::error!(error = %what, "internal failure"),
        }
        let mut res = problem_response(self.to_problem());
        if self.is_unavailable() {
            res.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from(DATABASE_RETRY_AFTER_SECS),
            );
        }
        if self.is_refusal() {
            res.extensions_mut().insert(l2c_core::NotExecuted);
        }
        res
    }
}

/// Middleware: rewrites problem responses made by [`AppError`] so they carry the `requestId`.
pub async fn problem_request_id(req: Request, next: Next) -> Response {
    let id = req.extensions().get::<RequestId>().cloned();
    with_request_id(id, next.run(req).await)
}

/// [`problem_request_id`] as an [`Around`](crate::inplace::Around) middleware, which
/// [`crate::app`] runs without cloning the route it wraps.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProblemRequestId;

impl crate::inplace::Around for ProblemRequestId {
    fn around<S: crate::inplace::Route>(
        &self,
        inner: &mut S,
        req: Request,
    ) -> crate::inplace::InPlaceFuture {
        let id = req.extensions().get::<RequestId>().cloned();
        let answer = crate::inplace::call(inner, req);
        Box::pin(async move { Ok(with_request_id(id, answer.await)) })
    }
}

/// `res` with request `id` in its problem body, when it is a problem without one.
fn with_request_id(id: Option<RequestId>, mut res: Response) -> Response {
    if let (Some(id), Some(ProblemBody(problem))) = (id, res.extensions_mut().remove()) {
        if problem.request_id.is_none() {
            let rebuilt = problem.with_request_id(id.as_str());
            let (mut parts, _) = res.into_parts();
            parts.extensions.insert(ProblemBody(rebuilt.clone()));
            let fresh = rebuilt.into_response::<Body>();
            let (_, body) = fresh.into_parts();
            res = Response::from_parts(parts, body);
            // The content length of the old body no longer holds.
            res.headers_mut().remove(http::header::CONTENT_LENGTH);
        }
    }
    res
}

/// The OpenAPI schema of a problem body for the handlers' `#[utoipa::path]` annotations:
/// l2c-core's [`Problem`] itself, whose schema is derived there (feature `openapi`, schema name
/// `Problem`).
pub type ProblemDoc = Problem;

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(e: sqlx::Error) -> Response {
        AppError::from(StoreError::Database(e)).into_response()
    }

    #[test]
    fn an_unreachable_database_is_503_with_retry_after() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        for e in [sqlx::Error::PoolTimedOut, sqlx::Error::Io(refused)] {
            let res = answer(e);
            assert_eq!(res.status(), 503);
            assert_eq!(res.headers()["retry-after"], "2");
            let Some(ProblemBody(problem)) = res.extensions().get::<ProblemBody>() else {
                panic!("a problem body");
            };
            assert_eq!(problem.code, "database_unavailable");
            // Not a refusal: a 5xx, never recorded by the idempotency layer anyway.
            assert!(res.extensions().get::<l2c_core::NotExecuted>().is_none());
        }
    }

    #[test]
    fn other_store_failures_stay_500_without_retry_after() {
        let res = answer(sqlx::Error::RowNotFound);
        assert_eq!(res.status(), 500);
        assert!(res.headers().get("retry-after").is_none());
        let res = AppError::from(StoreError::Invalid("x".into())).into_response();
        assert_eq!(res.status(), 500);
    }
}
