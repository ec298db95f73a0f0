//! The CSV export of a client's orders: a keyset walk in batches and the line format.
//!
//! On PostgreSQL the batches are read with a binary `COPY` (the private `pg_copy` module); on
//! SQLite with a plain query.

mod pg_copy;

use l2c_core::ClientId;
use l2c_core::api::status::{OrderStatus, PaymentStatus};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::corrupt;
use crate::store::sql::millis_to_cst;
use crate::store::{ExportConnection, ExportPool, StoreError};

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

/// The indexes of [`EXPORT_BATCH_SQL`]'s columns, read by position (no name lookup per value).
mod col {
    pub const ID: usize = 0;
    pub const EXTERNAL_ORDER_NO: usize = 1;
    pub const CUSTOMER_ID: usize = 2;
    pub const STATUS: usize = 3;
    pub const PAYMENT_STATUS: usize = 4;
    pub const TOTAL: usize = 5;
    pub const DEPOSIT: usize = 6;
    pub const PAID: usize = 7;
    pub const CURRENCY: usize = 8;
    pub const CREATED_AT: usize = 9;
    pub const UPDATED_AT: usize = 10;
}

/// A row of the export's batch query, from any of the drivers the store uses (the exports'
/// pool speaks the backend's own, see [`ExportPool`]): its values by position.
pub trait ExportRow {
    /// The text value of column `i`.
    ///
    /// # Errors
    ///
    /// [`sqlx::Error`] when there is no such column or it is not text.
    fn text(&self, i: usize) -> Result<&str, sqlx::Error>;

    /// The integer value of column `i`.
    ///
    /// # Errors
    ///
    /// [`sqlx::Error`] when there is no such column or it is not an integer.
    fn int(&self, i: usize) -> Result<i64, sqlx::Error>;
}

/// SQLite's batches are rows of `EXPORT_BATCH_SQL`; PostgreSQL's are read in place from a
/// binary `COPY` (`pg_copy::CopyRow`).
impl ExportRow for SqliteRow {
    fn text(&self, i: usize) -> Result<&str, sqlx::Error> {
        self.try_get(i)
    }

    fn int(&self, i: usize) -> Result<i64, sqlx::Error> {
        self.try_get(i)
    }
}

/// Appends the CSV line of an export row (a row of the export's batch query) to `out`; `out`
/// is left as it was when the row is broken.
///
/// Written straight into `out`: no string per field, the time formatted by hand (see
/// `push_rfc3339_millis`).
///
/// # Errors
///
/// [`StoreError`] when the row is broken.
pub fn write_export_line<R: ExportRow>(out: &mut String, row: &R) -> Result<(), StoreError> {
    let start = out.len();
    let written = push_line(out, row);
    if written.is_err() {
        out.truncate(start);
    }
    written
}

fn push_line<R: ExportRow>(out: &mut String, row: &R) -> Result<(), StoreError> {
    let text = |i: usize| -> Result<&str, StoreError> { Ok(row.text(i)?) };
    let status: OrderStatus = text(col::STATUS)?
        .parse()
        .map_err(|e| corrupt(format!("status: {e}")))?;
    let payment: PaymentStatus = text(col::PAYMENT_STATUS)?
        .parse()
        .map_err(|e| corrupt(format!("payment_status: {e}")))?;
    csv_field(out, text(col::ID)?);
    out.push(',');
    csv_field(out, text(col::EXTERNAL_ORDER_NO)?);
    out.push(',');
    csv_field(out, text(col::CUSTOMER_ID)?);
    // Wire names and labels need no quoting nor guard (see the test
    // `status_names_and_labels_are_plain_fields`): written as they are.
    for plain in [
        status.as_str(),
        status.label(),
        payment.as_str(),
        payment.label(),
    ] {
        out.push(',');
        out.push_str(plain);
    }
    for amount in [col::TOTAL, col::DEPOSIT, col::PAID] {
        out.push(',');
        let fen = row.int(amount)?;
        // A negative amount would start with `-`, which the formula guard quotes.
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(fen);
        if fen < 0 {
            csv_field(out, digits);
        } else {
            out.push_str(digits);
        }
    }
    out.push(',');
    csv_field(out, text(col::CURRENCY)?);
    out.push(',');
    push_rfc3339_millis(out, row.int(col::UPDATED_AT)?);
    out.push_str("\r\n");
    Ok(())
}

/// Appends unix milliseconds `ms` as [`millis_to_cst`]`(ms).to_rfc3339()` does (e.g.
/// `2026-11-20T10:15:00.123+08:00`, without the fraction when it is zero), formatted by hand
/// for the years 0000–9999 (chrono's formatter for the others).
fn push_rfc3339_millis(out: &mut String, ms: i64) {
    /// 0000-01-01T00:00:00 and 10000-01-01T00:00:00 (local time) in unix milliseconds.
    const FIRST: i64 = -62_167_219_200_000;
    const END: i64 = 253_402_300_800_000;
    const OFFSET: i64 = 8 * 3_600_000;
    let local = ms.saturating_add(OFFSET);
    if !(FIRST..END).contains(&local) {
        out.push_str(&millis_to_cst(ms).to_rfc3339());
        return;
    }
    let days = local.div_euclid(86_400_000);
    let of_day = local.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    let mut buf = [0u8; 29];
    let mut put = |at: usize, width: usize, v: i64| {
        let mut v = v.unsigned_abs();
        for i in (at..at + width).rev() {
            buf[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, of_day / 3_600_000);
    put(14, 2, of_day / 60_000 % 60);
    put(17, 2, of_day / 1_000 % 60);
    let millis = of_day % 1_000;
    put(20, 3, millis);
    buf[4] = b'-';
    buf[7] = b'-';
    buf[10] = b'T';
    buf[13] = b':';
    buf[16] = b':';
    buf[19] = b'.';
    let end = if millis == 0 { 19 } else { 23 };
    buf[end..end + 6].copy_from_slice(b"+08:00");
    // Only ASCII digits and separators were written.
    out.push_str(std::str::from_utf8(&buf[..end + 6]).unwrap_or_default());
}

/// The proleptic Gregorian `(year, month, day)` of `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Appends `value` as one CSV field. Values starting with `=`, `+`, `-`, `@` are prefixed with
/// `'` so spreadsheet programs do not run them as formulas (ERP order numbers are partner input).
fn csv_field(out: &mut String, value: &str) {
    let bytes = value.as_bytes();
    let guard = matches!(
        bytes.first(),
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r')
    );
    // Bytes, not chars: the four are ASCII, which never occurs inside a multi-byte character.
    let quote = bytes
        .iter()
        .any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n'));
    if !quote {
        if guard {
            out.push('\'');
        }
        out.push_str(value);
        return;
    }
    out.push('"');
    if guard {
        out.push('\'');
    }
    for (i, part) in value.split('"').enumerate() {
        if i > 0 {
            out.push_str("\"\"");
        }
        out.push_str(part);
    }
    out.push('"');
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

    /// The key of a row of [`EXPORT_BATCH_SQL`] (by position).
    fn of_batch_row<R: ExportRow>(row: &R) -> Result<Self, StoreError> {
        Ok(Self {
            created_at: row.int(col::CREATED_AT)?,
            id: row.text(col::ID)?.to_owned(),
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
/// On PostgreSQL a batch is one binary `COPY` of the same keyset query, its bounds written in
/// as escaped literals (`COPY` takes no parameters); its bytes are kept as they came and read
/// in place when formatted, so a batch holds about as much memory as its rows' values. A
/// `COPY` that fails or is abandoned halfway closes its connection rather than giving it back.
///
/// ```no_run
/// # async fn demo(db: &l2c_server::store::Db) -> Result<(), l2c_server::store::StoreError> {
/// use l2c_server::store::orders::ExportWalk;
///
/// let mut walk = ExportWalk::new(l2c_core::ClientId::new("cli_1"));
/// let mut csv = String::new();
/// while !walk.is_done() {
///     walk.next_batch(db.exports(), 1000).await?.write_csv(&mut csv)?;
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

    /// Reads up to `limit` next orders on one connection of `pool` (the server passes
    /// [`Db::exports`](crate::store::Db::exports)), given back before this returns; an empty
    /// batch once the walk is done. Format them with [`ExportBatch::write_csv`].
    ///
    /// # Errors
    ///
    /// [`StoreError`] when no connection can be had, a query fails or a row is broken; the walk
    /// stays where it was.
    pub async fn next_batch(
        &mut self,
        pool: &ExportPool,
        limit: u32,
    ) -> Result<ExportBatch, StoreError> {
        if self.done {
            return Ok(ExportBatch::default());
        }
        let limit = limit.max(1);
        let mut conn = pool.acquire().await?;
        // The same two statements on either driver; on PostgreSQL the batch is a `COPY`.
        macro_rules! end {
            ($conn:expr) => {{
                match &self.end {
                    Some(end) => end.clone(),
                    None => {
                        let row = sqlx::query(EXPORT_END_SQL)
                            .bind(self.client.as_str())
                            .fetch_optional(&mut **$conn)
                            .await?;
                        let Some(row) = row else {
                            self.done = true;
                            return Ok(ExportBatch::default());
                        };
                        let end = ExportKey {
                            created_at: row.try_get(0)?,
                            id: row.try_get(1)?,
                        };
                        self.end = Some(end.clone());
                        end
                    }
                }
            }};
        }
        let (end, last, rows) = match &mut conn {
            ExportConnection::Sqlite(c) => {
                let end = end!(c);
                let rows = sqlx::query(EXPORT_BATCH_SQL)
                    .bind(self.client.as_str())
                    .bind(self.after.created_at)
                    .bind(self.after.id.as_str())
                    .bind(end.created_at)
                    .bind(end.id.as_str())
                    .bind(i64::from(limit))
                    .fetch_all(&mut **c)
                    .await?;
                let last = rows.last().map(ExportKey::of_batch_row).transpose()?;
                (end, last, Rows::Sqlite(rows))
            }
            ExportConnection::Postgres(c) => {
                let end = end!(c);
                let sql = pg_copy::batch_sql(self.client.as_str(), &self.after, &end, limit)?;
                let rows = pg_copy::CopyBatch::read(c, &sql).await?;
                (end, rows.last_key()?, Rows::Postgres(rows))
            }
        };
        // Give the connection back before the rows are formatted (and long before they are sent).
        drop(conn);
        let len = rows.len();
        match last {
            Some(last) => {
                self.done = len < limit as usize || last == end;
                self.after = last;
            }
            None => self.done = true,
        }
        Ok(ExportBatch { rows })
    }
}

/// The rows of a batch, as the driver returned them.
#[derive(Default)]
enum Rows {
    #[default]
    None,
    Sqlite(Vec<SqliteRow>),
    /// The bytes of the batch's binary `COPY`.
    Postgres(pg_copy::CopyBatch),
}

impl Rows {
    fn len(&self) -> usize {
        match self {
            Rows::None => 0,
            Rows::Sqlite(rows) => rows.len(),
            Rows::Postgres(rows) => rows.len(),
        }
    }
}

/// Orders read by one [`ExportWalk::next_batch`], not formatted yet (the walk can read the
/// next batch while this one is formatted and sent).
#[derive(Default)]
pub struct ExportBatch {
    rows: Rows,
}

impl std::fmt::Debug for ExportBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportBatch")
            .field("rows", &self.len())
            .finish()
    }
}

impl ExportBatch {
    /// How many orders the batch holds.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the batch holds no order.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the CSV line of the batch's `i`-th order to `out` (nothing past the end).
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the row is broken; `out` is left as it was.
    pub fn write_line(&self, i: usize, out: &mut String) -> Result<(), StoreError> {
        match &self.rows {
            Rows::None => Ok(()),
            Rows::Sqlite(rows) => rows.get(i).map_or(Ok(()), |r| write_export_line(out, r)),
            Rows::Postgres(rows) => match rows.row(i) {
                None => Ok(()),
                Some(row) => write_export_line(out, &row.map_err(sqlx::Error::from)?),
            },
        }
    }

    /// Appends the CSV lines of the batch's orders, in export order, to `out`.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when a row is broken; the lines before it were appended.
    pub fn write_csv(&self, out: &mut String) -> Result<(), StoreError> {
        (0..self.len()).try_for_each(|i| self.write_line(i, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_as_chrono_writes_them() {
        let samples = [
            0,
            1,
            999,
            1_000,
            1_764_000_000_000,
            1_764_000_000_123,
            1_764_000_000_120,
            253_402_271_999_999, // 9999-12-31T23:59:59.999+08:00
            253_402_272_000_000, // 10000-01-01T00:00:00+08:00: chrono's formatter
            -1,
            -28_800_000,
            -28_800_001,
            951_753_600_000,     // 2000-02-29T00:00:00+08:00
            4_107_513_599_999,   // 2100-02-28T23:59:59.999+08:00
            4_107_513_600_000,   // 2100-03-01T00:00:00+08:00
            -2_203_920_000_001,  // 1900-02-28T23:59:59.999+08:00 (1900 is no leap year)
            -62_167_248_000_000, // 0000-01-01T00:00:00+08:00
            -62_167_248_000_001,
            i64::MAX,
            i64::MIN,
        ];
        let mut step = 1_i64;
        let spread = (0..2_000).map(|i| {
            step = step.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (step >> 20) % 400_000_000_000_000 - 100_000_000_000_000 + i
        });
        for ms in samples.into_iter().chain(spread) {
            let mut out = String::new();
            push_rfc3339_millis(&mut out, ms);
            assert_eq!(out, millis_to_cst(ms).to_rfc3339(), "{ms}");
        }
    }

    #[test]
    fn status_names_and_labels_are_plain_fields() {
        let plain = |v: &str| {
            let mut out = String::new();
            csv_field(&mut out, v);
            assert_eq!(out, v);
        };
        for s in OrderStatus::ALL {
            plain(s.as_str());
            plain(s.label());
        }
        for s in PaymentStatus::ALL {
            plain(s.as_str());
            plain(s.label());
        }
    }

    #[test]
    fn fields_are_guarded_against_formulas_and_quoted() {
        let field = |v: &str| {
            let mut out = String::new();
            csv_field(&mut out, v);
            out
        };
        assert_eq!(field("ERP-1"), "ERP-1");
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(field("-5"), "'-5");
        assert_eq!(field("@a,b"), "\"'@a,b\"");
        assert_eq!(field("a\"b\""), "\"a\"\"b\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
        assert_eq!(field(""), "");
    }
}
