//! The business rules of the open platform, free of HTTP and storage: mobile normalization,
//! masking, the order status transition tables and input validation.

pub mod mask;
pub mod mobile;
pub mod transitions;
pub mod validate;

pub use mobile::Mobile;
pub use validate::FieldError;

/// A new opaque id with the given prefix, e.g. `lead_5f0c…` (a random UUID, simple form).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}
