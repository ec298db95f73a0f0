//! Extractors whose rejections are problem+json responses naming the offending field.
//!
//! [`JsonBody`] (and [`Json`], the same without the raw bytes) replaces axum's `Json`; [`Path`]
//! and [`Query`] replace axum's: same behaviour, but a malformed body or parameter becomes a
//! problem with a stable `code` and a `detail` (and, where there is one, a `field` extension
//! member) that says which field was wrong. One table for every extractor:
//!
//! | rejection | status | `code` |
//! |---|---|---|
//! | body over [`MAX_BODY_BYTES`] | 413 | `payload_too_large` |
//! | no `Content-Type: application/json` (or `application/…+json`) | 415 | `unsupported_media_type` |
//! | not JSON / truncated / trailing data after the value | 400 | `malformed_json` |
//! | wrong shape (missing field, wrong type, unknown enum value), named by its JSON path (`payments[0].amount`) | 422 | `invalid_body` |
//! | a value the domain refuses (bad mobile, negative amount, …), see [`invalid_field`] | 422 | `invalid_field` |
//! | `status` implies a paid deposit, `paymentStatus` is `UNPAID` | 422 | `status_payment_mismatch` |
//! | bad path parameter | 400 | `invalid_path_parameter` |
//! | bad query parameter | 400 | `invalid_query_parameter` |
//!
//! Every rejection is a [`Refused`]: its response carries
//! [`NotExecuted`](l2c_core::idempotency::NotExecuted), so the idempotency layer never records a
//! request the handler did not run and the corrected retry with the same key runs.

mod integral;
mod json;
mod params;
mod refused;

pub(crate) use json::json_media_type_with;
pub use json::{Json, JsonBody, MAX_BODY_BYTES, parse_json, payload_too_large};
pub(crate) use params::query_params;
pub use params::{Path, Query, invalid_query};
pub use refused::{Refused, invalid_field, not_executed};
