//! Examples and end-to-end tests live in `examples/` and `tests/`.
