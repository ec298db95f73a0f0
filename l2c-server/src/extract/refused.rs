//! [`Refused`]: a request refused before its handler ran, and the problems that name a field.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use l2c_core::Problem;

use crate::domain::FieldError;
use crate::error::AppError;

/// An extractor rejection: the request was refused before the handler ran.
///
/// Answers like the [`AppError`] it wraps, with
/// [`NotExecuted`](l2c_core::idempotency::NotExecuted) in the response extensions so the
/// idempotency layer does not record the refusal.
///
/// ```
/// use axum::response::IntoResponse;
/// use l2c_core::Problem;
/// use l2c_core::idempotency::NotExecuted;
/// use l2c_server::extract::Refused;
///
/// let res = Refused::from(Problem::bad_request("malformed_json", "not JSON")).into_response();
/// assert_eq!(res.status(), 400);
/// assert!(res.extensions().get::<NotExecuted>().is_some());
/// ```
#[derive(Debug)]
pub struct Refused(pub AppError);

impl From<AppError> for Refused {
    fn from(e: AppError) -> Self {
        Refused(e)
    }
}

impl From<Problem> for Refused {
    fn from(p: Problem) -> Self {
        Refused(AppError::from(p))
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        not_executed(self.0.into_response())
    }
}

/// Marks `res` as the answer to a request that did nothing, so the idempotency layer does not
/// record it (see [`NotExecuted`](l2c_core::idempotency::NotExecuted)).
pub fn not_executed(mut res: Response) -> Response {
    res.extensions_mut()
        .insert(l2c_core::idempotency::NotExecuted);
    res
}

/// 422 naming the field, with the error's code (`invalid_field` unless the rule has its own).
pub fn invalid_field(err: &FieldError) -> Problem {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        err.code,
        "Unprocessable Content",
    )
    .with_detail(err.to_string())
    .with_extension("field", err.field.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_marked_not_executed() {
        let res = Refused::from(Problem::bad_request("malformed_json", "x")).into_response();
        assert_eq!(res.status(), 400);
        assert!(
            res.extensions()
                .get::<l2c_core::idempotency::NotExecuted>()
                .is_some()
        );
    }
}
