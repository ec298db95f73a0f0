//! The l2c workspace's root package: it owns the runnable `examples/` and the end-to-end
//! `tests/`. The README below is compiled here, so its Rust snippets stay true.
#![doc = include_str!("../README.md")]
