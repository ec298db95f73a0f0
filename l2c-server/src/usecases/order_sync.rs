//! Order sync (`POST /orders/sync`): upsert an ERP order by `externalOrderNo`.
//!
//! [`sync`] is the whole use case: validate the body ([`validate::sync_order`]), open one write
//! transaction, apply the change ([`sync_in`]: the status rules of
//! [`transitions`](crate::domain::transitions), the writes of [`store::orders::sync`](crate::store::orders::sync)), write
//! the webhook events it implies to the outbox ([`enqueue_in`]) in the same transaction, commit,
//! and wake the dispatcher. A create that loses a race to another transaction is run once
//! more, as an update of the order that won.
//!
//! [`sync_in`] is the change alone, inside a transaction the caller owns, for callers that
//! bundle it with writes of their own:
//!
//! ```no_run
//! # async fn demo(db: &l2c_server::store::Db, client: &l2c_core::ClientId,
//! #     body: &l2c_core::api::orders::SyncOrder) -> Result<(), Box<dyn std::error::Error>> {
//! use l2c_server::store::sql::begin_write;
//! use l2c_server::usecases::order_sync::sync_in;
//!
//! let mobile = l2c_server::domain::validate::sync_order(body)?;
//! let mut tx = begin_write(db).await?;
//! let outcome = sync_in(&mut tx, db.data_keys(), client, body, mobile.as_ref(), db.now_millis())
//!     .await?;
//! // write outcome.events to the outbox here, with `&mut tx`
//! tx.commit().await?;
//! # Ok(()) }
//! ```

use l2c_core::ClientId;
use l2c_core::api::events::{EventData, OrderCreated, OrderStatusChanged, PaymentReceived};
use l2c_core::api::orders::{SyncOrder, SyncOrderResponse};
use l2c_core::api::status::{OrderStatus, PaymentStatus};
use l2c_core::api::{CustomerId, OrderId};
use sqlx::AnyConnection;

use crate::domain::transitions::{fulfilment_allowed, payment_allowed, valid_initial_status};
use crate::domain::{FieldError, Mobile, new_id, validate};
use crate::seal::DataKeys;
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::customers::{self, CustomerContact};
use crate::store::orders::sync::{self as orders, StoredOrder};
use crate::store::outbox::enqueue_in;
use crate::store::sql::{begin_write, millis_to_cst};

/// Why a sync was refused. Nothing is written in any of these cases.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The body breaks a field rule ([`validate::sync_order`]).
    #[error("{0}")]
    Invalid(FieldError),
    /// The fulfilment status may not move from `from` to `to`.
    #[error("order status cannot change from {from} to {to}")]
    IllegalTransition {
        /// The stored status.
        from: OrderStatus,
        /// The requested status.
        to: OrderStatus,
    },
    /// The payment status may not move from `from` to `to`.
    #[error("payment status cannot change from {from} to {to}")]
    IllegalPaymentTransition {
        /// The stored payment status.
        from: PaymentStatus,
        /// The requested payment status.
        to: PaymentStatus,
    },
    /// A new order cannot start in this status.
    #[error("a new order cannot start in status {0}")]
    IllegalInitialStatus(OrderStatus),
    /// A new order names no customer.
    #[error("a new order needs `customerId` or `customer`")]
    CustomerRequired,
    /// `customerId` is not a customer the caller may see.
    #[error("`customerId` is not a customer this client may use")]
    UnknownCustomer,
    /// The body names another customer than the order has.
    #[error("the order belongs to another customer")]
    CustomerMismatch,
    /// A payment's `(method, channelTransactionId)` is already recorded on another order of the
    /// same client (other clients' payments never conflict).
    #[error(
        "payment {method}/{channel_transaction_id} is already recorded on another of your orders"
    )]
    PaymentConflict {
        /// The payment method.
        method: &'static str,
        /// The channel transaction id.
        channel_transaction_id: String,
    },
    /// Another transaction created the same order first (PostgreSQL); roll back and run the
    /// sync again, which then updates that order.
    #[error("the order was created concurrently; retry")]
    ConcurrentCreate,
    /// A database failure.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for SyncError {
    fn from(e: sqlx::Error) -> Self {
        SyncError::Store(StoreError::Database(e))
    }
}

/// The result of a sync: the response body and the webhook events the change implies.
#[derive(Debug, Clone)]
pub struct SyncOutcome {
    /// The response body.
    pub response: SyncOrderResponse,
    /// `ORDER_CREATED`, `ORDER_STATUS_CHANGED` and `PAYMENT_RECEIVED` data, in the order they
    /// happened; empty when the sync was not applied.
    pub events: Vec<EventData>,
}

/// Syncs one order of `client` (see the module docs): validated, applied, its events queued
/// and committed in one transaction, the dispatcher woken when a delivery was queued.
///
/// # Errors
///
/// [`SyncError`]; nothing was written. [`SyncError::ConcurrentCreate`] only when the create
/// race was lost twice.
pub async fn sync(
    state: &AppState,
    client: &ClientId,
    body: &SyncOrder,
) -> Result<SyncOrderResponse, SyncError> {
    let mobile = validate::sync_order(body).map_err(SyncError::Invalid)?;
    let mut attempt = 0;
    let (mut tx, now, SyncOutcome { response, events }) = loop {
        attempt += 1;
        let mut tx = begin_write(&state.db).await?;
        // Read once: the order's times and its events' share it.
        let now = state.db.now_millis();
        match sync_in(
            &mut tx,
            state.db.data_keys(),
            client,
            body,
            mobile.as_ref(),
            now,
        )
        .await
        {
            Ok(outcome) => break (tx, now, outcome),
            // Lost a race to create the same order: once more, as an update of that order.
            Err(SyncError::ConcurrentCreate) if attempt < 2 => {}
            // Dropping `tx` rolls back whatever the sync wrote before it was refused.
            Err(e) => return Err(e),
        }
    };
    // Webhook outbox: the events of this change are written in the same transaction.
    let queued = enqueue_in(&mut tx, client, &events, now).await?;
    tx.commit().await.map_err(StoreError::from)?;
    if queued > 0 {
        state.webhook_wake.notify_one();
    }
    Ok(response)
}

/// Applies one sync inside `conn`'s transaction (see the module docs).
///
/// `customer_mobile` is the normalized `customer.mobile` of the body, from
/// [`validate::sync_order`], which must have accepted `body`.
///
/// - unknown `(client, externalOrderNo)`: the order is created (`created`, `applied`);
/// - `version` not above the stored one: nothing is written (`applied: false`);
/// - otherwise the transitions are checked, the order updated and a history row added.
///
/// Each new payment of the body is recorded once; a payment already recorded on this order is
/// skipped. `(method, channelTransactionId)` is unique per client, like `externalOrderNo`.
///
/// # Errors
///
/// [`SyncError`]; the caller must then roll the transaction back (dropping it does).
pub async fn sync_in(
    conn: &mut AnyConnection,
    keys: &DataKeys,
    client: &ClientId,
    body: &SyncOrder,
    customer_mobile: Option<&Mobile>,
    now: i64,
) -> Result<SyncOutcome, SyncError> {
    match orders::lock_for_sync(conn, client, &body.external_order_no).await? {
        None => create(conn, keys, client, body, customer_mobile, now).await,
        Some(s) => update(conn, keys, client, body, customer_mobile, s, now).await,
    }
}

/// The customer a new order names, linked to `client`: `customerId` (one the client may see,
/// linked with the customer's own details) or `customer` (found or created by mobile, linked
/// with the name given). `None` when the body names neither.
async fn resolve_customer(
    conn: &mut AnyConnection,
    keys: &DataKeys,
    client: &ClientId,
    body: &SyncOrder,
    customer_mobile: Option<&Mobile>,
    now: i64,
) -> Result<Option<CustomerId>, SyncError> {
    if let Some(id) = &body.customer_id {
        if !customers::visible_to(conn, client, id.as_str()).await? {
            return Err(SyncError::UnknownCustomer);
        }
        customers::link_by_id(conn, keys, client, id, now).await?;
        return Ok(Some(id.clone()));
    }
    match (&body.customer, customer_mobile) {
        (Some(c), Some(mobile)) => {
            let contact = CustomerContact {
                mobile,
                name: &c.name,
                province: None,
                city: None,
            };
            let (id, _) = customers::find_or_create(conn, keys, contact, now).await?;
            customers::link(conn, keys, client, &id, contact.into(), now).await?;
            Ok(Some(id))
        }
        _ => Ok(None),
    }
}

async fn create(
    conn: &mut AnyConnection,
    keys: &DataKeys,
    client: &ClientId,
    body: &SyncOrder,
    customer_mobile: Option<&Mobile>,
    now: i64,
) -> Result<SyncOutcome, SyncError> {
    if !valid_initial_status(body.status) {
        return Err(SyncError::IllegalInitialStatus(body.status));
    }
    let customer_id = resolve_customer(conn, keys, client, body, customer_mobile, now)
        .await?
        .ok_or(SyncError::CustomerRequired)?;
    let id = new_id("ord");
    if !orders::insert(conn, &id, client, body, customer_id.as_str(), now).await? {
        return Err(SyncError::ConcurrentCreate);
    }
    orders::insert_history(conn, &id, body, now).await?;
    let mut events = Vec::new();
    // ORDER_CREATED means "created with its deposit paid" (spec §5); validation lets an order
    // be UNPAID only when it is CANCELLED, and such an order is stored without the event.
    if body.payment_status != PaymentStatus::Unpaid {
        events.push(EventData::OrderCreated(OrderCreated::new(
            &id,
            &body.external_order_no,
            body.status,
            body.payment_status,
            body.amounts.clone(),
            customer_id.as_str(),
            version_u64(body.version),
        )));
    }
    let recorded = payments(conn, client, &id, body, now, &mut events).await?;
    Ok(SyncOutcome {
        response: SyncOrderResponse::new(
            OrderId::new(id),
            &body.external_order_no,
            true,
            true,
            body.status,
            body.payment_status,
            body.version,
            recorded,
        ),
        events,
    })
}

/// The answer to a sync that changes nothing: the stored order, acknowledged as not applied.
fn not_applied(stored: StoredOrder, body: &SyncOrder) -> SyncOutcome {
    SyncOutcome {
        response: SyncOrderResponse::new(
            OrderId::new(stored.id),
            &body.external_order_no,
            false,
            false,
            stored.status,
            stored.payment_status,
            stored.version,
            0,
        ),
        events: Vec::new(),
    }
}

async fn update(
    conn: &mut AnyConnection,
    keys: &DataKeys,
    client: &ClientId,
    body: &SyncOrder,
    customer_mobile: Option<&Mobile>,
    stored: StoredOrder,
    now: i64,
) -> Result<SyncOutcome, SyncError> {
    if body.version <= stored.version {
        return Ok(not_applied(stored, body));
    }
    if !fulfilment_allowed(stored.status, body.status) {
        return Err(SyncError::IllegalTransition {
            from: stored.status,
            to: body.status,
        });
    }
    if !payment_allowed(stored.payment_status, body.payment_status) {
        return Err(SyncError::IllegalPaymentTransition {
            from: stored.payment_status,
            to: body.payment_status,
        });
    }
    if let Some(id) = &body.customer_id {
        if id.as_str() != stored.customer_id {
            return Err(SyncError::CustomerMismatch);
        }
    } else if let Some(mobile) = customer_mobile {
        let same = customers::id_by_mobile(conn, keys, mobile)
            .await?
            .is_some_and(|id| id.as_str() == stored.customer_id);
        if !same {
            return Err(SyncError::CustomerMismatch);
        }
    }
    // A concurrent sync that committed a newer version in between makes this one a no-op.
    if !orders::update_if_newer(conn, &stored.id, body, now).await? {
        return Ok(not_applied(stored, body));
    }
    orders::insert_history(conn, &stored.id, body, now).await?;
    let mut events = Vec::new();
    if stored.status != body.status || stored.payment_status != body.payment_status {
        events.push(EventData::OrderStatusChanged(OrderStatusChanged::new(
            &stored.id,
            &body.external_order_no,
            stored.status,
            body.status,
            body.payment_status,
            version_u64(body.version),
            millis_to_cst(now),
        )));
    }
    let recorded = payments(conn, client, &stored.id, body, now, &mut events).await?;
    Ok(SyncOutcome {
        response: SyncOrderResponse::new(
            OrderId::new(stored.id),
            &body.external_order_no,
            true,
            false,
            body.status,
            body.payment_status,
            body.version,
            recorded,
        ),
        events,
    })
}

/// Records the body's payments on order `order_id` of `client`. `(method,
/// channelTransactionId)` is unique per client: one already on this order is skipped, one on
/// another order of the same client is [`SyncError::PaymentConflict`], and other clients'
/// payments are never consulted.
async fn payments(
    conn: &mut AnyConnection,
    client: &ClientId,
    order_id: &str,
    body: &SyncOrder,
    now: i64,
    events: &mut Vec<EventData>,
) -> Result<u32, SyncError> {
    let mut recorded = 0;
    for p in &body.payments {
        let id = new_id("pay");
        if orders::insert_payment(conn, &id, client, order_id, p, now).await? {
            recorded += 1;
            events.push(EventData::PaymentReceived(PaymentReceived {
                order_id: order_id.to_owned(),
                external_order_no: body.external_order_no.clone(),
                payment_id: id,
                kind: p.kind.as_str().to_owned(),
                method: p.method.as_str().to_owned(),
                amount: p.amount,
                currency: body.amounts.currency.clone(),
                channel_transaction_id: p.channel_transaction_id.clone(),
                paid_at: p.paid_at,
            }));
            continue;
        }
        if orders::payment_owner(conn, client, p).await? != order_id {
            return Err(SyncError::PaymentConflict {
                method: p.method.as_str(),
                channel_transaction_id: p.channel_transaction_id.clone(),
            });
        }
    }
    Ok(recorded)
}

fn version_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}
