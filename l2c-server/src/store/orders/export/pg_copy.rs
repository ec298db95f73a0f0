//! The export's batches on PostgreSQL, read with `COPY (SELECT …) TO STDOUT (FORMAT binary)`.
//!
//! Through the extended protocol every row becomes a `PgRow` (a message decoded, the column
//! list shared, each value checked against its type on the way out): on a 1M-row export that
//! was most of the server's CPU time. A binary `COPY` hands back the same rows as one byte
//! stream of length-prefixed values, which [`CopyBatch`] keeps as it came and
//! [`CopyRow`] reads in place, with no allocation per row or value.
//!
//! `COPY` takes no bind parameters, so the batch's client id and keyset bounds are written into
//! the statement as literals ([`batch_sql`]): strings as `E'…'` escape literals (quotes and
//! backslashes doubled, so their meaning does not depend on `standard_conforming_strings`;
//! a NUL, which no PostgreSQL text can hold, is refused), integers as quoted `int8` literals.

use futures_util::TryStreamExt as _;
use sqlx::Postgres;
use sqlx::pool::PoolConnection;

use super::{ExportKey, ExportRow};
use crate::store::StoreError;

/// The columns a batch reads, in the order [`super::col`] numbers them, each cast to the type
/// [`CopyRow`] reads: a binary value carries no type, so a column whose type changed would
/// otherwise be read as whatever its bytes resemble (an 8-byte `numeric` as an `int8`).
const COLUMNS: &str = "id::text, external_order_no::text, customer_id::text, status::text, \
     payment_status::text, total_fen::int8, deposit_fen::int8, paid_fen::int8, currency::text, \
     created_at::int8, updated_at::int8";

/// The most bytes one batch's `COPY` may send (its rows are a few hundred bytes each through
/// the API; rows written around it could be anything): past this the read fails, and the
/// connection is closed.
const MAX_BATCH_BYTES: usize = 32 * 1024 * 1024;

/// How many columns [`COLUMNS`] lists.
const FIELDS: usize = 11;

/// The signature, flags and header extension length that start a binary `COPY` stream.
const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// Why the bytes of a binary `COPY` could not be read as the export's rows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CopyFormatError {
    /// The stream does not start with the binary `COPY` signature.
    #[error("binary COPY: bad signature")]
    Signature,
    /// The stream ends inside its header, a tuple or before its trailer.
    #[error("binary COPY: truncated")]
    Truncated,
    /// A tuple does not hold the export's columns.
    #[error("binary COPY: {0} fields in a tuple, expected {FIELDS}")]
    FieldCount(i16),
    /// A value's length is negative but not -1 (NULL).
    #[error("binary COPY: bad value length {0}")]
    Length(i32),
    /// Bytes follow the trailer.
    #[error("binary COPY: data after the trailer")]
    Trailing,
    /// The header sets a flag this reader does not know (bits 16–31: an OID column, or a
    /// format to come), which the format says to stop at.
    #[error("binary COPY: unknown header flags {0:#x}")]
    Flags(i32),
    /// The batch sent more than [`MAX_BATCH_BYTES`].
    #[error("binary COPY: a batch larger than {MAX_BATCH_BYTES} bytes")]
    TooLarge,
    /// A column that the export reads as text is NULL or not UTF-8.
    #[error("binary COPY: column {0} is not text")]
    NotText(usize),
    /// A column that the export reads as an integer is NULL or not 8 bytes.
    #[error("binary COPY: column {0} is not an int8")]
    NotInt8(usize),
}

impl From<CopyFormatError> for sqlx::Error {
    fn from(e: CopyFormatError) -> Self {
        sqlx::Error::Decode(Box::new(e))
    }
}

/// Appends `s` as a PostgreSQL escape string literal (`E'…'`).
///
/// # Errors
///
/// [`StoreError::Invalid`] when `s` holds a NUL.
fn push_text_literal(sql: &mut String, s: &str) -> Result<(), StoreError> {
    if s.contains('\0') {
        return Err(StoreError::Invalid(
            "an export key holds a NUL character".into(),
        ));
    }
    sql.push_str("E'");
    for c in s.chars() {
        match c {
            '\'' => sql.push_str("''"),
            '\\' => sql.push_str("\\\\"),
            c => sql.push(c),
        }
    }
    sql.push('\'');
    Ok(())
}

/// Appends `n` as an `int8` literal (quoted: an unquoted `-9223372036854775808` is the negation
/// of a `numeric`, which would turn the comparison into a `numeric` one the index cannot serve).
fn push_int8_literal(sql: &mut String, n: i64) {
    sql.push('\'');
    sql.push_str(itoa::Buffer::new().format(n));
    sql.push_str("'::int8");
}

/// The `COPY` statement of one batch: `client`'s orders after `after` up to `end` included, at
/// most `limit`, in export order (the same rows as [`super::EXPORT_BATCH_SQL`]).
///
/// # Errors
///
/// [`StoreError::Invalid`] when the client id or a key's id holds a NUL.
pub(super) fn batch_sql(
    client: &str,
    after: &ExportKey,
    end: &ExportKey,
    limit: u32,
) -> Result<String, StoreError> {
    let mut sql = String::with_capacity(400);
    sql.push_str("COPY (SELECT ");
    sql.push_str(COLUMNS);
    sql.push_str(" FROM orders WHERE client_id = ");
    push_text_literal(&mut sql, client)?;
    sql.push_str(" AND (created_at, id) > (");
    push_int8_literal(&mut sql, after.created_at);
    sql.push_str(", ");
    push_text_literal(&mut sql, &after.id)?;
    sql.push_str(") AND (created_at, id) <= (");
    push_int8_literal(&mut sql, end.created_at);
    sql.push_str(", ");
    push_text_literal(&mut sql, &end.id)?;
    sql.push_str(") ORDER BY created_at, id LIMIT ");
    sql.push_str(itoa::Buffer::new().format(limit));
    sql.push_str(") TO STDOUT (FORMAT binary)");
    Ok(sql)
}

/// A batch's rows as the binary `COPY` sent them: the stream's bytes and where each tuple
/// starts.
#[derive(Debug, Default)]
pub(super) struct CopyBatch {
    data: Vec<u8>,
    rows: Vec<usize>,
}

impl CopyBatch {
    /// Runs the `COPY` statement `sql` on `conn` and keeps its rows.
    ///
    /// The connection goes back to its pool only after a `COPY` that ran to its end: if this
    /// fails or is dropped halfway, it is closed instead (its protocol state is unknown).
    pub(super) async fn read(
        conn: &mut PoolConnection<Postgres>,
        sql: &str,
    ) -> Result<Self, StoreError> {
        let mut guard = CloseUnlessFinished {
            conn,
            finished: false,
        };
        let mut data = Vec::new();
        {
            let mut stream = guard.conn.copy_out_raw(sql).await?;
            while let Some(chunk) = stream.try_next().await? {
                if data.len() + chunk.len() > MAX_BATCH_BYTES {
                    return Err(StoreError::Database(CopyFormatError::TooLarge.into()));
                }
                data.extend_from_slice(&chunk);
            }
        }
        guard.finished = true;
        Self::parse(data).map_err(|e| StoreError::Database(e.into()))
    }

    /// Checks the stream's framing and finds its tuples.
    fn parse(data: Vec<u8>) -> Result<Self, CopyFormatError> {
        let mut at = Reader {
            data: &data,
            pos: 0,
        };
        if at.take(SIGNATURE.len())? != SIGNATURE {
            return Err(CopyFormatError::Signature);
        }
        let flags = at.i32()?;
        if flags >> 16 != 0 {
            return Err(CopyFormatError::Flags(flags));
        }
        let extension = at.i32()?;
        at.take(usize::try_from(extension).map_err(|_| CopyFormatError::Length(extension))?)?;
        let mut rows = Vec::new();
        loop {
            let start = at.pos;
            let count = at.i16()?;
            if count == -1 {
                break;
            }
            if count != FIELDS as i16 {
                return Err(CopyFormatError::FieldCount(count));
            }
            for _ in 0..FIELDS {
                at.value()?;
            }
            rows.push(start);
        }
        if at.pos != data.len() {
            return Err(CopyFormatError::Trailing);
        }
        Ok(Self { data, rows })
    }

    /// How many rows the batch holds.
    pub(super) fn len(&self) -> usize {
        self.rows.len()
    }

    /// The `i`-th row, `None` past the end.
    pub(super) fn row(&self, i: usize) -> Option<Result<CopyRow<'_>, CopyFormatError>> {
        let start = *self.rows.get(i)?;
        Some(CopyRow::parse(self.data.get(start..).unwrap_or_default()))
    }

    /// The key of the last row, `None` when the batch is empty.
    pub(super) fn last_key(&self) -> Result<Option<ExportKey>, StoreError> {
        match self.row(self.len().wrapping_sub(1)) {
            None => Ok(None),
            Some(row) => Ok(Some(ExportKey::of_batch_row(
                &row.map_err(sqlx::Error::from)?,
            )?)),
        }
    }
}

/// Closes the connection when dropped before the `COPY` finished.
struct CloseUnlessFinished<'a> {
    conn: &'a mut PoolConnection<Postgres>,
    finished: bool,
}

impl Drop for CloseUnlessFinished<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.conn.close_on_drop();
        }
    }
}

/// A cursor over the bytes of a binary `COPY`.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CopyFormatError> {
        let end = self.pos.checked_add(n).ok_or(CopyFormatError::Truncated)?;
        let bytes = self
            .data
            .get(self.pos..end)
            .ok_or(CopyFormatError::Truncated)?;
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CopyFormatError> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn i16(&mut self) -> Result<i16, CopyFormatError> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    fn i32(&mut self) -> Result<i32, CopyFormatError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    /// One value: `None` for NULL.
    fn value(&mut self) -> Result<Option<&'a [u8]>, CopyFormatError> {
        match self.i32()? {
            -1 => Ok(None),
            len => {
                let n = usize::try_from(len).map_err(|_| CopyFormatError::Length(len))?;
                self.take(n).map(Some)
            }
        }
    }
}

/// One row of a [`CopyBatch`], its values read in place.
#[derive(Debug)]
pub(super) struct CopyRow<'a> {
    values: [Option<&'a [u8]>; FIELDS],
}

impl<'a> CopyRow<'a> {
    /// The row at the start of `data` (a tuple's field count first).
    fn parse(data: &'a [u8]) -> Result<Self, CopyFormatError> {
        let mut at = Reader { data, pos: 0 };
        let count = at.i16()?;
        if count != FIELDS as i16 {
            return Err(CopyFormatError::FieldCount(count));
        }
        let mut values = [None; FIELDS];
        for v in &mut values {
            *v = at.value()?;
        }
        Ok(Self { values })
    }
}

impl ExportRow for CopyRow<'_> {
    fn text(&self, i: usize) -> Result<&str, sqlx::Error> {
        let bytes = self
            .values
            .get(i)
            .copied()
            .flatten()
            .ok_or(CopyFormatError::NotText(i))?;
        Ok(std::str::from_utf8(bytes).map_err(|_| CopyFormatError::NotText(i))?)
    }

    fn int(&self, i: usize) -> Result<i64, sqlx::Error> {
        let bytes = self.values.get(i).copied().flatten();
        let be: [u8; 8] = bytes
            .and_then(|b| b.try_into().ok())
            .ok_or(CopyFormatError::NotInt8(i))?;
        Ok(i64::from_be_bytes(be))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(created_at: i64, id: &str) -> ExportKey {
        ExportKey {
            created_at,
            id: id.into(),
        }
    }

    #[test]
    fn literals_are_escaped_and_nul_refused() {
        let sql = batch_sql(
            "cli_'x\\",
            &key(i64::MIN, "a'') OR TRUE --"),
            &key(i64::MAX, "\\'"),
            7,
        )
        .unwrap();
        assert!(sql.contains("client_id = E'cli_''x\\\\'"), "{sql}");
        assert!(
            sql.contains("> ('-9223372036854775808'::int8, E'a'''') OR TRUE --')"),
            "{sql}"
        );
        assert!(
            sql.contains("<= ('9223372036854775807'::int8, E'\\\\''')"),
            "{sql}"
        );
        assert!(sql.ends_with("LIMIT 7) TO STDOUT (FORMAT binary)"), "{sql}");
        assert!(matches!(
            batch_sql("cli_\0", &key(0, ""), &key(0, ""), 1),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            batch_sql("cli", &key(0, "a\0"), &key(0, ""), 1),
            Err(StoreError::Invalid(_))
        ));
    }

    #[test]
    fn the_copy_reads_the_columns_of_the_batch_query_in_its_order() {
        // `super::col` numbers the columns of `EXPORT_BATCH_SQL`; the COPY must list the same
        // ones, in the same order, `FIELDS` of them.
        let select = super::super::EXPORT_BATCH_SQL
            .strip_prefix("SELECT ")
            .and_then(|s| s.split(" FROM ").next())
            .unwrap();
        let batch: Vec<&str> = select.split(',').map(str::trim).collect();
        let copy: Vec<&str> = COLUMNS
            .split(',')
            .map(|c| c.trim().split("::").next().unwrap_or_default())
            .collect();
        assert_eq!(copy, batch);
        assert_eq!(copy.len(), FIELDS);
        assert_eq!(copy[super::super::col::UPDATED_AT], "updated_at");
    }

    /// A binary `COPY` stream of `rows` (each value `None` for NULL).
    fn stream(rows: &[Vec<Option<Vec<u8>>>]) -> Vec<u8> {
        let mut out = SIGNATURE.to_vec();
        out.extend_from_slice(&0_i32.to_be_bytes());
        out.extend_from_slice(&4_i32.to_be_bytes());
        out.extend_from_slice(b"ext!");
        for row in rows {
            out.extend_from_slice(&(row.len() as i16).to_be_bytes());
            for v in row {
                match v {
                    None => out.extend_from_slice(&(-1_i32).to_be_bytes()),
                    Some(v) => {
                        out.extend_from_slice(&(v.len() as i32).to_be_bytes());
                        out.extend_from_slice(v);
                    }
                }
            }
        }
        out.extend_from_slice(&(-1_i16).to_be_bytes());
        out
    }

    fn order(id: &str, created_at: i64) -> Vec<Option<Vec<u8>>> {
        let t = |s: &str| Some(s.as_bytes().to_vec());
        let n = |v: i64| Some(v.to_be_bytes().to_vec());
        vec![
            t(id),
            t("ERP,\"1\""),
            t("cus_1"),
            t("DEPOSIT_PAID"),
            t("FULLY_PAID"),
            n(-3),
            n(0),
            n(i64::MAX),
            t("CNY"),
            n(created_at),
            n(1_764_000_000_123),
        ]
    }

    #[test]
    fn tuples_are_read_in_place_and_formatted_as_rows_are() {
        let batch = CopyBatch::parse(stream(&[order("o1", 5), order("订单", 6)])).unwrap();
        assert_eq!(batch.len(), 2);
        assert_eq!(batch.last_key().unwrap(), Some(key(6, "订单")));
        let mut csv = String::new();
        for i in 0..batch.len() {
            super::super::write_export_line(&mut csv, &batch.row(i).unwrap().unwrap()).unwrap();
        }
        assert_eq!(
            csv,
            "o1,\"ERP,\"\"1\"\"\",cus_1,DEPOSIT_PAID,已下定金,FULLY_PAID,已付全款,'-3,0,\
             9223372036854775807,CNY,2025-11-25T00:00:00.123+08:00\r\n\
             订单,\"ERP,\"\"1\"\"\",cus_1,DEPOSIT_PAID,已下定金,FULLY_PAID,已付全款,'-3,0,\
             9223372036854775807,CNY,2025-11-25T00:00:00.123+08:00\r\n"
        );
        assert!(batch.row(2).is_none());
        let empty = CopyBatch::parse(stream(&[])).unwrap();
        assert_eq!((empty.len(), empty.last_key().unwrap()), (0, None));
    }

    #[test]
    fn broken_streams_and_values_are_errors() {
        let good = stream(&[order("o1", 5)]);
        assert_eq!(
            CopyBatch::parse(good[..good.len() - 1].to_vec()).unwrap_err(),
            CopyFormatError::Truncated
        );
        let mut bad = good.clone();
        bad[0] = b'X';
        assert_eq!(
            CopyBatch::parse(bad).unwrap_err(),
            CopyFormatError::Signature
        );
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(
            CopyBatch::parse(trailing).unwrap_err(),
            CopyFormatError::Trailing
        );
        let mut short = order("o1", 5);
        short.pop();
        assert_eq!(
            CopyBatch::parse(stream(&[short])).unwrap_err(),
            CopyFormatError::FieldCount(10)
        );
        let mut oids = good.clone();
        oids[SIGNATURE.len()..SIGNATURE.len() + 4].copy_from_slice(&(1_i32 << 16).to_be_bytes());
        assert_eq!(
            CopyBatch::parse(oids).unwrap_err(),
            CopyFormatError::Flags(1 << 16)
        );
        let mut past_end = good.clone();
        past_end[25..29].copy_from_slice(&i32::MAX.to_be_bytes());
        assert_eq!(
            CopyBatch::parse(past_end).unwrap_err(),
            CopyFormatError::Truncated
        );
        let mut huge = stream(&[order("o1", 5)]);
        // The first value's length (after the 23-byte header, its extension included, and the
        // 2-byte field count).
        huge[25..29].copy_from_slice(&(-2_i32).to_be_bytes());
        assert_eq!(
            CopyBatch::parse(huge).unwrap_err(),
            CopyFormatError::Length(-2)
        );

        let mut nulls = order("o1", 5);
        nulls[1] = None;
        nulls[5] = Some(vec![1, 2, 3, 4]);
        nulls[8] = Some(vec![0xff]);
        let batch = CopyBatch::parse(stream(&[nulls])).unwrap();
        let row = batch.row(0).unwrap().unwrap();
        assert!(row.text(1).is_err(), "NULL text");
        assert!(row.int(5).is_err(), "int4 where an int8 belongs");
        assert!(row.text(8).is_err(), "not UTF-8");
        assert!(row.text(FIELDS).is_err(), "no such column");
        let mut csv = String::from("kept");
        assert!(super::super::write_export_line(&mut csv, &row).is_err());
        assert_eq!(csv, "kept");
    }
}
