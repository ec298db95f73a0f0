//! Verifying access tokens.

mod builder;
mod errors;
mod verify;

pub use self::builder::TokenVerifierBuilder;
pub use self::errors::{ConfigError, TokenError};
#[cfg(test)]
pub(super) use self::verify::check_strict_ed25519_r;
pub use self::verify::{DEFAULT_CACHE_CAPACITY, DEFAULT_MAX_TOKEN_LEN, MAX_LEEWAY, TokenVerifier};
