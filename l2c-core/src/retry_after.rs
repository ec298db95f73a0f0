//! `Retry-After` (RFC 9110 §10.2.3): the one parser the webhook dispatcher and the SDK share.
//!
//! The field is either `delay-seconds` (`1*DIGIT`) or an `HTTP-date`. Recipients must accept
//! all three date formats of RFC 9110 §5.6.7: the preferred IMF-fixdate
//! (`Sun, 06 Nov 1994 08:49:37 GMT`) and the obsolete RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`)
//! and asctime (`Sun Nov  6 08:49:37 1994`) forms. A date is turned into a delay from `now`; a
//! date in the past means "now" (zero). Anything else — a sign, a fraction, a zone other than
//! GMT, trailing text, a number past 64 bits — is not a `Retry-After` and yields `None`, so the
//! caller falls back to its own back-off (and applies its own upper bound to what it accepts).
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use l2c_core::retry_after;
//!
//! let now = UNIX_EPOCH + Duration::from_secs(784_111_657); // Sun, 06 Nov 1994 08:47:37 GMT
//! assert_eq!(retry_after::parse(b"120", now), Some(Duration::from_secs(120)));
//! assert_eq!(
//!     retry_after::parse(b"Sun, 06 Nov 1994 08:49:37 GMT", now),
//!     Some(Duration::from_secs(120)),
//! );
//! assert_eq!(retry_after::parse(b"-1", now), None);
//! assert_eq!(retry_after::parse(b"soon", now), None);
//! ```

use std::time::{Duration, SystemTime};

use chrono::NaiveDateTime;

/// Parses a `Retry-After` field value relative to `now`; see the [module docs](self).
pub fn parse(value: &[u8], now: SystemTime) -> Option<Duration> {
    let value = trim_ows(value);
    if value.is_empty() {
        return None;
    }
    let text = std::str::from_utf8(value).ok()?;
    if value.iter().all(u8::is_ascii_digit) {
        // A number too large for 64 bits is no usable delay.
        return text.parse::<u64>().ok().map(Duration::from_secs);
    }
    let at = http_date(text)?;
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(at).ok()?);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// An `HTTP-date` in any of its three formats, as Unix seconds.
fn http_date(text: &str) -> Option<i64> {
    const FORMATS: [&str; 3] = [
        // IMF-fixdate
        "%a, %d %b %Y %H:%M:%S GMT",
        // obsolete RFC 850 date (two-digit year)
        "%A, %d-%b-%y %H:%M:%S GMT",
        // obsolete asctime() date
        "%a %b %e %H:%M:%S %Y",
    ];
    FORMATS.iter().find_map(|format| {
        NaiveDateTime::parse_from_str(text, format)
            .ok()
            .map(|at| at.and_utc().timestamp())
    })
}

/// Strips optional whitespace (SP / HTAB) around a field value.
fn trim_ows(value: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_ows(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    &value[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 784_111_657; // Sun, 06 Nov 1994 08:47:37 GMT

    fn at(value: &str) -> Option<Duration> {
        parse(
            value.as_bytes(),
            SystemTime::UNIX_EPOCH + Duration::from_secs(NOW),
        )
    }

    #[test]
    fn delay_seconds() {
        assert_eq!(at("0"), Some(Duration::ZERO));
        assert_eq!(at(" 2\t"), Some(Duration::from_secs(2)));
        assert_eq!(at("86401"), Some(Duration::from_secs(86_401)));
        assert_eq!(
            at("18446744073709551615"),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(at("18446744073709551616"), None);
    }

    #[test]
    fn the_three_date_formats_mean_the_same_instant() {
        for date in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(at(date), Some(Duration::from_secs(120)), "{date}");
        }
        assert_eq!(at("Sun, 06 Nov 1994 08:40:00 GMT"), Some(Duration::ZERO));
        assert_eq!(
            at("Mon, 06 Nov 1995 08:47:37 GMT"),
            Some(Duration::from_secs(365 * 86_400))
        );
    }

    #[test]
    fn anything_else_is_not_a_retry_after() {
        for value in [
            "",
            " ",
            "+5",
            "-1",
            "1.5",
            "5s",
            "0x10",
            "soon",
            "Sun, 06 Nov 1994 08:49:37 +0000",
            "Sun, 06 Nov 1994 08:49:37 GMT trailing",
            "Sun, 31 Feb 1994 08:49:37 GMT",
            "Mon, 06 Nov 1994 08:49:37 GMT",
            "١٢٠",
        ] {
            assert_eq!(at(value), None, "{value:?}");
        }
        assert_eq!(
            parse(
                b"\xff\xfe",
                SystemTime::UNIX_EPOCH + Duration::from_secs(NOW)
            ),
            None
        );
    }
}
