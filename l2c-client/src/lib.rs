//! Typed Rust SDK for the L2C open platform.
#![warn(missing_docs)]
