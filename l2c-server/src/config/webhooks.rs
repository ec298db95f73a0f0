//! Webhook delivery settings (`--webhook-*`): the retry schedule, retention, timeouts. The
//! dispatcher ([`crate::dispatch`]) re-exports them under its own name.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The delays between attempts: attempt 1 happens when the event is written, attempt `n + 1`
/// follows attempt `n` after `delays[n - 1]` (± jitter), so there are `delays.len() + 1`
/// attempts in all.
///
/// Written as a comma-separated list of durations (`ms`, `s`, `m`, `h`, `d`):
///
/// ```
/// use std::time::Duration;
/// use l2c_server::dispatch::RetrySchedule;
///
/// let s: RetrySchedule = "1s,2s,500ms".parse().unwrap();
/// assert_eq!(s.delays(), [Duration::from_secs(1), Duration::from_secs(2), Duration::from_millis(500)]);
/// assert_eq!(s.to_string(), "1s,2s,500ms");
/// assert!(RetrySchedule::default().delays().iter().sum::<Duration>() > Duration::from_secs(20 * 3600));
/// assert!("1s,,2s".parse::<RetrySchedule>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(Vec<Duration>);

/// The default schedule: `5s,30s,2m,10m,30m,1h,3h,6h,12h` (ten attempts over about 23 hours).
pub const DEFAULT_RETRY_SCHEDULE: &str = "5s,30s,2m,10m,30m,1h,3h,6h,12h";

impl RetrySchedule {
    /// The delays.
    pub fn delays(&self) -> &[Duration] {
        &self.0
    }

    /// The delay after `failures` failed attempts, or `None` when the schedule is exhausted.
    pub fn delay_after(&self, failures: u32) -> Option<Duration> {
        let i = usize::try_from(failures).ok()?.checked_sub(1)?;
        self.0.get(i).copied()
    }
}

impl Default for RetrySchedule {
    fn default() -> Self {
        // The literal is valid; fall back to its value computed by hand if parsing ever changed.
        DEFAULT_RETRY_SCHEDULE.parse().unwrap_or_else(|_| {
            Self(
                [5, 30, 120, 600, 1800, 3600, 10800, 21600, 43200]
                    .into_iter()
                    .map(Duration::from_secs)
                    .collect(),
            )
        })
    }
}

/// Why a duration or schedule does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a duration list such as `5s,30s,2m,1h` (units ms, s, m, h, d)")]
pub struct ScheduleError(String);

/// Parses `250ms`, `5s`, `2m`, `1h`, `1d`.
///
/// # Errors
///
/// [`ScheduleError`] for anything else.
pub fn parse_duration(s: &str) -> Result<Duration, ScheduleError> {
    let s = s.trim();
    let err = || ScheduleError(s.chars().take(64).collect());
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().map_err(|_| err())?;
    let ms = match unit {
        "ms" => Some(n),
        "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "d" => n.checked_mul(86_400_000),
        _ => None,
    }
    .ok_or_else(err)?;
    Ok(Duration::from_millis(ms))
}

fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 86_400_000 == 0 && ms > 0 {
        format!("{}d", ms / 86_400_000)
    } else if ms % 3_600_000 == 0 && ms > 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms % 60_000 == 0 && ms > 0 {
        format!("{}m", ms / 60_000)
    } else if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

impl FromStr for RetrySchedule {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().is_empty() {
            return Err(ScheduleError(String::new()));
        }
        s.split(',')
            .map(parse_duration)
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

impl fmt::Display for RetrySchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().copied().map(format_duration).collect();
        f.write_str(&parts.join(","))
    }
}

/// Webhook settings (`l2c-server serve --help` lists the flags).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WebhookConfig {
    /// Accept `http` and private/loopback destinations (`--allow-private-webhooks`, local
    /// development and tests only).
    pub allow_private: bool,
    /// Delays between attempts (`--webhook-retry-schedule`).
    pub retry_schedule: RetrySchedule,
    /// Per-attempt timeout, connection to last body byte (`--webhook-timeout`, default 15 s).
    pub attempt_timeout: Duration,
    /// How long the previous secret keeps signing after a rotation
    /// (`--webhook-rotation-window`, default 24 h).
    pub rotation_window: Duration,
    /// How often the dispatcher looks for due deliveries when nothing wakes it (default 1 s).
    pub poll_interval: Duration,
    /// Deliveries one dispatcher claims (and sends concurrently) per round (default 16).
    pub batch_size: u32,
    /// Whether this server runs a dispatcher at all (default true).
    pub dispatcher: bool,
    /// How long finished deliveries (with their attempts) and their events are kept
    /// (`--webhook-retention`, default 30 days).
    pub retention: Retention,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            allow_private: false,
            retry_schedule: RetrySchedule::default(),
            attempt_timeout: Duration::from_secs(15),
            rotation_window: Duration::from_secs(24 * 3600),
            poll_interval: Duration::from_secs(1),
            batch_size: 16,
            dispatcher: true,
            retention: Retention::default(),
        }
    }
}

/// The default of `--webhook-retention`.
pub const DEFAULT_RETENTION: &str = "30d";

/// How long finished webhook deliveries, their attempts and their events are kept, or `off`
/// (forever). Parsed from `30d`, `12h`, `off`; pending deliveries are never removed.
///
/// ```
/// use std::time::Duration;
/// use l2c_server::dispatch::Retention;
///
/// let r: Retention = "30d".parse().unwrap();
/// assert_eq!(r.duration(), Some(Duration::from_secs(30 * 86_400)));
/// assert_eq!(r.to_string(), "30d");
/// assert_eq!("off".parse::<Retention>().unwrap().duration(), None);
/// assert!("0s".parse::<Retention>().is_err()); // `off` says it
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention(Option<Duration>);

impl Retention {
    /// Keep finished deliveries for `d` (at least a millisecond).
    pub fn keep_for(d: Duration) -> Self {
        Self(Some(d.max(Duration::from_millis(1))))
    }

    /// Never remove anything.
    pub fn forever() -> Self {
        Self(None)
    }

    /// The retention period (`None`: forever).
    pub fn duration(&self) -> Option<Duration> {
        self.0
    }
}

impl Default for Retention {
    fn default() -> Self {
        Self::keep_for(Duration::from_secs(30 * 86_400))
    }
}

/// A `--webhook-retention` value that is neither a positive duration nor `off`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a retention such as `30d`, `12h` or `off` (units ms, s, m, h, d)")]
pub struct RetentionError(String);

impl FromStr for Retention {
    type Err = RetentionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().eq_ignore_ascii_case("off") {
            return Ok(Self::forever());
        }
        let err = || RetentionError(s.trim().chars().take(64).collect());
        match parse_duration(s) {
            Ok(d) if !d.is_zero() => Ok(Self(Some(d))),
            _ => Err(err()),
        }
    }
}

impl fmt::Display for Retention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("off"),
            Some(d) => f.write_str(&format_duration(d)),
        }
    }
}
