//! The client against a wiremock platform: tokens, retries, pagination, error decoding and the
//! typed resources. Every server starts with a catch-all mock, so a request no test expected
//! fails with a `404 unmatched_request` problem naming it.

#![allow(clippy::unwrap_used)]

mod auth;
mod common;
mod errors;
mod pagination;
mod resources;
mod retry;
