//! The open platform's wire types, shared by the server and the SDK so the two cannot drift.
//!
//! JSON fields are camelCase (the spec's `pageSize`), except the OAuth token exchange in
//! [`oauth`], which keeps RFC 6749's snake_case.

pub mod events;
pub mod oauth;
pub mod status;
