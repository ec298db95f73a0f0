//! Orders synced from ERPs: upsert by `externalOrderNo`, transition checks, history, payments.
//!
//! [`sync_in`] does the whole change inside a transaction the caller owns and returns the
//! webhook events it implies, so the caller can write them to the outbox in the same
//! transaction before committing:
//!
//! ```no_run
//! # async fn demo(db: &l2c_server::store::Db, client: &l2c_core::ClientId,
//! #     body: &l2c_core::api::orders::SyncOrder) -> Result<(), Box<dyn std::error::Error>> {
//! use l2c_server::store::{sql::begin_write, orders::sync_in};
//!
//! let mobile = l2c_server::domain::validate::sync_order(body)?;
//! let mut tx = begin_write(db).await?;
//! let keys = db.data_keys();
//! let outcome = sync_in(&mut tx, keys, client, body, mobile.as_ref(), db.now_millis()).await?;
//! // write outcome.events to the outbox here, with `&mut tx`
//! tx.commit().await?;
//! # Ok(()) }
//! ```

use l2c_core::ClientId;
use l2c_core::api::events::{EventData, OrderCreated, OrderStatusChanged, PaymentReceived};
use l2c_core::api::orders::{
    OrderAmounts, OrderHistoryEntry, OrderStatusView, SyncOrder, SyncOrderResponse,
};
use l2c_core::api::status::{OrderStatus, PaymentStatus};
use l2c_core::api::{CustomerId, OrderId};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, Row};

use super::customers::{self, CustomerContact};
use super::sql::millis_to_cst;
use super::{Db, StoreError};
use crate::domain::transitions::{fulfilment_allowed, payment_allowed, valid_initial_status};
use crate::domain::{Mobile, new_id};
use crate::seal::DataKeys;

/// Why a sync was refused. Nothing is written in any of these cases.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
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

struct Stored {
    id: String,
    customer_id: String,
    status: OrderStatus,
    payment_status: PaymentStatus,
    version: i64,
}

fn corrupt(detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        table: "orders",
        detail: detail.into(),
    }
}

fn parse_status(row: &AnyRow, col: &str) -> Result<OrderStatus, StoreError> {
    let s: String = row.try_get(col)?;
    s.parse().map_err(|e| corrupt(format!("{col}: {e}")))
}

fn parse_payment_status(row: &AnyRow, col: &str) -> Result<PaymentStatus, StoreError> {
    let s: String = row.try_get(col)?;
    s.parse().map_err(|e| corrupt(format!("{col}: {e}")))
}

fn version_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Applies one sync inside `conn`'s transaction (see the module docs).
///
/// `customer_mobile` is the normalized `customer.mobile` of the body, from
/// [`validate::sync_order`](crate::domain::validate::sync_order), which must have accepted
/// `body`.
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
    // Lock the row on PostgreSQL so the transition is checked against the state it replaces;
    // SQLite transactions from `begin_write` already hold the database's write lock.
    let lock = if conn.backend_name() == "PostgreSQL" {
        " FOR UPDATE"
    } else {
        ""
    };
    let select = format!(
        "SELECT id, customer_id, status, payment_status, version FROM orders \
         WHERE client_id = $1 AND external_order_no = $2{lock}"
    );
    let row = sqlx::query(&select)
        .bind(client.as_str())
        .bind(&body.external_order_no)
        .fetch_optional(&mut *conn)
        .await?;
    let stored = match row {
        Some(r) => Some(Stored {
            id: r.try_get("id")?,
            customer_id: r.try_get("customer_id")?,
            status: parse_status(&r, "status")?,
            payment_status: parse_payment_status(&r, "payment_status")?,
            version: r.try_get("version")?,
        }),
        None => None,
    };
    match stored {
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
    let items = serde_json::to_string(&body.items).map_err(|e| corrupt(e.to_string()))?;
    let milestones = serde_json::to_string(&body.milestones).map_err(|e| corrupt(e.to_string()))?;
    let inserted = sqlx::query(
        "INSERT INTO orders (id, client_id, external_order_no, customer_id, status, \
         payment_status, total_fen, deposit_fen, paid_fen, currency, items, milestones, version, \
         created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
         ON CONFLICT (client_id, external_order_no) DO NOTHING",
    )
    .bind(&id)
    .bind(client.as_str())
    .bind(&body.external_order_no)
    .bind(customer_id.as_str())
    .bind(body.status.as_str())
    .bind(body.payment_status.as_str())
    .bind(body.amounts.total)
    .bind(body.amounts.deposit)
    .bind(body.amounts.paid)
    .bind(&body.amounts.currency)
    .bind(items)
    .bind(milestones)
    .bind(body.version)
    .bind(now)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Err(SyncError::ConcurrentCreate);
    }
    history(conn, &id, body, now).await?;
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
fn not_applied(stored: Stored, body: &SyncOrder) -> SyncOutcome {
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
    stored: Stored,
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
    let items = serde_json::to_string(&body.items).map_err(|e| corrupt(e.to_string()))?;
    let milestones = serde_json::to_string(&body.milestones).map_err(|e| corrupt(e.to_string()))?;
    // The version check is repeated in the WHERE clause, so a concurrent sync that committed a
    // newer version in between makes this one a no-op instead of a lost update.
    let updated = sqlx::query(
        "UPDATE orders SET status = $1, payment_status = $2, total_fen = $3, deposit_fen = $4, \
         paid_fen = $5, currency = $6, items = $7, milestones = $8, version = $9, updated_at = $10 \
         WHERE id = $11 AND version < $9",
    )
    .bind(body.status.as_str())
    .bind(body.payment_status.as_str())
    .bind(body.amounts.total)
    .bind(body.amounts.deposit)
    .bind(body.amounts.paid)
    .bind(&body.amounts.currency)
    .bind(items)
    .bind(milestones)
    .bind(body.version)
    .bind(now)
    .bind(&stored.id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if updated == 0 {
        return Ok(not_applied(stored, body));
    }
    history(conn, &stored.id, body, now).await?;
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

async fn history(
    conn: &mut AnyConnection,
    order_id: &str,
    body: &SyncOrder,
    now: i64,
) -> Result<(), SyncError> {
    sqlx::query(
        "INSERT INTO order_history (order_id, version, status, payment_status, changed_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(order_id)
    .bind(body.version)
    .bind(body.status.as_str())
    .bind(body.payment_status.as_str())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
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
        let inserted = sqlx::query(
            "INSERT INTO payments (id, client_id, order_id, kind, method, amount_fen, \
             channel_transaction_id, paid_at, recorded_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (client_id, method, channel_transaction_id) DO NOTHING",
        )
        .bind(&id)
        .bind(client.as_str())
        .bind(order_id)
        .bind(p.kind.as_str())
        .bind(p.method.as_str())
        .bind(p.amount)
        .bind(&p.channel_transaction_id)
        .bind(p.paid_at.to_rfc3339())
        .bind(now)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if inserted == 1 {
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
        let owner: String = sqlx::query(
            "SELECT order_id FROM payments \
             WHERE client_id = $1 AND method = $2 AND channel_transaction_id = $3",
        )
        .bind(client.as_str())
        .bind(p.method.as_str())
        .bind(&p.channel_transaction_id)
        .fetch_one(&mut *conn)
        .await?
        .try_get("order_id")?;
        if owner != order_id {
            return Err(SyncError::PaymentConflict {
                method: p.method.as_str(),
                channel_transaction_id: p.channel_transaction_id.clone(),
            });
        }
    }
    Ok(recorded)
}

/// Order reads. Get one with [`Db::orders`].
#[derive(Debug, Clone, Copy)]
pub struct OrderStore<'a> {
    db: &'a Db,
}

impl Db {
    /// The orders.
    pub fn orders(&self) -> OrderStore<'_> {
        OrderStore { db: self }
    }
}

/// The columns of one order row in the CSV export, in order.
pub const EXPORT_COLUMNS: [&str; 12] = [
    "orderId",
    "externalOrderNo",
    "customerId",
    "status",
    "statusLabel",
    "paymentStatus",
    "paymentStatusLabel",
    "total",
    "deposit",
    "paid",
    "currency",
    "updatedAt",
];

impl OrderStore<'_> {
    /// The status view of one of `client`'s own orders, by platform id or by its
    /// `externalOrderNo`; `None` when the client has no such order. Other clients' orders are
    /// never shown, whatever the client's grants (the all-customers grant widens customers
    /// only).
    ///
    /// # Errors
    ///
    /// [`StoreError`] when a query fails or a row is broken.
    pub async fn status_view(
        &self,
        client: &ClientId,
        id_or_external_no: &str,
    ) -> Result<Option<OrderStatusView>, StoreError> {
        let mut conn = self.db.pool().acquire().await?;
        let row = sqlx::query(
            "SELECT id, external_order_no, status, payment_status, total_fen, deposit_fen, \
             paid_fen, currency, version, updated_at FROM orders \
             WHERE client_id = $2 AND (id = $1 OR external_order_no = $1) \
             ORDER BY CASE WHEN id = $1 THEN 0 ELSE 1 END LIMIT 1",
        )
        .bind(id_or_external_no)
        .bind(client.as_str())
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let id: String = row.try_get("id")?;
        let mut view = OrderStatusView::new(
            OrderId::new(id.clone()),
            row.try_get::<String, _>("external_order_no")?,
            parse_status(&row, "status")?,
            parse_payment_status(&row, "payment_status")?,
            OrderAmounts::cny(
                row.try_get("total_fen")?,
                row.try_get("deposit_fen")?,
                row.try_get("paid_fen")?,
            ),
            row.try_get("version")?,
            millis_to_cst(row.try_get("updated_at")?),
        );
        view.amounts.currency = row.try_get("currency")?;
        let history = sqlx::query(
            "SELECT status, payment_status, version, changed_at FROM order_history \
             WHERE order_id = $1 ORDER BY version",
        )
        .bind(&id)
        .fetch_all(&mut *conn)
        .await?;
        for h in &history {
            view.history.push(OrderHistoryEntry::new(
                parse_status(h, "status")?,
                parse_payment_status(h, "payment_status")?,
                h.try_get("version")?,
                millis_to_cst(h.try_get("changed_at")?),
            ));
        }
        Ok(Some(view))
    }

    /// How many payments an order has recorded.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] when the query fails.
    pub async fn payment_count(&self, order_id: &OrderId) -> Result<i64, StoreError> {
        Ok(
            sqlx::query("SELECT COUNT(*) AS n FROM payments WHERE order_id = $1")
                .bind(order_id.as_str())
                .fetch_one(self.db.pool())
                .await?
                .try_get("n")?,
        )
    }

    /// How many orders are stored.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] when the query fails.
    pub async fn count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM orders")
            .fetch_one(self.db.pool())
            .await?
            .try_get("n")?)
    }
}

/// One CSV line (with the trailing `\r\n`) of an export row, RFC 4180 quoting where needed.
///
/// # Errors
///
/// [`StoreError`] when the row is broken.
pub fn export_line(row: &AnyRow) -> Result<String, StoreError> {
    let status = parse_status(row, "status")?;
    let payment = parse_payment_status(row, "payment_status")?;
    let updated = millis_to_cst(row.try_get("updated_at")?);
    let fields: [String; 12] = [
        row.try_get("id")?,
        row.try_get("external_order_no")?,
        row.try_get("customer_id")?,
        status.as_str().to_owned(),
        status.label().to_owned(),
        payment.as_str().to_owned(),
        payment.label().to_owned(),
        row.try_get::<i64, _>("total_fen")?.to_string(),
        row.try_get::<i64, _>("deposit_fen")?.to_string(),
        row.try_get::<i64, _>("paid_fen")?.to_string(),
        row.try_get("currency")?,
        updated.to_rfc3339(),
    ];
    let mut line = String::with_capacity(160);
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        csv_field(&mut line, f);
    }
    line.push_str("\r\n");
    Ok(line)
}

/// Appends `value` as one CSV field. Values starting with `=`, `+`, `-`, `@` are prefixed with
/// `'` so spreadsheet programs do not run them as formulas (ERP order numbers are partner input).
fn csv_field(out: &mut String, value: &str) {
    let guarded;
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        guarded = format!("'{value}");
        guarded.as_str()
    } else {
        value
    };
    if value.contains([',', '"', '\r', '\n']) {
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

/// The position of an order in the export walk: `(created_at, id)`. Both are set when the order
/// is created and never change, and `id` is unique, so the key orders a client's orders totally
/// and stably: orders synced or updated while an export runs neither move nor repeat.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ExportKey {
    created_at: i64,
    id: String,
}

impl ExportKey {
    /// A key before every order.
    fn start() -> Self {
        Self {
            created_at: i64::MIN,
            id: String::new(),
        }
    }

    fn of(row: &AnyRow) -> Result<Self, StoreError> {
        Ok(Self {
            created_at: row.try_get("created_at")?,
            id: row.try_get("id")?,
        })
    }
}

/// The key of the client's newest order in export order.
const EXPORT_END_SQL: &str = "SELECT created_at, id FROM orders WHERE client_id = $1 \
     ORDER BY created_at DESC, id DESC LIMIT 1";

/// One batch of the export: the orders after `($2, $3)` up to `($4, $5)` included, at most `$6`.
/// The row-value comparisons seek in the `orders_client_export` index (migration 0006).
const EXPORT_BATCH_SQL: &str = "SELECT id, external_order_no, customer_id, status, \
     payment_status, total_fen, deposit_fen, paid_fen, currency, created_at, updated_at \
     FROM orders WHERE client_id = $1 AND (created_at, id) > ($2, $3) \
     AND (created_at, id) <= ($4, $5) ORDER BY created_at, id LIMIT $6";

/// A client's orders for the CSV export, oldest first, read in keyset-paginated batches.
///
/// Each [`ExportWalk::next_batch`] takes a pool connection for one short query and gives it
/// back before returning, so an export whose reader is slow (or gone quiet) holds no database
/// connection while it waits. The walk resumes after the last `(created_at, id)` it returned,
/// which never skips or repeats an order, whatever is written meanwhile. It ends at the
/// client's newest order as of the first batch: orders created afterwards belong to the next
/// export, so a walk always ends however fast orders arrive.
///
/// ```no_run
/// # async fn demo(db: &l2c_server::store::Db) -> Result<(), l2c_server::store::StoreError> {
/// use l2c_server::store::orders::ExportWalk;
///
/// let mut walk = ExportWalk::new(l2c_core::ClientId::new("cli_1"));
/// while !walk.is_done() {
///     for line in walk.next_batch(db.exports(), 1000).await? {
///         print!("{line}");
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ExportWalk {
    client: ClientId,
    after: ExportKey,
    /// The last key of the walk; `None` until the first batch has read it.
    end: Option<ExportKey>,
    done: bool,
}

impl ExportWalk {
    /// A walk over `client`'s orders, before its first batch.
    pub fn new(client: ClientId) -> Self {
        Self {
            client,
            after: ExportKey::start(),
            end: None,
            done: false,
        }
    }

    /// The client whose orders are walked.
    pub fn client(&self) -> &ClientId {
        &self.client
    }

    /// Whether every order has been returned.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The CSV lines ([`export_line`]) of up to `limit` next orders, read on one connection of
    /// `pool` (the server passes [`Db::exports`]); empty once the walk is done.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when no connection can be had, a query fails or a row is broken; the walk
    /// stays where it was.
    pub async fn next_batch(
        &mut self,
        pool: &AnyPool,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        if self.done {
            return Ok(Vec::new());
        }
        let limit = limit.max(1);
        let mut conn = pool.acquire().await?;
        let end = match &self.end {
            Some(end) => end.clone(),
            None => {
                let row = sqlx::query(EXPORT_END_SQL)
                    .bind(self.client.as_str())
                    .fetch_optional(&mut *conn)
                    .await?;
                let Some(row) = row else {
                    self.done = true;
                    return Ok(Vec::new());
                };
                let end = ExportKey::of(&row)?;
                self.end = Some(end.clone());
                end
            }
        };
        let rows = sqlx::query(EXPORT_BATCH_SQL)
            .bind(self.client.as_str())
            .bind(self.after.created_at)
            .bind(self.after.id.as_str())
            .bind(end.created_at)
            .bind(end.id.as_str())
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await?;
        // Give the connection back before the rows are formatted (and long before they are sent).
        drop(conn);
        let lines = rows
            .iter()
            .map(export_line)
            .collect::<Result<Vec<_>, _>>()?;
        match rows.last() {
            Some(last) => {
                let last = ExportKey::of(last)?;
                self.done = rows.len() < limit as usize || last == end;
                self.after = last;
            }
            None => self.done = true,
        }
        Ok(lines)
    }
}
