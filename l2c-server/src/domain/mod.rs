//! The business rules of the open platform, free of HTTP and storage: mobile normalization,
//! masking, the order status transition tables and input validation.

pub mod mask;
pub mod mobile;
pub mod transitions;
pub mod validate;

pub use mobile::Mobile;
pub use validate::FieldError;

/// A new opaque id with the given prefix, e.g. `lead_019aef…` (a UUIDv7, simple form).
///
/// Time-ordered: the first 48 bits are the creation time in milliseconds, the remaining 74
/// random. A new row's id then lands at the end of its primary key (and of the indexes that
/// hold it, e.g. `orders (customer_id)`) instead of on a random page, so an insert touches the
/// same few hot pages whether the table holds ten thousand rows or a million (random UUIDv4 ids
/// touched a cold page of every such index per insert once they outgrew the cache). The id
/// reveals when it was made, which the API shows anyway (`createdAt`); ids were never secrets
/// (every read checks the caller's client).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}
