//! The webhook outbox (migration 0003): who subscribed, what is waiting to be sent, what was
//! sent, and how long it is kept. Persistence only: what to do after an attempt is decided by
//! the dispatcher ([`crate::dispatch`]), which hands the store a [`NextStep`].
//!
//! | step | module | called by |
//! |---|---|---|
//! | subscriptions: create (capped), list, get, delete, rotate the secret | [`subscriptions`] | the subscription use case |
//! | outbox write: events of a state change, one delivery per matching subscription, **inside the caller's transaction** | [`enqueue`] ([`enqueue_in`]) | the order sync use case |
//! | delivery queue: claim due deliveries under a lease with what their attempts need | [`queue`] ([`WebhookStore::claim`], [`WebhookStore::queue_stats`]) | the dispatcher, `/metrics` |
//! | recording: many attempts in one transaction, each under its lease, and the deliveries moved on | [`record`] ([`WebhookStore::finish_all`]) | the dispatcher |
//! | test event: a `PING` for one subscription, on request | [`enqueue`] ([`WebhookStore::enqueue_ping`]) | the subscription use case |
//! | delivery log: a subscription's deliveries with their attempts (paged, filtered), the signed bodies, redelivery, recovery of the failed ones since a time | [`log`] | the subscription use case, the console |
//! | retention: finished deliveries and orphaned events past `--webhook-retention` | [`retention`] | the dispatcher |
//!
//! Committing the change commits its events; rolling back loses both. Secrets are stored as
//! is (`whsec_…` text): the server needs the key itself to sign, so it cannot keep a hash.
//! Anyone who can read `webhook_subscriptions` can forge deliveries.
//!
//! ```no_run
//! # async fn demo(db: &l2c_server::store::Db, client: &l2c_core::ClientId,
//! #   events: Vec<l2c_core::api::events::EventData>) -> Result<(), l2c_server::store::StoreError> {
//! use l2c_server::store::{sql::begin_write, outbox::enqueue_in};
//!
//! let mut tx = begin_write(db).await?;
//! // … apply the state change with `&mut tx` …
//! enqueue_in(&mut tx, client, &events, db.now_millis()).await?;
//! tx.commit().await?;
//! # Ok(()) }
//! ```

pub mod announce;
pub mod enqueue;
pub mod log;
pub mod queue;
pub mod record;
pub mod retention;
pub mod subscriptions;

use l2c_core::api::events::EventType;

use super::{Db, StoreError};

pub use enqueue::enqueue_in;
pub use log::{DeliveryFilter, status_name};
pub use queue::{AttemptRecord, Job, NextStep, QueueStats};
pub use record::{MAX_FINISH_BATCH, Outcome};
pub use retention::Purged;
pub use subscriptions::Subscription;

fn corrupt(detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        table: "webhook_subscriptions",
        detail: detail.into(),
    }
}

/// `ORDER_CREATED,PAYMENT_RECEIVED` → the types.
fn parse_events(s: &str) -> Result<Vec<EventType>, StoreError> {
    s.split(',')
        .filter(|t| !t.is_empty())
        .map(|t| t.parse().map_err(|_| corrupt(format!("event type `{t}`"))))
        .collect()
}

fn join_events(events: &[EventType]) -> String {
    events
        .iter()
        .map(|e| e.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Webhook reads and writes. Get one with [`Db::webhooks`].
#[derive(Debug, Clone, Copy)]
pub struct WebhookStore<'a> {
    db: &'a Db,
}

impl Db {
    /// Webhook subscriptions and deliveries.
    pub fn webhooks(&self) -> WebhookStore<'_> {
        WebhookStore { db: self }
    }
}
