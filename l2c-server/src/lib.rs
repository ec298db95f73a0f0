//! The L2C open platform reference server.
#![warn(missing_docs)]

pub mod domain;
