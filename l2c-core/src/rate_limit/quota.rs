//! [`Quota`]: how many requests per period, and how many at once.

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

/// A rate: `count` requests per `period` sustained, with up to `burst` at once.
///
/// `Quota::per_second(100)` means 100 requests per second, and a client that was idle may send
/// all 100 at once (the burst defaults to the count). `.burst(n)` changes how many may arrive
/// together without changing the sustained rate.
///
/// Parses from and prints as `100/s`, `6000/min`, `10/h`; a burst that differs from the count is
/// written `100/s;burst=200`.
///
/// ```
/// use l2c_core::rate_limit::Quota;
///
/// let q: Quota = "6000/min".parse().unwrap();
/// assert_eq!(q, Quota::per_minute(6000));
/// assert_eq!(q.to_string(), "6000/min");
/// assert_eq!(Quota::per_second(100).burst(20).to_string(), "100/s;burst=20");
/// assert!("100/fortnight".parse::<Quota>().is_err());
/// assert!("0/s".parse::<Quota>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    count: NonZeroU32,
    unit: Unit,
    burst: NonZeroU32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Unit {
    Second,
    Minute,
    Hour,
}

impl Unit {
    const fn secs(self) -> u64 {
        match self {
            Unit::Second => 1,
            Unit::Minute => 60,
            Unit::Hour => 3600,
        }
    }

    const fn suffix(self) -> &'static str {
        match self {
            Unit::Second => "s",
            Unit::Minute => "min",
            Unit::Hour => "h",
        }
    }
}

const ONE: NonZeroU32 = NonZeroU32::MIN;

fn non_zero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(ONE)
}

impl Quota {
    const fn new(count: NonZeroU32, unit: Unit) -> Self {
        Self {
            count,
            unit,
            burst: count,
        }
    }

    /// `count` requests per second (0 is taken as 1).
    pub fn per_second(count: u32) -> Self {
        Self::new(non_zero(count), Unit::Second)
    }

    /// `count` requests per minute (0 is taken as 1).
    pub fn per_minute(count: u32) -> Self {
        Self::new(non_zero(count), Unit::Minute)
    }

    /// `count` requests per hour (0 is taken as 1).
    pub fn per_hour(count: u32) -> Self {
        Self::new(non_zero(count), Unit::Hour)
    }

    /// Allows up to `burst` requests at once (0 is taken as 1); the sustained rate is unchanged.
    #[must_use]
    pub fn burst(mut self, burst: u32) -> Self {
        self.burst = non_zero(burst);
        self
    }

    /// Requests per period.
    pub fn count(&self) -> u32 {
        self.count.get()
    }

    /// The period.
    pub fn period(&self) -> Duration {
        Duration::from_secs(self.unit.secs())
    }

    /// The period in whole seconds (the `w` of `RateLimit-Policy`).
    pub fn window_secs(&self) -> u64 {
        self.unit.secs()
    }

    /// How many requests may arrive at once.
    pub fn burst_size(&self) -> u32 {
        self.burst.get()
    }

    /// The interval between two requests at the sustained rate, in nanoseconds (at least 1).
    pub fn emission_interval_nanos(&self) -> u64 {
        (self.unit.secs() * 1_000_000_000 / u64::from(self.count.get())).max(1)
    }
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.count, self.unit.suffix())?;
        if self.burst != self.count {
            write!(f, ";burst={}", self.burst)?;
        }
        Ok(())
    }
}

/// A string that is not a quota such as `100/s`, `6000/min` or `10/h`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid quota `{input}`: {reason} (expected e.g. `100/s`, `6000/min`, `10/h`, `100/s;burst=200`)"
)]
pub struct QuotaParseError {
    input: String,
    reason: &'static str,
}

impl FromStr for Quota {
    type Err = QuotaParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| QuotaParseError {
            input: s.to_owned(),
            reason,
        };
        let (rate, burst) = match s.trim().split_once(';') {
            Some((rate, burst)) => (rate, Some(burst.trim())),
            None => (s.trim(), None),
        };
        let (count, unit) = rate.split_once('/').ok_or_else(|| err("missing `/`"))?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| err("the count is not a whole number"))?;
        let count = NonZeroU32::new(count).ok_or_else(|| err("the count must be at least 1"))?;
        let unit = match unit.trim() {
            "s" | "sec" | "second" => Unit::Second,
            "m" | "min" | "minute" => Unit::Minute,
            "h" | "hour" => Unit::Hour,
            _ => return Err(err("the unit must be s, min or h")),
        };
        let mut quota = Quota::new(count, unit);
        if let Some(burst) = burst {
            let n = burst
                .strip_prefix("burst=")
                .ok_or_else(|| err("expected `;burst=N`"))?
                .parse::<u32>()
                .map_err(|_| err("the burst is not a whole number"))?;
            quota.burst = NonZeroU32::new(n).ok_or_else(|| err("the burst must be at least 1"))?;
        }
        Ok(quota)
    }
}

impl serde::Serialize for Quota {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Quota {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hundred_per_second_means_what_it_says() {
        let q: Quota = "100/s".parse().unwrap();
        assert_eq!(q.count(), 100);
        assert_eq!(q.period(), Duration::from_secs(1));
        assert_eq!(q.burst_size(), 100);
        assert_eq!(q.emission_interval_nanos(), 10_000_000);
    }

    #[test]
    fn every_form_round_trips() {
        for s in [
            "100/s",
            "6000/min",
            "10/h",
            "100/s;burst=200",
            "1/h;burst=1",
        ] {
            let q: Quota = s.parse().unwrap();
            let back: Quota = q.to_string().parse().unwrap();
            assert_eq!(q, back, "{s}");
        }
        assert_eq!("1/h;burst=1".parse::<Quota>().unwrap().to_string(), "1/h");
        assert_eq!(
            " 5 / minute ".parse::<Quota>().unwrap(),
            Quota::per_minute(5)
        );
    }

    #[test]
    fn bad_input_is_named() {
        for s in [
            "",
            "100",
            "x/s",
            "-1/s",
            "0/s",
            "1/d",
            "1/s;b=2",
            "1/s;burst=0",
        ] {
            let e = s.parse::<Quota>().unwrap_err();
            assert!(e.to_string().contains(&format!("`{s}`")), "{e}");
        }
    }

    #[test]
    fn serde_uses_the_string_form() {
        let q: Quota = serde_json::from_str("\"10/h\"").unwrap();
        assert_eq!(q, Quota::per_hour(10));
        assert_eq!(serde_json::to_string(&q).unwrap(), "\"10/h\"");
    }
}
