use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Days, Months, Utc};
use http::HeaderValue;

use crate::clock::{Clock, SystemClock};

/// The shortest announced window, in days, whatever the calendar says.
pub const MIN_WINDOW_DAYS: u64 = 183;

/// Why a [`Deprecation`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The sunset is earlier than [`Deprecation::minimum_sunset`] allows.
    #[error(
        "sunset {sunset} is less than six months after deprecation {deprecated}; the earliest allowed is {minimum}"
    )]
    SunsetTooEarly {
        /// The deprecation time.
        deprecated: DateTime<Utc>,
        /// The requested sunset.
        sunset: DateTime<Utc>,
        /// The earliest sunset allowed.
        minimum: DateTime<Utc>,
    },
    /// A date is too far out to add six months to.
    #[error("the deprecation date is out of range")]
    OutOfRange,
    /// A link is empty, not a URI reference, or contains `<`, `>`, `"`, spaces or controls.
    #[error("the `{rel}` link is not a usable URI reference")]
    InvalidLink {
        /// The link relation (`deprecation` or `successor-version`).
        rel: &'static str,
    },
}

/// A deprecated API version: when it was (or will be) deprecated, when it goes away, and where
/// to read about it and go instead.
///
/// The sunset must be at least six months after the deprecation ([`minimum_sunset`]), the
/// spec's "at least 6 months of compatibility" (§6).
///
/// [`minimum_sunset`]: Self::minimum_sunset
#[derive(Clone)]
pub struct Deprecation {
    pub(crate) deprecated_at: DateTime<Utc>,
    pub(crate) sunset_at: DateTime<Utc>,
    pub(crate) successor: Option<String>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) deprecation_value: HeaderValue,
    pub(crate) sunset_value: HeaderValue,
    pub(crate) links: Vec<HeaderValue>,
}

impl fmt::Debug for Deprecation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deprecation")
            .field("deprecated_at", &self.deprecated_at)
            .field("sunset_at", &self.sunset_at)
            .field("successor", &self.successor)
            .field("links", &self.links)
            .finish_non_exhaustive()
    }
}

impl Deprecation {
    /// The earliest sunset allowed for a deprecation at `deprecated_at`: the later of
    ///
    /// - the same time on the same calendar day six months later (UTC; a day that month lacks,
    ///   such as 31 August → February, becomes that month's last day), and
    /// - 183 days later.
    ///
    /// So 2026-03-01 → 2026-09-01 (184 days), but 2026-01-01 → 2026-07-03 and
    /// 2026-12-01 → 2027-06-02, because 1 July and 1 June are only 181 and 182 days on.
    ///
    /// # Errors
    ///
    /// [`ConfigError::OutOfRange`] near the end of the representable dates.
    pub fn minimum_sunset(deprecated_at: DateTime<Utc>) -> Result<DateTime<Utc>, ConfigError> {
        let calendar = deprecated_at
            .checked_add_months(Months::new(6))
            .ok_or(ConfigError::OutOfRange)?;
        let floor = deprecated_at
            .checked_add_days(Days::new(MIN_WINDOW_DAYS))
            .ok_or(ConfigError::OutOfRange)?;
        Ok(calendar.max(floor))
    }

    /// A deprecation announced for `deprecated_at` (past or future) with the version retired at
    /// `sunset_at`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::SunsetTooEarly`] if `sunset_at` is before
    /// [`minimum_sunset`](Self::minimum_sunset)`(deprecated_at)`.
    pub fn new(
        deprecated_at: DateTime<Utc>,
        sunset_at: DateTime<Utc>,
    ) -> Result<Self, ConfigError> {
        let minimum = Self::minimum_sunset(deprecated_at)?;
        if sunset_at < minimum {
            return Err(ConfigError::SunsetTooEarly {
                deprecated: deprecated_at,
                sunset: sunset_at,
                minimum,
            });
        }
        // `@` followed by an integer, and an IMF-fixdate: both plain ASCII.
        let deprecation_value = HeaderValue::from_str(&format!("@{}", deprecated_at.timestamp()))
            .map_err(|_| ConfigError::OutOfRange)?;
        let sunset_value =
            HeaderValue::from_str(&imf_fixdate(sunset_at)).map_err(|_| ConfigError::OutOfRange)?;
        Ok(Self {
            deprecated_at,
            sunset_at,
            successor: None,
            clock: Arc::new(SystemClock),
            deprecation_value,
            sunset_value,
            links: Vec::new(),
        })
    }

    /// Adds `Link: <uri>; rel="deprecation"; type="text/html"`: where the deprecation is
    /// explained (RFC 9745 §3).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidLink`] if `uri` is not a usable URI reference.
    pub fn policy_link(mut self, uri: &str) -> Result<Self, ConfigError> {
        let value = link(uri, "deprecation", "; type=\"text/html\"")?;
        self.links.push(value);
        Ok(self)
    }

    /// Adds `Link: <uri>; rel="successor-version"`: the version to move to. The 410 after the
    /// sunset names it too.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidLink`] if `uri` is not a usable URI reference.
    pub fn successor(mut self, uri: &str) -> Result<Self, ConfigError> {
        let value = link(uri, "successor-version", "")?;
        self.links.push(value);
        self.successor = Some(uri.to_owned());
        Ok(self)
    }

    /// The clock deciding whether the sunset has passed (default: the system clock).
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The deprecation time.
    pub fn deprecated_at(&self) -> DateTime<Utc> {
        self.deprecated_at
    }

    /// The sunset time.
    pub fn sunset_at(&self) -> DateTime<Utc> {
        self.sunset_at
    }

    /// Whether the sunset has passed (the version now answers 410).
    pub fn is_sunset(&self) -> bool {
        DateTime::<Utc>::from(self.clock.now()) >= self.sunset_at
    }
}

/// An IMF-fixdate (RFC 9110 §5.6.7), always in GMT.
pub(crate) fn imf_fixdate(at: DateTime<Utc>) -> String {
    at.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

fn link(uri: &str, rel: &'static str, extra: &str) -> Result<HeaderValue, ConfigError> {
    let bad = ConfigError::InvalidLink { rel };
    if uri.is_empty()
        || uri
            .bytes()
            .any(|b| !b.is_ascii_graphic() || matches!(b, b'<' | b'>' | b'"'))
        || uri.parse::<http::Uri>().is_err()
    {
        return Err(bad);
    }
    HeaderValue::from_str(&format!("<{uri}>; rel=\"{rel}\"{extra}")).map_err(|_| bad)
}
