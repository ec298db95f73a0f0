//! The CSV export of a client's orders: a keyset walk in batches and the line format.

use l2c_core::ClientId;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use super::{parse_payment_status, parse_status};
use crate::store::StoreError;
use crate::store::sql::millis_to_cst;

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
    /// `pool` (the server passes [`Db::exports`](crate::store::Db::exports)); empty once the
    /// walk is done.
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
