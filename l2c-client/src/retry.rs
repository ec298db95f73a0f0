//! When to try a request again, and how long to wait first.
//!
//! The decision is the pure function [`decide`]: given the [`RetryPolicy`], what happened on this
//! [`Attempt`] and a jitter sample, it returns a [`Decision`]. The client's request loop only
//! sleeps and resends; everything worth testing lives here.
//!
//! The rules:
//! - `429` and `503` honour `Retry-After` (delta-seconds or an HTTP-date), capped at
//!   [`RetryPolicy::max_retry_after`]; without the header they back off like other `5xx`.
//! - Connection failures (nothing was sent), timeouts and other `5xx` (except `501`) back off
//!   exponentially with jitter: `initial_backoff * 2^(n-1)`, capped at `max_backoff`, then a
//!   random value in its upper half.
//! - `409` with `Retry-After` on a request that carries an idempotency key means "the same key is
//!   still being processed": waited out like a `429`.
//! - A request that is not replay-safe (a POST or PATCH without an `X-Request-Id`) is only
//!   retried when it provably never reached the server (a connection failure).
//! - Never more than [`RetryPolicy::max_attempts`] attempts, and never a wait that would end past
//!   the [`RetryPolicy::deadline`] measured from the first attempt.
//!
//! ```
//! use std::time::Duration;
//! use http::StatusCode;
//! use l2c_client::retry::{decide, Attempt, Decision, Outcome, RetryPolicy};
//!
//! let policy = RetryPolicy::default();
//! let attempt = Attempt { number: 1, elapsed: Duration::ZERO, replay_safe: true };
//! let outcome = Outcome::Status { status: StatusCode::TOO_MANY_REQUESTS, retry_after: Some(Duration::from_secs(2)) };
//! assert_eq!(decide(&policy, &attempt, &outcome, 0.5), Decision::Retry { after: Duration::from_secs(2) });
//! ```

use std::time::{Duration, SystemTime};

use http::{HeaderValue, StatusCode};

/// How hard the client tries before returning an error. Cheap to clone.
///
/// ```
/// use std::time::Duration;
/// use l2c_client::RetryPolicy;
///
/// let policy = RetryPolicy::default()
///     .max_attempts(5)
///     .initial_backoff(Duration::from_millis(100))
///     .deadline(Duration::from_secs(20));
/// assert_eq!(policy.get_max_attempts(), 5);
/// let never = RetryPolicy::none();
/// assert_eq!(never.get_max_attempts(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    max_retry_after: Duration,
    deadline: Duration,
}

impl Default for RetryPolicy {
    /// 4 attempts, backoff from 250 ms up to 8 s, `Retry-After` honoured up to 30 s, and 60 s
    /// overall.
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(30),
            deadline: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Never retry (one attempt). The forced token refresh on a `401` still happens.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The most attempts per call, the first included (at least 1).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// The first backoff delay; doubled for each further attempt.
    pub fn initial_backoff(mut self, d: Duration) -> Self {
        self.initial_backoff = d;
        self
    }

    /// The largest backoff delay.
    pub fn max_backoff(mut self, d: Duration) -> Self {
        self.max_backoff = d;
        self
    }

    /// The longest `Retry-After` the client waits; longer requests are shortened to this.
    pub fn max_retry_after(mut self, d: Duration) -> Self {
        self.max_retry_after = d;
        self
    }

    /// The total time budget of one call, from the first attempt; no wait is started that would
    /// end after it.
    pub fn deadline(mut self, d: Duration) -> Self {
        self.deadline = d;
        self
    }

    /// The configured maximum number of attempts.
    pub fn get_max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The configured total deadline.
    pub fn get_deadline(&self) -> Duration {
        self.deadline
    }
}

/// Facts about the attempt that just finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// 1 for the first attempt.
    pub number: u32,
    /// Time since the first attempt started.
    pub elapsed: Duration,
    /// Whether sending the request twice is harmless: a GET/HEAD/PUT/DELETE/OPTIONS, or any
    /// request carrying an idempotency key (`X-Request-Id`).
    pub replay_safe: bool,
}

/// What came of an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The server answered with a non-success status.
    Status {
        /// The status.
        status: StatusCode,
        /// The parsed `Retry-After`, if present (see [`parse_retry_after`]).
        retry_after: Option<Duration>,
    },
    /// The connection could not be established: the request was never sent.
    ConnectFailed,
    /// The request timed out (it may have reached the server).
    TimedOut,
    /// The connection failed after the request may have been sent (reset, broken pipe, ...).
    SendFailed,
}

/// What to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Wait this long, then send the request again.
    Retry {
        /// The delay before the next attempt.
        after: Duration,
    },
    /// Return the error to the caller.
    Stop,
}

/// Decides whether to retry. `jitter` is a sample from `[0, 1)`; it only matters for
/// exponential backoff (waits from `Retry-After` are exact).
pub fn decide(policy: &RetryPolicy, attempt: &Attempt, outcome: &Outcome, jitter: f64) -> Decision {
    if attempt.number >= policy.max_attempts {
        return Decision::Stop;
    }
    let delay = match *outcome {
        Outcome::ConnectFailed => backoff(policy, attempt.number, jitter),
        Outcome::TimedOut | Outcome::SendFailed if attempt.replay_safe => {
            backoff(policy, attempt.number, jitter)
        }
        Outcome::TimedOut | Outcome::SendFailed => return Decision::Stop,
        Outcome::Status { .. } if !attempt.replay_safe => return Decision::Stop,
        Outcome::Status {
            status,
            retry_after,
        } => match status {
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => match retry_after {
                Some(d) => d.min(policy.max_retry_after),
                None => backoff(policy, attempt.number, jitter),
            },
            StatusCode::CONFLICT => match retry_after {
                Some(d) => d.min(policy.max_retry_after),
                None => return Decision::Stop,
            },
            StatusCode::NOT_IMPLEMENTED => return Decision::Stop,
            s if s.is_server_error() => backoff(policy, attempt.number, jitter),
            _ => return Decision::Stop,
        },
    };
    match attempt.elapsed.checked_add(delay) {
        Some(end) if end < policy.deadline => Decision::Retry { after: delay },
        _ => Decision::Stop,
    }
}

/// Exponential backoff with "equal jitter": the delay for attempt `n` lies in
/// `[base/2, base)` where `base = min(initial * 2^(n-1), max)`.
fn backoff(policy: &RetryPolicy, attempt: u32, jitter: f64) -> Duration {
    let exp = attempt.saturating_sub(1).min(30);
    let base = policy
        .initial_backoff
        .saturating_mul(1u32 << exp)
        .min(policy.max_backoff);
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.5
    };
    let half = base / 2;
    half + half.mul_f64(jitter)
}

/// Parses a `Retry-After` value: delta-seconds (`120`) or an HTTP-date
/// (`Wed, 21 Oct 2015 07:28:00 GMT`), relative to `now`. A date in the past means zero. The
/// rules are [`l2c_core::retry_after`]'s, shared with the server's webhook dispatcher.
///
/// ```
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// use http::HeaderValue;
/// use l2c_client::retry::parse_retry_after;
///
/// let now = UNIX_EPOCH + Duration::from_secs(1_445_412_470); // 07:27:50 GMT
/// assert_eq!(parse_retry_after(&HeaderValue::from_static("2"), now), Some(Duration::from_secs(2)));
/// assert_eq!(
///     parse_retry_after(&HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"), now),
///     Some(Duration::from_secs(10)),
/// );
/// assert_eq!(parse_retry_after(&HeaderValue::from_static("soon"), now), None);
/// ```
pub fn parse_retry_after(value: &HeaderValue, now: SystemTime) -> Option<Duration> {
    l2c_core::retry_after::parse(value.as_bytes(), now)
}

/// Whether a method can be sent twice without changing the outcome (RFC 9110 §9.2.2).
pub(crate) fn is_idempotent_method(method: &http::Method) -> bool {
    matches!(
        *method,
        http::Method::GET
            | http::Method::HEAD
            | http::Method::PUT
            | http::Method::DELETE
            | http::Method::OPTIONS
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(number: u32, elapsed_ms: u64, replay_safe: bool) -> Attempt {
        Attempt {
            number,
            elapsed: Duration::from_millis(elapsed_ms),
            replay_safe,
        }
    }

    fn status(code: u16, retry_after: Option<u64>) -> Outcome {
        Outcome::Status {
            status: StatusCode::from_u16(code).unwrap(),
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    #[test]
    fn retry_after_is_honoured_for_429_and_503() {
        let p = RetryPolicy::default();
        for code in [429, 503] {
            assert_eq!(
                decide(&p, &attempt(1, 0, true), &status(code, Some(2)), 0.9),
                Decision::Retry {
                    after: Duration::from_secs(2)
                }
            );
        }
    }

    #[test]
    fn retry_after_is_capped() {
        let p = RetryPolicy::default().max_retry_after(Duration::from_secs(5));
        assert_eq!(
            decide(&p, &attempt(1, 0, true), &status(429, Some(3600)), 0.0),
            Decision::Retry {
                after: Duration::from_secs(5)
            }
        );
    }

    #[test]
    fn backoff_grows_exponentially_within_jitter_bounds_and_is_capped() {
        let p = RetryPolicy::default()
            .max_attempts(20)
            .deadline(Duration::from_secs(3600))
            .initial_backoff(Duration::from_millis(100))
            .max_backoff(Duration::from_secs(1));
        let delay = |n, j| match decide(&p, &attempt(n, 0, true), &status(500, None), j) {
            Decision::Retry { after } => after,
            Decision::Stop => panic!("expected a retry"),
        };
        assert_eq!(delay(1, 0.0), Duration::from_millis(50));
        assert_eq!(delay(1, 1.0), Duration::from_millis(100));
        assert_eq!(delay(2, 0.0), Duration::from_millis(100));
        assert_eq!(delay(3, 0.5), Duration::from_millis(300));
        assert_eq!(delay(10, 1.0), Duration::from_secs(1));
        assert_eq!(delay(10, f64::NAN), Duration::from_millis(750));
    }

    #[test]
    fn attempts_are_bounded() {
        let p = RetryPolicy::default().max_attempts(3);
        assert!(matches!(
            decide(&p, &attempt(2, 0, true), &status(503, None), 0.5),
            Decision::Retry { .. }
        ));
        assert_eq!(
            decide(&p, &attempt(3, 0, true), &status(503, None), 0.5),
            Decision::Stop
        );
    }

    #[test]
    fn no_wait_may_end_past_the_deadline() {
        let p = RetryPolicy::default().deadline(Duration::from_secs(10));
        assert!(matches!(
            decide(&p, &attempt(1, 7_000, true), &status(503, Some(2)), 0.5),
            Decision::Retry { .. }
        ));
        assert_eq!(
            decide(&p, &attempt(1, 8_000, true), &status(503, Some(2)), 0.5),
            Decision::Stop
        );
    }

    #[test]
    fn client_errors_and_501_are_final() {
        let p = RetryPolicy::default();
        for code in [400, 401, 403, 404, 409, 422, 501] {
            assert_eq!(
                decide(&p, &attempt(1, 0, true), &status(code, None), 0.5),
                Decision::Stop,
                "{code}"
            );
        }
    }

    #[test]
    fn conflict_with_retry_after_is_an_in_flight_key() {
        let p = RetryPolicy::default();
        assert_eq!(
            decide(&p, &attempt(1, 0, true), &status(409, Some(1)), 0.5),
            Decision::Retry {
                after: Duration::from_secs(1)
            }
        );
    }

    #[test]
    fn unsafe_requests_are_retried_only_when_never_sent() {
        let p = RetryPolicy::default();
        let unsafe_attempt = attempt(1, 0, false);
        assert!(matches!(
            decide(&p, &unsafe_attempt, &Outcome::ConnectFailed, 0.5),
            Decision::Retry { .. }
        ));
        for outcome in [
            Outcome::TimedOut,
            Outcome::SendFailed,
            status(503, Some(1)),
            status(429, Some(1)),
            status(500, None),
        ] {
            assert_eq!(
                decide(&p, &unsafe_attempt, &outcome, 0.5),
                Decision::Stop,
                "{outcome:?}"
            );
        }
        assert!(matches!(
            decide(&p, &attempt(1, 0, true), &Outcome::TimedOut, 0.5),
            Decision::Retry { .. }
        ));
    }

    #[test]
    fn none_never_retries() {
        assert_eq!(
            decide(
                &RetryPolicy::none(),
                &attempt(1, 0, true),
                &Outcome::ConnectFailed,
                0.5
            ),
            Decision::Stop
        );
    }

    #[test]
    fn retry_after_parsing() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_470);
        let parse = |s: &'static str| parse_retry_after(&HeaderValue::from_static(s), now);
        assert_eq!(parse("0"), Some(Duration::ZERO));
        assert_eq!(parse(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(
            parse("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::from_secs(10))
        );
        assert_eq!(parse("Wed, 21 Oct 2015 07:00:00 GMT"), Some(Duration::ZERO));
        assert_eq!(parse("-1"), None);
        assert_eq!(parse("1.5"), None);
        assert_eq!(parse(""), None);
        assert_eq!(parse("99999999999999999999999"), None);
    }
}
