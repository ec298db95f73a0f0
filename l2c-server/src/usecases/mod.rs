//! Use cases: one module per operation that changes state, between the HTTP routes and the
//! domain rules and the store.
//!
//! A route ([`crate::routes`]) extracts the request, calls one function here and turns its
//! answer (or its error enum) into a response. The function owns the transaction: it asks the
//! pure rules of [`crate::domain`] (validation, status transitions), writes through
//! [`crate::store`] (persistence only), writes the webhook events of the change to the outbox
//! in the same transaction and wakes the dispatcher ([`crate::dispatch`]) once it has
//! committed. Reads that decide nothing (lists, status views) go from the route to the store
//! directly.
//!
//! | use case | module | routes |
//! |---|---|---|
//! | lead intake | [`lead_intake`] | `POST /leads/hook`, `POST /api/hooks/leads/{token}` (after the channel adapter, [`crate::channels`]) |
//! | order sync | [`order_sync`] | `POST /orders/sync` |
//! | lead source management | [`lead_sources`] | `POST/PUT/DELETE /lead-sources…`, `rotate` |
//! | subscription management | [`subscriptions`] | `POST/DELETE /webhooks…`, `rotate-secret`, `promote-secret`, `redeliver` |
//! | token-signing key rotation | [`signing_keys`] | none: `l2c-server keys rotate` / `keys list` |
//!
//! The CSV export (`GET /reports/orders/export`) changes nothing and decides nothing: it is a
//! read, streamed by [`crate::routes::reports`] from the store's
//! [`ExportWalk`](crate::store::orders::ExportWalk) under the export concurrency cap.

pub mod data_keys;
pub mod lead_intake;
pub mod lead_sources;
pub mod order_sync;
pub mod signing_keys;
pub mod subscriptions;
