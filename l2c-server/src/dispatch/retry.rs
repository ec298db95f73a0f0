//! What happens to a delivery after an attempt: a pure function of the receiver's answer (its
//! status and `Retry-After`), the failures so far, the retry schedule and a jitter factor, so
//! every rule can be read and tested in one table.
//!
//! - 2xx: [`NextStep::Succeeded`];
//! - 410 Gone: [`NextStep::Gone`] (the delivery fails and the subscription is disabled);
//! - anything else (another status, no answer at all): one more failure. When the
//!   [`RetrySchedule`] has no delay left for it, [`NextStep::Failed`]; otherwise
//!   [`NextStep::RetryAt`] after `Retry-After` when the status is 429/502/503/504 and the header
//!   was readable (capped at [`MAX_RETRY_AFTER`], no jitter), else after the schedule's delay
//!   times the jitter factor.
//!
//! The `Retry-After` value is parsed by [`l2c_core::retry_after::parse`], the parser the SDK
//! uses too.
//!
//! ```
//! use std::time::Duration;
//! use l2c_server::dispatch::RetrySchedule;
//! use l2c_server::dispatch::retry::{Answer, next_step};
//! use l2c_server::store::outbox::NextStep;
//!
//! let schedule: RetrySchedule = "5s,30s".parse().unwrap();
//! let busy = Answer::Status { status: 503, retry_after: Some(Duration::from_secs(120)) };
//! assert_eq!(next_step(busy, 0, &schedule, 1.0, 1_000), NextStep::RetryAt(121_000));
//! assert_eq!(next_step(Answer::NoAnswer, 2, &schedule, 1.0, 1_000), NextStep::Failed);
//! ```

use std::ops::Range;
use std::time::Duration;

use super::RetrySchedule;
use crate::store::outbox::NextStep;

/// Longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The range the jitter factor is drawn from: ±10 %.
pub const JITTER: Range<f64> = 0.9..1.1;

/// What an attempt got back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The receiver answered with this status; `retry_after` is its parsed `Retry-After`.
    Status {
        /// The HTTP status.
        status: u16,
        /// The parsed `Retry-After` header, if any.
        retry_after: Option<Duration>,
    },
    /// No answer: the attempt was not sent or failed (refused destination, timeout, connection
    /// error).
    NoAnswer,
}

/// The statuses whose `Retry-After` is honoured (throttling and temporary unavailability).
fn honours_retry_after(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

/// The delivery's next step after an attempt that got `answer` (see the module docs).
///
/// `failures` counts the failed attempts before this one; `jitter` multiplies the schedule's
/// delay (draw it from [`JITTER`]); `now` and the time of [`NextStep::RetryAt`] are unix ms.
#[must_use]
pub fn next_step(
    answer: Answer,
    failures: u32,
    schedule: &RetrySchedule,
    jitter: f64,
    now: i64,
) -> NextStep {
    let retry_after = match answer {
        Answer::Status { status, .. } if (200..300).contains(&status) => {
            return NextStep::Succeeded;
        }
        Answer::Status { status: 410, .. } => return NextStep::Gone,
        Answer::Status {
            status,
            retry_after,
        } => retry_after.filter(|_| honours_retry_after(status)),
        Answer::NoAnswer => None,
    };
    let Some(delay) = schedule.delay_after(failures.saturating_add(1)) else {
        return NextStep::Failed;
    };
    let delay = match retry_after {
        Some(ra) => ra.min(MAX_RETRY_AFTER),
        None => delay.mul_f64(jitter),
    };
    NextStep::RetryAt(now + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000_000;

    fn status(status: u16, retry_after: Option<u64>) -> Answer {
        Answer::Status {
            status,
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    #[test]
    fn next_step_table() {
        let schedule: RetrySchedule = "5s,30s".parse().unwrap();
        let at = |secs: i64| NextStep::RetryAt(NOW + secs * 1000);
        #[rustfmt::skip]
        let rows: &[(Answer, u32, f64, NextStep)] = &[
            // answer,                        failures, jitter, next
            (status(200, None),               0, 1.0, NextStep::Succeeded),
            (status(204, Some(60)),           1, 1.0, NextStep::Succeeded),
            (status(299, None),               2, 1.0, NextStep::Succeeded),
            (status(410, None),               0, 1.0, NextStep::Gone),
            (status(410, Some(60)),           2, 1.0, NextStep::Gone),
            // Failures walk the schedule, then give up.
            (status(500, None),               0, 1.0, at(5)),
            (status(500, None),               1, 1.0, at(30)),
            (status(500, None),               2, 1.0, NextStep::Failed),
            (Answer::NoAnswer,                0, 1.0, at(5)),
            (Answer::NoAnswer,                2, 1.0, NextStep::Failed),
            // A redirect is a failure like any other.
            (status(301, None),               0, 1.0, at(5)),
            // Jitter scales the schedule's delay.
            (status(500, None),               0, 0.9, NextStep::RetryAt(NOW + 4_500)),
            (status(500, None),               1, 1.1, NextStep::RetryAt(NOW + 33_000)),
            // Retry-After is honoured on throttling statuses only, without jitter...
            (status(429, Some(120)),          0, 1.1, at(120)),
            (status(502, Some(7)),            0, 0.9, at(7)),
            (status(503, Some(0)),            1, 1.0, at(0)),
            (status(504, Some(60)),           0, 1.0, at(60)),
            (status(500, Some(120)),          0, 1.0, at(5)),
            (status(400, Some(120)),          0, 1.0, at(5)),
            // ...capped at a day...
            (status(503, Some(7 * 86_400)),   0, 1.0, at(86_400)),
            // ...and never past the end of the schedule.
            (status(429, Some(1)),            2, 1.0, NextStep::Failed),
            // A throttling status without a readable Retry-After follows the schedule.
            (status(503, None),               0, 1.0, at(5)),
        ];
        for (i, (answer, failures, jitter, want)) in rows.iter().enumerate() {
            assert_eq!(
                next_step(*answer, *failures, &schedule, *jitter, NOW),
                *want,
                "row {i}: {answer:?} after {failures} failures"
            );
        }
    }

    #[test]
    fn failures_beyond_u32_do_not_overflow() {
        let schedule: RetrySchedule = "5s".parse().unwrap();
        assert_eq!(
            next_step(Answer::NoAnswer, u32::MAX, &schedule, 1.0, NOW),
            NextStep::Failed
        );
    }
}
